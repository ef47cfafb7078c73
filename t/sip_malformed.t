#!/usr/bin/perl

# Bad input gets a clear answer, or a logged drop; stream framing:
# pipelining, messages in 1-octet pieces, RFC 5626 keepalives, oversize
# and missing Content-Length, idle timeout.  Methods we do not serve.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
        sip_max_message_size 2k;
        sip_connection_timeout 2s;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $u = udp_socket();
my $up = $u->sockport;

sub ask {
    my ($msg, $timeout) = @_;
    udp_send($u, $msg, '127.0.0.1', $port);
    my ($got) = udp_recv($u, defined $timeout ? $timeout : 2);
    return parse_sip($got && $got->[0]);
}

sub answer_is {
    my ($msg, $code, $reason, $name) = @_;
    my $r = ask($msg);
    is($r && $r->{code}, $code, "$name: $code");
    like($r && $r->{reason}, $reason, "$name: reason says why")
        if $reason;
    return $r;
}

# errors, each with its own reason phrase

answer_is(sip_request(via_port => $up, no_call_id => 1), 400,
    qr/Call-ID/, 'missing Call-ID');
answer_is(sip_request(via_port => $up, cseq_method => 'INVITE'), 400,
    qr/CSeq/, 'CSeq method mismatch');
answer_is(sip_request(via_port => $up, cseq => 'x1'), 400,
    qr/CSeq/, 'bad CSeq');
answer_is(sip_request(via_port => $up, max_forwards => 'abc'), 400,
    qr/Max-Forwards/, 'bad Max-Forwards');
answer_is(sip_request(via_port => $up, max_forwards => 0), 483,
    qr/Too Many Hops/, 'Max-Forwards 0');
answer_is(sip_request(via_port => $up, uri => 'mailto:a@example.com'),
    416, qr/Scheme/, 'unsupported URI scheme');

my $r = answer_is(sip_request(via_port => $up,
    headers => [['Require', 'foo, bar']]), 420, qr/Extension/,
    'Require');
is($r && $r->{h}{unsupported}[0], 'foo, bar', 'Unsupported lists them');

$r = ask(sip_request(via_port => $up) =~ s{SIP/2\.0\r\n}{SIP/7.0\r\n}r);
is($r && $r->{code}, 505, 'SIP/7.0: 505');

$r = ask(sip_request(via_port => $up, body => 'x' x 3000,
    headers => [['Content-Type', 'text/plain']]));
is($r && $r->{code}, 513, 'UDP datagram over sip_max_message_size: 513');

# methods

answer_is(sip_request(via_port => $up, method => 'INVITE'), 405,
    undef, 'INVITE');
$r = answer_is(sip_request(via_port => $up, method => 'FOO'), 501,
    undef, 'unknown method');
answer_is(sip_request(via_port => $up, method => 'CANCEL'), 481,
    undef, 'CANCEL');
answer_is(sip_request(via_port => $up, uri => 'sip:bob@elsewhere.test'),
    403, qr/Relaying Forbidden/, 'foreign domain, no open relay');

is(ask(sip_request(via_port => $up, method => 'ACK'), 0.5), undef,
    'ACK never answered');
is(ask("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:$up;branch=z9hG4bK1"
    . "\r\nFrom: <sip:a\@example.com>;tag=1\r\nTo: <sip:b\@example.com>"
    . "\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    0.5), undef, 'a response is never answered');

# garbage over UDP: dropped, logged, the server goes on

is(ask("\x00\x01\x02garbage\xff\r\n\r\n", 0.5), undef, 'binary garbage');
is(ask("OPTIONS sip:exam", 0.5), undef, 'half a start line');
is(ask("\r\n\r\n", 0.3), undef, 'UDP keepalive: no answer');
is(ask(sip_request(via_port => $up))->{code}, 200, 'still answering');
like($t->read_log(), qr/\[info\].*SIP message dropped/,
    'garbage logged at info');

# TCP: pipelining

my $req = sip_request(transport => 'TCP');
my $s = tcp_connect(port => $port);
stream_send($s, $req . sip_request(transport => 'TCP', method => 'INVITE')
    . $req);
my ($msgs) = stream_recv($s, 3);
is(join(' ', map { parse_sip($_)->{code} } @$msgs), '200 405 200',
    'pipelined: three answers in order');

# 1-octet pieces, then a keepalive ping

stream_send($s, $_), sleep(0.002) for split //, $req;
($msgs) = stream_recv($s, 1);
is(parse_sip($msgs->[0]) && parse_sip($msgs->[0])->{code}, 200,
    'message in 1-octet pieces');

stream_send($s, "\r\n\r\n");
my ($none, $closed, $rest) = stream_recv($s, 1, 1);
is($rest, "\r\n", 'CRLFCRLF ping gets a CRLF pong');

# idle close after sip_connection_timeout (2s)

($none, $closed) = stream_recv($s, 1, 5);
ok($closed, 'idle connection closed');
close $s;

# oversize: 513, then the connection is closed

$s = tcp_connect(port => $port);
stream_send($s, sip_request(transport => 'TCP', body => 'x' x 3000,
    headers => [['Content-Type', 'text/plain']]));
($msgs, $closed) = stream_recv($s, 2, 3);
is(parse_sip($msgs->[0]) && parse_sip($msgs->[0])->{code}, 513,
    'over sip_max_message_size: 513');
ok($closed, 'and closed');
close $s;

# stream without Content-Length: 400, closed

$s = tcp_connect(port => $port);
stream_send($s, sip_request(transport => 'TCP', no_content_length => 1));
($msgs, $closed) = stream_recv($s, 2, 3);
$r = parse_sip($msgs->[0]);
is($r && $r->{code}, 400, 'no Content-Length on TCP: 400');
like($r && $r->{reason}, qr/Content-Length/, 'reason says so');
ok($closed, 'and closed');
close $s;

# binary garbage on TCP: closed, nothing answered

$s = tcp_connect(port => $port);
stream_send($s, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" x 300);
($msgs, $closed) = stream_recv($s, 1, 3);
is(scalar @$msgs, 0, 'TLS hello on plain TCP: no answer');
ok($closed, 'and closed');
close $s;

$s = tcp_connect(port => $port);
stream_send($s, $req);
($msgs) = stream_recv($s, 1);
is(parse_sip($msgs->[0]) && parse_sip($msgs->[0])->{code}, 200,
    'tcp still answering');
close $s;

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
