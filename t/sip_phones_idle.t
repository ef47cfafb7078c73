#!/usr/bin/perl

# Calls that outlive the connections, 2 and then 4 workers: baresip
# phones over TCP, TLS and UDP (digest authentication),
# sip_connection_timeout 2s; each call answered, then kept up until the
# TCP or TLS connections of both phones to nginx have been closed for
# being idle, then hung up by the callee.  The callee's BYE comes on a
# new connection, and goes to a TCP or TLS caller on a new one (the
# phones have a certificate for it), to the address of its Contact
# (issue 13 item 2: Record-Route must name a port we listen on, and a
# caller that did not register with RFC 5626 outbound is reached at its
# Contact).  New phones for each call: a phone whose connection is gone
# is not reachable for new calls until it registers again.  (The caller
# cannot hang up such a call: baresip's Contact in the dialog names its
# connection's local port, see docs/phones.md.)

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

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

    my $t = NgxSip->new()->make_cert('localhost')->make_cert('phone');
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
        sip_connection_timeout 2s;
    }
}
EOF

    # baresip: the certificate and its key in one file
    system("cat $p/phone.crt $p/phone.key > $p/phone.pem") == 0 or die;

    for my $i (1 .. 10) {
        for my $user ("tcp$i", "udp$i", "tls$i") {
            system("$top/tools/sip-htdigest", "$p/users", $user,
                'example.com', "$user-Secret") == 0 or die 'sip-htdigest';
        }
    }

    $t->run();

    my $n = 0;

    my $phone = sub {
        my ($tr) = @_;
        my $user = $tr . ++$n;
        my $ph = NgxPhone->new(name => $user, user => $user,
            pass => "$user-Secret", domain => 'example.com',
            transport => $tr,
            proxy => '127.0.0.1:' . $t->port($tr eq 'tls' ? 1 : 0),
            sip_port => 0, dir => "$p/$user",
            cafile => "$p/localhost.crt", certificate => "$p/phone.pem");
        my $err = $ph->start() // $ph->register();
        return ($ph, $err);
    };

    for my $c (['tcp', 'tcp'], ['udp', 'tcp'], ['tcp', 'udp'], ['tls', 'tls'],
        ['tls', 'udp'])
    {
        my ($x, $ex) = $phone->($c->[0]);
        my ($y, $ey) = $phone->($c->[1]);
        my $name = "$workers workers: $c->[0] -> $c->[1], idle connections";

        if ($ex || $ey) {
            fail($name);
            diag("registration: " . ($ex // $ey));
            next;
        }

        my $idle = '';

        my $err = phone_call($x, $y, $y, nginx => $t, before_hangup => sub {
            # the timeout closes the phones' connections to nginx
            my $deadline = time() + 30;
            my @open = grep { $_->transport ne 'udp' } $x, $y;

            while (@open && time() < $deadline) {
                @open = grep {
                    conn_worker($_, $t->port($_->transport eq 'tls' ? 1 : 0))
                } @open;
                sleep 0.1 if @open;
            }

            $idle = join ' ', map { $_->name } @open;
        });

        is($idle, '', "$name: closed by nginx");
        ok(!$err, "$name, hung up by the callee") or diag($err);

        $_->stop() for $x, $y;
    }

    $t->stop();

    is($t->crashes(), '', "$workers workers: no worker crashed");
}
