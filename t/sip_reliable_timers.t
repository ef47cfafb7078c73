#!/usr/bin/perl

# Server transactions of a caller on a connection (RFC 3261 17.2): a
# non-2xx final answer to an INVITE is not sent again (Timer G is for
# UDP alone), and a completed non-INVITE goes at once (Timer J is 0), so
# a TCP or TLS trunk's completed MESSAGEs do not count against
# sip_transactions_per_source; over UDP they stay T4 and do.  1 and 4
# workers.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NgxSip;

my $CAP = 5;
my $N = 3 * $CAP;

for my $workers (1, 4) {
    my $w = "$workers workers";
    my $t = NgxSip->new()->make_cert('localhost');

    $t->write_conf(<<"EOF", workers => $workers);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_timers 100ms 400ms 5s;
        sip_transactions_per_source $CAP;
    }
}
EOF

    my $uas = udp_socket(port => $t->port(1));
    $t->run();

    my $sel = IO::Select->new($uas);

    # the UAS: a MESSAGE 200, an INVITE 486; a second copy of a request
    # would be a retransmission of ours (T1 of 100 ms)
    my %seen;
    my $serve = sub {
        my ($for) = @_;
        my $end = time() + $for;
        while ((my $left = $end - time()) > 0) {
            last unless $sel->can_read($left);
            my $buf;
            my $peer = $uas->recv($buf, 65535) or last;
            my $m = sip_method($buf) or next;
            my ($branch) = $buf =~ /^Via:[^\r\n]*branch=([^;\r\n]+)/mi;
            next if $seen{"$m $branch"}++;
            $uas->send(sip_response($buf, 200, 'OK'), 0, $peer)
                if $m eq 'MESSAGE';
            $uas->send(sip_response($buf, 486, 'Busy Here'), 0, $peer)
                if $m eq 'INVITE';
        }
    };

    for my $tr ('tcp', 'tls') {
        my $T = uc $tr;
        my $s = tcp_connect(port => $t->port($tr eq 'tls' ? 2 : 0),
            ssl => $tr eq 'tls');

        # MESSAGEs one after another, each answered before the next

        my @codes;
        for my $i (1 .. $N) {
            stream_send($s, sip_request(method => 'MESSAGE',
                uri => 'sip:bob@example.com', transport => $T,
                via_port => $s->sockport, cseq => $i,
                call_id => "rel-$tr-$workers-$i"));
            $serve->(0.3);
            my ($msgs) = stream_recv($s, 1, 2);
            push @codes, map { $_->{code} } grep { $_ }
                map { parse_sip($_) } @$msgs;
        }
        is(join(' ', @codes), join(' ', ('200') x $N),
            "$w: $N MESSAGEs over $T, a cap of $CAP: all answered 200");

        # an INVITE answered 486: the 486 once, not again before the ACK

        stream_send($s, sip_request(method => 'INVITE',
            uri => 'sip:bob@example.com', transport => $T,
            via_port => $s->sockport, call_id => "rel-$tr-$workers-inv"));
        $serve->(0.3);
        my ($msgs) = stream_recv($s, 5, 1.5);
        my @inv = map { $_->{code} } grep { $_ }
            map { parse_sip($_) } @$msgs;
        is(join(' ', grep { $_ >= 200 } @inv), '486',
            "$w: INVITE over $T: its 486 sent once (no Timer G)");
        close $s;
    }

    # over UDP the completed MESSAGEs stay T4 (5 s) and count: the cap.
    # Their own address (the cap is per source, and the INVITEs above
    # from 127.0.0.1 still count), one Call-ID (one worker: the cap is
    # per worker)

    my $c = udp_socket(addr => '127.0.0.3');
    my @codes;
    for my $i (1 .. $N) {
        udp_send($c, sip_request(method => 'MESSAGE',
            uri => 'sip:bob@example.com', via_host => '127.0.0.3',
            via_port => $c->sockport, cseq => $i,
            call_id => "rel-udp-$workers"), '127.0.0.1', $t->port(0));
        $serve->(0.2);
        my @got = udp_recv($c, 1);
        push @codes, map { $_->{code} } grep { $_ }
            map { parse_sip($_->[0]) } @got;
    }
    is(scalar(grep { $_ == 200 } @codes), $CAP,
        "$w: over UDP $CAP of $N MESSAGEs admitted within T4");
    is(scalar(grep { $_ == 503 } @codes), $N - $CAP,
        "$w: over UDP the others refused (503)");

    # and over UDP a 486 is sent again until the ACK (Timer G)

    my $c2 = udp_socket(addr => '127.0.0.2');
    udp_send($c2, sip_request(method => 'INVITE',
        uri => 'sip:bob@example.com', via_host => '127.0.0.2',
        via_port => $c2->sockport, call_id => "rel-udp-$workers-inv"),
        '127.0.0.1', $t->port(0));
    $serve->(0.3);
    my @got = udp_recv($c2, 1.2, 1);
    my @inv = grep { $_ >= 200 } map { $_->{code} } grep { $_ }
        map { parse_sip($_->[0]) } @got;
    ok(@inv >= 2 && !grep({ $_ != 486 } @inv),
        "$w: INVITE over UDP: its 486 sent again before the ACK ("
        . scalar(@inv) . " copies)");

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
