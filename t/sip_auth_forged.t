#!/usr/bin/perl

# Digest authentication under attack (issue 15, hole 4), 2 workers:
# wrong-password REGISTERs sent with the victim's source address, with a
# nonce fetched from elsewhere, count for nothing: the victim still logs
# in after 15 of them; a real brute force from the attacker's own address
# is still stopped (403, even once it finds the password); failures from
# 10,000 source addresses do not push the victim's nonce count out of
# shared memory: the replayed credentials are still refused; and when
# the nonce zone itself is full (sip_auth_zone_size 32k), a nonce whose
# count was pushed out is stale, not new: no replay either.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Select;
use Time::HiRes qw(time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();
my $top = $ENV{NGX_SIP_TOP} || '.';

system("$top/tools/sip-htdigest", $t->prefix . '/users', 'alice',
    'example.com', 'alice-secret') == 0 or die 'sip-htdigest';

$t->write_conf(<<'EOF', workers => 2);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
        sip_auth_algorithms SHA-256;
    }
}
EOF

$t->run();

my $port = $t->port(0);

sub credentials {
    my (%a) = @_;
    my $ha1 = sha256_hex("$a{user}:example.com:$a{pass}");
    my $ha2 = sha256_hex('REGISTER:sip:example.com');
    my $nc = sprintf '%08x', $a{nc} || 1;
    my $resp = sha256_hex("$ha1:$a{nonce}:$nc:abcdef:auth:$ha2");
    return "Digest username=\"$a{user}\", realm=\"example.com\", "
        . "nonce=\"$a{nonce}\", uri=\"sip:example.com\", "
        . "response=\"$resp\", algorithm=SHA-256, cnonce=\"abcdef\", "
        . "qop=auth, nc=$nc";
}

# a REGISTER for alice from socket $s, with credentials when a nonce is
# given
sub register {
    my ($s, %a) = @_;
    return sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:alice@example.com', via_host => $s->sockhost,
        via_port => $s->sockport, call_id => $a{call_id} || 'reg-alice',
        cseq => $a{cseq} || 1, branch => $a{branch},
        headers => [($a{query} ? () : (['Contact',
            '<sip:alice@' . $s->sockhost . ':5999>'], ['Expires', 300])),
            ($a{nonce} ? (['Authorization', credentials(user => 'alice',
                %a)]) : ())]);
}

sub exchange {
    my ($s, $msg, $p) = @_;
    udp_send($s, $msg, '127.0.0.1', $p || $port);
    my ($got) = udp_recv($s, 3);
    return parse_sip($got && $got->[0]) || { code => 0, reason => 'none' };
}

sub nonce_of {
    my ($r) = @_;
    my ($v) = grep { /algorithm=SHA-256/ } @{$r->{h}{'www-authenticate'}
        || []};
    my ($n) = ($v || '') =~ /nonce="([0-9a-f]+)"/;
    my ($stale) = ($v || '') =~ /stale=(\w+)/;
    return wantarray ? ($n, $stale) : $n;
}

my $victim = udp_socket(addr => '127.0.0.5');
my $forger = udp_socket(addr => '127.0.0.5');     # the victim's address
my $attacker = udp_socket(addr => '127.0.0.6');

# the attacker's nonce, fetched from its own address

my $an = nonce_of(exchange($attacker, register($attacker)));
like($an, qr/^[0-9a-f]{32}$/, 'attacker got a nonce');

# 15 wrong passwords "from the victim", with the attacker's nonce

my %codes;
for my $i (1 .. 15) {
    my $r = exchange($forger, register($forger, pass => "guess$i",
        nonce => $an, call_id => "forged-$i"));
    $codes{$r->{code}}++;
}
is_deeply(\%codes, { 401 => 15 }, 'forged source: 15 times a new 401, '
    . 'never 403');

# the victim logs in

my $vn = nonce_of(exchange($victim, register($victim)));
my $vreg = register($victim, pass => 'alice-secret', nonce => $vn, nc => 1,
    cseq => 2, branch => 'z9hG4bKvictim1');
my $r = exchange($victim, $vreg);
is("$r->{code} $r->{reason}", '200 OK',
    'victim logs in after 15 forged-source failures');

# the victim's nonce is no good from another address either

$r = exchange($attacker, register($attacker, pass => 'alice-secret',
    nonce => $vn, nc => 5, cseq => 3));
is($r->{code}, 401, 'a nonce from another address: a new challenge');

# a real brute force, from the attacker's own address, with its nonce

my $last;
for my $i (1 .. 12) {
    $last = exchange($attacker, register($attacker, pass => "guess$i",
        nonce => $an, nc => $i, call_id => "brute-$i"));
}
is("$last->{code} $last->{reason}", '403 Too Many Failed Authentications',
    'brute force from its own address: 403');
$r = exchange($attacker, register($attacker, pass => 'alice-secret',
    nonce => $an, nc => 20, call_id => 'brute-ok'));
is($r->{code}, 403, 'still 403 with the right password');

$r = exchange($victim, register($victim, pass => 'alice-secret',
    nonce => $vn, nc => 2, cseq => 4));
is($r->{code}, 200, 'the victim is not locked out by the brute force');

# failures from 10,000 addresses, more than the failure zone holds

my $sources = 10000;
my $failed = 0;
my $start = time();

for (my $b = 0; $b < $sources; $b += 250) {
    my @socks = map {
        my $n = $b + $_;
        udp_socket(addr => '127.1.' . ($n >> 8) . '.' . ($n & 255))
    } 0 .. 249;

    my %nonce;

    for my $round (0, 1) {
        for my $s (@socks) {
            next if $round && !$nonce{"$s"};
            udp_send($s, register($s, call_id => "flood-$b",
                ($round ? (pass => 'x', nonce => $nonce{"$s"}) : ())),
                '127.0.0.1', $port);
        }

        my $sel = IO::Select->new(@socks);
        my $deadline = time() + 5;
        my $want = $round ? scalar(keys %nonce) : @socks;
        my $got = 0;

        while ($got < $want && (my $left = $deadline - time()) > 0) {
            for my $s ($sel->can_read($left)) {
                my $buf;
                defined $s->recv($buf, 65535) or next;
                my $x = parse_sip($buf) or next;
                $got++;
                if ($round) {
                    $failed++ if $x->{code} == 401;
                } else {
                    $nonce{"$s"} = nonce_of($x);
                }
            }
        }
    }

    close $_ for @socks;
}

note(sprintf '%d failures from %d addresses in %.1f s', $failed, $sources,
    time() - $start);
cmp_ok($failed, '>=', $sources * 0.95, 'failures from 10,000 addresses');

# the replay of the victim's first login (nc 1, another branch): refused

(my $replay = $vreg) =~ s/z9hG4bKvictim1/z9hG4bKreplay1/;
$r = exchange($victim, $replay);
my (undef, $stale) = nonce_of($r);
is("$r->{code} " . ($stale || ''), '401 true',
    'replay after the failure flood: 401 stale=true');

# and the victim still logs in, with a new nonce

$vn = nonce_of(exchange($victim, register($victim, cseq => 10)));
$r = exchange($victim, register($victim, pass => 'alice-secret', nonce => $vn,
    nc => 1, cseq => 11));
is($r->{code}, 200, 'victim logs in after the flood');

is($t->crashes(), '', 'no worker crashed');

$t->stop();

# a nonce zone of 32 kB (about 200 counts) filled by 400 logins from 400
# addresses: the victim's count is pushed out, its replay is still refused

my $t2 = NgxSip->new();

system("$top/tools/sip-htdigest", $t2->prefix . '/users', 'alice',
    'example.com', 'alice-secret') == 0 or die 'sip-htdigest';

$t2->write_conf(<<'EOF', workers => 2);
stream {
    sip_location_zone loc:1m;
    sip_auth_zone_size 32k 32k;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
        sip_auth_algorithms SHA-256;
    }
}
EOF

$t2->run();

my $p2 = $t2->port(0);

$vn = nonce_of(exchange($victim, register($victim, query => 1), $p2));
$vreg = register($victim, query => 1, pass => 'alice-secret', nonce => $vn,
    nc => 1, cseq => 2, branch => 'z9hG4bKsmall1');
$r = exchange($victim, $vreg, $p2);
is($r->{code}, 200, 'small zone: victim logs in');

my %logins;
for my $i (1 .. 400) {
    my $s = udp_socket(addr => '127.2.' . ($i >> 8) . '.' . ($i & 255));
    my $n = nonce_of(exchange($s, register($s, query => 1), $p2)) or next;
    my $x = exchange($s, register($s, query => 1, pass => 'alice-secret',
        nonce => $n, call_id => "fill-$i"), $p2);
    $logins{$x->{code}}++;
    close $s;
}
note('400 logins into a 32k nonce zone: '
    . join(', ', map { "$_: $logins{$_}" } sort keys %logins));
cmp_ok($logins{200} || 0, '>', 200, 'more logins than the zone holds');

# a second on, so that new nonces are newer than any pushed out

Time::HiRes::sleep(1.1);

($replay = $vreg) =~ s/z9hG4bKsmall1/z9hG4bKsmall2/;
$r = exchange($victim, $replay, $p2);
(undef, $stale) = nonce_of($r);
is("$r->{code} " . ($stale || ''), '401 true',
    'count pushed out of a full zone: the replay is stale, not new');

$vn = nonce_of(exchange($victim, register($victim, query => 1, cseq => 3),
    $p2));
$r = exchange($victim, register($victim, query => 1, pass => 'alice-secret',
    nonce => $vn, nc => 1, cseq => 4), $p2);
is($r->{code}, 200, 'small zone: a new nonce still logs in');

is($t2->crashes(), '', 'no worker crashed (small zone)');

$t2->stop();

done_testing();
