#!/usr/bin/perl

# Phones on their own connections (RFC 5626 flows), 4 workers: a phone
# registers over TLS with a Contact nobody can reach (behind NAT), then
# calls from UDP callers with many Call-IDs, read by any worker, all
# reach it on its TLS connection, with the ACK and the caller's BYE after
# them; the phone's BYE goes back to its caller; once the phone is gone,
# calls to it get 480.  A phone over TCP the same way.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new()->make_cert('localhost');

$t->write_conf(<<'EOF2', workers => 4);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
    }
}
EOF2

$t->run();

my $port = $t->port(0);

sub phone {
    my ($user, $ssl) = @_;
    my $s = tcp_connect(port => $t->port($ssl ? 1 : 0), ssl => $ssl);
    my $tr = $ssl ? 'tls' : 'tcp';
    stream_send($s, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", transport => uc $tr,
        via_host => '10.9.9.9', via_port => 5999, call_id => "reg-$user",
        headers => [['Contact', "<sip:$user\@10.9.9.9:5999;transport=$tr>"],
            ['Expires', 600]]));
    my ($m) = stream_recv($s, 1, 5);
    return ($s, parse_sip($m->[0] // ''));
}

# one call: the caller over UDP, the phone answering on its connection

sub call {
    my ($phone, $user, $i) = @_;
    my $c = udp_socket();
    my $cid = "flow-$user-$i-" . int(rand(1e9));
    udp_send($c, sip_request(method => 'INVITE',
        uri => "sip:$user\@example.com", via_port => $c->sockport,
        call_id => $cid, headers => [['Contact',
            '<sip:caller@127.0.0.1:' . $c->sockport . '>']]),
        '127.0.0.1', $port);

    my ($msgs) = stream_recv($phone, 1, 5);
    my $inv = $msgs->[0] // '';
    return "no INVITE on the connection" unless $inv =~ /^INVITE /;

    stream_send($phone, sip_response($inv, 200, 'OK', tag => "ph$i",
        headers => [['Contact', "<sip:$user\@10.9.9.9:5999>"]]));

    my @codes;
    while (my ($d) = udp_recv($c, 3)) {
        my $r = parse_sip($d->[0]) or last;
        push @codes, $r->{code};
        last if $r->{code} >= 200;
    }

    return "caller got @codes" unless "@codes" =~ /200$/;

    # the ACK and the caller's BYE along the route set
    my ($rr) = $inv =~ /^Record-Route: (.*)\r$/m;
    my @rr = split /,\s*/, $rr // '';
    my $route = join ', ', reverse @rr;
    for my $m ('ACK', 'BYE') {
        udp_send($c, "$m sip:$user\@10.9.9.9:5999 SIP/2.0\r\n"
            . "Via: SIP/2.0/UDP 127.0.0.1:" . $c->sockport
            . ";branch=z9hG4bK-$m$i-$user;rport\r\n"
            . "Route: $route\r\nMax-Forwards: 70\r\n"
            . "From: <sip:tester\@example.com>;tag=x\r\n"
            . "To: <sip:$user\@example.com>;tag=ph$i\r\n"
            . "Call-ID: $cid\r\nCSeq: " . ($m eq 'ACK' ? '1 ACK' : '2 BYE')
            . "\r\nContent-Length: 0\r\n\r\n", '127.0.0.1', $port);
        ($msgs) = stream_recv($phone, 1, 5);
        return "no $m on the connection: " . substr($msgs->[0] // "nothing", 0, 60)
            unless ($msgs->[0] // "") =~ /^$m /;
        stream_send($phone, sip_response($msgs->[0], 200, 'OK'))
            if $m eq 'BYE';
    }

    my ($d) = udp_recv($c, 3);
    return "no 200 for BYE" unless ($d && $d->[0]) =~ /^SIP\/2\.0 200 /;

    return 'ok';
}

for my $ssl (1, 0) {
    my $tr = $ssl ? 'TLS' : 'TCP';
    my $user = $ssl ? 'tlsphone' : 'tcpphone';
    my ($phone, $r) = phone($user, $ssl);
    is($r && $r->{code}, 200, "$tr phone registered");

    my @bad = grep { $_->[1] ne 'ok' }
        map { [$_, call($phone, $user, $_)] } 1 .. 12;
    is(join('; ', map { "call $_->[0]: $_->[1]" } @bad), '',
        "$tr phone: 12 calls from any worker, all on its connection");

    close $phone;
    sleep 0.5;

    my $c = udp_socket();
    udp_send($c, sip_request(method => 'INVITE',
        uri => "sip:$user\@example.com", via_port => $c->sockport),
        '127.0.0.1', $port);
    my @codes;
    for (1 .. 3) {
        my ($d) = udp_recv($c, 3) or last;
        my $x = parse_sip($d->[0]) or last;
        push @codes, $x->{code};
        last if $x->{code} >= 200;
    }
    like("@codes", qr/480$/, "$tr phone gone: 480 (@codes)");
}

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
