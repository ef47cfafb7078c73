
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * The message transformations of a proxy (RFC 3261 16.6, 16.7): a request
 * goes on with our Via on top, our Record-Route, one Route value less and
 * Max-Forwards one lower; a response goes back with its top Via removed.
 * Everything else is copied as it came, unknown headers and folds
 * included, so nothing is lost in the middle.
 *
 * Our branch (16.6 step 8) carries, after the magic cookie, a hash of
 * what loop detection compares (16.3 step 4), the caller's own bits and
 * a SipHash-2-4 tag over both with a secret key: any worker holding the
 * key knows a branch it made, and a request that comes back unchanged
 * through us is a loop.
 */


static u_char *ngx_sip_write_tail(u_char *p, ngx_sip_msg_t *m);
static u_char *ngx_sip_write_header(u_char *p, char *name, ngx_str_t *value);
static uint32_t ngx_sip_loop_hash(ngx_sip_msg_t *m);


#define NGX_SIP_BRANCH_PREFIX      "z9hG4bK-ngx"
#define NGX_SIP_BRANCH_PREFIX_LEN  (sizeof(NGX_SIP_BRANCH_PREFIX) - 1)


size_t
ngx_sip_forward_size(ngx_sip_msg_t *m, ngx_sip_forward_t *f)
{
    return (m->end - m->start)
           + f->ruri.len
           + sizeof("Via: " CRLF) + f->via.len
           + sizeof("Record-Route: " CRLF) + f->record_route.len
           + sizeof("Route: " CRLF) + f->route.len
           + sizeof("Route: <>" CRLF) + f->append_route.len
           + sizeof("Max-Forwards: 70" CRLF)
           + sizeof("Via: ;received=;rport=65535") + f->received.len;
}


u_char *
ngx_sip_forward_request(u_char *p, ngx_sip_msg_t *m, ngx_sip_forward_t *f)
{
    u_char            *v, *end;
    ngx_uint_t         i, popped, rr_done, top_via;
    ngx_sip_addr_t     addr;
    ngx_sip_header_t  *h;

    /* request line */

    p = ngx_cpymem(p, m->method.data, m->method.len);
    *p++ = ' ';

    if (f->ruri.len) {
        p = ngx_cpymem(p, f->ruri.data, f->ruri.len);

    } else {
        p = ngx_cpymem(p, m->request_uri.data, m->request_uri.len);
    }

    *p++ = ' ';
    p = ngx_cpymem(p, "SIP/2.0" CRLF, sizeof("SIP/2.0" CRLF) - 1);

    /* our Via first, a line of its own */

    p = ngx_cpymem(p, "Via: ", 5);
    p = ngx_cpymem(p, f->via.data, f->via.len);
    *p++ = CR; *p++ = LF;

    /* a route set of the target (a registered Path) goes before any other */

    if (f->route.len) {
        p = ngx_cpymem(p, "Route: ", 7);
        p = ngx_cpymem(p, f->route.data, f->route.len);
        *p++ = CR; *p++ = LF;
    }

    popped = 0;
    rr_done = (f->record_route.len == 0);
    top_via = (f->received.len || f->rport) && m->via.text.len;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (f->drop == i + 1) {

            /* credentials for us go no further (RFC 3261 22.3) */
            continue;
        }

        switch (h->id) {

        case NGX_SIP_HDR_VIA:

            if (top_via) {
                p = ngx_cpymem(p, "Via: ", 5);
                p = ngx_sip_write_top_via(p, m, h, &f->received, f->rport);
                *p++ = CR; *p++ = LF;
                top_via = 0;
                continue;
            }

            break;

        case NGX_SIP_HDR_MAX_FORWARDS:
            p = ngx_cpymem(p, "Max-Forwards: ", 14);
            p = ngx_sip_write_uint(p, m->max_forwards > 0
                                      ? (ngx_uint_t) m->max_forwards - 1 : 0);
            *p++ = CR; *p++ = LF;
            continue;

        case NGX_SIP_HDR_RECORD_ROUTE:

            /* ours goes on top of the Record-Routes already there */

            if (!rr_done) {
                p = ngx_cpymem(p, "Record-Route: ", 14);
                p = ngx_cpymem(p, f->record_route.data, f->record_route.len);
                *p++ = CR; *p++ = LF;
                rr_done = 1;
            }

            break;

        case NGX_SIP_HDR_ROUTE:

            v = h->value.data;
            end = v + h->value.len;

            if (f->cut == i + 1) {

                /* the last value went into the Request-URI (16.4) */

                end = f->cut_at;

                while (end > v
                       && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == ','
                           || end[-1] == CR || end[-1] == LF))
                {
                    end--;
                }

                if (end == v) {
                    continue;
                }

                if (popped == f->pop_route) {
                    p = ngx_cpymem(p, h->name.data, h->name.len);
                    *p++ = ':'; *p++ = ' ';
                    p = ngx_cpymem(p, v, end - v);
                    *p++ = CR; *p++ = LF;
                    continue;
                }
            }

            if (popped == f->pop_route) {
                break;
            }

            /* our values go: all of a line, or "a, b" keeps "b" */

            while (popped < f->pop_route && v < end) {

                if (ngx_sip_parse_addr(&v, end, &addr, 1) != NGX_OK) {
                    v = end;
                    break;
                }

                popped++;

                while (v < end
                       && (*v == ' ' || *v == '\t' || *v == CR || *v == LF
                           || *v == ','))
                {
                    v++;
                }
            }

            if (v == end) {
                continue;
            }

            p = ngx_cpymem(p, h->name.data, h->name.len);
            *p++ = ':'; *p++ = ' ';
            p = ngx_cpymem(p, v, end - v);
            *p++ = CR; *p++ = LF;
            continue;

        default:
            break;
        }

        p = ngx_cpymem(p, h->start, h->end - h->start);
    }

    if (m->hdr[NGX_SIP_HDR_MAX_FORWARDS] == NULL) {
        p = ngx_cpymem(p, "Max-Forwards: 70" CRLF,
                       sizeof("Max-Forwards: 70" CRLF) - 1);
    }

    if (!rr_done) {
        p = ngx_cpymem(p, "Record-Route: ", 14);
        p = ngx_cpymem(p, f->record_route.data, f->record_route.len);
        *p++ = CR; *p++ = LF;
    }

    if (f->append_route.len) {

        /* towards a strict router the Request-URI is the last Route */

        p = ngx_cpymem(p, "Route: <", 8);
        p = ngx_cpymem(p, f->append_route.data, f->append_route.len);
        *p++ = '>'; *p++ = CR; *p++ = LF;
    }

    return ngx_sip_write_tail(p, m);
}


/* the empty line (CRLF, or a tolerated bare LF) and the body */

static u_char *
ngx_sip_write_tail(u_char *p, ngx_sip_msg_t *m)
{
    u_char  *start;

    start = m->headers_end - 1;

    if (start > m->start && start[-1] == CR) {
        start--;
    }

    return ngx_cpymem(p, start, m->end - start);
}


/*
 * A response goes back without the top via-parm (RFC 3261 16.7 step 3):
 * the first Via line goes, or loses its first value.
 */

u_char *
ngx_sip_forward_response(u_char *p, ngx_sip_msg_t *m)
{
    u_char            *v, *end;
    ngx_uint_t         i, done;
    ngx_sip_via_t      via;
    ngx_sip_header_t  *h;

    h = m->hdr[NGX_SIP_HDR_VIA];

    if (h == NULL) {
        return ngx_cpymem(p, m->start, m->end - m->start);
    }

    p = ngx_cpymem(p, m->start, m->headers[0].start - m->start);

    done = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_VIA || done) {
            p = ngx_cpymem(p, h->start, h->end - h->start);
            continue;
        }

        done = 1;

        v = h->value.data;
        end = v + h->value.len;

        if (ngx_sip_parse_via(&v, end, &via) != NGX_OK) {
            continue;
        }

        while (v < end && (*v == ' ' || *v == '\t' || *v == CR || *v == LF)) {
            v++;
        }

        if (v == end || *v != ',') {
            continue;
        }

        v++;

        while (v < end && (*v == ' ' || *v == '\t' || *v == CR || *v == LF)) {
            v++;
        }

        p = ngx_cpymem(p, h->name.data, h->name.len);
        *p++ = ':'; *p++ = ' ';
        p = ngx_cpymem(p, v, end - v);
        *p++ = CR; *p++ = LF;
    }

    return ngx_sip_write_tail(p, m);
}


/*
 * The requests a proxy makes itself for an INVITE it forwarded: CANCEL
 * (RFC 3261 9.1) and the ACK of a non-2xx final response (17.1.1.3).
 * Both go where the INVITE went, with its Request-URI, its top Via (so
 * the same branch), its Route set, From, Call-ID and CSeq number; the
 * ACK takes To from the response, for the tag.  "inv" is the INVITE as
 * we sent it, parsed again.
 */

size_t
ngx_sip_hop_request_size(ngx_sip_msg_t *inv, ngx_sip_msg_t *resp)
{
    size_t             len;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    len = sizeof("CANCEL  SIP/2.0" CRLF) + inv->request_uri.len
          + sizeof("Via: " CRLF) + inv->via.text.len
          + sizeof("Max-Forwards: 70" CRLF)
          + sizeof("From: " CRLF) + inv->hdr[NGX_SIP_HDR_FROM]->value.len
          + sizeof("To: " CRLF)
          + (resp ? resp->hdr[NGX_SIP_HDR_TO]->value.len
                  : inv->hdr[NGX_SIP_HDR_TO]->value.len)
          + sizeof("Call-ID: " CRLF) + inv->call_id.len
          + sizeof("CSeq: 4294967295 CANCEL" CRLF)
          + sizeof("Content-Length: 0" CRLF CRLF);

    for (i = 0; i < inv->nheaders; i++) {
        h = &inv->headers[i];

        if (h->id == NGX_SIP_HDR_ROUTE) {
            len += sizeof("Route: " CRLF) + h->value.len;
        }
    }

    return len;
}


/* resp NULL: CANCEL; else the ACK of that response */

u_char *
ngx_sip_write_hop_request(u_char *p, ngx_sip_msg_t *inv,
    ngx_sip_msg_t *resp)
{
    ngx_str_t          method;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    if (resp) {
        ngx_str_set(&method, "ACK");

    } else {
        ngx_str_set(&method, "CANCEL");
    }

    p = ngx_cpymem(p, method.data, method.len);
    *p++ = ' ';
    p = ngx_cpymem(p, inv->request_uri.data, inv->request_uri.len);
    p = ngx_cpymem(p, " SIP/2.0" CRLF, sizeof(" SIP/2.0" CRLF) - 1);

    p = ngx_sip_write_header(p, "Via", &inv->via.text);

    for (i = 0; i < inv->nheaders; i++) {
        h = &inv->headers[i];

        if (h->id == NGX_SIP_HDR_ROUTE) {
            p = ngx_sip_write_header(p, "Route", &h->value);
        }
    }

    p = ngx_cpymem(p, "Max-Forwards: 70" CRLF,
                   sizeof("Max-Forwards: 70" CRLF) - 1);

    p = ngx_sip_write_header(p, "From", &inv->hdr[NGX_SIP_HDR_FROM]->value);
    p = ngx_sip_write_header(p, "To", resp ? &resp->hdr[NGX_SIP_HDR_TO]->value
                                           : &inv->hdr[NGX_SIP_HDR_TO]->value);
    p = ngx_sip_write_header(p, "Call-ID", &inv->call_id);

    p = ngx_cpymem(p, "CSeq: ", 6);
    p = ngx_sip_write_uint(p, inv->cseq.number);
    *p++ = ' ';
    p = ngx_cpymem(p, method.data, method.len);
    *p++ = CR; *p++ = LF;

    return ngx_cpymem(p, "Content-Length: 0" CRLF CRLF,
                      sizeof("Content-Length: 0" CRLF CRLF) - 1);
}


static u_char *
ngx_sip_write_header(u_char *p, char *name, ngx_str_t *value)
{
    p = ngx_cpymem(p, name, ngx_strlen(name));
    *p++ = ':'; *p++ = ' ';
    p = ngx_cpymem(p, value->data, value->len);
    *p++ = CR; *p++ = LF;

    return p;
}


/*
 * branch = "z9hG4bK-ngx" loop(8 hex) salt(8 hex) tag(16 hex): 43 octets,
 * written to buf, which has NGX_SIP_BRANCH_LEN.
 */

size_t
ngx_sip_branch_make(u_char *buf, ngx_sip_msg_t *m, uint32_t salt,
    u_char *key)
{
    u_char    *p, data[8];
    uint32_t   loop;
    uint64_t   tag;

    loop = ngx_sip_loop_hash(m);

    data[0] = (u_char) (loop >> 24);
    data[1] = (u_char) (loop >> 16);
    data[2] = (u_char) (loop >> 8);
    data[3] = (u_char) loop;
    data[4] = (u_char) (salt >> 24);
    data[5] = (u_char) (salt >> 16);
    data[6] = (u_char) (salt >> 8);
    data[7] = (u_char) salt;

    tag = ngx_sip_siphash(key, data, 8);

    p = ngx_cpymem(buf, NGX_SIP_BRANCH_PREFIX, NGX_SIP_BRANCH_PREFIX_LEN);
    p = ngx_sip_write_hex(p, loop, 8);
    p = ngx_sip_write_hex(p, salt, 8);
    p = ngx_sip_write_hex(p, tag, 16);

    return p - buf;
}


/*
 * NGX_OK with the salt when the branch is one we made with this key,
 * NGX_DECLINED otherwise.  *loop gets the loop hash it carries.
 */

ngx_int_t
ngx_sip_branch_check(ngx_str_t *branch, u_char *key, uint32_t *loop,
    uint32_t *salt)
{
    u_char      *p, data[8];
    uint64_t     l, s, tag;
    ngx_uint_t   i;

    if (branch->len != NGX_SIP_BRANCH_LEN
        || ngx_strncmp(branch->data, NGX_SIP_BRANCH_PREFIX,
                       NGX_SIP_BRANCH_PREFIX_LEN) != 0)
    {
        return NGX_DECLINED;
    }

    p = branch->data + NGX_SIP_BRANCH_PREFIX_LEN;

    /* ours are lowercase, and branches compare case-sensitively */

    for (i = 0; i < 32; i++) {
        if (p[i] >= 'A' && p[i] <= 'F') {
            return NGX_DECLINED;
        }
    }

    if (ngx_sip_hex_decode(p, 8, &l) != NGX_OK
        || ngx_sip_hex_decode(p + 8, 8, &s) != NGX_OK
        || ngx_sip_hex_decode(p + 16, 16, &tag) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    data[0] = (u_char) (l >> 24);
    data[1] = (u_char) (l >> 16);
    data[2] = (u_char) (l >> 8);
    data[3] = (u_char) l;
    data[4] = (u_char) (s >> 24);
    data[5] = (u_char) (s >> 16);
    data[6] = (u_char) (s >> 8);
    data[7] = (u_char) s;

    if (ngx_sip_siphash(key, data, 8) != tag) {
        return NGX_DECLINED;
    }

    *loop = (uint32_t) l;
    *salt = (uint32_t) s;

    return NGX_OK;
}


/*
 * RFC 3261 16.3 step 4: a Via of ours whose branch carries the loop hash
 * of this very request means it came back unchanged: a loop (482).  A
 * different hash is a spiral, which is fine.
 */

ngx_int_t
ngx_sip_loop_detect(ngx_sip_msg_t *m, u_char *key)
{
    u_char            *p, *end;
    uint32_t           loop, salt, hash;
    ngx_uint_t         i;
    ngx_sip_via_t      via;
    ngx_sip_header_t  *h;

    hash = ngx_sip_loop_hash(m);

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_VIA) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (ngx_sip_parse_via(&p, end, &via) == NGX_OK) {

            if (ngx_sip_branch_check(&via.branch, key, &loop, &salt)
                == NGX_OK
                && loop == hash)
            {
                return NGX_ERROR;
            }

            while (p < end && *p != ',') {
                p++;
            }

            if (p == end) {
                break;
            }

            p++;
        }
    }

    return NGX_OK;
}


/* what RFC 3261 16.6 step 8 lists for loop detection */

static uint32_t
ngx_sip_loop_hash(ngx_sip_msg_t *m)
{
    uint32_t           h;
    ngx_uint_t         i;
    ngx_sip_header_t  *hdr;

    h = ngx_sip_hash(0, m->request_uri.data, m->request_uri.len);
    h = ngx_sip_hash(h, m->to.tag.data, m->to.tag.len);
    h = ngx_sip_hash(h, m->from.tag.data, m->from.tag.len);
    h = ngx_sip_hash(h, m->call_id.data, m->call_id.len);
    h = ngx_sip_hash(h, (u_char *) &m->cseq.number, sizeof(uint32_t));

    for (i = 0; i < m->nheaders; i++) {
        hdr = &m->headers[i];

        if (hdr->id == NGX_SIP_HDR_ROUTE
            || hdr->id == NGX_SIP_HDR_PROXY_REQUIRE
            || hdr->id == NGX_SIP_HDR_PROXY_AUTHORIZATION)
        {
            h = ngx_sip_hash(h, hdr->value.data, hdr->value.len);
        }
    }

    return h;
}

