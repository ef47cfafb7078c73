#!/usr/bin/perl

# Net::SIP (libnet-sip-perl) as a caller through the proxy, 4 workers: its
# INVITE, ACK and BYE through nginx to a SIPp callee over UDP, along the
# Record-Route nginx put in.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;
use NgxSipp;

my $sipp = program('sipp');

plan skip_all => 'no sipp or Net::SIP'
    unless need($sipp, 'sipp (sip-tester)')
        && need(eval { require Net::SIP; 1 }, 'Net::SIP (libnet-sip-perl)');

my $t = NgxSip->new();

$t->write_conf(<<'EOF2', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
    }
}
EOF2

$t->write_file('uas_call.xml', sipp_scenarios()->{uas_call});
$t->run();

my $p = $t->prefix;
my $calls = 5;

# Net::SIP sends ACK and BYE back to back; with 4 workers the BYE may
# overtake the ACK (legal over UDP).  The callee ignores it then and
# answers the BYE's retransmission, as a phone would (sipp_start's
# -default_behaviors).

my $uas = sipp_start($t, $sipp, 'uas', '-sf', "$p/uas_call.xml",
    '-i', '127.0.0.1', '-p', $t->port(1), '-m', $calls);

sleep 0.5;

my $ua = Net::SIP::Simple->new(
    outgoing_proxy => '127.0.0.1:' . $t->port(0),
    from => 'sip:alice@example.com',
    leg => Net::SIP::Leg->new(addr => '127.0.0.1', proto => 'udp'),
);

my @results;

for my $i (1 .. $calls) {
    my ($done, $code, $byed);
    my $call = $ua->invite('sip:bob@example.com',
        cb_final => sub { my ($status, $self, %info) = @_;
            $code = $info{code} // $status; $done = 1 },
        init_media => $ua->rtp('recv_echo'));

    $ua->loop(10, \$done) if $call;
    $call->bye(cb_final => sub { $byed = 1 }) if $call;
    $ua->loop(5, \$byed) if $call;

    push @results, ($code // 'none') . '/' . ($byed ? 'bye' : 'no bye');
}

is(join(' ', @results), join(' ', ('OK/bye') x $calls),
    "Net::SIP: $calls calls answered and ended through nginx");

is(sipp_wait($uas, 5), 0, 'the SIPp callee saw every call through')
    or diag(`tail -20 $p/uas.err`);

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
