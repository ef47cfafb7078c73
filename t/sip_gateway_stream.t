#!/usr/bin/perl

# Gateway between address families with TCP or TLS on one side, 4
# workers: SIPp over UDP/IPv4 calling a SIPp callee over TCP/IPv6 (the
# caller's ACK and BYE, and the callee's BYE, along the double
# Record-Route); a TLS caller over IPv6 to a UDP callee over IPv4 (Via
# and Record-Route in brackets, RFC 5118, the callee's BYE back on the
# caller's connection); a server without an IPv6 listen answers 503 for
# an IPv6 next hop instead of connecting from nowhere.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = `which sipp 2>/dev/null`;
chomp $sipp;

plan skip_all => 'no sipp' unless $sipp;
plan skip_all => 'no IPv6' unless have_ipv6();

my $t = NgxSip->new()->make_cert('localhost');

$t->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen [::1]:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass "sip:[::1]:%%PORT_1%%;transport=tcp";
    }

    server {
        listen [::1]:%%PORT_2%% ssl;
        listen 127.0.0.1:%%PORT_2%% udp;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_3%%;
    }
}
EOF2

my %scenarios = %{ sipp_scenarios() };
$t->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
$t->run();

# SIPp: UDP over IPv4 in, TCP over IPv6 out

sipp_call($t, $sipp, 'uas_call', 'uac_call', 100, $t->port(0), $t->port(1),
    'UDP/IPv4 caller, TCP/IPv6 callee: calls with ACK and BYE', '',
    '-t t1 -i ::1');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 30, $t->port(0), $t->port(1),
    'UDP/IPv4 caller, TCP/IPv6 callee: BYE from the callee', '',
    '-t t1 -i ::1');

# TLS over IPv6 in, UDP over IPv4 out, by hand

my $proxy = $t->port(2);
my $tls = tcp_connect(addr => '::1', port => $proxy, ssl => 1);
my $uas = udp_socket(port => $t->port(3));
my $cid = 'gw6-' . int(rand(1e9));

stream_send($tls, sip_request(method => 'INVITE',
    uri => 'sip:bob@example.com', transport => 'TLS', via_host => '[::1]',
    via_port => 5999, call_id => $cid, branch => 'z9hG4bK-gw6',
    headers => [['Contact', '<sip:alice@[::1]:5999;transport=tls>']]));

my ($got) = udp_recv($uas, 5);
my $inv = $got && $got->[0];

like($inv // '', qr/^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:$proxy;branch=/m,
    'TLS/IPv6 to UDP/IPv4: our Via on the IPv4 side');
like($inv // '', qr/^Via: SIP\/2\.0\/TLS \[::1\]:5999;branch=z9hG4bK-gw6\r$/m,
    'the caller\'s Via kept');

my ($rr) = ($inv // '') =~ /^Record-Route: (.*)\r$/m;
like($rr // '', qr/^<sip:127\.0\.0\.1:$proxy;lr;nsip=\w{16}>, <sip:\[::1\]:$proxy;transport=tls;lr;nsip=\w{16};nfl=\d+\.\d+\.\w{16}>$/,
    'double Record-Route: IPv4 UDP side, IPv6 TLS side in brackets');

my $uas_contact = '<sip:bob@127.0.0.1:' . $uas->sockport . '>';
udp_send($uas, sip_response($inv, 200, 'OK', tag => 'gw6',
    headers => [['Contact', $uas_contact]]), '127.0.0.1', $proxy);

my ($msgs) = stream_recv($tls, 2, 5);
is(join(' ', map { parse_sip($_)->{code} } @$msgs), '100 200',
    'TLS/IPv6 caller: 100 and 200 on its connection');

my $ok = parse_sip($msgs->[1] // '') || { h => {} };
my @rrs = map { split /,\s*/ } @{$ok->{h}{'record-route'} || []};
my ($to) = @{$ok->{h}{to} || ['']};

# the callee's BYE, from any worker, on the caller's connection

my $bye = "BYE sip:alice\@[::1]:5999;transport=tls SIP/2.0\r\n"
    . "Via: SIP/2.0/UDP 127.0.0.1:" . $uas->sockport
    . ";branch=z9hG4bK-gw6bye;rport\r\n"
    . "Route: " . join(', ', @rrs) . "\r\nMax-Forwards: 70\r\n"
    . "From: $to\r\nTo: <sip:tester\@example.com>;tag=caller\r\n"
    . "Call-ID: $cid\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";

udp_send($uas, $bye, '127.0.0.1', $proxy);

($msgs) = stream_recv($tls, 1, 5);
my $b = $msgs->[0] // '';
like($b, qr/^BYE sip:alice\@\[::1\]:5999;transport=tls SIP\/2\.0\r\n/,
    'the callee\'s BYE came on the caller\'s IPv6 TLS connection');
like($b, qr/^Via: SIP\/2\.0\/TLS \[::1\]:$proxy;branch=z9hG4bK-ngx/m,
    'our Via on it: TLS, IPv6 in brackets');

stream_send($tls, sip_response($b, 200, 'OK'));
($got) = udp_recv($uas, 5);
like($got && $got->[0] // '', qr/^SIP\/2\.0 200 OK\r\n.*CSeq: 7 BYE/s,
    'the caller\'s 200 for BYE reached the callee over IPv4');

# a sips: Request-URI: our Record-Route on the TLS side is sips: too
# (RFC 3261 16.6 step 4)

stream_send($tls, sip_request(method => 'MESSAGE',
    uri => 'sips:bob@example.com', transport => 'TLS', via_host => '[::1]',
    via_port => 5999, branch => 'z9hG4bK-gw6sips'));

($got) = udp_recv($uas, 5);
($rr) = (($got && $got->[0]) // '') =~ /^Record-Route: (.*)\r$/m;
like($rr // '', qr/^<sip:127\.0\.0\.1:$proxy;lr;nsip=\w{16}>, <sips:\[::1\]:$proxy;lr;nsip=\w{16};nfl=[\w.]+>$/,
    'sips: request: the TLS side of our Record-Route is a sips: URI');

# no IPv6 listen at all: no connection to an IPv6 next hop can be made a
# session of ours

my $t4 = NgxSip->new();

$t4->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass "sip:[::1]:%%PORT_1%%;transport=tcp";
    }
}
EOF2

$t4->run();

my $c = udp_socket();
my @r = sip_exchange(client => $c, port => $t4->port(0), after => 0.3,
    msg => sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $c->sockport));
is(join(' ', map { "$_->{code} $_->{reason}" } @r),
    '100 Trying 503 No Upstream Peer Available',
    'IPv6 next hop without an IPv6 listen: 503');
like($t4->read_log(), qr/no "sip on" listen of the next hop's address/,
    'and why, in the log');

$t4->stop();
is($t4->crashes(), '', 'no worker crashed there');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
