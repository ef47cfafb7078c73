
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"
#include <openssl/evp.h>


/*
 * Digest authentication (RFC 3261 22, RFC 7616, RFC 8760): credentials
 * parsed in place, responses computed with MD5 or SHA-256, and nonces
 * that any worker can verify without state: a timestamp, a random part
 * and a keyed hash of both and of the realm.
 */


static ngx_int_t ngx_sip_auth_param(u_char **pos, u_char *end,
    ngx_str_t *name, ngx_str_t *value);


#define ngx_sip_is_ws(c)  ((c) == ' ' || (c) == '\t' || (c) == CR            \
                           || (c) == LF)


ngx_int_t
ngx_sip_parse_credentials(ngx_str_t *value, ngx_sip_credentials_t *cr)
{
    u_char     *p, *end;
    ngx_str_t   name, v;

    ngx_memzero(cr, sizeof(ngx_sip_credentials_t));

    p = value->data;
    end = p + value->len;

    while (p < end && ngx_sip_is_ws(*p)) {
        p++;
    }

    if (end - p < 7 || ngx_strncasecmp(p, (u_char *) "Digest", 6) != 0
        || !ngx_sip_is_ws(p[6]))
    {
        return NGX_DECLINED;
    }

    p += 6;

    for ( ;; ) {
        switch (ngx_sip_auth_param(&p, end, &name, &v)) {

        case NGX_OK:
            break;

        case NGX_DONE:
            goto done;

        default:
            return NGX_ERROR;
        }

#define ngx_sip_name_is(n)                                                   \
        (name.len == sizeof(n) - 1                                           \
         && ngx_strncasecmp(name.data, (u_char *) n, sizeof(n) - 1) == 0)

        if (ngx_sip_name_is("username")) {
            cr->username = v;

        } else if (ngx_sip_name_is("realm")) {
            cr->realm = v;

        } else if (ngx_sip_name_is("nonce")) {
            cr->nonce = v;

        } else if (ngx_sip_name_is("uri")) {
            cr->uri = v;

        } else if (ngx_sip_name_is("response")) {
            cr->response = v;

        } else if (ngx_sip_name_is("algorithm")) {
            cr->algorithm = v;

        } else if (ngx_sip_name_is("cnonce")) {
            cr->cnonce = v;

        } else if (ngx_sip_name_is("qop")) {
            cr->qop = v;

        } else if (ngx_sip_name_is("nc")) {
            cr->nc = v;

        } else if (ngx_sip_name_is("opaque")) {
            cr->opaque = v;
        }

#undef ngx_sip_name_is
    }

done:

    if (cr->username.len == 0 || cr->realm.len == 0 || cr->nonce.len == 0
        || cr->uri.len == 0 || cr->response.len == 0)
    {
        return NGX_ERROR;
    }

    if (cr->algorithm.len == 0
        || (cr->algorithm.len == 3
            && ngx_strncasecmp(cr->algorithm.data, (u_char *) "MD5", 3) == 0))
    {
        cr->alg = NGX_SIP_AUTH_MD5;

    } else if (cr->algorithm.len == 7
               && ngx_strncasecmp(cr->algorithm.data, (u_char *) "SHA-256",
                                  7) == 0)
    {
        cr->alg = NGX_SIP_AUTH_SHA256;

    } else {
        return NGX_ERROR;
    }

    if (cr->qop.len) {
        if (cr->qop.len != 4
            || ngx_strncasecmp(cr->qop.data, (u_char *) "auth", 4) != 0
            || cr->cnonce.len == 0 || cr->nc.len != 8)
        {
            return NGX_ERROR;
        }

        if (ngx_sip_hex_decode(cr->nc.data, cr->nc.len, &cr->nc_value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * name=token or name="quoted string", comma separated; the value of a
 * quoted string is what is inside the quotes, escapes kept (the digest
 * is computed over the value as the client wrote it).  NGX_DONE at the
 * end.
 */

static ngx_int_t
ngx_sip_auth_param(u_char **pos, u_char *end, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p;

    p = *pos;

    while (p < end && (ngx_sip_is_ws(*p) || *p == ',')) {
        p++;
    }

    if (p == end) {
        *pos = p;
        return NGX_DONE;
    }

    name->data = p;

    while (p < end && *p != '=' && *p != ',' && !ngx_sip_is_ws(*p)) {
        p++;
    }

    name->len = p - name->data;

    while (p < end && ngx_sip_is_ws(*p)) {
        p++;
    }

    if (name->len == 0 || p == end || *p != '=') {
        return NGX_ERROR;
    }

    p++;

    while (p < end && ngx_sip_is_ws(*p)) {
        p++;
    }

    if (p < end && *p == '"') {
        p++;
        value->data = p;

        while (p < end && *p != '"') {
            if (*p == '\\') {
                p++;

                if (p == end) {
                    return NGX_ERROR;
                }
            }

            p++;
        }

        if (p == end) {
            return NGX_ERROR;
        }

        value->len = p - value->data;
        p++;

    } else {
        value->data = p;

        while (p < end && *p != ',' && !ngx_sip_is_ws(*p)) {
            p++;
        }

        value->len = p - value->data;
    }

    *pos = p;

    return NGX_OK;
}


/* H() of the parts joined by ':', in lowercase hex; the length of it */

size_t
ngx_sip_digest_hash(ngx_uint_t alg, ngx_str_t *parts, ngx_uint_t n,
    u_char *out)
{
    u_char         md[EVP_MAX_MD_SIZE];
    ngx_uint_t     i;
    unsigned int   len;
    EVP_MD_CTX    *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return 0;
    }

    if (EVP_DigestInit_ex(ctx, alg == NGX_SIP_AUTH_SHA256 ? EVP_sha256()
                                                          : EVP_md5(),
                          NULL)
        != 1)
    {
        EVP_MD_CTX_free(ctx);
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (i) {
            EVP_DigestUpdate(ctx, ":", 1);
        }

        EVP_DigestUpdate(ctx, parts[i].data, parts[i].len);
    }

    len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);

    return ngx_sip_hex_encode(out, md, len) - out;
}


/*
 * The response the client must have sent (RFC 7616 3.4.1, RFC 2617 for
 * the form without qop), from HA1 as the user file keeps it.
 */

size_t
ngx_sip_digest_response(ngx_sip_credentials_t *cr, ngx_str_t *ha1,
    ngx_str_t *method, u_char *out)
{
    u_char      ha2[NGX_SIP_DIGEST_LEN];
    ngx_str_t   parts[6];

    parts[0] = *method;
    parts[1] = cr->uri;

    parts[1].len = ngx_sip_digest_hash(cr->alg, parts, 2, ha2);
    parts[1].data = ha2;

    if (parts[1].len == 0) {
        return 0;
    }

    parts[5] = parts[1];
    parts[0] = *ha1;
    parts[1] = cr->nonce;

    if (cr->qop.len) {
        parts[2] = cr->nc;
        parts[3] = cr->cnonce;
        parts[4] = cr->qop;

        return ngx_sip_digest_hash(cr->alg, parts, 6, out);
    }

    parts[2] = parts[5];

    return ngx_sip_digest_hash(cr->alg, parts, 3, out);
}


/* equal or not, in a time that does not tell how much of it was equal */

ngx_uint_t
ngx_sip_auth_equal(u_char *a, u_char *b, size_t len)
{
    u_char  d;

    d = 0;

    while (len--) {
        d |= ngx_tolower(*a) ^ ngx_tolower(*b);
        a++;
        b++;
    }

    return d == 0;
}


/*
 * A nonce: 8 hex digits of time, 8 of a random number, 16 of SipHash
 * over both, the realm and the address the challenge was sent to: any
 * worker of any generation with the key can tell ours from forged ones,
 * how old it is, and whether it comes back from the address it was given
 * to (a nonce fetched from elsewhere is worthless with a forged source).
 */

void
ngx_sip_nonce_make(u_char *buf, uint32_t now, uint32_t rnd, u_char *key,
    ngx_str_t *realm, ngx_str_t *addr)
{
    u_char    in[16 + 256 + 1 + 64], *p;
    size_t    rlen, alen;
    uint64_t  mac;

    p = buf;
    p = ngx_sip_write_hex(p, now, 8);
    p = ngx_sip_write_hex(p, rnd, 8);

    rlen = ngx_min(realm->len, 256);
    alen = ngx_min(addr->len, 64);     /* an IPv6 address is 45 */

    /* a NUL between them: no realm and address can pass for another */

    ngx_memcpy(in, buf, 16);
    ngx_memcpy(in + 16, realm->data, rlen);
    in[16 + rlen] = '\0';
    ngx_memcpy(in + 16 + rlen + 1, addr->data, alen);

    mac = ngx_sip_siphash(key, in, 16 + rlen + 1 + alen);

    (void) ngx_sip_write_hex(p, mac, 16);
}


/* NGX_OK, NGX_DECLINED when older than "lifetime" (stale), or NGX_ERROR */

ngx_int_t
ngx_sip_nonce_check(ngx_str_t *nonce, u_char *key, ngx_str_t *realm,
    ngx_str_t *addr, uint32_t now, uint32_t lifetime)
{
    u_char     buf[NGX_SIP_NONCE_LEN];
    uint64_t   t, r;
    ngx_str_t  part;

    if (nonce->len != NGX_SIP_NONCE_LEN) {
        return NGX_ERROR;
    }

    part.data = nonce->data;
    part.len = 8;

    if (ngx_sip_hex_decode(part.data, part.len, &t) != NGX_OK) {
        return NGX_ERROR;
    }

    part.data += 8;

    if (ngx_sip_hex_decode(part.data, part.len, &r) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_sip_nonce_make(buf, (uint32_t) t, (uint32_t) r, key, realm, addr);

    if (!ngx_sip_auth_equal(buf, nonce->data, NGX_SIP_NONCE_LEN)) {
        return NGX_ERROR;
    }

    if ((uint32_t) t > now + 5 || now - (uint32_t) t > lifetime) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}
