#!/usr/bin/perl

# nginx -s reload while transactions wait on TCP connections, 2 workers:
# the leaving worker keeps a connection as long as a transaction needs
# it and closes it once none does (each transaction counts itself on its
# flow, ngx_stream_sip_flow_busy()).  First the caller's own connection,
# held by its INVITE's server transaction until the final answer; then a
# connection of ours to a callee over TCP, held by the branch sent on it
# until its final answer.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF2', workers => 2);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass "sip:127.0.0.1:%%PORT_3%%;transport=tcp";
    }
}
EOF2

$t->run();

# messages on a connection until it closes, at most $timeout seconds:
# (codes and methods seen, closed)
sub drain {
    my ($s, $timeout) = @_;

    my $deadline = time() + $timeout;
    my @seen;

    while ((my $left = $deadline - time()) > 0) {
        my ($m, $closed) = stream_recv($s, 1, $left);
        for my $x (@$m) {
            push @seen, $x =~ m{^SIP/2\.0 (\d{3})} ? $1 : ($x =~ /^(\S+)/)[0];
        }
        return (\@seen, 1) if $closed;
    }

    return (\@seen, 0);
}

sub reload {
    kill 'HUP', $t->{pid};

    # the leaving worker looks at its flows once a second
    sleep 2.5;
}

# 1. the caller's connection, held by its server transaction

my $callee = udp_socket(port => $t->port(1));
my $caller = tcp_connect(port => $t->port(0));

stream_send($caller, sip_request(method => 'INVITE',
    uri => 'sip:bob@example.com', transport => 'TCP',
    via_port => $caller->sockport, call_id => 'busy-a-' . int(rand(1e9))));

my ($d) = udp_recv($callee, 5);
like($d && $d->[0] // '', qr/^INVITE /, 'the INVITE reached the callee');

my ($m) = stream_recv($caller, 1, 3);
like($m->[0] // '', qr{^SIP/2\.0 100 }, '100 Trying to the caller');

reload();

my ($seen, $closed) = drain($caller, 0.5);
ok(!$closed, 'after the reload the connection of a pending INVITE is open');

udp_send($callee, sip_response($d->[0], 486, 'Busy Here'),
    '127.0.0.1', $d->[2]);

($seen, $closed) = drain($caller, 5);
is($seen->[0] // 'nothing', 486, 'the final answer came on it');
ok($closed, 'then the leaving worker closed it');

# 2. a connection of ours to the callee, held by the branch sent on it

my $l = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port(3), Listen => 5, ReuseAddr => 1, Proto => 'tcp')
    or die "listen: $@";

my $c = udp_socket();

udp_send($c, sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
    via_port => $c->sockport, call_id => 'busy-b-' . int(rand(1e9))),
    '127.0.0.1', $t->port(2));

my $peer;
$peer = $l->accept() if IO::Select->new($l)->can_read(5);
ok($peer, 'nginx connected to the callee');

SKIP: {
    skip 'no connection to the callee', 4 unless $peer;

    $peer->autoflush(1);

    ($m) = stream_recv($peer, 1, 5);
    like($m->[0] // '', qr/^INVITE /, 'the INVITE came over TCP');

    reload();

    ($seen, $closed) = drain($peer, 0.5);
    ok(!$closed,
        'after the reload the connection of a pending branch is open');

    stream_send($peer, sip_response($m->[0], 486, 'Busy Here'));

    my @codes;
    my $deadline = time() + 5;

    while (!grep({ $_ eq '486' } @codes) && time() < $deadline) {
        my ($r) = udp_recv($c, $deadline - time());
        last unless $r;
        push @codes, (parse_sip($r->[0]) // {})->{code} // 'bad';
    }

    ok((grep { $_ eq '486' } @codes), 'the final answer reached the caller');

    ($seen, $closed) = drain($peer, 5);
    ok($closed, 'then the leaving worker closed the connection (after '
        . (join(' ', @$seen) || 'nothing') . ')');
}

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
