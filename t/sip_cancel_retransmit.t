#!/usr/bin/perl

# The CANCEL the proxy sends to a ringing branch is a non-INVITE client
# transaction of its own (RFC 3261 9.1, 17.1.2): over UDP it is sent
# again (Timer E: T1, 2*T1, ... up to T2) with the INVITE's branch until
# its 200, and no longer than 64*T1 (Timer F) when no answer comes; over
# TCP it is sent once.  The INVITE still ends with 487.  1 and 4 workers.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

# T1 50 ms: Timer F is 3.2 s
my ($T1, $T2) = (0.05, 0.4);

for my $workers (1, 4) {
    my $t = NgxSip->new();

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
        sip_timers 50ms 400ms 500ms;
        sip_invite_timeout 6s;
    }
}
EOF

    $t->run();

    # silent last: its 10 s leave the others' Timer F time to fire
    tcp_callee($t, $workers);
    lossy($t, $workers);
    my $silent = silent($t, $workers);

    # the CANCELs that got their 200 ended by it, in the worker that
    # sent them: only the silent callee's ran into Timer F
    my @unanswered = $t->read_log() =~ /CANCEL of branch (\S+) got no answer/g;
    is(join(',', @unanswered), $silent, "$workers workers: only the "
        . "silent callee's CANCEL ended unanswered");

    $t->stop();
    is($t->crashes(), '', "$workers workers: no worker crashed");
}

done_testing();


sub top_branch {
    my ($msg) = @_;
    my ($b) = $msg =~ /^(?:Via|v)\s*:[^\r\n]*;branch=([^;\s,]+)/mi;
    return $b // '';
}

sub register_udp {
    my ($t, $user, $s) = @_;
    my $c = udp_socket();
    udp_send($c, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", via_port => $c->sockport,
        call_id => "reg-$user",
        headers => [['Contact', "<sip:$user\@127.0.0.1:" . $s->sockport
            . '>'], ['Expires', 300]]), '127.0.0.1', $t->port(0));
    my ($got) = udp_recv($c, 3);
    my $r = parse_sip($got && $got->[0]);
    return $r && $r->{code};
}

# A call to a UDP callee that rings; the caller cancels on the 180.  The
# callee answers the CANCEL after $answer_after copies (never if 0).
# Returns the CANCEL copies (time, branch), the INVITE's branch, and
# the caller's answers as "METHOD code".

sub udp_call {
    my ($t, $user, $answer_after, $wait) = @_;

    my $s = udp_socket();
    my $c = udp_socket();
    is(register_udp($t, $user, $s), 200, "$user: registered");

    my $inv = sip_request(method => 'INVITE', uri => "sip:$user\@example.com",
        via_port => $c->sockport, call_id => "$user-" . int(rand(1e9)),
        branch => 'z9hG4bK-' . int(rand(1e9)));
    (my $cancel = $inv) =~ s/^INVITE /CANCEL /;
    $cancel =~ s/^CSeq: 1 INVITE/CSeq: 1 CANCEL/m;

    udp_send($c, $inv, '127.0.0.1', $t->port(0));

    my $sel = IO::Select->new($s, $c);
    my (@cancels, @answers, $invite, $ibranch, $cancelled, $final, $ok);
    my $deadline = time() + $wait;

    while ((my $left = $deadline - time()) > 0) {
        $left = $final + 1.5 - time() if $final && $final + 1.5 < $deadline;
        last if $left <= 0;

        for my $r ($sel->can_read($left)) {
            my $buf;
            my $peer = $r->recv($buf, 65535);
            next unless defined $peer;

            if ($r == $c) {
                my $x = parse_sip($buf) or next;
                my ($m) = $buf =~ /^CSeq:\s*\d+ (\w+)/mi;
                push @answers, "$m $x->{code}";
                if ($m eq 'INVITE' && $x->{code} == 180 && !$cancelled++) {
                    udp_send($c, $cancel, '127.0.0.1', $t->port(0));
                }
                if ($m eq 'INVITE' && $x->{code} >= 200) {
                    udp_send($c, NgxSip::sip_ack($inv, $buf), '127.0.0.1',
                        $t->port(0)) if $x->{code} >= 300;
                    $final //= time();
                }
                next;
            }

            my $m = sip_method($buf) or next;

            if ($m eq 'INVITE') {
                $invite //= $buf;
                $ibranch //= top_branch($buf);
                $r->send(sip_response($buf, 180, 'Ringing', tag => 'cb'),
                    0, $peer);

            } elsif ($m eq 'CANCEL') {
                push @cancels, [time(), top_branch($buf)];
                if ($answer_after && @cancels == $answer_after) {
                    $ok = time();
                    $r->send(sip_response($buf, 200, 'OK'), 0, $peer);
                    $r->send(sip_response($invite, 487, 'Request Terminated',
                        tag => 'cb'), 0, $peer);
                }
            }
        }
    }

    return (\@cancels, $ibranch // '', \@answers, $ok);
}

sub intervals {
    my ($cancels) = @_;
    return map { $cancels->[$_][0] - $cancels->[$_ - 1][0] }
        1 .. $#$cancels;
}

# the callee ignores the first two copies and answers the third

sub lossy {
    my ($t, $workers) = @_;
    my $user = "lossy-$workers";

    my ($cancels, $ibranch, $answers, $ok) = udp_call($t, $user, 3, 8);
    my $all = join ',', @$answers;

    # a copy may cross the 200 on the wire; none comes long after it
    my $late = grep { $ok && $_->[0] > $ok + 0.25 } @$cancels;
    ok(@$cancels >= 3 && !$late, "$user: CANCEL sent again until its 200 ("
        . scalar(@$cancels) . " copies, $late later)")
        or diag "answers: $all";
    is(join(',', grep { $_ ne $ibranch } map { $_->[1] } @$cancels), '',
        "$user: every copy has the INVITE's branch ($ibranch)");

    my @i = intervals($cancels);
    ok(@i == 2 && $i[0] >= 0.8 * $T1 && $i[1] >= 0.8 * 2 * $T1,
        "$user: intervals grow from T1 (" . join(', ',
            map { sprintf '%.3f', $_ } @i) . ')');
    like($all, qr/CANCEL 200/, "$user: the caller's CANCEL got 200");
    like($all, qr/INVITE 487/, "$user: the caller's INVITE got 487 ($all)");
}

# the callee never answers the CANCEL: the copies stop at 64*T1 and the
# INVITE ends by Timer C (sip_invite_timeout)

sub silent {
    my ($t, $workers) = @_;
    my $user = "silent-$workers";

    my ($cancels, $ibranch, $answers) = udp_call($t, $user, 0, 12);
    my $all = join ',', @$answers;

    my $span = @$cancels ? $cancels->[-1][0] - $cancels->[0][0] : 0;

    ok(@$cancels >= 6, "$user: CANCEL retransmitted ("
        . scalar(@$cancels) . ' copies)');
    ok($span <= 64 * $T1 + 0.3, sprintf("$user: the last copy within "
        . "64*T1 of the first (%.2f s)", $span));
    ok(!grep({ $_ > $T2 + 0.2 } intervals($cancels)),
        "$user: intervals capped at T2 (" . join(', ',
            map { sprintf '%.2f', $_ } intervals($cancels)) . ')');
    is(join(',', grep { $_ ne $ibranch } map { $_->[1] } @$cancels), '',
        "$user: every copy has the INVITE's branch");
    like($all, qr/CANCEL 200/, "$user: the caller's CANCEL got 200");
    like($all, qr/INVITE [4-6]\d\d/,
        "$user: the caller's INVITE still ended ($all)");

    return $ibranch;
}

# a TCP callee: the CANCEL comes once however long it waits

sub tcp_callee {
    my ($t, $workers) = @_;
    my $user = "tcp-$workers";

    my $p = tcp_connect(port => $t->port(0));
    stream_send($p, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", transport => 'TCP',
        via_host => '10.9.9.9', via_port => 5999, call_id => "reg-$user",
        headers => [['Contact', "<sip:$user\@10.9.9.9:5999;transport=tcp>"],
            ['Expires', 600]]));
    my ($m) = stream_recv($p, 1, 5);
    my $r = parse_sip($m->[0] // '');
    is($r && $r->{code}, 200, "$user: registered over TCP");

    my $c = udp_socket();
    my $inv = sip_request(method => 'INVITE', uri => "sip:$user\@example.com",
        via_port => $c->sockport, call_id => "$user-" . int(rand(1e9)));
    (my $cancel = $inv) =~ s/^INVITE /CANCEL /;
    $cancel =~ s/^CSeq: 1 INVITE/CSeq: 1 CANCEL/m;
    udp_send($c, $inv, '127.0.0.1', $t->port(0));

    ($m) = stream_recv($p, 1, 5);
    my $got = $m->[0] // '';
    like($got, qr/^INVITE /, "$user: INVITE on the phone's connection");
    stream_send($p, sip_response($got, 180, 'Ringing', tag => 'ct'));

    # the 180 reaches the caller, who cancels
    while (my ($d) = udp_recv($c, 3)) {
        last if $d->[0] =~ /^SIP\/2\.0 180/;
    }
    udp_send($c, $cancel, '127.0.0.1', $t->port(0));

    # 1 s is T1 .. 2*T2 and more: the copies a UDP callee would get
    ($m) = stream_recv($p, 5, 1);
    my @cancels = grep { /^CANCEL / } @$m;
    is(scalar @cancels, 1, "$user: one CANCEL on TCP in 1 s");

    stream_send($p, sip_response($cancels[0] // '', 200, 'OK')
        . sip_response($got, 487, 'Request Terminated', tag => 'ct'))
        if @cancels;

    my $all = '';
    while (my ($d) = udp_recv($c, 3)) {
        my $x = parse_sip($d->[0]) or next;
        my ($meth) = $d->[0] =~ /^CSeq:\s*\d+ (\w+)/mi;
        $all .= " $meth $x->{code}";
        last if $meth eq 'INVITE' && $x->{code} >= 200;
    }
    like($all, qr/CANCEL 200/, "$user: the caller's CANCEL got 200");
    like($all, qr/INVITE 487/, "$user: the caller's INVITE got 487 ($all)");

    close $p;
}
