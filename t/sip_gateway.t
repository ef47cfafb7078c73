#!/usr/bin/perl

# Gateway between address families and transports, 4 workers: an IPv4
# caller to an IPv6 callee and back (Via and Record-Route of each side,
# in brackets for IPv6, RFC 5118 and RFC 5658), and a 3000-byte INVITE
# from UDP that goes on over TCP (RFC 3261 18.1.1), or over UDP after
# all when the next hop takes no TCP; sip_advertise.

use strict;
use warnings;

use Test::More;
use IO::Socket::IP;

use lib 't/lib';
use NgxSip;

plan skip_all => 'no IPv6' unless need(have_ipv6(), 'IPv6 on lo');

my $t = NgxSip->new();

$t->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen [::1]:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass [::1]:%%PORT_1%%;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_3%%;
    }

    server {
        listen 127.0.0.1:%%PORT_4%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_5%%;
    }

    server {
        listen 127.0.0.1:%%PORT_6%% udp;
        sip on;
        sip_domain example.com;
        sip_advertise 192.0.2.7;
        sip_pass 127.0.0.1:%%PORT_7%%;
    }
}
EOF2

$t->run();

my $port = $t->port(0);

# IPv4 caller, IPv6 callee

my $c = udp_socket();
my $v6 = udp_socket(addr => '::1', port => $t->port(1));
my $cid = 'gw-' . int(rand(1e9));
my $inv;

my @r = sip_exchange(client => $c, port => $port, after => 0.3,
    uas => [[$v6, sub {
        my $m = sip_method($_[0]) or return;
        $inv //= $_[0] if $m eq 'INVITE';
        return $m eq 'INVITE' ? sip_response($_[0], 200, 'OK',
            headers => [['Contact', '<sip:bob@[::1]:' . $v6->sockport . '>']])
            : ();
    }]],
    msg => sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $c->sockport, call_id => $cid,
        headers => [['Contact', '<sip:alice@127.0.0.1:' . $c->sockport
            . '>']]));

is(join(' ', map { $_->{code} } @r), '100 200', 'IPv4 to IPv6: answered');
like($inv // '', qr/^Via: SIP\/2\.0\/UDP \[::1\]:$port;branch=/m,
    'our Via on the IPv6 side, in brackets');
my ($rr) = ($inv // '') =~ /^Record-Route: (.*)\r$/m;
like($rr // '', qr/^<sip:\[::1\]:$port;lr;nsip=\w+>, <sip:127\.0\.0\.1:$port;lr;nsip=\w+>$/,
    'Record-Route twice: IPv6 side, then IPv4 side');

# the callee's BYE back to the IPv4 caller

my @rr = split /,\s*/, $rr // '';
udp_send($v6, "BYE sip:alice\@127.0.0.1:" . $c->sockport . " SIP/2.0\r\n"
    . "Via: SIP/2.0/UDP [::1]:" . $v6->sockport . ";branch=z9hG4bK-v6bye\r\n"
    . "Route: " . join(', ', @rr) . "\r\nMax-Forwards: 70\r\n"
    . "From: <sip:bob\@example.com>;tag=uas\r\n"
    . "To: <sip:tester\@example.com>;tag=x\r\n"
    . "Call-ID: $cid\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
    '::1', $port);
my ($got) = udp_recv($c, 3);
like($got && $got->[0] // '', qr/^BYE sip:alice\@127\.0\.0\.1:\d+ SIP\/2\.0\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:$port;/,
    'IPv6 callee\'s BYE reached the IPv4 caller from our IPv4 side');

# 3000 bytes from UDP: over TCP

my $big = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
    via_port => $c->sockport, body => 'v=0' . ("\r\na=x-padding:" . 'x' x 60)
    x 45 . "\r\n");
ok(length($big) > 3000, 'a ' . length($big) . '-byte INVITE');

my $tcp = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port(3), Listen => 5, ReuseAddr => 1) or die;
udp_send($c, $big, '127.0.0.1', $t->port(2));
my $sel = IO::Select->new($tcp);
my $over_tcp = '';
if ($sel->can_read(5)) {
    my $a = $tcp->accept;
    my ($m) = stream_recv($a, 1, 5);
    $over_tcp = $m->[0] // '';
}
like($over_tcp, qr/^INVITE .*\r\nVia: SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;branch=/s,
    'went on over TCP');

# the next hop takes no TCP: over UDP after all

my $u = udp_socket(port => $t->port(5));
$big =~ s/^(Call-ID: )/$1other-/m;
$big =~ s/branch=z9hG4bK/branch=z9hG4bKother/;
udp_send($c, $big, '127.0.0.1', $t->port(4));
($got) = udp_recv($u, 5);
like($got && $got->[0] // '', qr/^INVITE .*\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=/s,
    'no TCP there: over UDP');

# sip_advertise: the address peers see in our Via and Record-Route

my $adv = udp_socket(port => $t->port(7));
udp_send($c, sip_request(method => 'OPTIONS', uri => 'sip:bob@example.com',
    via_port => $c->sockport), '127.0.0.1', $t->port(6));
($got) = udp_recv($adv, 3);
my $p6 = $t->port(6);
like($got && $got->[0] // '', qr/^Via: SIP\/2\.0\/UDP 192\.0\.2\.7:$p6;branch=/m,
    'sip_advertise in Via');
like($got && $got->[0] // '', qr/^Record-Route: <sip:192\.0\.2\.7:$p6;lr;nsip=/m,
    'sip_advertise in Record-Route');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
