#!/usr/bin/perl

# The location store through its state file, 2 workers: a file in the
# format nginx writes (every field, %-encoded ones, an expired line) is
# restored with its q, CSeq, +sip.instance, reg-id and Path; the 200,
# the 302 and the proxy's lookup see it; CSeq order holds against a
# restored binding; a binding past its time is swept and never written
# back; the file written at stop has the same fields, line for line;
# "*" removes restored bindings, and the next start has what is left.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use NgxSip;

my $t = NgxSip->new();

mkdir $t->prefix . '/state';
chmod 0777, $t->prefix . '/state';

my $file = $t->prefix . '/state/loc.state';

$t->write_conf(<<'EOF', workers => 2);
stream {
    sip_location_zone loc:1m state=%%PREFIX%%/state/loc.state;

    server {
        listen 127.0.0.1:%%PORT_0%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_registrar_expires 1 3600 7200;
    }

    server {
        listen 127.0.0.1:%%PORT_1%% udp;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_redirect on;
    }
}
EOF

my $port = $t->port(0);
my $rport = $t->port(1);
my $uas_port = $t->port(2);
my $exp = int(time()) + 600;

# the fields: aor expires q cseq transport contact call-id source
# instance reg-id path

my @lines = (
    "sip:alice\@example.com\t$exp\t500\t7\t0\tsip:alice\@127.0.0.1:5061"
        . "\tc%25d\tudp:127.0.0.1:5999\t\t\t",
    "sip:alice\@example.com\t$exp\t900\t7\t0\tsip:alice\@127.0.0.1:5062"
        . "\tc%25d\tudp:127.0.0.1:5999\t<urn:uuid:1234>\t1"
        . "\t<sip:edge.example.com;lr>",
    "sip:bob\@example.com\t" . (int(time()) - 10) . "\t1000\t1\t0"
        . "\tsip:bob\@127.0.0.1:5070\told\tudp:127.0.0.1:5999\t\t\t",
    "sip:bob\@example.com\t$exp\t1000\t3\t0\tsip:bob\@127.0.0.1:$uas_port"
        . "\tb%09x\tudp:127.0.0.1:5999\t\t\t",
);

$t->write_file('state/loc.state', join('', map { "$_\n" } @lines));
$t->run();

like($t->read_log(), qr/loc\.state": 4 bindings loaded, 0 lines bad/,
    'state file read, the expired line skipped without complaint');

my $u = udp_socket();
my $seq = 100;

sub ask {
    my (%h) = @_;

    my $user = $h{user} || 'alice';
    my @hdr;
    push @hdr, map { ['Contact', $_] } @{$h{contact} || []};
    push @hdr, ['Expires', $h{expires}] if defined $h{expires};

    udp_send($u, sip_request(method => $h{method} || 'REGISTER',
        uri => $h{uri} || 'sip:example.com', to => "sip:$user\@example.com",
        via_port => $u->sockport, call_id => $h{call_id} || "q-" . ++$seq,
        cseq => $h{cseq} || 1, headers => \@hdr), '127.0.0.1',
        $h{port} || $port);
    my ($got) = udp_recv($u, 3);
    return parse_sip($got && $got->[0]);
}

sub contacts {
    my ($r) = @_;
    return join ' ', sort @{($r && $r->{h}{contact}) || []};
}

my $r = ask();
is($r && $r->{code}, 200, 'query a restored AOR');
like(contacts($r), qr/^<sip:alice\@127\.0\.0\.1:5061>;expires=(600|599|598);q=0\.500 <sip:alice\@127\.0\.0\.1:5062>;expires=(600|599|598);q=0\.900;\+sip\.instance=<urn:uuid:1234>;reg-id=1$/,
    'restored with expires, q, +sip.instance and reg-id');

$r = ask(method => 'INVITE', uri => 'sip:alice@example.com', port => $rport);
is($r && $r->{code}, 302, '302 for a restored AOR');
is(scalar @{$r->{h}{contact} || []}, 2, 'with both contacts');

# the proxy's lookup reaches a restored contact; not the expired one

{
    my $uas = udp_socket(port => $uas_port);
    my $invite = sip_request(method => 'INVITE', uri => 'sip:bob@example.com',
        via_port => $u->sockport);

    udp_send($u, $invite, '127.0.0.1', $port);

    my @got = udp_recv($uas, 3);
    my $text = @got ? $got[0][0] : '';
    like($text, qr/^INVITE sip:bob\@127\.0\.0\.1:$uas_port SIP\/2\.0/,
        'INVITE forwarded to the restored contact');

    # our answer ends the transaction; what nginx sends back is drained
    udp_send($uas, sip_response($text, 486, 'Busy Here'), '127.0.0.1',
        $port) if $text;
    my @back = udp_recv($u, 1, 1);
    my ($busy) = grep { $_->[0] =~ /^SIP\/2\.0 486/ } @back;
    ok($busy, '486 relayed back');
    udp_send($u, NgxSip::sip_ack($invite, $busy->[0]), '127.0.0.1', $port) if $busy;
    udp_recv($u, 0.5, 1);
    close $uas;
}

# CSeq order against the restored CSeq 7 of Call-ID "c%d"

$r = ask(contact => ['<sip:alice@127.0.0.1:5061>'], expires => 600,
    call_id => 'c%d', cseq => 5);
is($r && $r->{code}, 500, 'older CSeq than the restored one: 500');

$r = ask(contact => ['<sip:alice@127.0.0.1:5061>'], expires => 600,
    call_id => 'c%d', cseq => 8);
is($r && $r->{code}, 200, 'newer CSeq: refreshed');
like(contacts($r), qr/5061>;expires=(600|599);?/, 'refresh seen');

# expiry: a binding past its time is swept, never written back

$r = ask(user => 'carol', contact => ['<sip:carol@127.0.0.1:5080>'],
    expires => 1);
is($r && $r->{code}, 200, 'short registration');
sleep 2.2;
$r = ask(user => 'carol', method => 'INVITE', uri => 'sip:carol@example.com',
    port => $rport);
is($r && $r->{code}, 404, 'expired: 302 no more');

$t->stop();

my %written;

{
    open my $fh, '<', $file or die "$file: $!";
    %written = map { chomp; (split /\t/)[5] => $_ } <$fh>;
    close $fh;
}

is(join(' ', sort keys %written),
    "sip:alice\@127.0.0.1:5061 sip:alice\@127.0.0.1:5062 "
    . "sip:bob\@127.0.0.1:$uas_port",
    'state written at stop: the live bindings, no expired one');
is($written{'sip:alice@127.0.0.1:5062'}, $lines[1],
    'an untouched binding is written back as it was read');
is($written{"sip:bob\@127.0.0.1:$uas_port"}, $lines[3],
    'a %-encoded field too');
like($written{'sip:alice@127.0.0.1:5061'},
    qr/^sip:alice\@example\.com\t\d+\t1000\t8\t0\tsip:alice\@127\.0\.0\.1:5061\tc%25d\tudp:127\.0\.0\.1:\d+\t\t\t$/,
    'the refreshed one with its new CSeq, q and source');

# restart: what was written is what is restored; "*" against it

$t->run();

like($t->read_log(), qr/loc\.state": 3 bindings loaded, 0 lines bad/,
    'restart: 3 bindings loaded');

$r = ask(contact => ['*'], expires => 0, call_id => 'c%d', cseq => 7);
is($r && $r->{code}, 500, '"*" with the CSeq of a restored binding: 500');

$r = ask();
is(scalar @{($r && $r->{h}{contact}) || []}, 2, 'and nothing removed');

$r = ask(contact => ['*'], expires => 0, call_id => 'c%d', cseq => 9);
is($r && $r->{code}, 200, '"*" removes restored bindings');
is(contacts($r), '', 'the 200 lists none');

$r = ask(method => 'INVITE', uri => 'sip:alice@example.com', port => $rport);
is($r && $r->{code}, 404, 'no 302 for alice after "*"');
$r = ask(method => 'INVITE', uri => 'sip:bob@example.com', port => $rport);
is($r && $r->{code}, 302, 'bob kept');

$t->stop();

# an AOR "*" emptied is freed with its last binding, as expiry frees it
like($t->read_log(), qr/"loc": 1 bindings, 1 AORs/,
    'no empty AOR left behind by "*"');

{
    open my $fh, '<', $file or die "$file: $!";
    my @left = <$fh>;
    close $fh;
    is(scalar @left, 1, 'one binding left in the state file');
}

is($t->crashes(), '', 'no worker crashed');

done_testing();
