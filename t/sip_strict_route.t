#!/usr/bin/perl

# Strict routers (RFC 2543 style, RFC 3261 16.4 and 16.6 step 7), 4
# workers: a request whose Request-URI is our Record-Route (a strict
# router before us) goes to the last Route value, which is taken out;
# a request whose next Route has no "lr" goes to that strict router
# with its URI as the Request-URI and ours last in the Route.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }
}
EOF2

$t->run();

my $port = $t->port(0);
my $c = udp_socket();
my $uas = udp_socket(port => $t->port(1));
my $cid = 'strict-' . int(rand(1e9));
my $contact = '<sip:bob@127.0.0.1:' . $uas->sockport . '>';

# a dialog through us, for a Record-Route of ours

my $inv;
sip_exchange(client => $c, port => $port, after => 0.2,
    uas => [[$uas, sub {
        my $m = sip_method($_[0]) or return;
        $inv //= $_[0] if $m eq 'INVITE';
        return $m eq 'INVITE'
            ? sip_response($_[0], 200, 'OK', headers => [['Contact', $contact]])
            : ();
    }]],
    msg => sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $c->sockport, call_id => $cid));

my ($rr) = ($inv // '') =~ /^Record-Route: <([^>]+)>\r$/m;
ok($rr, "our Record-Route: $rr");

sub request {
    my ($ruri, $route, $branch) = @_;
    return "BYE $ruri SIP/2.0\r\n"
        . "Via: SIP/2.0/UDP 127.0.0.1:" . $c->sockport
        . ";branch=z9hG4bK-$branch;rport\r\n"
        . "Route: $route\r\nMax-Forwards: 70\r\n"
        . "From: <sip:tester\@example.com>;tag=x\r\n"
        . "To: <sip:bob\@example.com>;tag=uas\r\n"
        . "Call-ID: $cid\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
}

# a strict router before us: Request-URI ours, the target last in Route

my $target = 'sip:bob@127.0.0.1:' . $uas->sockport;
udp_send($c, request($rr, "<$target>", 's1'), '127.0.0.1', $port);
my ($got) = udp_recv($uas, 3);
like($got && $got->[0] // '', qr/^BYE \Q$target\E SIP\/2\.0\r\n/,
    'strict router before us: the last Route is the Request-URI');
unlike($got && $got->[0] // '', qr/^Route:/m, 'and it is taken out');

# a strict router after us: it gets its own URI, the Request-URI goes last

my $strict = udp_socket();
my $strict_uri = 'sip:127.0.0.1:' . $strict->sockport;
udp_send($c, request($target, "<$rr>, <$strict_uri>", 's2'), '127.0.0.1',
    $port);
($got) = udp_recv($strict, 3);
like($got && $got->[0] // '', qr/^BYE \Q$strict_uri\E SIP\/2\.0\r\n/,
    'strict router next: its URI is the Request-URI');
like($got && $got->[0] // '', qr/^Route: <\Q$target\E>\r$/m,
    'the Request-URI is the last Route');
unlike($got && $got->[0] // '', qr/nsip=/, 'our Route is gone');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
