package NgxWsClient;

# The Perl side of t/js/ua.mjs: a JsSIP or SIP.js user agent in a Node
# process, driven by lines on its stdin, answering with event lines on
# its stdout (the protocol is described at the top of ua.mjs).  Started
# and stopped by pid; every wait is bounded.  Also what the WebSocket
# tests share: where the npm packages are, and Kamailio as the reference
# server (NGX_SIP_WS_SERVER=kamailio).

use strict;
use warnings;

use Exporter qw(import);
use IO::Handle;
use IO::Select;
use IPC::Open2 qw(open2);
use Time::HiRes qw(sleep time);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

use NgxSip qw(need program);

our @EXPORT_OK = qw(js_dir need_js kamailio_ws_start);

my $top = abs_path(dirname(__FILE__) . '/../..');

sub js_dir { "$top/t/js" }

# node and the npm packages of t/js ("make deps" installs them)
sub need_js {
    my (@modules) = @_;

    need(program('node'), 'node (nodejs)') or return 0;

    for my $m (@modules) {
        need(-f js_dir() . "/node_modules/$m/package.json",
            "npm package $m in t/js/node_modules (make js-deps)")
            or return 0;
    }

    return 1;
}

# name, lib (jssip|sipjs), url, user, pass, domain, answer, log (a file
# the process's stderr goes to); or argv (a script of t/js, arguments)
sub new {
    my ($class, %o) = @_;

    my $self = bless { buf => '', events => [], pending => [], %o },
        $class;

    # argv: another script of t/js and its arguments (browser.mjs)
    my @cmd = (program('node'), $o{argv} ? @{$o{argv}} : (
        'ua.mjs', '--lib', $o{lib},
        '--url', $o{url}, '--user', $o{user}, '--pass', $o{pass},
        '--domain', $o{domain} || 'example.com',
        $o{answer} ? ('--answer') : (), $o{debug} ? ('--debug') : ()));
    $cmd[1] = js_dir() . "/$cmd[1]";

    open my $err, '>>', $o{log} || '/dev/null' or die "$o{log}: $!";

    local $ENV{NODE_TLS_REJECT_UNAUTHORIZED} = '0';
    local $ENV{DEBUG} = $o{debug} ? 'JsSIP:*' : '';

    my ($out, $in);
    my $pid = do {
        open my $save, '>&', \*STDERR or die;
        open STDERR, '>&', $err or die;
        my $p = open2($out, $in, @cmd);
        open STDERR, '>&', $save or die;
        $p;
    };

    $in->autoflush(1);
    @$self{qw(pid out in)} = ($pid, $out, $in);

    return $self;
}

sub name { $_[0]->{name} || "$_[0]->{lib}:$_[0]->{user}" }

sub cmd {
    my ($self, $line) = @_;
    local $SIG{PIPE} = 'IGNORE';
    print { $self->{in} } "$line\n";
    return $self;
}

# the first event line matching $re within $timeout seconds (undef
# otherwise); lines before it are kept in events() and skipped.  With
# $scope (browser.mjs: qr/^alice /), only lines matching it are looked
# at and skipped, the others wait for an expect() of their own scope.
sub expect {
    my ($self, $re, $timeout, $scope) = @_;

    my $deadline = time() + ($timeout || 10);

    for (;;) {
        while ($self->{buf} =~ s/^([^\n]*)\n//) {
            push @{$self->{events}}, $1;
            push @{$self->{pending}}, $1;
        }

        my @keep;

        while (defined(my $line = shift @{$self->{pending}})) {
            if ($scope && $line !~ $scope) {
                push @keep, $line;
                next;
            }

            if ($line =~ $re) {
                unshift @{$self->{pending}}, @keep;
                return $line;
            }
        }

        $self->{pending} = \@keep;

        my $left = $deadline - time();
        return undef if $left <= 0;

        my $sel = IO::Select->new($self->{out});
        next unless $sel->can_read($left);

        my $n = sysread($self->{out}, my $chunk, 4096);
        return undef unless $n;

        $self->{buf} .= $chunk;
    }
}

sub events { join "\n", @{$_[0]->{events}} }

sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    $self->cmd('quit');
    close $self->{in};

    for (1 .. 30) {
        return if waitpid($pid, 1) == $pid;
        sleep 0.1;
    }

    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY {
    my ($self) = @_;
    local $?;
    $self->stop();
}

###############################################################################

# bench/kamailio-ws.cfg in the prefix of $t on ports udp, ws and wss
# (its tls.cfg with the certificate of $t's make_cert($cert)): the
# server the WebSocket tests run against with NGX_SIP_WS_SERVER=kamailio.
# Returns the pid.
sub kamailio_ws_start {
    my ($t, %o) = @_;

    my $p = $t->prefix;
    my $kamailio = program('kamailio');

    need($kamailio, 'kamailio') or return undef;
    need(-f "/usr/lib/x86_64-linux-gnu/kamailio/modules/websocket.so",
        'kamailio-websocket-modules') or return undef;

    $t->write_file('kamailio-tls.cfg', <<"EOF");
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $p/$o{cert}.key
certificate = $p/$o{cert}.crt

[client:default]
verify_certificate = no
require_certificate = no
EOF

    mkdir "$p/kam";

    my $pid = fork() // die;

    if ($pid == 0) {
        open STDOUT, '>', "$p/kamailio.log";
        open STDERR, '>&', \*STDOUT;
        exec($kamailio, '-DD', '-E', '-f', "$top/bench/kamailio-ws.cfg",
            '-Y', "$p/kam", '-P', "$p/kam/kamailio.pid", '-m', '64',
            '-M', '8',
            '-A', "UDP_PORT=$o{udp}", '-A', "WS_PORT=$o{ws}",
            '-A', "WSS_PORT=$o{wss}", '-A', "WORKERS=$o{workers}",
            '-A', "TLS_CFG=\"$p/kamailio-tls.cfg\"",
            '-A', "CTL_SOCK=\"unix:$p/kam/ctl\"");
        exit 127;
    }

    sleep 2;

    return $pid;
}

1;
