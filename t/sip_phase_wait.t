#!/usr/bin/perl

# A phase that waits (sip_debug_delay), 4 workers and 1, and the same
# flows without it: an INVITE over UDP to a fake UAS whose retransmissions
# arrive while it waits, forwarded once; a CANCEL of an INVITE that
# waits (200, then 487); a REGISTER, its retransmission absorbed;
# pipelined requests on one TCP and one TLS connection, answered in
# order, and three messages over WS and WSS; an INVITE over TCP to the
# UAS; TCP connections closed while their message waits, nginx serving
# on.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use NgxSip;
use NgxWebSocket;

my $DELAY = 0.5;

*sip_ack = \&NgxSip::sip_ack;

# with one worker, the worker that reads a datagram is the one it waits
# in: its answer after a reload must not go from the closed listening

for my $run ([$DELAY, 4], [0, 4], [$DELAY, 1]) {
    my ($delay, $workers) = @$run;
    my $w = ($delay ? "delay ${DELAY}s" : 'no delay') . ", $workers workers";
    my $t = NgxSip->new()->make_cert('localhost');
    my $directive = $delay ? 'sip_debug_delay ' . ($DELAY * 1000) . 'ms;'
        : '';

    $t->write_conf(<<"EOF", workers => $workers);
stream {
    sip_location_zone loc:1m;

    log_format sip '\$sip_method \$sip_status \$sip_cseq';

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_timers 4s 8s 5s;
        $directive
        access_log %%PREFIX%%/logs/sip.log sip;
    }
}
EOF

    # T1 of 4 s: no Timer A copy of an INVITE reaches the UAS during a
    # flow, even under load; every INVITE it counts is a forwarding
    my $uas = udp_socket(port => $t->port(1));
    $t->run();

    my $proxy = $t->port(0);
    my %seen;    # method => count, at the UAS

    # the UAS: every INVITE busy, ACKs counted
    my $uas_serve = sub {
        my ($buf, $peer) = @_;
        my $m = sip_method($buf) or return;
        $seen{$m}++;
        $uas->send(sip_response($buf, 486, 'Busy Here'), 0, $peer)
            if $m eq 'INVITE';
    };

    # sends each [time, message] of $msgs (s from now), reads the
    # client's answers and serves the UAS for $for s; ACKs a non-2xx
    # final to the INVITE $req (the first message unless given)
    my $udp_call = sub {
        my ($c, $msgs, $for, $req) = @_;
        $req //= $msgs->[0][1];
        my $sel = IO::Select->new($c, $uas);
        my $start = time();
        my @got;
        my @todo = @$msgs;
        while (time() - $start < $for) {
            while (@todo && time() - $start >= $todo[0][0]) {
                udp_send($c, (shift @todo)->[1], '127.0.0.1', $proxy);
            }
            my $wait = @todo ? $todo[0][0] - (time() - $start) : 0.05;
            $wait = 0.01 if $wait < 0.01;
            for my $s ($sel->can_read($wait)) {
                my $buf;
                my $peer = $s->recv($buf, 65535);
                next unless defined $peer;
                if ($s == $uas) {
                    $uas_serve->($buf, $peer);
                    next;
                }
                my $r = parse_sip($buf) or next;
                $r->{at} = time() - $start;
                push @got, $r;
                if ($r->{code} >= 300 && $buf =~ /^CSeq:\s*\d+ INVITE/mi) {
                    udp_send($c, sip_ack($req, $buf), '127.0.0.1',
                        $proxy);
                }
            }
        }
        return @got;
    };

    # 1: INVITE over UDP, sent again twice while it waits

    my $c = udp_socket();
    my $invite = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $c->sockport, call_id => "wait-inv-$delay");
    %seen = ();
    my @got = $udp_call->($c, [[0, $invite], [0.1, $invite],
        [0.25, $invite]], 2.5 + $delay);
    my @finals = grep { $_->{code} >= 200 } @got;
    is($seen{INVITE}, 1, "$w: UDP INVITE and its retransmissions: "
        . 'forwarded once');
    is($finals[0] && $finals[0]{code}, 486, "$w: UDP INVITE: 486 relayed");
    ok($seen{ACK}, "$w: UDP INVITE: the hop-by-hop ACK to the UAS");
    if ($delay) {

        # a retransmission processed after the wait would meet the
        # transaction, which answers it again
        is(join(' ', map { $_->{code} } @got), '100 486',
            "$w: UDP INVITE: the retransmissions absorbed while it waited");
        ok(@got && $got[0]{at} >= $DELAY * 0.9,
            "$w: nothing answered before the delay is over ("
            . (@got ? sprintf('%.2f', $got[0]{at}) : 'none') . 's)');
    }

    # 2: CANCEL of an INVITE that waits: 200, then 487, nothing forwarded

    if ($delay) {
        $invite = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
            via_port => $c->sockport, call_id => 'wait-cancel');
        (my $cancel = $invite) =~ s/^INVITE /CANCEL /;
        $cancel =~ s/^(CSeq: \d+) INVITE/$1 CANCEL/m;
        %seen = ();
        @got = $udp_call->($c, [[0, $invite], [0.1, $cancel]],
            2.5 + $delay);
        my ($c200) = grep { $_->{code} == 200 } @got;
        my ($c487) = grep { $_->{code} == 487 } @got;
        ok($c200 && $c200->{h}{cseq}[0] =~ /CANCEL/,
            "$w: CANCEL of a waiting INVITE: 200");
        ok($c487 && $c487->{h}{cseq}[0] =~ /INVITE/,
            "$w: CANCEL of a waiting INVITE: the INVITE 487");
        ok($c200 && $c487 && $c200->{at} < $c487->{at},
            "$w: the CANCEL answered at once, the INVITE when it resumes");
        ok(!$seen{INVITE}, "$w: a cancelled INVITE is not forwarded");
    }

    # 3: REGISTER over UDP, sent again while it waits

    my $register = sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:carol@example.com', from => 'sip:carol@example.com',
        via_port => $c->sockport, call_id => "wait-reg-$delay",
        headers => [['Contact', '<sip:carol@127.0.0.1:7777>'],
            ['Expires', '600']]);
    @got = $udp_call->($c, [[0, $register], [0.1, $register]],
        1 + $delay);
    ok(@got && $got[0]{code} == 200
        && ($got[0]{h}{contact}[0] // '') =~ /carol\@127\.0\.0\.1:7777/,
        "$w: UDP REGISTER: 200 with the binding");
    is(scalar(@got), 1, "$w: UDP REGISTER: one answer for two copies")
        if $delay;

    # 4: pipelined requests on one TCP and one TLS connection

    for my $tr ('tcp', 'tls') {
        my $s = tcp_connect(port => $t->port($tr eq 'tls' ? 2 : 0),
            ssl => $tr eq 'tls');
        my $T = uc $tr;
        my $start = time();
        stream_send($s, join '',
            sip_request(method => 'OPTIONS', transport => $T, cseq => 1,
                via_port => $s->sockport, call_id => "wait-$tr-1"),
            sip_request(method => 'REGISTER', uri => 'sip:example.com',
                transport => $T, cseq => 2, via_port => $s->sockport,
                to => "sip:dave-$tr\@example.com", call_id => "wait-$tr-2",
                from => "sip:dave-$tr\@example.com",
                headers => [['Contact', "<sip:dave\@127.0.0.1:7778>"]]),
            sip_request(method => 'OPTIONS', transport => $T, cseq => 3,
                via_port => $s->sockport, call_id => "wait-$tr-3"));
        my ($msgs) = stream_recv($s, 3, 5 + 3 * $delay);
        my @r = map { parse_sip($_) } @$msgs;
        is(join(' ', map { "$_->{code}/" . ($_->{h}{cseq}[0] =~ /(\d+)/)[0] }
            grep { $_ } @r), '200/1 200/2 200/3',
            "$w: three pipelined requests over $T answered in order");
        ok(time() - $start >= 3 * $DELAY * 0.9,
            "$w: over $T each waited in turn")
            if $delay;

        # an INVITE to the UAS on the same connection

        %seen = ();
        my $inv = sip_request(method => 'INVITE',
            uri => 'sip:bob@example.com', transport => $T, cseq => 4,
            via_port => $s->sockport, call_id => "wait-$tr-inv");
        stream_send($s, $inv);
        my $sel = IO::Select->new($uas);
        my $end = time() + 3 + $delay;
        while (time() < $end && !$seen{INVITE}) {
            next unless $sel->can_read($end - time());
            my $buf;
            my $peer = $uas->recv($buf, 65535);
            $uas_serve->($buf, $peer) if defined $peer;
        }
        ($msgs) = stream_recv($s, 2, 3);
        my @codes = map { $_->{code} } grep { $_ } map { parse_sip($_) }
            @$msgs;
        is($seen{INVITE}, 1, "$w: INVITE over $T forwarded once");
        ok(grep({ $_ == 486 } @codes), "$w: INVITE over $T: 486 relayed");
        stream_send($s, sip_ack($inv, $msgs->[-1] // ''));
        close $s;
    }

    # 4b: the same over a WebSocket (WS and WSS): three messages in
    # back-to-back frames, the decoder stopped while the first waits (it
    # writes the next message where the waiting one is), then a ping

    for my $tr ('ws', 'wss') {
        my $ws = NgxWebSocket->new(port => $t->port($tr eq 'wss' ? 2 : 0),
            ssl => $tr eq 'wss');
        my $T = uc $tr;
        my $port = $ws->sock->sockport;
        my $start = time();
        $ws->raw(join '', map { ws_frame(opcode => 1, payload => $_) }
            sip_request(method => 'OPTIONS', transport => $T, cseq => 1,
                via_port => $port, call_id => "wait-$tr-1"),
            sip_request(method => 'REGISTER', uri => 'sip:example.com',
                transport => $T, cseq => 2, via_port => $port,
                to => "sip:erin-$tr\@example.com", call_id => "wait-$tr-2",
                from => "sip:erin-$tr\@example.com",
                headers => [['Contact', "<sip:erin\@x.invalid;transport=ws>"]]),
            sip_request(method => 'OPTIONS', transport => $T, cseq => 3,
                via_port => $port, call_id => "wait-$tr-3"));
        $ws->send_frame(opcode => 9, payload => "p-$tr");
        my @r;
        for (1 .. 3) {
            my $m = $ws->recv_sip(5 + 3 * $delay);
            last unless defined $m;
            push @r, parse_sip($m);
        }
        is(join(' ', map { "$_->{code}/" . ($_->{h}{cseq}[0] =~ /(\d+)/)[0] }
            grep { $_ } @r), '200/1 200/2 200/3',
            "$w: three messages over $T answered in order");
        ok(time() - $start >= 3 * $DELAY * 0.9,
            "$w: over $T each waited in turn")
            if $delay;
        my $f = $ws->recv_frame(3);
        ok($f && $f->{opcode} == 10 && $f->{payload} eq "p-$tr",
            "$w: over $T the ping answered after them");
    }

    # 5: TCP connections closed while their message waits

    for my $i (1 .. 5) {
        my $s = tcp_connect(port => $proxy);
        stream_send($s, sip_request(method => 'OPTIONS', transport => 'TCP',
            via_port => $s->sockport, call_id => "wait-closed-$i"));
        close $s;
    }
    {
        my $s = tcp_connect(port => $proxy);
        my $rst = tcp_connect(port => $proxy);
        stream_send($rst, sip_request(method => 'OPTIONS', transport => 'TCP',
            via_port => $rst->sockport, call_id => 'wait-rst'));
        setsockopt($rst, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
            pack('ii', 1, 0));
        close $rst;
        sleep($delay + 0.2);
        stream_send($s, sip_request(method => 'OPTIONS', transport => 'TCP',
            via_port => $s->sockport, call_id => 'wait-after'));
        my ($msgs) = stream_recv($s, 1, 3 + $delay);
        my $r = parse_sip($msgs->[0]);
        is($r && $r->{code}, 200,
            "$w: closed connections while messages waited, then served");
    }

    # 6: a reload while requests wait: the leaving workers finish them

    if ($delay) {
        my $s = tcp_connect(port => $proxy);
        stream_send($s, sip_request(method => 'OPTIONS', transport => 'TCP',
            via_port => $s->sockport, call_id => 'wait-reload-tcp'));
        $invite = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
            via_port => $c->sockport, call_id => 'wait-reload');
        udp_send($c, $invite, '127.0.0.1', $proxy);
        sleep 0.15;
        kill 'HUP', $t->{pid};
        %seen = ();
        @got = $udp_call->($c, [], 2 + $delay, $invite);
        @finals = grep { $_->{code} >= 200 } @got;
        is($finals[0] && $finals[0]{code}, 486,
            "$w: reload while a UDP INVITE waits: 486 relayed");
        is($seen{INVITE}, 1, "$w: reload while a UDP INVITE waits: "
            . 'forwarded once');
        my ($msgs) = stream_recv($s, 1, 3);
        my $r = parse_sip($msgs->[0]);
        is($r && $r->{code}, 200,
            "$w: reload while a TCP request waits: answered");
        close $s;
    }

    if ($delay) {
        my $log = $t->read_log();
        my $n = () = $log =~ /dropped: its session closed while it waited/g;
        ok($n >= 1, "$w: a message whose connection closed is dropped "
            . "($n logged)");
    }

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
