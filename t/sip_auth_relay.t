#!/usr/bin/perl

# sip_auth in front of sip_pass (a PBX, a carrier): nobody without a
# login is relayed.  A From of our domain is challenged (407); a From of
# another domain cannot be (we hold no credentials for it): it may reach
# our domain (an inbound call, on to the PBX), and nothing else
# (403 Relaying Forbidden), unless its source is trusted (realm "off").

use strict;
use warnings;

use Test::More;
use IO::Select;

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();
my $top = $ENV{NGX_SIP_TOP} || '.';

system("$top/tools/sip-htdigest", $t->prefix . '/users', 'alice',
    'example.com', 'alice-secret') == 0 or die 'sip-htdigest';

$t->write_conf(<<'EOF', workers => 2);
stream {
    map $remote_addr $sip_realm {
        127.0.0.2   off;
        default     example.com;
    }

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.2:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_auth $sip_realm;
        sip_auth_user_file %%PREFIX%%/users;
        sip_pass 127.0.0.1:%%PORT_9%%;
    }
}
EOF

my $up = udp_socket(port => $t->port(9));

$t->run();

my $port = $t->port(0);

# (status, reason, whether the next hop got it)
sub try {
    my (%h) = @_;
    my $addr = delete $h{addr} || '127.0.0.1';
    my $s = udp_socket(addr => $addr);
    my $id = 'relay-' . int(rand(1e9));
    udp_send($s, sip_request(method => 'INVITE', via_host => $addr,
        via_port => $s->sockport, call_id => $id, %h), $addr, $port);
    my ($code, $reason) = (0, '');
    for my $got (udp_recv($s, 1, 1)) {
        my $r = parse_sip($got->[0]) or next;
        next if $r->{code} == 100 && $code;
        ($code, $reason) = ($r->{code}, $r->{reason});
        last if $code >= 200;
    }
    my $fwd = 0;
    my $sel = IO::Select->new($up);
    while ($sel->can_read(0.3)) {
        my $buf;
        $up->recv($buf, 65535);
        $fwd = 1 if $buf =~ /^Call-ID: \Q$id\E\r$/m;
    }
    return ($code, $reason, $fwd);
}

my @r = try(uri => 'sip:+19005550100@carrier.test',
    from => 'sip:mallory@elsewhere.test');
is($r[0], 403, 'a foreign From to a foreign Request-URI: 403');
is($r[1], 'Relaying Forbidden: From Is Not Our Domain', 'saying why');
ok(!$r[2], 'not forwarded to sip_pass');

@r = try(uri => 'sip:+19005550100@example.com',
    from => 'sip:mallory@elsewhere.test');
is($r[0], 100, 'a foreign From to our domain: taken (an inbound call)');
ok($r[2], 'and forwarded to sip_pass');

@r = try(uri => 'sip:+19005550100@carrier.test',
    from => 'sip:alice@example.com');
is($r[0], 407, 'a From of ours: challenged');
ok(!$r[2], 'not forwarded');

@r = try(addr => '127.0.0.2', uri => 'sip:+19005550100@carrier.test',
    from => 'sip:peer@carrier.test');
is($r[0], 100, 'a trusted source (realm off): taken');
ok($r[2], 'and forwarded');

is($t->crashes(), '', 'no crash, no alert');

done_testing();
