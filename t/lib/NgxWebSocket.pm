package NgxWebSocket;

# A small WebSocket client (RFC 6455) for SIP over WebSocket (RFC 7118)
# tests: the opening handshake with any header left out or changed, and
# frames built octet by octet (masked by us, or not, with any bits and
# lengths), so that hostile input can be sent as easily as good input.

use strict;
use warnings;

use Exporter qw(import);
use IO::Select;
use IO::Socket::IP;
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1);
use Time::HiRes qw(time);

our @EXPORT = qw(ws_frame ws_accept);

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

sub ws_accept {
    my ($key) = @_;
    return encode_base64(sha1($key . $GUID), '');
}

# a frame: opcode, payload; fin (1), mask (1), rsv (0-7), len (a length
# to claim instead of the payload's), len_bits (7, 16 or 64: forces the
# form of the length, minimal or not)
sub ws_frame {
    my (%f) = @_;

    my $payload = defined $f{payload} ? $f{payload} : '';
    my $fin = defined $f{fin} ? $f{fin} : 1;
    my $mask = defined $f{mask} ? $f{mask} : 1;
    my $len = defined $f{len} ? $f{len} : length $payload;
    my $bits = $f{len_bits} || ($len < 126 ? 7 : $len < 65536 ? 16 : 64);

    my $out = chr(($fin ? 0x80 : 0) | (($f{rsv} || 0) << 4)
        | ($f{opcode} & 0xf));
    my $m = $mask ? 0x80 : 0;

    if ($bits == 7) {
        $out .= chr($m | $len);
    } elsif ($bits == 16) {
        $out .= chr($m | 126) . pack('n', $len);
    } else {
        $out .= chr($m | 127) . pack('Q>', $len);
    }

    return $out . $payload unless $mask;

    my $key = pack('N', int(rand(2**32)));
    my @k = unpack('C4', $key);
    my @p = unpack('C*', $payload);
    $p[$_] ^= $k[$_ & 3] for 0 .. $#p;

    return $out . $key . pack('C*', @p);
}

# connects and sends the opening handshake: ssl, port, origin, protocol
# ('sip'; undef: none), version (13), key (a random one), request (the
# whole request instead); status and headers of the answer, or undef
sub new {
    my ($class, %o) = @_;

    my $sock;

    if ($o{ssl}) {
        require IO::Socket::SSL;
        $sock = IO::Socket::SSL->new(PeerAddr => $o{addr} || '127.0.0.1',
            PeerPort => $o{port}, SSL_verify_mode => 0, Timeout => 5)
            or die "tls connect: $IO::Socket::SSL::SSL_ERROR";
    } else {
        $sock = IO::Socket::IP->new(PeerAddr => $o{addr} || '127.0.0.1',
            PeerPort => $o{port}, Proto => 'tcp', Timeout => 5)
            or die "connect: $@";
    }

    $sock->autoflush(1);

    my $self = bless { sock => $sock, buf => '', closed => 0 }, $class;

    return $self if $o{no_handshake};

    my $key = $o{key}
        || encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $proto = exists $o{protocol} ? $o{protocol} : 'sip';

    my $req = $o{request} || "GET / HTTP/1.1\r\n"
        . "Host: localhost\r\n"
        . "Upgrade: websocket\r\n"
        . "Connection: Upgrade\r\n"
        . "Sec-WebSocket-Key: $key\r\n"
        . "Sec-WebSocket-Version: " . ($o{version} || 13) . "\r\n"
        . (defined $proto ? "Sec-WebSocket-Protocol: $proto\r\n" : '')
        . ($o{origin} ? "Origin: $o{origin}\r\n" : '')
        . "\r\n";

    $self->raw($req);

    my $deadline = time() + ($o{timeout} || 5);

    while ($self->{buf} !~ /\r\n\r\n/) {
        last unless $self->fill($deadline);
    }

    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    return $self unless defined $rest;

    $self->{buf} = $rest;

    my @lines = split /\r\n/, $head;
    my $first = shift @lines;
    ($self->{status}) = $first =~ m{^HTTP/1\.1 (\d{3})};

    for (@lines) {
        my ($n, $v) = /^([^:]+):\s*(.*)$/ or next;
        $self->{headers}{lc $n} = $v;
    }

    if (($self->{status} || 0) != 101) {

        # the reason in the body, up to its Content-Length
        my $cl = $self->{headers}{'content-length'} || 0;
        while (length($self->{buf}) < $cl) {
            last unless $self->fill($deadline);
        }
        $self->{body} = $self->{buf};
    }

    $self->{accept_ok} = ($self->{headers}{'sec-websocket-accept'} || '')
        eq ws_accept($key);

    return $self;
}

sub status { $_[0]->{status} }
sub header { $_[0]->{headers}{lc $_[1]} }
sub sock { $_[0]->{sock} }

sub raw {
    my ($self, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $n = syswrite($self->{sock}, $data);
    return $n;
}

# reads what there is, waiting until the deadline: false on EOF or time
sub fill {
    my ($self, $deadline) = @_;

    my $s = $self->{sock};

    unless ($s->isa('IO::Socket::SSL') && $s->pending) {
        my $left = $deadline - time();
        return 0 if $left <= 0;
        return 0 unless IO::Select->new($s)->can_read($left);
    }

    my $n = sysread($s, my $chunk, 65536);

    if (!$n) {
        $self->{closed} = 1;
        return 0;
    }

    $self->{buf} .= $chunk;
    return 1;
}

sub send_frame {
    my ($self, %f) = @_;
    return $self->raw(ws_frame(%f));
}

sub send_sip {
    my ($self, $msg) = @_;
    return $self->send_frame(opcode => 1, payload => $msg);
}

# the next frame of the server: { opcode, fin, payload, masked, code }
# (code: of a close), or undef at EOF or timeout
sub recv_frame {
    my ($self, $timeout) = @_;

    my $deadline = time() + (defined $timeout ? $timeout : 3);

    for (;;) {
        my $b = $self->{buf};

        if (length $b >= 2) {
            my ($b0, $b1) = unpack('C2', $b);
            my $len = $b1 & 0x7f;
            my $hl = 2;
            my $known = 1;

            if ($len == 126) {
                $known = length $b >= 4;
                $len = unpack('n', substr($b, 2, 2)) if $known;
                $hl = 4;
            } elsif ($len == 127) {
                $known = length $b >= 10;
                $len = unpack('Q>', substr($b, 2, 8)) if $known;
                $hl = 10;
            }

            $hl += 4 if $b1 & 0x80;

            if ($known) {
                if (length $b >= $hl + $len) {
                    my %f = (opcode => $b0 & 0xf, fin => $b0 >> 7,
                        rsv => ($b0 >> 4) & 7, masked => $b1 >> 7,
                        payload => substr($b, $hl, $len));
                    $self->{buf} = substr($b, $hl + $len);
                    $f{code} = length $f{payload} >= 2
                        ? unpack('n', $f{payload}) : 1005
                        if $f{opcode} == 8;
                    return \%f;
                }
            }
        }

        return undef unless $self->fill($deadline);
    }
}

# the next SIP message (a text or binary frame), pings answered, pongs
# skipped: its text, or undef
sub recv_sip {
    my ($self, $timeout) = @_;

    my $deadline = time() + (defined $timeout ? $timeout : 3);

    while ((my $left = $deadline - time()) > 0) {
        my $f = $self->recv_frame($left) or return undef;

        if ($f->{opcode} == 9) {
            $self->send_frame(opcode => 10, payload => $f->{payload});
            next;
        }

        next if $f->{opcode} == 10;

        if ($f->{opcode} == 8) {
            $self->{close} = $f;
            return undef;
        }

        return $f->{payload};
    }

    return undef;
}

# the close the server sends (skipping anything else), then whether it
# closed the connection: (code, closed)
sub recv_close {
    my ($self, $timeout) = @_;

    my $deadline = time() + (defined $timeout ? $timeout : 3);
    my $code;

    while ((my $left = $deadline - time()) > 0) {
        my $f = $self->recv_frame($left) or last;

        if ($f->{opcode} == 8) {
            $code = $f->{code};
            last;
        }
    }

    # then EOF
    while (!$self->{closed}) {
        last unless $self->fill($deadline);
    }

    return ($code, $self->{closed});
}

sub closed { $_[0]->{closed} }

1;
