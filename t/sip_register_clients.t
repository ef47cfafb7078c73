#!/usr/bin/perl

# Real phones registering: Net::SIP (libnet-sip-perl) over UDP, SIPp
# (sip-tester) registering 1000 distinct users over UDP and TCP, and a
# REGISTER over TLS; 4 workers, the bindings then read back.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new()->make_cert('localhost');

$t->write_conf(<<'EOF', workers => 4);
stream {
    sip_location_zone phones:16m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar phones;
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $u = udp_socket();

sub query {
    my ($user) = @_;
    udp_send($u, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", via_port => $u->sockport),
        '127.0.0.1', $port);
    my ($got) = udp_recv($u, 3);
    my $r = parse_sip($got && $got->[0]);
    return $r ? join(' ', @{$r->{h}{contact} || []}) : 'no answer';
}

# Net::SIP

SKIP: {
    need(eval { require Net::SIP; 1 }, 'Net::SIP (libnet-sip-perl)')
        or skip 'no Net::SIP', 2;

    my $ua = Net::SIP::Simple->new(
        registrar => "127.0.0.1:$port",
        from => 'sip:netsip@example.com',
        leg => Net::SIP::Leg->new(addr => '127.0.0.1', proto => 'udp'),
    );

    my $expires = $ua->register(expires => 300);

    ok($expires && $expires > 250, 'Net::SIP registered')
        or diag($ua->error);
    like(query('netsip'), qr/<sip:netsip\@127\.0\.0\.1(:\d+)?>;expires=\d+/,
        'Net::SIP binding listed');

    $ua->cleanup;
}

# SIPp: 1000 users, each its own AOR

$t->write_file('register.xml', <<'EOF');
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER many users">
  <send retrans="500">
    <![CDATA[

      REGISTER sip:example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:sipp[call_number]@example.com>;tag=[call_number]
      To: <sip:sipp[call_number]@example.com>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:sipp[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Expires: 600
      Content-Length: 0

    ]]>
  </send>

  <recv response="200"/>
</scenario>
EOF

my $sipp = program('sipp');

SKIP: {
    skip 'no sipp', 4 unless need($sipp, 'sipp (sip-tester)');

    my $p = $t->prefix;

    for my $tr (['u1', 'udp'], ['t1', 'tcp']) {
        my $lp = NgxSip->new()->port("sipp_$tr->[1]");
        my $rc = system("cd $p && timeout 60 $sipp -sf $p/register.xml"
            . " -t $tr->[0] -i 127.0.0.1 -p $lp -m 500 -r 250 -l 100"
            . " -timeout 40s -timeout_error -nostdin -base_cseq 1"
            . ($tr->[1] eq 'tcp' ? ' -cid_str tcp-%u-%p@%s' : '')
            . " 127.0.0.1:$port >$p/sipp_$tr->[1].out 2>&1");
        is($rc >> 8, 0, "sipp: 500 REGISTERs over $tr->[1], all 200")
            or diag(`tail -5 $p/sipp_$tr->[1].out`);
    }

    like(query('sipp1'), qr/transport=UDP>;expires=\d+ .*transport=TCP>;expires=\d+/,
        'SIPp user 1: its UDP and TCP bindings listed');
    like(query('sipp499'), qr/<sip:sipp499\@127\.0\.0\.1:\d+;transport=/,
        'the last SIPp binding listed');
}

# TLS

my $s = tcp_connect(port => $t->port(1), ssl => 1);
stream_send($s, sip_request(method => 'REGISTER', uri => 'sip:example.com',
    to => 'sip:tls@example.com', transport => 'TLS',
    headers => [['Contact', '<sip:tls@127.0.0.1:5999;transport=tls>']]));
my ($msgs) = stream_recv($s, 1);
my $r = parse_sip($msgs->[0]);
is($r && $r->{code}, 200, 'REGISTER over TLS');
like(query('tls'), qr/transport=tls>;expires=3[56]\d\d/,
    'TLS binding listed with the default expiry');
close $s;

$t->stop();
is($t->crashes(), '', 'no worker crashed');

done_testing();
