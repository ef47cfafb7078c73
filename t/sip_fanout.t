#!/usr/bin/perl

# What one INVITE may become (sip_max_branches, sip_transaction_lifetime,
# sip_contact_connect).  A registrar without auth: 100 REGISTERs of 31
# Contacts sip:uN@VICTIM for one AOR, then one INVITE: the victim gets
# no more than 12 branches, each retransmitted by Timer A (7 sends in
# 64*T1), not thousands of INVITEs.  One contact per q level, 20 levels:
# serial forking stops at the lifetime, and so does a worker told to
# leave.  A contact with transport=tcp registered over UDP makes no
# connection unless sip_contact_connect is on.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 1);
stream {
    sip_location_zone loc:32m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_timers 50ms 400ms 500ms;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_timers 50ms 400ms 500ms;
        sip_transaction_lifetime 5s;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_timers 50ms 400ms 500ms;
        sip_contact_connect on;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $c = udp_socket();

sub register {
    my ($aor, $cseq, @contacts) = @_;
    my $wait = @contacts > 1 && $aor eq 'victim' ? 0.3 : 3;
    udp_send($c, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$aor\@example.com", via_port => $c->sockport,
        call_id => "reg-$aor", cseq => $cseq,
        headers => [(map { ['Contact', $_] } @contacts),
            ['Expires', 300]]), '127.0.0.1', $port);
    my ($got) = udp_recv($c, $wait);
    my $r = parse_sip($got && $got->[0]);
    return $r ? $r->{code} : 0;
}

# what reaches a socket within $secs: (datagrams, distinct branches)
sub count {
    my ($s, $secs) = @_;
    my (%branches, $n);
    for my $got (udp_recv($s, $secs, 1)) {
        next unless $got->[0] =~ /^INVITE /;
        $n++;
        my ($b) = $got->[0] =~ /^Via: [^\r]*;branch=([^;\r]+)/m;
        $branches{$b}++;
    }
    return ($n || 0, scalar keys %branches);
}

# a caller of its own for each INVITE: the 408s are not ACKed and come
# again (Timer G)
my $caller;

sub invite {
    my ($aor, $p, $call_id) = @_;
    $caller = udp_socket();
    udp_send($caller, sip_request(method => 'INVITE',
        uri => "sip:$aor\@example.com",
        via_port => $caller->sockport, rport => 1, call_id => $call_id,
        branch => "z9hG4bK$call_id",
        headers => [['Contact', '<sip:caller@127.0.0.1:'
            . $caller->sockport . '>']]), '127.0.0.1', $p);
}

# the final answer to the last INVITE, and when it came
sub final {
    my ($secs) = @_;
    my $deadline = time() + $secs;
    while ((my $left = $deadline - time()) > 0) {
        my ($got) = udp_recv($caller, $left) or last;
        my $r = parse_sip($got->[0]) or next;
        next if $r->{code} < 200;
        return ($r->{code}, time());
    }
    return (0, time());
}

###############################################################################

# 100 REGISTERs of 31 Contacts at one victim address, one AOR

my $victim = udp_socket();
my $vport = $victim->sockport;
my %reg;

for my $i (1 .. 100) {
    $reg{register('victim', $i,
        map { "<sip:u${i}x$_\@127.0.0.1:$vport>" } 1 .. 31)}++;
}

diag('100 REGISTERs of 31 Contacts: '
    . join(', ', map { "$reg{$_} x $_" } sort keys %reg));
# no answer (0): a 200 listing them all is too big for a datagram
ok($reg{200}, 'the registrar took them (no per-AOR limit on this branch)');

invite('victim', $port, 'fan-1');
my ($n, $branches) = count($victim, 4.5);
my ($code) = final(2);

diag("one INVITE: $n INVITEs in $branches branches reached the victim");
ok($branches >= 1 && $branches <= 12, "at most 12 branches ($branches)");
ok($n <= 12 * 7, "at most 12 x 7 INVITEs with retransmissions ($n)");
is($code, 408, 'the caller: 408 when nobody answers');
like($t->read_log(), qr/contacts left out, over sip_max_branches/,
    'the contacts left out are logged');

# serial forking: 20 q levels, one contact each, nobody answers

my $serial = udp_socket();
my $sport = $serial->sockport;

is(register('serial', 1, map { sprintf "<sip:s%d\@127.0.0.1:%d>;q=%.2f", $_,
    $sport, 1 - $_ * 0.04 } 0 .. 19), 200, '20 contacts of 20 q levels');

my $t0 = time();
invite('serial', $t->port(1), 'serial-1');
my ($when);
($code, $when) = final(12);
($n, $branches) = count($serial, 0.5);

diag(sprintf "serial forking with sip_transaction_lifetime 5s: %d levels "
    . "tried, final %d after %.1f s", $branches, $code, $when - $t0);
is($code, 408, 'the caller gets 408');
ok($when - $t0 >= 4.5 && $when - $t0 < 7,
    'after the lifetime (5 s), not 20 x 3.2 s');
is($branches, 2, 'two levels of 3.2 s fit in 5 s, no third');

# a contact with transport=tcp, registered over UDP

my $lst = IO::Socket::IP->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Listen => 5, Proto => 'tcp') or die;
my $tport = $lst->sockport;

is(register('tcpuser', 1, "<sip:t\@127.0.0.1:$tport;transport=tcp>"), 200,
    'a contact with transport=tcp over UDP');

invite('tcpuser', $port, 'tcp-1');
($code) = final(3);
is($code, 480, 'sip_contact_connect off: not reachable, 480');
ok(!IO::Select->new($lst)->can_read(0.5), 'and no connection was opened');
like($t->read_log(), qr/registered over UDP, and sip_contact_connect is off/,
    'logged why');

invite('tcpuser', $t->port(2), 'tcp-2');
ok(IO::Select->new($lst)->can_read(3),
    'sip_contact_connect on: the proxy connects');

# a worker told to leave (nginx -s quit) does not wait for 20 levels

invite('serial', $t->port(1), 'serial-2');
sleep 0.5;
$t0 = time();
my $pid = $t->{pid};
kill 'QUIT', $pid;
my $gone;
for (1 .. 200) {
    unless (kill 0, $pid) { $gone = time(); last; }
    sleep 0.1;
}
delete $t->{pid} if $gone;
diag(sprintf "nginx -s quit with a serial fork running: gone after %.1f s",
    ($gone || time()) - $t0);
ok($gone && $gone - $t0 < 8, 'nginx quits within the lifetime');

# the 200 OK for thousands of bindings does not fit a datagram: the
# registrar's side of this issue (not this branch's)
my @bad = grep { !/Message too long/ } split /\n/, $t->crashes();
is(join("\n", @bad), '', 'no crash, no other alert');

done_testing();
