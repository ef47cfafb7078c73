package NgxKamailio;

# Debian's Kamailio as a peer of the tests: started in the foreground
# from the prefix's kamailio.cfg, stopped by its pid (and, if it does not
# leave, its children by their parent's pid, never by name).

use strict;
use warnings;

use Exporter qw(import);
use Time::HiRes qw(sleep);

our @EXPORT = qw(kamailio_start kamailio_stop);

sub kamailio_start {
    my ($t, $kamailio) = @_;

    my $p = $t->prefix;
    mkdir "$p/kam";

    my $pid = fork() // die;

    if ($pid == 0) {
        open STDOUT, '>', "$p/kamailio.log";
        open STDERR, '>&', \*STDOUT;
        exec($kamailio, '-DD', '-E', '-f', "$p/kamailio.cfg", '-Y', "$p/kam",
            '-P', "$p/kam/kamailio.pid", '-m', '64', '-M', '8');
        exit 127;
    }

    sleep 1.5;

    return $pid;
}

sub kamailio_stop {
    my ($pid) = @_;

    kill 'TERM', $pid;

    for (1 .. 50) {
        return if waitpid($pid, 1) == $pid;
        sleep 0.1;
    }

    my @kids = split ' ', `pgrep -P $pid`;
    kill 'KILL', $pid, @kids;
    waitpid($pid, 0);
}

1;
