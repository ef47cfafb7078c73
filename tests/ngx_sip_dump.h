
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_SIP_DUMP_H_INCLUDED_
#define _NGX_SIP_DUMP_H_INCLUDED_


/*
 * What the SIP core makes of an input, one line per fact: the framer
 * (whole, in 7-octet reads, with a size limit), the parse as a datagram
 * and as a stream, validation, and every structured header line.  Slices
 * are printed as offset+length into the input, so that two builds of the
 * core can be compared: bench/parser/parse_dump.c (a corpus against a git
 * revision, bench/parser/diff.sh) and tests/fuzz_diff.c (libFuzzer).
 */


#include <stdio.h>


#define DUMP_MAX_SIZE  65536

/*
 * What the message, a Via and an address hold before a parser is given
 * them: not zero (the glue does not clear them), so that a field that a
 * parser leaves unwritten, on any return, shows in the dump.
 */
#define DUMP_POISON    0xa5


/* the core's entry points, so that a renamed second copy can be dumped */

typedef struct {
    void       (*frame_init)(ngx_sip_frame_t *f);
    ngx_int_t  (*frame)(ngx_sip_frame_t *f, u_char *start, u_char *last,
                   size_t max_size, ngx_sip_error_t *err);
    ngx_int_t  (*parse_message)(ngx_sip_msg_t *m, u_char *start,
                   u_char *last, ngx_uint_t stream, ngx_sip_error_t *err);
    ngx_int_t  (*validate)(ngx_sip_msg_t *m, ngx_sip_error_t *err);
    ngx_int_t  (*parse_via)(u_char **pos, u_char *end, ngx_sip_via_t *via);
    ngx_int_t  (*parse_addr)(u_char **pos, u_char *end, ngx_sip_addr_t *addr,
                   ngx_uint_t list);
    ngx_int_t  (*parse_cseq)(ngx_str_t *value, ngx_sip_cseq_t *cseq);
} ngx_sip_dump_ops_t;


/* the core this is built with */

static ngx_sip_dump_ops_t  ngx_sip_dump_core = {
    ngx_sip_frame_init,
    ngx_sip_frame,
    ngx_sip_parse_message,
    ngx_sip_msg_validate,
    ngx_sip_parse_via,
    ngx_sip_parse_addr,
    ngx_sip_parse_cseq
};


static ngx_sip_header_t     dump_headers[NGX_SIP_MAX_HEADERS];
static u_char              *dump_base;
static FILE                *dump_out;
static ngx_sip_dump_ops_t  *dump_ops;

#define dump_p(...)  fprintf(dump_out, __VA_ARGS__)


static void
dump_str(const char *what, ngx_str_t *s)
{
    if (s->data == NULL) {
        dump_p(" %s=-", what);
        return;
    }

    dump_p(" %s=%ld+%zu", what, (long) (s->data - dump_base), s->len);
}


static void
dump_uri(const char *what, ngx_sip_uri_t *u)
{
    dump_p("  %s:", what);
    dump_str("text", &u->text);
    dump_str("scheme", &u->scheme);
    dump_str("user", &u->user);
    dump_str("password", &u->password);
    dump_str("host", &u->host);
    dump_str("port_text", &u->port_text);
    dump_str("params", &u->params);
    dump_str("headers", &u->headers);
    dump_str("transport", &u->transport);
    dump_str("maddr", &u->maddr);
    dump_str("user_param", &u->user_param);
    dump_str("opaque", &u->opaque);
    dump_p(" scheme_id=%lu host_type=%lu port=%u lr=%u\n",
           (unsigned long) u->scheme_id, (unsigned long) u->host_type,
           (unsigned) u->port, (unsigned) u->lr);
}


static void
dump_via(ngx_sip_via_t *v)
{
    dump_p("  via:");
    dump_str("text", &v->text);
    dump_str("protocol", &v->protocol);
    dump_str("transport", &v->transport);
    dump_str("host", &v->host);
    dump_str("port_text", &v->port_text);
    dump_str("params", &v->params);
    dump_str("branch", &v->branch);
    dump_str("received", &v->received);
    dump_str("rport_text", &v->rport_text);
    dump_str("maddr", &v->maddr);
    dump_str("ttl", &v->ttl);
    dump_p(" host_type=%lu port=%u rport=%u has_rport=%u\n",
           (unsigned long) v->host_type, (unsigned) v->port,
           (unsigned) v->rport, (unsigned) v->has_rport);
}


static void
dump_addr(const char *what, ngx_sip_addr_t *a)
{
    dump_p("  %s:", what);
    dump_str("text", &a->text);
    dump_str("display", &a->display);
    dump_str("uri_text", &a->uri_text);
    dump_str("params", &a->params);
    dump_str("tag", &a->tag);
    dump_str("expires_text", &a->expires_text);
    dump_str("q_text", &a->q_text);
    dump_p(" q=%lu expires=%u has_expires=%u has_q=%u angle=%u star=%u\n",
           (unsigned long) a->q, (unsigned) a->expires,
           (unsigned) a->has_expires, (unsigned) a->has_q,
           (unsigned) a->angle, (unsigned) a->star);
    dump_uri("uri", &a->uri);
}


static void
dump_error(const char *what, ngx_int_t rc, ngx_sip_error_t *err)
{
    dump_p(" %s: rc=%ld status=%lu reason=\"%.*s\" header=\"%.*s\"\n", what,
           (long) rc, (unsigned long) err->status, (int) err->reason.len,
           err->reason.data ? (char *) err->reason.data : "",
           (int) err->header.len,
           err->header.data ? (char *) err->header.data : "");
}


/* past LWS and the comma before the next element of a list, if any */

static ngx_uint_t
dump_next(u_char **pos, u_char *end)
{
    u_char  *p;

    for (p = *pos; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != CR && *p != LF) {
            break;
        }
    }

    if (p == end || *p != ',') {
        return 0;
    }

    *pos = p + 1;

    return 1;
}


/* every element of every header line that has a structured parser */

static void
dump_lists(ngx_sip_msg_t *m)
{
    u_char            *p, *end;
    ngx_int_t          rc;
    ngx_uint_t         i, n;
    ngx_sip_via_t      via;
    ngx_sip_addr_t     addr;
    ngx_sip_cseq_t     cseq;
    ngx_sip_header_t  *h;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        p = h->value.data;
        end = p + h->value.len;

        switch (h->id) {

        case NGX_SIP_HDR_VIA:
            for (n = 0; n < 64; n++) {
                ngx_memset(&via, DUMP_POISON, sizeof(ngx_sip_via_t));
                rc = dump_ops->parse_via(&p, end, &via);
                dump_p("  via#%lu rc=%ld at=%ld\n", (unsigned long) n,
                       (long) rc, (long) (p - dump_base));
                dump_via(&via);
                if (rc != NGX_OK) {
                    break;
                }
                if (!dump_next(&p, end)) {
                    break;
                }
            }
            break;

        case NGX_SIP_HDR_FROM:
        case NGX_SIP_HDR_TO:
        case NGX_SIP_HDR_CONTACT:
        case NGX_SIP_HDR_ROUTE:
        case NGX_SIP_HDR_RECORD_ROUTE:
        case NGX_SIP_HDR_PATH:
            for (n = 0; n < 64; n++) {
                ngx_memset(&addr, DUMP_POISON, sizeof(ngx_sip_addr_t));
                rc = dump_ops->parse_addr(&p, end, &addr, 1);
                dump_p("  addr#%lu rc=%ld at=%ld\n", (unsigned long) n,
                       (long) rc, (long) (p - dump_base));
                dump_addr("addr", &addr);
                if (rc != NGX_OK) {
                    break;
                }
                if (!dump_next(&p, end)) {
                    break;
                }
            }
            break;

        case NGX_SIP_HDR_CSEQ:
            ngx_memzero(&cseq, sizeof(ngx_sip_cseq_t));
            rc = dump_ops->parse_cseq(&h->value, &cseq);
            dump_p("  cseq rc=%ld number=%u method_id=%lu", (long) rc,
                   (unsigned) cseq.number, (unsigned long) cseq.method_id);
            dump_str("method", &cseq.method);
            dump_p("\n");
            break;
        }
    }
}


static void
dump_frame(u_char *buf, size_t len)
{
    size_t            chunk, off;
    ngx_int_t         rc;
    ngx_sip_error_t   err;
    ngx_sip_frame_t   f;

    /* whole, then 7 octets at a time as a TCP reader might see it */

    dump_ops->frame_init(&f);
    ngx_memzero(&err, sizeof(ngx_sip_error_t));
    rc = dump_ops->frame(&f, buf, buf + len, DUMP_MAX_SIZE, &err);
    dump_p(" frame whole: message_len=%zu header_len=%zu crlf=%lu",
           f.message_len, f.header_len, (unsigned long) f.crlf);
    dump_error("", rc, &err);

    dump_ops->frame_init(&f);
    ngx_memzero(&err, sizeof(ngx_sip_error_t));
    rc = NGX_AGAIN;

    for (off = 0; off < len && rc == NGX_AGAIN; off += chunk) {
        chunk = ngx_min(7, len - off);
        rc = dump_ops->frame(&f, buf, buf + off + chunk, DUMP_MAX_SIZE, &err);
    }

    dump_p(" frame chunked: message_len=%zu header_len=%zu crlf=%lu",
           f.message_len, f.header_len, (unsigned long) f.crlf);
    dump_error("", rc, &err);

    /* with a size limit that most inputs exceed: where it stops */

    dump_ops->frame_init(&f);
    ngx_memzero(&err, sizeof(ngx_sip_error_t));
    rc = dump_ops->frame(&f, buf, buf + len, 200, &err);
    dump_p(" frame max 200: message_len=%zu header_len=%zu crlf=%lu"
           " scanned=%zu", f.message_len, f.header_len,
           (unsigned long) f.crlf, f.scanned);
    dump_error("", rc, &err);
}


static void
ngx_sip_dump(FILE *out, ngx_sip_dump_ops_t *ops, u_char *buf, size_t len)
{
    ngx_int_t          rc;
    ngx_uint_t         i, stream;
    ngx_sip_msg_t      m;
    ngx_sip_error_t    err;
    ngx_sip_header_t  *h;

    dump_out = out;
    dump_ops = ops;

    dump_base = buf;

    dump_frame(buf, len);

    for (stream = 0; stream < 2; stream++) {
        ngx_memset(&m, DUMP_POISON, sizeof(ngx_sip_msg_t));
        m.headers = dump_headers;
        m.max_headers = NGX_SIP_MAX_HEADERS;

        rc = dump_ops->parse_message(&m, buf, buf + len, stream, &err);
        dump_p(" stream=%lu", (unsigned long) stream);
        dump_error("parse", rc, &err);

        if (stream == 0) {
            dump_p(" request=%u method_id=%lu status=%lu version_n=%lu"
                   " nheaders=%lu content_length=%zu max_forwards=%ld",
                   (unsigned) m.request, (unsigned long) m.method_id,
                   (unsigned long) m.status, (unsigned long) m.version_n,
                   (unsigned long) m.nheaders, m.content_length,
                   (long) m.max_forwards);
            dump_str("method", &m.method);
            dump_str("request_uri", &m.request_uri);
            dump_str("reason", &m.reason);
            dump_str("version", &m.version);
            dump_str("body", &m.body);
            dump_p(" headers_end=%ld end=%ld\n",
                   m.headers_end ? (long) (m.headers_end - buf) : -1L,
                   m.end ? (long) (m.end - buf) : -1L);

            for (i = 0; i < m.nheaders; i++) {
                h = &m.headers[i];
                dump_p("  h%lu id=%lu", (unsigned long) i,
                       (unsigned long) h->id);
                dump_str("name", &h->name);
                dump_str("value", &h->value);
                dump_p("\n");
            }
        }

        if (m.start == m.end && rc != NGX_SIP_OK) {
            continue;
        }

        rc = dump_ops->validate(&m, &err);
        dump_error("validate", rc, &err);

        if (stream == 0) {
            dump_p(" call_id");
            dump_str("", &m.call_id);
            dump_p(" max_forwards=%ld\n", (long) m.max_forwards);
            dump_uri("ruri", &m.ruri);
            dump_via(&m.via);
            dump_addr("from", &m.from);
            dump_addr("to", &m.to);
            dump_p("  cseq number=%u method_id=%lu",
                   (unsigned) m.cseq.number,
                   (unsigned long) m.cseq.method_id);
            dump_str("method", &m.cseq.method);
            dump_p("\n");
            dump_lists(&m);
        }
    }
}




#endif /* _NGX_SIP_DUMP_H_INCLUDED_ */
