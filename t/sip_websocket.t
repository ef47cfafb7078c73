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
