#!/usr/bin/perl

# sip_worker_sockets: each worker sends the requests it forwards over UDP
# from a socket of its own, named in its Via, so that their answers come
# straight back to it.  A raw UDP caller and callee: the Via port is a
# worker socket's and the request comes from it; an answer to it reaches
# the caller, so does one to the listen's port (a peer that ignores the
# Via); off by default; an answer to an old worker's socket after a
# reload; then SIPp calls through 4 workers and 1.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = `which sipp 2>/dev/null`;
chomp $sipp;

my %scenarios = %{ sipp_scenarios() };

for my $workers (4, 1) {
    my $t = NgxSip->new();
    my $w = "$workers workers";

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_worker_sockets on;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }
}
EOF

    $t->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
    $t->run();

    my $proxy = $t->port(0);
    my $uas = udp_socket(port => $t->port(1));
    my $client = udp_socket();
    my $cport = $client->sockport;

    my @ports = $t->read_log()
        =~ /SIP worker socket for 127\.0\.0\.1:$proxy on port (\d+)/g;
    is(scalar @ports, $workers, "$w: a socket per worker");

    # an INVITE through, answered where its Via says

    my $invite = sub {
        my ($port) = @_;
        my $inv = sip_request(method => 'INVITE',
            uri => 'sip:bob@example.com', via_port => $cport);
        udp_send($client, $inv, '127.0.0.1', $port);
        my ($got) = udp_recv($uas, 3);
        return $got ? @$got : ();
    };

    my ($fwd, undef, $src) = $invite->($proxy);
    my ($via) = ($fwd // '') =~ m{^Via: SIP/2\.0/UDP 127\.0\.0\.1:(\d+);}m;

    ok($via && $via != $proxy && grep({ $_ == $via } @ports),
        "$w: the Via names a worker socket");
    is($src, $via, "$w: the request comes from it");

    # the answers to the caller, 100 Trying first: whether a 200 came

    my $got200 = sub {
        return grep { $_->[0] =~ m{^SIP/2\.0 200 } } udp_recv($client, 2, 1);
    };

    udp_send($uas, sip_response($fwd, 200, 'OK'), '127.0.0.1', $via);
    ok($got200->(), "$w: its 200 reaches us");

    # an answer to the listen's port: passed to the worker that has it

    ($fwd) = $invite->($proxy);
    udp_send($uas, sip_response($fwd, 200, 'OK'), '127.0.0.1', $proxy);
    ok($got200->(), "$w: a 200 to the listen's port reaches us");

    # off by default

    ($fwd) = $invite->($t->port(2));
    like($fwd // '', qr{^Via: SIP/2\.0/UDP 127\.0\.0\.1:${\ $t->port(2)};}m,
        "$w: without it the Via names the listen");
    udp_send($uas, sip_response($fwd, 200, 'OK'), '127.0.0.1', $t->port(2));
    $got200->();

    # a reload while a request waits: its worker stays, and so does its
    # socket, until the answer has come

    ($fwd) = $invite->($proxy);
    ($via) = ($fwd // '') =~ m{^Via: SIP/2\.0/UDP 127\.0\.0\.1:(\d+);}m;

    my $started = () = $t->read_log() =~ /start worker process/g;
    kill 'HUP', $t->{pid};

    for (1 .. 50) {
        my $now = () = $t->read_log() =~ /start worker process/g;
        last if $now >= $started + $workers;
        sleep 0.1;
    }

    udp_send($uas, sip_response($fwd, 180, 'Ringing'), '127.0.0.1', $via);
    udp_send($uas, sip_response($fwd, 200, 'OK'), '127.0.0.1', $via);
    ok($got200->(), "$w: after a reload the old worker's socket answers");

    my @new = $t->read_log()
        =~ /SIP worker socket for 127\.0\.0\.1:$proxy on port (\d+)/g;
    is(scalar @new, 2 * $workers, "$w: the new workers have their own");

    # real calls: INVITE/100/180/200/ACK/BYE/200 with Record-Route

    close $uas;

    SKIP: {
        skip 'no sipp', 1 unless $sipp;

        sipp_call($t, $sipp, 'uas_call', 'uac_call', 200, $proxy, $t->port(1),
            "$w: 200 SIPp calls");
    }

    is($t->crashes(), '', "$w: no alerts or crashes");

    $t->stop();
}

done_testing();
