#!/usr/bin/perl

# What the proxy does not use goes on as it came (RFC 3261 16.3): a
# malformed Contact or Record-Route in a proxied request and in its
# answer is forwarded unchanged, not answered with 400.  What is used is
# still checked: the Contact of a REGISTER (the registrar's), a Route.
# With 4 workers and with 1.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $bad_contact = '<sip:a@192.0.2.1> <sip:c@192.0.2.2>';
my $bad_rr = 'sip:p1.example.net;lr';

for my $workers (4, 1) {
    my $t = NgxSip->new();
    my $w = "$workers workers";

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
    }
}
EOF

    $t->run();

    my $port = $t->port(0);
    my $uac = udp_socket();
    my $uas = udp_socket(port => $t->port(1));
    my $uac_port = $uac->sockport;

    # a request with both through the proxy, and its answer with both

    my $req = sip_request(method => 'MESSAGE', uri => 'sip:bob@example.com',
        via_port => $uac_port, body => 'hi',
        headers => [['Contact', $bad_contact], ['Record-Route', $bad_rr],
                    ['Content-Type', 'text/plain']]);

    my $seen;

    my @got = sip_exchange(client => $uac, port => $port, msg => $req,
        timeout => 5, uas => [[$uas, sub {
            $seen = shift;
            return sip_response($seen, 200, 'OK',
                headers => [['Contact', $bad_contact]]);
        }]]);

    my @contact = ($seen // '') =~ /^Contact: (.*)\r$/mg;
    my @rr = ($seen // '') =~ /^Record-Route: (.*)\r$/mg;

    ok($seen, "$w: request with a malformed Contact and Record-Route "
        . "forwarded");
    is($contact[0], $bad_contact, "$w: its Contact as it came");
    is(scalar @rr, 2, "$w: ours on top of its Record-Route");
    is($rr[-1], $bad_rr, "$w: its Record-Route as it came");

    my ($final) = grep { $_->{code} >= 200 } @got;

    is($final && $final->{code}, 200,
        "$w: answer with the same forwarded back");
    is($final && $final->{h}{contact}[0], $bad_contact,
        "$w: its Contact as it came");
    is($final && $final->{h}{'record-route'}[-1], $bad_rr,
        "$w: its Record-Route as it came");

    # what is used is still checked

    my $reg = sip_request(method => 'REGISTER', uri => 'sip:example.com',
        from => 'sip:alice@example.com', to => 'sip:alice@example.com',
        via_port => $uac_port, headers => [['Contact', $bad_contact]]);

    udp_send($uac, $reg, '127.0.0.1', $t->port(2));

    my ($got) = udp_recv($uac, 3);
    my $r = parse_sip($got && $got->[0]);

    is($r && $r->{code}, 400, "$w: REGISTER with a malformed Contact: 400");
    like($r && $r->{reason}, qr/Contact/, "$w: reason says Contact");

    $req = sip_request(method => 'MESSAGE', uri => 'sip:bob@example.com',
        via_port => $uac_port, headers => [['Route', $bad_rr]]);

    udp_send($uac, $req, '127.0.0.1', $port);

    ($got) = udp_recv($uac, 3);
    $r = parse_sip($got && $got->[0]);

    is($r && $r->{code}, 400, "$w: malformed Route: 400");
    like($r && $r->{reason}, qr/Route/, "$w: reason says Route");

    is(scalar(udp_recv($uas, 0.3)), 0, "$w: neither was forwarded");

    $t->stop();

    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
