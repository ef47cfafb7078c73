#!/usr/bin/perl

# Calls to registered users (RFC 3261 16.5): the callee registers with
# nginx, the caller's INVITE for sip:bob@example.com reaches the contact
# it registered, through 4 workers; an unknown user gets 404.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = program('sipp');

plan skip_all => 'no sipp' unless need($sipp, 'sipp (sip-tester)');

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => $ENV{W} || 4);
stream {
    sip_location_zone phones:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar phones;
    }
}
EOF

my $scenarios = sipp_scenarios();

$t->write_file("$_.xml", $scenarios->{$_}) for keys %$scenarios;
$t->run();

my $proxy = $t->port(0);
my $uas_port = $t->port(1);
my $u = udp_socket();

sub ask {
    my (%h) = @_;
    udp_send($u, sip_request(via_port => $u->sockport, %h), '127.0.0.1',
        $proxy);
    my ($got) = udp_recv($u, 3);
    return parse_sip($got && $got->[0]);
}

# bob registers where the callee will listen; a worse contact too

my $r = ask(method => 'REGISTER', uri => 'sip:example.com',
    to => 'sip:bob@example.com', call_id => 'bob-reg',
    headers => [['Contact', "<sip:bob\@127.0.0.1:$uas_port>;q=0.9, "
        . "<sip:bob\@127.0.0.1:9>;q=0.1"]]);
is($r && $r->{code}, 200, 'callee registered');

sipp_call($t, $sipp, 'uas_call', 'uac_call', 100, $proxy, $uas_port,
    'calls to sip:bob@example.com reach the registered contact');

$r = ask(method => 'INVITE', uri => 'sip:nobody@example.com');
is($r && $r->{code}, 404, 'unknown user: 404');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
