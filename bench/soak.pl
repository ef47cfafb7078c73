#!/usr/bin/perl

# make soak: COUNT requests (default 1,000,000) over one TCP connection,
# one TLS connection and one UDP socket, each after a warm-up of WARM on
# the same connections; see t/lib/NgxSoak.pm for what is sent.  Prints
# the RSS of every worker at the start and at the end and the length of
# the access log lines; fails when a worker grew by LIMIT kB or more
# (default 2048), when a log line names more than one upstream, or when
# a worker crashed.  Loopback only: run inside "unshare -n" (make soak
# does).  Every SOAK_PROGRESS seconds (60) it says how far each client
# is and the RSS of the workers.
#
#   bench/soak.pl [COUNT] [WORKERS] [WARM] [LIMIT]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use NgxSoak;

my ($count, $workers, $warm, $limit) = @ARGV;
$count ||= 1000000;
$workers ||= 2;
$warm ||= 20000;
$limit ||= 2048;

$| = 1;

my $r = soak(count => $count, workers => $workers, warm => $warm,
    progress => $ENV{SOAK_PROGRESS} || 60);

my @bad;
push @bad, "a worker grew by $r->{growth_kb} kB (limit $limit)"
    if $r->{growth_kb} >= $limit;
push @bad, "$r->{upstream_lists} log lines name more than one upstream"
    if $r->{upstream_lists};
push @bad, "crashes: $r->{crashes}" if $r->{crashes};

print @bad ? "FAIL: " . join('; ', @bad) . "\n" : "PASS\n";
exit(@bad ? 1 : 0);
