#!/usr/bin/perl

# SIP over WebSocket (RFC 7118) with real client libraries, 1 and 4
# workers: JsSIP and SIP.js (npm, run from Node by t/js/ua.mjs with the
# ws package as their WebSocket) register over WS and WSS (one JsSIP over
# WSS on IPv6, the rest on IPv4) with digest
# (sip_auth), send each other MESSAGE through nginx, are called from a
# SIPp UDP caller (INVITE/200/ACK/BYE through the record-routing proxy,
# which record-routes twice, transport=ws/wss on the browser's side) and
# call each other, one hanging up and then the other; nginx is reloaded,
# every client connects and registers again (the old workers close idle
# WebSockets at once) and is called from UDP again.  The WS and WSS
# listens have reuseport, so with 4 workers the clients' connections are
# spread over the workers and requests cross them.
#
# NGX_SIP_WS_SERVER=kamailio runs the same against Kamailio 5.6 and its
# websocket module (bench/kamailio-ws.cfg): the check of the clients and
# of this test themselves.

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

plan skip_all => 'no node, npm packages, sipp or IPv6'
    unless need_js('jssip', 'sip.js', 'ws') && need($sipp, 'sipp (sip-tester)')
        && need(have_ipv6(), 'IPv6 on lo');

for my $workers ($ENV{NGX_SIP_WS_WORKERS} ? ($ENV{NGX_SIP_WS_WORKERS})
    : (1, 4))
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

    # user, library, scheme, the server's address; the last over IPv6
    my @clients = (['jsws', 'jssip', 'ws'], ['jswss', 'jssip', 'wss'],
        ['sjws', 'sipjs', 'ws'], ['sjwss', 'sipjs', 'wss'],
        ['jswss6', 'jssip', 'wss', '[::1]']);

    for my $c (@clients) {
        system("$top/tools/sip-htdigest", "$p/users", $c->[0],
            'example.com', "$c->[0]-Secret") == 0 or die 'sip-htdigest';
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
        listen [::1]:%%PORT_2%% ssl reuseport;
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
    my %ua;

    for my $c (@clients) {
        my ($user, $lib, $scheme, $addr) = @$c;
        $ua{$user} = NgxWsClient->new(lib => $lib, user => $user,
            pass => "$user-Secret", answer => 1,
            url => "$scheme://" . ($addr || '127.0.0.1') . ':'
                . ($scheme eq 'ws' ? $ws : $wss),
            log => "$p/$user.log", debug => 1);
        $ua{$user}->cmd('register');
    }

    for my $c (@clients) {
        my $u = $ua{$c->[0]};
        is($u->expect(qr/^(registered|regfail)/, 15), 'registered',
            "$w: $c->[1] registers over $c->[2]"
            . ($c->[3] ? " on IPv6" : '') . " with digest")
            or diag("$c->[0]: " . $u->events());
    }

    # with 4 nginx workers, the JsSIP and the SIP.js client of a scheme
    # in two workers (the SIP.js one connects again until so): the ring
    # below then crosses workers

    for my $pair (['jsws', 'sjws', $ws], ['jswss', 'sjwss', $wss]) {
        last if $server ne 'nginx' || $workers == 1;

        my ($first, $second, $port) = @$pair;
        my $w1 = ws_worker($ua{$first}, $port);
        my $w2 = ws_worker($ua{$second}, $port);

        for (1 .. 20) {
            last if !$w1 || !$w2 || $w1 != $w2;

            my $c = (grep { $_->[0] eq $second } @clients)[0];
            $ua{$second}->stop();
            $ua{$second} = NgxWsClient->new(lib => $c->[1], user => $second,
                pass => "$second-Secret", answer => 1,
                url => "$c->[2]://127.0.0.1:$port",
                log => "$p/$second.log", debug => 1);
            $ua{$second}->cmd('register');
            $ua{$second}->expect(qr/^(registered|regfail)/, 15);
            $w2 = ws_worker($ua{$second}, $port);
        }

        ok($w1 && $w2 && $w1 != $w2,
            "$w: $first and $second in two workers ($w1, $w2)")
            or diag(`ss -tnpH state established`);
    }

    # MESSAGE around the ring of the four

    for my $i (0 .. $#clients) {
        my $from = $clients[$i][0];
        my $to = $clients[($i + 1) % @clients][0];
        my $text = "hello-$from-to-$to";

        $ua{$from}->cmd("message sip:$to\@example.com $text");

        is($ua{$from}->expect(qr/^(sent|sendfail)/, 10), 'sent',
            "$w: MESSAGE $from -> $to answered 200")
            or diag("$from: " . $ua{$from}->events());
        is($ua{$to}->expect(qr/^message /, 10), "message $from $text",
            "$w: MESSAGE $from -> $to delivered")
            or diag("$to: " . $ua{$to}->events());
    }

    # a SIPp UDP caller (trusted 127.0.0.2, not challenged) calls each,
    # and hangs up

    my $sc = sipp_scenarios();
    $t->write_file('uac_call.xml', $sc->{uac_call});

    for my $c (@clients) {
        my $user = $c->[0];
        my $lp = NgxSip->new()->port('uac');
        my $rc = system("cd $p && timeout 60 $sipp -sf $p/uac_call.xml"
            . " -s $user -i 127.0.0.2 -p $lp -m 1 -nostdin"
            . " -timeout 30s -timeout_error -default_behaviors all,-abortunexp"
            . " -trace_err -trace_msg -message_file $p/uac_$user.msg"
            . " -error_file $p/uac_$user.err"
            . " 127.0.0.2:$udp >$p/uac_$user.out 2>&1");

        is($rc >> 8, 0, "$w: SIPp over UDP calls $c->[1] over $c->[2]:"
            . " INVITE/200/ACK/BYE/200")
            or diag(`tail -40 $p/uac_$user.err $p/uac_$user.msg`);

        # RFC 7118 5.5: the transport changes at the proxy, so it
        # record-routes twice, the browser's side with transport=ws/wss
        # (Kamailio says ws for both)
        my $tr = $server eq 'nginx' ? $c->[2] : 'ws';
        my ($ok) = grep { /^CSeq: 1 INVITE$/m } split /\n\n/,
            `grep -A20 '^SIP/2.0 200 OK' $p/uac_$user.msg` =~ s/\r//gr;
        my @rr = ($ok // '') =~ /^Record-Route: (.*)$/mg;
        ok(@rr == 2 && $rr[0] =~ /;transport=$tr[;>]/
            && $rr[1] !~ /transport=/,
            "$w: the 200 from $user, record-routed over $c->[2] and UDP")
            or diag(join "\n", @rr);

        my $u = $ua{$user};
        ok($u->expect(qr/^incoming sipp$/, 5)
            && $u->expect(qr/^confirmed$/, 5)
            && $u->expect(qr/^ended remote$/, 5),
            "$w: $user answered, had the ACK and the BYE")
            or diag("$user: " . $u->events());
    }

    # the clients call each other around the ring; the caller hangs up,
    # then the callee

    for my $i (0 .. $#clients) {
        my $a = $clients[$i][0];
        my $b = $clients[($i + 1) % @clients][0];
        my ($hang, $other) = $i % 2 ? ($b, $a) : ($a, $b);

        $ua{$a}->cmd("call sip:$b\@example.com");

        my $in = $ua{$b}->expect(qr/^incoming /, 10);
        my $ca = $ua{$a}->expect(qr/^(confirmed|callfail)/, 10);
        my $cb = $ua{$b}->expect(qr/^(confirmed|callfail)/, 10);

        ok(($in // '') eq "incoming $a" && ($ca // '') eq 'confirmed'
            && ($cb // '') eq 'confirmed',
            "$w: $a calls $b: INVITE/200/ACK")
            or diag("$a: " . $ua{$a}->events() . "\n$b: "
                . $ua{$b}->events());

        $ua{$hang}->cmd('hangup');

        ok(($ua{$hang}->expect(qr/^ended /, 10) // '') eq 'ended local'
            && ($ua{$other}->expect(qr/^ended /, 10) // '') eq 'ended remote',
            "$w: $hang hangs up on $other: BYE")
            or diag("$hang: " . $ua{$hang}->events() . "\n$other: "
                . $ua{$other}->events());
    }

    # nginx -s reload: the old workers close the idle WebSockets at once
    # (docs/design.md, "What a reload does"); each client connects again
    # to the new workers and registers again (JsSIP connects again by
    # itself, SIP.js by ua.mjs as its examples do), and is reachable
    # from UDP there

    if (!$kpid) {
        kill 'HUP', $t->{pid};

        for my $c (@clients) {
            my $u = $ua{$c->[0]};
            ok($u->expect(qr/^disconnected$/, 10)
                && $u->expect(qr/^connected$/, 15)
                && ($u->expect(qr/^(registered|regfail)/, 15) // '')
                    eq 'registered',
                "$w: reload: $c->[0] connects and registers again")
                or diag("$c->[0]: " . $u->events());
        }

        for my $c (@clients) {
            my $user = $c->[0];
            my $lp = NgxSip->new()->port('uac');
            my $rc = system("cd $p && timeout 60 $sipp -sf $p/uac_call.xml"
                . " -s $user -i 127.0.0.2 -p $lp -m 1 -nostdin"
                . " -timeout 30s -timeout_error"
                . " -default_behaviors all,-abortunexp"
                . " -trace_err -error_file $p/uac2_$user.err"
                . " 127.0.0.2:$udp >$p/uac2_$user.out 2>&1");

            is($rc >> 8, 0, "$w: after the reload, SIPp calls $user")
                or diag(`tail -n 40 $p/uac2_$user.err`);
            ok($ua{$user}->expect(qr/^ended remote$/, 5),
                "$w: after the reload, $user had the BYE")
                or diag("$user: " . $ua{$user}->events());
        }
    }

    $_->stop() for values %ua;

    if ($kpid) {
        kamailio_stop($kpid);
        return;
    }

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

# the pid of the nginx worker holding a client's connection to $port
sub ws_worker {
    my ($ua, $port) = @_;

    my @ss = `ss -tnpH state established 2>/dev/null`;
    my $lport;

    for (@ss) {
        $lport = $1 if /pid=$ua->{pid},/
            && /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:$port\s/;
    }

    return 0 unless $lport;

    for (@ss) {
        return $1 if /127\.0\.0\.1:$port\s+127\.0\.0\.1:$lport\s
            .*"nginx",pid=(\d+),/x;
    }

    return 0;
}
