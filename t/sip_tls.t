#!/usr/bin/perl

# TLS towards next hops (sip_ssl_*), two nginx instances (4 workers
# each): calls from SIPp over UDP to the near one, which reaches the far
# one over TLS (sip_pass sips:..., certificate verified as "localhost"),
# which hands them to a SIPp callee over UDP; a wrong name fails the
# verification at once (503, logged with the reason); an upstream with
# "sip_ssl on"; mutual TLS: a far end that wants a client certificate
# gets one, and refuses a near end without it.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = program('sipp');

plan skip_all => 'no sipp' unless need($sipp, 'sipp (sip-tester)');

my $far = NgxSip->new()->make_cert('localhost')->make_cert('client');
my $near = NgxSip->new();
my $fp = $far->prefix;

$far->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        listen 127.0.0.1:%%PORT_0%% udp;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com far.example.net;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        listen 127.0.0.1:%%PORT_2%% udp;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        ssl_verify_client   on;
        ssl_client_certificate %%PREFIX%%/client.crt;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_3%%;
    }
}
EOF2

my ($tls, $far_uas, $mtls, $far_raw) = map { $far->port($_) } 0 .. 3;

# one harness picks every port, so that the two never pick the same
my @np = map { $far->port($_) } 10 .. 14;

$near->write_conf(<<"EOF2", workers => 4);
stream {
    upstream farpeers {
        server 127.0.0.1:$tls;
    }

    server {
        listen 127.0.0.1:$np[0] udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$tls;
        sip_ssl_verify on;
        sip_ssl_trusted_certificate $fp/localhost.crt;
        sip_ssl_name localhost;
        sip_ssl_server_name on;
    }

    server {
        listen 127.0.0.1:$np[1] udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$tls;
        sip_ssl_verify on;
        sip_ssl_trusted_certificate $fp/localhost.crt;
        sip_ssl_name wrong.example.org;
    }

    server {
        listen 127.0.0.1:$np[2] udp;
        sip on;
        sip_domain example.com;
        sip_pass farpeers;
        sip_ssl on;
        sip_ssl_verify on;
        sip_ssl_trusted_certificate $fp/localhost.crt;
        sip_ssl_name localhost;
    }

    server {
        listen 127.0.0.1:$np[3] udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$mtls;
        sip_ssl_certificate     $fp/client.crt;
        sip_ssl_certificate_key $fp/client.key;
    }

    # TLS 1.2: there the far end's refusal ends the handshake; with 1.3
    # the client is done first, sends, and only then reads the alert
    server {
        listen 127.0.0.1:$np[4] udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$mtls;
        sip_ssl_protocols TLSv1.2;
    }
}
EOF2

my %scenarios = %{ sipp_scenarios() };
$far->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
$far->run();
$near->run();

# calls: SIPp over UDP, TLS in the middle, SIPp over UDP

sipp_call($far, $sipp, 'uas_call', 'uac_call', 100, $np[0], $far_uas,
    'UDP to TLS to UDP: calls with ACK and BYE along the route');
sipp_call($far, $sipp, 'uas_bye', 'uac_bye', 30, $np[0], $far_uas,
    'UDP to TLS to UDP: BYE from the callee');

# one request by hand, answered by hand

my $raw = udp_socket(port => $far_raw);

sub message {
    my ($port) = @_;
    my $c = udp_socket();
    my @r = sip_exchange(client => $c, port => $port, timeout => 8,
        after => 0.2,
        uas => [[$raw, sub {
            my $m = sip_method($_[0]) or return;
            return sip_response($_[0], 200, 'OK');
        }]],
        msg => sip_request(method => 'MESSAGE', uri => 'sip:bob@example.com',
            via_port => $c->sockport));
    my ($final) = grep { $_->{code} >= 200 } @r;
    return $final ? "$final->{code} $final->{reason}" : 'none';
}

is(message($np[1]), '503 Could Not Reach Next Hop',
    'certificate not for the name asked: 503 at once');
like($near->read_log('error.log'),
    qr/certificate does not match "wrong\.example\.org"/,
    'the reason is logged');

my $c = udp_socket();
my @r = sip_exchange(client => $c, port => $np[2], timeout => 8,
    msg => sip_request(method => 'OPTIONS', uri => 'sip:far.example.net',
        via_port => $c->sockport));
my ($final) = grep { $_->{code} >= 200 } @r;
is($final && $final->{code}, 200,
    'upstream with sip_ssl on: answered by the far end over TLS');

is(message($np[3]), '200 OK', 'mutual TLS: with a client certificate');
is(message($np[4]), '503 Could Not Reach Next Hop',
    'mutual TLS: without one, refused');

$near->stop();
$far->stop();

# nginx itself logs a refused client certificate's aftermath at "crit"
my $far_bad = join "\n", grep { !/SSL_shutdown\(\) failed .* after close notify/ }
    split /\n/, $far->crashes();
is($near->crashes() . $far_bad, '', 'no worker crashed');

done_testing();
