package NgxSipp;

# SIPp scenarios for the proxy tests (caller and callee through nginx)
# and a runner that starts the callee, runs the caller, and stops
# exactly the callee it started.

use strict;
use warnings;

use Exporter qw(import);
use Test::More;
use Time::HiRes qw(sleep);

use NgxSip;

our @EXPORT = qw(sipp_scenarios sipp_call sipp_start sipp_wait);

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

# ringing too long: the proxy's Timer C gives the caller 408
$scenarios{uac_timer_c} = scenario('ringing too long', request('INVITE',
        'sip:[service]@example.com', 1, '', $sdp)
    . qq{  <recv response="100" optional="true"/>\n}
    . qq{  <recv response="180"/>\n}
    . qq{  <recv response="408"/>\n}
    . request('ACK', 'sip:[service]@example.com', 1, '')
        =~ s/ retrans="500"//r =~ s/\[branch\]/[last_branch]/r);

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


# REGISTER as [service], answering the 401 with SIPp's own digest code
my $register = <<'EOF';
  <send retrans="500">
    <![CDATA[

      REGISTER sip:example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@example.com>;tag=[pid]reg[call_number]
      To: <sip:[service]@example.com>
      Call-ID: [call_id]
      CSeq: CSEQ REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 300
      AUTHContent-Length: 0

    ]]>
  </send>
EOF

my $reg1 = $register =~ s/CSEQ/1/r =~ s/AUTH//r;
my $reg2 = $register =~ s/CSEQ/2/r =~ s/AUTH/[authentication]\n      /r;

$scenarios{uac_register_auth} = scenario('register with digest',
    $reg1 . qq{  <recv response="401" auth="true"/>\n}
    . $reg2 . qq{  <recv response="200"/>\n});


sub sipp_scenarios {
    return \%scenarios;
}


# sipp_call($t, $sipp, $uas, $uac, $calls, $proxy_port, $uas_port, $name,
#     [$uac_options, $uas_options]), e.g. "-t t1" for TCP
sub sipp_call {
    my ($t, $sipp, $uas, $uac, $calls, $proxy, $uas_port, $name,
        $uac_opt, $uas_opt) = @_;

    $uac_opt //= '';
    my @uas_opt = split ' ', $uas_opt // '';

    my $p = $t->prefix;

    my $uas_pid = sipp_start($t, $sipp, $uas, '-sf', "$p/$uas.xml",
        '-i', '127.0.0.1', '-p', $uas_port, '-m', $calls, @uas_opt);

    sleep 0.5;

    my $uac_port = NgxSip->new()->port('uac');
    my $rc = system("cd $p && timeout 60 $sipp -sf $p/$uac.xml -s bob $uac_opt"
        . " -i 127.0.0.1 -p $uac_port -m $calls -r 50 -l 50"
        . " -nostdin -timeout 40s -timeout_error"
        . " -default_behaviors all,-abortunexp"
        . " -trace_err -error_file $p/$uac.err"
        . " 127.0.0.1:$proxy >$p/$uac.out 2>&1");

    is($rc >> 8, 0, $name)
        or diag(`tail -5 $p/$uac.out; tail -30 $p/$uac.err`);

    # the callee ends by itself; a bounded wait, then exactly it goes
    sipp_wait($uas_pid, 5);
}

# a SIPp in the background, started with ARGS and the options every test
# wants (no stdin, a 60 s limit that fails it, errors traced): its pid;
# its screen goes to NAME.out and its errors to NAME.err in the prefix
sub sipp_start {
    my ($t, $sipp, $name, @args) = @_;

    my $p = $t->prefix;
    my $pid = fork() // die;

    if ($pid == 0) {
        open STDOUT, '>', "$p/$name.out";
        open STDERR, '>&', \*STDOUT;
        exec($sipp, @args, '-nostdin', '-timeout', '60s', '-timeout_error',
            '-trace_err', '-error_file', "$p/$name.err",
            '-default_behaviors', 'all,-abortunexp');
        exit 127;
    }

    return $pid;
}

# its exit code, waited for at most SECS seconds; then it is stopped
sub sipp_wait {
    my ($pid, $secs) = @_;

    for (1 .. $secs * 10) {
        return $? >> 8 if waitpid($pid, 1) == $pid;
        sleep 0.1;
    }

    kill 'TERM', $pid;
    waitpid($pid, 0);

    return 'killed';
}

1;
