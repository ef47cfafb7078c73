#!/usr/bin/perl

# The nfl parameter of our Record-Route names the worker holding a TCP
# or TLS caller's connection; a datagram whose Route carries one is
# passed to that worker.  A forged one (no valid tag for the Call-ID)
# must not pick the worker: 4 workers, 60 BYEs with
# nfl=0.1.<made-up tag> and fresh Call-IDs are handled by the owners of
# their Call-IDs (several workers), as if nfl were not there, and each
# gets the answer of a route that is not ours.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    log_format sip '$pid $sip_method $sip_status $sip_call_id';
    access_log %%PREFIX%%/logs/sip.log sip;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_record_route on;
        sip_pass 127.0.0.1:%%PORT_9%%;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $c = udp_socket();
my %codes;

for my $i (1 .. 60) {
    my $bye = sip_request(method => 'BYE', uri => 'sip:alice@192.0.2.1',
        via_port => $c->sockport, call_id => "forged-$i",
        headers => [['Route', "<sip:127.0.0.1:$port;lr;nsip=0123456789abcdef;"
            . 'nfl=0.1.0123456789abcdef>']],
        to => 'sip:alice@example.com');
    $bye =~ s/^(To: <[^>\r]*>)/$1;tag=x/m;
    udp_send($c, $bye, '127.0.0.1', $port);
    my ($got) = udp_recv($c, 2);
    my $r = parse_sip($got && $got->[0]);
    $codes{$r ? $r->{code} : 0}++;
}

is($codes{404}, 60, 'each forged route: 404 (not our route)');

sleep 0.5;

my %pids;
for (split /\n/, $t->read_log('sip.log')) {
    my ($pid, $status) = /^(\d+) BYE (\d+) forged-/ or next;
    $pids{$pid}++;
}

diag('BYEs with a forged nfl, handled by workers: '
    . join(', ', map { "$_: $pids{$_}" } sort keys %pids));
ok(keys %pids >= 2, 'spread over the owners of their Call-IDs, '
    . 'not all passed to the worker nfl names');

is($t->crashes(), '', 'no crash, no alert');

done_testing();
