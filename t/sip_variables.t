#!/usr/bin/perl

# $sip_* variables in the stock access_log: a line per UDP datagram, a
# line per message on a TCP connection (and the connection's own line).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    log_format sip 'M=$sip_method|C=$sip_call_id|U=$sip_request_uri|'
                   'UU=$sip_request_uri_user|UH=$sip_request_uri_host|'
                   'FU=$sip_from_user|FH=$sip_from_host|'
                   'TU=$sip_to_user|TH=$sip_to_host|Q=$sip_cseq|'
                   'S=$sip_status|T=$sip_transport|A=$sip_user_agent|'
                   'X=$sip_header_x_custom|I=$sip_header_call_id|'
                   'V=$sip_header_via';

    access_log %%PREFIX%%/logs/sip.log sip;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
    }
}
EOF

$t->run();

my $port = $t->port(0);

my $u = udp_socket();
udp_send($u, sip_request(uri => 'sip:alice@example.com', call_id => 'v-1',
    cseq => 42, via_port => $u->sockport, method => 'MESSAGE',
    headers => [['User-Agent', 'test agent'], ['X-Custom', 'hello']]),
    '127.0.0.1', $port);
my ($got) = udp_recv($u, 3);
is(parse_sip($got && $got->[0])->{code}, 404,
    'udp MESSAGE to an unknown user answered');

my $s = tcp_connect(port => $port);
stream_send($s, sip_request(transport => 'TCP', call_id => 'v-2',
    uri => 'sip:bob@example.com', cseq => 7));
stream_send($s, sip_request(transport => 'TCP', call_id => 'v-3',
    uri => 'sip:carol@elsewhere.test', cseq => 8));
my ($msgs) = stream_recv($s, 2);
is(scalar @$msgs, 2, 'tcp answered twice');
close $s;

sleep 0.5;
$t->stop();

my @lines = split /\n/, $t->read_log('sip.log');
my ($udp) = grep { /C=v-1/ } @lines;
my ($tcp1) = grep { /C=v-2/ } @lines;
my ($tcp2) = grep { /C=v-3/ } @lines;

ok($udp, 'udp line logged') or diag(join "\n", @lines);

like($udp, qr/^M=MESSAGE\|/, '$sip_method');
like($udp, qr/\|U=sip:alice\@example\.com\|/, '$sip_request_uri');
like($udp, qr/\|UU=alice\|UH=example\.com\|/, '$sip_request_uri_user/host');
like($udp, qr/\|FU=tester\|FH=example\.com\|/, '$sip_from_user/host');
like($udp, qr/\|TU=alice\|TH=example\.com\|/, '$sip_to_user/host');
like($udp, qr/\|Q=42\|/, '$sip_cseq');
like($udp, qr/\|S=404\|/, '$sip_status');
like($udp, qr/\|T=udp\|/, '$sip_transport');
like($udp, qr/\|A=test agent\|/, '$sip_user_agent');
like($udp, qr/\|X=hello\|/, '$sip_header_x_custom');
like($udp, qr/\|I=v-1\|/, '$sip_header_call_id');
like($udp, qr/\|V=SIP\/2\.0\/UDP 127\.0\.0\.1/, '$sip_header_via');

like($tcp1, qr/M=OPTIONS.*\|S=200\|T=tcp\|/, 'tcp first message');
like($tcp2, qr/UH=elsewhere\.test.*\|S=403\|T=tcp\|/, 'tcp second message');
ok(grep({ /^M=-\|C=-\|.*T=tcp/ } @lines), 'tcp connection line, no message');

is($t->crashes(), '', 'no worker crashed');

done_testing();
