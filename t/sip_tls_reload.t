#!/usr/bin/perl

# nginx -s reload with a new certificate, 4 workers: a TLS phone
# registered before it is called through its connection; after the
# reload the old worker closes the idle connection, the phone connects
# again and gets the new certificate, its binding (and another phone's)
# is still there, and calls reach it on its new connection.

use strict;
use warnings;

use Test::More;
use File::Copy qw(copy);
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new()->make_cert('old')->make_cert('new');
my $p = $t->prefix;

copy("$p/old.crt", "$p/server.crt");
copy("$p/old.key", "$p/server.key");

$t->write_conf(<<'EOF2', workers => 4);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/server.crt;
        ssl_certificate_key %%PREFIX%%/server.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
    }
}
EOF2

$t->run();

my $port = $t->port(0);

sub phone {
    my $s = tcp_connect(port => $t->port(1), ssl => 1);
    stream_send($s, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:tlsphone@example.com', transport => 'TLS',
        via_host => '10.9.9.9', via_port => 5999,
        call_id => 'reg-tlsphone-' . int(rand(1e9)),
        headers => [['Contact', '<sip:tlsphone@10.9.9.9:5999;transport=tls>'],
            ['Expires', 600]]));
    my ($m) = stream_recv($s, 1, 5);
    return ($s, parse_sip($m->[0] // ''));
}

sub call {
    my ($phone) = @_;
    my $c = udp_socket();
    udp_send($c, sip_request(method => 'MESSAGE',
        uri => 'sip:tlsphone@example.com', via_port => $c->sockport),
        '127.0.0.1', $port);
    my ($m) = stream_recv($phone, 1, 5);
    return 'nothing on the connection' unless ($m->[0] // '') =~ /^MESSAGE /;
    stream_send($phone, sip_response($m->[0], 200, 'OK'));
    my ($d) = udp_recv($c, 3);
    my $r = parse_sip($d && $d->[0]);
    return $r ? $r->{code} : 'no answer';
}

# a UDP phone too, to count the bindings after the reload

my $u = udp_socket();
udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:example.com',
    to => 'sip:udpphone@example.com', via_port => $u->sockport,
    headers => [['Contact', '<sip:udpphone@127.0.0.1:' . $u->sockport . '>'],
        ['Expires', 600]]), '127.0.0.1', $port);
my ($d) = udp_recv($u, 3);
like($d && $d->[0] // '', qr/^SIP\/2\.0 200 /, 'UDP phone registered');

my ($phone, $r) = phone();
is($r && $r->{code}, 200, 'TLS phone registered');
like($phone->peer_certificate('subject'), qr/CN ?= ?old/, 'old certificate');
is(call($phone), 200, 'call on the first connection');

# the new certificate, then reload

# as an operator's tooling does (certbot, ansible): written elsewhere,
# then renamed over the old file.  Since 1.27.4 nginx keeps a cached
# certificate over a reload when the file's inode and mtime (seconds) are
# unchanged, so one rewritten in place within the second is not reread.

for my $f ('crt', 'key') {
    copy("$p/new.$f", "$p/server.$f.tmp") or die "copy: $!";
    rename("$p/server.$f.tmp", "$p/server.$f") or die "rename: $!";
}

kill 'HUP', $t->{pid};
sleep 1.5;

my (undef, $closed) = stream_recv($phone, 1, 5);
ok($closed, 'the old worker closed the idle connection');

($phone, $r) = phone();
is($r && $r->{code}, 200, 'the phone registered again');
like($phone->peer_certificate('subject'), qr/CN ?= ?new/,
    'new connections get the new certificate');
is(call($phone), 200, 'calls reach it on its new connection');

udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:example.com',
    to => 'sip:udpphone@example.com', via_port => $u->sockport,
    call_id => 'query-' . int(rand(1e9))), '127.0.0.1', $port);
($d) = udp_recv($u, 3);
like($d && $d->[0] // '', qr/^Contact: <sip:udpphone\@127\.0\.0\.1:\d+>;expires=/m,
    'the other binding survived the reload');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
