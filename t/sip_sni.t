#!/usr/bin/perl

# A SIP server per domain on one TLS port (nginx 1.25.5+: stream
# "server_name", the server chosen by the TLS server name): each domain
# has its own certificate, sip_domain and registrar (location zone).  A
# phone of each domain registers over TLS with its domain's name (SNI),
# gets its domain's certificate, and is found by its domain's registrar
# only: the other server knows neither it nor its domain.  Calls over TLS
# reach the phone of the domain they name, on its connection.  Datagrams
# have no server name: UDP on that port is the default server's.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::IP;

use lib 't/lib';
use NgxSip;

require IO::Socket::SSL;

my $t = NgxSip->new()->make_cert('a.example')->make_cert('b.example');

my ($version) = `$t->{nginx} -v 2>&1` =~ m{nginx/(\d+\.\d+\.\d+)};
plan skip_all => "nginx $version: stream server_name is 1.25.5 and later"
    unless sprintf('%d%03d%03d', split /\./, $version) >= 1025005;

$t->write_conf(<<'EOF2');
stream {
    sip_location_zone loca:1m;
    sip_location_zone locb:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        listen 127.0.0.1:%%PORT_0%% udp;
        server_name a.example;
        ssl_certificate     %%PREFIX%%/a.example.crt;
        ssl_certificate_key %%PREFIX%%/a.example.key;
        sip on;
        sip_domain a.example shared.example;
        sip_registrar loca;
        sip_record_route on;
    }

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        listen 127.0.0.1:%%PORT_0%% udp;
        server_name b.example;
        ssl_certificate     %%PREFIX%%/b.example.crt;
        ssl_certificate_key %%PREFIX%%/b.example.key;
        sip on;
        sip_domain b.example shared.example;
        sip_registrar locb;
        sip_record_route on;
        sip_pass "sip:127.0.0.1:%%PORT_1%%;transport=tcp";
    }
}
EOF2

my $upstream = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port(1), Proto => 'tcp', Listen => 5, ReuseAddr => 1)
    or die "upstream listen: $@";

$t->run();

my $port = $t->port(0);

sub tls {
    my ($name) = @_;
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        SSL_verify_mode => 0,
        defined $name ? (SSL_hostname => $name) : (),
        Timeout => 5,
    ) or die "tls connect: $IO::Socket::SSL::SSL_ERROR $@";
    $s->autoflush(1);
    return $s;
}

sub cn {
    my ($s) = @_;
    my ($cn) = ($s->peer_certificate('subject') // '') =~ /CN\s*=\s*([^\/,]+)/;
    return $cn // '';
}

# a REGISTER on a connection: with a Contact, or a query of the bindings

sub register {
    my ($s, $aor, $contact) = @_;
    my ($host) = $aor =~ /\@(.*)/;
    stream_send($s, sip_request(method => 'REGISTER', uri => "sip:$host",
        to => "sip:$aor", transport => 'TLS', via_host => '10.9.9.9',
        via_port => 5999, call_id => "reg-$aor-" . int(rand(1e9)),
        headers => [$contact ? (['Contact', "<$contact>"], ['Expires', 600])
            : ()]));
    my ($m) = stream_recv($s, 1, 5);
    return parse_sip($m->[0] // '');
}

sub contacts {
    my ($r) = @_;
    return '' unless $r && $r->{code} == 200;
    return join ' ', sort map { /<([^>]*)>/ } @{$r->{h}{contact} || []};
}

# an INVITE from a caller over TLS with a server name: what the caller
# gets, and whether the phone got the INVITE (it answers 486)

sub call {
    my ($name, $uri, $phone) = @_;
    my $c = tls($name);
    my $cid = 'call-' . int(rand(1e9));
    stream_send($c, sip_request(method => 'INVITE', uri => $uri,
        transport => 'TLS', via_host => '10.8.8.8', via_port => 5998,
        call_id => $cid,
        headers => [['Contact', '<sip:caller@10.8.8.8:5998;transport=tls>']]));

    my ($msgs) = stream_recv($phone, 1, 2);
    my $inv = $msgs->[0] // '';
    my $reached = $inv =~ /^INVITE / ? 1 : 0;

    stream_send($phone, sip_response($inv, 486, 'Busy Here', tag => 'ph'))
        if $reached;

    my $code = 0;
    for (1 .. 5) {
        my ($got) = stream_recv($c, 1, 5);
        my $r = parse_sip($got->[0] // '') or last;
        $code = $r->{code};
        last if $code >= 200;
    }

    return ($code, $reached);
}

# certificates by server name; none: the default server's (the first)

for my $name ('a.example', 'b.example', undef) {
    my $s = tls($name);
    is(cn($s), $name // 'a.example',
        'server name ' . ($name // 'none') . ': its certificate');
    close $s;
}

my $pa = tls('a.example');
my $pb = tls('b.example');

my $ra = register($pa, 'alice@a.example',
    'sip:alice@10.9.9.9:5999;transport=tls');
my $rb = register($pb, 'bob@b.example',
    'sip:bob@10.9.9.9:5999;transport=tls');

is($ra && $ra->{code}, 200, 'a.example: alice registered');
is($rb && $rb->{code}, 200, 'b.example: bob registered');

my $x = register(tls('a.example'), 'bob@b.example',
    'sip:bob@10.7.7.7:5999;transport=tls');
isnt($x && $x->{code}, 200, 'a.example: b.example is not served there')
    or diag($x->{text});

# one user, one domain both serve, two registrars

my $sa = tls('a.example');
my $sb = tls('b.example');
is(register($sa, 'carol@shared.example', 'sip:carol-a@10.9.9.1:5999')
    ->{code}, 200, 'shared.example on a.example: carol registered');
is(register($sb, 'carol@shared.example', 'sip:carol-b@10.9.9.2:5999')
    ->{code}, 200, 'shared.example on b.example: carol registered');

is(contacts(register(tls('a.example'), 'carol@shared.example')),
    'sip:carol-a@10.9.9.1:5999', 'a.example: its own binding of carol');
is(contacts(register(tls('b.example'), 'carol@shared.example')),
    'sip:carol-b@10.9.9.2:5999', 'b.example: its own binding of carol');
is(contacts(register(tls('b.example'), 'bob@b.example')),
    'sip:bob@10.9.9.9:5999;transport=tls', 'b.example: bob, one binding');
is(contacts(register(tls('a.example'), 'alice@a.example')),
    'sip:alice@10.9.9.9:5999;transport=tls', 'a.example: alice');

# calls: to the phone of the domain, on its connection

is(join(' ', call('b.example', 'sip:bob@b.example', $pb)), '486 1',
    'b.example: a call to bob reaches his connection');
is(join(' ', call('a.example', 'sip:alice@a.example', $pa)), '486 1',
    'a.example: a call to alice reaches her connection');
is(join(' ', call('a.example', 'sip:bob@b.example', $pb)), '403 0',
    'a.example: a call to bob@b.example is not relayed');

# b.example's next hop over TCP: the connection nginx opens is a session
# of b.example's server (not of the UDP listen's default server), so a
# request the next hop sends on it is routed by b.example's registrar

sub upstream {
    my $c = tls('b.example');
    stream_send($c, sip_request(method => 'INVITE',
        uri => 'sip:nobody@b.example', transport => 'TLS',
        via_host => '10.8.8.8', via_port => 5998, call_id => 'up-1',
        headers => [['Contact', '<sip:caller@10.8.8.8:5998;transport=tls>']]));

    IO::Select->new($upstream)->can_read(5) or return 'no connection';
    my $up = $upstream->accept() or return "accept: $!";
    my ($m) = stream_recv($up, 1, 5);
    return 'no INVITE upstream' unless ($m->[0] // '') =~ /^INVITE /;
    stream_send($up, sip_response($m->[0], 404, 'Not Found', tag => 'up'));

    stream_send($up, "INVITE sip:bob\@b.example SIP/2.0\r\n"
        . "Via: SIP/2.0/TCP 127.0.0.1:" . $t->port(1)
        . ";branch=z9hG4bK-up-2\r\nMax-Forwards: 70\r\n"
        . "From: <sip:pbx\@b.example>;tag=pbx\r\nTo: <sip:bob\@b.example>\r\n"
        . "Call-ID: up-2\r\nCSeq: 1 INVITE\r\n"
        . "Contact: <sip:pbx\@127.0.0.1:" . $t->port(1) . ";transport=tcp>\r\n"
        . "Content-Length: 0\r\n\r\n");

    my ($msgs) = stream_recv($pb, 1, 3);
    my $inv = $msgs->[0] // '';
    stream_send($pb, sip_response($inv, 486, 'Busy Here', tag => 'ph'))
        if $inv =~ /^INVITE /;

    # the ACK of the 404, then 100 and 486 to the INVITE for bob
    my ($got) = stream_recv($up, 3, 5);
    my @codes = map { m{^SIP/2\.0 (\d+)} }
        grep { /^Call-ID:\s*up-2\r$/mi } @$got;

    return ($inv =~ /^INVITE sip:bob/ ? 'bob got it' : 'bob did not')
        . ', next hop got ' . join(' ', @codes);
}

is(upstream(), 'bob got it, next hop got 100 486',
    'b.example: its next hop\'s connection is b.example\'s');

# UDP: no server name, the default server (a.example) answers

my $u = udp_socket();
udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:b.example',
    to => 'sip:dave@b.example', via_port => $u->sockport,
    headers => [['Contact', '<sip:dave@127.0.0.1:5999>']]),
    '127.0.0.1', $port);
my ($d) = udp_recv($u, 3);
my $r = parse_sip($d && $d->[0]);
like($r && "$r->{code} $r->{reason}", qr/^(?:403|404) /,
    'UDP: the default server answers, b.example is not its domain');

$t->stop();

is($t->crashes(), '', 'no crash, no alert');

done_testing();
