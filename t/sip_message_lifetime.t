#!/usr/bin/perl

# What one message on a TCP connection leaves for the next: nothing.
# A request with credentials, then one from elsewhere (not challenged)
# on the same connection: the second goes on whole (the index of the
# first one's Proxy-Authorization, stripped from it, must not strip a
# header of the second).  On the connection to the next hop, a final
# answer has $sip_duration and $upstream_addr in its log line, and a
# provisional answer after it has neither.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Socket::IP;

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();
my $top = $ENV{NGX_SIP_TOP} || '.';

system("$top/tools/sip-htdigest", $t->prefix . '/users', 'alice',
    'example.com', 'alice-secret') == 0 or die 'sip-htdigest';

$t->write_conf(<<'EOF2');
stream {
    log_format sip '$sip_method $sip_status $sip_cseq d=$sip_duration '
                   'u=$upstream_addr';

    server {
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
        sip_auth_algorithms SHA-256;
        sip_pass "sip:127.0.0.1:%%PORT_1%%;transport=tcp";
        access_log %%PREFIX%%/logs/sip.log sip;
    }
}
EOF2

my $up = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port(1), Proto => 'tcp', Listen => 4, ReuseAddr => 1)
    or die "listen: $@";

$t->run();

my $c = tcp_connect(port => $t->port(0));
my $via = '127.0.0.1:' . $c->sockport;

sub message {
    my (%a) = @_;
    return sip_request(method => 'MESSAGE', uri => 'sip:bob@far.example',
        transport => 'TCP', via_port => $c->sockport, cseq => $a{cseq},
        call_id => "life-$a{cseq}", from => $a{from},
        headers => $a{headers});
}

# 1: from alice, challenged

stream_send($c, message(cseq => 1, from => 'sip:alice@example.com'));
my ($m) = stream_recv($c, 1, 5);
my $r = parse_sip($m->[0]);
is($r && $r->{code}, 407, 'MESSAGE from alice: 407');
my ($nonce) = ($r->{h}{'proxy-authenticate'}[0] // '') =~ /nonce="([^"]+)"/;

# 2: with credentials, forwarded without them

my $ha1 = sha256_hex('alice:example.com:alice-secret');
my $ha2 = sha256_hex('MESSAGE:sip:bob@far.example');
my $resp = sha256_hex("$ha1:$nonce:00000001:abcdef:auth:$ha2");
my $cred = 'Digest username="alice", realm="example.com", '
    . "nonce=\"$nonce\", uri=\"sip:bob\@far.example\", response=\"$resp\", "
    . 'algorithm=SHA-256, cnonce="abcdef", qop=auth, nc=00000001';

my $req2 = message(cseq => 2, from => 'sip:alice@example.com',
    headers => [['Proxy-Authorization', $cred], ['X-Two', 'two']]);
stream_send($c, $req2);

$up->blocking(1);
my $sel = IO::Select->new($up);
my $u = $sel->can_read(5) ? $up->accept : undef;
ok($u, 'the proxy connected to the next hop');
$u->autoflush(1) if $u;

my ($got) = $u ? stream_recv($u, 1, 5) : ([]);
my $fwd2 = $got->[0] // '';
like($fwd2, qr/^MESSAGE /, 'the authenticated MESSAGE forwarded');
unlike($fwd2, qr/^Proxy-Authorization:/mi, '... without its credentials');
like($fwd2, qr/^X-Two: two\r$/m, '... with the rest');

stream_send($u, sip_response($fwd2, 200, 'OK')) if $u;
($m) = stream_recv($c, 1, 5);
like($m->[0] // '', qr/^SIP\/2\.0 200 /, '200 back to the caller');

# 3: from elsewhere to one of ours (not challenged, and not a relay),
# whole, the header where the credentials of 2 were too

my @hdrs = split /\r\n/, $req2;
my ($idx) = grep { $hdrs[$_] =~ /^Proxy-Authorization:/ } 0 .. $#hdrs;
my $req3 = $req2;
$req3 =~ s/^Proxy-Authorization: .*\r$/X-Keep: yes\r/m;
$req3 =~ s/CSeq: 2 MESSAGE/CSeq: 3 MESSAGE/;
$req3 =~ s/life-2/life-3/;
$req3 =~ s/sip:alice\@example\.com/sip:carol\@elsewhere.example/;
$req3 =~ s/sip:bob\@far\.example/sip:bob\@example.com/g;
$req3 =~ s/branch=z9hG4bK(\d+)/branch=z9hG4bK3$1/;
is((split /\r\n/, $req3)[$idx], 'X-Keep: yes', 'X-Keep where the credentials were');

stream_send($c, $req3);
($got) = $u ? stream_recv($u, 1, 5) : ([]);
my $fwd3 = $got->[0] // '';
like($fwd3, qr/^MESSAGE .*^X-Keep: yes\r$/ms,
    'the next request on the connection forwarded whole');

# a provisional answer, then the final one, on the next hop's connection

stream_send($u, sip_response($fwd3, 100, 'Trying')) if $u;
select undef, undef, undef, 0.3;
stream_send($u, sip_response($fwd3, 200, 'OK')) if $u;
($m) = stream_recv($c, 1, 5);
like($m->[0] // '', qr/^SIP\/2\.0 200 /, '200 back to the caller');

close $c;
close $u if $u;
$t->stop();

my @log = split /\n/, $t->read_log('sip.log');
my @answers = grep { /^MESSAGE (?:100|200) / } @log;
note(join "\n", @log);

like($answers[0] // '', qr/^MESSAGE 200 2 d=\d+\.\d{3} u=127\.0\.0\.1:\d+$/,
    'the final answer of 2: its duration and upstream');
like($answers[1] // '', qr/^MESSAGE 100 3 d=- u=-$/,
    'the provisional answer of 3: no duration, no upstream');
like($answers[2] // '', qr/^MESSAGE 200 3 d=\d+\.\d{3} u=127\.0\.0\.1:\d+$/,
    'the final answer of 3: one upstream');
is($t->crashes(), '', 'no worker crashed');

done_testing();
