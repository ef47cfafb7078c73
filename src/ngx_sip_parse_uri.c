
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * SIP, SIPS and tel URIs (RFC 3261 19.1 and 25.1, RFC 3966), and the
 * scheme of any other URI (RFC 3986 3.1), which a caller may reject with
 * 416.  Every field is a slice of the input; %-escapes are left as they
 * are and decoded only for comparisons (RFC 3261 19.1.4).
 */


static ngx_int_t ngx_sip_parse_userinfo(u_char *p, u_char *end,
    ngx_sip_uri_t *uri);
static ngx_int_t ngx_sip_parse_host(u_char **pos, u_char *end,
    ngx_sip_uri_t *uri);
static ngx_int_t ngx_sip_parse_uri_params(u_char **pos, u_char *end,
    ngx_sip_uri_t *uri);
static ngx_int_t ngx_sip_parse_uri_headers(u_char *p, u_char *end);
static ngx_int_t ngx_sip_check_escape(u_char *p, u_char *end);


/*
 * Structures are cleared by copying a zero one: gcc turns a memset() of
 * more than 64 known octets into "rep stos", whose start-up costs more
 * than the vector moves of a copy (up to 256 octets) on the CPUs we run on
 */

const ngx_sip_uri_t  ngx_sip_uri_zero;


ngx_int_t
ngx_sip_parse_uri(u_char *p, u_char *end, ngx_sip_uri_t *uri)
{
    u_char  *s, *at, *q;

    *uri = ngx_sip_uri_zero;

    uri->text.data = p;
    uri->text.len = end - p;

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */

    s = p;

    if (end - p > 4
        && (p[0] | 0x20) == 's' && (p[1] | 0x20) == 'i'
        && (p[2] | 0x20) == 'p' && p[3] == ':')
    {
        /* nearly every URI: "sip:" at once */

        uri->scheme.data = s;
        uri->scheme.len = 3;
        uri->scheme_id = NGX_SIP_SCHEME_SIP;

        p += 4;

        goto sip;
    }

    if (p == end || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
        return NGX_ERROR;
    }

    while (p < end && *p != ':') {
        if (!(ngx_sip_is(*p, NGX_SIP_C_HOST) || *p == '+')) {
            return NGX_ERROR;
        }

        p++;
    }

    if (p == end) {
        return NGX_ERROR;
    }

    uri->scheme.data = s;
    uri->scheme.len = p - s;

    p++;

    if (uri->scheme.len == 3 && ngx_sip_name_eq(s, "sip", 3)) {
        uri->scheme_id = NGX_SIP_SCHEME_SIP;

    } else if (uri->scheme.len == 4 && ngx_sip_name_eq(s, "sips", 4)) {
        uri->scheme_id = NGX_SIP_SCHEME_SIPS;

    } else {

        /* tel: and everything else: opaque, but never with white space */

        uri->scheme_id = (uri->scheme.len == 3
                          && ngx_sip_name_eq(s, "tel", 3))
                         ? NGX_SIP_SCHEME_TEL : NGX_SIP_SCHEME_OTHER;

        if (p == end) {
            return NGX_ERROR;
        }

        for (q = p; q < end; q++) {
            if (*q <= 0x20 || *q == 0x7f || *q == '<' || *q == '>'
                || *q == '"')
            {
                return NGX_ERROR;
            }
        }

        uri->opaque.data = p;
        uri->opaque.len = end - p;

        return NGX_OK;
    }

sip:

    /*
     * '@' appears nowhere after the userinfo of a SIP URI (neither
     * parameters nor headers allow it unescaped), so the last one ends it.
     */

    at = ngx_sip_memchr(p, '@', end - p);

    while (at && (q = ngx_sip_memchr(at + 1, '@', end - at - 1)) != NULL) {
        at = q;
    }

    if (at) {
        if (ngx_sip_parse_userinfo(p, at, uri) != NGX_OK) {
            return NGX_ERROR;
        }

        p = at + 1;
    }

    if (ngx_sip_parse_host(&p, end, uri) != NGX_OK) {
        return NGX_ERROR;
    }

    if (p < end && *p == ';') {
        if (ngx_sip_parse_uri_params(&p, end, uri) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (p < end && *p == '?') {
        uri->headers.data = p + 1;
        uri->headers.len = end - p - 1;

        if (ngx_sip_parse_uri_headers(p + 1, end) != NGX_OK) {
            return NGX_ERROR;
        }

        p = end;
    }

    return p == end ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_sip_parse_userinfo(u_char *p, u_char *end, ngx_sip_uri_t *uri)
{
    u_char  *s;

    s = p;

    for ( ;; ) {
        p = ngx_sip_span(p, end, NGX_SIP_C_UNRESERVED|NGX_SIP_C_USER);

        if (p == end || *p == ':') {
            break;
        }

        if (*p != '%' || ngx_sip_check_escape(p, end) != NGX_OK) {
            return NGX_ERROR;
        }

        p += 3;
    }

    uri->user.data = s;
    uri->user.len = p - s;

    if (uri->user.len == 0) {
        return NGX_ERROR;
    }

    if (p == end) {
        return NGX_OK;
    }

    s = ++p;

    for ( ;; ) {
        p = ngx_sip_span(p, end, NGX_SIP_C_UNRESERVED|NGX_SIP_C_PASSWORD);

        if (p == end) {
            break;
        }

        if (*p != '%' || ngx_sip_check_escape(p, end) != NGX_OK) {
            return NGX_ERROR;
        }

        p += 3;
    }

    uri->password.data = s;
    uri->password.len = p - s;

    return NGX_OK;
}


static ngx_int_t
ngx_sip_parse_host(u_char **pos, u_char *end, ngx_sip_uri_t *uri)
{
    u_char      *p, *q, *s;
    ngx_uint_t   n, digits_only;

    p = *pos;
    s = p;

    if (p < end && *p == '[') {

        while (p < end && *p != ']') {
            p++;
        }

        if (p == end) {
            return NGX_ERROR;
        }

        p++;

        if (ngx_sip_is_ipv6(s + 1, p - 1) != NGX_OK) {
            return NGX_ERROR;
        }

        uri->host_type = NGX_SIP_HOST_IPV6;

    } else {
        p = ngx_sip_span(p, end, NGX_SIP_C_HOST);

        if (p == s || *s == '-' || *s == '.' || p[-1] == '-') {
            return NGX_ERROR;
        }

        /*
         * an IPv4 address, or a name: a name has a label with a letter,
         * so digits and dots that are no IPv4 address are an error
         */

        if (*s >= '0' && *s <= '9' && ngx_sip_is_ipv4(s, p) == NGX_OK) {
            uri->host_type = NGX_SIP_HOST_IPV4;

        } else {
            digits_only = 1;

            for (q = s; q < p; q++) {
                if (!((*q >= '0' && *q <= '9') || *q == '.')) {
                    digits_only = 0;
                    break;
                }
            }

            if (digits_only) {
                return NGX_ERROR;
            }

            uri->host_type = NGX_SIP_HOST_NAME;
        }
    }

    uri->host.data = s;
    uri->host.len = p - s;

    if (p < end && *p == ':') {
        s = ++p;
        n = 0;

        while (p < end && *p >= '0' && *p <= '9') {
            n = n * 10 + (*p - '0');

            if (n > 65535) {
                return NGX_ERROR;
            }

            p++;
        }

        if (p == s) {
            return NGX_ERROR;
        }

        uri->port_text.data = s;
        uri->port_text.len = p - s;
        uri->port = (in_port_t) n;
    }

    *pos = p;

    return NGX_OK;
}


/* uri-parameter = pname [ "=" pvalue ], each 1*paramchar */

static ngx_int_t
ngx_sip_parse_uri_params(u_char **pos, u_char *end, ngx_sip_uri_t *uri)
{
    u_char     *p, *name;
    ngx_str_t   n, v;

    p = *pos;

    uri->params.data = p;

    while (p < end && *p == ';') {
        name = ++p;

        ngx_str_null(&n);
        ngx_str_null(&v);

        for ( ;; ) {
            p = ngx_sip_span(p, end, NGX_SIP_C_UNRESERVED|NGX_SIP_C_PARAM);

            if (p == end || *p == ';' || *p == '?') {
                break;
            }

            if (*p == '=' && v.data == NULL) {
                n.data = name;
                n.len = p - name;
                v.data = ++p;
                continue;
            }

            if (*p != '%' || ngx_sip_check_escape(p, end) != NGX_OK) {
                return NGX_ERROR;
            }

            p += 3;
        }

        if (v.data) {
            v.len = p - v.data;

            if (n.len == 0 || v.len == 0) {
                return NGX_ERROR;
            }

        } else {
            n.data = name;
            n.len = p - name;

            if (n.len == 0) {
                return NGX_ERROR;
            }
        }

        if (n.len == 9 && ngx_sip_name_eq(n.data, "transport", 9)) {
            uri->transport = v;

        } else if (n.len == 5 && ngx_sip_name_eq(n.data, "maddr", 5)) {
            uri->maddr = v;

        } else if (n.len == 4 && ngx_sip_name_eq(n.data, "user", 4)) {
            uri->user_param = v;

        } else if (n.len == 2 && ngx_sip_name_eq(n.data, "lr", 2)) {
            uri->lr = 1;
        }
    }

    uri->params.len = p - uri->params.data;

    *pos = p;

    return NGX_OK;
}


/* headers = header *( "&" header ), header = hname "=" hvalue */

static ngx_int_t
ngx_sip_parse_uri_headers(u_char *p, u_char *end)
{
    u_char      *name;
    ngx_uint_t   value;

    for ( ;; ) {
        name = p;
        value = 0;

        while (p < end && *p != '&') {

            if (*p == '=' && !value) {
                if (p == name) {
                    return NGX_ERROR;
                }

                value = 1;
                p++;
                continue;
            }

            if (*p == '%') {
                if (ngx_sip_check_escape(p, end) != NGX_OK) {
                    return NGX_ERROR;
                }

                p += 3;
                continue;
            }

            if (!ngx_sip_is(*p, NGX_SIP_C_UNRESERVED|NGX_SIP_C_HNV)) {
                return NGX_ERROR;
            }

            p++;
        }

        if (!value) {
            return NGX_ERROR;
        }

        if (p == end) {
            return NGX_OK;
        }

        p++;
    }
}


/* IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT */

ngx_int_t
ngx_sip_is_ipv4(u_char *p, u_char *end)
{
    ngx_uint_t  octets, n, digits;

    /* 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each up to 255 */

    for (octets = 0; /* void */; octets++) {

        n = 0;

        for (digits = 0; digits < 3 && p < end; digits++) {

            if ((ngx_uint_t) (*p - '0') > 9) {
                break;
            }

            n = n * 10 + (*p++ - '0');
        }

        if (digits == 0 || n > 255) {
            return NGX_ERROR;
        }

        if (octets == 3) {
            return p == end ? NGX_OK : NGX_ERROR;
        }

        if (p == end || *p++ != '.') {
            return NGX_ERROR;
        }
    }
}


/*
 * IPv6address as RFC 3261 25.1 writes it: hexpart [ ":" IPv4address ].
 * Its "hexseq ::" followed by ":" IPv4address lets three colons through
 * ([2001:db8:::192.0.2.1]); RFC 5118 4.10 asks us to accept that.
 */

ngx_int_t
ngx_sip_is_ipv6(u_char *p, u_char *end)
{
    u_char      *q;
    ngx_uint_t   groups, dbl, digits;

    groups = 0;
    dbl = 0;

    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        dbl = 1;
        p += 2;
    }

    while (p < end) {

        /* an IPv4 tail: digits up to a dot */

        for (q = p; q < end && *q >= '0' && *q <= '9'; q++) {
            /* void */
        }

        if (q < end && *q == '.' && (groups || dbl)) {
            if (ngx_sip_is_ipv4(p, end) != NGX_OK) {
                return NGX_ERROR;
            }

            groups += 2;
            p = end;
            break;
        }

        digits = 0;

        while (p < end && ngx_sip_hex_digit(*p) >= 0) {
            p++;
            digits++;
        }

        if (digits == 0 || digits > 4) {
            return NGX_ERROR;
        }

        groups++;

        if (p == end) {
            break;
        }

        if (*p != ':') {
            return NGX_ERROR;
        }

        p++;

        if (p < end && *p == ':') {
            if (dbl) {
                return NGX_ERROR;
            }

            dbl = 1;
            p++;

            if (p == end) {
                break;
            }

            if (*p == ':') {

                /* hexseq "::" ":" IPv4address */

                p++;

                if (ngx_sip_is_ipv4(p, end) != NGX_OK) {
                    return NGX_ERROR;
                }

                groups += 2;
                p = end;
                break;
            }

        } else if (p == end) {
            return NGX_ERROR;
        }
    }

    if (groups == 0 && !dbl) {
        return NGX_ERROR;
    }

    return (dbl ? groups <= 7 : groups == 8) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_sip_check_escape(u_char *p, u_char *end)
{
    if (end - p < 3
        || ngx_sip_hex_digit(p[1]) < 0
        || ngx_sip_hex_digit(p[2]) < 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_sip_unescape(ngx_str_t *src, u_char *dst, size_t *len)
{
    u_char  *p, *end, *d;

    if (src->len == 0) {
        *len = 0;
        return NGX_OK;
    }

    p = src->data;
    end = p + src->len;
    d = dst;

    while (p < end) {

        if (*p == '%') {
            if (ngx_sip_check_escape(p, end) != NGX_OK) {
                return NGX_ERROR;
            }

            *d++ = (u_char) (ngx_sip_hex_digit(p[1]) * 16
                             + ngx_sip_hex_digit(p[2]));
            p += 3;
            continue;
        }

        *d++ = *p++;
    }

    *len = d - dst;

    return NGX_OK;
}


/*
 * A uri-parameter by name in a ";a=b;c" string: NGX_OK with its value
 * (empty when it has none), NGX_DECLINED when absent.
 */

ngx_int_t
ngx_sip_uri_param(ngx_str_t *params, char *name, ngx_str_t *value)
{
    u_char  *p, *end, *n, *e;
    size_t   len;

    len = ngx_strlen(name);

    if (params->len == 0) {
        return NGX_DECLINED;
    }

    p = params->data;
    end = p + params->len;

    while (p < end) {

        if (*p != ';') {
            p++;
            continue;
        }

        n = ++p;

        while (p < end && *p != ';' && *p != '=') {
            p++;
        }

        e = p;

        if ((size_t) (e - n) != len
            || ngx_strncasecmp(n, (u_char *) name, len) != 0)
        {
            continue;
        }

        value->data = p;
        value->len = 0;

        if (p < end && *p == '=') {
            value->data = ++p;

            while (p < end && *p != ';') {
                p++;
            }

            value->len = p - value->data;
        }

        return NGX_OK;
    }

    return NGX_DECLINED;
}
