#!/usr/bin/perl

# Kamailio 5.6 (Debian's kamailio with kamailio-tls-modules) as a real TLS
# peer, 4 workers, since Debian's SIPp is built without TLS: SIPp calls
# over UDP into Kamailio, which relays them over TLS to nginx, which hands
# them to a SIPp callee over UDP (Kamailio as the TLS caller); and SIPp
# calls into nginx, which relays them over TLS to Kamailio, which hands
# them to the callee (Kamailio as the TLS callee).  ACK and BYE follow
# both route sets (each side record-routes twice, RFC 5658), the callee's
# BYE too.  Also TLS in and TCP out, and TCP in and TLS out.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;
use NgxSipp;
use NgxKamailio;

my $sipp = program('sipp');
my $kamailio = program('kamailio');
my $mpath = '/usr/lib/x86_64-linux-gnu/kamailio/modules';

plan skip_all => 'no sipp, kamailio or its TLS module'
    unless need($sipp, 'sipp (sip-tester)') && need($kamailio, 'kamailio')
        && need(-f "$mpath/tls.so", "$mpath/tls.so (kamailio-tls-modules)");

my $t = NgxSip->new()->make_cert('localhost')->make_cert('kamailio');
my ($ngx_tls, $ngx_udp, $k_udp, $k_tls, $uas, $ngx_tls2, $k_udp2, $ngx_tcp,
    $uas2) = map { $t->port($_) } 0 .. 8;
my $p = $t->prefix;

$t->write_conf(<<"EOF2", workers => 4);
stream {
    server {
        listen 127.0.0.1:$ngx_tls ssl;
        listen 127.0.0.1:$ngx_tls udp;
        ssl_certificate     $p/localhost.crt;
        ssl_certificate_key $p/localhost.key;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:$uas;
    }

    server {
        listen 127.0.0.1:$ngx_udp udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$k_tls;
        sip_ssl_verify on;
        sip_ssl_trusted_certificate $p/kamailio.crt;
        sip_ssl_name kamailio;
    }

    # TLS in, TCP out; and TCP in, TLS out

    server {
        listen 127.0.0.1:$ngx_tls2 ssl;
        listen 127.0.0.1:$ngx_tls2 udp;
        ssl_certificate     $p/localhost.crt;
        ssl_certificate_key $p/localhost.key;
        sip on;
        sip_domain example.com;
        sip_pass "sip:127.0.0.1:$uas2;transport=tcp";
    }

    server {
        listen 127.0.0.1:$ngx_tcp;
        listen 127.0.0.1:$ngx_tcp udp;
        sip on;
        sip_domain example.com;
        sip_pass sips:127.0.0.1:$k_tls;
    }
}
EOF2

$t->write_file('tls.cfg', <<"EOF2");
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $p/kamailio.key
certificate = $p/kamailio.crt

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
EOF2

$t->write_file('kamailio.cfg', <<"EOF2");
#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
enable_tls=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:$k_udp
listen=udp:127.0.0.1:$k_udp2
listen=tls:127.0.0.1:$k_tls
mpath="$mpath/"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tls", "config", "$p/tls.cfg")

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }

    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK") && t_check_trans()) {
            t_relay();
        }
        exit;
    }

    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }

    record_route();

    if (\$Rp == $k_udp) {
        \$du = "sip:127.0.0.1:$ngx_tls;transport=tls";
    } else if (\$Rp == $k_udp2) {
        \$du = "sip:127.0.0.1:$ngx_tls2;transport=tls";
    } else {
        \$du = "sip:127.0.0.1:$uas";
    }

    t_relay();
}
EOF2

my $check = `$kamailio -c -f $p/kamailio.cfg 2>&1`;
like($check, qr/config file ok/, 'kamailio.cfg is valid')
    or diag($check);

$t->run();

my $kpid = kamailio_start($t, $kamailio);

$t->write_file("$_.xml", sipp_scenarios()->{$_}) for keys %{ sipp_scenarios() };

sipp_call($t, $sipp, 'uas_call', 'uac_call', 200, $k_udp, $uas,
    'SIPp -> Kamailio -> TLS -> nginx -> SIPp: calls, ACK and BYE');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 30, $k_udp, $uas,
    'Kamailio as TLS caller: BYE from the callee back over TLS');

sipp_call($t, $sipp, 'uas_call', 'uac_call', 200, $ngx_udp, $uas,
    'SIPp -> nginx -> TLS -> Kamailio -> SIPp: calls, ACK and BYE');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 30, $ngx_udp, $uas,
    'Kamailio as TLS callee: BYE from the callee back over TLS');
sipp_call($t, $sipp, 'uas_cancel', 'uac_cancel', 20, $ngx_udp, $uas,
    'Kamailio as TLS callee: CANCEL');

# TLS to TCP: Kamailio's TLS in, a SIPp callee over TCP out

sipp_call($t, $sipp, 'uas_call', 'uac_call', 100, $k_udp2, $uas2,
    'Kamailio -> TLS -> nginx -> TCP -> SIPp: calls, ACK and BYE', '',
    '-t t1');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 20, $k_udp2, $uas2,
    'TLS to TCP: BYE from the callee', '', '-t t1');

# TCP to TLS: a SIPp caller over TCP in, Kamailio's TLS out

sipp_call($t, $sipp, 'uas_call', 'uac_call', 100, $ngx_tcp, $uas,
    'SIPp -> TCP -> nginx -> TLS -> Kamailio -> SIPp: calls, ACK and BYE',
    '-t t1');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 20, $ngx_tcp, $uas,
    'TCP to TLS: BYE from the callee on the caller\'s connection', '-t t1');

like($t->read_log(), qr/: \*\d+ client 127\.0\.0\.1:\d+ connected to 127\.0\.0\.1:$ngx_tls/,
    'Kamailio connected to nginx over TLS');

kamailio_stop($kpid);

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
