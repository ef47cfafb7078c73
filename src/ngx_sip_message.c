
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * Building responses to requests (RFC 3261 8.2.6): Via, From, To, Call-ID
 * and CSeq are copied from the request as they are on the wire, so that
 * the peer matches the response whatever form it used for them; only the
 * top Via gets received/rport (RFC 3261 18.2.1, RFC 3581) and To a tag.
 */


static size_t ngx_sip_top_via_size(ngx_sip_msg_t *req, ngx_sip_resp_t *r);
static u_char *ngx_sip_write_vias(u_char *p, ngx_sip_msg_t *req,
    ngx_sip_resp_t *r);


static ngx_str_t  ngx_sip_copied_headers[] = {
    ngx_string("From"),
    ngx_string("To"),
    ngx_string("Call-ID"),
    ngx_string("CSeq"),
};

static ngx_uint_t  ngx_sip_copied_ids[] = {
    NGX_SIP_HDR_FROM,
    NGX_SIP_HDR_TO,
    NGX_SIP_HDR_CALL_ID,
    NGX_SIP_HDR_CSEQ,
};


/*
 * What every response we make ourselves carries besides status and
 * reason.  "addr" (an IPv6 one without brackets) and "port" are where
 * the request came from, "key" our 16-octet secret.
 *
 * "received" when the top Via's sent-by host is not that address (RFC
 * 3261 18.2.1), the port for an empty "rport" (RFC 3581 4).
 *
 * The To tag is a keyed hash of what names the request: Call-ID, From
 * tag, top Via branch, CSeq number.  A retransmission gets the same tag,
 * whichever worker answers it; another request another tag; nobody can
 * make one collide on purpose.  The CSeq method is left out: a CANCEL
 * has its INVITE's branch and number, and RFC 3261 9.2 wants the To tag
 * of the 200 to it to be that of the 487 to the INVITE.  The tag is put
 * in by ngx_sip_write_response() only where the request's To has none
 * and the status is not 100 (RFC 3261 8.2.6.2).
 */

void
ngx_sip_response_init(ngx_sip_resp_t *r, ngx_sip_msg_t *req,
    ngx_uint_t status, ngx_str_t *reason, ngx_str_t *addr, in_port_t port,
    u_char *key)
{
    u_char             n[4];
    ngx_str_t          host;
    ngx_sip_siphash_t  h;

    ngx_memzero(r, sizeof(ngx_sip_resp_t));

    r->status = status;
    r->reason = *reason;

    host = req->via.host;

    if (host.len > 2 && host.data[0] == '[') {
        host.data++;
        host.len -= 2;
    }

    if (req->via.text.len
        && (host.len != addr->len
            || ngx_strncasecmp(host.data, addr->data, host.len) != 0))
    {
        r->received = *addr;
    }

    if (req->via.has_rport) {
        r->rport = port;
    }

    n[0] = (u_char) (req->cseq.number >> 24);
    n[1] = (u_char) (req->cseq.number >> 16);
    n[2] = (u_char) (req->cseq.number >> 8);
    n[3] = (u_char) req->cseq.number;

    ngx_sip_siphash_init(&h, key);
    ngx_sip_siphash_field(&h, req->call_id.data, req->call_id.len);
    ngx_sip_siphash_field(&h, req->from.tag.data, req->from.tag.len);
    ngx_sip_siphash_field(&h, req->via.branch.data, req->via.branch.len);
    ngx_sip_siphash_field(&h, n, 4);

    r->to_tag.data = r->tag_buf;
    r->to_tag.len = ngx_sip_write_hex(r->tag_buf, ngx_sip_siphash_final(&h),
                                      NGX_SIP_TO_TAG_LEN)
                    - r->tag_buf;
}


size_t
ngx_sip_response_size(ngx_sip_msg_t *req, ngx_sip_resp_t *r)
{
    size_t             len;
    ngx_uint_t         i, id;
    ngx_sip_header_t  *h;

    /* "SIP/2.0 NNN reason" CRLF */
    len = sizeof("SIP/2.0 000 ") - 1 + r->reason.len + 2;

    len += ngx_sip_top_via_size(req, r);

    for (i = 0; i < sizeof(ngx_sip_copied_ids) / sizeof(ngx_uint_t); i++) {
        id = ngx_sip_copied_ids[i];
        h = req->hdr[id];

        if (h == NULL) {
            continue;
        }

        len += ngx_sip_copied_headers[i].len + 2 + h->value.len + 2;
    }

    /* ";tag=" */
    len += 5 + r->to_tag.len;

    len += r->extra.len;

    len += sizeof("Content-Length: 0" CRLF CRLF) - 1;

    return len;
}


u_char *
ngx_sip_write_response(u_char *p, ngx_sip_msg_t *req, ngx_sip_resp_t *r)
{
    ngx_uint_t         i, id;
    ngx_sip_header_t  *h;

    p = ngx_cpymem(p, "SIP/2.0 ", 8);
    *p++ = (u_char) ('0' + r->status / 100 % 10);
    *p++ = (u_char) ('0' + r->status / 10 % 10);
    *p++ = (u_char) ('0' + r->status % 10);
    *p++ = ' ';
    p = ngx_cpymem(p, r->reason.data, r->reason.len);
    *p++ = CR; *p++ = LF;

    p = ngx_sip_write_vias(p, req, r);

    for (i = 0; i < sizeof(ngx_sip_copied_ids) / sizeof(ngx_uint_t); i++) {
        id = ngx_sip_copied_ids[i];
        h = req->hdr[id];

        if (h == NULL) {
            continue;
        }

        p = ngx_cpymem(p, ngx_sip_copied_headers[i].data,
                       ngx_sip_copied_headers[i].len);
        *p++ = ':'; *p++ = ' ';
        p = ngx_cpymem(p, h->value.data, h->value.len);

        /*
         * RFC 3261 8.2.6.2: every response but 100 carries a To tag; a
         * tag the request already had is the dialog's and stays alone.
         */

        if (id == NGX_SIP_HDR_TO && r->to_tag.len && req->to.tag.len == 0
            && r->status != 100)
        {
            p = ngx_cpymem(p, ";tag=", 5);
            p = ngx_cpymem(p, r->to_tag.data, r->to_tag.len);
        }

        *p++ = CR; *p++ = LF;
    }

    if (r->extra.len) {
        p = ngx_cpymem(p, r->extra.data, r->extra.len);
    }

    p = ngx_cpymem(p, "Content-Length: 0" CRLF CRLF,
                   sizeof("Content-Length: 0" CRLF CRLF) - 1);

    return p;
}


static size_t
ngx_sip_top_via_size(ngx_sip_msg_t *req, ngx_sip_resp_t *r)
{
    size_t             len;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    len = 0;

    for (i = 0; i < req->nheaders; i++) {
        h = &req->headers[i];

        if (h->id == NGX_SIP_HDR_VIA) {
            len += sizeof("Via: " CRLF) - 1 + h->value.len;
        }
    }

    /* ";received=" and ";rport=65535" */
    len += 10 + r->received.len + 12;

    return len;
}


static u_char *
ngx_sip_write_vias(u_char *p, ngx_sip_msg_t *req, ngx_sip_resp_t *r)
{
    ngx_uint_t         i, top;
    ngx_sip_header_t  *h;

    top = 1;

    for (i = 0; i < req->nheaders; i++) {
        h = &req->headers[i];

        if (h->id != NGX_SIP_HDR_VIA) {
            continue;
        }

        p = ngx_cpymem(p, "Via: ", 5);

        if (!top || req->via.text.len == 0) {
            p = ngx_cpymem(p, h->value.data, h->value.len);
            *p++ = CR; *p++ = LF;
            continue;
        }

        top = 0;

        p = ngx_sip_write_top_via(p, req, h, &r->received, r->rport);

        *p++ = CR; *p++ = LF;
    }

    return p;
}


/*
 * The top via-parm of the first Via line with "received" and a value for
 * a valueless "rport" (RFC 3261 18.2.1, RFC 3581), then the rest of that
 * line: further via-parms after a comma.  At most 10 + received->len + 12
 * octets more than the line.
 */

u_char *
ngx_sip_write_top_via(u_char *p, ngx_sip_msg_t *m, ngx_sip_header_t *h,
    ngx_str_t *received, ngx_uint_t port)
{
    u_char     *rport, *end;
    ngx_str_t   value;

    /* a valueless "rport" gets "=port" right after its name */

    rport = NULL;

    if (port && m->via.has_rport && m->via.rport_text.len == 0
        && ngx_sip_param(&m->via.params, "rport", &value) == NGX_OK
        && value.len == 0)
    {
        rport = value.data;
    }

    end = m->via.text.data + m->via.text.len;

    if (rport) {
        p = ngx_cpymem(p, m->via.text.data, rport - m->via.text.data);
        *p++ = '=';
        p = ngx_sip_write_uint(p, port);
        p = ngx_cpymem(p, rport, end - rport);

    } else {
        p = ngx_cpymem(p, m->via.text.data, m->via.text.len);
    }

    if (received->len) {
        p = ngx_cpymem(p, ";received=", 10);
        p = ngx_cpymem(p, received->data, received->len);
    }

    return ngx_cpymem(p, end, h->value.data + h->value.len - end);
}


u_char *
ngx_sip_write_uint(u_char *p, ngx_uint_t n)
{
    u_char   buf[20], *d;

    d = buf + sizeof(buf);

    do {
        *--d = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, d, buf + sizeof(buf) - d);
}

