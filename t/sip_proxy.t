#!/usr/bin/perl

# The stateful proxy over UDP with SIPp as caller and callee: calls with
# Record-Route through 4 workers and through 1 (INVITE/100/180/200/ACK/
# BYE/200), 486 with the hop-by-hop ACK, CANCEL while ringing, BYE from
# the callee, an upstream that never answers (408), a loop (482), a
# forged Route (404).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = program('sipp');

plan skip_all => 'no sipp' unless need($sipp, 'sipp (sip-tester)');

my %scenarios = %{ sipp_scenarios() };

for my $workers (4, 1) {
    my $t = NgxSip->new();
    my $w = "$workers workers";

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    log_format sip '$sip_method $sip_status $sip_call_id';
    access_log %%PREFIX%%/logs/sip.log sip;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_timers 100ms 400ms 500ms;
    }

    server {
        listen 127.0.0.1:%%PORT_5%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_invite_timeout 1s;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_2%%;
    }

    server {
        listen 127.0.0.1:%%PORT_3%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_4%%;
        sip_timers 100ms 400ms 500ms;
    }
}
EOF

    $t->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
    $t->run();

    my $p = $t->prefix;
    my $proxy = $t->port(0);
    my $uas_port = $t->port(1);

    my $run = sub {
        my ($uas, $uac, $calls, $name) = @_;
        sipp_call($t, $sipp, $uas, $uac, $calls, $proxy, $uas_port,
            "$w: $name");
    };

    sipp_call($t, $sipp, 'uas_call', 'uac_call', $workers == 4 ? 1000 : 500,
        $proxy, $uas_port,
        "$w: thousands of calls with Record-Route, ACK and BYE along it",
        '-r 200 -l 200');
    $run->('uas_bye', 'uac_bye', 50, 'BYE from the callee along the route');
    $run->('uas_busy', 'uac_busy', 20, '486 forwarded, ACK hop by hop');
    $run->('uas_cancel', 'uac_cancel', 20,
        'CANCEL while ringing: 200, 487, ACK');

    # ringing too long: 408 to the caller, CANCEL to the callee (Timer C)

    sipp_call($t, $sipp, 'uas_cancel', 'uac_timer_c', 10, $t->port(5),
        $uas_port, "$w: Timer C: 408 to the caller, CANCEL to the callee");

    # an upstream that never answers: 100 at once, 408 after timer B,
    # sent again (Timer G) until the caller's ACK

    my $u = udp_socket();
    my $branch = 'z9hG4bK' . int(rand(1e9));
    my $cid = int(rand(1e9)) . '@timeout';
    udp_send($u, sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $u->sockport, branch => $branch, call_id => $cid),
        '127.0.0.1', $t->port(3));
    my @got;
    for (1 .. 20) {
        my ($d) = udp_recv($u, 10) or last;
        push @got, parse_sip($d->[0]);
        last if $got[-1] && $got[-1]{code} == 408;
    }
    is(join(' ', map { $_->{code} } grep { $_ } @got), '100 408',
        "$w: no answer upstream: 100, then 408");
    my @again = udp_recv($u, 1, 1);
    ok(@again >= 2, "$w: 408 sent again until ACKed (Timer G)");
    my ($to) = @{$got[-1]{h}{to} || ['']};
    udp_send($u, sip_request(method => 'ACK', uri => 'sip:bob@example.com',
        via_port => $u->sockport, branch => $branch, call_id => $cid,
        to => '', headers => []) =~ s/^To: .*$/To: $to\r/mr,
        '127.0.0.1', $t->port(3));
    udp_recv($u, 0.3, 1);
    @again = udp_recv($u, 1.5, 1);
    is(scalar @again, 0, "$w: ACK stops the 408 retransmissions");

    # a loop: the server's own address as sip_pass

    udp_send($u, sip_request(method => 'OPTIONS',
        uri => 'sip:bob@example.com', via_port => $u->sockport),
        '127.0.0.1', $t->port(2));
    my ($got) = udp_recv($u, 3);
    my $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 482, "$w: loop detected");

    # a forged route: not ours, so not relayed

    udp_send($u, sip_request(method => 'BYE', uri => 'sip:bob@192.0.2.9',
        via_port => $u->sockport,
        headers => [['Route', "<sip:127.0.0.1:$proxy;lr;nsip=0123456789abcdef>"]]),
        '127.0.0.1', $proxy);
    ($got) = udp_recv($u, 3);
    $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 404, "$w: forged Route refused");

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
