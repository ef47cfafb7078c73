#!/usr/bin/perl

# Real SIP clients against the module: SIPp (Debian sip-tester) sending
# OPTIONS over UDP and TCP, and Net::SIP (libnet-sip-perl), 4 workers.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $sipp = program('sipp');

my $t = NgxSip->new();

$t->write_conf(<<'EOF', workers => 4);
stream {
    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        sip on;
        sip_domain example.com;
    }
}
EOF

$t->run();

my $port = $t->port(0);

$t->write_file('options.xml', <<'EOF');
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS ping">
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:sipp@example.com>;tag=[pid]SIPpTag[call_number]
      To: <sip:example.com>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      User-Agent: SIPp
      Content-Length: 0

    ]]>
  </send>

  <recv response="200"/>
</scenario>
EOF

SKIP: {
    skip 'no sipp', 2 unless need($sipp, 'sipp (sip-tester)');

    my $p = $t->prefix;

    for my $tr (['u1', 'udp'], ['t1', 'tcp']) {
        my $lp = NgxSip->new()->port("sipp_$tr->[1]");
        my $rc = system("cd $p && timeout 60 $sipp -sf $p/options.xml"
            . " -t $tr->[0] -i 127.0.0.1 -p $lp -m 300 -r 100 -l 50"
            . " -timeout 40s -timeout_error -nostdin"
            . " -trace_err -error_file $p/sipp_$tr->[1].err"
            . " 127.0.0.1:$port >$p/sipp_$tr->[1].out 2>&1");
        is($rc >> 8, 0, "sipp: 300 OPTIONS over $tr->[1], all answered 200")
            or diag(`tail -20 $p/sipp_$tr->[1].out $p/sipp_$tr->[1].err`);
    }
}

SKIP: {
    need(eval { require Net::SIP; 1 }, 'Net::SIP (libnet-sip-perl)')
        or skip 'no Net::SIP', 2;

    my $leg = Net::SIP::Leg->new(addr => '127.0.0.1', proto => 'udp')
        or die "leg: $!";
    my $loop = Net::SIP::Dispatcher::Eventloop->new();
    my $disp = Net::SIP::Dispatcher->new([$leg], $loop,
        outgoing_proxy => "127.0.0.1:$port");
    my $ep = Net::SIP::Endpoint->new($disp);

    my ($code, $packet);

    $ep->new_request('OPTIONS', {
        from => 'sip:netsip@example.com',
        to => 'sip:example.com',
    }, sub {
        my ($endpoint, $ctx, $errno, $c, $pkt) = @_;
        $code = $c // "error $errno";
        $packet = $pkt;
    });

    $loop->loop(5, \$code);

    is($code, 200, 'Net::SIP: OPTIONS 200');
    my @allow = $packet ? $packet->get_header('allow') : ();
    ok(grep({ /INVITE/ } @allow), 'Net::SIP: with Allow');
}

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
