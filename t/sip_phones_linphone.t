#!/usr/bin/perl

# Other real phones, 2 and then 4 workers, digest authentication with the
# default challenge: Debian's linphonec as a TLS phone (its server
# certificate verified against our CA), called from a baresip phone over
# UDP and calling it, each call hung up by the callee and by the caller;
# then the same with baresip phones over TCP and TLS, their connections
# in other workers than linphone's (restarted until so); sipsak registering
# over UDP and TCP.

use strict;
use warnings;

# linphone takes the network for down (and drops its connections and its
# registration, 5 s after it started) when it finds no address but
# 127.0.0.1 to reach 87.98.157.38: in a namespace of its own, that one
# address goes to loopback from 127.0.0.2 (nothing leaves the machine)

BEGIN {
    unless ($ENV{NGX_SIP_LINPHONE_NS}) {
        $ENV{NGX_SIP_LINPHONE_NS} = 1;
        exec('unshare', '-n', '--', 'sh', '-c', 'ip link set lo up'
            . ' && ip route add 87.98.157.38/32 dev lo src 127.0.0.2'
            . ' && exec "$0" "$@"', $^X, $0, @ARGV);
        die "unshare: $!";
    }
}

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxPhone qw(phone_call conn_worker);

my $top = $ENV{NGX_SIP_TOP} || '.';

for my $workers ($ENV{NGX_SIP_PHONE_WORKERS} ? ($ENV{NGX_SIP_PHONE_WORKERS})
    : (2, 4))
{
    run($workers);
}

done_testing();

sub run {
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
        sip_domain example.com 127.0.0.1;
        sip_registrar loc;
        sip_record_route on;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
    }
}
EOF

    for my $u (qw(lin udp1 tcp1 tls1 sipsak)) {
        system("$top/tools/sip-htdigest", "$p/users", $u, 'example.com',
            "$u-Secret") == 0 or die 'sip-htdigest';
    }

    $t->run();

    my $lin = NgxLinphone->new(name => 'linphone', user => 'lin',
        pass => 'lin-Secret', domain => 'example.com', transport => 'tls',
        proxy => '127.0.0.1:' . $t->port(1), dir => "$p/lin",
        cafile => "$p/localhost.crt");

    my %b;

    for my $tr ('udp', 'tcp', 'tls') {
        $b{$tr} = NgxPhone->new(name => "${tr}1", user => "${tr}1",
            pass => "${tr}1-Secret", domain => 'example.com',
            transport => $tr,
            proxy => '127.0.0.1:' . $t->port($tr eq 'tls' ? 1 : 0),
            sip_port => 0,
            dir => "$p/${tr}1", cafile => "$p/localhost.crt");
    }

    for my $ph ($lin, @b{'udp', 'tcp', 'tls'}) {
        my $err = $ph->start() // $ph->register();
        ok(!$err, "$workers workers: " . $ph->name . ' registers')
            or diag($err . "\n" . $ph->dump());
    }

    for my $tr ('udp', 'tcp', 'tls') {
        my $x = $b{$tr};
        my @fail;

        # the baresip phone's connection in another worker than
        # linphone's: started again until so

        if ($tr ne 'udp') {
            my ($wl) = conn_worker($lin, $t->port(1));
            my $wx;

            for my $try (1 .. 30) {
                ($wx) = conn_worker($x, $t->port($tr eq 'tls' ? 1 : 0));
                last if $wl && $wx && $wl != $wx;

                $x->stop();
                my $err = $x->start() // $x->register();
                if ($err) {
                    diag("$tr phone again: $err");
                    last;
                }
            }

            ok($wl && $wx && $wl != $wx, "$workers workers: linphone in"
                . ' worker ' . ($wl // '?') . ", the $tr phone in "
                . ($wx // '?'));
        }

        for my $c ([$x, $lin, $lin], [$x, $lin, $x], [$lin, $x, $x],
            [$lin, $x, $lin])
        {
            my $err = phone_call(@$c, nginx => $t);
            push @fail, $c->[0]->name . ' -> ' . $c->[1]->name
                . ', hung up by ' . $c->[2]->name . ": $err" if $err;
        }

        ok(!@fail, "$workers workers: linphone (TLS) and baresip over $tr,"
            . ' calls both ways') or diag(join "\n\n", @fail);
    }

    $_->stop() for $lin, values %b;

    # sipsak: its target must resolve (example.com does not here; it
    # would look its own host name up too, without -H)

    for my $tr ('udp', 'tcp') {
        my $cmd = "timeout 60 sipsak -U -H 127.0.0.1 --transport=$tr -x 300"
            . ' -vv -a sipsak-Secret -u sipsak'
            . ' -C sip:sipsak@127.0.0.1:7777'
            . ' -s sip:sipsak@127.0.0.1:' . $t->port(0) . ' 2>&1';
        my $out = `$cmd`;
        like($out, qr/usrloc tests completed successful/,
            "$workers workers: sipsak registers over $tr") or diag($out);
    }

    $t->stop();

    is($t->crashes(), '', "$workers workers: no worker crashed");
}
