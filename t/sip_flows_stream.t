#!/usr/bin/perl

# Callers and callees on TCP and TLS, with 4 and 2 workers (issue 13):
#
# - TCP and TLS callers call phones registered over TCP and TLS, each from
#   8 fresh connections, so that caller and callee connections land on
#   different workers: every call is answered, ACKed and hung up, by the
#   callee (its BYE on the caller's connection) or by the caller;
# - a UDP INVITE of more than 1300 bytes goes on over TCP (RFC 3261
#   18.1.1): its Record-Route names a port nginx listens on, and once our
#   connection has idled out, the callee's BYE reaches the caller through
#   it;
# - a 200 whose Record-Route the callee altered (3 values): the caller's
#   ACK and BYE still reach the callee on its registered connection;
# - UDP callers cancel ringing calls to a TCP phone whatever worker owns
#   the Call-ID and holds the phone's connection;
# - TCP callers that hang up their connection after the 200: the callee's
#   BYE, read by whichever worker holds the callee's connection, goes to
#   the caller's Contact on a new connection (no "ob": no 430), whether
#   or not that worker held the caller's connection;
# - a callee's 200 again, after the INVITE transaction is gone, reaches a
#   TCP or TLS caller on its connection (or, once that has closed, on a
#   new connection to its Via's sent-by), not over UDP;
# - a TLS-only and a TCP-only server forward to a TCP sip_pass, and
#   $remote_addr of the connection we opened is an address, no port.

use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

for my $workers (split /,/, $ENV{SIP_WORKERS} || "4,2") {
    run_all($workers);
}

done_testing();


sub run_all {
    my ($workers) = @_;

    my $t = NgxSip->new()->make_cert('localhost');

    $t->write_conf(<<'EOF2', workers => $workers);
stream {
    sip_location_zone loc:1m;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_record_route on;
    }

    server {
        listen 127.0.0.1:%%PORT_2%% udp;
        listen 127.0.0.1:%%PORT_2%%;
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:%%PORT_3%%;
        sip_connection_timeout 2s;
    }
}
EOF2

    # the callee of the big INVITE listens on TCP where sip_pass says UDP
    my $big_callee = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $t->port(3), Listen => 5, ReuseAddr => 1)
        or die "listen: $@";

    $t->run();

    my %listens = map { $t->port($_) => 1 } 0, 1, 2;

    stream_calls($t, $workers);
    udp_cancel($t, $workers);
    big_invite($t, $workers, $big_callee, \%listens);
    altered_route($t, $workers);
    gone_caller($t, $workers);
    ok_again($t, $workers);

    $t->stop();
    is($t->crashes(), '', "$workers workers: no worker crashed");

    # an nginx without any UDP listen: a TLS edge, a TCP one

    my $e = NgxSip->new()->make_cert('localhost');

    $e->write_conf(<<'EOF2', workers => $workers);
stream {
    log_format opened '$remote_addr|$remote_port';
    access_log %%PREFIX%%/logs/opened.log opened;

    server {
        listen 127.0.0.1:%%PORT_4%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;
        sip on;
        sip_domain example.com;
        sip_pass "sip:127.0.0.1:%%PORT_5%%;transport=tcp";
        sip_connection_timeout 1s;
    }

    server {
        listen 127.0.0.1:%%PORT_6%%;
        sip on;
        sip_domain example.com;
        sip_pass "sip:127.0.0.1:%%PORT_5%%;transport=tcp";
        sip_connection_timeout 1s;
    }
}
EOF2

    my $pbx = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $e->port(5), Listen => 5, ReuseAddr => 1)
        or die "listen: $@";

    $e->run();
    stream_only($e, $workers, $pbx);
    $e->stop();
    is($e->crashes(), '', "$workers workers, no UDP: no worker crashed");
}


sub phone {
    my ($t, $user, $tr) = @_;
    my $s = tcp_connect(port => $t->port($tr eq 'tls' ? 1 : 0),
        ssl => $tr eq 'tls');
    stream_send($s, sip_request(method => 'REGISTER', uri => 'sip:example.com',
        to => "sip:$user\@example.com", transport => uc $tr,
        via_host => '10.9.9.9', via_port => 5999, call_id => "reg-$user",
        headers => [['Contact', "<sip:$user\@10.9.9.9:5999;transport=$tr>"],
            ['Expires', 600]]));
    my ($m) = stream_recv($s, 1, 5);
    return ($s, parse_sip($m->[0] // ''));
}

# the next message on a connection: what a read brought beyond the
# message it waited for is kept for the next call
my (%pending, $eof);

sub next_message {
    my ($s, $timeout) = @_;
    my $deadline = time() + ($timeout || 5);
    my $sel = IO::Select->new($s);

    for (;;) {
        my $buf = $pending{"$s"} //= '';
        $buf =~ s/^(\r\n)+//;
        if ($buf =~ /^(.*?\r\n\r\n)/s) {
            my $head = $1;
            my ($cl) = $head =~ /^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)/mi;
            my $len = length($head) + ($cl || 0);
            if (length($buf) >= $len) {
                $pending{"$s"} = substr($buf, $len);
                return substr($buf, 0, $len);
            }
        }
        $pending{"$s"} = $buf;

        my $left = $deadline - time();
        return undef if $left <= 0;
        unless ($s->isa('IO::Socket::SSL') && $s->pending) {
            return undef unless $sel->can_read($left);
        }
        my $got = sysread($s, my $chunk, 65536);
        $eof = defined $got && $got == 0;
        return undef unless $got;
        $pending{"$s"} .= $chunk;
    }
}

# the next message on a connection if it is a request of that method
sub wait_request {
    my ($s, $method, $timeout) = @_;
    my $m = next_message($s, $timeout) // '';
    return $m =~ /^$method / ? $m : undef;
}

# responses on a connection until a final one: the codes and the final
sub wait_final {
    my ($s) = @_;
    my (@codes, $final);
    my $deadline = time() + 5;
    while (time() < $deadline) {
        my $m = next_message($s, $deadline - time()) // last;
        my $r = parse_sip($m) or next;
        push @codes, $r->{code};
        if ($r->{code} >= 200) {
            $final = $m;
            last;
        }
    }
    return (join(' ', @codes), $final);
}

sub in_dialog {
    my (%a) = @_;
    return "$a{method} $a{uri} SIP/2.0\r\n"
        . "Via: SIP/2.0/$a{tr} 10.8.8.8:5998;branch=z9hG4bK-$a{branch}\r\n"
        . "Route: $a{route}\r\nMax-Forwards: 70\r\n"
        . "From: $a{from}\r\nTo: $a{to}\r\n"
        . "Call-ID: $a{cid}\r\nCSeq: $a{cseq} $a{method}\r\n"
        . "Content-Length: 0\r\n\r\n";
}

# one call from a fresh caller connection to a registered phone
sub stream_call {
    my ($t, $phone, $user, $ctr, $i, $callee_hangs_up) = @_;

    my $c = tcp_connect(port => $t->port($ctr eq 'tls' ? 1 : 0),
        ssl => $ctr eq 'tls');
    my $cid = "st-$user-$ctr-$i-" . int(rand(1e9));
    my $ccontact = "<sip:caller$i\@10.7.7.7:5997;transport=$ctr>";

    stream_send($c, sip_request(method => 'INVITE',
        uri => "sip:$user\@example.com", transport => uc $ctr,
        via_host => '10.7.7.7', via_port => 5997, call_id => $cid,
        from => "sip:caller$i\@example.com",
        headers => [['Contact', $ccontact]]));

    my $inv = wait_request($phone, 'INVITE')
        or return 'no INVITE on the callee\'s connection';

    stream_send($phone, sip_response($inv, 200, 'OK', tag => "cal$i",
        headers => [['Contact', "<sip:$user\@10.9.9.9:5999>"]]));

    my ($codes, $ok) = wait_final($c);
    return "caller got '$codes'" unless $codes =~ /^100 (.* )?200$/;

    my $r = parse_sip($ok);
    my @rr = map { split /,\s*/ } @{$r->{h}{'record-route'} || []};
    return "the 200 has " . scalar(@rr) . " Record-Routes" unless @rr == 2;
    my ($from) = @{$r->{h}{from}};
    my ($to) = @{$r->{h}{to}};

    my %caller = (route => join(', ', reverse @rr), from => $from, to => $to,
        cid => $cid, uri => "sip:$user\@10.9.9.9:5999", tr => uc $ctr);
    my %callee = (route => join(', ', @rr), from => $to, to => $from,
        cid => $cid, uri => "sip:caller$i\@10.7.7.7:5997;transport=$ctr",
        tr => 'TLS');

    stream_send($c, in_dialog(%caller, method => 'ACK', cseq => 1,
        branch => "ack$i-" . int(rand(1e9))));
    wait_request($phone, 'ACK') or return 'no ACK on the callee\'s connection';

    my ($from_side, $to_side) = $callee_hangs_up ? ($phone, $c) : ($c, $phone);
    my %d = $callee_hangs_up ? %callee : %caller;

    stream_send($from_side, in_dialog(%d, method => 'BYE', cseq => 2,
        branch => "bye$i-" . int(rand(1e9))));
    my $bye = wait_request($to_side, 'BYE')
        or return 'no BYE on the ' . ($callee_hangs_up ? 'caller' : 'callee')
            . '\'s connection';
    stream_send($to_side, sip_response($bye, 200, 'OK'));

    ($codes) = wait_final($from_side);
    return "BYE got '$codes'" unless $codes eq '200';

    close $c;
    return 'ok';
}

sub stream_calls {
    my ($t, $workers) = @_;

    for my $ptr ('tcp', 'tls') {
        my $user = "$ptr-callee-$workers";
        my ($phone, $r) = phone($t, $user, $ptr);
        is($r && $r->{code}, 200, "$workers workers: $ptr callee registered");

        for my $ctr ('tcp', 'tls') {
            my @bad;
            for my $i (1 .. 8) {
                my $res = stream_call($t, $phone, $user, $ctr, $i, $i % 2);
                push @bad, "call $i: $res" if $res ne 'ok';
            }
            is(join('; ', @bad), '', "$workers workers: \U$ctr\E callers "
                . "to a \U$ptr\E callee, 8 connections: answered, ACKed, "
                . "hung up by either");
        }

        close $phone;
    }
}

# a UDP caller cancels; its INVITE's transaction is with the owner of
# its Call-ID, the phone's connection with whichever worker accepted it
sub udp_cancel {
    my ($t, $workers) = @_;

    my $user = "cancel-$workers";
    my ($phone, $r) = phone($t, $user, 'tcp');
    is($r && $r->{code}, 200, "$workers workers: TCP phone registered");

    my @bad;

    for my $i (1 .. 6) {
        my $u = udp_socket();
        my $cid = "cancel-$workers-$i-" . int(rand(1e9));
        my $inv = sip_request(method => 'INVITE',
            uri => "sip:$user\@example.com", via_port => $u->sockport,
            call_id => $cid, branch => "z9hG4bK-cinv$i" . int(rand(1e9)));
        udp_send($u, $inv, '127.0.0.1', $t->port(0));

        my $got = wait_request($phone, 'INVITE');
        unless ($got) {
            push @bad, "call $i: no INVITE";
            next;
        }
        stream_send($phone, sip_response($got, 180, 'Ringing', tag => "c$i"));

        (my $cancel = $inv) =~ s/^INVITE /CANCEL /;
        $cancel =~ s/^CSeq: 1 INVITE/CSeq: 1 CANCEL/m;
        udp_send($u, $cancel, '127.0.0.1', $t->port(0));

        my $c = wait_request($phone, 'CANCEL');
        unless ($c) {
            push @bad, "call $i: no CANCEL on the phone's connection";
            next;
        }
        stream_send($phone, sip_response($c, 200, 'OK', tag => "c$i")
            . sip_response($got, 487, 'Request Terminated', tag => "c$i"));
        wait_request($phone, 'ACK', 3);

        my %codes;
        while (my ($d) = udp_recv($u, 3)) {
            my $x = parse_sip($d->[0]) or next;
            my ($m) = $d->[0] =~ /^CSeq: \d+ (\w+)/m;
            $codes{$m} .= " $x->{code}";
            last if ($codes{INVITE} // '') =~ /487/;
        }
        my $all = join ',', map { "$_$codes{$_}" } sort keys %codes;
        push @bad, "call $i: $all"
            unless $all =~ /CANCEL 200/ && $all =~ /INVITE.* 487/;
    }

    is(join('; ', @bad), '', "$workers workers: 6 UDP callers cancel "
        . "calls to a TCP phone: 200 for the CANCEL, 487 for the INVITE");

    close $phone;
}

# RFC 3261 18.1.1: too big for UDP, on over TCP; the way back must stay
sub big_invite {
    my ($t, $workers, $callee, $listens) = @_;

    my $u = udp_socket();
    my $cid = "big-$workers-" . int(rand(1e9));
    my $body = "v=0\r\n" . ("a=x-padding:" . ('x' x 60) . "\r\n") x 22;

    udp_send($u, sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $u->sockport, call_id => $cid, body => $body,
        headers => [['Contact', '<sip:alice@127.0.0.1:' . $u->sockport . '>'],
            ['Content-Type', 'application/sdp']]),
        '127.0.0.1', $t->port(2));

    my $in = IO::Select->new($callee)->can_read(5) ? $callee->accept : undef;
    my $inv = $in ? wait_request($in, 'INVITE') : undef;
    ok($inv, "$workers workers: a big UDP INVITE came over TCP");
    return unless $inv;

    my ($rr) = $inv =~ /^Record-Route: (.*)\r$/m;
    my @rr = split /,\s*/, $rr // '';
    my @ports = map { /^<sips?:[^;>]*:(\d+)[;>]/ ? $1 : 0 } @rr;
    is(scalar(grep { !$listens->{$_} } @ports) . ' of ' . scalar(@ports),
        '0 of ' . scalar(@rr), "$workers workers: every Record-Route names "
        . "a port nginx listens on (@ports)");
    my ($via_port) = $inv =~ /^Via: SIP\/2\.0\/TCP [\d.]+:(\d+);/m;
    ok($via_port && $listens->{$via_port},
        "$workers workers: so does our Via");

    stream_send($in, sip_response($inv, 200, 'OK', tag => 'big',
        headers => [['Contact', '<sip:bob@127.0.0.1:' . $t->port(3)
            . ';transport=tcp>']]));
    my $final = '';
    while (my ($d) = udp_recv($u, 5)) {
        next if $d->[0] =~ /^SIP\/2\.0 1\d\d /;
        $final = $d->[0];
        last;
    }
    like($final, qr/^SIP\/2\.0 200 /,
        "$workers workers: the caller got the 200");

    # our connection idles out (sip_connection_timeout 2s)
    $eof = 0;
    my $x = next_message($in, 6);
    ok(!defined $x && $eof,
        "$workers workers: our connection to the callee idled out");

    # the callee's BYE: to the first Record-Route, on a new connection
    my ($port) = $ports[0];
    my $c = IO::Socket::IP->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 3);
    ok($c, "$workers workers: the callee connects to the Record-Route");
    return unless $c;

    my ($from) = $inv =~ /^From: (.*)\r$/m;
    my ($to) = $inv =~ /^To: (.*)\r$/m;
    stream_send($c, in_dialog(method => 'BYE', cseq => 5, branch => 'bigbye',
        route => $rr, from => "$to;tag=big", to => $from, cid => $cid,
        uri => 'sip:alice@127.0.0.1:' . $u->sockport, tr => 'TCP'));
    my ($d) = udp_recv($u, 5);
    my $bye = $d && $d->[0] // '';
    like($bye, qr/^BYE sip:alice\@/, "$workers workers: the callee's BYE "
        . "reached the caller after the idle close");

    udp_send($u, sip_response($bye, 200, 'OK'), '127.0.0.1', $t->port(2))
        if $bye;
    my ($codes) = wait_final($c);
    is($codes, '200', "$workers workers: the caller's 200 came back");
}

# a callee's 200 with a Record-Route of 3 values (linphone did that)
sub altered_route {
    my ($t, $workers) = @_;

    my $user = "alt-$workers";
    my ($phone, $r) = phone($t, $user, 'tls');
    is($r && $r->{code}, 200, "$workers workers: TLS phone registered");

    my $tls = $t->port(1);

    for my $variant ('extra value', 'flow token gone') {
        my $u = udp_socket();
        my $cid = "alt-$workers-" . int(rand(1e9));
        udp_send($u, sip_request(method => 'INVITE',
            uri => "sip:$user\@example.com", via_port => $u->sockport,
            call_id => $cid, headers => [['Contact',
                '<sip:caller@127.0.0.1:' . $u->sockport . '>']]),
            '127.0.0.1', $t->port(0));

        my $inv = wait_request($phone, 'INVITE');
        ok($inv, "$workers workers, $variant: INVITE on the phone's flow");
        next unless $inv;

        my ($rr) = $inv =~ /^Record-Route: (.*)\r$/m;
        my @rr = split /,\s*/, $rr // '';
        my @alt;

        if ($variant eq 'extra value') {
            @alt = ($rr[0], "<sip:127.0.0.1:$tls;transport=tls;lr>", $rr[1]);
        } else {
            (my $stripped = $rr[0]) =~ s/;nfl=[^;>]*//;
            @alt = ("<sip:127.0.0.1:$tls;transport=tls;lr>", $stripped,
                $rr[1]);
        }

        (my $resp = sip_response($inv, 200, 'OK', tag => 'alt',
            headers => [['Contact',
                "<sip:$user\@10.9.9.9:5999;transport=tls>"]]))
            =~ s/^Record-Route: .*$/'Record-Route: ' . join(', ', @alt) . "\r"/me;
        stream_send($phone, $resp);

        my ($d) = udp_recv($u, 5);
        $d = undef if $d && $d->[0] =~ /^SIP\/2\.0 100 /;
        ($d) = udp_recv($u, 5) unless $d;
        my $ok = parse_sip($d && $d->[0]) || { h => {} };
        is($ok->{code}, 200, "$workers workers, $variant: the caller got 200");

        my @got = map { split /,\s*/ } @{$ok->{h}{'record-route'} || []};
        my ($to) = @{$ok->{h}{to} || ['']};
        my ($from) = @{$ok->{h}{from} || ['']};

        for my $m ('ACK', 'BYE') {
            my $req = in_dialog(method => $m, cseq => $m eq 'ACK' ? 1 : 2,
                branch => "alt$m" . int(rand(1e6)),
                route => join(', ', reverse @got), from => $from, to => $to,
                cid => $cid, uri => "sip:$user\@10.9.9.9:5999;transport=tls",
                tr => 'UDP');
            $req =~ s/10\.8\.8\.8:5998/'127.0.0.1:' . $u->sockport/e;
            udp_send($u, $req, '127.0.0.1', $t->port(0));

            my $x = wait_request($phone, $m);
            ok($x, "$workers workers, $variant: the $m reached the phone "
                . "on its connection");
            next unless $x;
            unlike($x, qr/^Route:/m, "$workers workers, $variant: every "
                . "Route of ours consumed from the $m");

            if ($m eq 'BYE') {
                stream_send($phone, sip_response($x, 200, 'OK'));
                ($d) = udp_recv($u, 5);
                like($d && $d->[0] // '', qr/^SIP\/2\.0 200 .*CSeq: 2 BYE/s,
                    "$workers workers, $variant: the 200 for BYE came back");
            }
        }
    }

    close $phone;
}

# The caller's connection closes after the 200 (it asked for no RFC 5626
# outbound): the callee's BYE goes to its Contact on a new connection.
# The callee's connection is with one worker, each caller's with any:
# when another worker held it, that worker answers "gone", and the branch
# goes again to the Request-URI (not 480).
sub gone_caller {
    my ($t, $workers) = @_;

    my $user = "gone-$workers";
    my ($phone, $r) = phone($t, $user, 'tcp');
    is($r && $r->{code}, 200, "$workers workers: TCP phone registered");

    my $lport = $t->port(7);
    my $srv = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $lport, Listen => 16, ReuseAddr => 1)
        or die "listen: $@";

    my @bad;
    for my $i (1 .. 8) {
        my $c = tcp_connect(port => $t->port(0));
        my $cid = "gone-$workers-$i-" . int(rand(1e9));
        my $contact = "sip:gone$i\@127.0.0.1:$lport;transport=tcp";

        stream_send($c, sip_request(method => 'INVITE',
            uri => "sip:$user\@example.com", transport => 'TCP',
            via_host => '127.0.0.1', via_port => $lport, call_id => $cid,
            from => "sip:gone$i\@example.com",
            headers => [['Contact', "<$contact>"]]));

        my $inv = wait_request($phone, 'INVITE')
            or do { push @bad, "$i: no INVITE"; next };
        stream_send($phone, sip_response($inv, 200, 'OK', tag => "gone$i",
            headers => [['Contact', "<sip:$user\@10.9.9.9:5999>"]]));

        my ($codes, $ok) = wait_final($c);
        $codes =~ /^100 (.* )?200$/
            or do { push @bad, "$i: caller got '$codes'"; next };
        my $p = parse_sip($ok);
        my @rr = map { split /,\s*/ } @{$p->{h}{'record-route'} || []};
        my ($from) = @{$p->{h}{from}};
        my ($to) = @{$p->{h}{to}};

        close $c;
        sleep 0.3;

        stream_send($phone, in_dialog(route => join(', ', @rr), from => $to,
            to => $from, cid => $cid, uri => $contact, tr => 'TCP',
            method => 'BYE', cseq => 2, branch => "gbye$i-" . int(rand(1e9))));

        my $in = IO::Select->new($srv)->can_read(5) ? $srv->accept : undef;
        my $bye = $in ? wait_request($in, 'BYE') : undef;
        unless ($bye) {
            my ($codes) = wait_final($phone);
            push @bad, "$i: no BYE on a new connection, the callee got "
                . "'$codes'";
            next;
        }
        push @bad, "$i: Route left in the BYE" if $bye =~ /^Route:/m;
        stream_send($in, sip_response($bye, 200, 'OK'));
        ($codes) = wait_final($phone);
        push @bad, "$i: the callee got '$codes' for its BYE"
            unless $codes eq '200';
        close $in;
    }

    is(join('; ', @bad), '', "$workers workers: 8 BYEs for callers whose "
        . 'connection closed went to their Contact on new connections');

    close $srv;
    close $phone;
}

# RFC 3261 16.7 step 10, 18.2.2: with one branch, the INVITE transaction
# ends with the 200; the callee's 200 again goes on statelessly, by the
# transport of the caller's Via: on the connection it came from (our Via
# names it), else, once it has closed, on a new one to the Via's sent-by.
sub ok_again {
    my ($t, $workers) = @_;

    my $user = "again-$workers";
    my ($phone, $r) = phone($t, $user, 'tcp');
    is($r && $r->{code}, 200, "$workers workers: TCP phone registered");

    my $lport = $t->port(7);
    my $srv = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $lport, Listen => 16, ReuseAddr => 1)
        or die "listen: $@";

    my @bad;
    for my $i (1 .. 9) {
        my $tr = $i % 2 ? 'tcp' : 'tls';
        my $keep = $i < 9;    # the 9th caller's connection closes
        my $c = tcp_connect(port => $t->port($tr eq 'tls' ? 1 : 0),
            ssl => $tr eq 'tls');
        my $cid = "again-$workers-$i-" . int(rand(1e9));

        stream_send($c, sip_request(method => 'INVITE',
            uri => "sip:$user\@example.com", transport => uc $tr,
            via_host => '127.0.0.1', via_port => $lport, rport => 1,
            call_id => $cid, from => "sip:again$i\@example.com",
            headers => [['Contact',
                "<sip:again$i\@127.0.0.1:$lport;transport=$tr>"]]));

        my $inv = wait_request($phone, 'INVITE')
            or do { push @bad, "$i: no INVITE"; next };
        my $ok = sip_response($inv, 200, 'OK', tag => "again$i",
            headers => [['Contact', "<sip:$user\@10.9.9.9:5999>"]]);
        stream_send($phone, $ok);

        my ($codes) = wait_final($c);
        $codes =~ /^100 (.* )?200$/
            or do { push @bad, "$i: caller got '$codes'"; next };

        close $c unless $keep;
        sleep 0.2;
        stream_send($phone, $ok);

        my $again;
        if ($keep) {
            $again = next_message($c, 3);
        } else {
            my $in = IO::Select->new($srv)->can_read(3) ? $srv->accept
                : undef;
            $again = $in ? next_message($in, 3) : undef;
            close $in if $in;
        }
        push @bad, "$i ($tr" . ($keep ? '' : ', connection closed')
            . "): no 200 again" unless ($again // '') =~ /^SIP\/2\.0 200 /;
        close $c if $keep;
    }

    is(join('; ', @bad), '', "$workers workers: a 200 again after the "
        . 'transaction went to TCP and TLS callers by their Via\'s '
        . 'transport');

    close $srv;
    close $phone;
}

# no UDP listen: TLS in, TCP out; TCP in, TCP out
sub stream_only {
    my ($t, $workers, $pbx) = @_;

    for my $in ([4, 'TLS'], [6, 'TCP']) {
        my ($port, $tr) = @$in;
        my $c = tcp_connect(port => $t->port($port), ssl => $tr eq 'TLS');
        stream_send($c, sip_request(method => 'OPTIONS',
            uri => 'sip:pbx@example.com', transport => $tr,
            via_host => '10.7.7.7', via_port => 5997));

        my $s = IO::Select->new($pbx)->can_read(5) ? $pbx->accept : undef;
        my $req = $s ? wait_request($s, 'OPTIONS') : undef;
        ok($req, "$workers workers: a $tr-only server forwards over TCP");
        if ($req) {
            stream_send($s, sip_response($req, 200, 'OK'));
        }
        my ($codes) = wait_final($c);
        is($codes, '200', "$workers workers: $tr-only: the answer came back");
        close $c;

        next unless $tr eq 'TLS';

        # the session of the connection we opened ends: $remote_addr
        sleep 2;
        close $s if $s;
        sleep 0.5;
        my $log = '';
        if (open my $fh, '<', $t->prefix . '/logs/opened.log') {
            local $/;
            $log = <$fh>;
        }
        my $pbx_port = $t->port(5);
        like($log, qr/^127\.0\.0\.1\|$pbx_port$/m,
            "$workers workers: \$remote_addr of our connection: its address, "
            . "no port");
    }
}
