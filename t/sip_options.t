#!/usr/bin/perl

# OPTIONS to us over UDP, TCP and TLS, IPv4 and IPv6, with 4 workers and
# with 1: 200 with Allow/Accept/Supported, responses routed as RFC 3261
# 18.2.2 and RFC 3581 say, UDP answers from the listening port.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $v6 = have_ipv6();

for my $workers (4, 1) {
    my $t = NgxSip->new()->make_cert('localhost');

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
    }
}
EOF

    if ($v6) {
        my $conf = do {
            local $/;
            open my $fh, '<', $t->prefix . '/nginx.conf' or die;
            <$fh>;
        };
        my $p = $t->port(0);
        $conf =~ s/(listen 127\.0\.0\.1:$p;)/$1\n        listen [::1]:$p udp;\n        listen [::1]:$p;/;
        $t->write_file('nginx.conf', $conf);
    }

    $t->run();

    my $port = $t->port(0);
    my $w = "$workers workers";

    # UDP: from the listening port, rport filled in, to the source port

    my $u = udp_socket();

    for my $i (1 .. 8) {
        udp_send($u, sip_request(via_port => $u->sockport, rport => 1),
            '127.0.0.1', $port);
        my ($got) = udp_recv($u, 3);
        my $r = parse_sip($got && $got->[0]);

        if ($i == 1) {
            is($r && $r->{code}, 200, "$w: udp OPTIONS 200");
            is($got && $got->[2], $port, "$w: answer from the SIP port");
            like($r && $r->{h}{via}[0], qr/;rport=${\ $u->sockport}/,
                "$w: rport filled in");
            unlike($r && $r->{h}{via}[0], qr/received=/,
                "$w: no received for a truthful sent-by");
            ok($r && $r->{h}{allow} && $r->{h}{accept}
                && $r->{h}{supported}, "$w: Allow, Accept, Supported");
            like($r && $r->{h}{to}[0], qr/;tag=\w+/, "$w: To tag added");
            is($r && $r->{h}{'content-length'}[0], 0,
                "$w: Content-Length 0");
        } else {
            is($r && $r->{code}, 200, "$w: udp OPTIONS $i");
        }
    }

    # UDP, sent-by not the source and no rport: received= added, the
    # answer goes to the source address at the sent-by port

    my $u2 = udp_socket();
    udp_send($u, sip_request(via_host => 'phone.example.net',
        via_port => $u2->sockport), '127.0.0.1', $port);
    my ($got) = udp_recv($u2, 3);
    my $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 200, "$w: answer at the sent-by port");
    like($r && $r->{h}{via}[0], qr/received=127\.0\.0\.1/,
        "$w: received added");

    # TCP

    my $s = tcp_connect(port => $port);
    stream_send($s, sip_request(transport => 'TCP'));
    my ($msgs) = stream_recv($s, 1);
    $r = parse_sip($msgs->[0]);
    is($r && $r->{code}, 200, "$w: tcp OPTIONS 200");
    like($r && $r->{h}{via}[0], qr{SIP/2\.0/TCP}, "$w: tcp Via copied");
    close $s;

    # TLS

    $s = tcp_connect(port => $t->port(1), ssl => 1);
    stream_send($s, sip_request(transport => 'TLS') x 2);
    ($msgs) = stream_recv($s, 2);
    is(scalar @$msgs, 2, "$w: tls two answers");
    is(parse_sip($msgs->[0])->{code}, 200, "$w: tls OPTIONS 200")
        if @$msgs;
    close $s;

    # IPv6

    SKIP: {
        skip 'no IPv6', 3 unless need($v6, 'IPv6 on lo');

        my $u6 = udp_socket(addr => '::1');
        udp_send($u6, sip_request(via_host => '[::1]',
            via_port => $u6->sockport, uri => 'sip:[::1]'), '::1', $port);
        ($got) = udp_recv($u6, 3);
        $r = parse_sip($got && $got->[0]);
        is($r && $r->{code}, 200, "$w: udp6 OPTIONS to [::1] 200");
        unlike($r && $r->{h}{via}[0], qr/received/,
            "$w: udp6 bracketed sent-by matches the source");

        $s = tcp_connect(addr => '::1', port => $port);
        stream_send($s, sip_request(transport => 'TCP'));
        ($msgs) = stream_recv($s, 1);
        is(parse_sip($msgs->[0]) && parse_sip($msgs->[0])->{code}, 200,
            "$w: tcp6 OPTIONS 200");
        close $s;
    }

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
