
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * The WebSocket core: the handshake of RFC 6455 1.3 with its accept key,
 * every refusal with its status and reason, SIP told from HTTP by the
 * first octets; frames: RFC 6455 5.7's examples, every rule of 5 with its
 * close code, every length encoding boundary, streams split at every
 * octet and read through a buffer of the size a connection would have.
 */


#include <string.h>

#include "ngx_sip_ws.h"
#include "ngx_sip_test.h"


#define TEST_MAX_TRACE  (300 * 1024)


/* what a decoder said of a stream, one record per event */

typedef struct {
    u_char      data[TEST_MAX_TRACE];
    size_t      len;
} trace_t;


static u_char   conn_buf[200 * 1024];
static trace_t  trace_whole, trace_split;
static u_char   stream[200 * 1024];


static void
trace_add(trace_t *t, const char *s, size_t len)
{
    if (t->len + len > sizeof(t->data)) {
        len = sizeof(t->data) - t->len;
    }

    memcpy(t->data + t->len, s, len);
    t->len += len;
}


static void
trace_num(trace_t *t, char tag, size_t n)
{
    char  b[32];
    int   len;

    len = snprintf(b, sizeof(b), "%c%zu:", tag, n);
    trace_add(t, b, len);
}


/*
 * A connection: a buffer of max + a header, read into as much as there
 * is room, decoded until it says AGAIN, compacted.
 */

typedef struct {
    ngx_sip_ws_t   ws;
    u_char        *buf;
    u_char        *last;
    size_t         cap;
    ngx_uint_t     over;
} conn_t;


static void
conn_init(conn_t *c, size_t max)
{
    ngx_sip_ws_init(&c->ws, max);

    c->buf = conn_buf;
    c->last = conn_buf;
    c->cap = max + NGX_SIP_WS_MAX_HEADER;
    c->over = 0;

    if (c->cap > sizeof(conn_buf)) {
        c->cap = sizeof(conn_buf);
    }
}


static void
conn_feed(conn_t *c, u_char *data, size_t n, trace_t *t)
{
    size_t     room, k;
    ngx_int_t  rc;

    while (n && !c->over) {
        room = c->cap - (c->last - c->buf);

        if (room == 0) {
            /* the decoder left no room: it would never progress */
            trace_add(t, "X", 1);
            c->over = 1;
            return;
        }

        k = ngx_min(room, n);
        memcpy(c->last, data, k);
        c->last += k;
        data += k;
        n -= k;

        for ( ;; ) {
            rc = ngx_sip_ws_decode(&c->ws, c->buf, c->last);

            if (rc == NGX_AGAIN) {
                c->last = ngx_sip_ws_compact(&c->ws, c->buf, c->last);
                break;
            }

            if (rc == NGX_ERROR) {
                trace_num(t, 'E', c->ws.code);
                c->over = 1;
                return;
            }

            if (rc == NGX_DONE) {
                trace_add(t, "D", 1);
                c->over = 1;
                return;
            }

            switch (c->ws.opcode) {
            case NGX_SIP_WS_TEXT:
                trace_num(t, 'T', c->ws.payload.len);
                break;
            case NGX_SIP_WS_BINARY:
                trace_num(t, 'B', c->ws.payload.len);
                break;
            case NGX_SIP_WS_PING:
                trace_num(t, 'P', c->ws.payload.len);
                break;
            case NGX_SIP_WS_PONG:
                trace_num(t, 'O', c->ws.payload.len);
                break;
            case NGX_SIP_WS_CLOSE:
                trace_num(t, 'C', c->ws.code);
                trace_num(t, 'r', c->ws.payload.len);
                break;
            default:
                trace_add(t, "?", 1);
            }

            trace_add(t, (char *) c->ws.payload.data, c->ws.payload.len);
            trace_add(t, "|", 1);
        }
    }
}


static void
decode_whole(u_char *data, size_t n, size_t max, trace_t *t)
{
    conn_t  c;

    t->len = 0;
    conn_init(&c, max);
    conn_feed(&c, data, n, t);
}


static void
decode_at(u_char *data, size_t n, size_t max, size_t at, trace_t *t)
{
    conn_t  c;

    t->len = 0;
    conn_init(&c, max);
    conn_feed(&c, data, at, t);
    conn_feed(&c, data + at, n - at, t);
}


static void
decode_octets(u_char *data, size_t n, size_t max, trace_t *t)
{
    size_t  i;
    conn_t  c;

    t->len = 0;
    conn_init(&c, max);

    for (i = 0; i < n; i++) {
        conn_feed(&c, data + i, 1, t);
    }
}


#define TRACE_IS(t, lit)                                                     \
    ((t).len == sizeof(lit) - 1 && memcmp((t).data, lit, (t).len) == 0)


/* a client frame, masked with key unless key is NULL */

static size_t
frame(u_char *out, ngx_uint_t b0, u_char *key, const void *payload,
    size_t len)
{
    size_t   i;
    u_char  *p;

    p = out;
    p = ngx_sip_ws_frame_header(p, 0, len);
    out[0] = (u_char) b0;

    if (key) {
        out[1] |= 0x80;
        memcpy(p, key, 4);
        p += 4;
    }

    for (i = 0; i < len; i++) {
        p[i] = ((u_char *) payload)[i] ^ (key ? key[i & 3] : 0);
    }

    return p + len - out;
}


static u_char  key1[4] = { 0x37, 0xfa, 0x21, 0x3d };


/* the stream decodes alike whole, split anywhere and an octet at a time */

static void
check_splits(u_char *data, size_t n, size_t max, const char *what)
{
    size_t      at;
    ngx_uint_t  bad;

    decode_whole(data, n, max, &trace_whole);

    bad = 0;

    for (at = 0; at <= n; at++) {
        decode_at(data, n, max, at, &trace_split);

        if (trace_split.len != trace_whole.len
            || memcmp(trace_split.data, trace_whole.data, trace_whole.len))
        {
            bad++;
        }
    }

    NGX_SIP_CHECK(bad == 0, "%s: %zu of %zu splits differ", what,
                  (size_t) bad, n + 1);

    decode_octets(data, n, max, &trace_split);

    NGX_SIP_CHECK(trace_split.len == trace_whole.len
                  && memcmp(trace_split.data, trace_whole.data,
                            trace_whole.len) == 0,
                  "%s: octet at a time differs", what);
}


/* handshakes */

#define HS_OK                                                                \
    "GET /chat HTTP/1.1\r\n"                                                 \
    "Host: server.example.com\r\n"                                           \
    "Upgrade: websocket\r\n"                                                 \
    "Connection: Upgrade\r\n"                                                \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                        \
    "Origin: http://example.com\r\n"                                         \
    "Sec-WebSocket-Protocol: sip\r\n"                                        \
    "Sec-WebSocket-Version: 13\r\n"                                          \
    "\r\n"


static ngx_int_t
handshake(const char *req, size_t max, ngx_sip_ws_handshake_t *hs)
{
    ngx_sip_ws_handshake_init(hs, max);

    return ngx_sip_ws_handshake(hs, (u_char *) req,
                                (u_char *) req + strlen(req));
}


static void
test_handshake_rfc(void)
{
    u_char                  resp[NGX_SIP_WS_RESPONSE_LEN], *p;
    size_t                  n, i;
    ngx_int_t               rc;
    ngx_uint_t              bad;
    ngx_sip_ws_handshake_t  hs;

    static char  expect[] = "HTTP/1.1 101 Switching Protocols\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: "
                            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                            "Sec-WebSocket-Protocol: sip\r\n"
                            "\r\n";

    NGX_SIP_CHECK(handshake(HS_OK, 4096, &hs) == NGX_OK, "RFC 6455 1.3");
    NGX_SIP_CHECK(hs.len == sizeof(HS_OK) - 1, "len %zu", hs.len);
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(hs.origin, "http://example.com"), "origin");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(hs.host, "server.example.com"), "host");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(hs.uri, "/chat"), "uri");

    p = ngx_sip_ws_handshake_response(resp, &hs);

    NGX_SIP_CHECK(p != NULL && (size_t) (p - resp) == sizeof(expect) - 1
                  && memcmp(resp, expect, sizeof(expect) - 1) == 0,
                  "101 with the accept key of RFC 6455 1.3");

    /* fed an octet at a time, each octet once: the same outcome */

    n = sizeof(HS_OK) - 1;
    bad = 0;

    ngx_sip_ws_handshake_init(&hs, 4096);

    for (i = 1; i <= n; i++) {
        rc = ngx_sip_ws_handshake(&hs, (u_char *) HS_OK,
                                  (u_char *) HS_OK + i);
        if (rc != (i == n ? NGX_OK : NGX_AGAIN)) {
            bad++;
        }
    }

    NGX_SIP_CHECK(bad == 0 && hs.len == n
                  && NGX_SIP_STR_EQ(hs.key, "dGhlIHNhbXBsZSBub25jZQ=="),
                  "octet at a time: %zu wrong", (size_t) bad);

    /* what follows the request is left to the frame decoder */

    NGX_SIP_CHECK(handshake(HS_OK "\x81\x85", 4096, &hs) == NGX_OK
                  && hs.len == n, "early frame octets not taken");
}


typedef struct {
    const char   *req;
    ngx_int_t     rc;
    ngx_uint_t    status;
    const char   *reason;
} hs_case_t;


#define HS_BASE                                                              \
    "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"               \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                        \
    "Sec-WebSocket-Version: 13\r\n"

#define HS_NOPROTO  "GET / HTTP/1.1\r\n" HS_BASE
#define HS_GOOD     HS_NOPROTO "Sec-WebSocket-Protocol: sip\r\n"


static hs_case_t  hs_cases[] = {
    { HS_GOOD "\r\n", NGX_OK, 0, NULL },
    { HS_GOOD "\n", NGX_OK, 0, NULL },
    { "GET / HTTP/1.1\nHost: h\nUpgrade: WebSocket\nConnection: keep-alive, "
      "upgrade\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\n"
      "Sec-WebSocket-Version: 13\nSec-WebSocket-Protocol: chat\n"
      "Sec-WebSocket-Protocol:  foo ,sip \n\n", NGX_OK, 0, NULL },
    { "GET http://h/ HTTP/1.1\r\n" HS_BASE "Sec-WebSocket-Protocol: sip\r\n"
      "Content-Length: 0\r\n\r\n", NGX_OK, 0, NULL },

    /* SIP, not HTTP */
    { "INVITE sip:a@b SIP/2.0\r\n", NGX_DECLINED, 0, NULL },
    { "I", NGX_DECLINED, 0, NULL },
    { "\r\n\r\n", NGX_DECLINED, 0, NULL },
    { "GEt ", NGX_DECLINED, 0, NULL },
    { "GET sip:a@b SIP/2.0\r\n", NGX_DECLINED, 0, NULL },
    { "GET sip:a@b SIP/2.0\n", NGX_DECLINED, 0, NULL },
    { "GETX sip:a@b SIP/2.0\r\n", NGX_DECLINED, 0, NULL },
    { "POST / HTTP/1.1\r\n", NGX_DECLINED, 0, NULL },

    /* not yet known */
    { "", NGX_AGAIN, 0, NULL },
    { "GE", NGX_AGAIN, 0, NULL },
    { "GET ", NGX_AGAIN, 0, NULL },
    { "GET sip:a@b SIP/2.0", NGX_AGAIN, 0, NULL },
    { HS_GOOD, NGX_AGAIN, 0, NULL },
    { HS_GOOD "\r", NGX_AGAIN, 0, NULL },

    /* refused */
    { "GET / HTTP/1.0\r\n", NGX_ERROR, 400, "HTTP/1.1 required" },
    { "GET / HTTP/2.0\r\n", NGX_ERROR, 400, "HTTP/1.1 required" },
    { "GET /\r\n", NGX_ERROR, 400, "bad request line" },
    { "GET  HTTP/1.1\r\n", NGX_ERROR, 400, "bad request line" },
    { "GET / FOO/1.1\r\n", NGX_ERROR, 400, "bad request line" },
    { "GET /a\x01 HTTP/1.1\r\n", NGX_ERROR, 400, "bad request line" },
    { "GET / HTTP/1.1\r\n Host: h\r\n", NGX_ERROR, 400,
      "folded header line" },
    { "GET / HTTP/1.1\r\nHost : h\r\n", NGX_ERROR, 400, "bad header name" },
    { "GET / HTTP/1.1\r\nHost h\r\n", NGX_ERROR, 400, "bad header name" },
    { "GET / HTTP/1.1\r\n: h\r\n", NGX_ERROR, 400, "bad header line" },
    { "GET / HTTP/1.1\r\nX: a\rb\r\n", NGX_ERROR, 400, "bad header value" },
    { HS_GOOD "Host: i\r\n\r\n", NGX_ERROR, 400, "duplicate Host" },
    { HS_GOOD "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      NGX_ERROR, 400, "duplicate Sec-WebSocket-Key" },
    { HS_GOOD "Sec-WebSocket-Version: 13\r\n\r\n", NGX_ERROR, 400,
      "duplicate Sec-WebSocket-Version" },
    { HS_GOOD "Origin: a\r\nOrigin: b\r\n\r\n", NGX_ERROR, 400,
      "duplicate Origin" },
    { "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
      NGX_ERROR, 400, "no Host" },
    { "GET / HTTP/1.1\r\nHost:\r\nUpgrade: websocket\r\n\r\n",
      NGX_ERROR, 400, "no Host" },
    { "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n",
      NGX_ERROR, 400, "no Upgrade: websocket" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n"
      "Connection: Upgrade\r\n\r\n",
      NGX_ERROR, 400, "no Upgrade: websocket" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: keep-alive\r\n\r\n",
      NGX_ERROR, 400, "no Connection: Upgrade" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n\r\n",
      NGX_ERROR, 400, "no Sec-WebSocket-Version" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n",
      NGX_ERROR, 426, "unsupported Sec-WebSocket-Version" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 130\r\n\r\n",
      NGX_ERROR, 426, "unsupported Sec-WebSocket-Version" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
      NGX_ERROR, 400, "no Sec-WebSocket-Key" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n\r\n",
      NGX_ERROR, 400, "bad Sec-WebSocket-Key" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=a\r\n\r\n",
      NGX_ERROR, 400, "bad Sec-WebSocket-Key" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n\r\n",
      NGX_ERROR, 400, "bad Sec-WebSocket-Key" },
    { "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQdGhlIHNhbXBsZSBub25jZQ==\r\n"
      "\r\n", NGX_ERROR, 400, "bad Sec-WebSocket-Key" },
    { HS_GOOD "Content-Length: 5\r\n\r\n", NGX_ERROR, 400,
      "request with a body" },
    { HS_GOOD "Transfer-Encoding: chunked\r\n\r\n", NGX_ERROR, 400,
      "request with a body" },
    { HS_NOPROTO "\r\n", NGX_ERROR, 400, "no sip subprotocol" },
    { HS_NOPROTO "Sec-WebSocket-Protocol: SIP\r\n\r\n", NGX_ERROR, 400,
      "no sip subprotocol" },
    { HS_NOPROTO "Sec-WebSocket-Protocol: sips, sip2\r\n\r\n", NGX_ERROR,
      400, "no sip subprotocol" },
};


static void
test_handshake_cases(void)
{
    size_t                  i;
    ngx_int_t               rc;
    ngx_sip_ws_handshake_t  hs;

    for (i = 0; i < sizeof(hs_cases) / sizeof(hs_cases[0]); i++) {
        rc = handshake(hs_cases[i].req, 4096, &hs);

        NGX_SIP_CHECK(rc == hs_cases[i].rc, "case %zu: rc %d, not %d",
                      i, (int) rc, (int) hs_cases[i].rc);

        if (rc == NGX_ERROR && hs_cases[i].rc == NGX_ERROR) {
            NGX_SIP_CHECK(hs.status == hs_cases[i].status
                          && strcmp(hs.reason, hs_cases[i].reason) == 0,
                          "case %zu: %u \"%s\"", i, (unsigned) hs.status,
                          hs.reason);
        }

        /* once decided, it stays decided */

        if (rc != NGX_AGAIN) {
            NGX_SIP_CHECK(ngx_sip_ws_handshake(&hs,
                              (u_char *) hs_cases[i].req,
                              (u_char *) hs_cases[i].req
                              + strlen(hs_cases[i].req)) == rc,
                          "case %zu: decided again differently", i);
        }
    }
}


static void
test_handshake_limits(void)
{
    static char             req[8192];
    size_t                  n;
    ngx_sip_ws_handshake_t  hs;

    /* a handshake that never ends */

    n = snprintf(req, sizeof(req), "%s", HS_GOOD);

    while (n + 12 < sizeof(req) - 1) {
        n += snprintf(req + n, sizeof(req) - n, "X-Pad: abc\r\n");
    }

    NGX_SIP_CHECK(handshake(req, 1024, &hs) == NGX_ERROR
                  && hs.status == 400
                  && strcmp(hs.reason, "handshake too large") == 0,
                  "endless headers");

    /* a header line that never ends */

    n = snprintf(req, sizeof(req), "%sX-Pad: ", HS_GOOD);
    memset(req + n, 'a', 2000);
    req[n + 2000] = '\0';

    NGX_SIP_CHECK(handshake(req, 1024, &hs) == NGX_ERROR
                  && strcmp(hs.reason, "handshake too large") == 0,
                  "endless header line");

    /* without any LF; and one exactly at the limit */

    memset(req, 'a', 3000);
    memcpy(req, "GET /", 5);
    req[3000] = '\0';

    NGX_SIP_CHECK(handshake(req, 1024, &hs) == NGX_ERROR
                  && strcmp(hs.reason, "request line too long") == 0,
                  "endless request line");

    memcpy(req, "GET sip:", 8);

    NGX_SIP_CHECK(handshake(req, 1024, &hs) == NGX_DECLINED,
                  "endless SIP request line left to SIP");

    n = strlen(HS_GOOD "\r\n");

    NGX_SIP_CHECK(handshake(HS_GOOD "\r\n", n, &hs) == NGX_OK,
                  "handshake of exactly the limit");
    NGX_SIP_CHECK(handshake(HS_GOOD "\r\n", n - 1, &hs) == NGX_ERROR
                  && hs.status == 400, "one octet over the limit");
}


static void
test_handshake_nul(void)
{
    ngx_sip_ws_handshake_t  hs;

    static char  req[] = "GET / HTTP/1.1\r\nX: a\0b\r\n";

    ngx_sip_ws_handshake_init(&hs, 4096);

    NGX_SIP_CHECK(ngx_sip_ws_handshake(&hs, (u_char *) req,
                                       (u_char *) req + sizeof(req) - 1)
                  == NGX_ERROR
                  && strcmp(hs.reason, "bad header value") == 0,
                  "NUL in a header");
}


static void
test_http_error(void)
{
    u_char   buf[512], *p;

    static char  e426[] = "HTTP/1.1 426 Upgrade Required\r\n"
                          "Connection: close\r\n"
                          "Upgrade: websocket\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "Content-Type: text/plain\r\n"
                          "Content-Length: 34\r\n\r\n"
                          "unsupported Sec-WebSocket-Version\n";
    static char  e403[] = "HTTP/1.1 403 Forbidden\r\n"
                          "Connection: close\r\n"
                          "Content-Type: text/plain\r\n"
                          "Content-Length: 19\r\n\r\n"
                          "Origin not allowed\n";

    p = ngx_sip_ws_http_error(buf, buf + sizeof(buf), 426,
                              "unsupported Sec-WebSocket-Version");
    NGX_SIP_CHECK(p && (size_t) (p - buf) == sizeof(e426) - 1
                  && memcmp(buf, e426, p - buf) == 0, "426 response");

    p = ngx_sip_ws_http_error(buf, buf + sizeof(buf), 403,
                              "Origin not allowed");
    NGX_SIP_CHECK(p && (size_t) (p - buf) == sizeof(e403) - 1
                  && memcmp(buf, e403, p - buf) == 0, "403 response");

    NGX_SIP_CHECK(ngx_sip_ws_http_error(buf, buf + 40, 400, "x") == NULL,
                  "no room: NULL");

    p = ngx_sip_ws_http_error(buf, buf + sizeof(buf), 503, "busy");
    NGX_SIP_CHECK(p && memcmp(buf, "HTTP/1.1 503 Service Unavailable\r\n",
                              34) == 0, "503");

    p = ngx_sip_ws_http_error(buf, buf + sizeof(buf), 500, "SHA-1");
    NGX_SIP_CHECK(p && memcmp(buf, "HTTP/1.1 500 Internal Server Error\r\n",
                              36) == 0, "500");

    p = ngx_sip_ws_http_error(buf, buf + sizeof(buf), 999, "x");
    NGX_SIP_CHECK(p && memcmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26)
                  == 0, "an unknown status is 400");
}


/* frames */

static void
test_rfc_frames(void)
{
    u_char   buf[16], *p;
    size_t   n;

    /* RFC 6455 5.7: a single-frame masked text message */
    static u_char  hello_masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static u_char  hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    static u_char  ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    static u_char  pong_masked[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static u_char  frag[] = { 0x01, 0x03, 0x48, 0x65, 0x6c,
                              0x80, 0x02, 0x6c, 0x6f };
    static u_char  bin256[] = { 0x82, 0x7e, 0x01, 0x00 };
    static u_char  bin64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };

    decode_whole(hello_masked, sizeof(hello_masked), 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "T5:Hello|"), "5.7 masked text");

    decode_whole(pong_masked, sizeof(pong_masked), 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "O5:Hello|"), "5.7 masked pong");

    /* the unmasked examples are a server's: refused from a client */

    decode_whole(hello, sizeof(hello), 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1002:"), "unmasked text");

    decode_whole(ping, sizeof(ping), 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1002:"), "unmasked ping");

    decode_whole(frag, sizeof(frag), 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1002:"), "unmasked fragments");

    /* and they are what we send */

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_TEXT, 5);
    memcpy(p, "Hello", 5);
    NGX_SIP_CHECK(memcmp(buf, hello, sizeof(hello)) == 0, "our text");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_PING, 5);
    memcpy(p, "Hello", 5);
    NGX_SIP_CHECK(memcmp(buf, ping, sizeof(ping)) == 0, "our ping");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_BINARY, 256);
    NGX_SIP_CHECK(p - buf == 4 && memcmp(buf, bin256, 4) == 0, "256");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_BINARY, 65536);
    NGX_SIP_CHECK(p - buf == 10 && memcmp(buf, bin64k, 10) == 0, "64 KiB");

    /* the fragmented example, masked as a client would */

    n = frame(stream, 0x01, key1, "Hel", 3);
    n += frame(stream + n, 0x80, key1, "lo", 2);

    decode_whole(stream, n, 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "T5:Hello|"), "5.7 fragments");
    check_splits(stream, n, 1000, "5.7 fragments");
}


static void
test_lengths(void)
{
    char        what[64];
    size_t      lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };
    size_t      i, n, k, at, hl;
    u_char     *payload;
    ngx_uint_t  bad;
    static u_char  big[70000];

    payload = big;

    for (k = 0; k < sizeof(big); k++) {
        payload[k] = (u_char) ('a' + k % 26);
    }

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        n = frame(stream, 0x82, key1, payload, lens[i]);
        hl = n - lens[i];

        NGX_SIP_CHECK(hl == (lens[i] < 126 ? 6 : lens[i] < 65536 ? 8 : 14),
                      "header of %zu: %zu", lens[i], hl);

        decode_whole(stream, n, 70000, &trace_whole);

        snprintf(what, sizeof(what), "B%zu:", lens[i]);

        NGX_SIP_CHECK(trace_whole.len == strlen(what) + lens[i] + 1
                      && memcmp(trace_whole.data, what, strlen(what)) == 0
                      && memcmp(trace_whole.data + strlen(what), payload,
                                lens[i]) == 0,
                      "length %zu", lens[i]);

        /* split in the header and around it, and at the end */

        bad = 0;

        for (at = 0; at <= n; at += (at < hl + 8 || at + 8 > n) ? 1 : 4099) {
            decode_at(stream, n, 70000, at, &trace_split);

            if (trace_split.len != trace_whole.len
                || memcmp(trace_split.data, trace_whole.data,
                          trace_whole.len))
            {
                bad++;
            }
        }

        NGX_SIP_CHECK(bad == 0, "length %zu split: %u", lens[i],
                      (unsigned) bad);

        /* exactly the limit, and one octet over it */

        decode_whole(stream, n, lens[i], &trace_split);
        NGX_SIP_CHECK(trace_split.len == trace_whole.len, "at the limit %zu",
                      lens[i]);

        if (lens[i]) {
            decode_whole(stream, hl, lens[i] - 1, &trace_split);
            NGX_SIP_CHECK(TRACE_IS(trace_split, "E1009:"), "over %zu",
                          lens[i]);
        }
    }
}


typedef struct {
    u_char        frame[16];
    size_t        len;
    const char   *trace;
    const char   *what;
} frame_case_t;


static frame_case_t  frame_cases[] = {
    /* the reserved bits */
    { { 0xc1, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "RSV1" },
    { { 0xa1, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "RSV2" },
    { { 0x91, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "RSV3" },

    /* opcodes */
    { { 0x83, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "opcode 3" },
    { { 0x87, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "opcode 7" },
    { { 0x8b, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "opcode B" },
    { { 0x8f, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "opcode F" },
    { { 0x80, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "continuation first" },
    { { 0x00, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "continuation first" },

    /* control frames */
    { { 0x09, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "fragmented ping" },
    { { 0x08, 0x80, 1, 2, 3, 4 }, 6, "E1002:", "fragmented close" },
    { { 0x89, 0xfe, 0, 126 }, 4, "E1002:", "ping of 126" },
    { { 0x8a, 0xfe, 0, 126 }, 4, "E1002:", "pong of 126" },
    { { 0x89, 0x80, 1, 2, 3, 4 }, 6, "P0:|", "empty ping" },
    { { 0x8a, 0x80, 1, 2, 3, 4 }, 6, "O0:|", "empty pong" },

    /* lengths */
    { { 0x82, 0xfe, 0, 125, 1, 2, 3, 4 }, 8, "E1002:",
      "16-bit length of 125" },
    { { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
        1, 2, 3, 4 }, 14, "E1002:",
      "64-bit length of 65535" },
    { { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0,
        1, 2, 3, 4 }, 14, "E1002:",
      "64-bit length with the top bit" },
    { { 0x82, 0xff, 0, 0, 0, 0, 0, 0xa0, 0, 0,
        1, 2, 3, 4 }, 14, "E1009:",
      "a 10 MB frame" },
    { { 0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        1, 2, 3, 4 }, 14,
      "E1009:", "2^63 - 1" },

    /* close */
    { { 0x88, 0x80, 1, 2, 3, 4 }, 6, "C1005:r0:|D", "empty close" },
    { { 0x88, 0x81, 0, 0, 0, 0, 3 }, 7, "E1002:", "close of one octet" },
    { { 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8 }, 8, "C1000:r0:|D", "1000" },
    { { 0x88, 0x85, 0, 0, 0, 0, 0x0f, 0xa0, 'b', 'y', 'e' }, 11,
      "C4000:r3:bye|D", "4000 bye" },
    { { 0x88, 0x84, 0, 0, 0, 0, 0x03, 0xe8, 0xc3, 0x28 }, 10, "E1007:",
      "reason not UTF-8" },
    { { 0x88, 0x83, 0, 0, 0, 0, 0x03, 0xe8, 0xe2 }, 9, "E1007:",
      "reason cut inside a character" },

    /* text */
    { { 0x81, 0x82, 0, 0, 0, 0, 0xc3, 0xa9 }, 8, "T2:\xc3\xa9|", "é" },
    { { 0x81, 0x82, 0, 0, 0, 0, 0xc0, 0x80 }, 8, "E1007:", "overlong" },
    { { 0x81, 0x83, 0, 0, 0, 0, 0xed, 0xa0, 0x80 }, 9, "E1007:",
      "surrogate" },
    { { 0x81, 0x84, 0, 0, 0, 0, 0xf4, 0x90, 0x80, 0x80 }, 10, "E1007:",
      "above U+10FFFF" },
    { { 0x81, 0x84, 0, 0, 0, 0, 0xf0, 0x9f, 0x98, 0x80 }, 10,
      "T4:\xf0\x9f\x98\x80|", "U+1F600" },
    { { 0x81, 0x81, 0, 0, 0, 0, 0xe2 }, 7, "E1007:", "truncated" },
    { { 0x81, 0x81, 0, 0, 0, 0, 0xff }, 7, "E1007:", "0xff" },
    { { 0x82, 0x81, 0, 0, 0, 0, 0xff }, 7, "B1:\xff|", "binary 0xff" },

    /* invalid UTF-8 is refused before the message ends */
    { { 0x01, 0x81, 0, 0, 0, 0, 0xff }, 7, "E1007:", "first fragment" },

    /* after a close, nothing */
    { { 0x88, 0x80, 0, 0, 0, 0, 0x81, 0x80, 0, 0, 0, 0 }, 12,
      "C1005:r0:|D", "data after close" },
};


static void
test_frame_cases(void)
{
    size_t  i;

    for (i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
        decode_whole(frame_cases[i].frame, frame_cases[i].len, 1000,
                     &trace_whole);

        NGX_SIP_CHECK(trace_whole.len == strlen(frame_cases[i].trace)
                      && memcmp(trace_whole.data, frame_cases[i].trace,
                                trace_whole.len) == 0,
                      "%s: \"%.*s\"", frame_cases[i].what,
                      (int) trace_whole.len, trace_whole.data);

        check_splits(frame_cases[i].frame, frame_cases[i].len, 1000,
                     frame_cases[i].what);
    }
}


static void
test_close_codes(void)
{
    u_char      f[8];
    char        expect[32];
    ngx_uint_t  code, valid, bad;

    bad = 0;

    for (code = 0; code < 65536; code++) {
        f[0] = 0x88;
        f[1] = 0x82;
        f[2] = f[3] = f[4] = f[5] = 0;
        f[6] = (u_char) (code >> 8);
        f[7] = (u_char) code;

        valid = (code >= 1000 && code <= 1003)
                || (code >= 1007 && code <= 1014)
                || (code >= 3000 && code <= 4999);

        if (valid) {
            snprintf(expect, sizeof(expect), "C%u:r0:|D", (unsigned) code);

        } else {
            snprintf(expect, sizeof(expect), "E1002:");
        }

        decode_whole(f, 8, 1000, &trace_whole);

        if (trace_whole.len != strlen(expect)
            || memcmp(trace_whole.data, expect, trace_whole.len) != 0)
        {
            bad++;
        }
    }

    NGX_SIP_CHECK(bad == 0, "%u close codes misjudged", (unsigned) bad);
}


static void
test_fragments(void)
{
    size_t  n;

    /* control frames between fragments, the message whole at the end */

    n = frame(stream, 0x01, key1, "INVITE ", 7);
    n += frame(stream + n, 0x89, key1, "p1", 2);
    n += frame(stream + n, 0x00, key1, "sip:", 4);
    n += frame(stream + n, 0x8a, key1, "", 0);
    n += frame(stream + n, 0x00, key1, "", 0);
    n += frame(stream + n, 0x80, key1, "a@b", 3);
    n += frame(stream + n, 0x82, key1, "\x00\x01", 2);

    decode_whole(stream, n, 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole,
                           "P2:p1|O0:|T14:INVITE sip:a@b|B2:\x00\x01|"),
                  "interleaved: \"%.*s\"", (int) trace_whole.len,
                  trace_whole.data);
    check_splits(stream, n, 1000, "interleaved");

    /* a new message inside one */

    n = frame(stream, 0x01, key1, "a", 1);
    n += frame(stream + n, 0x81, key1, "b", 1);
    decode_whole(stream, n, 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1002:"), "text inside text");

    n = frame(stream, 0x02, key1, "a", 1);
    n += frame(stream + n, 0x02, key1, "b", 1);
    decode_whole(stream, n, 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1002:"), "binary inside binary");

    /* a close inside a message ends it all */

    n = frame(stream, 0x01, key1, "a", 1);
    n += frame(stream + n, 0x88, key1, "\x03\xe9", 2);
    decode_whole(stream, n, 1000, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "C1001:r0:|D"),
                  "close in a message");

    /* the limit counts the whole message, not the frame */

    n = frame(stream, 0x02, key1, "0123456789", 10);
    n += frame(stream + n, 0x00, key1, "0123456789", 10);
    n += frame(stream + n, 0x80, key1, "01234", 5);
    decode_whole(stream, n, 25, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole,
                           "B25:0123456789012345678901234|"), "25 of 25");
    check_splits(stream, n, 25, "25 of 25");

    decode_whole(stream, n, 24, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "E1009:"), "25 over 24");

    /* a character cut across fragments, a text message */

    n = frame(stream, 0x01, key1, "\xe2\x82", 2);
    n += frame(stream + n, 0x80, key1, "\xac", 1);
    decode_whole(stream, n, 25, &trace_whole);
    NGX_SIP_CHECK(TRACE_IS(trace_whole, "T3:\xe2\x82\xac|"), "euro split");
    check_splits(stream, n, 25, "euro split");
}


static void
test_many(void)
{
    char        msg[64];
    size_t      n, len;
    ngx_uint_t  i, count;
    u_char     *p;

    n = 0;

    for (i = 0; i < 200; i++) {
        len = snprintf(msg, sizeof(msg), "OPTIONS sip:%u@b SIP/2.0",
                       (unsigned) i);
        n += frame(stream + n, (i % 7 == 3) ? 0x89 : 0x81, key1, msg, len);
    }

    decode_whole(stream, n, 64, &trace_whole);

    count = 0;

    for (p = trace_whole.data; p < trace_whole.data + trace_whole.len; p++) {
        count += (*p == '|');
    }

    NGX_SIP_CHECK(count == 200 && trace_whole.data[0] == 'T'
                  && memcmp(trace_whole.data + 4, "OPTIONS sip:0@b", 15)
                     == 0,
                  "200 messages in one chunk: %u", (unsigned) count);

    /* 30 of them split at every octet, read by a buffer of 64 + 14 */

    n = 0;

    for (i = 0; i < 30; i++) {
        len = snprintf(msg, sizeof(msg), "MESSAGE sip:%u@b SIP/2.0",
                       (unsigned) i);
        n += frame(stream + n, (i % 5 == 2) ? 0x8a : 0x81,
                   (u_char *) "\xa1\xb2\xc3\xd4", msg, len);
    }

    check_splits(stream, n, 64, "30 messages");
}


/* the calls themselves, without the connection of the tests above */

static void
test_api(void)
{
    u_char        *last;
    size_t         n;
    ngx_sip_ws_t   ws;

    n = frame(conn_buf, 0x81, key1, "abc", 3);
    n += frame(conn_buf + n, 0x81, key1, "defg", 4);
    n += frame(conn_buf + n, 0x81, key1, "h", 1);
    last = conn_buf + n - 3;

    ngx_sip_ws_init(&ws, 100);

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_OK
                  && NGX_SIP_STR_EQ(ws.payload, "abc")
                  && ws.payload.data == conn_buf, "first message");

    /* handed over: compacting drops it, keeps what follows */

    last = ngx_sip_ws_compact(&ws, conn_buf, last);

    NGX_SIP_CHECK(ws.in == 0 && ws.out == 0 && last == conn_buf + 14,
                  "compacted after a message: %zu",
                  (size_t) (last - conn_buf));

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_OK
                  && NGX_SIP_STR_EQ(ws.payload, "defg"), "second message");

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_AGAIN
                  && ws.in == 14 && ws.out == 0, "third one partial");

    last = ngx_sip_ws_compact(&ws, conn_buf, last);
    NGX_SIP_CHECK(last == conn_buf, "a partial header: nothing kept");

    /* its last 3 octets, and an unmasked frame */

    frame(conn_buf + 100, 0x81, key1, "h", 1);
    memcpy(last, conn_buf + 104, 3);
    memcpy(last + 3, "\x81\x01h", 3);
    last += 6;

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_OK
                  && NGX_SIP_STR_EQ(ws.payload, "h"), "third message");

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_ERROR
                  && ws.code == 1002
                  && strcmp(ws.reason, "unmasked frame") == 0,
                  "unmasked: %s", ws.reason);

    NGX_SIP_CHECK(ngx_sip_ws_decode(&ws, conn_buf, last) == NGX_ERROR,
                  "failed stays failed");
}


static void
test_encoder(void)
{
    u_char  buf[256], *p;
    char    reason[200];

    p = ngx_sip_ws_close_frame(buf, 1002, "unmasked frame");
    NGX_SIP_CHECK(p - buf == 18 && memcmp(buf, "\x88\x10\x03\xea"
                                          "unmasked frame", 18) == 0,
                  "close 1002");

    p = ngx_sip_ws_close_frame(buf, NGX_SIP_WS_NO_STATUS, "x");
    NGX_SIP_CHECK(p - buf == 2 && buf[0] == 0x88 && buf[1] == 0,
                  "1005 is never sent");

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';

    p = ngx_sip_ws_close_frame(buf, 1000, reason);
    NGX_SIP_CHECK(p - buf == 127 && buf[1] == 125, "long reason cut");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_TEXT, 125);
    NGX_SIP_CHECK(p - buf == 2 && buf[1] == 125, "125");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_TEXT, 126);
    NGX_SIP_CHECK(p - buf == 4 && buf[1] == 126 && buf[2] == 0
                  && buf[3] == 126, "126");

    p = ngx_sip_ws_frame_header(buf, NGX_SIP_WS_TEXT, 65535);
    NGX_SIP_CHECK(p - buf == 4 && buf[2] == 0xff && buf[3] == 0xff,
                  "65535");

    NGX_SIP_CHECK(ngx_sip_ws_utf8((u_char *) "sip:\xc3\xa9", 6)
                  && !ngx_sip_ws_utf8((u_char *) "\xc3", 1)
                  && !ngx_sip_ws_utf8((u_char *) "\xf8\x88\x80\x80\x80", 5)
                  && ngx_sip_ws_utf8((u_char *) "\xef\xbf\xbf", 3)
                  && ngx_sip_ws_utf8((u_char *) "\xf4\x8f\xbf\xbf", 4)
                  && !ngx_sip_ws_utf8((u_char *) "\xe0\x9f\xbf", 3),
                  "utf8");
}


int
main(void)
{
    test_handshake_rfc();
    test_handshake_cases();
    test_handshake_limits();
    test_handshake_nul();
    test_http_error();
    test_rfc_frames();
    test_lengths();
    test_frame_cases();
    test_close_codes();
    test_fragments();
    test_many();
    test_api();
    test_encoder();

    return ngx_sip_test_done("test_ws");
}
