#!/usr/bin/perl

# Callers over TCP and TLS, callees over UDP, and UDP callers to a callee
# over TCP (connections of ours, reused), 4 workers: SIPp over TCP
# (-t t1) calls through nginx to a SIPp callee over UDP (Record-Route
# twice, RFC 5658: the caller's ACK and BYE come back over TCP, the
# callee's BYE goes out on the caller's own connection, whichever worker
# reads it), CANCEL over TCP; then a raw TLS caller through the same
# steps, checking the Via and Route of what reaches each side; a BYE for
# a connection that is gone goes to the caller's Contact on a new
# connection, or gets 430 Flow Failed for an RFC 5626 ("ob") caller.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = program('sipp');

plan skip_all => 'no sipp' unless need($sipp, 'sipp (sip-tester)');

for my $workers (4, 1) {

    my $t = NgxSip->new()->make_cert('localhost');

    $t->write_conf(<<~'EOF2', workers => $workers);
    stream {
        server {
            listen 127.0.0.1:%%PORT_0%%;
            listen 127.0.0.1:%%PORT_0%% udp;
            sip on;
            sip_domain example.com;
            sip_pass 127.0.0.1:%%PORT_1%%;
        }

        server {
            listen 127.0.0.1:%%PORT_2%% ssl;
            listen 127.0.0.1:%%PORT_2%% udp;
            ssl_certificate     %%PREFIX%%/localhost.crt;
            ssl_certificate_key %%PREFIX%%/localhost.key;
            sip on;
            sip_domain example.com;
            sip_pass 127.0.0.1:%%PORT_3%%;
        }

        server {
            listen 127.0.0.1:%%PORT_4%% udp;
            sip on;
            sip_domain example.com;
            sip_pass "sip:127.0.0.1:%%PORT_5%%;transport=tcp";
        }
    }
    EOF2

    my %scenarios = %{ sipp_scenarios() };
    $t->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
    $t->run();

    my $proxy = $t->port(0);
    my $uas_port = $t->port(1);

    sipp_call($t, $sipp, 'uas_call', 'uac_call', 200, $proxy, $uas_port,
        "$workers workers: TCP caller, UDP callee: calls with ACK and BYE",
        '-t t1');
    sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 50, $proxy, $uas_port,
        'TCP caller: BYE from the callee on the caller\'s connection', '-t t1');
    sipp_call($t, $sipp, 'uas_cancel', 'uac_cancel', 20, $proxy, $uas_port,
        'TCP caller: CANCEL while ringing', '-t t1');
    sipp_call($t, $sipp, 'uas_busy', 'uac_busy', 20, $proxy, $uas_port,
        'TCP caller: 486 back, ACK hop by hop', '-t t1');

    # UDP callers, a callee over TCP: one connection of ours, reused; the
    # callee's BYE comes on it, the caller's ACK and BYE go on it

    sipp_call($t, $sipp, 'uas_call', 'uac_call', 200, $t->port(4), $t->port(5),
        'UDP caller, TCP callee: calls with ACK and BYE along the route',
        '', '-t t1');
    sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 50, $t->port(4), $t->port(5),
        'UDP caller, TCP callee: BYE from the callee', '', '-t t1');
    sipp_call($t, $sipp, 'uas_cancel', 'uac_cancel', 20, $t->port(4),
        $t->port(5), "$workers workers: UDP caller, TCP callee: CANCEL", '', '-t t1');

    # a TLS caller by hand, a UDP callee by hand

    $proxy = $t->port(2);

    my $tls = tcp_connect(port => $t->port(2), ssl => 1);
    my $uas = udp_socket(port => $t->port(3));
    my $cid = 'tls-call-' . int(rand(1e9));
    my $contact = '<sip:alice@127.0.0.1:5999;transport=tls>';

    stream_send($tls, sip_request(method => 'INVITE',
        uri => 'sip:bob@127.0.0.1:' . $uas->sockport, transport => 'TLS',
        call_id => $cid, via_port => 5999, branch => 'z9hG4bK-tls1',
        headers => [['Contact', $contact]]));

    # the callee: the INVITE arrives over UDP with our Via and two RRs

    my ($got) = udp_recv($uas, 5);
    my $inv = $got && $got->[0];
    like($inv // '', qr/^INVITE /, 'TLS caller: INVITE reached the callee');
    my ($rr) = ($inv // '') =~ /^Record-Route: (.*)\r$/m;
    like($rr // '', qr/^<sip:127\.0\.0\.1:$proxy;lr;nsip=\w{16}>, <sip:127\.0\.0\.1:\d+;transport=tls;lr;nsip=\w{16};nfl=\d+\.\d+\.\w{16}>$/,
        'double Record-Route: UDP side, then TLS side with the flow');
    like($inv // '', qr/^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:$proxy;branch=/m,
        'our Via on the UDP side');

    my $uas_contact = '<sip:bob@127.0.0.1:' . $uas->sockport . '>';
    my $resp = sub {
        my ($code, $reason) = @_;
        return sip_response($inv, $code, $reason, tag => 'uas1',
            headers => [['Contact', $uas_contact]]);
    };

    # the 200 only once the 180 is through: with several workers, two
    # datagrams sent back to back may be read by two workers and passed
    # on in either order, and a 180 after the 200 is not forwarded

    udp_send($uas, $resp->(180, 'Ringing'), '127.0.0.1', $proxy);
    my ($msgs) = stream_recv($tls, 2, 5);
    udp_send($uas, $resp->(200, 'OK'), '127.0.0.1', $proxy);
    my ($more) = stream_recv($tls, 1, 5);
    push @$msgs, @{$more // []};

    is(join(' ', map { parse_sip($_)->{code} } @$msgs), '100 180 200',
        'TLS caller: 100, 180, 200 on its connection');
    my $ok = parse_sip($msgs->[2] // '') || { h => {} };
    my @rrs = map { split /,\s*/ } @{$ok->{h}{'record-route'} || []};
    is(scalar @rrs, 2, 'the caller sees both Record-Routes');

    # the caller's ACK and, later, the callee's BYE along the route sets

    my $route_caller = join ', ', reverse @rrs;
    my $route_callee = join ', ', @rrs;
    my ($to) = @{$ok->{h}{to} || ['']};

    stream_send($tls, "ACK sip:bob\@127.0.0.1:" . $uas->sockport . " SIP/2.0\r\n"
        . "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls2\r\n"
        . "Route: $route_caller\r\nMax-Forwards: 70\r\n"
        . "From: <sip:tester\@example.com>;tag=caller\r\nTo: $to\r\n"
        . "Call-ID: $cid\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    ($got) = udp_recv($uas, 5);
    like($got && $got->[0] // '', qr/^ACK sip:bob\@127\.0\.0\.1:\d+ SIP\/2\.0\r\n/,
        'the ACK reached the callee over UDP');
    unlike($got && $got->[0] // '', qr/^Route:/m, 'both our Routes removed');

    my $bye = "BYE sip:alice\@127.0.0.1:5999;transport=tls SIP/2.0\r\n"
        . "Via: SIP/2.0/UDP 127.0.0.1:" . $uas->sockport
        . ";branch=z9hG4bK-uasbye;rport\r\n"
        . "Route: $route_callee\r\nMax-Forwards: 70\r\n"
        . "From: $to\r\nTo: <sip:tester\@example.com>;tag=caller\r\n"
        . "Call-ID: $cid\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";

    # a worker other than the connection's may read it: sent a few times
    # from new sockets, so that the kernel spreads them over the workers

    my @byes;
    for my $i (1 .. 3) {
        my $u = $i == 1 ? $uas : udp_socket();
        (my $b = $bye) =~ s/z9hG4bK-uasbye/z9hG4bK-uasbye$i/;
        udp_send($u, $b, '127.0.0.1', $proxy);
    }

    ($msgs) = stream_recv($tls, 3, 5);
    my @bye = grep { /^BYE / } @$msgs;
    is(scalar @bye, 3, 'the callee\'s BYEs came on the caller\'s TLS connection');
    like($bye[0] // '', qr/^Via: SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;branch=z9hG4bK-ngx/m,
        'our Via says TLS');
    unlike($bye[0] // '', qr/^Route:/m, 'Routes removed');

    stream_send($tls, sip_response($bye[0], 200, 'OK'));
    ($got) = udp_recv($uas, 5);
    like($got && $got->[0] // '', qr/^SIP\/2\.0 200 OK\r\n.*CSeq: 7 BYE/s,
        'the caller\'s 200 for BYE reached the callee');

    # the connection goes; the caller did not ask for RFC 5626 outbound
    # (no "ob" in its Contact): a BYE for it goes to its Contact, the
    # Request-URI, on a new connection, as with Kamailio

    close $tls;
    sleep 0.5;

    require IO::Socket::SSL;
    my $port6 = $t->port(6);
    my $srv = IO::Socket::SSL->new(LocalAddr => '127.0.0.1',
        LocalPort => $port6, Listen => 5, ReuseAddr => 1,
        SSL_cert_file => $t->prefix . '/localhost.crt',
        SSL_key_file => $t->prefix . '/localhost.key')
        or die "tls listen: $IO::Socket::SSL::SSL_ERROR";
    (my $bye9 = $bye) =~ s/z9hG4bK-uasbye/z9hG4bK-uasbye9/;
    $bye9 =~ s/^BYE \S+/BYE sip:alice\@127.0.0.1:$port6;transport=tls/;
    udp_send($uas, $bye9, '127.0.0.1', $proxy);

    my $in = IO::Select->new($srv)->can_read(5) ? $srv->accept : undef;
    ($msgs) = $in ? stream_recv($in, 1, 5) : ([]);
    like($msgs->[0] // '', qr/^BYE sip:alice\@127\.0\.0\.1:$port6;transport=tls SIP\/2\.0\r\n/,
        'connection gone, no outbound: the BYE goes to the Contact, new connection');
    unlike($msgs->[0] // '', qr/^Route:/m, 'with no Route left');
    stream_send($in, sip_response($msgs->[0], 200, 'OK')) if $in && $msgs->[0];
    ($got) = udp_recv($uas, 5);
    like($got && $got->[0] // '', qr/^SIP\/2\.0 200 OK\r\n.*CSeq: 7 BYE/s,
        'its 200 reached the callee');

    # an RFC 5626 phone ("ob" in its Contact): its flow is named "ob", and
    # a request for it fails with its connection (430)

    $tls = tcp_connect(port => $t->port(2), ssl => 1);
    stream_send($tls, sip_request(method => 'INVITE',
        uri => 'sip:bob@127.0.0.1:' . $uas->sockport, transport => 'TLS',
        call_id => "$cid-ob", via_port => 5999, branch => 'z9hG4bK-tlsob',
        headers => [['Contact', '<sip:alice@127.0.0.1:5999;transport=tls;ob>']]));
    ($got) = udp_recv($uas, 5);
    $inv = $got && $got->[0] // '';
    ($rr) = $inv =~ /^Record-Route: (.*)\r$/m;
    like($rr // '', qr/;nfl=[\w.]+;ob>$/, 'an outbound caller\'s flow says "ob"');
    udp_send($uas, sip_response($inv, 486, 'Busy Here', tag => 'uasob'),
        '127.0.0.1', $proxy);
    close $tls;
    sleep 0.5;

    (my $byeob = $bye) =~ s/z9hG4bK-uasbye/z9hG4bK-uasbyeob/;
    $byeob =~ s/^Call-ID: .*$/Call-ID: $cid-ob\r/m;
    $byeob =~ s/^Route: .*$/Route: $rr\r/m;
    udp_send($uas, $byeob, '127.0.0.1', $proxy);
    my @got = udp_recv($uas, 5, 1);
    like(join('', map { $_->[0] } @got), qr/^SIP\/2\.0 430 Flow Failed/m,
        'the outbound flow is gone: 430');

    $t->stop();
    is($t->crashes(), '', 'no worker crashed');
}

done_testing();
