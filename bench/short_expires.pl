#!/usr/bin/perl

# N bindings of N AORs expiring in 3000 s (from a state file), 1 worker:
# the time of 200 REGISTERs of new AORs, one at a time, with an Expires
# later than every binding's (3600) and one earlier (60).  The expiry
# order was a sorted list searched from its tail: each REGISTER of the
# second kind walked past every binding of the zone under its mutex.
# Loopback only; run inside "unshare -n".  NGX_SIP_MODULE picks the
# module.
#
#   bench/short_expires.pl [N]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Time::HiRes qw(time);
use NgxSip;

my $n = shift || 100000;
my $t = NgxSip->new();

mkdir $t->prefix . '/state';
chmod 0777, $t->prefix . '/state';

my $exp = int(time()) + 3000;

open my $fh, '>', $t->prefix . '/state/big.state' or die $!;
for my $i (0 .. $n - 1) {
    print $fh join("\t", "sip:u$i\@example.com", $exp, 1000, 1, 0,
        "sip:u$i\@127.0.0.1:7000", "cid-$i", 'udp:127.0.0.1:5060', '', '',
        ''), "\n";
}
close $fh;

$t->write_conf(<<'EOF', workers => 1)->run();
stream {
    sip_location_zone big:64m state=%%PREFIX%%/state/big.state;
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar big;
    }
}
EOF

my $c = udp_socket();

for my $e (3600, 60, 3600, 60) {
    my $start = time();

    for my $i (1 .. 200) {
        udp_send($c, sip_request(method => 'REGISTER',
            uri => 'sip:example.com', to => "sip:x$i-$e\@example.com",
            via_port => $c->sockport, call_id => "x$i-$e-" . rand(),
            headers => [['Contact', "<sip:x$i\@127.0.0.1:7000>"],
                ['Expires', $e]]), '127.0.0.1', $t->port(0));
        my ($g) = udp_recv($c, 5);
        die "no answer" unless $g && $g->[0] =~ /^SIP\/2.0 200/;
    }

    printf "Expires %4d: %.2f ms per REGISTER (%d bindings in the zone)\n",
        $e, (time() - $start) * 1000 / 200, $n;
}

$t->stop();
