#!/usr/bin/perl

# With 4 workers and no reuseport, any worker may read any datagram; each
# is handled by the worker its Call-ID hashes to (passed between workers
# when needed), which is where transaction state will live.  Checked in
# the access log: every datagram logged once, by the same worker for the
# same Call-ID, with its real source address; also after a reload.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    log_format w '$pid $sip_call_id $remote_port $sip_status';
    access_log %%PREFIX%%/logs/w.log w;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
    }
}
EOF

$t->run();

my $port = $t->port(0);

sub round {
    my ($tag) = @_;

    my @socks = map { udp_socket() } 1 .. 4;
    my $answered = 0;

    for my $i (1 .. 12) {
        for my $s (@socks) {
            udp_send($s, sip_request(via_port => $s->sockport, rport => 1,
                call_id => "$tag-$i"), '127.0.0.1', $port);
            my ($got) = udp_recv($s, 3);
            my $r = parse_sip($got && $got->[0]);
            $answered++ if $r && $r->{code} == 200 && $got->[2] == $port
                && $r->{h}{via}[0] =~ /rport=${\ $s->sockport}\b/;
        }
    }

    return $answered;
}

sub check_log {
    my ($tag) = @_;

    sleep 0.3;

    my (%pid, %lines);

    for (split /\n/, $t->read_log('w.log')) {
        my ($pid, $cid, $rport, $status) = split / /;
        next unless $cid =~ /^\Q$tag\E-/;
        $pid{$cid}{$pid} = 1;
        $lines{$cid}++;
    }

    my $one_each = grep({ $lines{$_} == 4 } keys %lines);
    my $one_pid = grep({ keys(%{$pid{$_}}) == 1 } keys %pid);
    my %all = map { %{$pid{$_}} } keys %pid;

    is($one_each, 12, "$tag: every datagram logged once");
    is($one_pid, 12, "$tag: one worker per Call-ID");
    cmp_ok(scalar(keys %all), '>=', 2, "$tag: Call-IDs spread over workers");
}

is(round('a'), 48, 'every datagram answered from the SIP port, at its rport');
check_log('a');

kill 'HUP', $t->{pid};
sleep 1.5;

is(round('b'), 48, 'after reload: every datagram answered');
check_log('b');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
