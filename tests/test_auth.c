
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Digest authentication: credentials parsing, responses against the
 * examples of RFC 2617 and RFC 7616 (MD5 and SHA-256), nonces made and
 * checked, stale and forged ones told apart.
 */


#include <string.h>

#include "ngx_sip.h"
#include "ngx_sip_test.h"


static size_t
ha1(ngx_uint_t alg, char *user, char *realm, char *pass, u_char *out)
{
    ngx_str_t  parts[3];

    parts[0].data = (u_char *) user;
    parts[0].len = strlen(user);
    parts[1].data = (u_char *) realm;
    parts[1].len = strlen(realm);
    parts[2].data = (u_char *) pass;
    parts[2].len = strlen(pass);

    return ngx_sip_digest_hash(alg, parts, 3, out);
}


static void
test_rfc2617(void)
{
    u_char                 h1[NGX_SIP_DIGEST_LEN], resp[NGX_SIP_DIGEST_LEN];
    size_t                 len;
    ngx_str_t              v, method, a1;
    ngx_sip_credentials_t  cr;

    ngx_str_set(&v, "Digest username=\"Mufasa\",\r\n"
                    "  realm=\"testrealm@host.com\",\r\n"
                    "  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n"
                    "  uri=\"/dir/index.html\", qop=auth, nc=00000001,\r\n"
                    "  cnonce=\"0a4f113b\",\r\n"
                    "  response=\"6629fae49393a05397450978507c4ef1\",\r\n"
                    "  opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");

    NGX_SIP_CHECK(ngx_sip_parse_credentials(&v, &cr) == NGX_OK,
                  "RFC 2617 credentials parse");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(cr.username, "Mufasa")
                  && NGX_SIP_STR_EQ(cr.uri, "/dir/index.html")
                  && NGX_SIP_STR_EQ(cr.cnonce, "0a4f113b")
                  && cr.nc_value == 1 && cr.alg == NGX_SIP_AUTH_MD5,
                  "fields");

    a1.data = h1;
    a1.len = ha1(NGX_SIP_AUTH_MD5, "Mufasa", "testrealm@host.com",
                 "Circle Of Life", h1);
    ngx_str_set(&method, "GET");

    len = ngx_sip_digest_response(&cr, &a1, &method, resp);

    NGX_SIP_CHECK(len == 32
                  && memcmp(resp, "6629fae49393a05397450978507c4ef1", 32)
                     == 0,
                  "RFC 2617 response %.*s", (int) len, resp);
    NGX_SIP_CHECK(ngx_sip_auth_equal(resp, cr.response.data, 32),
                  "equal to the client's");
}


static void
test_rfc7616(void)
{
    u_char                 h1[NGX_SIP_DIGEST_LEN], resp[NGX_SIP_DIGEST_LEN];
    size_t                 len;
    ngx_str_t              v, method, a1;
    ngx_sip_credentials_t  cr;

    ngx_str_set(&v, "Digest username=\"Mufasa\", "
                    "realm=\"http-auth@example.org\", uri=\"/dir/index.html\","
                    " algorithm=SHA-256, "
                    "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                    "nc=00000001, "
                    "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", "
                    "qop=auth, response=\"753927fa0e85d155564e2e272a28d1802c"
                    "a10daf4496794697cf8db5856cb6c1\", "
                    "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"");

    NGX_SIP_CHECK(ngx_sip_parse_credentials(&v, &cr) == NGX_OK,
                  "RFC 7616 credentials parse");
    NGX_SIP_CHECK(cr.alg == NGX_SIP_AUTH_SHA256, "SHA-256");

    a1.data = h1;
    a1.len = ha1(NGX_SIP_AUTH_SHA256, "Mufasa", "http-auth@example.org",
                 "Circle of Life", h1);
    ngx_str_set(&method, "GET");

    len = ngx_sip_digest_response(&cr, &a1, &method, resp);

    NGX_SIP_CHECK(len == 64
                  && memcmp(resp, "753927fa0e85d155564e2e272a28d1802ca10daf"
                                  "4496794697cf8db5856cb6c1", 64) == 0,
                  "RFC 7616 SHA-256 response %.*s", (int) len, resp);

    cr.alg = NGX_SIP_AUTH_MD5;
    a1.len = ha1(NGX_SIP_AUTH_MD5, "Mufasa", "http-auth@example.org",
                 "Circle of Life", h1);
    len = ngx_sip_digest_response(&cr, &a1, &method, resp);

    NGX_SIP_CHECK(len == 32
                  && memcmp(resp, "8ca523f5e9506fed4657c9700eebdbec", 32)
                     == 0,
                  "RFC 7616 MD5 response %.*s", (int) len, resp);
}


static void
test_bad_credentials(void)
{
    ngx_uint_t             i;
    ngx_str_t              v;
    ngx_sip_credentials_t  cr;

    static char  *bad[] = {
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", "
            "response=\"x\", algorithm=SHA-512",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", "
            "response=\"x\", qop=auth",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", "
            "response=\"x\", qop=auth, cnonce=\"c\", nc=0000000g",
        "Digest username=\"a, realm=\"r\"",
        "Digest username",
        NULL
    };

    for (i = 0; bad[i]; i++) {
        v.data = (u_char *) bad[i];
        v.len = strlen(bad[i]);

        NGX_SIP_CHECK(ngx_sip_parse_credentials(&v, &cr) == NGX_ERROR,
                      "refused: %s", bad[i]);
    }

    ngx_str_set(&v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");

    NGX_SIP_CHECK(ngx_sip_parse_credentials(&v, &cr) == NGX_DECLINED,
                  "not digest");
}


static void
test_nonce(void)
{
    u_char     key[16] = "0123456789abcdef", buf[NGX_SIP_NONCE_LEN];
    ngx_str_t  realm, other, nonce, addr, addr2, realm2, addr3;

    ngx_str_set(&realm, "example.com");
    ngx_str_set(&other, "example.org");
    ngx_str_set(&addr, "192.0.2.1");
    ngx_str_set(&addr2, "192.0.2.10");

    /* the same octets cut elsewhere between realm and address */
    ngx_str_set(&realm2, "example.com1");
    ngx_str_set(&addr3, "92.0.2.1");

    ngx_sip_nonce_make(buf, 1000000, 0xdeadbeef, key, &realm, &addr);

    nonce.data = buf;
    nonce.len = NGX_SIP_NONCE_LEN;

    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm, &addr, 1000010,
                                      300)
                  == NGX_OK, "fresh nonce");
    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm, &addr, 1000301,
                                      300)
                  == NGX_DECLINED, "stale nonce");
    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &other, &addr, 1000010,
                                      300)
                  == NGX_ERROR, "another realm's");
    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm, &addr2, 1000010,
                                      300)
                  == NGX_ERROR, "another address's");
    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm2, &addr3, 1000010,
                                      300)
                  == NGX_ERROR, "realm and address cut elsewhere");
    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, (u_char *) "another key.....",
                                      &realm, &addr, 1000010, 300)
                  == NGX_ERROR, "another key's");

    buf[3] ^= 1;

    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm, &addr, 1000010,
                                      300)
                  == NGX_ERROR, "forged time");

    nonce.len--;

    NGX_SIP_CHECK(ngx_sip_nonce_check(&nonce, key, &realm, &addr, 1000010,
                                      300)
                  == NGX_ERROR, "short");
}


int
main(void)
{
    test_rfc2617();
    test_rfc7616();
    test_bad_credentials();
    test_nonce();

    return ngx_sip_test_done("test_auth");
}
