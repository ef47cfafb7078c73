#!/usr/bin/perl

# Digest authentication (sip_auth), 4 workers: REGISTER challenged with
# 401 offering MD5 alone by default, SHA-256 then MD5 where configured,
# both accepted; wrong passwords and
# unknown users get the same 401; a replayed nonce count is refused (a
# retransmission is not); stale nonces; another user's credentials
# (To/From spoofing) get 403; INVITE from our users challenged with 407
# and the credentials removed before forwarding; 480 for a known user
# without contact, 404 only after authentication; keepalive OPTIONS and
# trusted addresses (a map into sip_auth) are not challenged; guessing
# ends in 403; the user file is read again when it changes; SIPp and
# Net::SIP register with their own digest code.

use strict;
use warnings;

use Test::More;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $t = NgxSip->new();
my $top = $ENV{NGX_SIP_TOP} || '.';

system("$top/tools/sip-htdigest", $t->prefix . '/users', 'alice',
    'example.com', 'alice-secret') == 0 or die 'sip-htdigest';
system("$top/tools/sip-htdigest", $t->prefix . '/users', 'bob',
    'example.com', 'bob-secret') == 0 or die 'sip-htdigest';
for my $ext (101, 110) {
    system("$top/tools/sip-htdigest", $t->prefix . '/users', $ext,
        'example.com', "x-$ext-Strong!") == 0 or die 'sip-htdigest';
}

$t->write_conf(<<'EOF', workers => 4);
stream {
    sip_location_zone loc:1m;

    map $remote_addr $sip_realm {
        127.0.0.2   off;
        default     example.com;
    }

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.2:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_auth $sip_realm;
        sip_auth_user_file %%PREFIX%%/users;
        sip_auth_algorithms SHA-256 MD5;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
        sip_auth_nonce_timeout 1s;
        sip_auth_algorithms SHA-256 MD5;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_auth example.com;
        sip_auth_user_file %%PREFIX%%/users;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $c = udp_socket();

sub send_recv {
    my ($msg, $p) = @_;
    udp_send($c, $msg, '127.0.0.1', $p || $port);
    my ($got) = udp_recv($c, 3);
    return parse_sip($got && $got->[0]);
}

# the challenges of a response: { algorithm => { nonce, realm, stale } }
sub challenges {
    my ($r) = @_;
    my %ch;
    for my $v (@{$r->{h}{'www-authenticate'} || []},
        @{$r->{h}{'proxy-authenticate'} || []})
    {
        my %p = $v =~ /(\w+)="?([^",]*)"?/g;
        $ch{$p{algorithm}} = \%p;
    }
    return \%ch;
}

sub credentials {
    my (%a) = @_;
    my $alg = $a{alg} || 'SHA-256';
    my $h = $alg eq 'MD5' ? \&md5_hex : \&sha256_hex;
    my $ha1 = $h->("$a{user}:example.com:$a{pass}");
    my $ha2 = $h->("$a{method}:$a{uri}");
    my $nc = sprintf '%08x', $a{nc} || 1;
    my $resp = $h->("$ha1:$a{nonce}:$nc:abcdef:auth:$ha2");
    return "Digest username=\"$a{user}\", realm=\"example.com\", "
        . "nonce=\"$a{nonce}\", uri=\"$a{uri}\", response=\"$resp\", "
        . "algorithm=$alg, cnonce=\"abcdef\", qop=auth, nc=$nc";
}

sub register {
    my (%a) = @_;
    my $user = $a{to} || $a{user};
    return sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", via_port => $c->sockport,
        call_id => $a{call_id} || "reg-$user", cseq => $a{cseq} || 1,
        branch => $a{branch},
        headers => [['Contact', "<sip:$user\@127.0.0.1:5999>"],
            ['Expires', 300],
            ($a{nonce} ? (['Authorization', credentials(%a,
                method => 'REGISTER', uri => 'sip:example.com')]) : ())]);
}

# the challenge

my $r = send_recv(register(user => 'alice'));
is($r->{code}, 401, 'REGISTER without credentials: 401');
my @www = @{$r->{h}{'www-authenticate'} || []};
like($www[0] // '', qr/algorithm=SHA-256, qop="auth"/, 'SHA-256 offered first');
like($www[1] // '', qr/algorithm=MD5, qop="auth"/, 'MD5 offered second');
my $nonce = challenges($r)->{'SHA-256'}{nonce};
like($nonce, qr/^[0-9a-f]{32}$/, 'nonce');

# both algorithms

$r = send_recv(register(user => 'alice', pass => 'alice-secret',
    nonce => $nonce, cseq => 2));
is($r->{code}, 200, 'SHA-256 credentials accepted');
$r = send_recv(register(user => 'alice', pass => 'alice-secret', alg => 'MD5',
    nonce => $nonce, nc => 2, cseq => 3));
is($r->{code}, 200, 'MD5 credentials accepted');

# wrong password, unknown user: the same answer

$r = send_recv(register(user => 'bob', pass => 'guess', nonce => $nonce,
    cseq => 2));
is($r->{code}, 401, 'wrong password: 401 again');
my $r2 = send_recv(register(user => 'nobody', pass => 'guess',
    nonce => $nonce, cseq => 2));
is($r2->{code} . ' ' . $r2->{reason}, $r->{code} . ' ' . $r->{reason},
    'unknown user: the same answer as a wrong password');

# replay: the same nc again in another request; a retransmission is fine
# (an INVITE: a REGISTER again with the same CSeq is refused by the
# registrar anyway, RFC 3261 10.3 step 7)

my $branch = 'z9hG4bK-rt' . int(rand(1e9));
my $msg = sip_request(method => 'INVITE', uri => 'sip:nobody@example.com',
    from => 'sip:alice@example.com', via_port => $c->sockport,
    branch => $branch, call_id => 'replay-1',
    headers => [['Proxy-Authorization', credentials(user => 'alice',
        pass => 'alice-secret', nonce => $nonce, nc => 3, method => 'INVITE',
        uri => 'sip:nobody@example.com')]]);
is(send_recv($msg)->{code}, 404, 'nc 3 accepted');
is(send_recv($msg)->{code}, 404, 'its retransmission too');
(my $replay = $msg) =~ s/branch=z9hG4bK-rt/branch=z9hG4bK-other/;
$r = send_recv($replay);
is($r->{code}, 407, 'nc 3 replayed in another request: refused');
is(challenges($r)->{'MD5'}{stale}, 'true', 'replay: stale=true, new nonce');

# stale nonces (sip_auth_nonce_timeout 1s on the second server)

$r = send_recv(register(user => 'bob'), $t->port(1));
my $old = challenges($r)->{'MD5'}{nonce};
sleep 2.2;
$r = send_recv(register(user => 'bob', pass => 'bob-secret', alg => 'MD5',
    nonce => $old), $t->port(1));
is($r->{code}, 401, 'stale nonce: 401');
is(challenges($r)->{'SHA-256'}{stale}, 'true', 'stale nonce: stale=true');

# another user's credentials

$r = send_recv(register(user => 'alice', to => 'bob', pass => 'alice-secret',
    nonce => $nonce, nc => 10, cseq => 6));
is("$r->{code} $r->{reason}", '403 Authenticated User Does Not Match To',
    'REGISTER for bob with alice\'s credentials: 403');

# INVITE from a user of ours: 407, then through; 480 and 404 after auth

my $inv = sub {
    my (%a) = @_;
    return sip_request(method => 'INVITE', uri => "sip:$a{to}\@example.com",
        from => "sip:$a{from}\@example.com", via_port => $c->sockport,
        call_id => $a{call_id} || 'inv-' . int(rand(1e9)),
        headers => [($a{nonce} ? (['Proxy-Authorization', credentials(%a,
            method => 'INVITE', uri => "sip:$a{to}\@example.com",
            user => $a{user} || $a{from})]) : ())]);
};

$r = send_recv($inv->(from => 'alice', to => 'bob'));
is($r->{code}, 407, 'INVITE from alice: 407');
ok(challenges($r)->{'SHA-256'}, 'Proxy-Authenticate');
$r = send_recv($inv->(from => 'alice', to => 'bob', pass => 'alice-secret',
    nonce => $nonce, nc => 11));
is($r->{code}, 480, 'authenticated, bob known without contact: 480');
$r = send_recv($inv->(from => 'alice', to => 'nobody', pass => 'alice-secret',
    nonce => $nonce, nc => 12));
is($r->{code}, 404, 'authenticated, unknown user: 404');
$r = send_recv($inv->(from => 'bob', to => 'alice', user => 'alice',
    pass => 'alice-secret',
    nonce => $nonce, nc => 13));
is("$r->{code} $r->{reason}", '403 Authenticated User Does Not Match From',
    'From bob with alice\'s credentials: 403');
$r = send_recv($inv->(from => 'nobody', to => 'alice'));
is($r->{code}, 407, 'an unknown user of ours is challenged the same');

# credentials for us go no further

{
    my $phone = udp_socket();
    my $got;
    my $bn = challenges(send_recv(register(user => 'bob')))->{MD5}{nonce};
    $r = send_recv(sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:bob@example.com', via_port => $c->sockport,
        call_id => 'reg-bob-phone', cseq => 1,
        headers => [['Contact', '<sip:bob@127.0.0.1:'
            . $phone->sockport . '>'], ['Expires', 300],
            ['Authorization', credentials(user => 'bob', pass => 'bob-secret',
                nonce => $bn, nc => 1, method => 'REGISTER',
                uri => 'sip:example.com')]]));
    is($r->{code}, 200, 'bob registered with credentials');
    my @r = sip_exchange(client => $c, port => $port, after => 0.3,
        uas => [[$phone, sub {
            my $m = sip_method($_[0]) or return;
            $got //= $_[0];
            return $m eq 'INVITE' ? sip_response($_[0], 486, 'Busy') : ();
        }]],
        msg => $inv->(from => 'alice', to => 'bob', pass => 'alice-secret',
            nonce => $nonce, nc => 14));
    ok($got && $got =~ /^INVITE /, 'the call reached bob');
    unlike($got // '', qr/Proxy-Authorization/i,
        'Proxy-Authorization for us removed');
}

# the server itself, and trusted addresses: not challenged

$r = send_recv(sip_request(method => 'OPTIONS', uri => 'sip:example.com',
    from => 'sip:alice@example.com', via_port => $c->sockport));
is($r->{code}, 200, 'OPTIONS keepalive to the server: not challenged');
{
    my $trusted = udp_socket(addr => '127.0.0.2');
    udp_send($trusted, sip_request(method => 'INVITE',
        uri => 'sip:nobody@example.com', from => 'sip:alice@example.com',
        via_host => '127.0.0.2', via_port => $trusted->sockport),
        '127.0.0.2', $port);
    my ($got) = udp_recv($trusted, 3);
    my $x = parse_sip($got && $got->[0]);
    is($x && $x->{code}, 404, 'trusted address (map to off): no challenge');
}

# the user file read again when it changes

system("$top/tools/sip-htdigest", $t->prefix . '/users', 'carol',
    'example.com', 'carol-secret') == 0 or die;
utime time(), time() + 5, $t->prefix . '/users';
sleep 1.2;
my $cn = challenges(send_recv(register(user => 'carol')))->{MD5}{nonce};
$r = send_recv(register(user => 'carol', pass => 'carol-secret',
    nonce => $cn, nc => 1));
is($r->{code}, 200, 'a user added to the file registers');

# the default: MD5 alone (SIPp 3.6, sipsak, baresip 1.0 and JsSIP give
# up or answer the first challenge whatever it is)

$r = send_recv(register(user => 'alice'), $t->port(2));
is($r->{code}, 401, 'default algorithms: 401');
is(join(' ', map { /algorithm=([\w-]+)/ ? $1 : '?' }
        @{$r->{h}{'www-authenticate'} || []}), 'MD5',
    'default algorithms: MD5 alone');

# SIPp and Net::SIP with their own digest code, to the default server

my $sipp = program('sipp');

SKIP: {
    skip 'no sipp', 1 unless need($sipp, 'sipp (sip-tester)');
    $t->write_file('reg_auth.xml', sipp_scenarios()->{uac_register_auth});
    my $rc = system("$sipp -sf " . $t->prefix . '/reg_auth.xml'
        . " -i 127.0.0.1 -m 5 -r 10 -au alice -ap alice-secret"
        . " -s alice -nostdin -timeout 20 -timeout_error"
        . " -trace_err -error_file " . $t->prefix . "/sipp.err"
        . ' 127.0.0.1:' . $t->port(2) . ' >/dev/null 2>&1');
    is($rc >> 8, 0, 'SIPp registers with -au/-ap');
}

SKIP: {
    need(eval { require Net::SIP; 1 }, 'Net::SIP (libnet-sip-perl)')
        or skip 'no Net::SIP', 2;

    my $sock = udp_socket();
    my $ua = Net::SIP::Simple->new(
        registrar => "127.0.0.1:$port",
        domain => 'example.com',
        from => 'sip:bob@example.com',
        auth => ['bob', 'bob-secret'],
        leg => Net::SIP::Leg->new(sock => $sock),
    );
    my $ok = $ua->register(expires => 300);
    ok($ok, 'Net::SIP registers with its digest code');

    $ua = Net::SIP::Simple->new(
        registrar => "127.0.0.1:$port",
        domain => 'example.com',
        from => 'sip:bob@example.com',
        auth => ['bob', 'wrong'],
        leg => Net::SIP::Leg->new(sock => udp_socket()),
    );
    ok(!$ua->register(expires => 300), 'Net::SIP with a wrong password fails');
}

# guessing from one address ends in 403 (with a nonce given to that
# address: one fetched from elsewhere counts for nothing, see
# sip_auth_forged.t)

{
    my $g = udp_socket(addr => '127.0.0.3');
    udp_send($g, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => 'sip:bob@example.com', via_host => '127.0.0.3',
        via_port => $g->sockport, call_id => 'guess-0'), '127.0.0.1', $port);
    my ($ch) = udp_recv($g, 3);
    my $gnonce = challenges(parse_sip($ch && $ch->[0]))->{'SHA-256'}{nonce};
    my $last;
    for my $i (1 .. 12) {
        udp_send($g, sip_request(method => 'REGISTER', uri => 'sip:example.com',
            to => 'sip:bob@example.com', via_host => '127.0.0.3',
            via_port => $g->sockport, call_id => "guess-$i",
            headers => [['Contact', '<sip:bob@127.0.0.3:5999>'],
                ['Authorization', credentials(user => 'bob', pass => "g$i",
                    nonce => $gnonce, method => 'REGISTER',
                    uri => 'sip:example.com')]]),
            '127.0.0.1', $port);
        my ($got) = udp_recv($g, 3);
        $last = parse_sip($got && $got->[0]);
    }
    is($last && "$last->{code} $last->{reason}",
        '403 Too Many Failed Authentications', 'password guessing: 403');
    $r = send_recv(register(user => 'alice', pass => 'alice-secret',
        nonce => $nonce, nc => 20, cseq => 30));
    is($r->{code}, 200, 'other addresses unaffected');
}

# scanners (Debian's sipvicious): svwar finds no extension, whatever the
# method; svcrack finds a password early in its dictionary (so it does
# work against us), but not one after the tenth guess: the 403 stops it

SKIP: {
    skip 'no sipvicious', 5
        unless need(program('svwar') && program('svcrack'),
                    'svwar and svcrack (sipvicious)');

    # extensions 101 and 110 exist
    for my $m ('REGISTER', 'INVITE', 'OPTIONS') {
        my $cmd = "timeout 60 svwar -b 127.0.0.5 -m $m -e100-120"
            . " udp://127.0.0.1:$port 2>&1";
        my $out = `$cmd`;
        like($out, qr/found nothing/, "svwar $m: found nothing");
    }

    my $dict = $t->prefix . '/dict';
    my $crack = sub {
        my ($addr, @words) = @_;
        open my $fh, '>', $dict or die;
        print $fh "$_\n" for @words;
        close $fh;
        my $target = 'udp://127.0.0.1:' . $t->port(2);
        return scalar `timeout 60 svcrack -b $addr -u alice -d $dict $target 2>&1`;
    };

    like($crack->('127.0.0.6', 'a', 'b', 'alice-secret'),
        qr/\|\s*alice\s*\|\s*alice-secret\s*\|/,
        'svcrack: password third in the dictionary found');
    like($crack->('127.0.0.7', (map { "wrong$_" } 1 .. 24), 'alice-secret'),
        qr/found nothing/, 'svcrack: password 25th: stopped by 403 first');
}

$t->stop();
is($t->crashes(), '', 'no worker crashed');
like($t->read_log('error.log'), qr/SIP auth failed for "bob"/,
    'failures logged');

done_testing();
