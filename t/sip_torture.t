#!/usr/bin/perl

# Every RFC 4475 and RFC 5118 torture message, as one UDP datagram, to a
# server with 4 workers; the answer is checked against the verdict the
# corpus gives (../shared/sip-torture/verdicts.tsv, read, never copied).
# The messages name public addresses: run inside a private network
# namespace (make test does).  Answers go to 127.0.0.1 only, because the
# server applies received= as RFC 3261 18.2.2 says.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $dir = NgxSip->torture();

plan skip_all => "no torture corpus at $dir"
    unless need(-f "$dir/verdicts.tsv",
                "the torture corpus at $dir (SIP_TORTURE=dir)");

# where the answer goes (INDEX.md, harness table); 0: the source port
my %reply_port = (
    'rfc4475/quotbal.dat' => 5050,
    'rfc4475/mpart01.dat' => 0,
    'rfc5118/mult-ip-in-header.dat' => 6050,
    'rfc5118/ipv4-mapped-ipv6.dat' => 19823,
);

# needs the registrar of issue 5: 2xx or 401 for a REGISTER
my %todo = (
    'rfc4475/regaut01.dat' => 'registrar (issue 5)',
);

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com example.net example.org company.com
                   chair-dnrc.example.com registrar.example.com
                   jasomi.com host.example.net 2001:db8::10
                   2001:db8::192.0.2.1 2001:db8:::192.0.2.1
                   2001:db8::10:5070;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my %sock;

open my $fh, '<', "$dir/verdicts.tsv" or die;
<$fh>;

while (my $line = <$fh>) {
    chomp $line;
    my ($file, $verdict, $expect) = split /\t/, $line;
    next unless $file;

    open my $m, '<', "$dir/$file" or die "$file: $!";
    binmode $m;
    my $msg = do { local $/; <$m> };
    close $m;

    my $rp = exists $reply_port{$file} ? $reply_port{$file} : 5060;

    # a socket bound where the answer is expected, also the source
    my $s = $sock{$rp} ||= $rp
        ? udp_socket(port => $rp)
        : udp_socket();

    udp_send($s, $msg, '127.0.0.1', $port);

    my ($got) = udp_recv($s, $expect =~ /drop/ ? 0.5 : 2);
    my $r = parse_sip($got && $got->[0]);
    my $code = $r ? $r->{code} : 'none';

    my $ok = 0;

    for my $e (split /\|/, $expect) {
        if ($e =~ /^\d{3}$/) {
            $ok ||= $code eq $e;
        } elsif ($e eq 'drop') {
            $ok ||= $code eq 'none';
        } elsif ($e eq '2xx') {
            $ok ||= $code =~ /^2/;
        } elsif ($e eq '2xx-or-proxy') {
            $ok ||= $code ne 'none' && $code !~ /^(400|505|513)$/;
        } elsif ($e eq 'any-non-crash') {
            $ok = 1;
        }
    }

    TODO: {
        local $TODO = $todo{$file};
        ok($ok, "$file ($verdict): expect $expect, got $code"
            . ($r ? " $r->{reason}" : ''));
    }

    # drain a late second answer, so it is not taken for the next one
    udp_recv($s, 0.05, 1);
}

close $fh;

# the server still answers, and no worker died

my $u = udp_socket();
udp_send($u, sip_request(via_port => $u->sockport), '127.0.0.1', $port);
my ($got) = udp_recv($u, 3);
is(parse_sip($got && $got->[0]) && parse_sip($got->[0])->{code}, 200,
    'still answering');

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
