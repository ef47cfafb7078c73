#!/usr/bin/perl

# README.md's demo, as written there: examples/demo.conf started the way
# "make run" starts it (its ports 5060 and 5070 replaced by free ones),
# then every sipsak command README.md shows, taken from README.md itself,
# and an INVITE to the redirect server: 302 to the contact registered.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(WNOHANG);

use lib 't/lib';
use NgxSip;

my $sipsak = program('sipsak');

plan skip_all => 'no sipsak' unless need($sipsak, 'sipsak');

my $t = NgxSip->new();
my $p = $t->prefix;
my ($port, $rport) = ($t->port(0), $t->port(1));

# "make run": examples/demo.conf with @MODULE@ set, in the foreground

open my $fh, '<', 'examples/demo.conf' or die "examples/demo.conf: $!";
my $conf = do { local $/; <$fh> };
close $fh;

like($conf, qr/\b5060\b/, 'demo.conf: registrar on 5060');
like($conf, qr/\b5070\b/, 'demo.conf: redirect server on 5070');

$conf =~ s/\@MODULE\@/$t->{module}/g;
$conf =~ s{^load_module \S*ngx_stream_module\.so;}
    {load_module $t->{stream_module};}m;
$conf =~ s/\b5060\b/$port/g;
$conf =~ s/\b5070\b/$rport/g;
$t->write_file('nginx.conf', $conf);

my $pid = fork() // die "fork: $!";

if ($pid == 0) {
    open STDOUT, '>', "$p/out.log" or exit 127;
    open STDERR, '>&', \*STDOUT or exit 127;
    exec($t->{nginx}, '-p', "$p/", '-c', 'nginx.conf', '-e', 'stderr',
        '-g', "daemon off; pid $p/nginx.pid;");
    exit 127;
}

sub out_log {
    open my $fh, '<', "$p/out.log" or return '';
    local $/;
    return <$fh>;
}

for (1 .. 100) {
    last if (() = out_log() =~ /start worker process/g) >= 2;
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.1;
}

like(out_log(), qr/start worker process/, 'demo started')
    or diag(out_log());

# the commands of README.md, on the demo's ports

open $fh, '<', 'README.md' or die "README.md: $!";
my $readme = do { local $/; <$fh> };
close $fh;

my @cmds = $readme =~ /`(sipsak [^`]+)`/g;

is(scalar @cmds, 3, 'README shows three sipsak commands');

my %seen;

for my $cmd (@cmds) {
    my $run = $cmd;
    $run =~ s{\@localhost:5070\b}{\@localhost:$rport}g;
    $run =~ s{(sip:(?:[^\s\@:]+\@)?localhost)(?![:\w])}{$1:$port}g;
    $run =~ s/^sipsak /$sipsak /;

    my $out = `timeout 30 $run 2>&1`;
    my $rc = $? >> 8;

    if ($cmd =~ / -U /) {
        $seen{register}++;
        is($rc, 0, "$cmd: 200 (exit 0)") or diag($out);

    } elsif ($cmd =~ /:5070\b/) {
        $seen{redirect}++;
        is($rc, 1, "$cmd: a final answer, not a 200 (exit 1)")
            or diag($out);
        like($out, qr{^SIP/2\.0 302 Moved Temporarily\r?$}m,
            "$cmd: 302");
        like($out, qr{^Contact: <sip:me\@127\.0\.0\.1:7777>;expires=\d+}m,
            "$cmd: to the contact registered");

    } else {
        $seen{options}++;
        is($rc, 0, "$cmd: 200 (exit 0)") or diag($out);
    }
}

is(join(',', sort keys %seen), 'options,redirect,register',
    'OPTIONS, REGISTER and the redirect shown');

# "an INVITE for sip:me@localhost to port 5070 gets a 302"

my $u = udp_socket();
my $invite = sip_request(method => 'INVITE', uri => 'sip:me@localhost',
    via_port => $u->sockport,
    headers => [['Contact', '<sip:caller@127.0.0.1:' . $u->sockport . '>']]);

udp_send($u, $invite, '127.0.0.1', $rport);

my @got = map { parse_sip($_->[0]) } udp_recv($u, 3, 1);
my ($final) = grep { $_ && $_->{code} >= 200 } @got;

is($final && $final->{code}, 302, 'INVITE to the redirect server: 302');
is($final && $final->{h}{contact}[0] =~ /^<([^>]+)>/ && $1,
    'sip:me@127.0.0.1:7777', 'INVITE: to the contact registered');

# the registration was for the minimum, 60 s, not sipsak's 15

like($final && $final->{h}{contact}[0], qr/;expires=(60|59|58)\b/,
    'registered for the minimum the demo allows');

udp_send($u, NgxSip::sip_ack($invite, $final->{text}), '127.0.0.1', $rport)
    if $final;

kill 'TERM', $pid;

for (1 .. 100) {
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.05;
}

if (kill 0, $pid) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

my @bad = grep { /\[(alert|emerg|crit)\]|exited on signal/ }
    split /\n/, out_log();
is(join("\n", @bad), '', 'no worker crashed');

done_testing();
