#!/usr/bin/perl

# SIP over WebSocket (RFC 7118, RFC 6455) on "sip on" TCP and TLS
# listens, 4 workers and 1: the opening handshake (101 with the accept
# key and the sip subprotocol; 400 without it or with a bad key, 426 for
# another version, 403 for an Origin that sip_websocket_origin refuses,
# SIP over TCP on the same port still, sip_websocket off); browsers
# register over WS and WSS with digest, are called from UDP over their
# connection whichever worker holds it (Via, Record-Route, both hang-up
# directions), call a UDP phone, send MESSAGE to each other; keepalives;
# hostile frames each closed with their code while another client is
# served; a handshake that never ends is closed in time.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;
use NgxWebSocket;

my $top = $ENV{NGX_SIP_TOP} || '.';

for my $workers (4, 1) {
    run_all($workers);
}

done_testing();

sub run_all {
    my ($workers) = @_;

    my $t = NgxSip->new()->make_cert('localhost');

    for my $u (['alice', 'alice-secret'], ['bob', 'bob-secret'],
        ['carol', 'carol-secret'])
    {
        system("$top/tools/sip-htdigest", $t->prefix . '/users', $u->[0],
            'example.com', $u->[1]) == 0 or die 'sip-htdigest';
    }

    $t->write_conf(<<~'EOF2', workers => $workers);
    stream {
        sip_location_zone loc:1m;

        map $sip_websocket_origin $ws_origin_ok {
            "https://evil.example"  0;
            default                 1;
        }

        server {
            listen 127.0.0.1:%%PORT_0%%;
            listen 127.0.0.1:%%PORT_0%% udp;
            sip on;
            sip_domain example.com;
            sip_registrar loc;
            sip_auth example.com;
            sip_auth_user_file %%PREFIX%%/users;
            sip_websocket_origin $ws_origin_ok;
            sip_max_message_size 65536;
            sip_connection_timeout 3s;
        }

        server {
            listen 127.0.0.1:%%PORT_1%% ssl;
            listen 127.0.0.1:%%PORT_1%% udp;
            ssl_certificate     %%PREFIX%%/localhost.crt;
            ssl_certificate_key %%PREFIX%%/localhost.key;
            sip on;
            sip_domain example.com;
            sip_registrar loc;
            sip_auth example.com;
            sip_auth_user_file %%PREFIX%%/users;
            sip_connection_timeout 3s;
        }

        server {
            listen 127.0.0.1:%%PORT_2%%;
            sip on;
            sip_domain example.com;
            sip_websocket off;
        }
    }
    EOF2

    $t->run();

    handshakes($t, $workers);
    calls($t, $workers);
    hostile($t, $workers);

    is($t->crashes(), '', "$workers workers: no alerts, no worker crashed");

    $t->stop();
}

sub handshakes {
    my ($t, $w) = @_;
    my $p = $t->port(0);

    my $ws = NgxWebSocket->new(port => $p, origin => 'https://app.example');
    is($ws->status, 101, "$w workers: handshake: 101");
    ok($ws->{accept_ok}, "$w workers: Sec-WebSocket-Accept");
    is($ws->header('sec-websocket-protocol'), 'sip',
        "$w workers: Sec-WebSocket-Protocol: sip");

    my $wss = NgxWebSocket->new(port => $t->port(1), ssl => 1);
    is($wss->status, 101, "$w workers: WSS handshake: 101");

    $ws = NgxWebSocket->new(port => $p, protocol => 'chat');
    is($ws->status, 400, "$w workers: no sip subprotocol: 400");
    like($ws->{body} // '', qr/sip/i, "$w workers: 400 says why");
    is(($ws->recv_close(2))[1], 1, "$w workers: 400: closed");

    $ws = NgxWebSocket->new(port => $p, protocol => undef);
    is($ws->status, 400, "$w workers: no subprotocol at all: 400");

    $ws = NgxWebSocket->new(port => $p, version => 8);
    is($ws->status, 426, "$w workers: version 8: 426");
    is($ws->header('sec-websocket-version'), '13',
        "$w workers: 426 names version 13");

    $ws = NgxWebSocket->new(port => $p, key => 'short==');
    is($ws->status, 400, "$w workers: bad key: 400");

    $ws = NgxWebSocket->new(port => $p, origin => 'https://evil.example');
    is($ws->status, 403, "$w workers: Origin refused by the map: 403");
    is(($ws->recv_close(2))[1], 1, "$w workers: 403: closed");

    $ws = NgxWebSocket->new(port => $t->port(2));
    isnt($ws->status // 0, 101, "$w workers: sip_websocket off: no 101");

    # SIP over TCP on the WebSocket's port, as before
    my $s = tcp_connect(port => $p);
    stream_send($s, sip_request(method => 'OPTIONS', transport => 'TCP',
        uri => 'sip:example.com'));
    my ($m) = stream_recv($s, 1, 3);
    like($m->[0] // '', qr{^SIP/2\.0 200 }, "$w workers: SIP over TCP on the "
        . 'same port: OPTIONS answered');
    close $s;
}

sub credentials {
    my (%a) = @_;
    my $ha1 = md5_hex("$a{user}:example.com:$a{pass}");
    my $ha2 = md5_hex("$a{method}:$a{uri}");
    my $nc = sprintf '%08x', $a{nc} || 1;
    my $resp = md5_hex("$ha1:$a{nonce}:$nc:abcdef:auth:$ha2");
    return "Digest username=\"$a{user}\", realm=\"example.com\", "
        . "nonce=\"$a{nonce}\", uri=\"$a{uri}\", response=\"$resp\", "
        . "algorithm=MD5, cnonce=\"abcdef\", qop=auth, nc=$nc";
}

sub nonce_of {
    my ($r) = @_;
    my ($h) = (@{$r->{h}{'www-authenticate'} || []},
        @{$r->{h}{'proxy-authenticate'} || []});
    return ($h // '') =~ /nonce="([^"]+)"/ ? $1 : '';
}

# a browser: a WebSocket to the WS or WSS port, registered with digest
# as JsSIP does (a made-up .invalid host in Via and Contact)
sub browser {
    my ($t, $user, $tr) = @_;

    my $ws = NgxWebSocket->new(port => $t->port($tr eq 'wss' ? 1 : 0),
        ssl => $tr eq 'wss', origin => 'https://app.example');
    my $host = 'b' . int(rand(1e9)) . '.invalid';
    my %b = (ws => $ws, user => $user, host => $host, tr => $tr,
        contact => "<sip:$user\@$host;transport=$tr>");

    my $reg = sub {
        my (%h) = @_;
        return sip_request(method => 'REGISTER', uri => 'sip:example.com',
            to => "sip:$user\@example.com", from => "sip:$user\@example.com",
            transport => uc $tr, via_host => $host, call_id => "reg-$host",
            cseq => $h{cseq},
            headers => [['Contact', $b{contact}], ['Expires', 600],
                $h{auth} ? (['Authorization', $h{auth}]) : ()]);
    };

    $ws->send_sip($reg->(cseq => 1));
    my $r = parse_sip($ws->recv_sip(5));
    $b{challenge} = $r && $r->{code};
    return \%b unless $r && $r->{code} == 401;

    $ws->send_sip($reg->(cseq => 2, auth => credentials(user => $user,
        pass => "$user-secret", nonce => nonce_of($r), method => 'REGISTER',
        uri => 'sip:example.com')));
    $r = parse_sip($ws->recv_sip(5));
    $b{code} = $r && $r->{code};
    $b{nonce} = nonce_of($r);

    return \%b;
}

sub in_dialog {
    my (%a) = @_;
    return "$a{method} $a{uri} SIP/2.0\r\n"
        . "Via: SIP/2.0/$a{tr} $a{via};branch=z9hG4bK-" . int(rand(1e9))
        . "\r\nRoute: $a{route}\r\nMax-Forwards: 70\r\n"
        . "From: $a{from}\r\nTo: $a{to}\r\n"
        . "Call-ID: $a{cid}\r\nCSeq: $a{cseq} $a{method}\r\n"
        . "Content-Length: 0\r\n\r\n";
}

# UDP: the next response or request from nginx within the time
sub udp_next {
    my ($s, $timeout, $want) = @_;
    my $deadline = time() + $timeout;
    while ((my $left = $deadline - time()) > 0) {
        my ($got) = udp_recv($s, $left) or return undef;
        return $got->[0] if $got->[0] =~ $want;
    }
    return undef;
}

# a UDP caller calls a browser: INVITE reaches it on its WebSocket with
# our Via and Record-Route of its transport, 200, ACK, BYE from either
sub udp_to_browser {
    my ($t, $b, $i, $callee_hangs_up) = @_;

    my $ws = $b->{ws};
    my $c = udp_socket();
    my $cport = $c->sockport;
    my $cid = "ws-call-$i-" . int(rand(1e9));
    my $TR = uc $b->{tr};
    my $port = $t->port($b->{tr} eq 'wss' ? 1 : 0);

    udp_send($c, sip_request(method => 'INVITE',
        uri => "sip:$b->{user}\@example.com", from => 'sip:zed@elsewhere.org',
        via_port => $cport, call_id => $cid,
        headers => [['Contact', "<sip:zed\@127.0.0.1:$cport>"]]),
        '127.0.0.1', $port);

    my $inv = $ws->recv_sip(5) // '';
    return 'no INVITE on the WebSocket' unless $inv =~ /^INVITE /;
    return 'our Via is not ' . $TR
        unless $inv =~ m{\AINVITE [^\r]*\r\nVia: SIP/2\.0/$TR 127\.0\.0\.1:};
    my $rr = join ',', $inv =~ /^Record-Route:\s*(.*?)\r$/mg;
    return "Record-Route '$rr' without transport=$b->{tr} and a UDP side"
        unless $rr =~ /transport=$b->{tr}\b/ && $rr =~ /,/;

    $ws->send_sip(sip_response($inv, 200, 'OK', tag => "b$i",
        headers => [['Contact', $b->{contact}]]));

    my $ok = udp_next($c, 5, qr{^SIP/2\.0 200 }) // '';
    return 'the caller got no 200' unless $ok;

    my $r = parse_sip($ok);
    my @rr = map { split /,\s*/ } @{$r->{h}{'record-route'} || []};
    return 'the 200 has ' . scalar(@rr) . ' Record-Routes' unless @rr == 2;
    my ($from) = @{$r->{h}{from}};
    my ($to) = @{$r->{h}{to}};

    my %caller = (route => join(', ', reverse @rr), from => $from, to => $to,
        cid => $cid, uri => "sip:$b->{user}\@$b->{host};transport=$b->{tr}",
        tr => 'UDP', via => "127.0.0.1:$cport");
    my %callee = (route => join(', ', @rr), from => $to, to => $from,
        cid => $cid, uri => "sip:zed\@127.0.0.1:$cport", tr => $TR,
        via => $b->{host});

    udp_send($c, in_dialog(%caller, method => 'ACK', cseq => 1),
        '127.0.0.1', $port);
    ($ws->recv_sip(5) // '') =~ /^ACK / or return 'no ACK on the WebSocket';

    if ($callee_hangs_up) {
        $ws->send_sip(in_dialog(%callee, method => 'BYE', cseq => 1));
        my $bye = udp_next($c, 5, qr/^BYE /)
            or return 'no BYE at the UDP caller';
        udp_send($c, sip_response($bye, 200, 'OK'), '127.0.0.1', $port);
        my $r200 = $ws->recv_sip(5) // '';
        return "the browser's BYE got '" . (split /\r\n/, $r200)[0] . "'"
            unless $r200 =~ m{^SIP/2\.0 200 };

    } else {
        udp_send($c, in_dialog(%caller, method => 'BYE', cseq => 2),
            '127.0.0.1', $port);
        my $bye = $ws->recv_sip(5) // '';
        return 'no BYE on the WebSocket' unless $bye =~ /^BYE /;
        $ws->send_sip(sip_response($bye, 200, 'OK'));
        udp_next($c, 5, qr{^SIP/2\.0 200 })
            or return 'the caller\'s BYE got no 200';
    }

    return 'ok';
}

# a browser calls a phone registered over UDP (digest: 407 first)
sub browser_to_udp {
    my ($t, $b, $phone, $i) = @_;

    my $ws = $b->{ws};
    my $cid = "ws-out-$i-" . int(rand(1e9));
    my $TR = uc $b->{tr};
    my $branch = 'z9hG4bK-o' . int(rand(1e9));

    my $invite = sub {
        my (@h) = @_;
        return sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
            from => "sip:$b->{user}\@example.com", transport => $TR,
            via_host => $b->{host}, call_id => $cid, cseq => scalar(@h) + 1,
            rport => 1, headers => [['Contact', $b->{contact}], @h]);
    };

    $ws->send_sip($invite->());
    my $r = parse_sip($ws->recv_sip(5));
    return 'no 407 to the browser\'s INVITE' unless $r && $r->{code} == 407;

    # the ACK of the 407 (same branch as that INVITE: sip_ack)
    $ws->send_sip(in_dialog(method => 'ACK', uri => 'sip:bob@example.com',
        tr => $TR, via => $b->{host}, route => '<sip:127.0.0.1;lr>',
        from => $r->{h}{from}[0], to => $r->{h}{to}[0], cid => $cid,
        cseq => 1)) if 0;

    $ws->send_sip($invite->(['Proxy-Authorization', credentials(
        user => $b->{user}, pass => "$b->{user}-secret", nonce => nonce_of($r),
        method => 'INVITE', uri => 'sip:bob@example.com')]));

    my $inv = udp_next($phone, 5, qr/^INVITE /)
        or return 'no INVITE at the UDP phone';
    my @via = $inv =~ /^Via:\s*(.*?)\r$/mg;
    return "the browser's Via without received and rport: $via[1]"
        unless ($via[1] // '') =~ m{^SIP/2\.0/$TR \Q$b->{host}\E;branch=\S+;rport=\d+;received=127\.0\.0\.1$};
    my $cport = $phone->sockport;
    udp_send($phone, sip_response($inv, 200, 'OK', tag => "u$i",
        headers => [['Contact', "<sip:bob\@127.0.0.1:$cport>"]]),
        '127.0.0.1', $t->port(0));

    my $ok;
    for (1 .. 5) {
        my $m = $ws->recv_sip(5) // last;
        next if $m =~ m{^SIP/2\.0 1};
        $ok = $m;
        last;
    }
    return 'the browser got no 200' unless ($ok // '') =~ m{^SIP/2\.0 200 };

    $r = parse_sip($ok);
    my @rr = map { split /,\s*/ } @{$r->{h}{'record-route'} || []};
    return 'the 200 has ' . scalar(@rr) . ' Record-Routes' unless @rr == 2;
    return "the browser's side is not transport=$b->{tr}: $rr[1]"
        unless $rr[1] =~ /transport=$b->{tr}\b/;

    my %caller = (route => join(', ', reverse @rr), from => $r->{h}{from}[0],
        to => $r->{h}{to}[0], cid => $cid,
        uri => "sip:bob\@127.0.0.1:$cport", tr => $TR, via => $b->{host});

    $ws->send_sip(in_dialog(%caller, method => 'ACK', cseq => 2));
    udp_next($phone, 5, qr/^ACK /) or return 'no ACK at the UDP phone';

    $ws->send_sip(in_dialog(%caller, method => 'BYE', cseq => 3));
    my $bye = udp_next($phone, 5, qr/^BYE /)
        or return 'no BYE at the UDP phone';
    udp_send($phone, sip_response($bye, 200, 'OK'), '127.0.0.1',
        $t->port(0));
    ($ws->recv_sip(5) // '') =~ m{^SIP/2\.0 200 }
        or return 'the browser\'s BYE got no 200';

    return 'ok';
}

sub udp_register {
    my ($t, $s, $user) = @_;
    my $port = $s->sockport;
    my $reg = sub {
        my (%h) = @_;
        return sip_request(method => 'REGISTER', uri => 'sip:example.com',
            to => "sip:$user\@example.com", from => "sip:$user\@example.com",
            via_port => $port, call_id => "reg-udp-$user-$port",
            cseq => $h{cseq},
            headers => [['Contact', "<sip:$user\@127.0.0.1:$port>"],
                ['Expires', 600],
                $h{auth} ? (['Authorization', $h{auth}]) : ()]);
    };
    udp_send($s, $reg->(cseq => 1), '127.0.0.1', $t->port(0));
    my $r = parse_sip(udp_next($s, 3, qr{^SIP/}));
    return 0 unless $r && $r->{code} == 401;
    udp_send($s, $reg->(cseq => 2, auth => credentials(user => $user,
        pass => "$user-secret", nonce => nonce_of($r), method => 'REGISTER',
        uri => 'sip:example.com')), '127.0.0.1', $t->port(0));
    $r = parse_sip(udp_next($s, 3, qr{^SIP/}));
    return $r && $r->{code};
}

sub calls {
    my ($t, $w) = @_;

    my $bob = udp_socket();
    is(udp_register($t, $bob, 'bob'), 200,
        "$w workers: bob registered over UDP");

    for my $tr ('ws', 'wss') {
        my $b = browser($t, 'alice', $tr);
        is($b->{challenge}, 401, "$w workers: \U$tr\E REGISTER: 401 first");
        is($b->{code}, 200, "$w workers: \U$tr\E REGISTER with digest: 200");

        my @bad;
        for my $i (1 .. 6) {
            my $res = udp_to_browser($t, $b, $i, $i % 2);
            push @bad, "call $i: $res" if $res ne 'ok';
        }
        is(join('; ', @bad), '', "$w workers: UDP callers to an \U$tr\E "
            . 'browser: INVITE on its WebSocket, 200, ACK, BYE from either');

        is(browser_to_udp($t, $b, $bob, 1), 'ok',
            "$w workers: \U$tr\E browser calls a UDP phone");

        # keepalives: a WebSocket ping, a double CRLF in a frame
        $b->{ws}->send_frame(opcode => 9, payload => 'are you there');
        my $f = $b->{ws}->recv_frame(3);
        is($f && "$f->{opcode} $f->{payload}", '10 are you there',
            "$w workers: \U$tr\E ping: pong with its payload");
        $b->{ws}->send_frame(opcode => 1, payload => "\r\n\r\n");
        $f = $b->{ws}->recv_frame(3);
        is($f && "$f->{opcode} " . unpack('H*', $f->{payload}), '1 0d0a',
            "$w workers: \U$tr\E double CRLF: a CRLF back in a frame");
        ok($f && !$f->{masked}, "$w workers: our frames are not masked");

        # the browser goes: the next call to it fails, not connected to
        $b->{ws}->send_frame(opcode => 8, payload => pack('n', 1000));
        my ($code, $closed) = $b->{ws}->recv_close(3);
        is("@{[$code // 'none']} $closed", '1000 1',
            "$w workers: \U$tr\E close 1000: echoed, then closed");
        sleep 0.3;

        my $c = udp_socket();
        udp_send($c, sip_request(method => 'INVITE',
            uri => 'sip:alice@example.com', from => 'sip:zed@elsewhere.org',
            via_port => $c->sockport), '127.0.0.1',
            $t->port($tr eq 'wss' ? 1 : 0));
        my $r = parse_sip(udp_next($c, 5, qr{^SIP/2\.0 [2-6]}));
        like($r && $r->{code}, qr/^(430|480)$/,
            "$w workers: \U$tr\E browser gone: "
            . ($r ? "$r->{code} $r->{reason}" : 'no answer'));
    }

    # MESSAGE between browsers, from fresh connections (other workers)
    my $carol = browser($t, 'carol', 'wss');
    is($carol->{code}, 200, "$w workers: carol registered over WSS");

    my @bad;
    for my $i (1 .. 8) {
        my $a = browser($t, 'alice', 'ws');
        my $cid = "msg-$i-" . int(rand(1e9));
        my $msg = sub {
            my (@h) = @_;
            return sip_request(method => 'MESSAGE',
                uri => 'sip:carol@example.com', from => 'sip:alice@example.com',
                transport => 'WS', via_host => $a->{host}, call_id => $cid,
                cseq => scalar(@h) + 1, body => "hello $i",
                headers => [['Content-Type', 'text/plain'], @h]);
        };
        $a->{ws}->send_sip($msg->());
        my $r = parse_sip($a->{ws}->recv_sip(5));
        unless ($r && $r->{code} == 407) {
            push @bad, "$i: no 407";
            next;
        }
        $a->{ws}->send_sip($msg->(['Proxy-Authorization', credentials(
            user => 'alice', pass => 'alice-secret', nonce => nonce_of($r),
            method => 'MESSAGE', uri => 'sip:carol@example.com')]));
        my $m = $carol->{ws}->recv_sip(5) // '';
        unless ($m =~ /^MESSAGE .*hello $i\z/s) {
            push @bad, "$i: no MESSAGE at carol";
            next;
        }
        $carol->{ws}->send_sip(sip_response($m, 200, 'OK'));
        $r = parse_sip($a->{ws}->recv_sip(5));
        push @bad, "$i: " . ($r ? $r->{code} : 'no answer')
            unless $r && $r->{code} == 200;
    }
    is(join('; ', @bad), '', "$w workers: MESSAGE WS -> WSS from 8 "
        . 'connections: delivered on carol\'s WebSocket, 200 back');
}

sub hostile {
    my ($t, $w) = @_;
    my $p = $t->port(0);

    # a client served all along
    my $good = NgxWebSocket->new(port => $p);
    my $served = sub {
        $good->send_sip(sip_request(method => 'OPTIONS', transport => 'WS',
            via_host => 'g.invalid', uri => 'sip:example.com'));
        return ($good->recv_sip(3) // '') =~ m{^SIP/2\.0 200 } ? 1 : 0;
    };
    is($served->(), 1, "$w workers: OPTIONS over WS: 200");

    my $opt = sip_request(method => 'OPTIONS', transport => 'WS',
        via_host => 'h.invalid', uri => 'sip:example.com');

    my @cases = (
        ['unmasked', 1002, ws_frame(opcode => 1, payload => $opt, mask => 0)],
        ['RSV1 set', 1002, ws_frame(opcode => 1, payload => $opt, rsv => 4)],
        ['opcode 3', 1002, ws_frame(opcode => 3, payload => 'x')],
        ['opcode 0xB', 1002, ws_frame(opcode => 0xb, payload => '')],
        ['continuation first', 1002, ws_frame(opcode => 0, payload => 'x')],
        ['text inside a fragmented message', 1002,
            ws_frame(opcode => 1, payload => 'OPT', fin => 0)
            . ws_frame(opcode => 1, payload => 'IONS')],
        ['fragmented ping', 1002, ws_frame(opcode => 9, fin => 0)],
        ['ping of 126 octets', 1002,
            ws_frame(opcode => 9, payload => 'p' x 126)],
        ['16-bit length under 126 (a length that lies)', 1002,
            ws_frame(opcode => 1, payload => 'abc', len_bits => 16)],
        ['64-bit length with the top bit set', 1002,
            ws_frame(opcode => 2, len => 2**63, payload => '', len_bits => 64)
            . 'x' x 20],
        ['invalid UTF-8 in a text message', 1007,
            ws_frame(opcode => 1, payload => "OPTIONS \xff")],
        ['a frame of 10 MB', 1009,
            substr(ws_frame(opcode => 2, len => 10 * 1024 * 1024,
                payload => ''), 0) . 'x' x 4096],
        ['fragments over sip_max_message_size', 1009,
            ws_frame(opcode => 2, payload => 'a' x 40000, fin => 0)
            . ws_frame(opcode => 0, payload => 'b' x 40000)],
        ['close code 1005 sent', 1002,
            ws_frame(opcode => 8, payload => pack('n', 1005))],
    );

    for my $c (@cases) {
        my ($name, $code, $bytes) = @$c;
        my $ws = NgxWebSocket->new(port => $p);
        $ws->raw($bytes);
        my ($got, $closed) = $ws->recv_close(5);
        is(($got // 'none') . " $closed", "$code 1",
            "$w workers: $name: close $code, connection closed");
    }

    is($served->(), 1, "$w workers: the other client still served");

    # allowed: a ping between fragments, answered before the message
    my $ws = NgxWebSocket->new(port => $p);
    my $half = int(length($opt) / 2);
    $ws->raw(ws_frame(opcode => 1, payload => substr($opt, 0, $half), fin => 0)
        . ws_frame(opcode => 9, payload => 'mid')
        . ws_frame(opcode => 0, payload => substr($opt, $half)));
    my $f1 = $ws->recv_frame(3);
    my $f2 = $ws->recv_frame(3);
    is(join(' ', $f1 && $f1->{opcode}, $f2 && $f2->{opcode}), '10 1',
        "$w workers: ping between fragments: pong, then the answer");
    like($f2 && $f2->{payload}, qr{^SIP/2\.0 200 },
        "$w workers: the fragmented OPTIONS answered");

    # one octet at a time, binary, masked with a 16-bit length
    my $big = sip_request(method => 'OPTIONS', transport => 'WS',
        via_host => 'h.invalid', uri => 'sip:example.com',
        headers => [['X-Pad', 'p' x 300]]);
    $ws->raw($_) for split //, ws_frame(opcode => 2, payload => $big);
    my $r = $ws->recv_sip(3) // '';
    like($r, qr{^SIP/2\.0 200 }, "$w workers: a binary frame with a 16-bit "
        . 'length, sent an octet at a time: answered');

    # a handshake that never ends: closed at the timeout, or the size
    my $slow = NgxWebSocket->new(port => $p, no_handshake => 1);
    $slow->raw("GET / HTTP/1.1\r\nHost: localhost\r\n");
    my $t0 = time();
    my $pongs = 0;
    while (!$slow->closed && time() - $t0 < 8) {
        $slow->fill(time() + 0.5);
        $good->send_frame(opcode => 9, payload => 'still');
        my $f = $good->recv_frame(2);
        $pongs++ if $f && $f->{opcode} == 10;
    }
    my $took = time() - $t0;
    ok($slow->closed && $took < 6, "$w workers: a handshake that stops "
        . 'half way: closed in ' . sprintf('%.1f', $took) . 's');
    ok($pongs >= 4, "$w workers: another client's pings answered meanwhile "
        . "($pongs)");

    my $long = NgxWebSocket->new(port => $p, no_handshake => 1);
    $long->raw("GET / HTTP/1.1\r\nHost: localhost\r\n");
    $long->raw("X-$_: " . ('y' x 100) . "\r\n") for 1 .. 100;
    my $ok = $long->fill(time() + 3);
    like($long->{buf}, qr{^HTTP/1\.1 400 },
        "$w workers: a handshake over 8 KB: 400");

    is($served->(), 1, "$w workers: the other client served throughout");

    # an idle WebSocket (sip_connection_timeout 3s) is told why it goes
    my $idle = NgxWebSocket->new(port => $p);
    my ($icode, $iclosed) = $idle->recv_close(8);
    is(($icode // 'none') . " $iclosed", '1001 1',
        "$w workers: idle WebSocket: close 1001 Going Away, then closed");
}
