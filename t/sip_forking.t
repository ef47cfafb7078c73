#!/usr/bin/perl

# Forking to the contacts of a user (RFC 3261 16.5-16.7), 4 workers:
# parallel among equal q (one answers, the others get CANCEL and their
# 487 is ACKed hop by hop, the caller sees only the 2xx), serial by q
# (the first rejects, the next answers, the last is never asked), a 6xx
# ends the search, the best of several failures goes back, CANCEL from
# the caller reaches every ringing branch, Path is used as the route.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        %%IPV6%%listen [::1]:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
        sip_timers 50ms 400ms 500ms;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $c = udp_socket();

# a phone: answers INVITE with its script (list of codes; 0: stays
# silent), CANCEL with 200 and then 487, and records every method

sub phone {
    my (@codes) = @_;
    my $s = udp_socket();
    my %p = (sock => $s, seen => []);
    my $invite;

    $p{handler} = sub {
        my ($req) = @_;
        my $m = sip_method($req) or return;
        push @{$p{seen}}, $m;
        if ($m eq 'INVITE') {
            $invite = $req;
            return map { sip_response($req, $_, $_ == 200 ? 'OK' : 'X',
                tag => 'p' . $s->sockport) } grep { $_ } @codes;
        }
        if ($m eq 'CANCEL') {
            return (sip_response($req, 200, 'OK'),
                sip_response($invite, 487, 'Request Terminated',
                    tag => 'p' . $s->sockport));
        }
        return;
    };

    return \%p;
}

sub register {
    my ($user, $phone, $q, %h) = @_;
    my $contact = "<sip:$user\@127.0.0.1:" . $phone->{sock}->sockport . '>'
        . (defined $q ? ";q=$q" : '');
    udp_send($c, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", via_port => $c->sockport,
        call_id => "reg-$user-" . $phone->{sock}->sockport,
        headers => [['Contact', $contact], ['Expires', 300],
            @{$h{headers} || []}]), '127.0.0.1', $port);
    my ($got) = udp_recv($c, 3);
    my $r = parse_sip($got && $got->[0]);
    return $r && $r->{code};
}

sub call {
    my ($user, @phones) = @_;
    my @r = sip_exchange(client => $c, port => $port, after => 1,
        uas => [map { [$_->{sock}, $_->{handler}] } @phones],
        msg => sip_request(method => 'INVITE',
            uri => "sip:$user\@example.com", via_port => $c->sockport,
            headers => [['Contact', '<sip:caller@127.0.0.1>']]));
    return join ' ', map { $_->{code} } @r;
}

sub seen {
    return join ',', @{$_[0]{seen}};
}

# parallel: three phones at q=1, one answers

my @p = (phone(180, 200), phone(180), phone(180));
is(join(',', map { register('bob', $_) } @p), '200,200,200',
    'parallel: three contacts registered');
my $codes = call('bob', @p);
like($codes, qr/^100( 180)* 200$/, "parallel: caller sees 200 only ($codes)");
is(seen($p[0]), 'INVITE', 'parallel: the answering phone got INVITE');
is(seen($p[1]), 'INVITE,CANCEL,ACK', 'parallel: second phone cancelled');
is(seen($p[2]), 'INVITE,CANCEL,ACK', 'parallel: third phone cancelled');

# serial by q: 1.0 busy, 0.5 answers, 0.1 is never asked

@p = (phone(486), phone(180, 200), phone(200));
register('carol', $p[0], '1.0');
register('carol', $p[1], '0.5');
register('carol', $p[2], '0.1');
$codes = call('carol', @p);
like($codes, qr/^100( 180)? 200$/, "serial: 486 hidden, 200 back ($codes)");
is(seen($p[0]), 'INVITE,ACK', 'serial: first phone rejected, ACKed');
is(seen($p[1]), 'INVITE', 'serial: second phone answered');
is(seen($p[2]), '', 'serial: third phone never asked');

# a 6xx ends the search

@p = (phone(603), phone(200));
register('dave', $p[0], '1.0');
register('dave', $p[1], '0.5');
$codes = call('dave', @p);
is($codes, '100 603', '6xx: 603 back');
is(seen($p[1]), '', '6xx: the next contact not tried');

# all fail: the best answer (a 4xx before a 5xx)

@p = (phone(500), phone(486));
register('erin', $_) for @p;
$codes = call('erin', @p);
is($codes, '100 486', 'best response: 486 over 500');

# CANCEL from the caller: every ringing branch is cancelled, 487 back

@p = (phone(180), phone(180));
register('fred', $_) for @p;
{
    my $branch = 'z9hG4bK' . int(rand(1e9));
    my $invite = sip_request(method => 'INVITE', uri => 'sip:fred@example.com',
        via_port => $c->sockport, branch => $branch, call_id => 'cancel-1');
    my $uas = [map { [$_->{sock}, $_->{handler}] } @p];
    my @r = sip_exchange(client => $c, port => $port, uas => $uas,
        msg => $invite, timeout => 1);
    (my $cancel = $invite) =~ s/^INVITE /CANCEL /;
    $cancel =~ s/^CSeq: (\d+) INVITE/CSeq: $1 CANCEL/m;
    push @r, sip_exchange(client => $c, port => $port, uas => $uas,
        msg => $cancel, invite => $invite, after => 1);
    my $got = join ' ', sort map { $_->{code} } @r;
    like($got, qr/^100 180 180 200 487$/, "CANCEL: 200 and 487 ($got)");
    is(seen($p[0]) . ';' . seen($p[1]), 'INVITE,CANCEL,ACK;INVITE,CANCEL,ACK',
        'CANCEL: both branches cancelled');
}

# IPv6: a contact in brackets (RFC 5118), called over IPv6

SKIP: {
    skip 'no IPv6', 4 unless need(have_ipv6(), 'IPv6 on lo');

    my $c6 = udp_socket(addr => '::1');
    my $s = udp_socket(addr => '::1');
    my ($req, $ack);
    my $contact = '<sip:hana@[::1]:' . $s->sockport . '>';
    udp_send($c6, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:hana@example.com', via_host => '[::1]',
        via_port => $c6->sockport, call_id => 'reg-hana',
        headers => [['Contact', $contact], ['Expires', 300]]),
        '::1', $port);
    my ($got) = udp_recv($c6, 3);
    my $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 200, 'IPv6: registered');
    like($r && join(',', @{$r->{h}{contact} || []}), qr/\Q$contact\E/,
        'IPv6: contact listed in brackets');

    my @r = sip_exchange(client => $c6, addr => '::1', port => $port,
        after => 0.3,
        uas => [[$s, sub {
            my $m = sip_method($_[0]) or return;
            $req //= $_[0] if $m eq 'INVITE';
            return $m eq 'INVITE' ? sip_response($_[0], 200, 'OK') : ();
        }]],
        msg => sip_request(method => 'INVITE', uri => 'sip:hana@example.com',
            via_host => '[::1]', via_port => $c6->sockport));
    is(join(' ', map { $_->{code} } @r), '100 200', 'IPv6: call answered');
    like($req // '', qr/^Via: SIP\/2\.0\/UDP \[::1\]:$port;branch=/m,
        'IPv6: our Via in brackets');
}

# Path (RFC 3327): the request goes to the edge proxy first, with Route

{
    my $edge = udp_socket();
    my $phone = phone(200);
    my $path = '<sip:127.0.0.1:' . $edge->sockport . ';lr>';
    is(register('gina', $phone, undef, headers => [['Path', $path],
        ['Supported', 'path']]), 200, 'Path: registered');
    my $got;
    my @r = sip_exchange(client => $c, port => $port, after => 0.3,
        timeout => 2,
        uas => [[$edge, sub { $got //= $_[0]; return }]],
        msg => sip_request(method => 'MESSAGE', uri => 'sip:gina@example.com',
            via_port => $c->sockport));
    ok($got, 'Path: the edge proxy got the request');
    like($got // '', qr/^MESSAGE sip:gina\@127\.0\.0\.1:\d+ SIP\/2\.0\r\n/,
        'Path: Request-URI is the contact');
    like($got // '', qr/\r\nRoute: \Q$path\E\r\n/, 'Path: as Route');
}

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
