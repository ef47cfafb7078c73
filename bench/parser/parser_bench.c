
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Parser micro-benchmark: messages per second of the ngx_sip core parser
 * against libosip2's, on the same realistic messages, in the same run.
 *
 * Per message, each side does what it does for a proxy:
 *
 *   ngx_sip:  ngx_sip_parse_message() (datagram) + ngx_sip_msg_validate():
 *             start line, every header line split and identified,
 *             Content-Length, then R-URI, every Via, From, To, CSeq,
 *             Call-ID, Max-Forwards, Expires, every Route entry and the
 *             Contacts of a REGISTER (what the proxy and the registrar
 *             use; the rest is forwarded as it came, RFC 3261 16.3);
 *             nothing is allocated, the results are slices of the input;
 *
 *   libosip2: osip_message_init() + osip_message_parse() +
 *             osip_message_free(): the message is copied, every header is
 *             parsed into allocated structures, the body is copied (SDP
 *             is not parsed by either side).
 *
 * Both are verified to accept every message before anything is timed.
 * Each (message, parser) pair is timed over a fixed number of iterations
 * with CLOCK_MONOTONIC and CLOCK_PROCESS_CPUTIME_ID, in "rounds" rounds
 * that alternate the two parsers; the median round is reported.
 *
 *   parser_bench [-n ngx_iters] [-o osip_iters] [-r rounds] [-w warmup]
 *
 * -o 0 skips libosip2 (for callgrind: --toggle-collect=bench_ngx).
 */


#include "ngx_sip.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <osipparser2/osip_parser.h>


#define BENCH_MAX_ROUNDS    15
#define BENCH_BUDGET        45.0    /* seconds of timed loops at most */


/* SDP offer, 240 octets */

#define SDP_OFFER                                                            \
    "v=0\r\n"                                                                \
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"                   \
    "s=-\r\n"                                                                \
    "c=IN IP4 192.0.2.101\r\n"                                               \
    "t=0 0\r\n"                                                              \
    "m=audio 49170 RTP/AVP 0 8 101\r\n"                                      \
    "a=rtpmap:0 PCMU/8000\r\n"                                               \
    "a=rtpmap:8 PCMA/8000\r\n"                                               \
    "a=rtpmap:101 telephone-event/8000\r\n"                                  \
    "a=fmtp:101 0-16\r\n"                                                    \
    "a=ptime:20\r\n"                                                         \
    "a=sendrecv\r\n"

/* SDP answer, 209 octets */

#define SDP_ANSWER                                                           \
    "v=0\r\n"                                                                \
    "o=bob 2808844564 2808844564 IN IP4 192.0.2.4\r\n"                       \
    "s=-\r\n"                                                                \
    "c=IN IP4 192.0.2.4\r\n"                                                 \
    "t=0 0\r\n"                                                              \
    "m=audio 3456 RTP/AVP 0 101\r\n"                                         \
    "a=rtpmap:0 PCMU/8000\r\n"                                               \
    "a=rtpmap:101 telephone-event/8000\r\n"                                  \
    "a=fmtp:101 0-16\r\n"                                                    \
    "a=ptime:20\r\n"                                                         \
    "a=sendrecv\r\n"


/* an INVITE as a proxy receives it from the caller's outbound proxy */

static const char  msg_invite[] =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy.atlanta.com:5060"
        ";branch=z9hG4bK2d4790.1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;received=192.0.2.101;rport=5060"
        ";branch=z9hG4bK74bf9a8c3e\r\n"
    "Record-Route: <sip:proxy.atlanta.com;lr>\r\n"
    "Max-Forwards: 69\r\n"
    "From: \"Alice\" <sip:alice@atlanta.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.com\r\n"
    "CSeq: 31862 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, REFER, "
        "NOTIFY, INFO, MESSAGE\r\n"
    "Supported: replaces, timer, 100rel\r\n"
    "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 240\r\n"
    "\r\n"
    SDP_OFFER;


/* the callee's 200 OK to it, on its way back through the proxy */

static const char  msg_200[] =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP proxy.atlanta.com:5060"
        ";branch=z9hG4bK2d4790.1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;received=192.0.2.101;rport=5060"
        ";branch=z9hG4bK74bf9a8c3e\r\n"
    "Record-Route: <sip:proxy.atlanta.com;lr>\r\n"
    "From: \"Alice\" <sip:alice@atlanta.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.com>;tag=8321234356\r\n"
    "Call-ID: 3848276298220188511@atlanta.com\r\n"
    "CSeq: 31862 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.4:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, NOTIFY\r\n"
    "Supported: replaces, timer\r\n"
    "Server: Asterisk PBX 20.5.0\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 209\r\n"
    "\r\n"
    SDP_ANSWER;


/* a registration with an RFC 5626 Contact, before any challenge */

static const char  msg_register[] =
    "REGISTER sip:biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.201:5060;rport;branch=z9hG4bKnashds7\r\n"
    "Max-Forwards: 70\r\n"
    "From: Bob <sip:bob@biloxi.com>;tag=a73kszlfl\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.201\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:bob@192.0.2.201:5060;transport=udp>;expires=3600"
        ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\""
        ";reg-id=1\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, MESSAGE\r\n"
    "Supported: path, outbound, gruu\r\n"
    "User-Agent: Zoiper rv2.10.19.7\r\n"
    "Expires: 3600\r\n"
    "Content-Length: 0\r\n"
    "\r\n";


/* the callee hangs up: a BYE routed back through two proxies */

static const char  msg_bye[] =
    "BYE sip:alice@192.0.2.101:5060;transport=udp SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.4:5060;rport;branch=z9hG4bKnashds10\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:proxy.biloxi.com;lr>\r\n"
    "Route: <sip:proxy.atlanta.com;lr>\r\n"
    "From: Bob <sip:bob@biloxi.com>;tag=8321234356\r\n"
    "To: \"Alice\" <sip:alice@atlanta.com>;tag=9fxced76sl\r\n"
    "Call-ID: 3848276298220188511@atlanta.com\r\n"
    "CSeq: 231 BYE\r\n"
    "User-Agent: Asterisk PBX 20.5.0\r\n"
    "Content-Length: 0\r\n"
    "\r\n";


static const char  msg_180[] =
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP proxy.atlanta.com:5060"
        ";branch=z9hG4bK2d4790.1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;received=192.0.2.101;rport=5060"
        ";branch=z9hG4bK74bf9a8c3e\r\n"
    "Record-Route: <sip:proxy.atlanta.com;lr>\r\n"
    "From: \"Alice\" <sip:alice@atlanta.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.com>;tag=8321234356\r\n"
    "Call-ID: 3848276298220188511@atlanta.com\r\n"
    "CSeq: 31862 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.4:5060;transport=udp>\r\n"
    "Content-Length: 0\r\n"
    "\r\n";


typedef struct {
    const char                 *name;
    const char                 *text;
    size_t                      len;
    ngx_uint_t                  method_id;    /* requests */
    ngx_uint_t                  status;       /* responses */
    size_t                      body_len;

    u_char                     *buf;          /* a copy of its exact size */
    ngx_uint_t                  nheaders;

    double                      ngx_wall[BENCH_MAX_ROUNDS];
    double                      ngx_cpu[BENCH_MAX_ROUNDS];
    double                      osip_wall[BENCH_MAX_ROUNDS];
    double                      osip_cpu[BENCH_MAX_ROUNDS];
} bench_msg_t;


#define BENCH_MSG(name, text, method, status, body)                          \
    { name, text, sizeof(text) - 1, method, status, body, NULL, 0,           \
      { 0 }, { 0 }, { 0 }, { 0 } }

static bench_msg_t  msgs[] = {
    BENCH_MSG("INVITE+SDP", msg_invite, NGX_SIP_INVITE, 0, 240),
    BENCH_MSG("200 OK+SDP", msg_200, NGX_SIP_UNKNOWN, 200, 209),
    BENCH_MSG("REGISTER", msg_register, NGX_SIP_REGISTER, 0, 0),
    BENCH_MSG("BYE+Route", msg_bye, NGX_SIP_BYE, 0, 0),
    BENCH_MSG("180 Ringing", msg_180, NGX_SIP_UNKNOWN, 180, 0)
};

#define BENCH_NMSGS  (sizeof(msgs) / sizeof(msgs[0]))


static ngx_sip_header_t     bench_headers[NGX_SIP_MAX_HEADERS];
static volatile ngx_uint_t  bench_sink;


static void
fail(bench_msg_t *b, const char *who, const char *what)
{
    fprintf(stderr, "FAIL: %s: %s: %s\n", b->name, who, what);
    exit(1);
}


static double
clock_now(clockid_t id)
{
    struct timespec  ts;

    if (clock_gettime(id, &ts) != 0) {
        perror("clock_gettime");
        exit(1);
    }

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* our side of the timed loop: what the proxy does with each datagram */

__attribute__((noinline)) static ngx_int_t
bench_ngx(bench_msg_t *b, ngx_uint_t n)
{
    u_char           *start, *last;
    ngx_uint_t        i, sum;
    ngx_sip_msg_t     m;
    ngx_sip_error_t   err;

    start = b->buf;
    last = b->buf + b->len;
    sum = 0;

    m.headers = bench_headers;
    m.max_headers = NGX_SIP_MAX_HEADERS;

    for (i = 0; i < n; i++) {

        if (ngx_sip_parse_message(&m, start, last, 0, &err) != NGX_SIP_OK
            || ngx_sip_msg_validate(&m, &err) != NGX_OK)
        {
            return NGX_ERROR;
        }

        sum += m.nheaders + m.cseq.number;
    }

    bench_sink += sum;

    return NGX_OK;
}


/*
 * TCP/TLS framing: what a stream reader does before the parse, here with
 * the whole message in one read (libosip2 has no framer to compare with)
 */

__attribute__((noinline)) static ngx_int_t
bench_frame(bench_msg_t *b, ngx_uint_t n)
{
    ngx_uint_t        i, sum;
    ngx_sip_error_t   err;
    ngx_sip_frame_t   f;

    sum = 0;

    for (i = 0; i < n; i++) {
        ngx_sip_frame_init(&f);

        if (ngx_sip_frame(&f, b->buf, b->buf + b->len, 65536, &err)
            != NGX_SIP_OK
            || f.message_len != b->len)
        {
            return NGX_ERROR;
        }

        sum += f.header_len;
    }

    bench_sink += sum;

    return NGX_OK;
}


/* libosip2's side: what it does with each message */

__attribute__((noinline)) static ngx_int_t
bench_osip(bench_msg_t *b, ngx_uint_t n)
{
    ngx_uint_t       i, sum;
    osip_message_t  *sip;

    sum = 0;

    for (i = 0; i < n; i++) {

        if (osip_message_init(&sip) != OSIP_SUCCESS) {
            return NGX_ERROR;
        }

        if (osip_message_parse(sip, (const char *) b->buf, b->len)
            != OSIP_SUCCESS)
        {
            osip_message_free(sip);
            return NGX_ERROR;
        }

        sum += osip_list_size(&sip->vias);

        osip_message_free(sip);
    }

    bench_sink += sum;

    return NGX_OK;
}


/* both parsers must accept the message and agree on what it is */

static void
verify(bench_msg_t *b)
{
    int               nvias;
    char             *call_id;
    ngx_int_t         rc;
    ngx_uint_t        i, n;
    osip_body_t      *body;
    ngx_sip_msg_t     m;
    ngx_sip_error_t   err;
    osip_message_t   *sip;

    m.headers = bench_headers;
    m.max_headers = NGX_SIP_MAX_HEADERS;

    rc = ngx_sip_parse_message(&m, b->buf, b->buf + b->len, 0, &err);

    if (rc != NGX_SIP_OK) {
        fprintf(stderr, "ngx_sip_parse_message: %lu %.*s\n",
                (unsigned long) err.status, (int) err.reason.len,
                err.reason.data ? (char *) err.reason.data : "");
        fail(b, "ngx_sip", "rejected by ngx_sip_parse_message()");
    }

    if (ngx_sip_msg_validate(&m, &err) != NGX_OK) {
        fprintf(stderr, "ngx_sip_msg_validate: %lu %.*s\n",
                (unsigned long) err.status, (int) err.reason.len,
                err.reason.data ? (char *) err.reason.data : "");
        fail(b, "ngx_sip", "rejected by ngx_sip_msg_validate()");
    }

    if (m.end != b->buf + b->len || m.body.len != b->body_len
        || !m.has_content_length || m.content_length != b->body_len)
    {
        fail(b, "ngx_sip", "Content-Length and body disagree");
    }

    if (b->status == 0) {
        if (!m.request || m.method_id != b->method_id) {
            fail(b, "ngx_sip", "not the expected request");
        }

    } else if (m.request || m.status != b->status) {
        fail(b, "ngx_sip", "not the expected response");
    }

    if (m.from.tag.len == 0 || m.call_id.len == 0 || m.cseq.number == 0
        || m.via.branch.len == 0)
    {
        fail(b, "ngx_sip", "From tag, Call-ID, CSeq or Via branch missing");
    }

    b->nheaders = m.nheaders;

    if (osip_message_init(&sip) != OSIP_SUCCESS) {
        fail(b, "libosip2", "osip_message_init() failed");
    }

    if (osip_message_parse(sip, (const char *) b->buf, b->len)
        != OSIP_SUCCESS)
    {
        fail(b, "libosip2", "rejected by osip_message_parse()");
    }

    if (b->status == 0) {
        if (!MSG_IS_REQUEST(sip) || sip->sip_method == NULL
            || strlen(sip->sip_method) != m.method.len
            || memcmp(sip->sip_method, m.method.data, m.method.len) != 0)
        {
            fail(b, "libosip2", "not the expected request");
        }

    } else if (!MSG_IS_RESPONSE(sip)
               || (ngx_uint_t) sip->status_code != b->status)
    {
        fail(b, "libosip2", "not the expected response");
    }

    /* the same number of Via entries on both sides */

    n = 0;

    for (i = 0; i < m.nheaders; i++) {
        if (m.headers[i].id == NGX_SIP_HDR_VIA) {
            n++;
        }
    }

    nvias = osip_list_size(&sip->vias);

    if (nvias < 0 || (ngx_uint_t) nvias != n) {
        fail(b, "libosip2", "Via count differs from ngx_sip's");
    }

    /* the same Call-ID */

    if (sip->call_id == NULL
        || osip_call_id_to_str(sip->call_id, &call_id) != OSIP_SUCCESS)
    {
        fail(b, "libosip2", "no Call-ID");
    }

    if (strlen(call_id) != m.call_id.len
        || memcmp(call_id, m.call_id.data, m.call_id.len) != 0)
    {
        fail(b, "libosip2", "Call-ID differs from ngx_sip's");
    }

    osip_free(call_id);

    /* the same body */

    if (b->body_len) {
        body = osip_list_get(&sip->bodies, 0);

        if (osip_list_size(&sip->bodies) != 1 || body == NULL
            || body->length != b->body_len
            || memcmp(body->body, m.body.data, b->body_len) != 0)
        {
            fail(b, "libosip2", "body differs from ngx_sip's");
        }

    } else if (osip_list_size(&sip->bodies) != 0) {
        fail(b, "libosip2", "a body in a message without one");
    }

    if (sip->from == NULL || sip->to == NULL || sip->cseq == NULL) {
        fail(b, "libosip2", "From, To or CSeq missing");
    }

    osip_message_free(sip);
}


static void
run_ngx(bench_msg_t *b, ngx_uint_t n, ngx_uint_t round)
{
    double  w, c;

    w = clock_now(CLOCK_MONOTONIC);
    c = clock_now(CLOCK_PROCESS_CPUTIME_ID);

    if (bench_ngx(b, n) != NGX_OK) {
        fail(b, "ngx_sip", "rejected in the timed loop");
    }

    b->ngx_cpu[round] = clock_now(CLOCK_PROCESS_CPUTIME_ID) - c;
    b->ngx_wall[round] = clock_now(CLOCK_MONOTONIC) - w;
}


static void
run_osip(bench_msg_t *b, ngx_uint_t n, ngx_uint_t round)
{
    double  w, c;

    w = clock_now(CLOCK_MONOTONIC);
    c = clock_now(CLOCK_PROCESS_CPUTIME_ID);

    if (bench_osip(b, n) != NGX_OK) {
        fail(b, "libosip2", "rejected in the timed loop");
    }

    b->osip_cpu[round] = clock_now(CLOCK_PROCESS_CPUTIME_ID) - c;
    b->osip_wall[round] = clock_now(CLOCK_MONOTONIC) - w;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x, y;

    x = *(const double *) a;
    y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
median(double *v, ngx_uint_t n)
{
    double  s[BENCH_MAX_ROUNDS];

    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);

    return (n & 1) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}


static double
rate(ngx_uint_t n, double t)
{
    return t > 0 ? (double) n / t : 0;
}


static void
print_row(const char *name, size_t bytes, ngx_uint_t n_ngx,
    ngx_uint_t n_osip, double nw, double nc, double ow, double oc)
{
    printf("%-12s %5lu  %10.0f %10.0f %6.0f", name, (unsigned long) bytes,
           rate(n_ngx, nw), rate(n_ngx, nc), nw * 1e9 / n_ngx);

    if (n_osip == 0) {
        printf("\n");
        return;
    }

    printf("  %9.0f %9.0f %6.0f  %6.1fx %6.1fx\n",
           rate(n_osip, ow), rate(n_osip, oc), ow * 1e9 / n_osip,
           rate(n_ngx, nw) / rate(n_osip, ow),
           rate(n_ngx, nc) / rate(n_osip, oc));
}


static ngx_uint_t
arg_uint(const char *s)
{
    char           *end;
    unsigned long   v;

    v = strtoul(s, &end, 10);

    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "bad number: \"%s\"\n", s);
        exit(2);
    }

    return v;
}


int
main(int argc, char **argv)
{
    int           opt;
    double        nw, nc, ow, oc, tnw, tnc, tow, toc, est, t, scale;
    size_t        bytes;
    ngx_uint_t    i, r, n_ngx, n_osip, rounds, warmup, tn_ngx, tn_osip;
    bench_msg_t  *b;

    n_ngx = 200000;
    n_osip = 200000;
    rounds = 3;
    warmup = 2000;

    while ((opt = getopt(argc, argv, "n:o:r:w:")) != -1) {
        switch (opt) {
        case 'n':
            n_ngx = arg_uint(optarg);
            break;
        case 'o':
            n_osip = arg_uint(optarg);
            break;
        case 'r':
            rounds = arg_uint(optarg);
            break;
        case 'w':
            warmup = arg_uint(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-n ngx_iters] [-o osip_iters] "
                    "[-r rounds] [-w warmup]\n", argv[0]);
            return 2;
        }
    }

    if (n_ngx == 0 || rounds == 0 || rounds > BENCH_MAX_ROUNDS) {
        fprintf(stderr, "need -n > 0 and 1 <= -r <= %d\n",
                BENCH_MAX_ROUNDS);
        return 2;
    }

    if (parser_init() != OSIP_SUCCESS) {
        fprintf(stderr, "parser_init() failed\n");
        return 1;
    }

    /* private copies of exact size, and both parsers must accept them */

    for (i = 0; i < BENCH_NMSGS; i++) {
        b = &msgs[i];

        b->buf = malloc(b->len);

        if (b->buf == NULL) {
            perror("malloc");
            return 1;
        }

        memcpy(b->buf, b->text, b->len);

        verify(b);

        printf("verified %-12s %4lu octets, %2lu header lines, "
               "body %3lu: ngx_sip ok, libosip2 ok\n", b->name,
               (unsigned long) b->len, (unsigned long) b->nheaders,
               (unsigned long) b->body_len);
    }

    /* warm-up, and an estimate of the run time from it */

    est = 0;

    for (i = 0; i < BENCH_NMSGS; i++) {
        b = &msgs[i];

        run_ngx(b, warmup, 0);
        est += b->ngx_wall[0] / warmup * n_ngx * rounds;

        if (n_osip) {
            run_osip(b, warmup, 0);
            est += b->osip_wall[0] / warmup * n_osip * rounds;
        }
    }

    if (est > BENCH_BUDGET) {
        scale = BENCH_BUDGET / est;
        n_ngx = n_ngx * scale > 1000 ? (ngx_uint_t) (n_ngx * scale) : 1000;
        n_osip = n_osip * scale > 1000 ? (ngx_uint_t) (n_osip * scale)
                                       : (n_osip ? 1000 : 0);

        printf("NOTE: estimated %.1f s over the %.0f s budget: iterations "
               "scaled down\n", est, BENCH_BUDGET);
    }

    printf("\niterations per message per round: ngx_sip %lu, libosip2 %lu; "
           "%lu rounds, parsers alternating; warm-up %lu each\n",
           (unsigned long) n_ngx, (unsigned long) n_osip,
           (unsigned long) rounds, (unsigned long) warmup);

    t = clock_now(CLOCK_MONOTONIC);

    for (r = 0; r < rounds; r++) {
        for (i = 0; i < BENCH_NMSGS; i++) {
            b = &msgs[i];

            run_ngx(b, n_ngx, r);

            if (n_osip) {
                run_osip(b, n_osip, r);
            }
        }
    }

    t = clock_now(CLOCK_MONOTONIC) - t;

    printf("timed loops: %.2f s wall; median of the rounds below\n\n", t);

    printf("%-12s %5s  %-28s", "", "", "ngx_sip (parse+validate)");

    if (n_osip) {
        printf("  %-26s  %s", "libosip2 (init+parse+free)",
               "ngx_sip/libosip2");
    }

    printf("\n%-12s %5s  %10s %10s %6s", "message", "bytes", "msgs/s",
           "msgs/s", "ns/msg");

    if (n_osip) {
        printf("  %9s %9s %6s  %7s %7s", "msgs/s", "msgs/s", "ns/msg",
               "ratio", "ratio");
    }

    printf("\n%-12s %5s  %10s %10s %6s", "", "", "wall", "cpu", "wall");

    if (n_osip) {
        printf("  %9s %9s %6s  %7s %7s", "wall", "cpu", "wall", "wall",
               "cpu");
    }

    printf("\n");

    tnw = 0;
    tnc = 0;
    tow = 0;
    toc = 0;
    tn_ngx = 0;
    tn_osip = 0;
    bytes = 0;

    for (i = 0; i < BENCH_NMSGS; i++) {
        b = &msgs[i];

        nw = median(b->ngx_wall, rounds);
        nc = median(b->ngx_cpu, rounds);
        ow = n_osip ? median(b->osip_wall, rounds) : 0;
        oc = n_osip ? median(b->osip_cpu, rounds) : 0;

        print_row(b->name, b->len, n_ngx, n_osip, nw, nc, ow, oc);

        tnw += nw;
        tnc += nc;
        tow += ow;
        toc += oc;
        tn_ngx += n_ngx;
        tn_osip += n_osip;
        bytes += b->len;
    }

    print_row("total (mix)", bytes / BENCH_NMSGS, tn_ngx, tn_osip,
              tnw, tnc, tow, toc);

    printf("\n\"total (mix)\": the five messages in equal numbers; its "
           "bytes column is the mean size.\n");

    printf("\nTCP/TLS framing, ngx_sip_frame() of the whole message in one "
           "read, %lu each:\n", (unsigned long) n_ngx);

    tnw = 0;

    for (i = 0; i < BENCH_NMSGS; i++) {
        b = &msgs[i];

        t = clock_now(CLOCK_MONOTONIC);

        if (bench_frame(b, n_ngx) != NGX_OK) {
            fail(b, "ngx_sip", "not framed whole");
        }

        t = clock_now(CLOCK_MONOTONIC) - t;
        tnw += t;

        printf("%-12s %5lu  %10.0f msgs/s %6.0f ns/msg\n", b->name,
               (unsigned long) b->len, rate(n_ngx, t), t * 1e9 / n_ngx);
    }

    printf("%-12s %5lu  %10.0f msgs/s %6.0f ns/msg\n", "total (mix)",
           (unsigned long) (bytes / BENCH_NMSGS),
           rate(n_ngx * BENCH_NMSGS, tnw), tnw * 1e9 / (n_ngx * BENCH_NMSGS));

    return 0;
}
