
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * Message level SIP parsing (RFC 3261 7, 18.3, 20): framing of stream
 * transports, the start line, header lines, the body, and the checks of
 * RFC 3261 8.2 and 16.3 that decide whether a request is processed at all.
 * Nothing is allocated and nothing is copied: every string is a slice of
 * the caller's buffer.
 */


#define NGX_SIP_HEADERS_DONE        1


static ngx_int_t ngx_sip_parse_start_line(ngx_sip_msg_t *m, u_char **pos,
    u_char *last, ngx_sip_error_t *err);
static ngx_int_t ngx_sip_parse_header_line(u_char **pos, u_char *last,
    ngx_sip_header_t *h);
static u_char *ngx_sip_skip_line(u_char *p, u_char *last);
static ngx_uint_t ngx_sip_header_id(u_char *name, size_t len);
static ngx_int_t ngx_sip_parse_content_length(ngx_sip_msg_t *m,
    ngx_sip_error_t *err);
static ngx_int_t ngx_sip_parse_size(ngx_str_t *value, size_t *n);

static ngx_int_t ngx_sip_validate_headers(ngx_sip_msg_t *m,
    ngx_sip_error_t *err);
static ngx_int_t ngx_sip_validate_request_uri(ngx_sip_msg_t *m,
    ngx_sip_error_t *err);
static ngx_uint_t ngx_sip_validate_lines(ngx_sip_msg_t *m);
static ngx_int_t ngx_sip_validate_via_line(ngx_sip_msg_t *m,
    ngx_sip_header_t *h);
static ngx_int_t ngx_sip_validate_addr(ngx_sip_header_t *h,
    ngx_sip_addr_t *addr);
static ngx_int_t ngx_sip_validate_addr_line(ngx_sip_msg_t *m,
    ngx_sip_header_t *h);
static ngx_int_t ngx_sip_validate_call_id(ngx_str_t *value);
static ngx_int_t ngx_sip_validate_options(ngx_sip_msg_t *m,
    ngx_sip_error_t *err);
static ngx_int_t ngx_sip_next_element(u_char **pos, u_char *end);
static ngx_uint_t ngx_sip_option_supported(u_char *p, size_t len);


/* cleared by a copy, not memset(): see ngx_sip_uri_zero */
static const ngx_sip_frame_t  ngx_sip_frame_zero;


#define ngx_sip_set_error(err, code, text)                                   \
    do {                                                                     \
        if ((err)->status == 0) {                                            \
            (err)->status = code;                                            \
            ngx_str_set(&(err)->reason, text);                               \
        }                                                                    \
    } while (0)


/* what ngx_sip_validate_lines() found bad */
#define NGX_SIP_BAD_VIA            0x01
#define NGX_SIP_BAD_EXPIRES        0x02
#define NGX_SIP_BAD_CONTACT        0x04
#define NGX_SIP_BAD_ROUTE          0x08


ngx_str_t  ngx_sip_method_names[] = {
    ngx_null_string,                    /* NGX_SIP_UNKNOWN */
    ngx_string("INVITE"),
    ngx_string("ACK"),
    ngx_string("BYE"),
    ngx_string("CANCEL"),
    ngx_string("OPTIONS"),
    ngx_string("REGISTER"),
    ngx_string("PRACK"),
    ngx_string("SUBSCRIBE"),
    ngx_string("NOTIFY"),
    ngx_string("PUBLISH"),
    ngx_string("INFO"),
    ngx_string("REFER"),
    ngx_string("MESSAGE"),
    ngx_string("UPDATE")
};


ngx_str_t  ngx_sip_header_names[] = {
    ngx_null_string,                    /* NGX_SIP_HDR_OTHER */
    ngx_string("Via"),
    ngx_string("From"),
    ngx_string("To"),
    ngx_string("Call-ID"),
    ngx_string("CSeq"),
    ngx_string("Max-Forwards"),
    ngx_string("Contact"),
    ngx_string("Content-Length"),
    ngx_string("Content-Type"),
    ngx_string("Content-Encoding"),
    ngx_string("Expires"),
    ngx_string("Min-Expires"),
    ngx_string("Route"),
    ngx_string("Record-Route"),
    ngx_string("Require"),
    ngx_string("Proxy-Require"),
    ngx_string("Supported"),
    ngx_string("Unsupported"),
    ngx_string("Allow"),
    ngx_string("Accept"),
    ngx_string("User-Agent"),
    ngx_string("Server"),
    ngx_string("Authorization"),
    ngx_string("Proxy-Authorization"),
    ngx_string("WWW-Authenticate"),
    ngx_string("Proxy-Authenticate"),
    ngx_string("Path"),
    ngx_string("Subject"),
    ngx_string("Event"),
    ngx_string("Allow-Events"),
    ngx_string("Refer-To"),
    ngx_string("Referred-By"),
    ngx_string("Session-Expires"),
    ngx_string("Identity"),
    ngx_string("Accept-Contact"),
    ngx_string("Reject-Contact"),
    ngx_string("Request-Disposition"),
    ngx_string("Retry-After"),
    ngx_string("Date"),
    ngx_string("Timestamp")
};


/*
 * The option tags of Require and Proxy-Require that we implement
 * (RFC 3261 8.2.2.3, 16.3 item 5); a request that requires anything else
 * is answered 420 with Unsupported.  The core implements no extension
 * yet: "path", "outbound" and the like go here when they are done.
 */

ngx_str_t  ngx_sip_supported_options[] = {
    ngx_string("path"),
    ngx_null_string
};


ngx_uint_t
ngx_sip_method_id(u_char *p, size_t len)
{
    ngx_uint_t  id;

    /* methods are case-sensitive (RFC 3261 7.1): "invite" is not INVITE */

    switch (len) {

    case 3:
        id = (p[0] == 'A') ? NGX_SIP_ACK : NGX_SIP_BYE;
        break;

    case 4:
        id = NGX_SIP_INFO;
        break;

    case 5:
        id = (p[0] == 'P') ? NGX_SIP_PRACK : NGX_SIP_REFER;
        break;

    case 6:
        switch (p[0]) {
        case 'I':
            id = NGX_SIP_INVITE;
            break;
        case 'C':
            id = NGX_SIP_CANCEL;
            break;
        case 'N':
            id = NGX_SIP_NOTIFY;
            break;
        default:
            id = NGX_SIP_UPDATE;
            break;
        }
        break;

    case 7:
        switch (p[0]) {
        case 'O':
            id = NGX_SIP_OPTIONS;
            break;
        case 'P':
            id = NGX_SIP_PUBLISH;
            break;
        default:
            id = NGX_SIP_MESSAGE;
            break;
        }
        break;

    case 8:
        id = NGX_SIP_REGISTER;
        break;

    case 9:
        id = NGX_SIP_SUBSCRIBE;
        break;

    default:
        return NGX_SIP_UNKNOWN;
    }

    if (ngx_memcmp(p, ngx_sip_method_names[id].data, len) != 0) {
        return NGX_SIP_UNKNOWN;
    }

    return id;
}


/*
 * A header name (long or compact form, any case) to its id: the length
 * and the first letter leave at most two candidates, and one compare
 * with the canonical name decides.
 */

static ngx_uint_t
ngx_sip_header_id(u_char *name, size_t len)
{
    u_char      c;
    ngx_uint_t  id;

    c = ngx_tolower(name[0]);

    if (len == 1) {

        /* RFC 3261 7.3.3 and the registry of compact forms */

        switch (c) {
        case 'a':
            return NGX_SIP_HDR_ACCEPT_CONTACT;
        case 'b':
            return NGX_SIP_HDR_REFERRED_BY;
        case 'c':
            return NGX_SIP_HDR_CONTENT_TYPE;
        case 'd':
            return NGX_SIP_HDR_REQUEST_DISPOSITION;
        case 'e':
            return NGX_SIP_HDR_CONTENT_ENCODING;
        case 'f':
            return NGX_SIP_HDR_FROM;
        case 'i':
            return NGX_SIP_HDR_CALL_ID;
        case 'j':
            return NGX_SIP_HDR_REJECT_CONTACT;
        case 'k':
            return NGX_SIP_HDR_SUPPORTED;
        case 'l':
            return NGX_SIP_HDR_CONTENT_LENGTH;
        case 'm':
            return NGX_SIP_HDR_CONTACT;
        case 'o':
            return NGX_SIP_HDR_EVENT;
        case 'r':
            return NGX_SIP_HDR_REFER_TO;
        case 's':
            return NGX_SIP_HDR_SUBJECT;
        case 't':
            return NGX_SIP_HDR_TO;
        case 'u':
            return NGX_SIP_HDR_ALLOW_EVENTS;
        case 'v':
            return NGX_SIP_HDR_VIA;
        case 'x':
            return NGX_SIP_HDR_SESSION_EXPIRES;
        case 'y':
            return NGX_SIP_HDR_IDENTITY;
        default:
            return NGX_SIP_HDR_OTHER;
        }
    }

    id = NGX_SIP_HDR_OTHER;

    switch (len) {

    case 2:
        if (c == 't') {
            id = NGX_SIP_HDR_TO;
        }
        break;

    case 3:
        if (c == 'v') {
            id = NGX_SIP_HDR_VIA;
        }
        break;

    case 4:
        switch (c) {
        case 'f':
            id = NGX_SIP_HDR_FROM;
            break;
        case 'c':
            id = NGX_SIP_HDR_CSEQ;
            break;
        case 'p':
            id = NGX_SIP_HDR_PATH;
            break;
        case 'd':
            id = NGX_SIP_HDR_DATE;
            break;
        }
        break;

    case 5:
        switch (c) {
        case 'r':
            id = NGX_SIP_HDR_ROUTE;
            break;
        case 'a':
            id = NGX_SIP_HDR_ALLOW;
            break;
        case 'e':
            id = NGX_SIP_HDR_EVENT;
            break;
        }
        break;

    case 6:
        switch (c) {
        case 'a':
            id = NGX_SIP_HDR_ACCEPT;
            break;
        case 's':
            id = NGX_SIP_HDR_SERVER;
            break;
        }
        break;

    case 7:
        switch (c) {
        case 'c':
            id = (ngx_tolower(name[1]) == 'a') ? NGX_SIP_HDR_CALL_ID
                                                : NGX_SIP_HDR_CONTACT;
            break;
        case 'e':
            id = NGX_SIP_HDR_EXPIRES;
            break;
        case 'r':
            id = NGX_SIP_HDR_REQUIRE;
            break;
        case 's':
            id = NGX_SIP_HDR_SUBJECT;
            break;
        }
        break;

    case 8:
        switch (c) {
        case 'r':
            id = NGX_SIP_HDR_REFER_TO;
            break;
        case 'i':
            id = NGX_SIP_HDR_IDENTITY;
            break;
        }
        break;

    case 9:
        switch (c) {
        case 's':
            id = NGX_SIP_HDR_SUPPORTED;
            break;
        case 't':
            id = NGX_SIP_HDR_TIMESTAMP;
            break;
        }
        break;

    case 10:
        if (c == 'u') {
            id = NGX_SIP_HDR_USER_AGENT;
        }
        break;

    case 11:
        switch (c) {
        case 'm':
            id = NGX_SIP_HDR_MIN_EXPIRES;
            break;
        case 'u':
            id = NGX_SIP_HDR_UNSUPPORTED;
            break;
        case 'r':
            id = (ngx_tolower(name[2]) == 'f') ? NGX_SIP_HDR_REFERRED_BY
                                                : NGX_SIP_HDR_RETRY_AFTER;
            break;
        }
        break;

    case 12:
        switch (c) {
        case 'm':
            id = NGX_SIP_HDR_MAX_FORWARDS;
            break;
        case 'c':
            id = NGX_SIP_HDR_CONTENT_TYPE;
            break;
        case 'r':
            id = NGX_SIP_HDR_RECORD_ROUTE;
            break;
        case 'a':
            id = NGX_SIP_HDR_ALLOW_EVENTS;
            break;
        }
        break;

    case 13:
        switch (c) {
        case 'p':
            id = NGX_SIP_HDR_PROXY_REQUIRE;
            break;
        case 'a':
            id = NGX_SIP_HDR_AUTHORIZATION;
            break;
        }
        break;

    case 14:
        switch (c) {
        case 'c':
            id = NGX_SIP_HDR_CONTENT_LENGTH;
            break;
        case 'a':
            id = NGX_SIP_HDR_ACCEPT_CONTACT;
            break;
        case 'r':
            id = NGX_SIP_HDR_REJECT_CONTACT;
            break;
        }
        break;

    case 15:
        if (c == 's') {
            id = NGX_SIP_HDR_SESSION_EXPIRES;
        }
        break;

    case 16:
        switch (c) {
        case 'c':
            id = NGX_SIP_HDR_CONTENT_ENCODING;
            break;
        case 'w':
            id = NGX_SIP_HDR_WWW_AUTHENTICATE;
            break;
        }
        break;

    case 18:
        if (c == 'p') {
            id = NGX_SIP_HDR_PROXY_AUTHENTICATE;
        }
        break;

    case 19:
        switch (c) {
        case 'p':
            id = NGX_SIP_HDR_PROXY_AUTHORIZATION;
            break;
        case 'r':
            id = NGX_SIP_HDR_REQUEST_DISPOSITION;
            break;
        }
        break;
    }

    if (id == NGX_SIP_HDR_OTHER) {
        return NGX_SIP_HDR_OTHER;
    }

    if (!ngx_sip_name_eq(name, (char *) ngx_sip_header_names[id].data, len)) {
        return NGX_SIP_HDR_OTHER;
    }

    return id;
}


ngx_sip_header_t *
ngx_sip_find_header(ngx_sip_msg_t *m, u_char *name, size_t len)
{
    ngx_uint_t         i, id;
    ngx_sip_header_t  *h;

    if (len == 0) {
        return NULL;
    }

    id = ngx_sip_header_id(name, len);

    if (id != NGX_SIP_HDR_OTHER) {
        return m->hdr[id];
    }

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->name.len == len
            && ngx_strncasecmp(h->name.data, name, len) == 0)
        {
            return h;
        }
    }

    return NULL;
}


void
ngx_sip_frame_init(ngx_sip_frame_t *f)
{
    *f = ngx_sip_frame_zero;
}


/*
 * Framing of stream transports (RFC 3261 18.3): the CRs and LFs before
 * a message are skipped (RFC 3261 7.5) and counted, the header section
 * is scanned for its end and for Content-Length (long or compact name,
 * folded or not) on the way, so that no octet is looked at twice however
 * the message is split across reads.
 */

ngx_int_t
ngx_sip_frame(ngx_sip_frame_t *f, u_char *start, u_char *last,
    size_t max_size, ngx_sip_error_t *err)
{
    u_char      ch, c, *p, *lf, *limit;
    size_t      d;
    enum {
        sw_start = 0,
        sw_start_line,
        sw_line_start,
        sw_empty_line,
        sw_name_l,
        sw_name,
        sw_space_before_colon,
        sw_space_before_value,
        sw_value,
        sw_space_after_value,
        sw_line,
        sw_body
    } state;

    static u_char  name[] = "content-length";

    err->status = 0;
    ngx_str_null(&err->reason);
    ngx_str_null(&err->header);

    state = f->state;

    if (state == sw_body) {
        goto body;
    }

    /* a header section never needs more than max_size octets */

    limit = last;

    if (state != sw_start
        && (size_t) (last - start) > f->crlf + max_size)
    {
        limit = start + f->crlf + max_size;
    }

    for (p = start + f->scanned; p < limit; p++) {
        ch = *p;

        switch (state) {

        case sw_start:
            if (ch == LF) {
                f->crlf++;

                /* RFC 5626 3.5.1: each double CRLF is a ping */

                if (++f->lf % 2 == 0) {
                    f->pings++;
                }

                break;
            }

            if (ch == CR) {
                f->crlf++;
                break;
            }

            state = sw_start_line;

            if ((size_t) (last - start) > f->crlf + max_size) {
                limit = start + f->crlf + max_size;
            }

            break;

        case sw_start_line:
        case sw_line:

            /* nothing in the line matters but its end: memchr() finds it */

            lf = ngx_sip_memchr(p, LF, limit - p);

            if (lf == NULL) {
                p = limit - 1;
                break;
            }

            p = lf;
            state = sw_line_start;
            break;

        case sw_line_start:

            if (f->in_content_length) {

                if (ch == ' ' || ch == '\t') {

                    /* a folded Content-Length value */

                    state = f->digits ? sw_space_after_value
                                      : sw_space_before_value;
                    break;
                }

                if (!f->digits) {
                    goto bad_content_length;
                }

                if (f->has_content_length && f->value != f->content_length) {
                    err->status = 400;
                    ngx_str_set(&err->reason, "Conflicting Content-Length");
                    goto error;
                }

                f->has_content_length = 1;
                f->content_length = f->value;
                f->in_content_length = 0;
            }

            switch (ch) {
            case CR:
                state = sw_empty_line;
                break;
            case LF:
                goto done;
            case 'l':
            case 'L':
                state = sw_name_l;
                break;
            case 'c':
            case 'C':
                f->index = 1;
                state = sw_name;
                break;
            default:
                state = sw_line;
                break;
            }

            break;

        case sw_empty_line:
            if (ch == LF) {
                goto done;
            }

            /* a bare CR: a bad line, as ngx_sip_parse_message() sees it */

            state = sw_line;
            break;

        case sw_name_l:
            switch (ch) {
            case ' ':
            case '\t':
                state = sw_space_before_colon;
                break;
            case ':':
                goto content_length;
            case LF:
                state = sw_line_start;
                break;
            default:
                state = sw_line;
                break;
            }

            break;

        case sw_name:
            if (f->index == sizeof(name) - 1) {

                switch (ch) {
                case ' ':
                case '\t':
                    state = sw_space_before_colon;
                    break;
                case ':':
                    goto content_length;
                case LF:
                    state = sw_line_start;
                    break;
                default:
                    state = sw_line;
                    break;
                }

                break;
            }

            c = ngx_tolower(ch);

            if (c == name[f->index]) {
                f->index++;
                break;
            }

            state = (ch == LF) ? sw_line_start : sw_line;
            break;

        case sw_space_before_colon:
            switch (ch) {
            case ' ':
            case '\t':
                break;
            case ':':
                goto content_length;
            case LF:
                state = sw_line_start;
                break;
            default:
                state = sw_line;
                break;
            }

            break;

        case sw_space_before_value:
            if (ch >= '0' && ch <= '9') {
                f->digits = 1;
                f->value = ch - '0';
                state = sw_value;
                break;
            }

            switch (ch) {
            case ' ':
            case '\t':
            case CR:
                break;
            case LF:
                state = sw_line_start;
                break;
            default:
                goto bad_content_length;
            }

            break;

        case sw_value:
            if (ch >= '0' && ch <= '9') {
                d = ch - '0';

                if (f->value > (max_size - d) / 10) {

                    /* more than we take: no need to read further digits */

                    goto too_large;
                }

                f->value = f->value * 10 + d;
                break;
            }

            switch (ch) {
            case ' ':
            case '\t':
            case CR:
                state = sw_space_after_value;
                break;
            case LF:
                state = sw_line_start;
                break;
            default:
                goto bad_content_length;
            }

            break;

        case sw_space_after_value:
            switch (ch) {
            case ' ':
            case '\t':
            case CR:
                break;
            case LF:
                state = sw_line_start;
                break;
            default:
                goto bad_content_length;
            }

            break;

        /* sw_body is handled after the loop */
        default:
            break;
        }

        continue;

    content_length:

        f->in_content_length = 1;
        f->digits = 0;
        f->value = 0;
        state = sw_space_before_value;
    }

    f->scanned = p - start;
    f->state = state;

    if (p == limit && limit != last) {
        goto too_large;
    }

    return NGX_SIP_AGAIN;

done:

    f->scanned = p + 1 - start;
    f->header_len = f->scanned;
    f->state = sw_body;

    if (!f->has_content_length) {
        err->status = 400;
        ngx_str_set(&err->reason, "Missing Content-Length");
        goto error;
    }

    f->message_len = f->header_len - f->crlf + f->content_length;

    if (f->message_len > max_size) {
        goto too_large;
    }

body:

    if ((size_t) (last - start) < f->crlf + f->message_len) {
        f->scanned = last - start;
        return NGX_SIP_AGAIN;
    }

    f->scanned = f->crlf + f->message_len;

    return NGX_SIP_OK;

bad_content_length:

    err->status = 400;
    ngx_str_set(&err->reason, "Bad Content-Length");
    goto error;

too_large:

    err->status = 513;
    ngx_str_set(&err->reason, "Message Too Large");

error:

    f->scanned = p - start;
    f->state = state;

    return NGX_SIP_ERROR;
}


ngx_int_t
ngx_sip_parse_message(ngx_sip_msg_t *m, u_char *start, u_char *last,
    ngx_uint_t stream, ngx_sip_error_t *err)
{
    u_char            *p;
    size_t             avail;
    ngx_int_t          rc;
    ngx_uint_t         max;
    ngx_sip_header_t  *headers, *h, hdr;

    headers = m->headers;
    max = headers ? m->max_headers : 0;

    ngx_memzero(m, sizeof(ngx_sip_msg_t));

    m->headers = headers;
    m->max_headers = max;
    m->max_forwards = -1;

    err->status = 0;
    ngx_str_null(&err->reason);
    ngx_str_null(&err->header);

    /* RFC 3261 7.5: CRLFs before the start line are ignored */

    for (p = start; p < last && (*p == CR || *p == LF); p++) {
        /* void */
    }

    m->start = p;

    if (p == last) {

        /* a keepalive: nothing to do, nothing to answer */

        ngx_str_set(&err->reason, "Empty Message");
        m->end = last;
        return NGX_SIP_ERROR;
    }

    /*
     * The first error is reported, but parsing goes on as far as it can:
     * a request with a bad start line or a bad header line is still
     * answered, and the answer needs the Via, From, To ... of the request.
     */

    (void) ngx_sip_parse_start_line(m, &p, last, err);

    for ( ;; ) {
        rc = ngx_sip_parse_header_line(&p, last, &hdr);

        if (rc == NGX_SIP_HEADERS_DONE) {
            break;
        }

        if (rc == NGX_ERROR) {
            ngx_sip_set_error(err, 400, "Bad Header");
            continue;
        }

        if (rc == NGX_AGAIN) {
            ngx_sip_set_error(err, 400, "Missing Empty Line");
            m->headers_end = last;
            m->end = last;
            return NGX_SIP_ERROR;
        }

        if (m->nheaders == m->max_headers) {
            ngx_sip_set_error(err, 513, "Too Many Headers");
            continue;
        }

        h = &m->headers[m->nheaders++];
        *h = hdr;

        if (m->hdr[h->id] == NULL) {
            m->hdr[h->id] = h;
        }

        if (m->count[h->id] != 255) {
            m->count[h->id]++;
        }
    }

    m->headers_end = p;

    (void) ngx_sip_parse_content_length(m, err);

    avail = last - p;

    m->body.data = p;

    if (m->has_content_length) {

        if (m->content_length > avail) {
            ngx_sip_set_error(err, 400, "Content-Length Larger Than Message");
            m->body.len = avail;

        } else {

            /*
             * RFC 3261 18.3: octets after the body in a datagram are
             * discarded (RFC 4475 3.1.1.8)
             */

            m->body.len = m->content_length;
        }

    } else if (stream) {
        ngx_sip_set_error(err, 400, "Missing Content-Length");
        m->body.len = 0;

    } else {

        /* RFC 3261 18.3: a datagram without one ends at its end */

        m->body.len = avail;
    }

    m->end = m->body.data + m->body.len;

    return err->status ? NGX_SIP_ERROR : NGX_SIP_OK;
}


/*
 * Request-Line = Method SP Request-URI SP SIP-Version CRLF
 * Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF
 *
 * Exactly one SP between the elements and no LWS in the Request-URI
 * (RFC 3261 7.1, RFC 4475 3.1.2.7-10).  On an error *pos is moved past
 * the line, so that the header lines can still be parsed.
 */

static ngx_int_t
ngx_sip_parse_start_line(ngx_sip_msg_t *m, u_char **pos, u_char *last,
    ngx_sip_error_t *err)
{
    u_char      ch, *p, *s, *d;
    ngx_uint_t  major, minor;
    enum {
        sw_start = 0,
        sw_method,
        sw_uri_start,
        sw_uri,
        sw_version_s,
        sw_version_i,
        sw_version_p,
        sw_version_slash,
        sw_first_major_digit,
        sw_major_digit,
        sw_first_minor_digit,
        sw_minor_digit,
        sw_status_start,
        sw_status,
        sw_reason,
        sw_almost_done
    } state;

    p = *pos;
    s = p;
    d = p;
    major = 0;
    minor = 0;

    if (last - p >= 4 && ngx_strncasecmp(p, (u_char *) "SIP/", 4) == 0) {
        state = sw_version_s;

    } else {
        state = sw_start;
    }

    for ( /* void */ ; p < last; p++) {
        ch = *p;

        switch (state) {

        case sw_start:
            if (!ngx_sip_is_token(ch)) {
                goto bad_request_line;
            }

            state = sw_method;
            break;

        case sw_method:
            if (ngx_sip_is_token(ch)) {
                break;
            }

            if (ch != ' ') {
                goto bad_request_line;
            }

            m->request = 1;
            m->method.data = s;
            m->method.len = p - s;
            m->method_id = ngx_sip_method_id(s, p - s);

            state = sw_uri_start;
            break;

        case sw_uri_start:
            if (ch == ' ') {
                ngx_sip_set_error(err, 400, "Extra Space in Request Line");
                goto error;
            }

            s = p;
            state = sw_uri;

            /* up to the first octet that sw_uri has to look at */

            p = ngx_sip_span(p, last, NGX_SIP_C_RURI) - 1;
            break;

        case sw_uri:
            if (ch == ' ') {
                m->request_uri.data = s;
                m->request_uri.len = p - s;

                if (p + 1 < last && p[1] == ' ') {
                    ngx_sip_set_error(err, 400,
                                      "Extra Space in Request Line");
                    goto error;
                }

                state = sw_version_s;
                break;
            }

            if (ch == CR || ch == LF) {
                ngx_sip_set_error(err, 400, "Missing SIP Version");
                goto error;
            }

            /*
             * no URI has CTLs, 8-bit octets, quotes or angle brackets:
             * "<sip:...>" as Request-URI is RFC 4475 3.1.2.7
             */

            if (ch <= 0x20 || ch >= 0x7f || ch == '<' || ch == '>'
                || ch == '"')
            {
                ngx_sip_set_error(err, 400, "Bad Request-URI");
                goto error;
            }

            break;

        /* "SIP/" is matched case-insensitively (RFC 3261 7.1) */

        case sw_version_s:
            s = p;

            if (ch != 'S' && ch != 's') {
                goto bad_version;
            }

            state = sw_version_i;
            break;

        case sw_version_i:
            if (ch != 'I' && ch != 'i') {
                goto bad_version;
            }

            state = sw_version_p;
            break;

        case sw_version_p:
            if (ch != 'P' && ch != 'p') {
                goto bad_version;
            }

            state = sw_version_slash;
            break;

        case sw_version_slash:
            if (ch != '/') {
                goto bad_version;
            }

            state = sw_first_major_digit;
            break;

        case sw_first_major_digit:
            if (ch < '0' || ch > '9') {
                goto bad_version;
            }

            d = p;
            major = ch - '0';
            state = sw_major_digit;
            break;

        /* up to 3 digits each: nobody will ever speak SIP/1000.0 */

        case sw_major_digit:
            if (ch == '.') {
                state = sw_first_minor_digit;
                break;
            }

            if (ch < '0' || ch > '9' || p - d == 3) {
                goto bad_version;
            }

            major = major * 10 + (ch - '0');
            break;

        case sw_first_minor_digit:
            if (ch < '0' || ch > '9') {
                goto bad_version;
            }

            d = p;
            minor = ch - '0';
            state = sw_minor_digit;
            break;

        case sw_minor_digit:
            if (ch >= '0' && ch <= '9') {

                if (p - d == 3) {
                    goto bad_version;
                }

                minor = minor * 10 + (ch - '0');
                break;
            }

            m->version.data = s;
            m->version.len = p - s;
            m->version_n = major * 1000 + minor;

            if (m->request) {

                switch (ch) {
                case CR:
                    state = sw_almost_done;
                    break;
                case LF:
                    goto done;
                case ' ':
                case '\t':
                    ngx_sip_set_error(err, 400,
                                      "Extra Space in Request Line");
                    goto error;
                default:
                    goto bad_version;
                }

                break;
            }

            if (ch != ' ') {
                goto bad_status_line;
            }

            state = sw_status_start;
            break;

        case sw_status_start:
            s = p;
            state = sw_status;

            /* fall through */

        case sw_status:
            if (ch >= '0' && ch <= '9') {

                /* exactly 3 digits: RFC 4475 3.1.2.19 has 4294967301 */

                if (p - s == 3) {
                    goto bad_status_line;
                }

                m->status = m->status * 10 + (ch - '0');
                break;
            }

            if (p - s != 3 || m->status < 100 || m->status > 699) {
                goto bad_status_line;
            }

            /* the SP before an empty reason phrase is often missing */

            switch (ch) {
            case ' ':
                s = p + 1;
                state = sw_reason;
                break;
            case CR:
                s = p;
                state = sw_almost_done;
                break;
            case LF:
                s = p;
                goto done;
            default:
                goto bad_status_line;
            }

            break;

        case sw_reason:

            /* anything but CTLs: UTF-8 is allowed (RFC 4475 3.1.1.12) */

            switch (ch) {
            case CR:
                m->reason.data = s;
                m->reason.len = p - s;
                state = sw_almost_done;
                break;
            case LF:
                m->reason.data = s;
                m->reason.len = p - s;
                goto done;
            default:
                if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                    goto bad_status_line;
                }
                break;
            }

            break;

        case sw_almost_done:
            if (ch == LF) {
                goto done;
            }

            if (m->request) {
                goto bad_request_line;
            }

            goto bad_status_line;
        }
    }

    /* the start line is all there is */

    if (m->request || state < sw_version_s) {
        ngx_sip_set_error(err, 400, "Bad Request Line");

    } else {
        ngx_sip_set_error(err, 400, "Bad Status Line");
    }

    *pos = last;

    return NGX_ERROR;

done:

    *pos = p + 1;

    return NGX_OK;

bad_version:

    if (m->request || state < sw_version_s) {
        ngx_sip_set_error(err, 400, "Bad Request Line");

    } else {
        ngx_sip_set_error(err, 400, "Bad Status Line");
    }

    goto error;

bad_request_line:

    ngx_sip_set_error(err, 400, "Bad Request Line");
    goto error;

bad_status_line:

    ngx_sip_set_error(err, 400, "Bad Status Line");

error:

    /* the version is known only when it was complete */

    if (m->version_n == 0) {
        m->version.len = 0;
        m->version.data = NULL;
    }

    p = ngx_strlchr(p, last, LF);

    *pos = p ? p + 1 : last;

    return NGX_ERROR;
}


/*
 * message-header = field-name HCOLON field-value, continued on lines that
 * start with SP or HT (RFC 3261 7.3.1).  The value is trimmed of LWS at
 * both ends and keeps the folds inside.  Lines may end in CRLF or a bare
 * LF.  Returns NGX_OK with a header, NGX_SIP_HEADERS_DONE after the empty
 * line, NGX_ERROR for a bad line (skipped), NGX_AGAIN at the end of the
 * data without an empty line.
 */

static ngx_int_t
ngx_sip_parse_header_line(u_char **pos, u_char *last, ngx_sip_header_t *h)
{
    u_char   ch, *p, *q, *lf, *eol, *value_start, *value_end;
    enum {
        sw_start = 0,
        sw_name,
        sw_space_before_colon,
        sw_space_before_value,
        sw_value,
        sw_almost_done,
        sw_line_done,
        sw_header_almost_done
    } state;

    p = *pos;

    if (p == last) {
        return NGX_AGAIN;
    }

    state = sw_start;
    value_start = NULL;
    value_end = NULL;

    h->start = p;

    /*
     * Nearly every line is "name: value CRLF" with no fold: it is taken
     * straight, without a state change per octet.  Anything else (LWS
     * before the colon, an empty value, a bare CR or LF, a fold, an
     * error, an incomplete line) goes through the state machine below,
     * from the start of the line.
     */

    if (ngx_sip_is_token(*p)) {
        q = ngx_sip_span(p + 1, last, NGX_SIP_C_TOKEN);

        if (q < last && *q == ':') {
            value_start = q + 1;

            while (value_start < last
                   && (*value_start == ' ' || *value_start == '\t'))
            {
                value_start++;
            }

            if (value_start < last
                && *value_start != CR && *value_start != LF)
            {
                eol = ngx_sip_find_eol(value_start + 1, last);

                if (eol != NULL
                    && *eol == CR && last - eol >= 2 && eol[1] == LF
                    && (last - eol == 2 || (eol[2] != ' ' && eol[2] != '\t')))
                {
                    h->name.data = p;
                    h->name.len = q - p;

                    p = eol + 2;

                    while (eol[-1] == ' ' || eol[-1] == '\t') {
                        eol--;
                    }

                    value_end = eol;

                    goto done;
                }
            }

            value_start = NULL;
        }
    }

    for ( /* void */ ; p < last; p++) {
        ch = *p;

        switch (state) {

        case sw_start:
            switch (ch) {
            case CR:
                state = sw_header_almost_done;
                break;
            case LF:
                *pos = p + 1;
                return NGX_SIP_HEADERS_DONE;
            default:
                if (!ngx_sip_is_token(ch)) {
                    goto invalid;
                }

                h->name.data = p;

                /* the name at once: sw_name gets the octet after it */

                p = ngx_sip_span(p + 1, last, NGX_SIP_C_TOKEN) - 1;
                state = sw_name;
                break;
            }

            break;

        case sw_name:
            if (ngx_sip_is_token(ch)) {
                break;
            }

            h->name.len = p - h->name.data;

            switch (ch) {
            case ':':
                state = sw_space_before_value;
                break;
            case ' ':
            case '\t':
                state = sw_space_before_colon;
                break;
            default:
                goto invalid;
            }

            break;

        case sw_space_before_colon:
            switch (ch) {
            case ' ':
            case '\t':
                break;
            case ':':
                state = sw_space_before_value;
                break;
            default:
                goto invalid;
            }

            break;

        case sw_space_before_value:
            switch (ch) {
            case ' ':
            case '\t':
                break;
            case CR:
                state = sw_almost_done;
                break;
            case LF:
                state = sw_line_done;
                break;
            default:
                value_start = p;
                value_end = p + 1;
                state = sw_value;
                break;
            }

            break;

        case sw_value:

            /*
             * The rest of the line at once: its first CR or LF, then its
             * last non-blank is where the value ends.  A CR that does not
             * end the line is an error, as in the other states, unless no
             * LF follows at all: then the line is not complete yet.
             */

            eol = ngx_sip_find_eol(p, last);

            if (eol == NULL) {
                p = last;
                goto again;
            }

            lf = eol;

            if (*eol == CR) {
                lf = eol + 1;

                if (lf == last || *lf != LF) {

                    if (lf == last
                        || ngx_sip_memchr(lf, LF, last - lf) == NULL)
                    {
                        p = last;
                        goto again;
                    }

                    p = eol;
                    goto invalid;
                }
            }

            while (eol > p && (eol[-1] == ' ' || eol[-1] == '\t')) {
                eol--;
            }

            if (eol > p) {
                value_end = eol;
            }

            p = lf;
            state = sw_line_done;
            break;

        case sw_almost_done:
            if (ch != LF) {

                /* a bare CR is no line end */

                goto invalid;
            }

            state = sw_line_done;
            break;

        case sw_line_done:

            /* a line that starts with SP or HT continues the value */

            if (ch == ' ' || ch == '\t') {
                state = value_start ? sw_value : sw_space_before_value;
                break;
            }

            goto done;

        case sw_header_almost_done:
            if (ch == LF) {
                *pos = p + 1;
                return NGX_SIP_HEADERS_DONE;
            }

            goto invalid;
        }
    }

    if (state != sw_line_done) {

    again:

        /* no complete line, let alone the empty one */

        *pos = last;
        return NGX_AGAIN;
    }

done:

    *pos = p;

    h->end = p;

    if (value_start) {
        h->value.data = value_start;
        h->value.len = value_end - value_start;

    } else {
        h->value.data = h->name.data + h->name.len;
        h->value.len = 0;
    }

    h->id = ngx_sip_header_id(h->name.data, h->name.len);

    return NGX_OK;

invalid:

    *pos = ngx_sip_skip_line(p, last);

    return NGX_ERROR;
}


/* past the LF that ends the line of p, and past its continuation lines */

static u_char *
ngx_sip_skip_line(u_char *p, u_char *last)
{
    for ( ;; ) {
        p = ngx_strlchr(p, last, LF);

        if (p == NULL) {
            return last;
        }

        p++;

        if (p == last || (*p != ' ' && *p != '\t')) {
            return p;
        }
    }
}


/*
 * Content-Length = 1*DIGIT; several lines must agree (RFC 4475 3.3.9 has
 * 13 and 5).
 */

static ngx_int_t
ngx_sip_parse_content_length(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    size_t             n;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_CONTENT_LENGTH) {
            continue;
        }

        if (ngx_sip_parse_size(&h->value, &n) != NGX_OK) {
            ngx_sip_set_error(err, 400, "Bad Content-Length");
            m->has_content_length = 0;
            return NGX_ERROR;
        }

        if (m->has_content_length && n != m->content_length) {
            ngx_sip_set_error(err, 400, "Conflicting Content-Length");
            m->has_content_length = 0;
            return NGX_ERROR;
        }

        m->has_content_length = 1;
        m->content_length = n;
    }

    return NGX_OK;
}


/* 1*DIGIT with LWS around, which folding may leave inside the value */

static ngx_int_t
ngx_sip_parse_size(ngx_str_t *value, size_t *n)
{
    u_char  *p, *end;
    size_t   v, d;

    p = value->data;
    end = p + value->len;

    if (p == end || *p < '0' || *p > '9') {
        return NGX_ERROR;
    }

    v = 0;

    for ( /* void */ ; p < end && *p >= '0' && *p <= '9'; p++) {
        d = *p - '0';

        if (v > ((size_t) -1 - d) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + d;
    }

    if (ngx_sip_skip_lws(p, end) != end) {
        return NGX_ERROR;
    }

    *n = v;

    return NGX_OK;
}


/*
 * RFC 3261 8.2 (UAS) and 16.3 (proxy) request validation, and the sanity
 * checks of a response before it is looked at (RFC 3261 18.1.2).  The
 * order of the checks decides the answer when several things are wrong:
 *
 *   505 for a version we do not speak, before anything else;
 *   400 for missing, repeated or malformed mandatory headers, the
 *       Request-URI, and the other headers we use: Route, Expires, and
 *       the Contacts of a REGISTER (what nothing uses is not parsed:
 *       RFC 3261 16.3 has a proxy forward it as it came);
 *   416 for a Request-URI scheme other than sip, sips and tel;
 *   420 for Require/Proxy-Require option tags we do not support;
 *   483 for Max-Forwards 0, only when all else is right, so that the
 *       caller may still answer an OPTIONS to itself (RFC 3261 16.3.3)
 *       instead.
 */

ngx_int_t
ngx_sip_msg_validate(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    ngx_int_t  rc;

    /*
     * ruri, via, from, to and cseq are still zero from
     * ngx_sip_parse_message(): 1.2 kB not written twice per message
     */

    ngx_str_null(&m->call_id);
    m->max_forwards = -1;

    err->status = 0;
    ngx_str_null(&err->reason);
    ngx_str_null(&err->header);

    if (m->version_n != NGX_SIP_VERSION_20) {

        /*
         * the other headers are still parsed, for the answer, but the
         * verdict is 505 (RFC 3261 8.2.1 ... RFC 4475 3.1.2.16)
         */

        (void) ngx_sip_validate_headers(m, err);

        err->status = 505;
        ngx_str_set(&err->reason, "Version Not Supported");

        return NGX_ERROR;
    }

    if (ngx_sip_validate_headers(m, err) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!m->request) {
        return NGX_OK;
    }

    rc = ngx_sip_validate_request_uri(m, err);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_sip_validate_options(m, err) != NGX_OK) {
        return NGX_ERROR;
    }

    if (m->max_forwards == 0) {
        err->status = 483;
        ngx_str_set(&err->reason, "Too Many Hops");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_sip_validate_headers(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    uint32_t           n;
    ngx_str_t          value;
    ngx_uint_t         bad;
    ngx_sip_header_t  *h;

    /* RFC 3261 8.1.1: mandatory in every request, and in responses */

    if (m->hdr[NGX_SIP_HDR_VIA] == NULL) {
        ngx_sip_set_error(err, 400, "Missing Via");
        return NGX_ERROR;
    }

    bad = ngx_sip_validate_lines(m);

    if (bad & NGX_SIP_BAD_VIA) {
        ngx_sip_set_error(err, 400, "Bad Via");
        return NGX_ERROR;
    }

    if (m->hdr[NGX_SIP_HDR_FROM] == NULL) {
        ngx_sip_set_error(err, 400, "Missing From");
        return NGX_ERROR;
    }

    if (m->hdr[NGX_SIP_HDR_TO] == NULL) {
        ngx_sip_set_error(err, 400, "Missing To");
        return NGX_ERROR;
    }

    if (m->hdr[NGX_SIP_HDR_CALL_ID] == NULL) {
        ngx_sip_set_error(err, 400, "Missing Call-ID");
        return NGX_ERROR;
    }

    if (m->hdr[NGX_SIP_HDR_CSEQ] == NULL) {
        ngx_sip_set_error(err, 400, "Missing CSeq");
        return NGX_ERROR;
    }

    /* single-valued (RFC 4475 3.3.8) */

    if (m->count[NGX_SIP_HDR_CALL_ID] > 1) {
        ngx_sip_set_error(err, 400, "Duplicate Call-ID");
        return NGX_ERROR;
    }

    if (m->count[NGX_SIP_HDR_FROM] > 1) {
        ngx_sip_set_error(err, 400, "Duplicate From");
        return NGX_ERROR;
    }

    if (m->count[NGX_SIP_HDR_TO] > 1) {
        ngx_sip_set_error(err, 400, "Duplicate To");
        return NGX_ERROR;
    }

    if (m->count[NGX_SIP_HDR_CSEQ] > 1) {
        ngx_sip_set_error(err, 400, "Duplicate CSeq");
        return NGX_ERROR;
    }

    if (m->count[NGX_SIP_HDR_MAX_FORWARDS] > 1) {
        ngx_sip_set_error(err, 400, "Duplicate Max-Forwards");
        return NGX_ERROR;
    }

    if (ngx_sip_validate_addr(m->hdr[NGX_SIP_HDR_FROM], &m->from) != NGX_OK) {
        ngx_sip_set_error(err, 400, "Bad From");
        return NGX_ERROR;
    }

    if (ngx_sip_validate_addr(m->hdr[NGX_SIP_HDR_TO], &m->to) != NGX_OK) {
        ngx_sip_set_error(err, 400, "Bad To");
        return NGX_ERROR;
    }

    value = m->hdr[NGX_SIP_HDR_CALL_ID]->value;

    if (ngx_sip_validate_call_id(&value) != NGX_OK) {
        ngx_sip_set_error(err, 400, "Bad Call-ID");
        return NGX_ERROR;
    }

    m->call_id = value;

    value = m->hdr[NGX_SIP_HDR_CSEQ]->value;

    if (ngx_sip_parse_cseq(&value, &m->cseq) != NGX_OK) {
        ngx_sip_set_error(err, 400, "Bad CSeq");
        return NGX_ERROR;
    }

    /* RFC 3261 8.1.1.5: the method must match, byte for byte */

    if (m->request
        && (m->cseq.method.len != m->method.len
            || ngx_memcmp(m->cseq.method.data, m->method.data,
                          m->method.len) != 0))
    {
        ngx_sip_set_error(err, 400, "CSeq Method Mismatch");
        return NGX_ERROR;
    }

    h = m->hdr[NGX_SIP_HDR_MAX_FORWARDS];

    if (h) {
        if (ngx_sip_parse_uint32(&h->value, &n) != NGX_OK || n > 255) {
            ngx_sip_set_error(err, 400, "Bad Max-Forwards");
            return NGX_ERROR;
        }

        m->max_forwards = n;
    }

    if (bad & NGX_SIP_BAD_EXPIRES) {
        ngx_sip_set_error(err, 400, "Bad Expires");
        return NGX_ERROR;
    }

    if (bad & NGX_SIP_BAD_CONTACT) {
        ngx_sip_set_error(err, 400, "Bad Contact");
        return NGX_ERROR;
    }

    if (bad & NGX_SIP_BAD_ROUTE) {
        ngx_sip_set_error(err, 400, "Bad Route");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_sip_validate_request_uri(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    u_char     *p, *end;
    ngx_int_t   rc;

    p = m->request_uri.data;
    end = p + m->request_uri.len;

    if (p == NULL || p == end) {
        ngx_sip_set_error(err, 400, "Bad Request-URI");
        return NGX_ERROR;
    }

    rc = ngx_sip_parse_uri(p, end, &m->ruri);

    if (rc == NGX_OK
        && (m->ruri.scheme_id == NGX_SIP_SCHEME_SIP
            || m->ruri.scheme_id == NGX_SIP_SCHEME_SIPS))
    {
        /*
         * RFC 3261 19.1.5: headers are not allowed in a Request-URI
         * (RFC 4475 3.1.2.11)
         */

        if (m->ruri.headers.len) {
            ngx_sip_set_error(err, 400, "Bad Request-URI");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (rc == NGX_OK && m->ruri.scheme_id == NGX_SIP_SCHEME_TEL) {
        return NGX_OK;
    }

    /*
     * scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ): a well formed
     * scheme that we do not speak is 416 (RFC 3261 8.2.2.1), anything
     * else, or a sip/sips/tel URI that does not parse, is 400
     */

    if ((*p | 0x20) < 'a' || (*p | 0x20) > 'z') {
        ngx_sip_set_error(err, 400, "Bad Request-URI");
        return NGX_ERROR;
    }

    for (p++; p < end && *p != ':'; p++) {
        if (((*p | 0x20) < 'a' || (*p | 0x20) > 'z')
            && (*p < '0' || *p > '9') && *p != '+' && *p != '-' && *p != '.')
        {
            ngx_sip_set_error(err, 400, "Bad Request-URI");
            return NGX_ERROR;
        }
    }

    if (p == end || p + 1 == end
        || (p - m->request_uri.data == 3
            && (ngx_sip_name_eq(m->request_uri.data, "sip", 3)
                || ngx_sip_name_eq(m->request_uri.data, "tel", 3)))
        || (p - m->request_uri.data == 4
            && ngx_sip_name_eq(m->request_uri.data, "sips", 4)))
    {
        ngx_sip_set_error(err, 400, "Bad Request-URI");
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_memzero(&m->ruri, sizeof(ngx_sip_uri_t));
        m->ruri.text = m->request_uri;
        m->ruri.scheme.data = m->request_uri.data;
        m->ruri.scheme.len = p - m->request_uri.data;
        m->ruri.opaque.data = p + 1;
        m->ruri.opaque.len = end - (p + 1);
    }

    m->ruri.scheme_id = NGX_SIP_SCHEME_OTHER;

    ngx_sip_set_error(err, 416, "Unsupported URI Scheme");

    return NGX_ERROR;
}


/*
 * The header lines that are lists or numbers, in one pass over the lines:
 * a bit per kind that has a bad line, for ngx_sip_validate_headers() to
 * report in its own order.  After the first bad line of a kind the others
 * of that kind are not looked at.
 */

static ngx_uint_t
ngx_sip_validate_lines(ngx_sip_msg_t *m)
{
    uint32_t           n;
    ngx_uint_t         i, bad, bit;
    ngx_sip_header_t  *h;

    bad = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        switch (h->id) {

        case NGX_SIP_HDR_VIA:
            if (!(bad & NGX_SIP_BAD_VIA)
                && ngx_sip_validate_via_line(m, h) != NGX_OK)
            {
                bad |= NGX_SIP_BAD_VIA;
            }

            break;

        case NGX_SIP_HDR_EXPIRES:
            if (ngx_sip_parse_uint32(&h->value, &n) != NGX_OK) {
                bad |= NGX_SIP_BAD_EXPIRES;
            }

            break;

        /*
         * RFC 3261 16.3: a proxy checks what it uses, and forwards the
         * rest as it came, well-formed or not.  The registrar uses the
         * Contacts of a REGISTER; nothing here uses those of any other
         * message, or a Record-Route (ours is added, theirs are copied),
         * so they are not parsed at all.
         */

        case NGX_SIP_HDR_CONTACT:
            if (!(m->request && m->method_id == NGX_SIP_REGISTER)) {
                break;
            }

            /* fall through */

        case NGX_SIP_HDR_ROUTE:
            bit = (h->id == NGX_SIP_HDR_CONTACT) ? NGX_SIP_BAD_CONTACT
                                                  : NGX_SIP_BAD_ROUTE;

            if (!(bad & bit) && ngx_sip_validate_addr_line(m, h) != NGX_OK) {
                bad |= bit;
            }

            break;
        }
    }

    return bad;
}


/* every via-parm of a Via line; the first one of the first is the top Via */

static ngx_int_t
ngx_sip_validate_via_line(ngx_sip_msg_t *m, ngx_sip_header_t *h)
{
    u_char         *p, *end;
    ngx_int_t       rc;
    ngx_sip_via_t   via;

    p = h->value.data;
    end = p + h->value.len;

    do {
        if (ngx_sip_parse_via(&p, end, &via) != NGX_OK) {
            return NGX_ERROR;
        }

        if (m->via.text.data == NULL) {
            m->via = via;
        }

        rc = ngx_sip_next_element(&p, end);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

    } while (rc == NGX_OK);

    return NGX_OK;
}


/*
 * From and To: one name-addr or addr-spec; an addr-spec whose URI has
 * headers must have been in <> (RFC 3261 20.10).
 */

static ngx_int_t
ngx_sip_validate_addr(ngx_sip_header_t *h, ngx_sip_addr_t *addr)
{
    u_char  *p, *end;

    p = h->value.data;
    end = p + h->value.len;

    if (ngx_sip_parse_addr(&p, end, addr, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_sip_skip_lws(p, end) != end || addr->star) {
        return NGX_ERROR;
    }

    if (!addr->angle && addr->uri.headers.len) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a line of Contact or Route: a comma list */

static ngx_int_t
ngx_sip_validate_addr_line(ngx_sip_msg_t *m, ngx_sip_header_t *h)
{
    u_char          *p, *end;
    ngx_int_t        rc;
    ngx_sip_addr_t   addr;

    p = h->value.data;
    end = p + h->value.len;

    do {
        if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK) {
            return NGX_ERROR;
        }

        /* "Contact: *" stands alone; Route entries are always in <> */

        if (addr.star) {
            if (h->id != NGX_SIP_HDR_CONTACT || m->count[h->id] != 1
                || ngx_sip_skip_lws(p, end) != end)
            {
                return NGX_ERROR;
            }

        } else if (!addr.angle
                   && (h->id != NGX_SIP_HDR_CONTACT || addr.uri.headers.len))
        {
            return NGX_ERROR;
        }

        rc = ngx_sip_next_element(&p, end);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

    } while (rc == NGX_OK);

    return NGX_OK;
}


/* callid = word [ "@" word ] */

static ngx_int_t
ngx_sip_validate_call_id(ngx_str_t *value)
{
    u_char  *p, *end, *at;

    p = value->data;
    end = p + value->len;
    at = NULL;

    if (p == end) {
        return NGX_ERROR;
    }

    p = ngx_sip_span(p, end, NGX_SIP_C_WORD);

    if (p < end && *p == '@') {
        at = p;
        p = ngx_sip_span(p + 1, end, NGX_SIP_C_WORD);
    }

    if (p != end || at == value->data || at == end - 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Require and Proxy-Require (RFC 3261 8.2.2.3, 16.3 item 5): every option
 * tag we do not support goes into the Unsupported header of the 420.  A
 * CANCEL, or an ACK, never fails on them: there is no answer to give.
 */

static ngx_int_t
ngx_sip_validate_options(ngx_sip_msg_t *m, ngx_sip_error_t *err)
{
    u_char            *p, *end, *tok, *b, *bend;
    size_t             len;
    ngx_uint_t         i, unsupported;
    ngx_sip_header_t  *h;

    if (m->hdr[NGX_SIP_HDR_REQUIRE] == NULL
        && m->hdr[NGX_SIP_HDR_PROXY_REQUIRE] == NULL)
    {
        return NGX_OK;
    }

    unsupported = 0;

    b = ngx_cpymem(err->header_buf, "Unsupported: ",
                   sizeof("Unsupported: ") - 1);
    bend = err->header_buf + sizeof(err->header_buf);

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_REQUIRE
            && h->id != NGX_SIP_HDR_PROXY_REQUIRE)
        {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        for ( ;; ) {
            p = ngx_sip_skip_lws(p, end);

            for (tok = p; p < end && ngx_sip_is_token(*p); p++) {
                /* void */
            }

            len = p - tok;

            if (len == 0) {
                goto invalid;
            }

            if (!ngx_sip_option_supported(tok, len)) {

                /* as many as fit: the list is advice, not a contract */

                if ((size_t) (bend - b) >= len + 2) {

                    if (unsupported) {
                        *b++ = ',';
                        *b++ = ' ';
                    }

                    b = ngx_cpymem(b, tok, len);
                }

                unsupported++;
            }

            p = ngx_sip_skip_lws(p, end);

            if (p == end) {
                break;
            }

            if (*p != ',') {
                goto invalid;
            }

            p++;
        }
    }

    if (unsupported == 0
        || m->method_id == NGX_SIP_CANCEL || m->method_id == NGX_SIP_ACK)
    {
        return NGX_OK;
    }

    err->status = 420;
    ngx_str_set(&err->reason, "Bad Extension");

    if (b - err->header_buf > (ssize_t) sizeof("Unsupported: ") - 1) {
        err->header.data = err->header_buf;
        err->header.len = b - err->header_buf;
    }

    return NGX_ERROR;

invalid:

    err->status = 400;
    ngx_str_null(&err->header);

    if (h->id == NGX_SIP_HDR_REQUIRE) {
        ngx_str_set(&err->reason, "Bad Require");

    } else {
        ngx_str_set(&err->reason, "Bad Proxy-Require");
    }

    return NGX_ERROR;
}


static ngx_uint_t
ngx_sip_option_supported(u_char *p, size_t len)
{
    ngx_str_t  *o;

    /* option tags compare case-insensitively (RFC 3261 19.2) */

    for (o = ngx_sip_supported_options; o->len; o++) {
        if (o->len == len && ngx_strncasecmp(o->data, p, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * After an element of a comma list: NGX_OK with *pos on the next element,
 * NGX_DECLINED at the end of the value, NGX_ERROR when anything but a comma
 * follows, or nothing follows the comma.
 */

static ngx_int_t
ngx_sip_next_element(u_char **pos, u_char *end)
{
    u_char  *p;

    p = ngx_sip_skip_lws(*pos, end);

    if (p == end) {
        *pos = p;
        return NGX_DECLINED;
    }

    if (*p != ',') {
        return NGX_ERROR;
    }

    p = ngx_sip_skip_lws(p + 1, end);

    if (p == end) {
        return NGX_ERROR;
    }

    *pos = p;

    return NGX_OK;
}
