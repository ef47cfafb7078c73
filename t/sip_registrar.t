#!/usr/bin/perl

# Registrar (RFC 3261 10.3) and redirect server on a shared-memory
# location zone, 4 workers: add, refresh, remove, "*", 423, expiry,
# CSeq order, max_contacts, 302 with every contact, 3000 bindings across
# reload and restart with a state file, a corrupt state file.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

# the workers write the state file: their user needs the directory
mkdir $t->prefix . '/state';
chmod 0777, $t->prefix . '/state';

my $conf = <<'EOF';
stream {
    sip_location_zone loc:8m state=%%PREFIX%%/state/bindings.state
                      max_contacts=3;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_registrar_expires 2 3600 7200;
        sip_registrar_min_expires_mode reject;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_registrar_expires 20 3600 7200;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_redirect on;
    }
}
EOF

$t->write_conf($conf, workers => 4)->run();

my $port = $t->port(0);
my $rport = $t->port(1);
my $u = udp_socket();
my $seq = 0;

sub reg {
    my (%h) = @_;

    my $user = $h{user} || 'alice';
    my @hdr;
    push @hdr, map { ['Contact', $_] } @{$h{contact} || []};
    push @hdr, ['Expires', $h{expires}] if defined $h{expires};
    push @hdr, ['Path', $h{path}] if $h{path};

    udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", via_port => $u->sockport,
        call_id => $h{call_id} || "reg-$user", cseq => $h{cseq} || ++$seq,
        branch => $h{branch}, headers => \@hdr), '127.0.0.1',
        $h{port} || $port);
    my ($got) = udp_recv($u, 3);
    return parse_sip($got && $got->[0]);
}

sub contacts {
    my ($r) = @_;
    return join ' ', sort map { /<([^>]+)>/ ? $1 : $_ }
        @{($r && $r->{h}{contact}) || []};
}

# add, list, refresh, remove

my $r = reg(contact => ['<sip:alice@127.0.0.1:5071>;q=0.5'], expires => 600);
is($r && $r->{code}, 200, 'register');
like($r->{h}{contact}[0], qr/^<sip:alice\@127\.0\.0\.1:5071>;expires=(600|599);q=0\.500$/,
    '200 lists the binding with expires and q');

$r = reg(contact => ['<sip:alice@[::1]:5071>;expires=300']);
is(contacts($r), 'sip:alice@127.0.0.1:5071 sip:alice@[::1]:5071',
    'IPv6 contact added, both listed');

$r = reg();
is($r->{code}, 200, 'query without Contact');
is(contacts($r), 'sip:alice@127.0.0.1:5071 sip:alice@[::1]:5071',
    'query lists current bindings');

$r = reg(contact => ['<sip:alice@127.0.0.1:5071>'], expires => 100);
like(join(' ', @{$r->{h}{contact}}), qr/5071>;expires=(100|99)\b/,
    'refresh changes expires');

$r = reg(contact => ['<sip:alice@[::1]:5071>;expires=0']);
is(contacts($r), 'sip:alice@127.0.0.1:5071', 'expires=0 removes one');

# 423, *, ordering

$r = reg(contact => ['<sip:alice@127.0.0.1:5072>'], expires => 1);
is($r->{code}, 423, '423 under sip_registrar_expires min');
is($r->{h}{'min-expires'}[0], 2, 'Min-Expires');

# by default, as Kamailio's registrar: raised to the minimum, which the
# 200 says; the same REGISTER with expires=0 still removes the binding

$r = reg(user => 'dave', contact => ['<sip:dave@127.0.0.1:5079>'],
    expires => 15, port => $t->port(2));
is($r && $r->{code}, 200, 'below the minimum: 200 by default');
like($r && $r->{h}{contact}[0], qr/5079>;expires=(20|19)\b/,
    'the 200 gives the raised interval');
$r = reg(user => 'dave', contact => ['<sip:dave@127.0.0.1:5079>;expires=0'],
    port => $t->port(2));
is(contacts($r), '', 'expires=0 not raised');

$r = reg(contact => ['*']);
is($r->{code}, 400, '* without Expires: 0');
like($r->{reason}, qr/Expires/, '400 says why');

$r = reg(contact => ['*', '<sip:alice@127.0.0.1:5073>'], expires => 0);
is($r->{code}, 400, '* with another contact');

$r = reg(contact => ['<sip:alice@127.0.0.1:5071>'], expires => 0, cseq => 1);
is($r->{code}, 500, 'older CSeq for the same Call-ID: 500');
like($r->{reason}, qr/CSeq/, '500 says why');

$r = reg();
is(contacts($r), 'sip:alice@127.0.0.1:5071', 'and nothing changed');

$r = reg(contact => ['*'], expires => 0);
is($r->{code}, 200, '* with Expires: 0');
is(contacts($r), '', 'removes all');

# the same REGISTER twice (its 200 lost, or read by two workers) is a
# retransmission: 200 again; the same CSeq in a new transaction is not

$seq += 10;
my %again = (contact => ['<sip:alice@127.0.0.1:5074>'], expires => 600,
    cseq => $seq, branch => "z9hG4bK-again$seq");
is(reg(%again)->{code}, 200, 'REGISTER');
$r = reg(%again);
is($r->{code}, 200, 'the same REGISTER again: 200, not 500');
is(contacts($r), 'sip:alice@127.0.0.1:5074', 'with the binding');
is(reg(%again, branch => "z9hG4bK-new$seq")->{code}, 500,
    'the same CSeq with a new branch: 500');
reg(contact => ['*'], expires => 0);

# max_contacts=3

reg(user => 'bob', contact => ["<sip:bob\@127.0.0.1:$_>"]) for 6001 .. 6003;
$r = reg(user => 'bob', contact => ['<sip:bob@127.0.0.1:6004>']);
is($r->{code}, 403, 'fourth contact over max_contacts');
like($r->{reason}, qr/Too Many/, '403 says why');
$r = reg(user => 'bob', contact => ['<sip:bob@127.0.0.1:6001>']);
is($r->{code}, 200, 'refresh at the limit still works');

# foreign AOR, bad AOR

$r = reg(user => 'x', contact => ['<sip:x@127.0.0.1>']);
$r = do {
    udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:carol@elsewhere.test', via_port => $u->sockport,
        headers => [['Contact', '<sip:carol@127.0.0.1>']]),
        '127.0.0.1', $port);
    my ($g) = udp_recv($u, 3);
    parse_sip($g && $g->[0]);
};
is($r && $r->{code}, 404, 'AOR of a foreign domain: 404');

# Path stored and returned

$r = reg(user => 'pat', contact => ['<sip:pat@127.0.0.1:6100>'],
    path => '<sip:edge.example.com;lr>');
is($r->{h}{path}[0], '<sip:edge.example.com;lr>', 'Path returned');

# expiry: 2 s

reg(user => 'eve', contact => ['<sip:eve@127.0.0.1:6200>'], expires => 2);
sleep 3.2;
$r = reg(user => 'eve');
is(contacts($r), '', 'binding expired on time');

# redirect: 302 with every contact, q kept; 404 for unknown users

reg(user => 'dan', contact => ['<sip:dan@127.0.0.1:6301>;q=0.9',
    '<sip:dan@127.0.0.1:6302>;q=0.1']);

udp_send($u, sip_request(method => 'INVITE', uri => 'sip:dan@example.com',
    via_port => $u->sockport), '127.0.0.1', $rport);
my ($got) = udp_recv($u, 3);
$r = parse_sip($got && $got->[0]);
is($r && $r->{code}, 302, 'redirect: 302');
is(contacts($r), 'sip:dan@127.0.0.1:6301 sip:dan@127.0.0.1:6302',
    'redirect lists all contacts');
ok(grep({ /q=0\.900/ } @{$r->{h}{contact}}), 'q kept');

udp_send($u, sip_request(method => 'INVITE', uri => 'sip:nobody@example.com',
    via_port => $u->sockport), '127.0.0.1', $rport);
($got) = udp_recv($u, 3);
is(parse_sip($got && $got->[0])->{code}, 404, 'redirect: unknown user 404');

udp_send($u, sip_request(method => 'ACK', uri => 'sip:dan@example.com',
    via_port => $u->sockport), '127.0.0.1', $rport);
is(scalar(udp_recv($u, 0.5)), 0, 'redirect: ACK absorbed');

# 3000 bindings, a window of requests in flight at a time

my $n = 3000;
my %pending;
my $ok = 0;
my $sent = 0;
my $deadline = time() + 60;

while (($sent < $n || %pending) && time() < $deadline) {
    while ($sent < $n && keys(%pending) < 50) {
        my $i = $sent++;
        udp_send($u, sip_request(method => 'REGISTER',
            uri => 'sip:example.com', to => "sip:user$i\@example.com",
            via_port => $u->sockport, call_id => "bulk-$i",
            headers => [['Contact', "<sip:user$i\@127.0.0.1:7000>"]]),
            '127.0.0.1', $port);
        $pending{"bulk-$i"} = 1;
    }

    my @got = udp_recv($u, 2);
    last unless @got;
    push @got, udp_recv($u, 0.01, 1);

    for my $g (@got) {
        my $x = parse_sip($g->[0]) or next;
        my $cid = $x->{h}{'call-id'}[0];
        $ok++ if delete $pending{$cid} && $x->{code} == 200;
    }
}

is($ok, $n, "$n bindings registered");

sub count_bindings {
    my ($p) = @_;
    my $c = 0;
    for my $i (0, 1234, 2999) {
        udp_send($u, sip_request(method => 'REGISTER',
            uri => 'sip:example.com', to => "sip:user$i\@example.com",
            via_port => $u->sockport, call_id => "check-$i-" . rand()),
            '127.0.0.1', $p || $port);
        my ($g) = udp_recv($u, 3);
        my $x = parse_sip($g && $g->[0]);
        $c++ if $x && contacts($x) eq "sip:user$i\@127.0.0.1:7000";
    }
    return $c;
}

# reload: the zone stays

kill 'HUP', $t->{pid};
sleep 1.5;
is(count_bindings(), 3, 'bindings survive nginx -s reload');

# restart: the state file carries them

$t->stop();
ok(-s $t->prefix . '/state/bindings.state', 'state file written at stop');
$t->run();
is(count_bindings(), 3, 'bindings survive a restart');
like($t->read_log(), qr/SIP state file .* 30\d\d bindings loaded, 0 lines bad/,
    'state file loaded');

# a corrupt state file: kept aside as .bad, what can be read is loaded

$t->stop();

{
    my $f = $t->prefix . '/state/bindings.state';
    open my $fh, '>>', $f or die;
    print $fh "garbage line without tabs\n";
    print $fh "sip:x\@example.com\tnot-a-number\t1000\t1\t0\tsip:x\@h\tc\ts\t\t\t\n";
    close $fh;
}

$t->run();
is(count_bindings(), 3, 'corrupt state file: good lines loaded');
ok(-e $t->prefix . '/state/bindings.state.bad', 'corrupt file kept as .bad');
like($t->read_log(), qr/bad line/, 'bad lines logged');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
