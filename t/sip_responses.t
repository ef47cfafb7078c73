#!/usr/bin/perl

# The responses we make ourselves, from the stateless path
# (ngx_stream_sip_respond) and from transactions (408 after Timer B):
# a To tag per request (the same for a retransmission and for the 200 to
# a CANCEL of the INVITE, RFC 3261 9.2), none in a 100 or beside the
# request's own; received when the sent-by is not the source (RFC 3261
# 18.2.1) and the source port in an empty rport (RFC 3581), over UDP and
# TCP, and nothing added when neither is needed.  With 4 workers and 1.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(time);

use lib 't/lib';
use NgxSip;

my $tag_re = qr/;tag=([0-9a-f]{16})$/;

sub to_tag {
    my ($r) = @_;
    my $to = $r && $r->{h}{to} && $r->{h}{to}[0];
    return undef unless defined $to;
    return $to =~ /;tag=([^;]*)$/ ? $1 : '';
}

sub via_of {
    my ($text) = @_;
    return ($text =~ /^Via: (.*?)\r$/m)[0];
}

# every datagram until one with $code came, or the time is up
sub udp_until {
    my ($u, $code, $timeout) = @_;
    my @got;
    my $deadline = time() + $timeout;
    while ((my $left = $deadline - time()) > 0) {
        my ($d) = udp_recv($u, $left) or last;
        my $r = parse_sip($d->[0]) or next;
        push @got, $r;
        last if $r->{code} == $code;
    }
    return @got;
}

for my $workers (4, 1) {
    my $t = NgxSip->new();
    my $w = "$workers workers";

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        listen 127.0.0.1:%%PORT_1%%;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_2%%;
        sip_timers 100ms 400ms 500ms;
    }
}
EOF

    $t->run();

    my $port = $t->port(0);
    my $u = udp_socket();
    my $sp = $u->sockport;

    # different requests, different tags; all of our 16 hex digits

    my %tags;
    for my $i (1 .. 10) {
        udp_send($u, sip_request(via_port => $sp), '127.0.0.1', $port);
        my ($got) = udp_recv($u, 3);
        my $r = parse_sip($got && $got->[0]);
        my $tag = to_tag($r);
        $tags{$tag}++ if defined $tag && $tag =~ /^[0-9a-f]{16}$/;
    }
    is(scalar keys %tags, 10, "$w: 10 requests, 10 different To tags");

    # a retransmission (the same octets) gets the same tag, whichever
    # worker answers it

    my $req = sip_request(via_port => $sp);
    my @seen;
    for my $i (1 .. 6) {
        udp_send($u, $req, '127.0.0.1', $port);
        my ($got) = udp_recv($u, 3);
        push @seen, to_tag(parse_sip($got && $got->[0])) // 'none';
    }
    my %same = map { $_ => 1 } @seen;
    ok(keys %same == 1 && $seen[0] =~ /^[0-9a-f]{16}$/,
        "$w: a retransmitted request, the same tag (@seen)");

    # a To tag of the request's own stays alone

    my $in_dialog = sip_request(via_port => $sp)
        =~ s/^(To: .*)\r$/$1;tag=theirs\r/mr;
    udp_send($u, $in_dialog, '127.0.0.1', $port);
    my ($got) = udp_recv($u, 3);
    is(to_tag(parse_sip($got && $got->[0])), 'theirs',
        "$w: the request's To tag kept, none added");

    # UDP: sent-by not the source, rport asked for: both added

    $req = sip_request(via_host => 'phone.example.net', via_port => 5099,
        rport => 1);
    udp_send($u, $req, '127.0.0.1', $port);
    ($got) = udp_recv($u, 3);
    is(via_of($got && $got->[0]), via_of($req) . "=$sp;received=127.0.0.1",
        "$w: udp: rport filled, received added");

    # UDP: truthful sent-by, no rport: the Via as it was

    $req = sip_request(via_port => $sp);
    udp_send($u, $req, '127.0.0.1', $port);
    ($got) = udp_recv($u, 3);
    is(via_of($got && $got->[0]), via_of($req),
        "$w: udp: nothing added to a truthful Via");

    # TCP: the same two cases

    my $s = tcp_connect(port => $port);
    my $cp = $s->sockport;
    $req = sip_request(transport => 'TCP', via_host => 'phone.example.net',
        via_port => 5099, rport => 1);
    stream_send($s, $req);
    my ($msgs) = stream_recv($s, 1);
    is(via_of($msgs->[0] // ''), via_of($req) . "=$cp;received=127.0.0.1",
        "$w: tcp: rport filled, received added");

    $req = sip_request(transport => 'TCP', via_port => $cp);
    stream_send($s, $req);
    ($msgs) = stream_recv($s, 1);
    is(via_of($msgs->[0] // ''), via_of($req),
        "$w: tcp: nothing added to a truthful Via");
    close $s;

    # transactions: INVITEs to a next hop that never answers get 100
    # (no tag) at once and 408 after Timer B (6.4 s), each with its own
    # tag, received and rport; the 200 to a CANCEL has the INVITE's tag

    my $silent = udp_socket(port => $t->port(2));
    my $proxy = $t->port(1);

    my $u2 = udp_socket();
    my $sp2 = $u2->sockport;
    my $inv1 = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_host => 'phone.example.net', via_port => 5099, rport => 1);
    my $inv2 = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $sp2);
    udp_send($u, $inv1, '127.0.0.1', $proxy);
    udp_send($u2, $inv2, '127.0.0.1', $proxy);

    my $c = tcp_connect(port => $proxy);
    my $tcp_port = $c->sockport;
    my $inv3 = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        transport => 'TCP', via_host => 'phone.example.net', rport => 1);
    stream_send($c, $inv3);

    my ($trying) = udp_recv($u2, 3);
    my $r = parse_sip($trying && $trying->[0]);
    is($r && $r->{code}, 100, "$w: 100 Trying");
    is(to_tag($r), '', "$w: no To tag in a 100");

    # CANCEL the second INVITE: 200 at once, its tag the INVITE's

    my ($branch) = $inv2 =~ /branch=([^;\r]+)/;
    my $cancel = $inv2 =~ s/^INVITE /CANCEL /r =~ s/^CSeq: (\d+) INVITE/CSeq: $1 CANCEL/mr;
    udp_send($u2, $cancel, '127.0.0.1', $proxy);

    my @u1 = udp_until($u, 408, 12);
    my @u2 = udp_until($u2, 408, 12);
    my ($ok200) = grep { $_->{code} == 200 } @u2;
    my ($f1) = grep { $_->{code} == 408 } @u1;
    my ($f2) = grep { $_->{code} == 408 } @u2;
    my ($msgs3) = stream_recv($c, 2, 12);
    my ($f3) = grep { $_ && $_->{code} == 408 } map { parse_sip($_) } @$msgs3;

    ok($f1 && $f2 && $f3, "$w: 408 from the transactions over UDP and TCP");

    my @ft = map { to_tag($_) // 'none' } grep { $_ } $f1, $f2, $f3;
    my %ftu = map { $_ => 1 } grep { /^[0-9a-f]{16}$/ } @ft;
    is(scalar keys %ftu, 3, "$w: three 408s, three tags (@ft)");
    ok(!grep({ $_ eq 'ngxsip0' } @ft), "$w: not the old fixed tag");
    ok($ok200 && $f2 && to_tag($ok200) eq to_tag($f2),
        "$w: the 200 to the CANCEL has the 408's tag");

    is($f1 && via_of($f1->{text}),
        via_of($inv1) . "=$sp;received=127.0.0.1",
        "$w: transaction 408 over UDP: rport, received");
    is($f2 && via_of($f2->{text}), via_of($inv2),
        "$w: transaction 408 over UDP: nothing added to a truthful Via");
    is($f3 && via_of($f3->{text}),
        via_of($inv3) . "=$tcp_port;received=127.0.0.1",
        "$w: transaction 408 over TCP: rport, received");

    # the 408 again (Timer G) carries the same tag until the ACK

    my ($again) = udp_recv($u, 2);
    my $ra = parse_sip($again && $again->[0]);
    ok($ra && $ra->{code} == 408 && $f1 && to_tag($ra) eq to_tag($f1),
        "$w: the retransmitted 408 has the same tag");

    close $c;
    $t->stop();
    is($t->crashes, '', "$w: no worker crashed");
}

done_testing();
