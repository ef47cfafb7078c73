
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


/* a request of its own text, parsed into *m with the headers h */

static int
request(ngx_sip_msg_t *m, ngx_sip_header_t *h, const char *method,
    const char *via, const char *to, const char *call_id, const char *cseq)
{
    static char  text[16][1024];
    static int   n;
    char        *t;

    t = text[n++ % 16];

    snprintf(t, sizeof(text[0]),
             "%s sip:bob@example.com SIP/2.0\r\n"
             "Via: %s\r\n"
             "Max-Forwards: 70\r\n"
             "From: <sip:alice@example.com>;tag=a1\r\n"
             "To: %s\r\n"
             "Call-ID: %s\r\n"
             "CSeq: %s\r\n"
             "Content-Length: 0\r\n"
             "\r\n", method, via, to, call_id, cseq);

    return parse(m, h, t, strlen(t));
}


/* ngx_sip_response_init(): received, rport and the To tag */

static void
test_response_init(void)
{
    u_char           key[16];
    ngx_str_t        addr, reason;
    ngx_uint_t       i;
    ngx_sip_msg_t    a, b;
    ngx_sip_resp_t   ra, rb;
    ngx_sip_header_t ha[NGX_SIP_MAX_HEADERS], hb[NGX_SIP_MAX_HEADERS];

    for (i = 0; i < 16; i++) {
        key[i] = (u_char) (i * 7 + 1);
    }

    ngx_str_set(&addr, "192.0.2.7");
    ngx_str_set(&reason, "OK");

#define VIA  "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;rport"
#define TO   "<sip:bob@example.com>"

    if (!request(&a, ha, "INVITE", VIA, TO, "c1", "1 INVITE")
        || !request(&b, hb, "INVITE", VIA, TO, "c1", "1 INVITE"))
    {
        NGX_SIP_CHECK(0, "requests do not parse");
        return;
    }

    ngx_sip_response_init(&ra, &a, 180, &reason, &addr, 40000, key);
    ngx_sip_response_init(&rb, &b, 486, &reason, &addr, 40000, key);

    NGX_SIP_CHECK(ra.to_tag.len == NGX_SIP_TO_TAG_LEN
                  && ra.to_tag.data == ra.tag_buf, "tag in the struct");
    NGX_SIP_CHECK(ra.to_tag.len == rb.to_tag.len
                  && memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) == 0,
                  "a retransmission gets the same tag");
    NGX_SIP_CHECK(NGX_SIP_STR_EQ(ra.received, "192.0.2.7"),
                  "received: the source is not the sent-by");
    NGX_SIP_CHECK(ra.rport == 40000, "rport filled");
    NGX_SIP_CHECK(ra.status == 180 && NGX_SIP_STR_EQ(ra.reason, "OK"),
                  "status and reason");

    /* a CANCEL: its INVITE's branch and number, the same tag (9.2) */

    (void) request(&b, hb, "CANCEL", VIA, TO, "c1", "1 CANCEL");
    ngx_sip_response_init(&rb, &b, 200, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) == 0,
                  "the CANCEL's tag is its INVITE's");

    /* anything else that names the request: another tag */

    (void) request(&b, hb, "INVITE", VIA, TO, "c2", "1 INVITE");
    ngx_sip_response_init(&rb, &b, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) != 0,
                  "another Call-ID, another tag");

    (void) request(&b, hb, "INVITE", VIA, TO, "c1", "2 INVITE");
    ngx_sip_response_init(&rb, &b, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) != 0,
                  "another CSeq, another tag");

    (void) request(&b, hb, "INVITE",
                   "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-2;rport", TO,
                   "c1", "1 INVITE");
    ngx_sip_response_init(&rb, &b, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) != 0,
                  "another branch, another tag");

    key[0] ^= 1;
    ngx_sip_response_init(&rb, &a, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(memcmp(ra.tag_buf, rb.tag_buf, ra.to_tag.len) != 0,
                  "another key, another tag");

    /* sent-by is the source, no rport asked for: nothing added */

    (void) request(&b, hb, "INVITE",
                   "SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-1", TO, "c1",
                   "1 INVITE");
    ngx_sip_response_init(&rb, &b, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(rb.received.len == 0, "no received for the source");
    NGX_SIP_CHECK(rb.rport == 0, "no rport unless asked");

    /* an IPv6 sent-by in brackets against the address without */

    ngx_str_set(&addr, "2001:db8::7");
    (void) request(&b, hb, "INVITE",
                   "SIP/2.0/UDP [2001:DB8::7]:5070;branch=z9hG4bK-1", TO,
                   "c1", "1 INVITE");
    ngx_sip_response_init(&rb, &b, 180, &reason, &addr, 40000, key);
    NGX_SIP_CHECK(rb.received.len == 0, "no received for the IPv6 source");

#undef VIA
#undef TO
}


/* our tag goes into a response's To, never into a 100 or beside one */

static void
test_response_tag(void)
{
    char            *out;
    size_t           len;
    u_char           key[16];
    ngx_str_t        addr, reason;
    ngx_sip_msg_t    req, resp;
    ngx_sip_resp_t   r;

    ngx_memzero(key, sizeof(key));
    ngx_str_set(&addr, "192.0.2.7");
    ngx_str_set(&reason, "Trying");

    if (!request(&req, req_headers, "INVITE",
                 "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-9", "<sip:b@x>",
                 "c9", "1 INVITE"))
    {
        NGX_SIP_CHECK(0, "request does not parse");
        return;
    }

    ngx_sip_response_init(&r, &req, 100, &reason, &addr, 5060, key);
    out = respond(&req, &r, &len);

    if (out && parse(&resp, resp_headers, out, len)) {
        NGX_SIP_CHECK(resp.to.tag.len == 0, "no tag in a 100");
    }

    free(out);

    ngx_str_set(&reason, "Busy Here");
    ngx_sip_response_init(&r, &req, 486, &reason, &addr, 5060, key);
    out = respond(&req, &r, &len);

    if (out && parse(&resp, resp_headers, out, len)) {
        NGX_SIP_CHECK(resp.to.tag.len == NGX_SIP_TO_TAG_LEN
                      && memcmp(resp.to.tag.data, r.tag_buf,
                                NGX_SIP_TO_TAG_LEN) == 0,
                      "our tag in a 486");
    }

    free(out);

    (void) request(&req, req_headers, "BYE",
                   "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-9", "<sip:b@x>;tag=t",
                   "c9", "2 BYE");
    ngx_sip_response_init(&r, &req, 481, &reason, &addr, 5060, key);
    out = respond(&req, &r, &len);

    if (out && parse(&resp, resp_headers, out, len)) {
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(resp.to.tag, "t"), "the dialog's tag");
    }

    free(out);
}


int
main(void)
{
    test_options_200();
    test_to_tag_kept();
    test_response_init();
    test_response_tag();

    return ngx_sip_test_done("test_message");
}
