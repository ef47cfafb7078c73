
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Proxy transformations (RFC 3261 16.6, 16.7): forwarded requests and
 * responses are parsed again and checked; branches, SipHash and loop
 * detection.
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"


static ngx_sip_header_t  in_headers[NGX_SIP_MAX_HEADERS];
static ngx_sip_header_t  out_headers[NGX_SIP_MAX_HEADERS];

static u_char  key[16] = "0123456789abcdef";


static int
parse(ngx_sip_msg_t *m, ngx_sip_header_t *h, u_char *text, size_t len)
{
    ngx_sip_error_t  err;

    ngx_memzero(m, sizeof(ngx_sip_msg_t));
    m->headers = h;
    m->max_headers = NGX_SIP_MAX_HEADERS;

    if (ngx_sip_parse_message(m, text, text + len, 0, &err) != NGX_SIP_OK
        || ngx_sip_msg_validate(m, &err) != NGX_OK)
    {
        fprintf(stderr, "parse: %lu %.*s\n%.*s\n",
                (unsigned long) err.status, (int) err.reason.len,
                err.reason.data, (int) len, text);
        return 0;
    }

    return 1;
}


/* the values of every line of a header, joined by '|' */

static void
values(ngx_sip_msg_t *m, ngx_uint_t id, char *out, size_t size)
{
    size_t             n;
    ngx_uint_t         i;
    ngx_sip_header_t  *h;

    n = 0;
    out[0] = '\0';

    for (i = 0; i < m->nheaders && n < size; i++) {
        h = &m->headers[i];

        if (h->id == id) {
            n += snprintf(out + n, size - n, "%s%.*s", n ? "|" : "",
                          (int) h->value.len, h->value.data);
        }
    }
}


static const char  invite[] =
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a1;rport, "
        "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-a0\r\n"
    "Route: <sip:proxy.example.com;lr>, <sip:next.example.net;lr>\r\n"
    "Record-Route: <sip:other.example.org;lr>\r\n"
    "Max-Forwards: 70\r\n"
    "f: Alice <sip:alice@example.com>;tag=a1\r\n"
    "t: <sip:bob@example.com>\r\n"
    "i: call-fwd-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "X-Folded: one\r\n"
    "  two\r\n"
    "c: application/sdp\r\n"
    "l: 10\r\n"
    "\r\n"
    "v=0\r\no=x\r\n";


static void
test_request(void)
{
    u_char             *buf, *p, branch[NGX_SIP_BRANCH_LEN];
    u_char              via[128];
    char                v[512];
    size_t              blen;
    ngx_sip_msg_t       in, out;
    ngx_sip_forward_t   f;
    ngx_sip_header_t   *h;

    if (!parse(&in, in_headers, (u_char *) invite, sizeof(invite) - 1)) {
        NGX_SIP_CHECK(0, "invite does not parse");
        return;
    }

    blen = ngx_sip_branch_make(branch, &in, 7, key);
    NGX_SIP_CHECK(blen == NGX_SIP_BRANCH_LEN, "branch length %lu",
                  (unsigned long) blen);

    ngx_memzero(&f, sizeof(ngx_sip_forward_t));

    f.via.data = via;
    f.via.len = snprintf((char *) via, sizeof(via),
                         "SIP/2.0/UDP 127.0.0.1:5060;branch=%.*s",
                         (int) blen, branch);
    ngx_str_set(&f.record_route, "<sip:127.0.0.1:5060;lr>");
    f.pop_route = 1;

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    NGX_SIP_CHECK((size_t) (p - buf) <= ngx_sip_forward_size(&in, &f),
                  "size");

    if (!parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(0, "forwarded request does not parse");
        free(buf);
        return;
    }

    NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.request_uri, "sip:bob@example.com"),
                  "request-uri kept");
    NGX_SIP_CHECK(out.max_forwards == 69, "max-forwards %ld",
                  (long) out.max_forwards);

    values(&out, NGX_SIP_HDR_VIA, v, sizeof(v));
    NGX_SIP_CHECK(strncmp(v, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ngx",
                          45) == 0
                  && strstr(v, "|SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a1;"
                               "rport, SIP/2.0/UDP 192.0.2.9") != NULL,
                  "our Via on top, the others kept: %s", v);

    values(&out, NGX_SIP_HDR_ROUTE, v, sizeof(v));
    NGX_SIP_CHECK(strcmp(v, "<sip:next.example.net;lr>") == 0,
                  "first Route value removed: %s", v);

    values(&out, NGX_SIP_HDR_RECORD_ROUTE, v, sizeof(v));
    NGX_SIP_CHECK(strcmp(v, "<sip:127.0.0.1:5060;lr>|"
                            "<sip:other.example.org;lr>") == 0,
                  "our Record-Route first: %s", v);

    h = ngx_sip_find_header(&out, (u_char *) "X-Folded", 8);
    NGX_SIP_CHECK(h && h->value.len == 10
                  && memcmp(h->value.data, "one\r\n  two", 10) == 0,
                  "folded unknown header kept byte for byte");

    NGX_SIP_CHECK(out.body.len == 10
                  && memcmp(out.body.data, "v=0\r\no=x\r\n", 10) == 0,
                  "body kept");

    NGX_SIP_CHECK(ngx_sip_loop_detect(&out, key) == NGX_OK,
                  "Route popped: a spiral, not a loop");

    free(buf);

    /* the same request through us twice, unchanged: a loop */

    f.pop_route = 0;

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    if (parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(ngx_sip_loop_detect(&out, key) == NGX_ERROR,
                      "loop detected");
        NGX_SIP_CHECK(ngx_sip_loop_detect(&out, (u_char *) "another key.....")
                      == NGX_OK, "another proxy's branch is not ours");

        values(&out, NGX_SIP_HDR_ROUTE, v, sizeof(v));
        NGX_SIP_CHECK(strcmp(v, "<sip:proxy.example.com;lr>, "
                                "<sip:next.example.net;lr>") == 0,
                      "Route kept without pop: %s", v);
    }

    free(buf);

    /* a registered Path: a Route of its own on top, the RURI replaced */

    f.pop_route = 1;
    ngx_str_set(&f.route, "<sip:edge.example.net;lr>, <sip:e2;lr>");
    ngx_str_set(&f.ruri, "sip:bob@192.0.2.44:5062");

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    NGX_SIP_CHECK((size_t) (p - buf) <= ngx_sip_forward_size(&in, &f),
                  "size with route");

    if (parse(&out, out_headers, buf, p - buf)) {
        values(&out, NGX_SIP_HDR_ROUTE, v, sizeof(v));
        NGX_SIP_CHECK(strcmp(v, "<sip:edge.example.net;lr>, <sip:e2;lr>|"
                                "<sip:next.example.net;lr>") == 0,
                      "Path route first, ours popped: %s", v);
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.request_uri,
                                     "sip:bob@192.0.2.44:5062"),
                      "request-uri is the contact");

    } else {
        NGX_SIP_CHECK(0, "request with a Path route does not parse");
    }

    free(buf);

    /* towards a strict router: its URI in, the Request-URI last */

    f.pop_route = 1;
    ngx_str_null(&f.route);
    ngx_str_set(&f.ruri, "sip:next.example.net");
    ngx_str_set(&f.append_route, "sip:bob@example.com");

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    NGX_SIP_CHECK((size_t) (p - buf) <= ngx_sip_forward_size(&in, &f),
                  "size with a strict route");

    if (parse(&out, out_headers, buf, p - buf)) {
        values(&out, NGX_SIP_HDR_ROUTE, v, sizeof(v));
        NGX_SIP_CHECK(strcmp(v, "<sip:next.example.net;lr>|"
                                "<sip:bob@example.com>") == 0,
                      "strict: the Request-URI last: %s", v);
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.request_uri, "sip:next.example.net"),
                      "strict: its URI as the Request-URI");

    } else {
        NGX_SIP_CHECK(0, "request to a strict router does not parse");
    }

    free(buf);
    ngx_str_null(&f.append_route);

    /* two Route values of ours (RFC 5658 double Record-Route) */

    f.pop_route = 2;
    ngx_str_null(&f.route);
    ngx_str_null(&f.ruri);

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    if (parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(out.hdr[NGX_SIP_HDR_ROUTE] == NULL,
                      "both Route values popped");

    } else {
        NGX_SIP_CHECK(0, "request with two routes popped does not parse");
    }

    free(buf);
}


/* a WebSocket caller's Via (RFC 7118 5): received, and rport's value */

static void
test_received(void)
{
    u_char             *buf, *p;
    char                v[512];
    ngx_uint_t          i;
    ngx_sip_msg_t       in, out;
    ngx_sip_forward_t   f;

    static const char  *reqs[] = {
        "MESSAGE sip:bob@example.com SIP/2.0\r\n"
        "v: SIP/2.0/WSS df7jal23ls0d.invalid;rport;branch=z9hG4bKws1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: ws1\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "l: 0\n"
        "\n",

        "MESSAGE sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/WS a.invalid;branch=z9hG4bKws2, "
            "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-a0\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: ws2\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    };

    static const char  *vias[] = {
        "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngxtest|"
        "SIP/2.0/WSS df7jal23ls0d.invalid;rport=65535;branch=z9hG4bKws1"
        ";received=2001:db8::1",

        "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngxtest|"
        "SIP/2.0/WS a.invalid;branch=z9hG4bKws2;received=2001:db8::1, "
        "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-a0"
    };

    for (i = 0; i < 2; i++) {
        if (!parse(&in, in_headers, (u_char *) reqs[i], strlen(reqs[i]))) {
            NGX_SIP_CHECK(0, "request %lu does not parse", (unsigned long) i);
            continue;
        }

        ngx_memzero(&f, sizeof(ngx_sip_forward_t));
        ngx_str_set(&f.via, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngxtest");
        ngx_str_set(&f.received, "2001:db8::1");
        f.rport = 65535;

        buf = malloc(ngx_sip_forward_size(&in, &f));
        p = ngx_sip_forward_request(buf, &in, &f);

        NGX_SIP_CHECK((size_t) (p - buf) <= ngx_sip_forward_size(&in, &f),
                      "received: size %lu", (unsigned long) i);

        if (parse(&out, out_headers, buf, p - buf)) {
            values(&out, NGX_SIP_HDR_VIA, v, sizeof(v));
            NGX_SIP_CHECK(strcmp(v, vias[i]) == 0, "received %lu: %s",
                          (unsigned long) i, v);
            NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.via.branch,
                                         "z9hG4bK-ngxtest"),
                          "received %lu: our Via on top", (unsigned long) i);

        } else {
            NGX_SIP_CHECK(0, "forwarded request %lu does not parse",
                          (unsigned long) i);
        }

        free(buf);
    }
}


static void
test_no_max_forwards(void)
{
    static const char  req[] =
        "OPTIONS sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-x\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: nomf\r\n"
        "CSeq: 5 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

    u_char             *buf, *p;
    ngx_sip_msg_t       in, out;
    ngx_sip_forward_t   f;

    if (!parse(&in, in_headers, (u_char *) req, sizeof(req) - 1)) {
        NGX_SIP_CHECK(0, "request does not parse");
        return;
    }

    ngx_memzero(&f, sizeof(ngx_sip_forward_t));
    ngx_str_set(&f.via, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngxtest");
    ngx_str_set(&f.ruri, "sip:bob@127.0.0.1:5070");

    buf = malloc(ngx_sip_forward_size(&in, &f));
    p = ngx_sip_forward_request(buf, &in, &f);

    if (parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(out.max_forwards == 70, "Max-Forwards 70 added");
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.request_uri,
                                     "sip:bob@127.0.0.1:5070"),
                      "new Request-URI");
        NGX_SIP_CHECK(out.hdr[NGX_SIP_HDR_RECORD_ROUTE] == NULL,
                      "no Record-Route when off");
    } else {
        NGX_SIP_CHECK(0, "forwarded request does not parse");
    }

    free(buf);
}


static void
test_response(void)
{
    static const char  one_line[] =
        "SIP/2.0 180 Ringing\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngx1, "
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a1;received=127.0.0.2\r\n"
        "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-a0\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>;tag=2\r\n"
        "Call-ID: resp\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

    static const char  two_lines[] =
        "SIP/2.0 200 OK\r\n"
        "v: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-ngx1\r\n"
        "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>;tag=2\r\n"
        "Call-ID: resp\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 4\r\n"
        "\r\n"
        "body";

    u_char         buf[1024], *p;
    char           v[512];
    ngx_sip_msg_t  in, out;

    if (parse(&in, in_headers, (u_char *) one_line, sizeof(one_line) - 1)) {
        p = ngx_sip_forward_response(buf, &in);

        if (parse(&out, out_headers, buf, p - buf)) {
            values(&out, NGX_SIP_HDR_VIA, v, sizeof(v));
            NGX_SIP_CHECK(strcmp(v, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a1;"
                                    "received=127.0.0.2|SIP/2.0/UDP "
                                    "192.0.2.9;branch=z9hG4bK-a0") == 0,
                          "top value of a Via list removed: %s", v);
            NGX_SIP_CHECK(out.status == 180, "status kept");
        }
    }

    if (parse(&in, in_headers, (u_char *) two_lines, sizeof(two_lines) - 1)) {
        p = ngx_sip_forward_response(buf, &in);

        if (parse(&out, out_headers, buf, p - buf)) {
            values(&out, NGX_SIP_HDR_VIA, v, sizeof(v));
            NGX_SIP_CHECK(strcmp(v, "SIP/2.0/UDP 192.0.2.1;"
                                    "branch=z9hG4bK-a1") == 0,
                          "top Via line removed: %s", v);
            NGX_SIP_CHECK(out.body.len == 4
                          && memcmp(out.body.data, "body", 4) == 0,
                          "body kept");
        }
    }
}


static void
test_branch(void)
{
    u_char         b[NGX_SIP_BRANCH_LEN], up[NGX_SIP_BRANCH_LEN];
    uint32_t       loop, salt;
    ngx_str_t      branch;
    ngx_uint_t     i, upper;
    ngx_sip_msg_t  in;

    upper = 0;

    if (!parse(&in, in_headers, (u_char *) invite, sizeof(invite) - 1)) {
        return;
    }

    branch.data = b;
    branch.len = ngx_sip_branch_make(b, &in, 0xdeadbeef, key);

    NGX_SIP_CHECK(ngx_sip_branch_check(&branch, key, &loop, &salt) == NGX_OK
                  && salt == 0xdeadbeef, "our branch recognised");

    /* the same digits in uppercase: another branch (17.2.3), not ours */

    for (i = 11; i < NGX_SIP_BRANCH_LEN; i++) {
        up[i] = (u_char) ngx_toupper(b[i]);
        upper += (up[i] != b[i]);
    }

    ngx_memcpy(up, b, 11);
    branch.data = up;

    NGX_SIP_CHECK(upper > 0
                  && ngx_sip_branch_check(&branch, key, &loop, &salt)
                     == NGX_DECLINED, "an uppercase copy is not ours");

    branch.data = b;
    b[NGX_SIP_BRANCH_LEN - 1] ^= 1;

    NGX_SIP_CHECK(ngx_sip_branch_check(&branch, key, &loop, &salt)
                  == NGX_DECLINED, "a forged branch is not ours");

    ngx_str_set(&branch, "z9hG4bK-a1");

    NGX_SIP_CHECK(ngx_sip_branch_check(&branch, key, &loop, &salt)
                  == NGX_DECLINED, "somebody else's branch");
}


static void
test_hop_requests(void)
{
    static const char  sent[] =
        "INVITE sip:bob@192.0.2.7:5070 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ngxours\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a1\r\n"
        "Route: <sip:edge1.example.net;lr>\r\n"
        "Route: <sip:edge2.example.net;lr>\r\n"
        "Max-Forwards: 69\r\n"
        "From: Alice <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: hop-1\r\n"
        "CSeq: 314 INVITE\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 4\r\n"
        "\r\n"
        "sdp!";

    static const char  busy[] =
        "SIP/2.0 486 Busy Here\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ngxours\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a1\r\n"
        "From: Alice <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>;tag=b9\r\n"
        "Call-ID: hop-1\r\n"
        "CSeq: 314 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

    static ngx_sip_header_t  resp_headers[NGX_SIP_MAX_HEADERS];

    u_char         *buf, *p;
    char            v[512];
    size_t          size;
    ngx_sip_msg_t   inv, resp, out;

    if (!parse(&inv, in_headers, (u_char *) sent, sizeof(sent) - 1)
        || !parse(&resp, resp_headers, (u_char *) busy, sizeof(busy) - 1))
    {
        NGX_SIP_CHECK(0, "messages do not parse");
        return;
    }

    /* CANCEL */

    size = ngx_sip_hop_request_size(&inv, NULL);
    buf = malloc(size);
    p = ngx_sip_write_hop_request(buf, &inv, NULL);

    NGX_SIP_CHECK((size_t) (p - buf) <= size, "cancel size");

    if (parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(out.method_id == NGX_SIP_CANCEL
                      && NGX_SIP_STR_EQ(out.request_uri,
                                        "sip:bob@192.0.2.7:5070"),
                      "CANCEL to the INVITE's Request-URI");
        values(&out, NGX_SIP_HDR_VIA, v, sizeof(v));
        NGX_SIP_CHECK(strcmp(v, "SIP/2.0/UDP 127.0.0.1:5060;"
                                "branch=z9hG4bK-ngxours") == 0,
                      "only our Via, same branch: %s", v);
        values(&out, NGX_SIP_HDR_ROUTE, v, sizeof(v));
        NGX_SIP_CHECK(strcmp(v, "<sip:edge1.example.net;lr>|"
                                "<sip:edge2.example.net;lr>") == 0,
                      "the INVITE's Route set: %s", v);
        NGX_SIP_CHECK(out.cseq.number == 314
                      && out.cseq.method_id == NGX_SIP_CANCEL, "CSeq");
        NGX_SIP_CHECK(out.to.tag.len == 0, "To without tag");
        NGX_SIP_CHECK(out.max_forwards == 70 && out.body.len == 0,
                      "Max-Forwards 70, no body");
    } else {
        NGX_SIP_CHECK(0, "CANCEL does not parse");
    }

    free(buf);

    /* ACK for the 486 */

    size = ngx_sip_hop_request_size(&inv, &resp);
    buf = malloc(size);
    p = ngx_sip_write_hop_request(buf, &inv, &resp);

    NGX_SIP_CHECK((size_t) (p - buf) <= size, "ack size");

    if (parse(&out, out_headers, buf, p - buf)) {
        NGX_SIP_CHECK(out.method_id == NGX_SIP_ACK, "ACK");
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.to.tag, "b9"),
                      "To from the response, with its tag");
        NGX_SIP_CHECK(NGX_SIP_STR_EQ(out.via.branch, "z9hG4bK-ngxours"),
                      "the INVITE's branch");
        NGX_SIP_CHECK(out.cseq.number == 314
                      && out.cseq.method_id == NGX_SIP_ACK, "CSeq ACK");
    } else {
        NGX_SIP_CHECK(0, "ACK does not parse");
    }

    free(buf);
}


/* the reference vector of the SipHash paper, appendix A */

static void
test_siphash(void)
{
    u_char      k[16], in[15];
    ngx_uint_t  i;

    for (i = 0; i < 16; i++) {
        k[i] = (u_char) i;
    }

    for (i = 0; i < 15; i++) {
        in[i] = (u_char) i;
    }

    NGX_SIP_CHECK(ngx_sip_siphash(k, in, 15) == 0xa129ca6149be45e5ULL,
                  "SipHash-2-4 test vector");
}


int
main(void)
{
    test_request();
    test_received();
    test_no_max_forwards();
    test_response();
    test_branch();
    test_hop_requests();
    test_siphash();

    return ngx_sip_test_done("test_forward");
}
