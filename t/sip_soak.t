#!/usr/bin/perl

# The short soak (make soak runs the long one): 20000 requests over one
# TCP connection, one TLS connection and one UDP socket, after 10000 on
# each to warm the tables; OPTIONS proxied to a TCP trunk and INVITEs to
# phones on their flows, every $sip_* variable and $upstream_addr in the
# access log (t/lib/NgxSoak.pm).  Nothing a message allocates may stay
# with its connection: the worker's RSS must not grow by 1 MB, and each
# log line names the upstream of its own message only.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSoak;

# Under make test-asan every pool allocation is its own malloc() with
# redzones, and freed memory waits in ASan's quarantine: RSS says nothing
# of the module there.  The traffic runs all the same (for ASan to see
# it); the growth is checked by make test-t.
my $asan = $ENV{NGX_SIP_ASAN};

my $count = $ENV{SOAK_COUNT} || 20000;
my $r = eval {
    soak(count => $count, warm => 10000, workers => 1,
        $asan ? (abort_kb => 4 * 1024 * 1024) : (),
        say => sub { note($_[0]) });
};

is($@, '', 'the soak ran to its end');

if ($r) {
    SKIP: {
        skip 'RSS under ASan is its own (make test-t checks it)', 1
            if $asan;
        cmp_ok($r->{growth_kb}, '<', 1024,
            "worker RSS growth under 1 MB over $count requests per client"
            . " ($r->{growth_kb} kB)");
    }
    is($r->{upstream_lists}, 0, 'no log line names more than one upstream');
    cmp_ok($r->{upstreams}, '>=', 3 * $count,
        'every answer has its upstream in its log line');
    cmp_ok($r->{max_line}, '<', 512,
        "log lines do not grow ($r->{max_line} octets at most)");
    is($r->{crashes}, '', 'no worker crashed');
}

done_testing();
