
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * Hex, the one encoder and decoder of the module: our branches, tags,
 * nonces and route tokens are lowercase (what ngx_hex_dump() writes); the
 * decoder takes either case, as digest's nc, %-escapes (RFC 3261 25.1)
 * and the registrar's state file need.
 */


static u_char  ngx_sip_hex_digits[] = "0123456789abcdef";


/* octets as 2 * len hex digits */

u_char *
ngx_sip_hex_encode(u_char *p, u_char *bin, size_t len)
{
    while (len--) {
        *p++ = ngx_sip_hex_digits[*bin >> 4];
        *p++ = ngx_sip_hex_digits[*bin++ & 0xf];
    }

    return p;
}


/* the low "digits" nibbles of v, the most significant first */

u_char *
ngx_sip_write_hex(u_char *p, uint64_t v, ngx_uint_t digits)
{
    while (digits--) {
        *p++ = ngx_sip_hex_digits[(v >> (digits * 4)) & 0xf];
    }

    return p;
}


/* the value of a hex digit of either case, -1 for any other octet */

ngx_int_t
ngx_sip_hex_digit(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* 1 to 16 hex digits into *v; NGX_ERROR for anything else */

ngx_int_t
ngx_sip_hex_decode(u_char *p, size_t len, uint64_t *v)
{
    ngx_int_t  d;

    if (len == 0 || len > 16) {
        return NGX_ERROR;
    }

    *v = 0;

    while (len--) {
        d = ngx_sip_hex_digit(*p++);

        if (d < 0) {
            return NGX_ERROR;
        }

        *v = (*v << 4) | (uint64_t) d;
    }

    return NGX_OK;
}
