
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip_ws.h"
#include <openssl/evp.h>


/*
 * SIP over WebSocket (RFC 7118) is RFC 6455 with the "sip" subprotocol.
 * The handshake is read in the caller's buffer a line at a time, so that
 * a request arriving an octet at a time is looked at once.  Frames are
 * decoded in that same kind of buffer: each payload octet is unmasked
 * while it is moved down over the frame headers before it, so that a
 * message, fragmented or not, ends up whole at the start of the buffer
 * with no copy of its own, and a connection keeps no memory but the
 * buffer and this state between messages.
 */


static ngx_int_t ngx_sip_ws_request_line(ngx_sip_ws_handshake_t *hs,
    u_char *p, u_char *end);
static ngx_int_t ngx_sip_ws_header(ngx_sip_ws_handshake_t *hs, u_char *p,
    u_char *end);
static ngx_int_t ngx_sip_ws_check(ngx_sip_ws_handshake_t *hs);
static ngx_int_t ngx_sip_ws_refuse(ngx_sip_ws_handshake_t *hs,
    ngx_uint_t status, char *reason);
static ngx_uint_t ngx_sip_ws_list_has(ngx_str_t *value, char *token,
    size_t len, ngx_uint_t caseless);
static ngx_uint_t ngx_sip_ws_key_valid(ngx_str_t *key);
static ngx_int_t ngx_sip_ws_header_done(ngx_sip_ws_t *ws);
static ngx_int_t ngx_sip_ws_frame_done(ngx_sip_ws_t *ws, u_char *buf);
static ngx_int_t ngx_sip_ws_fail(ngx_sip_ws_t *ws, ngx_uint_t code,
    char *reason);
static ngx_int_t ngx_sip_ws_utf8_step(ngx_uint_t *state, u_char *p,
    size_t len);
static ngx_uint_t ngx_sip_ws_close_code_valid(ngx_uint_t code);


#define NGX_SIP_WS_HS_START         0
#define NGX_SIP_WS_HS_LINE          1
#define NGX_SIP_WS_HS_HEADERS       2
#define NGX_SIP_WS_HS_OK            3
#define NGX_SIP_WS_HS_ERROR         4
#define NGX_SIP_WS_HS_DECLINED      5

#define NGX_SIP_WS_HEADER           0
#define NGX_SIP_WS_PAYLOAD          1
#define NGX_SIP_WS_CLOSED           2
#define NGX_SIP_WS_FAILED           3


static u_char  ngx_sip_ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static u_char  ngx_sip_ws_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


void
ngx_sip_ws_handshake_init(ngx_sip_ws_handshake_t *hs, size_t max)
{
    ngx_memzero(hs, sizeof(ngx_sip_ws_handshake_t));

    hs->max = max;
}


/*
 * [start, last) is what the connection has read so far, from its first
 * octet; the octets stay where they are between calls (the results are
 * slices of them).  NGX_DECLINED: not an HTTP request, SIP over TCP as
 * before; NGX_AGAIN: more is needed; NGX_OK: a SIP WebSocket handshake of
 * hs->len octets; NGX_ERROR: an HTTP request we refuse with hs->status.
 */

ngx_int_t
ngx_sip_ws_handshake(ngx_sip_ws_handshake_t *hs, u_char *start, u_char *last)
{
    size_t      n;
    u_char     *p, *lf, *end;
    ngx_int_t   rc;

    n = last - start;

    switch (hs->state) {

    case NGX_SIP_WS_HS_START:

        /*
         * A SIP request may well use "GET" as an extension method, so
         * "GET " is not enough: the request line's version says which
         * one it is.  Anything else, CRLF keepalives included, is SIP.
         */

        if (ngx_memcmp(start, "GET ", ngx_min(n, 4)) != 0) {
            hs->state = NGX_SIP_WS_HS_DECLINED;
            return NGX_DECLINED;
        }

        if (n < 4) {
            return NGX_AGAIN;
        }

        hs->state = NGX_SIP_WS_HS_LINE;
        hs->scan = 4;

        /* fall through */

    case NGX_SIP_WS_HS_LINE:

        lf = ngx_strlchr(start + hs->scan, last, LF);

        if (lf == NULL || (size_t) (lf + 1 - start) > hs->max) {
            hs->scan = n;

            if (lf == NULL && n < hs->max) {
                return NGX_AGAIN;
            }

            /* an origin-form target is HTTP's, never a SIP Request-URI */

            if (n > 4 && start[4] == '/') {
                return ngx_sip_ws_refuse(hs, 400, "request line too long");
            }

            hs->state = NGX_SIP_WS_HS_DECLINED;
            return NGX_DECLINED;
        }

        end = (lf > start && lf[-1] == CR) ? lf - 1 : lf;

        rc = ngx_sip_ws_request_line(hs, start + 4, end);
        if (rc != NGX_OK) {
            return rc;
        }

        hs->state = NGX_SIP_WS_HS_HEADERS;
        hs->pos = lf + 1 - start;
        hs->scan = hs->pos;

        /* fall through */

    case NGX_SIP_WS_HS_HEADERS:

        for ( ;; ) {
            lf = ngx_strlchr(start + hs->scan, last, LF);

            if (lf == NULL) {
                hs->scan = n;

                if (n >= hs->max) {
                    return ngx_sip_ws_refuse(hs, 400, "handshake too large");
                }

                return NGX_AGAIN;
            }

            if ((size_t) (lf + 1 - start) > hs->max) {
                return ngx_sip_ws_refuse(hs, 400, "handshake too large");
            }

            p = start + hs->pos;
            end = (lf > p && lf[-1] == CR) ? lf - 1 : lf;

            hs->pos = lf + 1 - start;
            hs->scan = hs->pos;

            if (end == p) {
                hs->len = hs->pos;
                return ngx_sip_ws_check(hs);
            }

            rc = ngx_sip_ws_header(hs, p, end);
            if (rc != NGX_OK) {
                return rc;
            }
        }

    case NGX_SIP_WS_HS_OK:
        return NGX_OK;

    case NGX_SIP_WS_HS_DECLINED:
        return NGX_DECLINED;

    default: /* NGX_SIP_WS_HS_ERROR */
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_sip_ws_request_line(ngx_sip_ws_handshake_t *hs, u_char *p,
    u_char *end)
{
    u_char  *sp;

    sp = ngx_strlchr(p, end, ' ');

    if (sp == NULL || end - sp - 1 < 5
        || ngx_memcmp(sp + 1, "HTTP/", 5) != 0)
    {
        if (*p == '/') {
            return ngx_sip_ws_refuse(hs, 400, "bad request line");
        }

        hs->state = NGX_SIP_WS_HS_DECLINED;
        return NGX_DECLINED;
    }

    /* from here on it is HTTP */

    if (end - sp - 1 != 8 || ngx_memcmp(sp + 1, "HTTP/1.1", 8) != 0) {
        return ngx_sip_ws_refuse(hs, 400, "HTTP/1.1 required");
    }

    if (sp == p) {
        return ngx_sip_ws_refuse(hs, 400, "bad request line");
    }

    for (hs->uri.data = p; p < sp; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            return ngx_sip_ws_refuse(hs, 400, "bad request line");
        }
    }

    hs->uri.len = sp - hs->uri.data;

    return NGX_OK;
}


static ngx_int_t
ngx_sip_ws_header(ngx_sip_ws_handshake_t *hs, u_char *p, u_char *end)
{
    u_char     *name;
    size_t      len;
    ngx_str_t   v;

    /* RFC 7230 3.2.4: obsolete line folding is refused */

    if (*p == ' ' || *p == '\t') {
        return ngx_sip_ws_refuse(hs, 400, "folded header line");
    }

    for (name = p; p < end && *p != ':'; p++) {
        if (!ngx_sip_is_token(*p) && *p != '#' && *p != '$' && *p != '&'
            && *p != '^' && *p != '|')
        {
            return ngx_sip_ws_refuse(hs, 400, "bad header name");
        }
    }

    if (p == end || p == name) {
        return ngx_sip_ws_refuse(hs, 400, "bad header line");
    }

    len = p - name;

    for (p++; p < end && (*p == ' ' || *p == '\t'); p++) { /* void */ }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    v.data = p;
    v.len = end - p;

    for ( /* void */ ; p < end; p++) {
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
            return ngx_sip_ws_refuse(hs, 400, "bad header value");
        }
    }

#define ngx_sip_ws_name_is(n)                                                \
    (len == sizeof(n) - 1 && ngx_sip_name_eq(name, n, sizeof(n) - 1))

    if (ngx_sip_ws_name_is("Host")) {
        if (hs->host.data) {
            return ngx_sip_ws_refuse(hs, 400, "duplicate Host");
        }

        hs->host = v;

    } else if (ngx_sip_ws_name_is("Upgrade")) {
        hs->upgrade |= ngx_sip_ws_list_has(&v, "websocket", 9, 1);

    } else if (ngx_sip_ws_name_is("Connection")) {
        hs->connection |= ngx_sip_ws_list_has(&v, "upgrade", 7, 1);

    } else if (ngx_sip_ws_name_is("Sec-WebSocket-Key")) {
        if (hs->key.data) {
            return ngx_sip_ws_refuse(hs, 400, "duplicate Sec-WebSocket-Key");
        }

        hs->key = v;

    } else if (ngx_sip_ws_name_is("Sec-WebSocket-Version")) {
        if (hs->version.data) {
            return ngx_sip_ws_refuse(hs, 400,
                                     "duplicate Sec-WebSocket-Version");
        }

        hs->version = v;

    } else if (ngx_sip_ws_name_is("Sec-WebSocket-Protocol")) {

        /* subprotocol names are compared as they are (RFC 6455 4.1) */

        hs->sip |= ngx_sip_ws_list_has(&v, "sip", 3, 0);

    } else if (ngx_sip_ws_name_is("Origin")) {
        if (hs->origin.data) {
            return ngx_sip_ws_refuse(hs, 400, "duplicate Origin");
        }

        hs->origin = v;

    } else if (ngx_sip_ws_name_is("Content-Length")) {
        hs->body |= !(v.len == 1 && v.data[0] == '0');

    } else if (ngx_sip_ws_name_is("Transfer-Encoding")) {
        hs->body = 1;
    }

#undef ngx_sip_ws_name_is

    return NGX_OK;
}


static ngx_int_t
ngx_sip_ws_check(ngx_sip_ws_handshake_t *hs)
{
    if (hs->host.len == 0) {
        return ngx_sip_ws_refuse(hs, 400, "no Host");
    }

    if (!hs->upgrade) {
        return ngx_sip_ws_refuse(hs, 400, "no Upgrade: websocket");
    }

    if (!hs->connection) {
        return ngx_sip_ws_refuse(hs, 400, "no Connection: Upgrade");
    }

    if (hs->version.data == NULL) {
        return ngx_sip_ws_refuse(hs, 400, "no Sec-WebSocket-Version");
    }

    if (hs->version.len != 2 || hs->version.data[0] != '1'
        || hs->version.data[1] != '3')
    {
        return ngx_sip_ws_refuse(hs, 426, "unsupported Sec-WebSocket-Version");
    }

    if (hs->key.data == NULL) {
        return ngx_sip_ws_refuse(hs, 400, "no Sec-WebSocket-Key");
    }

    if (!ngx_sip_ws_key_valid(&hs->key)) {
        return ngx_sip_ws_refuse(hs, 400, "bad Sec-WebSocket-Key");
    }

    /*
     * a body would be taken for frames: whatever a client means by it,
     * it is not a handshake
     */

    if (hs->body) {
        return ngx_sip_ws_refuse(hs, 400, "request with a body");
    }

    if (!hs->sip) {
        return ngx_sip_ws_refuse(hs, 400, "no sip subprotocol");
    }

    hs->state = NGX_SIP_WS_HS_OK;

    return NGX_OK;
}


static ngx_int_t
ngx_sip_ws_refuse(ngx_sip_ws_handshake_t *hs, ngx_uint_t status,
    char *reason)
{
    hs->state = NGX_SIP_WS_HS_ERROR;
    hs->status = status;
    hs->reason = reason;

    return NGX_ERROR;
}


/* a comma-separated list (RFC 7230 7) holding the token */

static ngx_uint_t
ngx_sip_ws_list_has(ngx_str_t *value, char *token, size_t len,
    ngx_uint_t caseless)
{
    u_char  *p, *end, *e, *last;

    p = value->data;
    last = p + value->len;

    while (p < last) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        for ( /* void */ ; p < end && (*p == ' ' || *p == '\t'); p++) {
            /* void */
        }

        for (e = end; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--) {
            /* void */
        }

        if ((size_t) (e - p) == len
            && (caseless ? ngx_strncasecmp(p, (u_char *) token, len) == 0
                         : ngx_memcmp(p, token, len) == 0))
        {
            return 1;
        }

        p = end + 1;
    }

    return 0;
}


/* base64 of 16 octets (RFC 6455 4.1): 22 characters and "==" */

static ngx_uint_t
ngx_sip_ws_key_valid(ngx_str_t *key)
{
    u_char      c;
    ngx_uint_t  i;

    if (key->len != 24 || key->data[22] != '=' || key->data[23] != '=') {
        return 0;
    }

    for (i = 0; i < 22; i++) {
        c = key->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '+' || c == '/'))
        {
            return 0;
        }
    }

    return 1;
}


/* base64(SHA-1(key GUID)) (RFC 6455 4.2.2 5.4), NGX_SIP_WS_ACCEPT_LEN */

ngx_int_t
ngx_sip_ws_accept(ngx_str_t *key, u_char *accept)
{
    u_char        md[EVP_MAX_MD_SIZE], *p;
    uint32_t      v;
    ngx_uint_t    i;
    unsigned int  len;
    EVP_MD_CTX   *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1
        || EVP_DigestUpdate(ctx, key->data, key->len) != 1
        || EVP_DigestUpdate(ctx, ngx_sip_ws_guid, sizeof(ngx_sip_ws_guid) - 1)
           != 1
        || EVP_DigestFinal_ex(ctx, md, &len) != 1
        || len != 20)
    {
        EVP_MD_CTX_free(ctx);
        return NGX_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    /* 20 octets: six groups of 3, then 2 octets and one '=' */

    p = accept;

    for (i = 0; i < 18; i += 3) {
        v = (uint32_t) md[i] << 16 | (uint32_t) md[i + 1] << 8 | md[i + 2];

        *p++ = ngx_sip_ws_b64[v >> 18];
        *p++ = ngx_sip_ws_b64[(v >> 12) & 0x3f];
        *p++ = ngx_sip_ws_b64[(v >> 6) & 0x3f];
        *p++ = ngx_sip_ws_b64[v & 0x3f];
    }

    v = (uint32_t) md[18] << 16 | (uint32_t) md[19] << 8;

    *p++ = ngx_sip_ws_b64[v >> 18];
    *p++ = ngx_sip_ws_b64[(v >> 12) & 0x3f];
    *p++ = ngx_sip_ws_b64[(v >> 6) & 0x3f];
    *p = '=';

    return NGX_OK;
}


/* the 101 to an accepted handshake, at most NGX_SIP_WS_RESPONSE_LEN */

u_char *
ngx_sip_ws_handshake_response(u_char *p, ngx_sip_ws_handshake_t *hs)
{
    static u_char  head[] = "HTTP/1.1 101 Switching Protocols" CRLF
                            "Upgrade: websocket" CRLF
                            "Connection: Upgrade" CRLF
                            "Sec-WebSocket-Accept: ";
    static u_char  tail[] = CRLF "Sec-WebSocket-Protocol: sip" CRLF CRLF;

    p = ngx_cpymem(p, head, sizeof(head) - 1);

    if (ngx_sip_ws_accept(&hs->key, p) != NGX_OK) {
        return NULL;
    }

    p += NGX_SIP_WS_ACCEPT_LEN;

    return ngx_cpymem(p, tail, sizeof(tail) - 1);
}


/*
 * A refusal (hs->status and hs->reason, or 403 for an Origin the caller
 * does not allow), the reason as its body; NULL if it does not fit.
 */

u_char *
ngx_sip_ws_http_error(u_char *p, u_char *last, ngx_uint_t status,
    char *reason)
{
    size_t   len, rlen;
    char    *text, *extra;

    switch (status) {
    case 403:
        text = "Forbidden";
        break;
    case 426:
        text = "Upgrade Required";
        break;
    case 500:
        text = "Internal Server Error";
        break;
    case 503:
        text = "Service Unavailable";
        break;
    default:
        status = 400;
        text = "Bad Request";
        break;
    }

    /* RFC 6455 4.4: the versions we speak */

    extra = (status == 426) ? "Upgrade: websocket" CRLF
                              "Sec-WebSocket-Version: 13" CRLF
                            : "";

    rlen = ngx_strlen(reason);

    len = sizeof("HTTP/1.1 000 " CRLF) - 1 + ngx_strlen(text)
          + sizeof("Connection: close" CRLF) - 1 + ngx_strlen(extra)
          + sizeof("Content-Type: text/plain" CRLF) - 1
          + sizeof("Content-Length: " CRLF CRLF) - 1 + 20 + rlen + 1;

    if ((size_t) (last - p) < len) {
        return NULL;
    }

    p = ngx_cpymem(p, "HTTP/1.1 ", 9);
    p = ngx_sip_write_uint(p, status);
    *p++ = ' ';
    p = ngx_cpymem(p, text, ngx_strlen(text));
    p = ngx_cpymem(p, CRLF "Connection: close" CRLF,
                   sizeof(CRLF "Connection: close" CRLF) - 1);
    p = ngx_cpymem(p, extra, ngx_strlen(extra));
    p = ngx_cpymem(p, "Content-Type: text/plain" CRLF "Content-Length: ",
                   sizeof("Content-Type: text/plain" CRLF
                          "Content-Length: ") - 1);
    p = ngx_sip_write_uint(p, rlen + 1);
    p = ngx_cpymem(p, CRLF CRLF, 4);
    p = ngx_cpymem(p, reason, rlen);
    *p++ = LF;

    return p;
}


void
ngx_sip_ws_init(ngx_sip_ws_t *ws, size_t max)
{
    ngx_memzero(ws, sizeof(ngx_sip_ws_t));

    ws->max = max;
    ws->need = 2;
}


/*
 * The caller's buffer holds, from buf: the message decoded so far
 * (ws->out octets), then a gap, then the octets not decoded yet, from
 * ws->in to last.  NGX_OK: an event (ws->opcode); a message is
 * ws->payload at buf, a control frame's payload is in ws->ctl; either is
 * valid until the next call.  NGX_AGAIN: all read is decoded, no event;
 * ngx_sip_ws_compact() then makes room for more.  NGX_ERROR: fail the
 * connection with a close of ws->code.  NGX_DONE: the peer has closed.
 */

ngx_int_t
ngx_sip_ws_decode(ngx_sip_ws_t *ws, u_char *buf, u_char *last)
{
    size_t      n, i;
    u_char     *p, *d, *m;
    ngx_int_t   rc;

    if (ws->delivered) {
        ws->delivered = 0;
        ws->out = 0;
    }

    p = buf + ws->in;

    for ( ;; ) {

        switch (ws->state) {

        case NGX_SIP_WS_HEADER:

            while (ws->hlen < ws->need && p < last) {
                ws->hdr[ws->hlen++] = *p++;
            }

            if (ws->hlen < ws->need) {
                ws->in = p - buf;
                return NGX_AGAIN;
            }

            rc = ngx_sip_ws_header_done(ws);

            if (rc == NGX_AGAIN) {
                /* the extended length and the mask are still to come */
                break;
            }

            if (rc == NGX_ERROR) {
                ws->in = p - buf;
                return NGX_ERROR;
            }

            /* fall through */

        case NGX_SIP_WS_PAYLOAD:

            n = (size_t) ngx_min(ws->left, (uint64_t) (last - p));
            m = ws->mask;

            if (ws->frame & 0x8) {
                d = ws->ctl + ws->clen;
                ws->clen += n;

            } else {
                d = buf + ws->out;
                ws->out += n;
            }

            /* d <= p: a frame header has been left behind for each frame */

            for (i = 0; i < n; i++) {
                d[i] = p[i] ^ m[(ws->moff + i) & 3];
            }

            ws->moff = (ws->moff + n) & 3;
            ws->left -= n;
            p += n;

            if (ws->message == NGX_SIP_WS_TEXT && !(ws->frame & 0x8)
                && ngx_sip_ws_utf8_step(&ws->utf8, d, n) != NGX_OK)
            {
                ws->in = p - buf;
                return ngx_sip_ws_fail(ws, NGX_SIP_WS_INVALID_DATA,
                                       "invalid UTF-8 in a text message");
            }

            if (ws->left) {
                ws->in = p - buf;
                return NGX_AGAIN;
            }

            ws->state = NGX_SIP_WS_HEADER;
            ws->hlen = 0;
            ws->need = 2;

            rc = ngx_sip_ws_frame_done(ws, buf);

            if (rc != NGX_AGAIN) {
                ws->in = p - buf;
                return rc;
            }

            break;

        case NGX_SIP_WS_CLOSED:
            return NGX_DONE;

        default: /* NGX_SIP_WS_FAILED */
            return NGX_ERROR;
        }
    }
}


/*
 * The header's first two octets tell how many more there are
 * (NGX_AGAIN); all of them, the frame (NGX_OK) or the error.
 */

static ngx_int_t
ngx_sip_ws_header_done(ngx_sip_ws_t *ws)
{
    u_char      *h;
    uint64_t     len;
    ngx_uint_t   op, i;

    h = ws->hdr;
    op = h[0] & 0x0f;

    if (ws->hlen == 2) {

        /* no extension is ever negotiated */

        if (h[0] & 0x70) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "reserved bits set");
        }

        switch (op) {

        case NGX_SIP_WS_CONT:
            if (ws->message == 0) {
                return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                       "continuation without a message");
            }
            break;

        case NGX_SIP_WS_TEXT:
        case NGX_SIP_WS_BINARY:
            if (ws->message) {
                return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                       "new message inside a fragmented one");
            }
            break;

        case NGX_SIP_WS_CLOSE:
        case NGX_SIP_WS_PING:
        case NGX_SIP_WS_PONG:
            if (!(h[0] & 0x80)) {
                return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                       "fragmented control frame");
            }

            if ((h[1] & 0x7f) > NGX_SIP_WS_MAX_CONTROL) {
                return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                       "control frame too long");
            }
            break;

        default:
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "unknown opcode");
        }

        /* RFC 6455 5.1: a client masks every frame */

        if (!(h[1] & 0x80)) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "unmasked frame");
        }

        ws->need = 2 + ((h[1] & 0x7f) == 126 ? 2
                        : (h[1] & 0x7f) == 127 ? 8 : 0) + 4;

        return NGX_AGAIN;
    }

    len = h[1] & 0x7f;

    /* RFC 6455 5.2: lengths in the fewest octets, 63 bits at most */

    if (len == 126) {
        len = (uint64_t) h[2] << 8 | h[3];

        if (len < 126) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "frame length not minimally encoded");
        }

    } else if (len == 127) {
        if (h[2] & 0x80) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "frame length with the top bit set");
        }

        len = 0;

        for (i = 2; i < 10; i++) {
            len = len << 8 | h[i];
        }

        if (len < 65536) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "frame length not minimally encoded");
        }
    }

    if (!(op & 0x8) && len > ws->max - ws->out) {
        return ngx_sip_ws_fail(ws, NGX_SIP_WS_TOO_BIG, "message too big");
    }

    ngx_memcpy(ws->mask, h + ws->need - 4, 4);

    ws->fin = (h[0] & 0x80) ? 1 : 0;
    ws->left = len;
    ws->frame = op;
    ws->clen = 0;
    ws->moff = 0;
    ws->state = NGX_SIP_WS_PAYLOAD;

    if (op == NGX_SIP_WS_TEXT || op == NGX_SIP_WS_BINARY) {
        ws->message = op;
        ws->utf8 = 0;
    }

    return NGX_OK;
}


/* a whole frame: the event it makes, or NGX_AGAIN if none */

static ngx_int_t
ngx_sip_ws_frame_done(ngx_sip_ws_t *ws, u_char *buf)
{
    ngx_uint_t  state;

    switch (ws->frame) {

    case NGX_SIP_WS_PING:
    case NGX_SIP_WS_PONG:
        ws->opcode = ws->frame;
        ws->payload.data = ws->ctl;
        ws->payload.len = ws->clen;
        return NGX_OK;

    case NGX_SIP_WS_CLOSE:

        ws->opcode = NGX_SIP_WS_CLOSE;
        ws->payload.data = ws->ctl + 2;
        ws->payload.len = 0;

        if (ws->clen == 0) {
            ws->code = NGX_SIP_WS_NO_STATUS;
            ws->state = NGX_SIP_WS_CLOSED;
            return NGX_OK;
        }

        if (ws->clen == 1) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "close frame of one octet");
        }

        ws->code = (ngx_uint_t) ws->ctl[0] << 8 | ws->ctl[1];

        if (!ngx_sip_ws_close_code_valid(ws->code)) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_PROTOCOL_ERROR,
                                   "invalid close code");
        }

        state = 0;

        if (ngx_sip_ws_utf8_step(&state, ws->ctl + 2, ws->clen - 2) != NGX_OK
            || state != 0)
        {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_INVALID_DATA,
                                   "invalid UTF-8 in a close reason");
        }

        ws->payload.len = ws->clen - 2;
        ws->state = NGX_SIP_WS_CLOSED;

        return NGX_OK;

    default:

        if (!ws->fin) {
            return NGX_AGAIN;
        }

        if (ws->message == NGX_SIP_WS_TEXT && ws->utf8 != 0) {
            return ngx_sip_ws_fail(ws, NGX_SIP_WS_INVALID_DATA,
                                   "truncated UTF-8 in a text message");
        }

        ws->opcode = ws->message;
        ws->payload.data = buf;
        ws->payload.len = ws->out;
        ws->message = 0;
        ws->delivered = 1;

        return NGX_OK;
    }
}


static ngx_int_t
ngx_sip_ws_fail(ngx_sip_ws_t *ws, ngx_uint_t code, char *reason)
{
    ws->state = NGX_SIP_WS_FAILED;
    ws->code = code;
    ws->reason = reason;

    return NGX_ERROR;
}


/*
 * The octets not decoded yet moved down to the end of the message in
 * progress; the new end of the buffer's data.
 */

u_char *
ngx_sip_ws_compact(ngx_sip_ws_t *ws, u_char *buf, u_char *last)
{
    size_t  n;

    if (ws->delivered) {
        ws->delivered = 0;
        ws->out = 0;
    }

    n = last - (buf + ws->in);

    if (ws->in != ws->out) {
        ngx_memmove(buf + ws->out, buf + ws->in, n);
        ws->in = ws->out;
    }

    return buf + ws->in + n;
}


/*
 * UTF-8 (RFC 3629 4) checked as it comes: the state is the number of
 * continuation octets still expected, and the bounds of the next one,
 * which exclude overlong forms, surrogates and what is above U+10FFFF.
 */

static ngx_int_t
ngx_sip_ws_utf8_step(ngx_uint_t *state, u_char *p, size_t len)
{
    u_char      *end;
    ngx_uint_t   c, need, lo, hi;

    need = *state & 0xff;
    lo = (*state >> 8) & 0xff;
    hi = (*state >> 16) & 0xff;

    for (end = p + len; p < end; p++) {
        c = *p;

        if (need == 0) {
            if (c < 0x80) {
                continue;
            }

            lo = 0x80;
            hi = 0xbf;

            if (c < 0xc2) {
                return NGX_ERROR;
            }

            if (c < 0xe0) {
                need = 1;

            } else if (c < 0xf0) {
                need = 2;
                lo = (c == 0xe0) ? 0xa0 : 0x80;
                hi = (c == 0xed) ? 0x9f : 0xbf;

            } else if (c < 0xf5) {
                need = 3;
                lo = (c == 0xf0) ? 0x90 : 0x80;
                hi = (c == 0xf4) ? 0x8f : 0xbf;

            } else {
                return NGX_ERROR;
            }

            continue;
        }

        if (c < lo || c > hi) {
            return NGX_ERROR;
        }

        need--;
        lo = 0x80;
        hi = 0xbf;
    }

    *state = need ? (need | lo << 8 | hi << 16) : 0;

    return NGX_OK;
}


ngx_uint_t
ngx_sip_ws_utf8(u_char *p, size_t len)
{
    ngx_uint_t  state;

    state = 0;

    return ngx_sip_ws_utf8_step(&state, p, len) == NGX_OK && state == 0;
}


/*
 * RFC 6455 7.4: the codes an endpoint may send, with 1012-1014 that IANA
 * registered since; 1004-1006 and 1015 never go on the wire.
 */

static ngx_uint_t
ngx_sip_ws_close_code_valid(ngx_uint_t code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}


/* our frames: never masked (RFC 6455 5.1), never fragmented */

u_char *
ngx_sip_ws_frame_header(u_char *p, ngx_uint_t opcode, size_t len)
{
    ngx_uint_t  i;

    *p++ = (u_char) (0x80 | opcode);

    if (len < 126) {
        *p++ = (u_char) len;

    } else if (len <= 0xffff) {
        *p++ = 126;
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) len;

    } else {
        *p++ = 127;

        for (i = 8; i-- > 0; /* void */) {
            *p++ = (u_char) ((uint64_t) len >> (i * 8));
        }
    }

    return p;
}


/*
 * A close frame, at most 2 + NGX_SIP_WS_MAX_CONTROL octets; the reason
 * (ASCII, ours) is cut to fit.  1005 is never sent: an empty payload.
 */

u_char *
ngx_sip_ws_close_frame(u_char *p, ngx_uint_t code, char *reason)
{
    size_t  len;

    if (code == 0 || code == NGX_SIP_WS_NO_STATUS) {
        return ngx_sip_ws_frame_header(p, NGX_SIP_WS_CLOSE, 0);
    }

    len = reason ? ngx_strlen(reason) : 0;
    len = ngx_min(len, NGX_SIP_WS_MAX_CONTROL - 2);

    p = ngx_sip_ws_frame_header(p, NGX_SIP_WS_CLOSE, 2 + len);

    *p++ = (u_char) (code >> 8);
    *p++ = (u_char) code;

    return ngx_cpymem(p, reason, len);
}
