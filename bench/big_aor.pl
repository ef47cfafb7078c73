#!/usr/bin/perl

# One AOR with N bindings of rising q (20 per q level, loaded from a
# state file), 2 workers: the time from an INVITE sent to it to the first
# forked INVITE at the phones (lookup + fork), one at a time; the time
# of a REGISTER over TCP that adds one binding and gets every binding in
# its 200; the slowest REGISTER of another AOR while INVITEs to the big
# one come in back to back.  Loopback only; run inside "unshare -n" (make
# bench-big-aor does).  NGX_SIP_MODULE picks the module (another build to
# compare).
#
#   bench/big_aor.pl [N ...]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use IO::Select;
use Time::HiRes qw(time);
use NgxSip;

my @sizes = @ARGV ? @ARGV : (1000, 5000, 20000);

sub median {
    my @v = sort { $a <=> $b } @_;
    return $v[int(@v / 2)];
}

printf "%8s %14s %14s %14s %14s %14s\n", 'bindings', 'INVITE median',
    'INVITE max', 'REGISTER/TCP', '31 Contacts', 'other AOR max';

for my $n (@sizes) {
    my $t = NgxSip->new();
    mkdir $t->prefix . '/state';
    chmod 0777, $t->prefix . '/state';

    my $sink = udp_socket();
    my $exp = int(time()) + 3000;

    open my $fh, '>', $t->prefix . '/state/big.state' or die $!;
    for my $i (0 .. $n - 1) {
        print $fh join("\t", 'sip:alice@example.com', $exp, int($i / 20) % 1001,
            1, 0, "sip:alice-$i\@127.0.0.1:" . $sink->sockport, "cid-$i",
            'udp:127.0.0.1:5060', '', '', ''), "\n";
    }
    close $fh;

    $t->write_conf(<<'EOF', workers => 2)->run();
stream {
    sip_location_zone big:64m max_contacts=100000
                      state=%%PREFIX%%/state/big.state;
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
        sip_registrar big;
        sip_timers 500ms 4s 5s;
    }
}
EOF

    my $port = $t->port(0);
    my $c = udp_socket();
    my $o = udp_socket();
    my @inv;

    # one INVITE at a time

    for my $i (1 .. 20) {
        my $start = time();
        udp_send($c, sip_request(method => 'INVITE',
            uri => 'sip:alice@example.com', via_port => $c->sockport,
            call_id => "seq-$i"), '127.0.0.1', $port);
        while (my ($g) = udp_recv($sink, 30)) {
            if ($g->[0] =~ /^INVITE .*^Call-ID: seq-$i\r$/ms) {
                push @inv, time() - $start;
                last;
            }
        }
    }

    # a REGISTER over TCP adding one binding

    my $tcp = tcp_connect(port => $port);
    my $start = time();
    stream_send($tcp, sip_request(method => 'REGISTER',
        uri => 'sip:example.com', to => 'sip:alice@example.com',
        transport => 'TCP', headers => [['Contact',
            '<sip:alice-new@127.0.0.1:7003>'], ['Expires', 300]]));
    my ($msgs) = stream_recv($tcp, 1, 60);
    my $reg = time() - $start;
    die "no 200 over TCP" unless $msgs->[0] && $msgs->[0] =~ /^SIP\/2.0 200/;

    # and one with 31 Contacts (32 is refused by the off-by-one of before),
    # matched against every binding

    $start = time();
    stream_send($tcp, sip_request(method => 'REGISTER',
        uri => 'sip:example.com', to => 'sip:alice@example.com',
        transport => 'TCP', call_id => 'reg32', headers => [(map {
            ['Contact', "<sip:alice-new$_\@127.0.0.1:7003>"] } 1 .. 31),
            ['Expires', 300]]));
    ($msgs) = stream_recv($tcp, 1, 60);
    my $reg32 = time() - $start;
    die "no 200 over TCP" unless $msgs->[0] && $msgs->[0] =~ /^SIP\/2.0 200/;

    # REGISTERs of another AOR, one at a time, while 20 INVITEs go in

    for my $i (1 .. 20) {
        udp_send($c, sip_request(method => 'INVITE',
            uri => 'sip:alice@example.com', via_port => $c->sockport,
            call_id => "burst-$i"), '127.0.0.1', $port);
    }

    my $worst = 0;

    for my $i (1 .. 20) {
        my $s = time();
        udp_send($o, sip_request(method => 'REGISTER',
            uri => 'sip:example.com', to => 'sip:bob@example.com',
            via_port => $o->sockport, call_id => "bob-$i",
            headers => [['Contact', '<sip:bob@127.0.0.1:7001>']]),
            '127.0.0.1', $port);
        my ($g) = udp_recv($o, 60);
        my $d = time() - $s;
        $worst = $d if $d > $worst;
    }

    printf "%8d %12.1fms %12.1fms %12.1fms %12.1fms %12.1fms\n", $n,
        1000 * median(@inv), 1000 * (sort { $b <=> $a } @inv)[0],
        1000 * $reg, 1000 * $reg32, 1000 * $worst;

    $t->stop();
}
