
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * libFuzzer target of the SIP core: the input is parsed as a UDP datagram
 * and as a TCP stream (framed whole and in chunks), validated, every
 * header that has a structured parser is run through it, and a response
 * is built as the glue would.  Besides the sanitizers, every slice the
 * parser returns is checked to lie within the input.
 */


#include "ngx_sip.h"

#include <stdlib.h>


#define FUZZ_MAX_SIZE  4096


static ngx_sip_header_t  fuzz_headers[NGX_SIP_MAX_HEADERS];

static void fuzz_forward(ngx_sip_msg_t *m);
static void fuzz_hop(ngx_sip_msg_t *inv);


#define fuzz_assert(cond)                                                    \
    if (!(cond)) {                                                           \
        __builtin_trap();                                                    \
    }


static void
fuzz_in(ngx_str_t *s, u_char *start, u_char *last)
{
    if (s->len == 0) {
        return;
    }

    fuzz_assert(s->data >= start && s->data + s->len <= last);
}


static void
fuzz_uri(ngx_sip_uri_t *uri, u_char *start, u_char *last)
{
    u_char     buf[FUZZ_MAX_SIZE];
    size_t     len;
    ngx_str_t  value;

    fuzz_in(&uri->text, start, last);
    fuzz_in(&uri->scheme, start, last);
    fuzz_in(&uri->user, start, last);
    fuzz_in(&uri->password, start, last);
    fuzz_in(&uri->host, start, last);
    fuzz_in(&uri->port_text, start, last);
    fuzz_in(&uri->params, start, last);
    fuzz_in(&uri->headers, start, last);
    fuzz_in(&uri->transport, start, last);
    fuzz_in(&uri->maddr, start, last);
    fuzz_in(&uri->user_param, start, last);
    fuzz_in(&uri->opaque, start, last);

    if (uri->user.len <= sizeof(buf)) {
        len = 0;

        if (ngx_sip_unescape(&uri->user, buf, &len) == NGX_OK) {
            fuzz_assert(len <= uri->user.len);
        }
    }

    if (ngx_sip_uri_param(&uri->params, "transport", &value) == NGX_OK) {
        fuzz_in(&value, start, last);
    }

    if (ngx_sip_uri_param(&uri->params, "lr", &value) == NGX_OK) {
        fuzz_in(&value, start, last);
    }
}


static void
fuzz_addr(ngx_sip_addr_t *addr, u_char *start, u_char *last)
{
    ngx_str_t  value;

    fuzz_in(&addr->text, start, last);
    fuzz_in(&addr->display, start, last);
    fuzz_in(&addr->uri_text, start, last);
    fuzz_in(&addr->params, start, last);
    fuzz_in(&addr->tag, start, last);
    fuzz_in(&addr->expires_text, start, last);
    fuzz_in(&addr->q_text, start, last);

    fuzz_uri(&addr->uri, start, last);

    if (ngx_sip_param(&addr->params, "tag", &value) == NGX_OK) {
        fuzz_in(&value, start, last);
    }
}


static void
fuzz_via(ngx_sip_via_t *via, u_char *start, u_char *last)
{
    ngx_str_t  value;

    fuzz_in(&via->text, start, last);
    fuzz_in(&via->protocol, start, last);
    fuzz_in(&via->transport, start, last);
    fuzz_in(&via->host, start, last);
    fuzz_in(&via->port_text, start, last);
    fuzz_in(&via->params, start, last);
    fuzz_in(&via->branch, start, last);
    fuzz_in(&via->received, start, last);
    fuzz_in(&via->rport_text, start, last);
    fuzz_in(&via->maddr, start, last);
    fuzz_in(&via->ttl, start, last);

    if (ngx_sip_param(&via->params, "branch", &value) == NGX_OK) {
        fuzz_in(&value, start, last);
    }
}


/* every structured parser on every header value that has one */

static void
fuzz_headers_parse(ngx_sip_msg_t *m, u_char *start, u_char *last)
{
    u_char            *p, *end, *prev;
    uint32_t           n;
    ngx_str_t          token;
    ngx_uint_t         i, k;
    ngx_sip_via_t      via;
    ngx_sip_uri_t      uri;
    ngx_sip_addr_t     addr;
    ngx_sip_cseq_t     cseq;
    ngx_sip_header_t  *h;

    if (m->request_uri.len) {
        fuzz_in(&m->request_uri, start, last);

        if (ngx_sip_parse_uri(m->request_uri.data,
                              m->request_uri.data + m->request_uri.len,
                              &uri)
            == NGX_OK)
        {
            fuzz_uri(&uri, start, last);
        }
    }

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        fuzz_in(&h->name, start, last);
        fuzz_in(&h->value, start, last);
        fuzz_assert(h->start >= start && h->end <= last && h->start < h->end);
        fuzz_assert(h->id < NGX_SIP_HDR_MAX);

        p = h->value.data;
        end = p + h->value.len;

        switch (h->id) {

        case NGX_SIP_HDR_VIA:
            for (k = 0; k < 64 && p < end; k++) {
                prev = p;

                if (ngx_sip_parse_via(&p, end, &via) != NGX_OK) {
                    break;
                }

                fuzz_assert(p >= prev && p <= end);
                fuzz_via(&via, start, last);

                while (p < end && (*p == ',' || *p == ' ' || *p == '\t'
                                   || *p == CR || *p == LF))
                {
                    p++;
                }
            }

            break;

        case NGX_SIP_HDR_FROM:
        case NGX_SIP_HDR_TO:
        case NGX_SIP_HDR_CONTACT:
        case NGX_SIP_HDR_ROUTE:
        case NGX_SIP_HDR_RECORD_ROUTE:
        case NGX_SIP_HDR_PATH:
        case NGX_SIP_HDR_REFER_TO:
        case NGX_SIP_HDR_REFERRED_BY:
            for (k = 0; k < 64 && p < end; k++) {
                prev = p;

                if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK) {
                    break;
                }

                fuzz_assert(p >= prev && p <= end);
                fuzz_addr(&addr, start, last);

                while (p < end && (*p == ',' || *p == ' ' || *p == '\t'
                                   || *p == CR || *p == LF))
                {
                    p++;
                }
            }

            break;

        case NGX_SIP_HDR_CSEQ:
            if (ngx_sip_parse_cseq(&h->value, &cseq) == NGX_OK) {
                fuzz_in(&cseq.method, start, last);
            }

            break;

        case NGX_SIP_HDR_MAX_FORWARDS:
        case NGX_SIP_HDR_EXPIRES:
        case NGX_SIP_HDR_MIN_EXPIRES:
        case NGX_SIP_HDR_CONTENT_LENGTH:
            (void) ngx_sip_parse_uint32(&h->value, &n);
            break;

        case NGX_SIP_HDR_REQUIRE:
        case NGX_SIP_HDR_PROXY_REQUIRE:
        case NGX_SIP_HDR_SUPPORTED:
        case NGX_SIP_HDR_ALLOW:
            for (k = 0; k < 64 && p < end; k++) {
                prev = p;

                if (ngx_sip_parse_token(&p, end, &token) != NGX_OK) {
                    break;
                }

                fuzz_assert(p >= prev && p <= end);
                fuzz_in(&token, start, last);

                if (p == prev) {
                    p++;
                }
            }

            break;
        }
    }
}


/* what the glue does with a parsed message: answer a request */

static void
fuzz_respond(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    u_char          *buf, *p;
    size_t           size;
    ngx_sip_resp_t   r;

    if (!m->request || m->hdr[NGX_SIP_HDR_VIA] == NULL
        || m->method_id == NGX_SIP_ACK)
    {
        return;
    }

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));

    r.status = err->status ? err->status : 200;
    r.reason = err->status ? err->reason : (ngx_str_t) ngx_string("OK");
    ngx_str_set(&r.received, "192.0.2.1");
    r.rport = 5060;
    ngx_str_set(&r.to_tag, "fuzztag");

    if (err->header.len) {
        r.extra = err->header;
    }

    size = ngx_sip_response_size(m, &r);

    buf = malloc(size);
    fuzz_assert(buf != NULL);

    p = ngx_sip_write_response(buf, m, &r);

    fuzz_assert(p >= buf && (size_t) (p - buf) <= size);

    free(buf);
}


static void
fuzz_message(u_char *start, u_char *last, ngx_uint_t stream)
{
    ngx_int_t        rc, prc;
    ngx_sip_msg_t    m;
    ngx_sip_error_t  err, verr;

    m.headers = fuzz_headers;
    m.max_headers = NGX_SIP_MAX_HEADERS;

    rc = ngx_sip_parse_message(&m, start, last, stream, &err);
    prc = rc;

    fuzz_assert(m.nheaders <= NGX_SIP_MAX_HEADERS);
    fuzz_assert(m.start >= start && m.start <= last);
    fuzz_assert(m.end >= m.start && m.end <= last);
    fuzz_assert(rc == NGX_SIP_OK || rc == NGX_SIP_ERROR);
    fuzz_assert(rc == NGX_SIP_OK || err.reason.len);

    if (rc == NGX_SIP_OK) {
        fuzz_assert(m.headers_end >= m.start && m.headers_end <= m.end);
        fuzz_assert(m.body.data == m.headers_end);
        fuzz_assert(m.body.data + m.body.len == m.end);
        fuzz_assert(m.request || (m.status >= 100 && m.status <= 699));

        /* the parser agrees with the framer on a framed message */

        fuzz_assert(!stream || m.end == last);
    }

    fuzz_in(&m.method, start, last);
    fuzz_in(&m.request_uri, start, last);
    fuzz_in(&m.reason, start, last);
    fuzz_in(&m.version, start, last);
    fuzz_in(&m.body, start, last);

    fuzz_headers_parse(&m, start, last);

    /* the glue validates a message that failed to parse, too */

    rc = ngx_sip_msg_validate(&m, &verr);

    fuzz_assert(rc == NGX_OK || verr.status >= 400);
    fuzz_assert(verr.header.len <= sizeof(verr.header_buf));

    fuzz_in(&m.call_id, start, last);
    fuzz_via(&m.via, start, last);
    fuzz_addr(&m.from, start, last);
    fuzz_addr(&m.to, start, last);
    fuzz_in(&m.cseq.method, start, last);
    fuzz_uri(&m.ruri, start, last);

    fuzz_assert(m.max_forwards >= -1 && m.max_forwards <= 255);

    fuzz_respond(&m, rc == NGX_OK ? &err : &verr);

    if (prc == NGX_SIP_OK && rc == NGX_OK) {
        fuzz_forward(&m);
    }
}


/*
 * What a proxy makes of a valid message must be valid again: forwarded
 * requests and responses are parsed and validated once more.
 */

static ngx_sip_header_t  fuzz_out_headers[NGX_SIP_MAX_HEADERS];

static void
fuzz_forward(ngx_sip_msg_t *m)
{
    u_char             *buf, *p, branch[NGX_SIP_BRANCH_LEN], via[128];
    size_t              size, n;
    ngx_sip_msg_t       out;
    ngx_sip_error_t     err;
    ngx_sip_forward_t   f;

    static u_char  key[16] = "fuzzing key 0123";

    if (m->request && (m->method_id == NGX_SIP_ACK || m->max_forwards == 0)) {
        return;
    }

    ngx_memzero(&f, sizeof(ngx_sip_forward_t));

    if (m->request) {
        n = ngx_sip_branch_make(branch, m, 1, key);
        fuzz_assert(n == NGX_SIP_BRANCH_LEN);

        f.via.data = via;
        f.via.len = ngx_cpymem(ngx_cpymem(via,
                                   "SIP/2.0/UDP 127.0.0.1:5060;branch=", 34),
                               branch, n) - via;
        ngx_str_set(&f.record_route, "<sip:127.0.0.1:5060;lr>");
        f.pop_route = (m->hdr[NGX_SIP_HDR_ROUTE] != NULL);

        size = ngx_sip_forward_size(m, &f);

    } else {
        size = m->end - m->start;
    }

    buf = malloc(size);
    if (buf == NULL) {
        return;
    }

    p = m->request ? ngx_sip_forward_request(buf, m, &f)
                   : ngx_sip_forward_response(buf, m);

    fuzz_assert((size_t) (p - buf) <= size);

    out.headers = fuzz_out_headers;
    out.max_headers = NGX_SIP_MAX_HEADERS;

    /* a response with one Via is not forwarded by anyone: no check */

    if (m->request || m->count[NGX_SIP_HDR_VIA] > 1
        || m->hdr[NGX_SIP_HDR_VIA]->value.len > m->via.text.len + 8)
    {
        fuzz_assert(ngx_sip_parse_message(&out, buf, p, 0, &err)
                    == NGX_SIP_OK
                    || (!m->request && err.status == 400));

        if (m->request) {
            fuzz_assert(ngx_sip_msg_validate(&out, &err) == NGX_OK
                        || err.status == 513
                        || (err.status == 483 && out.max_forwards == 0));
            fuzz_assert(out.max_forwards == (m->max_forwards < 0 ? 70
                                             : m->max_forwards - 1));

            if (m->method_id == NGX_SIP_INVITE && out.via.text.len) {
                fuzz_hop(&out);
            }
        }
    }

    free(buf);
}


static void
fuzz_stream(u_char *data, size_t size, size_t max_size)
{
    u_char           *start, *last;
    size_t            pos, end, chunk;
    ngx_int_t         rc;
    ngx_uint_t        pings;
    ngx_sip_frame_t   f, whole;
    ngx_sip_error_t   err;

    start = data;
    last = data + size;

    /* pipelined messages, each framed whole and then in chunks */

    while (start < last) {
        ngx_sip_frame_init(&whole);

        rc = ngx_sip_frame(&whole, start, last, max_size, &err);

        fuzz_assert(whole.scanned <= (size_t) (last - start));
        fuzz_assert(whole.pings <= whole.crlf);

        if (rc == NGX_SIP_ERROR) {
            fuzz_assert(err.status == 400 || err.status == 513);

            /* the glue answers from the headers it has */

            end = whole.header_len ? whole.header_len : (size_t) (last - start);
            fuzz_assert(whole.crlf <= end);
            fuzz_message(start + whole.crlf, start + end, 0);
            return;
        }

        /* the same result, in chunks of a size the input chooses */

        chunk = (*start % 13) + 1;
        ngx_sip_frame_init(&f);
        pings = 0;

        for (pos = chunk; ; pos += chunk) {
            end = ngx_min(pos, (size_t) (last - start));

            rc = ngx_sip_frame(&f, start, start + end, max_size, &err);

            fuzz_assert(f.pings >= pings);
            pings = f.pings;

            if (rc != NGX_SIP_AGAIN || end == (size_t) (last - start)) {
                break;
            }
        }

        fuzz_assert(f.crlf == whole.crlf && f.pings == whole.pings);

        if (rc != NGX_SIP_OK) {
            return;
        }

        fuzz_assert(f.message_len == whole.message_len);
        fuzz_assert(f.header_len == whole.header_len);
        fuzz_assert(whole.crlf + whole.message_len <= (size_t) (last - start));
        fuzz_assert(whole.message_len <= max_size);

        fuzz_message(start + whole.crlf,
                     start + whole.crlf + whole.message_len, 1);

        start += whole.crlf + whole.message_len;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *buf;

    /* a copy of the exact size, so that any overread is caught */

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);

    fuzz_message(buf, buf + size, 0);

    fuzz_stream(buf, size, FUZZ_MAX_SIZE);

    /* a limit small enough to be hit */

    fuzz_stream(buf, size, 512);

    free(buf);

    return 0;
}


/* CANCEL and ACK made from a forwarded INVITE are valid requests */

static ngx_sip_header_t  fuzz_hop_headers[NGX_SIP_MAX_HEADERS];

static void
fuzz_hop(ngx_sip_msg_t *inv)
{
    u_char           *buf, *p;
    size_t            size;
    ngx_uint_t        ack;
    ngx_sip_msg_t     out;
    ngx_sip_error_t   err;

    for (ack = 0; ack < 2; ack++) {
        size = ngx_sip_hop_request_size(inv, ack ? inv : NULL);

        buf = malloc(size);
        if (buf == NULL) {
            return;
        }

        p = ngx_sip_write_hop_request(buf, inv, ack ? inv : NULL);

        fuzz_assert((size_t) (p - buf) <= size);

        out.headers = fuzz_hop_headers;
        out.max_headers = NGX_SIP_MAX_HEADERS;

        fuzz_assert(ngx_sip_parse_message(&out, buf, p, 0, &err)
                    == NGX_SIP_OK);
        fuzz_assert(ngx_sip_msg_validate(&out, &err) == NGX_OK);
        fuzz_assert(out.cseq.number == inv->cseq.number);

        free(buf);
    }
}
