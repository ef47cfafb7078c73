#!/usr/bin/perl

# A real browser over SIP WebSocket (RFC 7118), 4 workers and 1: Debian's
# Chromium, headless, driven by puppeteer-core (t/js/browser.mjs), two
# pages with JsSIP, a real RTCPeerConnection and fake media devices,
# register over WSS with digest (sip_auth) and call each other through
# nginx (INVITE/200/ACK/BYE), send a MESSAGE, and a page calls a SIPp
# UDP callee (which answers with a WebRTC-shaped SDP, no media flows:
# what is tested is the signalling).
#
# NGX_SIP_WS_SERVER=kamailio runs the same against Kamailio 5.6 and its
# websocket module (bench/kamailio-ws.cfg), the check of the test itself.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxSipp;
use NgxKamailio;
use NgxWsClient qw(need_js kamailio_ws_start);

my $top = $ENV{NGX_SIP_TOP} || '.';
my $server = $ENV{NGX_SIP_WS_SERVER} || 'nginx';
my $sipp = program('sipp');
my $chromium = program('chromium');

plan skip_all => 'no node, npm packages, chromium or sipp'
    unless need_js('jssip', 'puppeteer-core', 'esbuild')
        && need($chromium, 'chromium') && need($sipp, 'sipp (sip-tester)');

for my $workers ($ENV{NGX_SIP_WS_WORKERS} ? ($ENV{NGX_SIP_WS_WORKERS})
    : (4, 1))
{
    run_all($workers);
}

done_testing();

sub run_all {
    my ($workers) = @_;

    my $t = NgxSip->new()->make_cert('localhost');
    my $p = $t->prefix;
    my ($udp, $ws, $wss) = map { $t->port($_) } 0 .. 2;
    my $kpid;

    for my $user ('alice', 'bob') {
        system("$top/tools/sip-htdigest", "$p/users", $user,
            'example.com', "$user-Secret") == 0 or die 'sip-htdigest';
    }

    if ($server eq 'kamailio') {
        $kpid = kamailio_ws_start($t, udp => $udp, ws => $ws, wss => $wss,
            workers => $workers, cert => 'localhost')
            or return;

    } else {
        $t->write_conf(<<'EOF', workers => $workers)->run();
stream {
    sip_location_zone loc:1m;

    map $remote_addr $sip_realm {
        127.0.0.2   off;
        default     example.com;
    }

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.2:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_1%% reuseport;
        listen 127.0.0.1:%%PORT_2%% ssl reuseport;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
        sip_auth $sip_realm;
        sip_auth_user_file %%PREFIX%%/users;
    }
}
EOF
    }

    my $w = "$server, $workers worker" . ($workers > 1 ? 's' : '');

    my $b = NgxWsClient->new(log => "$p/browser.log", argv => [
        'browser.mjs', '--url', "wss://127.0.0.1:$wss",
        '--domain', 'example.com', '--chromium', $chromium,
        '--ua', 'alice:alice-Secret', '--ua', 'bob:bob-Secret']);

    ok($b->expect(qr/^ready$/, 60, qr/^ready/),
        "$w: chromium runs two JsSIP pages")
        or diag($b->events() . "\n" . `tail -n 30 $p/browser.log`);

    $b->cmd("$_ register") for 'alice', 'bob';

    for my $user ('alice', 'bob') {
        is(ev($b, $user, 'registered|regfail', 20), "$user registered",
            "$w: page $user registers over WSS with digest")
            or diag($b->events());
    }

    # MESSAGE page to page

    $b->cmd('alice message sip:bob@example.com hello-from-the-browser');
    ok(ev($b, 'alice', 'sent|sendfail') eq 'alice sent'
        && ev($b, 'bob', 'message') eq
            'bob message alice hello-from-the-browser',
        "$w: MESSAGE page to page") or diag($b->events());

    # a call page to page; the callee hangs up, then one the other way

    for my $c (['alice', 'bob', 'bob'], ['bob', 'alice', 'bob']) {
        my ($from, $to, $hang) = @$c;
        my $other = $hang eq $from ? $to : $from;

        $b->cmd("$from call sip:$to\@example.com");

        ok(ev($b, $to, 'incoming', 15) eq "$to incoming $from"
            && ev($b, $from, 'confirmed|callfail', 15) eq "$from confirmed"
            && ev($b, $to, 'confirmed|callfail', 15) eq "$to confirmed",
            "$w: page $from calls page $to: INVITE/200/ACK")
            or diag($b->events());

        $b->cmd("$hang hangup");

        ok(ev($b, $hang, 'ended') eq "$hang ended local"
            && ev($b, $other, 'ended') eq "$other ended remote",
            "$w: $hang hangs up: BYE") or diag($b->events());
    }

    # a page calls a SIPp UDP callee, registered from the trusted
    # 127.0.0.2, and hangs up

    my $uas_port = NgxSip->new()->port('uas');
    my $reg = udp_socket(addr => '127.0.0.2');

    udp_send($reg, sip_request(method => 'REGISTER',
        uri => 'sip:example.com', to => 'sip:sippuas@example.com',
        from => 'sip:sippuas@example.com', via_host => '127.0.0.2',
        via_port => $reg->sockport, headers => [
            ['Contact', "<sip:sippuas\@127.0.0.2:$uas_port>"],
            ['Expires', 600]]), '127.0.0.2', $udp);

    my ($r) = udp_recv($reg, 5);
    like($r ? $r->[0] : '', qr{^SIP/2\.0 200 }, "$w: SIPp callee registered");

    my $uas = sipp_scenarios()->{uas_call};
    my $webrtc = join '', map { "      $_\n" } 'v=0',
        'o=sipp 1 1 IN IP4 127.0.0.2', 's=-', 't=0 0',
        'm=audio [media_port] UDP/TLS/RTP/SAVPF 0',
        'c=IN IP4 127.0.0.2', 'a=mid:0', 'a=ice-ufrag:sippUfrag',
        'a=ice-pwd:sippIcePasswordSipp0123456',
        'a=fingerprint:sha-256 ' . join(':', ('AB') x 32),
        'a=setup:active', 'a=rtcp-mux', 'a=rtpmap:0 PCMU/8000',
        'a=sendrecv';
    $uas =~ s/      v=0\n.*?a=rtpmap:0 PCMU\/8000\n/$webrtc/s
        or die 'no SDP in uas_call';
    $t->write_file('uas.xml', $uas);

    my $spid = sipp_start($t, $sipp, 'uas', '-sf', "$p/uas.xml",
        '-i', '127.0.0.2', '-p', $uas_port, '-m', 1, '-trace_msg',
        '-message_file', "$p/uas.msg");

    select undef, undef, undef, 0.5;

    $b->cmd('alice call sip:sippuas@example.com');

    is(ev($b, 'alice', 'confirmed|callfail', 15), 'alice confirmed',
        "$w: page calls a SIPp UDP callee: INVITE/180/200/ACK")
        or diag($b->events());

    $b->cmd('alice hangup');

    is(sipp_wait($spid, 10), 0, "$w: SIPp callee had the ACK and the BYE")
        or diag(`tail -n 40 $p/uas.err $p/uas.msg`);

    $b->stop();

    if ($kpid) {
        kamailio_stop($kpid);
        return;
    }

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

# the next event of a page among those named (a regexp alternation), ''
# when none came in time
sub ev {
    my ($b, $user, $events, $timeout) = @_;
    return $b->expect(qr/^$user (?:$events)\b/, $timeout || 10,
        qr/^$user /) // '';
}
