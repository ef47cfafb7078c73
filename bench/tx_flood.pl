#!/usr/bin/perl

# An INVITE flood with fresh branches from one address to a sip_pass
# that never answers, default limits, one worker: how many transactions
# the worker took, and what its resident memory did.  Loopback only; run
# inside "unshare -n":
#
#   unshare -n bash -c 'ip link set lo up; perl bench/tx_flood.pl N BODY'
#
# N INVITEs (20000), each with a body of BODY bytes (0); NGX_SIP_MODULE
# names the module to try (objs/ngx_stream_sip_module.so).

use strict;
use warnings;

use IO::Select;
use Time::HiRes qw(sleep time);
use FindBin;

use lib "$FindBin::Bin/../t/lib";
use NgxSip;

my $n = $ARGV[0] || 20000;
my $bodylen = $ARGV[1] || 0;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 1);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_9%%;
    }
}
EOF

my $up = udp_socket(port => $t->port(9));

$t->run();

my ($worker) = `pgrep -P $t->{pid}` =~ /(\d+)/;

sub rss {
    open my $fh, '<', "/proc/$worker/status" or return 0;
    my ($kb) = join('', <$fh>) =~ /^VmRSS:\s+(\d+)/m;
    return $kb;
}

my $f = udp_socket(addr => '127.0.0.9');
my $sel = IO::Select->new($f);
my $upsel = IO::Select->new($up);
my %codes;
my $body = $bodylen ? 'v=0' . ('x' x ($bodylen - 5)) . "\r\n" : '';
my $size = 0;

my $drain = sub {
    my ($wait) = @_;
    while ($sel->can_read($wait)) {
        my $buf;
        $f->recv($buf, 65535);
        my $r = parse_sip($buf) or next;
        $codes{$r->{code}}++;
    }
    while ($upsel->can_read(0)) {
        my $buf;
        $up->recv($buf, 65535);
    }
};

my $before = rss();
my $t0 = time();
my $batch = $bodylen > 10000 ? 2 : 50;

for my $i (1 .. $n) {
    my $m = sip_request(method => 'INVITE',
        uri => 'sip:+15550100@carrier.test', via_host => '127.0.0.9',
        via_port => $f->sockport, rport => 1, call_id => "flood-$i",
        branch => "z9hG4bKflood$i", body => $body,
        headers => [['Content-Type', 'application/sdp']]);
    $size = length $m;
    udp_send($f, $m, '127.0.0.1', $t->port(0));
    next if $i % $batch;
    sleep 0.005;
    $drain->(0);
}

$drain->(1);
my $during = rss();
my $took = time() - $t0;
my $admitted = $codes{100} || 0;

printf "command:  perl bench/tx_flood.pl %d %d\n", $n, $bodylen;
printf "module:   %s\n", $t->{module};
printf "INVITEs:  %d of %d bytes in %.1f s from one address\n", $n, $size,
    $took;
printf "answers:  %s\n", join(', ', map { "$codes{$_} x $_" } sort keys %codes);
printf "worker RSS before: %d kB, after: %d kB (+%d kB)\n", $before, $during,
    $during - $before;
printf "per admitted transaction: %.0f bytes, %.2f times the message\n",
    ($during - $before) * 1024 / ($admitted || 1),
    ($during - $before) * 1024 / ($admitted || 1) / $size
    if $admitted;
