
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * Structured header values: Via, name-addr/addr-spec lists (From, To,
 * Contact, Route, Record-Route, Path ...), CSeq, numbers and token lists.
 * A header value is a slice that may still hold folds (CRLF followed by
 * white space), so CR and LF inside a value are LWS here.
 *
 * List iteration: a parser reads one element and leaves *pos right after
 * it, before any LWS and comma; ngx_sip_parse_token() alone skips commas
 * itself.  NGX_DECLINED means nothing is left in the value.
 */


static ngx_int_t ngx_sip_parse_gen_params(u_char **pos, u_char *end,
    ngx_str_t *params, ngx_sip_via_t *via, ngx_sip_addr_t *addr);
static ngx_int_t ngx_sip_parse_quoted(u_char **pos, u_char *end);
static ngx_int_t ngx_sip_parse_qvalue(u_char *p, size_t len, ngx_uint_t *q);
static ngx_int_t ngx_sip_parse_digits(u_char *p, size_t len, uint32_t *n);


/* cleared by a copy, not memset(): see ngx_sip_uri_zero */
static const ngx_sip_via_t  ngx_sip_via_zero;


/*
 * via-parm = sent-protocol LWS sent-by *( SEMI via-params )
 * sent-protocol = protocol-name SLASH protocol-version SLASH transport
 */

ngx_int_t
ngx_sip_parse_via(u_char **pos, u_char *end, ngx_sip_via_t *via)
{
    u_char      *p, *s, *e;
    ngx_uint_t   i, n;

    *via = ngx_sip_via_zero;

    p = ngx_sip_skip_lws(*pos, end);

    if (p == end) {
        *pos = p;
        return NGX_DECLINED;
    }

    via->text.data = p;
    via->protocol.data = p;

    /*
     * protocol-name, version, transport: three tokens joined by "/",
     * nearly always "SIP/2.0": then the loop starts at the slash before
     * the transport
     */

    i = 0;

    if (end - p >= 8
        && (p[0] | 0x20) == 's' && (p[1] | 0x20) == 'i'
        && (p[2] | 0x20) == 'p' && ngx_memcmp(p + 3, "/2.0/", 5) == 0)
    {
        via->protocol.len = 7;
        p += 7;
        i = 2;
    }

    for ( /* void */ ; i < 3; i++) {

        if (i) {
            p = ngx_sip_skip_lws(p, end);

            if (p == end || *p != '/') {
                return NGX_ERROR;
            }

            p = ngx_sip_skip_lws(p + 1, end);
        }

        s = p;

        p = ngx_sip_span(p, end, NGX_SIP_C_TOKEN);

        if (p == s) {
            return NGX_ERROR;
        }

        if (i == 1) {
            via->protocol.len = p - via->protocol.data;

        } else if (i == 2) {
            via->transport.data = s;
            via->transport.len = p - s;
        }
    }

    /* LWS, then sent-by = host [ COLON port ] */

    s = p;
    p = ngx_sip_skip_lws(p, end);

    if (p == s || p == end) {
        return NGX_ERROR;
    }

    s = p;

    if (*p == '[') {
        while (p < end && *p != ']') {
            p++;
        }

        if (p == end || ngx_sip_is_ipv6(s + 1, p) != NGX_OK) {
            return NGX_ERROR;
        }

        p++;
        via->host_type = NGX_SIP_HOST_IPV6;

    } else {
        p = ngx_sip_span(p, end, NGX_SIP_C_HOST);

        if (p == s) {
            return NGX_ERROR;
        }

        via->host_type = (ngx_sip_is_ipv4(s, p) == NGX_OK)
                         ? NGX_SIP_HOST_IPV4 : NGX_SIP_HOST_NAME;
    }

    via->host.data = s;
    via->host.len = p - s;

    e = p;
    p = ngx_sip_skip_lws(p, end);

    if (p < end && *p == ':') {
        p = ngx_sip_skip_lws(p + 1, end);
        s = p;
        n = 0;

        while (p < end && *p >= '0' && *p <= '9') {
            n = n * 10 + (*p - '0');

            if (n > 65535) {
                return NGX_ERROR;
            }

            p++;
        }

        if (p == s || n == 0) {
            return NGX_ERROR;
        }

        via->port_text.data = s;
        via->port_text.len = p - s;
        via->port = (in_port_t) n;
        e = p;

    } else {
        p = e;
    }

    if (ngx_sip_parse_gen_params(&p, end, &via->params, via, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (via->params.len) {
        e = via->params.data + via->params.len;
    }

    via->text.len = e - via->text.data;

    *pos = e;

    return NGX_OK;
}


/*
 * *( SEMI generic-param ), generic-param = token [ EQUAL gen-value ],
 * gen-value = token / host / quoted-string.  Leaves *pos after the last
 * parameter; the known ones of a Via or an address are recorded.
 */

static ngx_int_t
ngx_sip_parse_gen_params(u_char **pos, u_char *end, ngx_str_t *params,
    ngx_sip_via_t *via, ngx_sip_addr_t *addr)
{
    u_char     *p, *last;
    uint32_t    n;
    ngx_str_t   name, value;

    p = *pos;
    last = p;

    params->data = NULL;
    params->len = 0;

    for ( ;; ) {
        p = ngx_sip_skip_lws(p, end);

        if (p == end || *p != ';') {
            break;
        }

        if (params->data == NULL) {
            params->data = p;
        }

        p = ngx_sip_skip_lws(p + 1, end);

        name.data = p;

        p = ngx_sip_span(p, end, NGX_SIP_C_TOKEN);

        name.len = p - name.data;

        if (name.len == 0) {
            return NGX_ERROR;
        }

        last = p;
        ngx_str_null(&value);

        p = ngx_sip_skip_lws(p, end);

        if (p < end && *p == '=') {
            p = ngx_sip_skip_lws(p + 1, end);

            value.data = p;

            if (p < end && *p == '"') {
                if (ngx_sip_parse_quoted(&p, end) != NGX_OK) {
                    return NGX_ERROR;
                }

            } else {

                /* token, or a host: IPv6 with or without brackets */

                p = ngx_sip_span(p, end, NGX_SIP_C_PVALUE);
            }

            value.len = p - value.data;

            if (value.len == 0) {
                return NGX_ERROR;
            }

            last = p;

        } else {
            p = last;
        }

        if (via) {
            if (name.len == 6 && ngx_sip_name_eq(name.data, "branch", 6)) {
                if (value.len == 0) {
                    return NGX_ERROR;
                }

                via->branch = value;

            } else if (name.len == 8
                       && ngx_sip_name_eq(name.data, "received", 8))
            {
                if (value.len == 0) {
                    return NGX_ERROR;
                }

                via->received = value;

            } else if (name.len == 5
                       && ngx_sip_name_eq(name.data, "rport", 5))
            {
                via->has_rport = 1;
                via->rport_text = value;

                if (value.len) {
                    if (ngx_sip_parse_digits(value.data, value.len, &n)
                        != NGX_OK
                        || n == 0 || n > 65535)
                    {
                        return NGX_ERROR;
                    }

                    via->rport = (in_port_t) n;
                }

            } else if (name.len == 5
                       && ngx_sip_name_eq(name.data, "maddr", 5))
            {
                via->maddr = value;

            } else if (name.len == 3 && ngx_sip_name_eq(name.data, "ttl", 3)) {
                if (ngx_sip_parse_digits(value.data, value.len, &n) != NGX_OK
                    || n > 255)
                {
                    return NGX_ERROR;
                }

                via->ttl = value;
            }

        } else if (addr) {
            if (name.len == 3 && ngx_sip_name_eq(name.data, "tag", 3)) {
                if (value.len == 0) {
                    return NGX_ERROR;
                }

                addr->tag = value;

            } else if (name.len == 7
                       && ngx_sip_name_eq(name.data, "expires", 7))
            {
                if (ngx_sip_parse_digits(value.data, value.len, &n)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                addr->expires_text = value;
                addr->expires = n;
                addr->has_expires = 1;

            } else if (name.len == 1 && (name.data[0] | 0x20) == 'q') {
                if (ngx_sip_parse_qvalue(value.data, value.len, &addr->q)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                addr->q_text = value;
                addr->has_q = 1;
            }
        }
    }

    if (params->data) {
        params->len = last - params->data;
    }

    *pos = last;

    return NGX_OK;
}


/* quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE */

static ngx_int_t
ngx_sip_parse_quoted(u_char **pos, u_char *end)
{
    u_char  *p;

    p = *pos + 1;

    while (p < end) {

        if (*p == '\\') {
            if (end - p < 2) {
                return NGX_ERROR;
            }

            p += 2;
            continue;
        }

        if (*p == '"') {
            *pos = p + 1;
            return NGX_OK;
        }

        p++;
    }

    return NGX_ERROR;
}


/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */

static ngx_int_t
ngx_sip_parse_qvalue(u_char *p, size_t len, ngx_uint_t *q)
{
    u_char      *end;
    ngx_uint_t   n, scale;

    /* a parameter without "=" has no value: p is NULL */

    if (len == 0) {
        return NGX_ERROR;
    }

    end = p + len;

    if (*p != '0' && *p != '1') {
        return NGX_ERROR;
    }

    n = (*p++ - '0') * 1000;

    if (p < end) {
        if (*p++ != '.' || end - p > 3) {
            return NGX_ERROR;
        }

        for (scale = 100; p < end; scale /= 10) {
            if (*p < '0' || *p > '9') {
                return NGX_ERROR;
            }

            n += (*p++ - '0') * scale;
        }
    }

    if (n > 1000) {
        return NGX_ERROR;
    }

    *q = n;

    return NGX_OK;
}


static ngx_int_t
ngx_sip_parse_digits(u_char *p, size_t len, uint32_t *n)
{
    u_char    *end;
    uint64_t   value;

    if (len == 0) {
        return NGX_ERROR;
    }

    end = p + len;

    value = 0;

    while (p < end) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        value = value * 10 + (*p++ - '0');

        if (value > 0xffffffff) {
            return NGX_ERROR;
        }
    }

    *n = (uint32_t) value;

    return NGX_OK;
}


/*
 * name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, or an addr-spec
 * alone, followed by header parameters; "*" for Contact.  In the addr-spec
 * form the parameters belong to the header, not to the URI (RFC 3261
 * 20.10), and the URI ends at the first ";", "," or white space.
 */

ngx_int_t
ngx_sip_parse_addr(u_char **pos, u_char *end, ngx_sip_addr_t *addr,
    ngx_uint_t list)
{
    u_char  *p, *s, *q, *uri_end;

    /*
     * field by field: 344 octets are past what gcc copies with moves;
     * the URI is cleared by ngx_sip_parse_uri(), or before a return that
     * does not get to it
     */

    ngx_str_null(&addr->text);
    ngx_str_null(&addr->display);
    ngx_str_null(&addr->uri_text);
    ngx_str_null(&addr->params);
    ngx_str_null(&addr->tag);
    ngx_str_null(&addr->expires_text);
    ngx_str_null(&addr->q_text);
    addr->q = 1000;
    addr->expires = 0;
    addr->has_expires = 0;
    addr->has_q = 0;
    addr->angle = 0;
    addr->star = 0;

    p = ngx_sip_skip_lws(*pos, end);

    if (p == end) {
        *pos = p;
        addr->uri = ngx_sip_uri_zero;
        return NGX_DECLINED;
    }

    addr->text.data = p;

    if (*p == '*') {
        q = ngx_sip_skip_lws(p + 1, end);

        if (q == end || *q == ',' || *q == ';') {
            addr->star = 1;
            addr->uri = ngx_sip_uri_zero;
            p++;

            if (ngx_sip_parse_gen_params(&p, end, &addr->params, NULL, addr)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            addr->text.len = p - addr->text.data;
            *pos = p;
            return NGX_OK;
        }
    }

    s = p;

    if (*p == '"') {
        if (ngx_sip_parse_quoted(&p, end) != NGX_OK) {
            goto failed;
        }

        addr->display.data = s;
        addr->display.len = p - s;

        p = ngx_sip_skip_lws(p, end);

        if (p == end || *p != '<') {
            goto failed;
        }

    } else if (*p != '<') {

        /* *(token LWS) before "<" is a display name (RFC 4475 3.1.1.6) */

        q = p;

        while (q < end && (ngx_sip_is_token(*q) || *q == ' ' || *q == '\t'
                           || *q == CR || *q == LF))
        {
            q++;
        }

        if (q < end && *q == '<') {
            addr->display.data = s;

            while (q > s && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == CR
                             || q[-1] == LF))
            {
                q--;
            }

            addr->display.len = q - s;

            p = ngx_sip_skip_lws(q, end);
        }
    }

    if (p < end && *p == '<') {
        addr->angle = 1;

        s = ++p;

        p = ngx_sip_memchr(p, '>', end - p);

        if (p == NULL) {
            goto failed;
        }

        uri_end = p++;

    } else {
        s = p;

        while (p < end && *p != ';' && *p != ',' && *p != ' ' && *p != '\t'
               && *p != CR && *p != LF && *p != '<' && *p != '>'
               && *p != '"')
        {
            p++;
        }

        uri_end = p;
    }

    if (ngx_sip_parse_uri(s, uri_end, &addr->uri) != NGX_OK) {
        return NGX_ERROR;
    }

    addr->uri_text.data = s;
    addr->uri_text.len = uri_end - s;

    if (ngx_sip_parse_gen_params(&p, end, &addr->params, NULL, addr)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    addr->text.len = p - addr->text.data;

    if (!list) {
        q = ngx_sip_skip_lws(p, end);

        if (q != end) {
            return NGX_ERROR;
        }
    }

    *pos = p;

    return NGX_OK;

failed:

    addr->uri = ngx_sip_uri_zero;

    return NGX_ERROR;
}


/* CSeq = 1*DIGIT LWS Method */

ngx_int_t
ngx_sip_parse_cseq(ngx_str_t *value, ngx_sip_cseq_t *cseq)
{
    u_char    *p, *end, *s;
    uint64_t   n;

    p = ngx_sip_skip_lws(value->data, value->data + value->len);
    end = value->data + value->len;

    s = p;
    n = 0;

    while (p < end && *p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');

        if (n > 0xffffffff) {
            return NGX_ERROR;
        }
    }

    if (p == s) {
        return NGX_ERROR;
    }

    s = p;
    p = ngx_sip_skip_lws(p, end);

    if (p == s || p == end) {
        return NGX_ERROR;
    }

    s = p;

    while (p < end && ngx_sip_is_token(*p)) {
        p++;
    }

    if (p == s || ngx_sip_skip_lws(p, end) != end) {
        return NGX_ERROR;
    }

    cseq->number = (uint32_t) n;
    cseq->method.data = s;
    cseq->method.len = p - s;
    cseq->method_id = ngx_sip_method_id(s, p - s);

    return NGX_OK;
}


ngx_int_t
ngx_sip_parse_uint32(ngx_str_t *value, uint32_t *n)
{
    u_char  *p, *end, *s;

    end = value->data + value->len;
    p = ngx_sip_skip_lws(value->data, end);

    s = p;

    while (p < end && *p >= '0' && *p <= '9') {
        p++;
    }

    if (ngx_sip_skip_lws(p, end) != end) {
        return NGX_ERROR;
    }

    return ngx_sip_parse_digits(s, p - s, n);
}


/*
 * One token of a comma list (Require, Supported, Allow ...): skips LWS
 * and commas before it; NGX_DECLINED at the end.
 */

ngx_int_t
ngx_sip_parse_token(u_char **pos, u_char *end, ngx_str_t *token)
{
    u_char  *p, *s;

    p = *pos;

    while (p < end && (*p == ',' || *p == ' ' || *p == '\t' || *p == CR
                       || *p == LF))
    {
        p++;
    }

    if (p == end) {
        *pos = p;
        return NGX_DECLINED;
    }

    s = p;

    while (p < end && ngx_sip_is_token(*p)) {
        p++;
    }

    if (p == s) {
        return NGX_ERROR;
    }

    token->data = s;
    token->len = p - s;

    p = ngx_sip_skip_lws(p, end);

    if (p < end && *p != ',') {
        return NGX_ERROR;
    }

    *pos = p;

    return NGX_OK;
}


/*
 * A header parameter by name in a ";a=b; c = "d"" string: NGX_OK with
 * its value as written (quotes kept), NGX_DECLINED when absent.
 */

ngx_int_t
ngx_sip_param(ngx_str_t *params, char *name, ngx_str_t *value)
{
    u_char  *p, *end, *n;
    size_t   len;

    len = ngx_strlen(name);

    if (params->len == 0) {
        return NGX_DECLINED;
    }

    p = params->data;
    end = p + params->len;

    while (p < end) {
        p = ngx_sip_skip_lws(p, end);

        if (p == end || *p != ';') {
            return NGX_DECLINED;
        }

        p = ngx_sip_skip_lws(p + 1, end);
        n = p;

        while (p < end && ngx_sip_is_token(*p)) {
            p++;
        }

        value->data = p;
        value->len = 0;

        if ((size_t) (p - n) == len
            && ngx_strncasecmp(n, (u_char *) name, len) == 0)
        {
            p = ngx_sip_skip_lws(p, end);

            if (p < end && *p == '=') {
                p = ngx_sip_skip_lws(p + 1, end);
                value->data = p;

                if (p < end && *p == '"') {
                    if (ngx_sip_parse_quoted(&p, end) != NGX_OK) {
                        return NGX_DECLINED;
                    }

                } else {
                    while (p < end && *p != ';' && *p != ' ' && *p != '\t'
                           && *p != CR && *p != LF)
                    {
                        p++;
                    }
                }

                value->len = p - value->data;
            }

            return NGX_OK;
        }

        p = ngx_sip_skip_lws(p, end);

        if (p < end && *p == '=') {
            p = ngx_sip_skip_lws(p + 1, end);

            if (p < end && *p == '"') {
                if (ngx_sip_parse_quoted(&p, end) != NGX_OK) {
                    return NGX_DECLINED;
                }

            } else {
                while (p < end && *p != ';') {
                    p++;
                }
            }
        }
    }

    return NGX_DECLINED;
}
