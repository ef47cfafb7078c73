#!/usr/bin/perl

# Real phones, 2 and then 4 workers: Debian's baresip, two phones over
# each of UDP, TCP and TLS, register with digest authentication (the
# default challenge, MD5) and call each other over the 9 pairs of
# transports, every caller to every callee: each call answered, then hung
# up by the callee, and another by the caller; the ACK must reach the
# callee and the BYE the other phone, its 200 the phone that hung up.
# The two TCP phones (and the two TLS ones) hold their connections in
# different workers (listen ... reuseport; a phone is started again until
# so), so that every pair of stream transports has calls between workers.
# A failed call shows the SIP both phones traced.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxPhone qw(phone_call conn_worker);

my $top = $ENV{NGX_SIP_TOP} || '.';

my @tr = qw(udp tcp tls);

for my $workers ($ENV{NGX_SIP_PHONE_WORKERS} ? ($ENV{NGX_SIP_PHONE_WORKERS})
    : (2, 4))
{
    matrix($workers);
}

done_testing();

sub matrix {
    my ($workers) = @_;

    my $t = NgxSip->new()->make_cert('localhost');
    my $p = $t->prefix;

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%% reuseport;
        listen 127.0.0.1:%%PORT_1%% ssl reuseport;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
    }
}
EOF

    my %phones;

    for my $tr (@tr) {
        for my $i (1, 2) {
            my $user = "$tr$i";
            system("$top/tools/sip-htdigest", "$p/users", $user,
                'example.com', "$user-Secret") == 0 or die 'sip-htdigest';
            $phones{$user} = NgxPhone->new(name => $user, user => $user,
                pass => "$user-Secret", domain => 'example.com',
                transport => $tr,
                proxy => '127.0.0.1:' . $t->port($tr eq 'tls' ? 1 : 0),
                sip_port => 0,
                dir => "$p/$user", cafile => "$p/localhost.crt");
        }
    }

    $t->run();

    my $all = 1;

    for my $u (sort keys %phones) {
        my $ph = $phones{$u};
        my $err = $ph->start() // $ph->register();
        ok(!$err, "$workers workers: $u registers") or do {
            diag($err . "\n" . $ph->dump());
            $all = 0;
        };
    }

    # the second phone of TCP and of TLS in another worker than the first

    for my $tr ('tcp', 'tls') {
        last unless $all;

        my $port = $t->port($tr eq 'tls' ? 1 : 0);
        my ($w1) = conn_worker($phones{"${tr}1"}, $port);
        my ($w2, $spread);

        for my $try (1 .. 30) {
            ($w2) = conn_worker($phones{"${tr}2"}, $port);
            $spread = $w1 && $w2 && $w1 != $w2;
            last if $spread;

            my $ph = $phones{"${tr}2"};
            $ph->stop();
            my $err = $ph->start() // $ph->register();
            if ($err) {
                diag("${tr}2 again: $err");
                last;
            }
        }

        ok($spread, "$workers workers: the $tr phones in workers"
            . " ${\ ($w1 // '?')} and ${\ ($w2 // '?')}");
    }

    # the matrix

    for my $a (@tr) {
        for my $b (@tr) {
            my (@fail, $calls);

            for my $x (map { $phones{"$a$_"} } 1, 2) {
                for my $y (map { $phones{"$b$_"} } 1, 2) {
                    next if $x == $y;

                    for my $hangs ($y, $x) {
                        $calls++;
                        my $err = phone_call($x, $y, $hangs, nginx => $t);
                        push @fail, $x->name . ' -> ' . $y->name
                            . ', hung up by ' . $hangs->name . ": $err"
                            if $err;
                    }
                }
            }

            ok(!@fail, "$workers workers: $a -> $b, $calls calls")
                or diag(join "\n\n", @fail);
        }
    }

    $_->stop() for values %phones;
    $t->stop();

    is($t->crashes(), '', "$workers workers: no worker crashed");
}
