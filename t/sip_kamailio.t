#!/usr/bin/perl

# Kamailio 5.6 (Debian's kamailio) as a real peer, 4 workers: calls from a
# SIPp caller through nginx (sip_pass) to a record-routing, transaction
# stateful Kamailio that relays them to a SIPp callee, and back, with
# ACK and BYE along both route sets; BYE from the callee; CANCEL.  And
# the other way round: Kamailio in front, relaying to nginx.

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

plan skip_all => 'no sipp or kamailio'
    unless need($sipp, 'sipp (sip-tester)') && need($kamailio, 'kamailio');

my $t = NgxSip->new();
my ($proxy, $kam, $uas, $front) = map { $t->port($_) } 0 .. 3;

$t->write_conf(<<"EOF2", workers => 4);
stream {
    server {
        listen 127.0.0.1:$proxy udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:$kam;
    }
}
EOF2

# one Kamailio: requests from nginx go to the callee, requests to its
# second port (from the callers of the second half) go to nginx

my $p = $t->prefix;
$t->write_file('kamailio.cfg', <<"EOF2");
#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:$kam
listen=udp:127.0.0.1:$front
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"

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

    if (\$Rp == $front) {
        \$du = "sip:127.0.0.1:$proxy";
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

sipp_call($t, $sipp, 'uas_call', 'uac_call', 300, $proxy, $uas,
    'SIPp -> nginx -> Kamailio -> SIPp: calls, ACK and BYE along the routes');
sipp_call($t, $sipp, 'uas_bye', 'uac_bye', 30, $proxy, $uas,
    'BYE from the callee through Kamailio and nginx');
sipp_call($t, $sipp, 'uas_cancel', 'uac_cancel', 20, $proxy, $uas,
    'CANCEL through nginx and Kamailio');

# Kamailio in front of nginx: SIPp -> Kamailio -> nginx -> Kamailio -> SIPp

sipp_call($t, $sipp, 'uas_call', 'uac_call', 100, $front, $uas,
    'SIPp -> Kamailio -> nginx -> Kamailio -> SIPp: calls');

kamailio_stop($kpid);

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
