#!/usr/bin/perl

# The stateful proxy over UDP with SIPp as caller and callee: calls with
# Record-Route through 4 workers and through 1 (INVITE/100/180/200/ACK/
# BYE/200), 486 with the hop-by-hop ACK, CANCEL while ringing, BYE from
# the callee, an upstream that never answers (408), a loop (482), a
# forged Route (404).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use NgxSip;

my $sipp = `which sipp 2>/dev/null`;
chomp $sipp;

plan skip_all => 'no sipp' unless $sipp;

my $sdp = <<'EOF';
      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
EOF

my $from = 'From: sipp <sip:sipp@[local_ip]:[local_port]>;'
    . 'tag=[pid]SIPpTag00[call_number]';
my $via = 'Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];'
    . 'rport';

sub request {
    my ($method, $uri, $cseq, $extra, $body) = @_;
    $extra = $extra ? "\n      $extra" : '';
    return <<"EOF";
  <send retrans="500">
    <![CDATA[

      $method $uri SIP/2.0
      $via$extra
      $from
      To: <sip:[service]\@example.com>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: $cseq $method
      Contact: <sip:sipp\@[local_ip]:[local_port]>
      Max-Forwards: 70
      @{[ $body ? "Content-Type: application/sdp\n      Content-Length: [len]\n\n$body" : "Content-Length: 0\n" ]}
    ]]>
  </send>
EOF
}

sub response {
    my ($status, $extra, $body) = @_;
    $extra = $extra ? "\n      $extra" : '';
    return <<"EOF";
  <send>
    <![CDATA[

      SIP/2.0 $status
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>$extra
      @{[ $body ? "Content-Type: application/sdp\n      Content-Length: [len]\n\n$body" : "Content-Length: 0\n" ]}
    ]]>
  </send>
EOF
}

sub scenario {
    my ($name, $body) = @_;
    return qq{<?xml version="1.0" encoding="ISO-8859-1" ?>\n}
        . qq{<scenario name="$name">\n$body</scenario>\n};
}

my %scenarios = (

    uac_call => scenario('call', request('INVITE',
            'sip:[service]@example.com', 1, '', $sdp)
        . qq{  <recv response="100" optional="true"/>\n}
        . qq{  <recv response="180" optional="true"/>\n}
        . qq{  <recv response="200" rrs="true"/>\n}
        . request('ACK', '[next_url]', 1, '[routes]') =~ s/ retrans="500"//r
        . qq{  <pause milliseconds="100"/>\n}
        . request('BYE', '[next_url]', 2, '[routes]')
        . qq{  <recv response="200" crlf="true"/>\n}),

    uas_call => scenario('answer',
        qq{  <recv request="INVITE" crlf="true"/>\n}
        . response('180 Ringing')
        . response('200 OK', '', $sdp) =~ s/<send>/<send retrans="500">/r
        . qq{  <recv request="ACK" crlf="true"/>\n}
        . qq{  <recv request="BYE"/>\n}
        . response('200 OK')),

    uac_busy => scenario('busy', request('INVITE',
            'sip:[service]@example.com', 1, '', $sdp)
        . qq{  <recv response="100" optional="true"/>\n}
        . qq{  <recv response="486"/>\n}
        . request('ACK', 'sip:[service]@example.com', 1, '')
            =~ s/ retrans="500"//r),

    uas_busy => scenario('busy',
        qq{  <recv request="INVITE" crlf="true"/>\n}
        . response('486 Busy Here') =~ s/<send>/<send retrans="500">/r
        . qq{  <recv request="ACK"/>\n}),

    uac_cancel => scenario('cancel', request('INVITE',
            'sip:[service]@example.com', 1, '', $sdp)
        . qq{  <recv response="100" optional="true"/>\n}
        . qq{  <recv response="180"/>\n}
        . qq{  <send>\n    <![CDATA[\n\n}
        . qq{      CANCEL sip:[service]\@example.com SIP/2.0\n}
        . qq{      [last_Via:]\n      $from\n}
        . qq{      To: <sip:[service]\@example.com>\n}
        . qq{      Call-ID: [call_id]\n      CSeq: 1 CANCEL\n}
        . qq{      Max-Forwards: 70\n      Content-Length: 0\n\n}
        . qq{    ]]>\n  </send>\n}
        . qq{  <recv response="200"/>\n}
        . qq{  <recv response="487"/>\n}
        . request('ACK', 'sip:[service]@example.com', 1, '')
            =~ s/ retrans="500"//r =~ s/\[branch\]/[last_branch]/r),

    uas_cancel => scenario('cancelled',
        qq{  <recv request="INVITE" crlf="true"/>\n}
        . response('180 Ringing')
        . qq{  <recv request="CANCEL"/>\n}
        . qq{  <send>\n    <![CDATA[\n\n      SIP/2.0 200 OK\n}
        . qq{      [last_Via:]\n      [last_From:]\n      [last_To:]\n}
        . qq{      [last_Call-ID:]\n      [last_CSeq:]\n}
        . qq{      Content-Length: 0\n\n    ]]>\n  </send>\n}
        . qq{  <send>\n    <![CDATA[\n\n      SIP/2.0 487 Request Terminated\n}
        . qq{      [\$invite_via]\n}
        . qq{      [last_From:]\n}
        . qq{      [last_To:];tag=[pid]SIPpTag01[call_number]\n}
        . qq{      [last_Call-ID:]\n      CSeq: [cseq] INVITE\n}
        . qq{      Content-Length: 0\n\n    ]]>\n  </send>\n}
        . qq{  <recv request="ACK"/>\n}),
);

# the callee hangs up: BYE along the route set, From and To swapped
$scenarios{uac_bye} = scenario('hung up on', request('INVITE',
        'sip:[service]@example.com', 1, '', $sdp)
    . qq{  <recv response="100" optional="true"/>\n}
    . qq{  <recv response="180" optional="true"/>\n}
    . qq{  <recv response="200" rrs="true"/>\n}
    . request('ACK', '[next_url]', 1, '[routes]') =~ s/ retrans="500"//r
    . qq{  <recv request="BYE"/>\n}
    . qq{  <send>\n    <![CDATA[\n\n      SIP/2.0 200 OK\n}
    . qq{      [last_Via:]\n      [last_From:]\n      [last_To:]\n}
    . qq{      [last_Call-ID:]\n      [last_CSeq:]\n}
    . qq{      Content-Length: 0\n\n    ]]>\n  </send>\n});

$scenarios{uas_bye} = scenario('hangs up',
    qq{  <recv request="INVITE" crlf="true" rrs="true">\n    <action>\n}
    . qq{      <ereg regexp=".*" search_in="hdr" header="From:"}
    . qq{ check_it="true" assign_to="caller"/>\n}
    . qq{      <ereg regexp=".*" search_in="hdr" header="To:"}
    . qq{ check_it="true" assign_to="callee"/>\n}
    . qq{    </action>\n  </recv>\n}
    . response('180 Ringing')
    . response('200 OK', '', $sdp) =~ s/<send>/<send retrans="500">/r
    . qq{  <recv request="ACK" crlf="true"/>\n}
    . qq{  <pause milliseconds="100"/>\n}
    . qq{  <send retrans="500">\n    <![CDATA[\n\n}
    . qq{      BYE [next_url] SIP/2.0\n      $via\n      [routes]\n}
    . qq{      From: [\$callee];tag=[pid]SIPpTag01[call_number]\n}
    . qq{      To: [\$caller]\n      Call-ID: [call_id]\n}
    . qq{      CSeq: 1 BYE\n      Max-Forwards: 70\n}
    . qq{      Content-Length: 0\n\n    ]]>\n  </send>\n}
    . qq{  <recv response="200"/>\n});

# the 487 needs the INVITE's Via: keep it when the INVITE arrives
my $keep_via = qq{<recv request="INVITE" crlf="true">\n    <action>\n}
    . qq{      <ereg regexp="Via:.*" search_in="msg" check_it="true"}
    . qq{ assign_to="invite_via"/>\n    </action>\n  </recv>};

$scenarios{uas_cancel} =~ s{<recv request="INVITE" crlf="true"/>}{$keep_via};

for my $workers (4, 1) {
    my $t = NgxSip->new();
    my $w = "$workers workers";

    $t->write_conf(<<'EOF', workers => $workers);
stream {
    log_format sip '$sip_method $sip_status $sip_call_id';
    access_log %%PREFIX%%/logs/sip.log sip;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_1%%;
        sip_timers 100ms 400ms 500ms;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_2%%;
    }

    server {
        listen 127.0.0.1:%%PORT_3%% udp;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_4%%;
        sip_timers 100ms 400ms 500ms;
    }
}
EOF

    $t->write_file("$_.xml", $scenarios{$_}) for keys %scenarios;
    $t->run();

    my $p = $t->prefix;
    my $proxy = $t->port(0);
    my $uas_port = $t->port(1);

    my $run = sub {
        my ($uas, $uac, $calls, $name) = @_;

        my $uas_pid = fork() // die;

        if ($uas_pid == 0) {
            open STDOUT, '>', "$p/$uas.out";
            open STDERR, '>&', \*STDOUT;
            exec($sipp, '-sf', "$p/$uas.xml", '-i', '127.0.0.1',
                '-p', $uas_port, '-m', $calls, '-nostdin',
                '-timeout', '60s', '-timeout_error', '-trace_err',
                '-error_file', "$p/$uas.err",
                '-default_behaviors', 'all,-abortunexp');
            exit 127;
        }

        sleep 0.5;

        my $uac_port = NgxSip->new()->port('uac');
        my $rc = system("cd $p && timeout 60 $sipp -sf $p/$uac.xml -s bob"
            . " -i 127.0.0.1 -p $uac_port -m $calls -r 50 -l 50"
            . " -nostdin -timeout 40s -timeout_error"
            . " -default_behaviors all,-abortunexp"
            . " -trace_err -error_file $p/$uac.err"
            . " 127.0.0.1:$proxy >$p/$uac.out 2>&1");

        is($rc >> 8, 0, "$w: $name")
            or diag(`tail -5 $p/$uac.out; tail -30 $p/$uac.err`);

        # the callee ends by itself; a bounded wait, then exactly it goes
        for (1 .. 50) {
            last if waitpid($uas_pid, 1) == $uas_pid;
            sleep 0.1;
        }

        if (kill 0, $uas_pid) {
            kill 'TERM', $uas_pid;
            waitpid($uas_pid, 0);
        }
    };

    $run->('uas_call', 'uac_call', $workers == 4 ? 500 : 200,
        'calls with Record-Route, ACK and BYE along it');
    $run->('uas_bye', 'uac_bye', 50, 'BYE from the callee along the route');
    $run->('uas_busy', 'uac_busy', 20, '486 forwarded, ACK hop by hop');
    $run->('uas_cancel', 'uac_cancel', 20,
        'CANCEL while ringing: 200, 487, ACK');

    # an upstream that never answers: 100 at once, 408 after timer B

    my $u = udp_socket();
    udp_send($u, sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $u->sockport), '127.0.0.1', $t->port(3));
    my @got = map { parse_sip($_->[0]) } udp_recv($u, 10, 1);
    is(join(' ', map { $_->{code} } grep { $_ } @got), '100 408',
        "$w: no answer upstream: 100, then 408");

    # a loop: the server's own address as sip_pass

    udp_send($u, sip_request(method => 'OPTIONS',
        uri => 'sip:bob@example.com', via_port => $u->sockport),
        '127.0.0.1', $t->port(2));
    my ($got) = udp_recv($u, 3);
    my $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 482, "$w: loop detected");

    # a forged route: not ours, so not relayed

    udp_send($u, sip_request(method => 'BYE', uri => 'sip:bob@192.0.2.9',
        via_port => $u->sockport,
        headers => [['Route', "<sip:127.0.0.1:$proxy;lr;nsip=0123456789abcdef>"]]),
        '127.0.0.1', $proxy);
    ($got) = udp_recv($u, 3);
    $r = parse_sip($got && $got->[0]);
    is($r && $r->{code}, 404, "$w: forged Route refused");

    $t->stop();
    is($t->crashes(), '', "$w: no worker crashed");
}

done_testing();
