
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * SipHash-2-4 against the 64 vectors its authors publish (key 00..0f,
 * input 00..len-1 for len 0..63), whole and fed in pieces of every size;
 * FNV-1a against its published 32-bit values; the hex encoder and
 * decoder.
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"


static const uint64_t  vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
    0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
    0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
    0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
    0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL, 0xbed65cf21aa2ee98ULL,
    0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL,
    0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL,
    0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL,
    0x9abfd8766a33735cULL, 0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL,
    0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL,
    0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL,
    0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL,
    0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL,
    0x958a324ceb064572ULL
};


static void
test_siphash(void)
{
    u_char              key[16], in[64];
    size_t              len, piece, off, n;
    uint64_t            h;
    ngx_uint_t          i, ok;
    ngx_sip_siphash_t   s;

    for (i = 0; i < 16; i++) {
        key[i] = (u_char) i;
    }

    for (i = 0; i < 64; i++) {
        in[i] = (u_char) i;
    }

    for (len = 0; len < 64; len++) {
        h = ngx_sip_siphash(key, in, len);
        NGX_SIP_CHECK(h == vectors[len], "siphash len %zu: %016llx", len,
                      (unsigned long long) h);

        ok = 1;

        for (piece = 1; piece <= 9; piece++) {
            ngx_sip_siphash_init(&s, key);

            for (off = 0; off < len; off += n) {
                n = ngx_min(piece, len - off);
                ngx_sip_siphash_update(&s, in + off, n);
            }

            if (ngx_sip_siphash_final(&s) != vectors[len]) {
                ok = 0;
            }
        }

        NGX_SIP_CHECK(ok, "siphash len %zu in pieces", len);
    }

    /* fields with their lengths: "ab","c" is not "a","bc" */

    ngx_sip_siphash_init(&s, key);
    ngx_sip_siphash_field(&s, (u_char *) "ab", 2);
    ngx_sip_siphash_field(&s, (u_char *) "c", 1);
    h = ngx_sip_siphash_final(&s);

    ngx_sip_siphash_init(&s, key);
    ngx_sip_siphash_field(&s, (u_char *) "a", 1);
    ngx_sip_siphash_field(&s, (u_char *) "bc", 2);

    NGX_SIP_CHECK(h != ngx_sip_siphash_final(&s), "fields are delimited");

    /* another key, another hash */

    key[0] ^= 1;
    NGX_SIP_CHECK(ngx_sip_siphash(key, in, 15) != vectors[15], "keyed");
}


static void
test_fnv(void)
{
    /* FNV-1a 32-bit of "" (the offset basis), "a" and "foobar" */

    NGX_SIP_CHECK(ngx_sip_hash(0, (u_char *) "", 0) == 0x811c9dc5u,
                  "fnv empty");
    NGX_SIP_CHECK(ngx_sip_hash(0, (u_char *) "a", 1) == 0xe40c292cu,
                  "fnv a");
    NGX_SIP_CHECK(ngx_sip_hash(0, (u_char *) "foobar", 6) == 0xbf9cf968u,
                  "fnv foobar");
    NGX_SIP_CHECK(ngx_sip_hash(ngx_sip_hash(0, (u_char *) "foo", 3),
                               (u_char *) "bar", 3)
                  == 0xbf9cf968u, "fnv chained");
}


static void
test_hex(void)
{
    u_char      buf[40], bin[4] = { 0x00, 0x9f, 0xa0, 0xff };
    uint64_t    v;
    ngx_uint_t  i, ok;

    NGX_SIP_CHECK(ngx_sip_hex_encode(buf, bin, 4) == buf + 8
                  && memcmp(buf, "009fa0ff", 8) == 0, "encode");

    NGX_SIP_CHECK(ngx_sip_write_hex(buf, 0x1234abcdULL, 8) == buf + 8
                  && memcmp(buf, "1234abcd", 8) == 0, "write 8");
    NGX_SIP_CHECK(ngx_sip_write_hex(buf, 0xfedcba9876543210ULL, 16)
                  == buf + 16
                  && memcmp(buf, "fedcba9876543210", 16) == 0, "write 16");
    NGX_SIP_CHECK(ngx_sip_write_hex(buf, 0x1abcULL, 2) == buf + 2
                  && memcmp(buf, "bc", 2) == 0, "write low digits");

    ok = 1;

    for (i = 0; i < 256; i++) {
        if (ngx_sip_hex_digit((u_char) i)
            != ((i >= '0' && i <= '9') ? (ngx_int_t) (i - '0')
                : (i >= 'a' && i <= 'f') ? (ngx_int_t) (i - 'a' + 10)
                : (i >= 'A' && i <= 'F') ? (ngx_int_t) (i - 'A' + 10) : -1))
        {
            ok = 0;
        }
    }

    NGX_SIP_CHECK(ok, "every octet's digit value");

    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "fedcba9876543210", 16, &v)
                  == NGX_OK && v == 0xfedcba9876543210ULL, "decode 16");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "0A", 2, &v) == NGX_OK
                  && v == 10, "decode uppercase");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "00000001", 8, &v) == NGX_OK
                  && v == 1, "decode nc");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "", 0, &v) == NGX_ERROR,
                  "decode empty");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "00000000000000001", 17, &v)
                  == NGX_ERROR, "decode 17 digits");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "0g", 2, &v) == NGX_ERROR,
                  "decode g");
    NGX_SIP_CHECK(ngx_sip_hex_decode((u_char *) "-1", 2, &v) == NGX_ERROR,
                  "decode sign");
}


int
main(void)
{
    test_siphash();
    test_fnv();
    test_hex();

    return ngx_sip_test_done("test_hash");
}
