#!/usr/bin/perl

# sip_pass to nginx upstream {} blocks, through nginx's own peer API:
# round robin shared by 4 workers (zone), failover to the next peer when
# one does not answer (and max_fails keeps it out afterwards) or answers
# 503, all peers failing, a single peer's 503 becoming 500, all peers
# down, hash $sip_call_id consistent, and sip_pass with variables (map).

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    log_format sip '$sip_status $sip_call_id $sip_duration $upstream_addr '
                   '$upstream_session_time';
    access_log %%PREFIX%%/logs/sip.log sip;

    upstream rr {
        zone rr 64k;
        server 127.0.0.1:%%PORT_10%%;
        server 127.0.0.1:%%PORT_11%%;
    }

    upstream failover {
        zone failover 64k;
        server 127.0.0.1:%%PORT_12%% max_fails=1 fail_timeout=60s;
        server 127.0.0.1:%%PORT_13%%;
    }

    upstream busy {
        zone busy 64k;
        server 127.0.0.1:%%PORT_14%%;
        server 127.0.0.1:%%PORT_13%%;
    }

    upstream dead {
        server 127.0.0.1:%%PORT_14%%;
        server 127.0.0.1:%%PORT_15%%;
    }

    upstream byhash {
        hash $sip_call_id consistent;
        server 127.0.0.1:%%PORT_10%%;
        server 127.0.0.1:%%PORT_11%%;
    }

    upstream down {
        server 127.0.0.1:%%PORT_10%% down;
    }

    upstream lc {
        zone lc 64k;
        least_conn;
        server 127.0.0.1:%%PORT_10%%;
        server 127.0.0.1:%%PORT_11%%;
    }

    upstream rnd {
        zone rnd 64k;
        random;
        server 127.0.0.1:%%PORT_10%%;
        server 127.0.0.1:%%PORT_11%%;
    }

    upstream weighted {
        zone weighted 64k;
        server 127.0.0.1:%%PORT_10%% weight=3;
        server 127.0.0.1:%%PORT_11%%;
    }

    upstream withbackup {
        zone withbackup 64k;
        server 127.0.0.1:%%PORT_12%% max_fails=1;
        server 127.0.0.1:%%PORT_13%% backup;
    }

    map $sip_from_user $route {
        alice     rr;
        carol     sip:127.0.0.1:%%PORT_11%%;
        default   "";
    }

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass rr;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_pass failover;
        sip_timers 50ms 400ms 500ms;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass busy;
    }

    server {
        listen 127.0.0.1:%%PORT_3%% udp;
        sip on;
        sip_domain example.com;
        sip_pass dead;
    }

    server {
        listen 127.0.0.1:%%PORT_4%% udp;
        sip on;
        sip_domain example.com;
        sip_pass byhash;
    }

    server {
        listen 127.0.0.1:%%PORT_5%% udp;
        sip on;
        sip_domain example.com;
        sip_pass $route;
    }

    server {
        listen 127.0.0.1:%%PORT_6%% udp;
        sip on;
        sip_domain example.com;
        sip_pass down;
    }

    server {
        listen 127.0.0.1:%%PORT_20%% udp;
        sip on;
        sip_domain example.com;
        sip_pass lc;
    }

    server {
        listen 127.0.0.1:%%PORT_21%% udp;
        sip on;
        sip_domain example.com;
        sip_pass rnd;
    }

    server {
        listen 127.0.0.1:%%PORT_22%% udp;
        sip on;
        sip_domain example.com;
        sip_pass weighted;
    }

    server {
        listen 127.0.0.1:%%PORT_23%% udp;
        sip on;
        sip_domain example.com;
        sip_pass withbackup;
        sip_timers 50ms 400ms 500ms;
    }

    server {
        listen 127.0.0.1:%%PORT_7%% udp;
        sip on;
        sip_domain example.com;
        sip_pass "sip:127.0.0.1:%%PORT_14%%;transport=udp";
    }
}
EOF

$t->run();

# the peers: each records the Call-IDs it saw, and answers with its code
# (none: it never answers)

my %seen;
my @peer;

for my $n (10 .. 15) {
    my $code = { 10 => 200, 11 => 200, 12 => 0, 13 => 200, 14 => 503,
        15 => 503 }->{$n};
    my $s = udp_socket(port => $t->port($n));

    push @peer, [$s, sub {
        my ($req) = @_;
        my $m = sip_method($req) or return;
        my ($cid) = $req =~ /^Call-ID:\s*(\S+)/mi;
        $seen{$n}{$cid}++;
        return if $m eq 'ACK' || !$code;
        return sip_response($req, $code,
            $code == 200 ? 'OK' : 'Service Unavailable');
    }];
}

my $c = udp_socket();
my $seq = 0;

my $send = sub {
    my ($port, %h) = @_;
    my $cid = $h{call_id} || 'up' . $seq++ . '-' . int(rand(1e9));
    my @r = sip_exchange(client => $c, port => $t->port($port),
        uas => \@peer, after => 0.1, timeout => $h{timeout} || 10,
        msg => sip_request(method => 'MESSAGE', uri => 'sip:bob@example.com',
            via_port => $c->sockport, call_id => $cid,
            from => $h{from} || 'sip:tester@example.com'));
    my ($final) = grep { $_->{code} >= 200 } @r;
    return ($final ? "$final->{code} $final->{reason}" : 'none', $cid);
};

my $count = sub {
    my ($n) = @_;
    return scalar keys %{$seen{$n} || {}};
};

# round robin over 4 workers: the zone makes it one rotation

my @codes = map { ($send->(0))[0] } 1 .. 8;
is(join(',', @codes), join(',', ('200 OK') x 8), 'rr: all answered');
is($count->(10) . '/' . $count->(11), '4/4', 'rr: shared by both peers');

# failover: the first peer never answers, the next one does; then the
# first stays out for fail_timeout (max_fails=1)

%seen = ();
my ($code) = $send->(1);
is($code, '200 OK', 'failover: answered by the next peer after timer F');
is($count->(12) . '/' . $count->(13), '1/1', 'failover: both peers tried');
@codes = map { ($send->(1, timeout => 2))[0] } 1 .. 3;
is(join(',', @codes), join(',', ('200 OK') x 3),
    'failover: later requests answered at once');
is($count->(12), 1, 'failover: the failed peer is left out (max_fails)');

# a 503 sends the request to the next peer

%seen = ();
@codes = map { ($send->(2))[0] } 1 .. 2;
is(join(',', @codes), '200 OK,200 OK', '503: the next peer answers');
ok($count->(14) >= 1, '503: the first peer was asked');

# every peer 503: no peer left, said so

($code) = $send->(3);
is($code, '503 No Upstream Peer Answered', 'all peers 503');

# the only next hop 503: 500 to the caller (RFC 3261 16.7)

($code) = $send->(7);
is($code, '500 Next Hop Unavailable', 'a single peer\'s 503 becomes 500');

# all down

($code) = $send->(6);
is($code, '503 No Upstream Peer Available', 'all peers down');

# hash $sip_call_id consistent: one Call-ID, one peer; many, both

%seen = ();
$send->(4, call_id => 'same-call-id') for 1 .. 5;
is(($seen{10}{'same-call-id'} || 0) + ($seen{11}{'same-call-id'} || 0) > 0
    && !($seen{10}{'same-call-id'} && $seen{11}{'same-call-id'}) ? 1 : 0,
    1, 'hash: one Call-ID always to one peer');
$send->(4) for 1 .. 16;
ok($count->(10) > 0 && $count->(11) > 0, 'hash: Call-IDs spread');

# variables: a map over $sip_from_user names an upstream or an address

%seen = ();
($code) = $send->(5, from => 'sip:alice@example.com');
is($code, '200 OK', 'sip_pass $route: upstream by name');
($code) = $send->(5, from => 'sip:carol@example.com');
is($code, '200 OK', 'sip_pass $route: an address');
is($count->(11) >= 1 ? 1 : 0, 1, 'sip_pass $route: the address was used');
($code) = $send->(5, from => 'sip:mallory@example.com');
like($code, qr/^4\d\d/, "sip_pass \$route empty: not forwarded ($code)");

# least_conn, random, weight, backup: nginx's own balancers

for my $u ([20, 'least_conn'], [21, 'random']) {
    %seen = ();
    @codes = map { ($send->($u->[0]))[0] } 1 .. 16;
    is(join(',', @codes), join(',', ('200 OK') x 16), "$u->[1]: answered");
    ok($count->(10) > 0 && $count->(11) > 0,
        "$u->[1]: both peers used (" . $count->(10) . '/' . $count->(11) . ')');
}

%seen = ();
$send->(22) for 1 .. 8;
is($count->(10) . '/' . $count->(11), '6/2', 'weight=3: 6 of 8');

%seen = ();
($code) = $send->(23);
is($code, '200 OK', 'backup: answers when the primary does not');
is($count->(12) . '/' . $count->(13), '1/1', 'backup: tried after primary');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

# per transaction: the final answer's line has its duration and peer

my @lines = grep { /^200 up\S+ \d+\.\d{3} 127\.0\.0\.1:\d+ \d+\.\d{3}$/ }
    split /\n/, $t->read_log('sip.log');
ok(@lines >= 8, 'access log: transactions with $sip_duration, '
    . '$upstream_addr, $upstream_session_time (' . scalar(@lines) . ')');
my ($failover) = grep { /^200 up8-/ } split /\n/, $t->read_log('sip.log');
like($failover // '', qr/^200 up8-\S+ [3-9]\.\d{3} /,
    'the failover transaction took its timer F (' . ($failover // '') . ')');
like($t->read_log('error.log'), qr/upstream server temporarily disabled/,
    'max_fails logged by nginx');

done_testing();
