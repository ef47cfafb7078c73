package NgxPhone;

# Real phones for the tests: Debian's baresip driven through its ctrl_tcp
# module (netstrings of JSON: commands in, responses and events out), one
# process per phone with a private configuration directory, started and
# stopped by pid.  Every wait is for an event, bounded in time.  Each
# phone traces the SIP it sends and receives (baresip -s) in its log,
# which dump() returns for the diagnostics of a failed test.

use strict;
use warnings;

use Exporter qw(import);
use IO::Select;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(wait_any phone_call conn_worker trace_has free_port);

my $baresip_modules = '/usr/lib/baresip/modules';

sub baresip {
    return '/usr/bin/baresip' if -x '/usr/bin/baresip';
    die "no baresip: apt-get install baresip\n";
}

# A TCP port for a phone's ctrl_tcp, below the range of ephemeral ports:
# the phones' own sockets (sip_listen port 0, and every connection they
# make) take ports of that range at any time, and may take one picked
# there before the phone that is to listen on it started
my %used;

sub free_port {
    my ($lo) = do {
        open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range';
        $fh ? split ' ', scalar <$fh> : (32768);
    };

    $lo = 32768 if !$lo || $lo < 12000;

    for (1 .. 1000) {
        my $port = 10000 + int(rand($lo - 10000));
        next if $used{$port};

        my $s = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1,
            ReuseAddr => 1) or next;
        close $s;

        $used{$port} = 1;
        return $port;
    }

    die "no free port";
}

# name, user, pass, domain, transport (udp, tcp, tls), proxy (host:port),
# sip_port (0: UDP, TCP and TLS each on a port of the kernel's choice, in
# the Contacts), dir, cafile (to verify the proxy),
# certificate (a PEM of certificate and key, for TLS connections to the
# phone)
sub new {
    my ($class, %a) = @_;

    my $self = bless { %a, events => [], buf => '' }, $class;

    mkdir $self->{dir};

    return $self;
}

sub name { $_[0]->{name} }
sub user { $_[0]->{user} }
sub transport { $_[0]->{transport} }
sub pid { $_[0]->{pid} }

sub aor { "sip:$_[0]->{user}\@$_[0]->{domain}" }

# a CALL_CLOSED because the peer sent a BYE
sub closed_by_peer { $_[1]{param} =~ /reset by peer/ }

# its configuration, with a ctrl_tcp port picked now
sub write_config {
    my ($self) = @_;

    my $d = $self->{dir};

    $self->{ctrl_port} = free_port();

    # only what a phone on loopback needs: no audio device (no source and
    # no player: the call has RTP out of nothing), no console
    open my $fh, '>', "$d/config" or die "$d/config: $!";
    print $fh <<"EOF";
poll_method		epoll
sip_listen		127.0.0.1:$self->{sip_port}
net_interface		127.0.0.1
call_local_timeout	120
call_max_calls		4
module_path		$baresip_modules
module			g711.so
module			ctrl_tcp.so
module_app		account.so
module_app		menu.so
ctrl_tcp_listen		127.0.0.1:$self->{ctrl_port}
EOF
    print $fh "sip_cafile\t\t$self->{cafile}\n" if $self->{cafile};
    print $fh "sip_certificate\t\t$self->{certificate}\n"
        if $self->{certificate};
    close $fh;

    # accounts are added over ctrl_tcp (uanew) once it is up, so that the
    # registration's outcome arrives as an event
    open $fh, '>', "$d/accounts" or die;
    close $fh;

}


sub start {
    my ($self) = @_;

    $self->write_config();

    my $log = "$self->{dir}/baresip.log";

    # nothing of a previous run
    @$self{qw(events buf closed in_call)} = ([], '', 0, 0);

    my $pid = fork() // die "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        exec('stdbuf', '-oL', '-eL', baresip(), '-f', $self->{dir}, '-s')
            or exit 127;
    }

    $self->{pid} = $pid;

    # its ctrl_tcp socket, once it listens
    my $deadline = time() + 20;

    while (time() < $deadline) {
        $self->{ctrl} = IO::Socket::IP->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{ctrl_port}, Proto => 'tcp') and last;
        return "baresip exited" if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    return "no ctrl_tcp" unless $self->{ctrl};

    $self->{sel} = IO::Select->new($self->{ctrl});

    return undef;
}

# the account, registered: undef or what went wrong
sub register {
    my ($self, %a) = @_;

    my $tr = $self->{transport};
    my $proxy = $self->{proxy};
    my $params = $tr eq 'udp' ? '' : ";transport=$tr";

    my $acc = "<sip:$self->{user}\@$self->{domain}$params>"
        . ";auth_pass=$self->{pass}"
        . ";outbound=\"sip:$proxy$params\""
        . ';regint=' . ($a{regint} || 600);

    $self->command('uanew', $acc);

    my $e = $self->wait_event(qr/^REGISTER_(OK|FAIL)$/, $a{timeout} || 20);

    return 'no registration event' unless $e;
    return "$e->{type} $e->{param}" unless $e->{type} eq 'REGISTER_OK';
    return undef;
}

sub command {
    my ($self, $cmd, $params) = @_;

    my $j = '{"command":"' . $cmd . '","params":"' . json_str($params // '')
        . '","token":"' . ++$self->{token} . '"}';

    local $SIG{PIPE} = 'IGNORE';
    syswrite($self->{ctrl}, length($j) . ":$j,");
}

sub json_str {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    return $s;
}

# reads what is there, waiting up to $timeout for something
sub pump {
    my ($self, $timeout) = @_;

    return unless $self->{sel}->can_read($timeout);

    my $n = sysread($self->{ctrl}, my $b, 65536);

    if (!$n) {
        $self->{sel}->remove($self->{ctrl});
        $self->{closed} = 1;
        return;
    }

    $self->{buf} .= $b;

    while ($self->{buf} =~ /^(\d+):/) {
        my $len = $1;
        my $hl = length($len) + 1;
        last if length($self->{buf}) < $hl + $len + 1;
        my $m = substr($self->{buf}, $hl, $len);
        substr($self->{buf}, 0, $hl + $len + 1) = '';
        my $e = json_flat($m);
        push @{$self->{events}}, $e if $e->{event};
    }
}

# the top-level string and boolean members of a JSON object: all the
# events and responses of baresip 1.0 need
sub json_flat {
    my ($j) = @_;
    my %h;
    while ($j =~ /"(\w+)":(?:"((?:[^"\\]|\\.)*)"|(true|false))/g) {
        next if exists $h{$1};
        $h{$1} = defined $2 ? $2 : $3 eq 'true';
    }
    return \%h;
}

# the first event of a type (a regexp) not taken yet, waiting up to
# $timeout; the events before it are kept
sub wait_event {
    my ($self, $type, $timeout, $call) = @_;

    my $deadline = time() + $timeout;

    for (;;) {
        my $ev = $self->{events};

        for my $i (0 .. $#$ev) {
            next unless $ev->[$i]{type} =~ $type;
            next if defined $call && ($ev->[$i]{id} // '') ne $call;
            $self->{in_call} = 0 if $ev->[$i]{type} eq 'CALL_CLOSED';
            return splice(@$ev, $i, 1);
        }

        my $left = $deadline - time();
        return undef if $left <= 0 || $self->{closed};

        $self->pump($left);
    }
}

# forget the events of calls that are over
sub flush {
    my ($self) = @_;
    $self->pump(0);
    @{$self->{events}} = ();
}

# the SIP this phone traced, the messages whose Call-ID is $callid (all
# when undef)
sub dump {
    my ($self, $callid) = @_;

    open my $fh, '<', "$self->{dir}/baresip.log" or return '';
    local $/;
    my $log = <$fh>;
    close $fh;

    $log =~ s/\e\[[\d;]*m//g;

    return $log unless defined $callid;

    my @m = grep { /^Call-ID:\s*\Q$callid\E\r?$/mi } split /\n(?=#\n)/, $log;

    return join "\n", @m;
}

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    $self->command('quit', '') if $self->{ctrl} && !$self->{closed};

    for (1 .. 100) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    kill 'TERM', $pid;

    for (1 .. 100) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# the first of several events: pairs [phone, type regexp]; (index, event)
# or () at the timeout
sub wait_any {
    my ($timeout, @want) = @_;

    my $deadline = time() + $timeout;

    for (;;) {
        for my $i (0 .. $#want) {
            my ($ph, $re) = @{$want[$i]};
            my $e = $ph->wait_event($re, 0);
            return ($i, $e) if $e;
        }

        my $left = $deadline - time();
        return () if $left <= 0;

        my $sel = IO::Select->new(map { $_->[0]{ctrl} }
            grep { !$_->[0]{closed} } @want);
        my @ready = $sel->can_read($left) or next;

        for my $w (@want) {
            $w->[0]->pump(0) if grep { $_ == $w->[0]{ctrl} } @ready;
        }
    }
}

# does the phone's trace hold a message of this Call-ID matching $re?
# Waits up to $timeout for it: the trace is written as the phone works
sub trace_has {
    my ($ph, $callid, $re, $timeout) = @_;

    my $deadline = time() + $timeout;

    for (;;) {
        return 1 if grep { /$re/ } split /\n(?=#\n)/, $ph->dump($callid);
        return 0 if time() >= $deadline;
        sleep 0.05;
    }
}

# A call from $x to $y, answered by $y, hung up by $hangs ($x or $y): undef
# when all went as it should, else what did not, with the SIP of the call
# both phones traced.  The ACK must reach the callee and the BYE its peer,
# whose 200 must come back.
sub phone_call {
    my ($x, $y, $hangs, %a) = @_;

    my $mark = $a{nginx} ? -s $a{nginx}->prefix . '/logs/error.log' : 0;

    my $err = call_steps(@_);

    # and what nginx said meanwhile
    $err .= "\n--- nginx:\n" . nginx_log_since($a{nginx}, $mark)
        if $err && $a{nginx};

    # a failed call must not be in the way of the next ones
    if ($err) {
        my @busy = grep { $_->{in_call} } $x, $y;

        $_->hangup_all() for @busy;

        for my $ph (@busy) {
            $ph->wait_event(qr/^CALL_CLOSED$/, 5);
        }

        for my $ph ($x, $y) {
            $ph->flush();
            $ph->{in_call} = 0;
        }
    }

    return $err;
}

sub call_steps {
    my ($x, $y, $hangs, %a) = @_;

    my $timeout = $a{timeout} || 15;

    $_->flush for $x, $y;

    $x->command('dial', $y->aor);
    $x->{in_call} = 1;

    my ($i, $e) = wait_any($timeout, [$y, qr/^CALL_INCOMING$/],
        [$x, qr/^CALL_CLOSED$/]);

    return 'no INVITE reached the callee' . trace_of($x, $y) unless $e;
    return "caller: call failed: $e->{param}"
        . trace_of($x, $y, $e->{id}) if $i == 1;

    my $id = $y->call_id($e);
    $y->{in_call} = 1;

    $y->command('accept', '');

    for my $ph ($x, $y) {
        ($i, $e) = wait_any($timeout, [$ph, qr/^CALL_ESTABLISHED$/],
            [$x, qr/^CALL_CLOSED$/], [$y, qr/^CALL_CLOSED$/]);
        return $ph->name . ': not established'
            . ($e ? ": closed: $e->{param}" : '') . trace_of($x, $y, $id)
            if !$e || $i != 0;
        $id //= $ph->call_id($e);
    }

    return 'callee: no ACK' . trace_of($x, $y, $id)
        unless trace_has($y, $id, qr/^ACK /m, $timeout);

    $a{before_hangup}->() if $a{before_hangup};

    my $other = $hangs == $x ? $y : $x;

    $hangs->command('hangup', '');

    $e = $other->wait_event(qr/^CALL_CLOSED$/, $timeout);

    return $other->name . ': the BYE never came' . trace_of($x, $y, $id)
        unless $e;
    return $other->name . ": closed: $e->{param}" . trace_of($x, $y, $id)
        unless $other->closed_by_peer($e);

    return $hangs->name . ': no 200 to the BYE' . trace_of($x, $y, $id)
        unless trace_has($hangs, $id,
            qr/^SIP\/2\.0 200 .*^CSeq:\s*\d+ BYE/ms, $timeout);

    $hangs->wait_event(qr/^CALL_CLOSED$/, $timeout);

    return undef;
}

sub nginx_log_since {
    my ($t, $mark) = @_;

    open my $fh, '<', $t->prefix . '/logs/error.log' or return '';
    seek $fh, $mark || 0, 0;
    local $/;
    my $log = <$fh> // '';
    close $fh;

    return join "\n", grep { /SIP|\[(warn|error|crit|alert|emerg)\]/ }
        split /\n/, $log;
}

sub trace_of {
    my ($x, $y, $id) = @_;

    $id //= $x->call_id();

    # the last messages each phone traced, when the call is not known
    if (!defined $id) {
        return join '', map {
            my @m = split /\n(?=#\n)/, $_->dump();
            "\n--- " . $_->name . ", last messages:\n"
                . join("\n", @m > 6 ? @m[-6 .. -1] : @m)
        } $x, $y;
    }
    return "\n--- caller " . $x->name . ":\n" . $x->dump($id)
        . "\n--- callee " . $y->name . ":\n" . $y->dump($id);
}

# the nginx worker holding the phone's connection to $port: (pid, the
# phone's local port), () when there is none
sub conn_worker {
    my ($ph, $port) = @_;

    my @ss = `ss -tnpH state established 2>/dev/null`;
    my $pid = $ph->pid;
    my $lport;

    # linphone's sockets are IPv6 ones, with IPv4-mapped addresses
    my $lo = qr/(?:127\.0\.0\.1|\[::ffff:127\.0\.0\.1\])/;

    for (@ss) {
        next unless /pid=$pid,/;
        next unless /^\s*\d+\s+\d+\s+$lo:(\d+)\s+$lo:$port\s/;
        $lport = $1;
    }

    return () unless $lport;

    for (@ss) {
        return ($1, $lport)
            if /$lo:$port\s+$lo:$lport\s.*"nginx",pid=(\d+),/;
    }

    return ();
}

# the Call-ID of a call event: baresip's call id is it
sub call_id { $_[1] ? $_[1]{id} : undef }

sub hangup_all {
    my ($self) = @_;
    $self->command('hangup', '') for 1 .. 2;
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    $self->stop();
}


###############################################################################

package NgxLinphone;

# Debian's linphonec as a phone with the interface of NgxPhone: commands
# on its stdin, events from the lines it prints (and registration from
# its log), SIP from its log (-d 6).  A private HOME (it needs
# ~/.local/share/linphone), "soundcard use files" (no audio device).
# It takes the network for down when its local address towards
# 87.98.157.38 is 127.0.0.1 (none, in a namespace with only loopback),
# looked at 5 s after it started: it then closes its connections and
# forgets its registration (auto_net_state_mon=0 stops that, and then
# it never registers: linphonec cannot say the network is up).  See
# t/sip_phones_linphone.t for the way round.

use strict;
use warnings;

use IO::Select;
use IPC::Open2;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our @ISA = ('NgxPhone');

# name, user, pass, domain, transport, proxy (host:port), dir, cafile
sub new {
    my ($class, %a) = @_;

    my $self = bless { %a, events => [], buf => '' }, $class;

    my $d = $self->{dir};
    mkdir $d;
    system('mkdir', '-p', "$d/.local/share/linphone") == 0 or die;

    my $tr = $a{transport};
    my %port = (udp => 'sip_port', tcp => 'sip_tcp_port',
        tls => 'sip_tls_port');

    # -1: a random port for the phone's transport, 0: none for the others
    my $ports = join "\n", map { "$port{$_}=" . ($_ eq $tr ? -1 : 0) }
        sort keys %port;

    open my $fh, '>', "$d/linphonerc" or die;
    print $fh <<"EOF2";
[sip]
$ports
default_proxy=0
root_ca=$a{cafile}
verify_server_certs=1
verify_server_cn=0
ipv6_migration_done=1

[net]
ipv6=0

[rtp]
audio_rtp_port=-1

[sound]
echocancellation=0

[video]
capture=0
display=0
automatically_initiate=0
automatically_accept=0

[proxy_0]
reg_proxy=<sip:$a{proxy};transport=$tr>
reg_route=<sip:$a{proxy};transport=$tr;lr>
reg_identity=sip:$a{user}\@$a{domain}
reg_expires=600
reg_sendregister=1

[auth_info_0]
username=$a{user}
passwd=$a{pass}
realm=$a{domain}
domain=$a{domain}
EOF2
    close $fh;

    return $self;
}

sub start {
    my ($self) = @_;

    my $d = $self->{dir};

    local $ENV{HOME} = $d;

    $self->{pid} = open2(my $out, my $in, 'linphonec', '-c', "$d/linphonerc",
        '-d', '6', '-l', "$d/linphone.log");

    $in->autoflush(1);
    $self->{in} = $in;
    $self->{ctrl} = $out;
    $self->{sel} = IO::Select->new($out);

    $self->command('soundcard use files');

    return $self->wait_line(qr/^Using wav files/, 20)
        ? undef : 'linphonec: no "soundcard use files"';
}

# registration is in the log only
sub register {
    my ($self, %a) = @_;

    my $deadline = time() + ($a{timeout} || 20);

    while (time() < $deadline) {
        my $log = $self->log();
        return undef if $log =~ /to \[LinphoneRegistrationOk\]/;
        return 'registration failed'
            if $log =~ /to \[LinphoneRegistrationFailed\]/;
        $self->pump(0.05);
    }

    return 'no registration';
}

my %cmd = (dial => 'call', accept => 'answer', hangup => 'terminate');

sub command {
    my ($self, $cmd, $params) = @_;

    my $line = $cmd{$cmd} || $cmd;
    $line .= " $params" if defined $params && $params ne '';

    local $SIG{PIPE} = 'IGNORE';
    print { $self->{in} } "$line\n";
}

sub pump {
    my ($self, $timeout) = @_;

    return unless $self->{sel}->can_read($timeout);

    my $n = sysread($self->{ctrl}, my $b, 65536);

    if (!$n) {
        $self->{sel}->remove($self->{ctrl});
        $self->{closed} = 1;
        return;
    }

    $self->{buf} .= $b;

    while ($self->{buf} =~ s/^(.*?)\r?\n//) {
        my $l = $1;
        $l =~ s/^(linphonec> )+//;
        push @{$self->{lines}}, $l;

        my $e;

        if ($l =~ /^Receiving new incoming call from (\S+), assigned id (\d+)/)
        {
            $e = { type => 'CALL_INCOMING', peeruri => $1, id => $2 };

        } elsif ($l =~ /^Call (\d+) with (\S+) connected/) {
            $e = { type => 'CALL_ESTABLISHED', id => $1 };

        } elsif ($l =~ /^Call (\d+) (?:with|to) (\S+) (ended \(.*\)|error)/) {
            $e = { type => 'CALL_CLOSED', id => $1, param => $3 };
        }

        push @{$self->{events}}, $e if $e;
    }
}

sub wait_line {
    my ($self, $re, $timeout) = @_;

    my $deadline = time() + $timeout;

    for (;;) {
        while (my $l = shift @{$self->{lines}}) {
            return $l if $l =~ $re;
        }

        my $left = $deadline - time();
        return undef if $left <= 0 || $self->{closed};

        $self->pump($left);
    }
}

sub hangup_all { $_[0]->command('terminate', 'all') }

# a BYE that came ended the call with no error
sub closed_by_peer { $_[1]{param} =~ /^ended \(No error\)/ }

# the Call-ID of the last call this phone saw
sub call_id {
    my ($self) = @_;
    my @inv = grep { /^INVITE /m } split /\n(?=#\n)/, $self->dump();
    my ($id) = $inv[-1] ? $inv[-1] =~ /^Call-ID\s*:\s*(\S+)/mi : ();
    return $id;
}

sub log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/linphone.log" or return '';
    local $/;
    return <$fh>;
}

# the messages of the log, each after a line "#" and where it went
sub dump {
    my ($self, $callid) = @_;

    my @m;
    my $cur;

    for my $l (split /\n/, $self->log()) {
        if ($l =~ /^\d{4}-\d\d-\d\d \d[\d:]+ /) {
            push @m, $cur if defined $cur;
            $cur = undef;
            $cur = "#\n$1 $2\n"
                if $l =~ /(message\ sent\ to
                           |received\ \[\d+\]\ new\ bytes\ from)\ (\S+)/x;
            next;
        }
        $cur .= "$l\n" if defined $cur;
    }

    push @m, $cur if defined $cur;

    @m = grep { /^Call-ID:\s*\Q$callid\E\r?$/mi } @m if defined $callid;

    return join '', @m;
}

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    $self->command('quit') unless $self->{closed};

    for (1 .. 200) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    kill 'TERM', $pid;

    for (1 .. 100) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    kill 'KILL', $pid;
    waitpid($pid, 0);
}

1;
