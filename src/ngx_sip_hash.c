
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * The module's hashes.  SipHash-2-4 (Aumasson, Bernstein, 2012) with the
 * module's secret key makes whatever a peer must not forge or aim at:
 * branches, route and flow tokens, nonces, To tags, transaction table
 * keys.  FNV-1a spreads what needs no secrecy (loop detection, the flow
 * and contact indexes).
 */


#define ngx_sip_rotl(x, b)  (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define ngx_sip_sipround(v)                                                  \
    v[0] += v[1]; v[1] = ngx_sip_rotl(v[1], 13); v[1] ^= v[0];               \
    v[0] = ngx_sip_rotl(v[0], 32);                                           \
    v[2] += v[3]; v[3] = ngx_sip_rotl(v[3], 16); v[3] ^= v[2];               \
    v[0] += v[3]; v[3] = ngx_sip_rotl(v[3], 21); v[3] ^= v[0];               \
    v[2] += v[1]; v[1] = ngx_sip_rotl(v[1], 17); v[1] ^= v[2];               \
    v[2] = ngx_sip_rotl(v[2], 32)


static uint64_t
ngx_sip_le64(u_char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
}


static ngx_inline void
ngx_sip_siphash_block(ngx_sip_siphash_t *h, uint64_t m)
{
    h->v[3] ^= m;
    ngx_sip_sipround(h->v);
    ngx_sip_sipround(h->v);
    h->v[0] ^= m;
}


/* a 16-octet key */

void
ngx_sip_siphash_init(ngx_sip_siphash_t *h, u_char *key)
{
    uint64_t  k0, k1;

    k0 = ngx_sip_le64(key);
    k1 = ngx_sip_le64(key + 8);

    h->v[0] = 0x736f6d6570736575ULL ^ k0;
    h->v[1] = 0x646f72616e646f6dULL ^ k1;
    h->v[2] = 0x6c7967656e657261ULL ^ k0;
    h->v[3] = 0x7465646279746573ULL ^ k1;
    h->len = 0;
}


void
ngx_sip_siphash_update(ngx_sip_siphash_t *h, u_char *in, size_t len)
{
    size_t  n;

    n = h->len & 7;
    h->len += len;

    if (n) {
        while (n < 8 && len) {
            h->tail[n++] = *in++;
            len--;
        }

        if (n < 8) {
            return;
        }

        ngx_sip_siphash_block(h, ngx_sip_le64(h->tail));
    }

    while (len >= 8) {
        ngx_sip_siphash_block(h, ngx_sip_le64(in));
        in += 8;
        len -= 8;
    }

    ngx_memcpy(h->tail, in, len);
}


uint64_t
ngx_sip_siphash_final(ngx_sip_siphash_t *h)
{
    uint64_t    b;
    ngx_uint_t  i;

    b = ((uint64_t) h->len) << 56;

    for (i = 0; i < (h->len & 7); i++) {
        b |= ((uint64_t) h->tail[i]) << (i * 8);
    }

    ngx_sip_siphash_block(h, b);

    h->v[2] ^= 0xff;
    ngx_sip_sipround(h->v);
    ngx_sip_sipround(h->v);
    ngx_sip_sipround(h->v);
    ngx_sip_sipround(h->v);

    return h->v[0] ^ h->v[1] ^ h->v[2] ^ h->v[3];
}


uint64_t
ngx_sip_siphash(u_char *key, u_char *in, size_t len)
{
    ngx_sip_siphash_t  h;

    ngx_sip_siphash_init(&h, key);
    ngx_sip_siphash_update(&h, in, len);

    return ngx_sip_siphash_final(&h);
}


/*
 * Fields one after another, each with its length before it, so that no
 * two different lists of fields hash the same octets ("ab","c" and
 * "a","bc").
 */

void
ngx_sip_siphash_field(ngx_sip_siphash_t *h, u_char *p, size_t len)
{
    u_char  n[4];

    n[0] = (u_char) (len >> 24);
    n[1] = (u_char) (len >> 16);
    n[2] = (u_char) (len >> 8);
    n[3] = (u_char) len;

    ngx_sip_siphash_update(h, n, 4);
    ngx_sip_siphash_update(h, p, len);
}


/* FNV-1a: tags and hashes that need no secrecy, only spread */

uint32_t
ngx_sip_hash(uint32_t h, u_char *p, size_t len)
{
    if (h == 0) {
        h = 2166136261u;
    }

    while (len--) {
        h ^= *p++;
        h *= 16777619u;
    }

    return h;
}
