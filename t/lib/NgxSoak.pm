package NgxSoak;

# Many messages over long-lived connections, for "make soak"
# (bench/soak.pl) and its short version in "make test" (t/sip_soak.t).
#
# One nginx with the module (N workers) is a proxy (sip_pass to a TCP
# trunk) and a registrar.  This process is every peer of it: the trunk
# (a TCP server that answers 200 to every request), a phone registered
# over TCP and one over TLS (each answers 486 to every INVITE on its own
# connection, and takes the ACK), and three clients: one TCP connection,
# one TLS connection and one UDP socket.  Each client keeps a window of
# requests outstanding: OPTIONS to the trunk, and every fifth an INVITE
# to a phone, whose 486 it acknowledges: the UDP client calls both
# phones in turn; a TCP or TLS client calls the phone of its transport
# when there is one worker (with more, the phone may be in another
# worker, which a request that came over a stream does not reach).
# Every message is logged with every $sip_* variable and $upstream_addr.
#
# The RSS of every worker is read once the tables are warm (after a
# first round of requests on the same connections) and at the end.
# SOAK_CLIENTS=tcp,udp runs only those clients, SOAK_DEBUG=1 writes a
# debug error log (with NGX_SIP_KEEP=1: to pair allocations and frees).

use strict;
use warnings;

use Exporter qw(import);
use IO::Select;
use IO::Socket::IP;
use Socket qw(MSG_DONTWAIT sockaddr_in inet_aton);
use Time::HiRes qw(time sleep);

use NgxSip;

our @EXPORT = qw(soak worker_rss);

my @SIP_VARS = qw(sip_transport sip_method sip_status sip_request_uri
    sip_request_uri_user sip_request_uri_host sip_from_user sip_from_host
    sip_to_user sip_to_host sip_cseq sip_call_id sip_user_agent
    sip_duration sip_header_max_forwards);

# A server transaction of an INVITE answered 486 stays 64*T1 (3.2 s
# here) for retransmissions, a non-INVITE one T4 (10 ms).  So that the
# transactions alive at a time do not depend on how fast the machine is
# (and the warm-up reaches what the run will), a client sends an INVITE
# only while fewer than $INVITES of its INVITEs ended in the last
# $LINGER seconds, OPTIONS otherwise; RSS is read $LINGER seconds after
# the warm-up and after the run, when no transaction is left.
our $LINGER = 4;
our $INVITES = 400;

sub soak_conf {
    my (%o) = @_;

    my $fmt = join ' ', map { "\$$_" } @SIP_VARS;

    return <<"EOF";
stream {
    sip_location_zone soakloc:4m;

    log_format soak '\$remote_addr $fmt upstream=\$upstream_addr';

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        listen 127.0.0.1:%%PORT_0%%;
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_certificate     %%PREFIX%%/localhost.crt;
        ssl_certificate_key %%PREFIX%%/localhost.key;

        sip on;
        sip_domain example.com;
        sip_registrar soakloc;
        sip_pass "sip:127.0.0.1:%%PORT_2%%;transport=tcp";
        sip_timers 50ms 400ms 10ms;

        access_log %%PREFIX%%/logs/soak.log soak;
    }
}
EOF
}

# VmRSS in kB of every child of the master
sub worker_rss {
    my ($master) = @_;

    my %rss;

    opendir my $d, '/proc' or die;

    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/status" or next;
        my ($ppid, $rss);
        while (<$fh>) {
            $ppid = $1 if /^PPid:\s+(\d+)/;
            $rss = $1 if /^VmRSS:\s+(\d+)/;
        }
        $rss{$pid} = $rss if defined $ppid && $ppid == $master && $rss;
    }

    return \%rss;
}

###############################################################################

# a stream peer: a socket, its input and the messages framed from it
sub frame {
    my ($p) = @_;

    my @m;

    for (;;) {
        $p->{in} =~ s/^(?:\r\n)+//;
        my $e = index($p->{in}, "\r\n\r\n");
        last if $e < 0;
        my ($cl) = substr($p->{in}, 0, $e)
            =~ /^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)/mi;
        my $len = $e + 4 + ($cl || 0);
        last if length($p->{in}) < $len;
        push @m, substr($p->{in}, 0, $len, '');
    }

    return @m;
}

sub response {
    my ($req, $code, $reason, $tag) = @_;

    my $r = "SIP/2.0 $code $reason\r\n";

    for my $l ($req =~ /^((?:Via|v|From|f|To|t|Call-ID|i|CSeq)[ \t]*:.*)\r$/mig) {
        $l .= ";tag=$tag" if $l =~ /^(?:To|t)[ \t]*:/i && $l !~ /;tag=/;
        $r .= "$l\r\n";
    }

    return $r . "Content-Length: 0\r\n\r\n";
}

sub request {
    my ($c, $method, $uri, $n) = @_;

    my $cid = "soak-$c->{name}-$n";

    return ($cid, "$method $uri SIP/2.0\r\n"
        . "Via: SIP/2.0/$c->{via};branch=z9hG4bK-$cid;rport\r\n"
        . "Max-Forwards: 70\r\n"
        . "From: <sip:soak\@example.com>;tag=f$n\r\n"
        . "To: <$uri>\r\n"
        . "Call-ID: $cid\r\n"
        . "CSeq: 1 $method\r\n"
        . "User-Agent: ngx-sip-soak\r\n"
        . "Content-Length: 0\r\n\r\n");
}

sub out {
    my ($p, $data) = @_;

    if ($p->{udp}) {
        $p->{sock}->send($data, 0, $p->{to}) or die "send: $!";
        return;
    }

    local $SIG{PIPE} = 'IGNORE';

    while (length $data) {
        my $n = syswrite($p->{sock}, $data);
        die "$p->{name}: write: $!" unless defined $n;
        substr($data, 0, $n, '');
    }
}

# Runs $o{count} requests on each client; dies on a stall or a worker
# growing more than $o{abort_kb} (the old module would eat the machine).
# Returns { clients => { name => {sent, done, ...} }, elapsed }.
sub soak_run {
    my ($t, $peers, %o) = @_;

    my $count = $o{count};
    my $window = $o{window} || 32;
    my $sel = IO::Select->new(map { $_->{sock} } values %$peers);
    my %by_sock = map { ("$_->{sock}" => $_) } values %$peers;
    my @clients = grep { $_->{client} && !$_->{off} } values %$peers;
    my $start = time();
    my $last_progress = $start;
    my $next_check = 0;
    my $next_report = $start + ($o{progress} || 0);
    my $next_ping = $start + ($ENV{SOAK_PING} || 30);
    my $base = $o{rss_base};

    for my $c (@clients) {
        $c->{invites} ||= [];
        $c->{sent} = 0;
        $c->{done} = 0;
        $c->{out} = {};
    }

    my $fill = sub {
        my ($c) = @_;
        while ($c->{sent} < $count && keys %{$c->{out}} < $window) {
            my $n = $o{first} + $c->{sent}++;
            my $callee = $c->{callees}[($n / 5) % @{$c->{callees}}]
                if @{$c->{callees}};

            # the INVITE budget: see $LINGER
            shift @{$c->{invites}}
                while @{$c->{invites}} && $c->{invites}[0] < time() - $LINGER;
            undef $callee if @{$c->{invites}} >= $INVITES;

            my ($cid, $msg) = $n % 5 == 4 && $callee
                ? request($c, 'INVITE', "sip:$callee\@example.com", $n)
                : request($c, 'OPTIONS', 'sip:trunk@far.example', $n);
            $c->{out}{$cid} = $msg;
            out($c, $msg);
        }
    };

    $fill->($_) for @clients;

    while (grep { $_->{done} < $count } @clients) {
        my @ready = $sel->can_read(0.5);

        for my $p (grep { $_->{ssl} && $_->{sock}->pending } values %$peers) {
            push @ready, $p->{sock} unless grep { $_ == $p->{sock} } @ready;
        }

        for my $s (@ready) {
            my $p = $by_sock{"$s"};
            my @msgs;

            if ($p->{listen}) {
                my $a = $s->accept or next;
                $a->autoflush(1);
                my $np = { name => "trunk$a", sock => $a, trunk => 1,
                    in => '' };
                $peers->{$np->{name}} = $np;
                $by_sock{"$a"} = $np;
                $sel->add($a);
                next;
            }

            if ($p->{udp}) {
                while (defined $s->recv(my $d, 65535, MSG_DONTWAIT)) {
                    last unless length $d;
                    push @msgs, $d;
                }

            } else {
                my $n = sysread($s, my $chunk, 262144);

                if (!$n && $p->{trunk}) {

                    # nginx closes a connection it opened once it is idle
                    # (sip_connection_timeout), and opens another
                    $sel->remove($s);
                    delete $peers->{$p->{name}};
                    close $s;
                    next;
                }

                die "$p->{name}: connection closed by nginx\n" unless $n;
                $p->{in} .= $chunk;
                @msgs = frame($p);
            }

            for my $m (@msgs) {
                my $is_req = $m !~ /^SIP\/2\.0 /;

                if ($p->{trunk}) {
                    out($p, response($m, 200, 'OK', 'trunk')) if $is_req;
                    next;
                }

                if ($p->{phone}) {
                    out($p, response($m, 486, 'Busy Here', 'phone'))
                        if $m =~ /^INVITE /;
                    next;
                }

                # a client: a final answer ends its request
                next if $is_req;
                my ($code) = $m =~ /^SIP\/2\.0 (\d+)/;
                my ($cid) = $m =~ /^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)\r$/mi;
                next if $code < 200 || !defined $cid
                    || !exists $p->{out}{$cid};

                my $req = delete $p->{out}{$cid};

                if ($req =~ /^INVITE /) {
                    die "$p->{name}: INVITE got $code\n" if $code != 486;
                    push @{$p->{invites}}, time();
                    $p->{calls}++;
                    out($p, NgxSip::sip_ack($req, $m));
                } elsif ($code != 200) {
                    die "$p->{name}: OPTIONS got $code\n";
                }

                $p->{done}++;
                $last_progress = time();
            }

            $fill->($p) if $p->{client};
        }

        my $now = time();

        # RFC 5626 keepalives, as phones and trunks send: a client that
        # is done, or a phone nobody calls, waits for the others
        if ($now > $next_ping) {
            $next_ping = $now + ($ENV{SOAK_PING} || 30);
            out($_, "\r\n\r\n") for grep {
                ($_->{phone} || $_->{client}) && !$_->{udp} } values %$peers;
        }

        die "stalled: " . join(', ', map { "$_->{name} $_->{done}/$count" }
            @clients) . "\n"
            if $now - $last_progress > ($o{stall} || 10);

        if ($o{progress} && $now > $next_report) {
            $next_report = $now + $o{progress};
            my $rss = worker_rss($t->{pid});
            $o{say}->(sprintf("%4.0f s: ", $now - $start)
                . join(', ', map { "$_->{name} $_->{done}" } @clients)
                . '; RSS ' . join(', ',
                    map { "$_ $rss->{$_} kB" } sort keys %$rss));
        }

        if ($base && $now > $next_check) {
            $next_check = $now + 1;
            my $rss = worker_rss($t->{pid});
            for my $w (keys %$rss) {
                die "worker $w grew to $rss->{$w} kB from "
                    . ($base->{$w} // 0) . " kB, aborted\n"
                    if $rss->{$w} > ($base->{$w} // 0) + $o{abort_kb};
            }
        }
    }

    return time() - $start;
}

# The whole soak: nginx started, peers set up, a warm-up of $o{warm}
# requests per client, then $o{count} more; $o{say} gets each line of the
# report.  Returns { rss_start, rss_end (pid => kB), growth_kb (the
# largest), lines, max_line, upstream_lists (lines naming more than one
# upstream), ... }.
sub soak {
    my (%o) = @_;

    my $say = $o{say} || sub { print "$_[0]\n" };
    my $t = NgxSip->new()->make_cert('localhost');

    my $workers = $o{workers} || 1;

    $t->write_conf(soak_conf(), workers => $workers);

    if ($ENV{SOAK_DEBUG}) {
        my $c = $t->prefix . '/nginx.conf';
        system('sed', '-i', 's/error.log info;/error.log debug;/', $c);
    }
    $t->run();

    $say->("nginx in " . $t->prefix) if $ENV{NGX_SIP_KEEP};

    my %peers;

    my $trunk = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $t->port(2), Proto => 'tcp', Listen => 16,
        ReuseAddr => 1) or die "trunk: $@";
    $peers{trunk} = { name => 'trunk', sock => $trunk, listen => 1 };

    for my $ssl (0, 1) {
        my $tr = $ssl ? 'tls' : 'tcp';
        my $user = "phone-$tr";
        my $s = tcp_connect(port => $t->port($ssl ? 1 : 0), ssl => $ssl);
        stream_send($s, sip_request(method => 'REGISTER',
            uri => 'sip:example.com', to => "sip:$user\@example.com",
            transport => uc $tr, via_host => '10.9.9.9', via_port => 5999,
            call_id => "reg-$user",
            headers => [['Contact', "<sip:$user\@10.9.9.9:5999;transport=$tr>"],
                ['Expires', 3600]]));
        my ($m) = stream_recv($s, 1, 10);
        die "$tr phone not registered: " . ($m->[0] // 'no answer') . "\n"
            unless ($m->[0] // '') =~ /^SIP\/2\.0 200 /;
        $peers{$user} = { name => $user, sock => $s, phone => 1, in => '',
            ssl => $ssl };

        my $c = tcp_connect(port => $t->port($ssl ? 1 : 0), ssl => $ssl);
        $peers{$tr} = { name => $tr, sock => $c, client => 1, in => '',
            ssl => $ssl, callees => $workers == 1 ? [$user] : [],
            via => uc($tr) . ' 127.0.0.1:' . $c->sockport };
    }

    my $u = udp_socket();
    $peers{udp} = { name => 'udp', sock => $u, client => 1, udp => 1,
        callees => ['phone-tcp', 'phone-tls'], via => 'UDP 127.0.0.1:' . $u->sockport,
        to => scalar sockaddr_in($t->port(0), inet_aton('127.0.0.1')) };

    # SOAK_CLIENTS=tcp,udp: only those (to find which one grows)
    if ($ENV{SOAK_CLIENTS}) {
        my %on = map { $_ => 1 } split /,/, $ENV{SOAK_CLIENTS};
        $peers{$_}{off} = !$on{$_} for qw(tcp tls udp);
    }

    my $warm = $o{warm};
    # the module before issue 14 would take the machine: stopped at 256 MB
    my $el = soak_run($t, \%peers, count => $warm, first => 0,
        rss_base => worker_rss($t->{pid}),
        abort_kb => $o{abort_kb} && $o{abort_kb} > 262144
            ? $o{abort_kb} : 262144);
    $say->(sprintf "warm-up: %d requests on each of tcp, tls, udp in %.1f s",
        $warm, $el);

    # what the warm-up left settles (transactions end, timers fire)
    sleep $LINGER;

    my $start = worker_rss($t->{pid});
    $say->("RSS at start: " . join(', ',
        map { "worker $_ $start->{$_} kB" } sort keys %$start));

    $_->{calls} = 0 for values %peers;

    $el = soak_run($t, \%peers, count => $o{count}, first => $warm,
        rss_base => $start, progress => $o{progress}, say => $say,
        abort_kb => $o{abort_kb} || $ENV{SOAK_ABORT_KB} || 65536);

    sleep $LINGER;

    my $end = worker_rss($t->{pid});
    $say->("RSS at end:   " . join(', ',
        map { "worker $_ $end->{$_} kB" } sort keys %$end));

    my $growth = 0;
    for my $w (keys %$start) {
        my $g = ($end->{$w} // 0) - $start->{$w};
        $growth = $g if $g > $growth;
    }

    $say->(sprintf "%d requests on each of tcp, tls, udp in %.1f s"
        . " (%.0f requests/s in all); largest worker growth %d kB",
        $o{count}, $el, 3 * $o{count} / $el, $growth);
    $say->("of which INVITEs to a phone (486, ACK): " . join(', ',
        map { "$_ $peers{$_}{calls}" } grep { !$peers{$_}{off} }
        qw(tcp tls udp)));

    close $_->{sock} for values %peers;

    $t->stop();

    my %r = (rss_start => $start, rss_end => $end, growth_kb => $growth,
        crashes => $t->crashes());

    # every message has its line, each naming one upstream at most
    open my $fh, '<', $t->prefix . '/logs/soak.log' or die "soak.log: $!";
    my ($lines, $max, $lists, $first, $last, $ups) = (0, 0, 0, 0, 0, 0);
    while (my $l = <$fh>) {
        $lines++;
        my $len = length($l) - 1;
        $max = $len if $len > $max;
        $first ||= $len;
        $last = $len;
        next unless $l =~ / upstream=(\S.*)$/;
        $ups++ if $1 ne '-';
        $lists++ if $1 =~ /[,:] /;
    }
    close $fh;

    @r{qw(lines max_line upstream_lists first_line last_line upstreams)} =
        ($lines, $max, $lists, $first, $last, $ups);

    $say->("access log: $lines lines, $ups with an upstream,"
        . " $lists naming more than one; line length first $first,"
        . " last $last, longest $max");

    return \%r;
}

1;
