#!/usr/bin/perl

# Flood limits (sip_limit_zone, sip_limit), 4 workers sharing the zone:
# 10,000 OPTIONS from one address get 503 with Retry-After beyond the
# rate and burst (or nothing, with "drop"), while another address is
# served all along; the log says so once a second, not 10,000 times; a
# key other than the address (key=$sip_from_user); allow/deny of nginx's
# stream access module in front.

use strict;
use warnings;

use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    sip_limit_zone flood:1m rate=50r/s;
    sip_limit_zone quiet:1m rate=50r/s;
    sip_limit_zone users:1m rate=2r/m key=$sip_from_user;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.9:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_limit flood burst=20;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_limit quiet burst=20 nodelay drop;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_limit users burst=1;
        deny 127.0.0.11;
    }
}
EOF

$t->run();

sub flood {
    my ($port, $n) = @_;

    my $f = udp_socket(addr => '127.0.0.9');
    my $good = udp_socket();
    my (%codes, $retry, @served);
    my $sel = IO::Select->new($f);

    my $drain = sub {
        while ($sel->can_read(0)) {
            my $buf;
            $f->recv($buf, 65535);
            my $r = parse_sip($buf) or next;
            $codes{$r->{code}}++;
            $retry++ if $r->{h}{'retry-after'};
        }
    };

    for my $i (1 .. $n) {
        udp_send($f, sip_request(via_host => '127.0.0.9',
            via_port => $f->sockport, call_id => "flood-$i"),
            '127.0.0.1', $port);

        next if $i % 20;

        sleep 0.004;
        $drain->();

        next if $i % 500;

        # someone else, all along: a UDP client retransmits as T1 says

        my $r;
        my $msg = sip_request(via_port => $good->sockport,
            call_id => "good-$i");
        for (1 .. 3) {
            udp_send($good, $msg, '127.0.0.1', $port);
            my ($got) = udp_recv($good, 0.5);
            $r = parse_sip($got && $got->[0]) and last;
        }
        push @served, $r ? $r->{code} : 'none';
    }

    sleep 0.5;
    $drain->();

    return (\%codes, $retry || 0, \@served);
}

my $start = time();
my ($codes, $retry, $served) = flood($t->port(0), 10000);
my $took = time() - $start;

ok(($codes->{503} || 0) > 5000, "flood: 503 for most ($codes->{503})");
is($retry, $codes->{503}, 'flood: 503 with Retry-After');
my $ok = $codes->{200} || 0;
my $allowed = 21 + 50 * ($took + 1);
ok($ok >= 20 && $ok <= $allowed,
    "flood: 200 only within rate and burst ($ok in ${\ sprintf '%.1f', $took} s)");
is(join(',', @$served), join(',', ('200') x 20),
    'another address served all along');

my @logged = grep { /SIP limit exceeded by "127.0.0.9" in zone "flood"/ }
    split /\n/, $t->read_log('error.log');
ok(@logged >= 1 && @logged <= 4 * (int($took) + 3),
    'flood: logged once a second per worker (' . scalar(@logged) . ')');

# drop: the flood gets no answer beyond the limit

($codes, $retry, $served) = flood($t->port(1), 3000);
is($codes->{503} || 0, 0, 'drop: no 503');
ok(($codes->{200} || 0) < 1000, "drop: most dropped ($codes->{200} answered)");
is(join(',', @$served), join(',', ('200') x 6), 'drop: others served');

# a key of the configuration's choice: per From user, 2 a minute

my $c = udp_socket();
my @got;
for my $user ('mallory', 'mallory', 'mallory', 'alice') {
    udp_send($c, sip_request(via_port => $c->sockport,
        from => "sip:$user\@example.com"), '127.0.0.1', $t->port(2));
    my ($d) = udp_recv($c, 2);
    push @got, parse_sip($d && $d->[0])->{code};
}
is(join(',', @got), '200,200,503,200', 'key=$sip_from_user');

# deny from nginx's access module: nothing at all

my $d = udp_socket(addr => '127.0.0.11');
udp_send($d, sip_request(via_host => '127.0.0.11', via_port => $d->sockport),
    '127.0.0.1', $t->port(2));
is(scalar(udp_recv($d, 1)), 0, 'deny: no answer');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
