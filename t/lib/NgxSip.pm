package NgxSip;

# A small harness in the manner of nginx-tests: a private prefix, a
# generated nginx.conf with free ports, nginx with our module started
# and stopped by pid, and raw SIP over UDP, TCP and TLS.

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(sleep time);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

our @EXPORT = qw(sip_request parse_sip udp_socket udp_send udp_recv
    tcp_connect stream_send stream_recv have_ipv6 sip_response sip_method
    sip_exchange need program);

my $top = abs_path(dirname(__FILE__) . '/../..');

sub new {
    my ($class, %opt) = @_;

    my $self = bless {
        prefix => tempdir('ngx-sip-XXXXXX', TMPDIR => 1,
            CLEANUP => !$ENV{NGX_SIP_KEEP}),
        nginx  => $ENV{NGX_SIP_NGINX} || '/usr/sbin/nginx',
        module => $ENV{NGX_SIP_MODULE}
            || "$top/objs/ngx_stream_sip_module.so",
        stream_module => $ENV{NGX_STREAM_MODULE}
            || '/usr/lib/nginx/modules/ngx_stream_module.so',
        ports  => {},
        %opt,
    }, $class;

    @$self{qw(stream_static sip_static)} = built_in($self->{nginx});

    mkdir "$self->{prefix}/logs";

    # workers run as an unprivileged user and must reach what is here
    chmod 0755, $self->{prefix};

    return $self;
}

# Which of the stream module and ours the binary has built in (no
# load_module for them then): "nginx -V" names a static stream module as
# --with-stream, ours as --add-module=<a tree with our config>.
# NGX_SIP_STATIC=1 or 0 says it for ours instead.

my %built_in;

sub built_in {
    my ($nginx) = @_;

    $built_in{$nginx} ||= do {
        my $v = `'$nginx' -V 2>&1`;
        die "$nginx -V failed: $v" if $? || $v !~ /configure arguments:/;

        my $stream = $v =~ /--with-stream(?:\s|$)/ ? 1 : 0;
        my $sip = 0;

        while ($v =~ /--add-module=(\S+)/g) {
            my $config = "$1/config";
            $sip = 1 if -f $config && do {
                open my $fh, '<', $config or die "$config: $!";
                local $/;
                <$fh> =~ /ngx_stream_sip_module/;
            };
        }

        $sip = $ENV{NGX_SIP_STATIC} if ($ENV{NGX_SIP_STATIC} // '') ne '';

        [$stream, $sip];
    };

    return @{$built_in{$nginx}};
}

sub prefix { $_[0]->{prefix} }
sub torture { $ENV{SIP_TORTURE} || "$top/../shared/sip-torture" }

# a port free for UDP and TCP on 127.0.0.1 and ::1, the same number
sub port {
    my ($self, $n) = @_;

    return $self->{ports}{$n} if defined $self->{ports}{$n};

    my %used = map { $_ => 1 } values %{$self->{ports}};

    for (1 .. 200) {
        my $probe = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Proto => 'tcp', Listen => 1) or next;
        my $port = $probe->sockport;
        close $probe;

        next if $used{$port} || $port < 1024;

        my @s;
        my $ok = 1;

        for my $addr ('127.0.0.1', have_ipv6() ? ('::1') : ()) {
            for my $proto ('tcp', 'udp') {
                my $s = IO::Socket::IP->new(LocalAddr => $addr,
                    LocalPort => $port, Proto => $proto,
                    $proto eq 'tcp' ? (Listen => 1) : ());
                unless ($s) { $ok = 0; last; }
                push @s, $s;
            }
        }

        close $_ for @s;

        if ($ok) {
            $self->{ports}{$n} = $port;
            return $port;
        }
    }

    die "no free port";
}

sub write_file {
    my ($self, $name, $content) = @_;
    open my $fh, '>', "$self->{prefix}/$name" or die "$name: $!";
    print $fh $content;
    close $fh;
}

# %%PORT_n%% becomes a free port, %%PREFIX%% the prefix, %%IPV6%% nothing
# (or a comment sign where there is no IPv6)
sub write_conf {
    my ($self, $conf, %opt) = @_;

    my $workers = $opt{workers} || 1;

    $conf =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $conf =~ s/%%PREFIX%%/$self->{prefix}/g;

    # a line only where there is IPv6
    my $v6 = have_ipv6() ? '' : '#';
    $conf =~ s/%%IPV6%%/$v6/g;

    my $head = '';
    $head .= "load_module $self->{stream_module};\n"
        unless $self->{stream_static};
    $head .= "load_module $self->{module};\n" unless $self->{sip_static};

    $head .= <<"END_CONF";

worker_processes $workers;
daemon on;
master_process on;
pid $self->{prefix}/nginx.pid;
error_log $self->{prefix}/logs/error.log info;

events {
    worker_connections 1024;
}

END_CONF

    $self->write_file('nginx.conf', $head . $conf);

    return $self;
}

sub make_cert {
    my ($self, $name) = @_;

    my $p = $self->{prefix};

    system("openssl req -x509 -newkey rsa:2048 -nodes -days 1"
        . " -subj /CN=$name -keyout $p/$name.key -out $p/$name.crt"
        . " >$p/openssl.log 2>&1") == 0
        or die "openssl failed";

    return $self;
}

sub run {
    my ($self) = @_;

    my $p = $self->{prefix};

    system($self->{nginx}, '-p', "$p/", '-c', "$p/nginx.conf",
        '-e', "$p/logs/error.log") == 0
        or die "nginx failed to start: " . $self->read_log();

    for (1 .. 50) {
        last if -s "$p/nginx.pid";
        sleep 0.1;
    }

    open my $fh, '<', "$p/nginx.pid" or die "no pid file";
    my $pid = <$fh>;
    close $fh;
    chomp $pid;

    $self->{pid} = $pid;

    for (1 .. 50) {
        last if $self->read_log() =~ /start worker process/;
        sleep 0.1;
    }

    sleep 0.3;

    return $self;
}

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    kill 'TERM', $pid;

    for (1 .. 100) {
        return $self unless kill 0, $pid;
        sleep 0.05;
    }

    kill 'KILL', $pid;

    return $self;
}

sub read_log {
    my ($self, $name) = @_;
    $name ||= 'error.log';
    open my $fh, '<', "$self->{prefix}/logs/$name" or return '';
    local $/;
    return <$fh>;
}

# alerts, emergencies and workers that died: never expected
sub crashes {
    my ($self) = @_;
    my @bad = grep { /\[(alert|emerg|crit)\]|exited on signal|segfault/ }
        split /\n/, $self->read_log();
    return join "\n", @bad;
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    $self->stop();
}

###############################################################################

# What a test needs from the machine (a program, a Perl module, IPv6, the
# torture corpus): "make test" installs all of it (DEB_PKGS), so without
# it the test dies, and fails, naming what is missing.  Only with
# NGX_SIP_ALLOW_SKIP=1, for a machine where it cannot be had, is it a
# skip: need() then returns false for the caller's "skip" or "plan
# skip_all".
sub need {
    my ($have, $what) = @_;

    return 1 if $have;
    return 0 if $ENV{NGX_SIP_ALLOW_SKIP};

    die "missing: $what (\"make deps\" installs it;"
        . " NGX_SIP_ALLOW_SKIP=1 skips what needs it)\n";
}

# the path of a program in PATH or an sbin directory, or ''
sub program {
    my ($name) = @_;

    for my $dir (split(/:/, $ENV{PATH} || ''), '/usr/sbin', '/sbin') {
        return "$dir/$name" if $dir ne '' && -f "$dir/$name" && -x _;
    }

    return '';
}

sub have_ipv6 {
    my $s = IO::Socket::IP->new(LocalAddr => '::1', Proto => 'udp');
    return defined $s;
}

# a request with the usual headers; extra ones as [name, value] pairs
sub sip_request {
    my (%h) = @_;

    my $method = $h{method} || 'OPTIONS';
    my $uri = $h{uri} || 'sip:example.com';
    my $transport = $h{transport} || 'UDP';
    my $via_host = $h{via_host} || '127.0.0.1';
    my $via_port = defined $h{via_port} ? ":$h{via_port}" : '';
    my $branch = $h{branch} || 'z9hG4bK' . int(rand(1e9));
    my $rport = $h{rport} ? ';rport' : '';
    my $body = $h{body} || '';
    my $cseq = $h{cseq} || 1;
    my $call_id = $h{call_id} || int(rand(1e9)) . '@test';
    my $mf = defined $h{max_forwards} ? $h{max_forwards} : 70;

    my $msg = "$method $uri SIP/2.0\r\n"
        . "Via: SIP/2.0/$transport $via_host$via_port;branch=$branch$rport\r\n"
        . ($mf eq '' ? '' : "Max-Forwards: $mf\r\n")
        . "From: <" . ($h{from} || 'sip:tester@example.com') . ">;tag="
        . int(rand(1e6)) . "\r\n"
        . "To: <" . ($h{to} || $uri) . ">\r\n"
        . ($h{no_call_id} ? '' : "Call-ID: $call_id\r\n")
        . "CSeq: $cseq " . ($h{cseq_method} || $method) . "\r\n";

    for my $x (@{$h{headers} || []}) {
        $msg .= "$x->[0]: $x->[1]\r\n";
    }

    $msg .= "Content-Length: " . length($body) . "\r\n"
        unless $h{no_content_length};

    return $msg . "\r\n" . $body;
}

# the response a UAS makes to a request text: Via, From, To (with a tag
# from 101 on), Call-ID and CSeq copied
sub sip_response {
    my ($req, $code, $reason, %h) = @_;

    my ($head) = split /\r\n\r\n/, $req, 2;
    my @lines = split /\r\n/, $head;
    shift @lines;

    my $msg = "SIP/2.0 $code $reason\r\n";

    for my $l (@lines) {
        next unless $l =~ /^(via|v|from|f|to|t|call-id|i|cseq|record-route)\s*:/i;
        $l .= ';tag=' . ($h{tag} || 'uas')
            if $l =~ /^(to|t)\s*:/i && $l !~ /;tag=/ && $code > 100;
        $msg .= "$l\r\n";
    }

    $msg .= "$_->[0]: $_->[1]\r\n" for @{$h{headers} || []};

    return $msg . "Content-Length: 0\r\n\r\n";
}

# the ACK of a non-2xx answer to an INVITE (RFC 3261 17.1.1.3)
sub sip_ack {
    my ($req, $resp) = @_;

    my ($to) = $resp =~ /^((?:To|t)\s*:.*)\r$/mi;
    my ($head) = split /\r\n\r\n/, $req, 2;
    my @lines = split /\r\n/, $head;
    my $first = shift @lines;
    $first =~ s/^INVITE /ACK /;

    my $msg = "$first\r\n";

    for my $l (@lines) {
        next if $l =~ /^(content-length|l|content-type|c|contact|m)\s*:/i;
        $l = $to if $l =~ /^(to|t)\s*:/i;
        $l =~ s/^(CSeq\s*:\s*\d+) INVITE/$1 ACK/i;
        $msg .= "$l\r\n";
    }

    return $msg . "Content-Length: 0\r\n\r\n";
}

# the method of a request text, or undef for a response
sub sip_method {
    my ($text) = @_;
    return $text =~ /^([A-Z]+) \S+ SIP\/2\.0\r\n/ ? $1 : undef;
}

# One request through the server, with fake UASes: $a{client} sends
# $a{msg} to $a{port}; a datagram on a socket of $a{uas} goes to its
# handler (text, socket), whose return values are sent back to where it
# came from.  The client's responses are returned once a final one came
# and $a{after} seconds more passed (for CANCEL and ACK to arrive), or at
# $a{timeout}.
sub sip_exchange {
    my (%a) = @_;

    my $client = $a{client};
    my %uas = map { ("$_->[0]" => $_) } @{$a{uas} || []};
    my $sel = IO::Select->new($client, map { $_->[0] } values %uas);
    my (@got, $final);
    my $deadline = time() + ($a{timeout} || 10);

    udp_send($client, $a{msg}, $a{addr} || '127.0.0.1', $a{port});

    while (1) {
        my $now = time();
        my $end = $final ? $final + ($a{after} || 0.5) : $deadline;
        $end = $deadline if $end > $deadline;
        last if $now >= $end;

        for my $s ($sel->can_read($end - $now)) {
            my $buf;
            my $peer = $s->recv($buf, 65535);
            next unless defined $peer;

            if ($s == $client) {
                my $r = parse_sip($buf) or next;
                push @got, $r;

                # the ACK of (each copy of) a non-2xx final to an INVITE
                udp_send($client, sip_ack($a{invite} || $a{msg}, $buf),
                    $a{addr} || '127.0.0.1', $a{port})
                    if $r->{code} >= 300 && $buf =~ /^CSeq:\s*\d+ INVITE/mi;

                $final ||= time() if $r->{code} >= 200;
                next;
            }

            for my $out ($uas{"$s"}[1]->($buf, $s)) {
                $s->send($out, 0, $peer);
            }
        }
    }

    return @got;
}

# a response: { code, reason, text, h => { lowercase long name => [values] } }
sub parse_sip {
    my ($text) = @_;

    return undef unless defined $text;

    my ($head) = split /\r\n\r\n/, $text, 2;
    my @lines = split /\r\n/, $head;
    my $first = shift @lines;

    return undef unless $first && $first =~ m{^SIP/2\.0 (\d{3}) ?(.*)$};

    my %r = (code => $1, reason => $2, text => $text, h => {});
    my %compact = (v => 'via', f => 'from', t => 'to', i => 'call-id',
        m => 'contact', l => 'content-length', k => 'supported');

    for my $l (@lines) {
        my ($n, $v) = $l =~ /^([^:\s]+)\s*:\s*(.*)$/ or next;
        $n = lc $n;
        $n = $compact{$n} if $compact{$n};
        push @{$r{h}{$n}}, $v;
    }

    return \%r;
}

sub udp_socket {
    my (%opt) = @_;

    return IO::Socket::IP->new(
        LocalAddr => $opt{addr} || '127.0.0.1',
        LocalPort => $opt{port} || 0,
        Proto => 'udp',
        ReuseAddr => 1,
    ) || die "udp socket: $@";
}

sub udp_send {
    my ($s, $msg, $addr, $port) = @_;

    my $peer = IO::Socket::IP->new(PeerAddr => $addr, PeerPort => $port,
        Proto => 'udp') or die "peer: $@";
    my $sa = $peer->peername;
    close $peer;

    return $s->send($msg, 0, $sa);
}

# datagrams arriving within the timeout: [text, peer host, peer port];
# only the first unless $all
sub udp_recv {
    my ($s, $timeout, $all) = @_;

    my $sel = IO::Select->new($s);
    my @got;
    my $deadline = time() + (defined $timeout ? $timeout : 2);

    while ((my $left = $deadline - time()) > 0) {
        last unless $sel->can_read($left);
        my $buf;
        defined $s->recv($buf, 65535) or last;
        push @got, [$buf, $s->peerhost, $s->peerport];
        last unless $all;
    }

    return @got;
}

sub tcp_connect {
    my (%opt) = @_;

    my $s;

    if ($opt{ssl}) {
        require IO::Socket::SSL;
        $s = IO::Socket::SSL->new(
            PeerAddr => $opt{addr} || '127.0.0.1',
            PeerPort => $opt{port},
            SSL_verify_mode => 0,
            Timeout => 5,
        ) or die "tls connect: $IO::Socket::SSL::SSL_ERROR $@";
    } else {
        $s = IO::Socket::IP->new(
            PeerAddr => $opt{addr} || '127.0.0.1',
            PeerPort => $opt{port},
            Proto => 'tcp',
            Timeout => 5,
        ) or die "tcp connect: $@";
    }

    $s->autoflush(1);

    return $s;
}

sub stream_send {
    my ($s, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    return syswrite($s, $data);
}

# reads until $n whole messages (by Content-Length) arrived, the peer
# closed or the time is up: (\@messages, $closed, $rest)
sub stream_recv {
    my ($s, $n, $timeout) = @_;

    my $buf = '';
    my @msgs;
    my $closed = 0;
    my $deadline = time() + ($timeout || 3);
    my $sel = IO::Select->new($s);

    for (;;) {
        while ($buf =~ /^((?:\r\n)*)(.*?\r\n\r\n)/s) {
            my ($skip, $head) = (length($1), $2);
            my ($cl) = $head =~ /^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)/mi;
            $cl ||= 0;
            last if length($buf) < $skip + length($head) + $cl;
            push @msgs, substr($buf, $skip, length($head) + $cl);
            substr($buf, 0, $skip + length($head) + $cl) = '';
        }

        last if @msgs >= $n;

        my $left = $deadline - time();
        last if $left <= 0;

        unless ($s->isa('IO::Socket::SSL') && $s->pending) {
            last unless $sel->can_read($left);
        }

        my $got = sysread($s, my $chunk, 65536);

        if (!$got) {
            $closed = 1;
            last;
        }

        $buf .= $chunk;
    }

    return (\@msgs, $closed, $buf);
}

1;
