
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Responses built by ngx_sip_write_response(): what RFC 3261 8.2.6 and
 * 18.2.1 and RFC 3581 ask of them, checked by parsing the output again.
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"


static ngx_sip_header_t  req_headers[NGX_SIP_MAX_HEADERS];
static ngx_sip_header_t  resp_headers[NGX_SIP_MAX_HEADERS];


static int
parse(ngx_sip_msg_t *m, ngx_sip_header_t *h, const char *text, size_t len)
{
    ngx_sip_error_t  err;

    ngx_memzero(m, sizeof(ngx_sip_msg_t));
    m->headers = h;
    m->max_headers = NGX_SIP_MAX_HEADERS;

    if (ngx_sip_parse_message(m, (u_char *) text, (u_char *) text + len, 0,
                              &err)
        != NGX_SIP_OK)
    {
        fprintf(stderr, "parse: %lu %.*s\n", (unsigned long) err.status,
                (int) err.reason.len, err.reason.data);
        return 0;
    }

    (void) ngx_sip_msg_validate(m, &err);

    return 1;
}


/* every Via line of a message, joined by '|', for comparisons */

static void
vias(ngx_sip_msg_t *m, char *out, size_t size)
{
    size_t             n;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    n = 0;
    out[0] = '\0';

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_VIA) {
            continue;
        }

        n += snprintf(out + n, size - n, "%s%.*s", n ? "|" : "",
                      (int) h->value.len, h->value.data);

        if (n >= size) {
            return;
        }
    }
}


static char *
respond(ngx_sip_msg_t *req, ngx_sip_resp_t *r, size_t *len)
{
    u_char  *buf, *p;
    size_t   size;

    size = ngx_sip_response_size(req, r);
    buf = malloc(size);

    if (buf == NULL) {
        return NULL;
    }

    p = ngx_sip_write_response(buf, req, r);

    NGX_SIP_CHECK((size_t) (p - buf) <= size, "size %lu > %lu",
                  (unsigned long) (p - buf), (unsigned long) size);

    *len = p - buf;

    return (char *) buf;
}


static void
test_options_200(void)
{
    static const char  req_text[] =
        "OPTIONS sip:example.com SIP/2.0\r\n"
        "v: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;rport, "
            "SIP/2.0/TCP 192.0.2.9\r\n"
        "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2\r\n"
        "Max-Forwards: 70\r\n"
        "f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
        "t: <sip:example.com>\r\n"
        "i: call-1@192.0.2.1\r\n"
        "CSeq: 7 OPTIONS\r\n"
        "X-Unknown: kept\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

    char            *out, v[512];
    size_t           len;
    ngx_sip_msg_t    req, resp;
    ngx_sip_resp_t   r;

    if (!parse(&req, req_headers, req_text, sizeof(req_text) - 1)) {
        NGX_SIP_CHECK(0, "request does not parse");
        return;
    }

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));
    r.status = 200;
    ngx_str_set(&r.reason, "OK");
    ngx_str_set(&r.received, "127.0.0.1");
    r.rport = 40000;
    ngx_str_set(&r.to_tag, "deadbeef");
    ngx_str_set(&r.extra, "Allow: OPTIONS\r\n");

    out = respond(&req, &r, &len);

    if (out == NULL) {
        return;
    }

    NGX_SIP_CHECK(len > 12 && memcmp(out, "SIP/2.0 200 OK\r\n", 16) == 0,
                  "status line: %.*s", (int) len, out);

    if (!parse(&resp, resp_headers, out, len)) {
        NGX_SIP_CHECK(0, "response does not parse: %.*s", (int) len, out);
        free(out);
        return;
    }

    NGX_SIP_CHECK(!resp.request && resp.status == 200, "a 200 response");

    vias(&resp, v, sizeof(v));
    NGX_SIP_CHECK(strcmp(v, "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;"
                         "rport=40000;received=127.0.0.1, "
                         "SIP/2.0/TCP 192.0.2.9|"
                         "SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2") == 0,
                  "vias: %s", v);

    NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.to.tag, "deadbeef"), "to tag added");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.from.tag, "a1"), "from tag kept");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.call_id, "call-1@192.0.2.1"),
                  "call-id");
    NGX_SIP_CHECK(resp.cseq.number == 7
                  && resp.cseq.method_id == NGX_SIP_OPTIONS, "cseq");
    NGX_SIP_CHECK(resp.hdr[NGX_SIP_HDR_ALLOW] != NULL, "allow");
    NGX_SIP_CHECK(resp.hdr[NGX_SIP_HDR_CONTENT_LENGTH] != NULL
                  && resp.content_length == 0, "content-length 0");
    NGX_SIP_CHECK(resp.hdr[NGX_SIP_HDR_MAX_FORWARDS] == NULL,
                  "no max-forwards in a response");
    NGX_SIP_CHECK(ngx_sip_find_header(&resp, (u_char *) "X-Unknown", 9)
                  == NULL, "request-only headers not copied");

    free(out);
}


static void
test_to_tag_kept(void)
{
    static const char  req_text[] =
        "BYE sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-3\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>;tag=b2\r\n"
        "Call-ID: call-2\r\n"
        "CSeq: 2 BYE\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

    char            *out, v[512];
    size_t           len;
    ngx_sip_msg_t    req, resp;
    ngx_sip_resp_t   r;

    if (!parse(&req, req_headers, req_text, sizeof(req_text) - 1)) {
        NGX_SIP_CHECK(0, "request does not parse");
        return;
    }

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));
    r.status = 481;
    ngx_str_set(&r.reason, "Call/Transaction Does Not Exist");
    ngx_str_set(&r.to_tag, "deadbeef");

    out = respond(&req, &r, &len);

    if (out == NULL) {
        return;
    }

    if (!parse(&resp, resp_headers, out, len)) {
        NGX_SIP_CHECK(0, "response does not parse: %.*s", (int) len, out);
        free(out);
        return;
    }

    NGX_SIP_CHECK(resp.status == 481, "481");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.reason,
                                 "Call/Transaction Does Not Exist"),
                  "reason phrase");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.to.tag, "b2"),
                  "the dialog's To tag stays alone");

    vias(&resp, v, sizeof(v));
    NGX_SIP_CHECK(strcmp(v, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-3") == 0,
                  "no received when the sent-by is the source: %s", v);

    free(out);
}


static void
test_hash(void)
{
    uint32_t  a, b;

    a = ngx_sip_hash(0, (u_char *) "call-1", 6);
    b = ngx_sip_hash(0, (u_char *) "call-1", 6);

    NGX_SIP_CHECK(a == b, "hash is stable");

    b = ngx_sip_hash(0, (u_char *) "call-2", 6);

    NGX_SIP_CHECK(a != b, "hash spreads");
}


int
main(void)
{
    test_options_200();
    test_to_tag_kept();
    test_hash();

    return ngx_sip_test_done("test_message");
}
