
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Message level parsing: start lines, header lines, bodies, the stream
 * framer, and every verdict of ngx_sip_msg_validate().
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"


#define RL      "OPTIONS sip:bob@example.com SIP/2.0\r\n"
#define VIA     "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
#define FROM    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
#define TO      "To: Bob <sip:bob@example.com>\r\n"
#define CALLID  "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
#define CSEQ    "CSeq: 314159 OPTIONS\r\n"
#define MF      "Max-Forwards: 70\r\n"
#define CL0     "Content-Length: 0\r\n"

#define BASE    VIA FROM TO CALLID CSEQ MF

/* a REGISTER: the one request whose Contacts are parsed (the registrar's) */
#define RLREG   "REGISTER sip:example.com SIP/2.0\r\n"
#define BASEREG VIA FROM TO CALLID "CSeq: 1 REGISTER\r\n" MF

#define STATUS  "SIP/2.0 200 OK\r\n"


static ngx_sip_header_t  headers[NGX_SIP_MAX_HEADERS];
static ngx_sip_msg_t     m;
static ngx_sip_error_t   err;
static u_char           *cur;
static size_t            cur_len;


/* the message in a buffer of its exact size: ASan sees any overread */

static u_char *
set_input(const char *s, size_t len)
{
    free(cur);

    cur = malloc(len ? len : 1);
    memcpy(cur, s, len);
    cur_len = len;

    return cur;
}


static ngx_int_t
parse_len(const char *s, size_t len, ngx_uint_t stream)
{
    set_input(s, len);

    m.headers = headers;
    m.max_headers = NGX_SIP_MAX_HEADERS;

    return ngx_sip_parse_message(&m, cur, cur + len, stream, &err);
}


static ngx_int_t
parse(const char *s, ngx_uint_t stream)
{
    return parse_len(s, strlen(s), stream);
}


static int
str_eq(ngx_str_t *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(s->data, lit, s->len) == 0;
}


static int
reason_is(const char *lit)
{
    return str_eq(&err.reason, lit);
}


/*
 * Parse (UDP) and validate: the verdict must be "status reason", status 0
 * for a message that passes.
 */

#define VCHECK(msg, st, rs)  vcheck(__LINE__, msg, st, rs)

static void
vcheck(int line, const char *s, ngx_uint_t status, const char *reason)
{
    ngx_int_t  rc;

    rc = parse(s, 0);

    if (rc == NGX_SIP_OK) {
        rc = ngx_sip_msg_validate(&m, &err);
    }

    if (status == 0) {
        NGX_SIP_CHECK(rc == NGX_OK, "line %d: %lu %.*s", line,
                      (unsigned long) err.status, (int) err.reason.len,
                      (char *) err.reason.data);
        return;
    }

    NGX_SIP_CHECK(rc != NGX_OK && err.status == status && reason_is(reason),
                  "line %d: want %lu %s, got rc %ld: %lu %.*s", line,
                  (unsigned long) status, reason, (long) rc,
                  (unsigned long) err.status, (int) err.reason.len,
                  err.reason.data ? (char *) err.reason.data : "");
}


static void
test_request_line(void)
{
    ngx_int_t  rc;

    rc = parse(RL BASE "\r\n", 0);

    NGX_SIP_CHECK(rc == NGX_SIP_OK, "good request");
    NGX_SIP_CHECK(m.request == 1, "request");
    NGX_SIP_CHECK(str_eq(&m.method, "OPTIONS"), "method");
    NGX_SIP_CHECK(m.method_id == NGX_SIP_OPTIONS, "method id");
    NGX_SIP_CHECK(str_eq(&m.request_uri, "sip:bob@example.com"), "uri");
    NGX_SIP_CHECK(str_eq(&m.version, "SIP/2.0"), "version");
    NGX_SIP_CHECK(m.version_n == NGX_SIP_VERSION_20, "version_n");
    NGX_SIP_CHECK(m.start == cur && m.end == cur + cur_len, "extent");
    NGX_SIP_CHECK(m.nheaders == 6, "nheaders %lu",
                  (unsigned long) m.nheaders);
    NGX_SIP_CHECK(m.body.len == 0 && m.body.data == cur + cur_len, "body");
    NGX_SIP_CHECK(m.headers_end == cur + cur_len, "headers_end");

    /* the version compares case-insensitively */

    rc = parse("OPTIONS sip:bob@example.com sip/2.0\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.version_n == NGX_SIP_VERSION_20,
                  "sip/2.0");

    /* methods do not: "options" is an unknown method, and a good token */

    rc = parse("options sip:bob@example.com SIP/2.0\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.method_id == NGX_SIP_UNKNOWN,
                  "lower case method");

    rc = parse("NEW-METH.OD!%*_+`'~ sip:a@b SIP/2.0\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && str_eq(&m.method, "NEW-METH.OD!%*_+`'~"),
                  "token method");

    /* other versions parse, and are refused by validation */

    rc = parse("OPTIONS sip:bob@example.com SIP/2.1\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.version_n == 2001, "SIP/2.1");

    rc = parse("OPTIONS sip:bob@example.com SIP/12.34\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.version_n == 12034, "SIP/12.34");

    /* CRLFs before the start line are skipped (RFC 3261 7.5) */

    rc = parse("\r\n\r\n" RL BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.start == cur + 4, "leading CRLF");

    /* a keepalive datagram is no error and nothing to answer */

    rc = parse("\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 0, "keepalive");

    rc = parse("", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 0, "empty");

    /* bare LF line ends */

    rc = parse("OPTIONS sip:bob@example.com SIP/2.0\n"
               "Via: SIP/2.0/UDP h;branch=z9hG4bK1\n"
               "From: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: x\n"
               "CSeq: 1 OPTIONS\nContent-Length: 4\n\nbody", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 6
                  && str_eq(&m.body, "body")
                  && str_eq(&m.headers[0].value,
                            "SIP/2.0/UDP h;branch=z9hG4bK1"),
                  "bare LF");
    NGX_SIP_CHECK(ngx_sip_msg_validate(&m, &err) == NGX_OK, "bare LF valid");
}


static void
bad_line(int line, const char *start, const char *reason)
{
    char       buf[1024];
    ngx_int_t  rc;

    snprintf(buf, sizeof(buf), "%s" BASE "\r\n", start);

    rc = parse(buf, 0);

    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is(reason),
                  "line %d: %s: %lu %.*s", line, start,
                  (unsigned long) err.status, (int) err.reason.len,
                  err.reason.data ? (char *) err.reason.data : "");

    /* the headers are there all the same, to answer with */

    NGX_SIP_CHECK(m.nheaders == 6 && m.hdr[NGX_SIP_HDR_VIA] != NULL,
                  "line %d: headers after a bad start line", line);
}


static void
test_bad_request_line(void)
{
    bad_line(__LINE__, "INVITE  sip:bob@example.com SIP/2.0\r\n",
             "Extra Space in Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com  SIP/2.0\r\n",
             "Extra Space in Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com SIP/2.0 \r\n",
             "Extra Space in Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com; lr SIP/2.0\r\n",
             "Bad Request Line");
    bad_line(__LINE__, "INVITE <sip:bob@example.com> SIP/2.0\r\n",
             "Bad Request-URI");
    bad_line(__LINE__, "INVITE sip:bob@example.com\r\n",
             "Missing SIP Version");
    bad_line(__LINE__, "INVITE\tsip:bob@example.com SIP/2.0\r\n",
             "Bad Request Line");
    bad_line(__LINE__, " INVITE sip:bob@example.com SIP/2.0\r\n",
             "Bad Request Line");
    bad_line(__LINE__, "INV(ITE sip:bob@example.com SIP/2.0\r\n",
             "Bad Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com HTTP/1.1\r\n",
             "Bad Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com SIP/2\r\n",
             "Bad Request Line");
    bad_line(__LINE__, "INVITE sip:bob@example.com SIP/2.0\rX\n",
             "Bad Request Line");
    bad_line(__LINE__, "INVITE sip:b\x01@example.com SIP/2.0\r\n",
             "Bad Request-URI");
    bad_line(__LINE__, "INVITE sip:b\xc3\xa9@example.com SIP/2.0\r\n",
             "Bad Request-URI");
    bad_line(__LINE__, "INVITE sip:bob@example.com SIP/2.0000\r\n",
             "Bad Request Line");

    /* the request line alone, not even ended */

    NGX_SIP_CHECK(parse("INVITE sip:bob@example.com SIP/2.0", 0)
                  == NGX_SIP_ERROR && err.status == 400, "no CRLF");
    NGX_SIP_CHECK(parse("INVITE", 0) == NGX_SIP_ERROR && err.status == 400
                  && m.request == 0, "method alone");
}


static void
test_status_line(void)
{
    ngx_int_t  rc;

    rc = parse(STATUS BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && !m.request && m.status == 200
                  && str_eq(&m.reason, "OK") && m.version_n == 2000,
                  "200 OK");

    rc = parse("SIP/2.0 100 \r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.status == 100 && m.reason.len == 0,
                  "empty reason");

    rc = parse("SIP/2.0 180\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.status == 180 && m.reason.len == 0,
                  "no SP before an empty reason");

    rc = parse("SIP/2.0 200 = 2**3 * 5**2 \xd0\xbd\xd0\xbe\tok\r\n"
               BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK
                  && str_eq(&m.reason, "= 2**3 * 5**2 \xd0\xbd\xd0\xbe\tok"),
                  "UTF-8 reason");

    rc = parse("sip/2.0 699 Whatever\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.status == 699, "699");

    rc = parse("SIP/3.0 200 OK\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.version_n == 3000, "SIP/3.0");

    rc = parse("SIP/2.0 4294967301 better not break the receiver\r\n"
               BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Bad Status Line") && !m.request
                  && m.hdr[NGX_SIP_HDR_VIA] != NULL, "bigcode");

    NGX_SIP_CHECK(parse("SIP/2.0 099 Low\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "099");
    NGX_SIP_CHECK(parse("SIP/2.0 700 High\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "700");
    NGX_SIP_CHECK(parse("SIP/2.0 20 Short\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "2 digits");
    NGX_SIP_CHECK(parse("SIP/2.0  200 OK\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "double SP");
    NGX_SIP_CHECK(parse("SIP/2.0 200x OK\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "200x");
    NGX_SIP_CHECK(parse("SIP/2.0 200 O\x01K\r\n" BASE "\r\n", 0)
                  == NGX_SIP_ERROR, "CTL in reason");
    NGX_SIP_CHECK(parse("SIP/2.0\r\n" BASE "\r\n", 0) == NGX_SIP_ERROR,
                  "version only");
    NGX_SIP_CHECK(parse("SIP/", 0) == NGX_SIP_ERROR, "SIP/ only");
}


static void
test_header_names(void)
{
    size_t             i;
    ngx_int_t          rc;
    ngx_uint_t         id;
    ngx_sip_header_t  *h;

    static struct {
        const char  *name;
        ngx_uint_t   id;
    } compact[] = {
        { "i", NGX_SIP_HDR_CALL_ID },
        { "m", NGX_SIP_HDR_CONTACT },
        { "e", NGX_SIP_HDR_CONTENT_ENCODING },
        { "l", NGX_SIP_HDR_CONTENT_LENGTH },
        { "f", NGX_SIP_HDR_FROM },
        { "t", NGX_SIP_HDR_TO },
        { "v", NGX_SIP_HDR_VIA },
        { "s", NGX_SIP_HDR_SUBJECT },
        { "k", NGX_SIP_HDR_SUPPORTED },
        { "c", NGX_SIP_HDR_CONTENT_TYPE },
        { "o", NGX_SIP_HDR_EVENT },
        { "u", NGX_SIP_HDR_ALLOW_EVENTS },
        { "r", NGX_SIP_HDR_REFER_TO },
        { "b", NGX_SIP_HDR_REFERRED_BY },
        { "x", NGX_SIP_HDR_SESSION_EXPIRES },
        { "y", NGX_SIP_HDR_IDENTITY },
        { "a", NGX_SIP_HDR_ACCEPT_CONTACT },
        { "j", NGX_SIP_HDR_REJECT_CONTACT },
        { "d", NGX_SIP_HDR_REQUEST_DISPOSITION },
        { "g", NGX_SIP_HDR_OTHER },
        { "z", NGX_SIP_HDR_OTHER },
    };

    char  buf[256], lname[64], up[2];

    /* every long name, in its case, upper and lower case */

    for (id = 1; id < NGX_SIP_HDR_MAX; id++) {
        NGX_SIP_CHECK(ngx_sip_header_names[id].len > 0, "name of %lu",
                      (unsigned long) id);

        for (i = 0; i < ngx_sip_header_names[id].len; i++) {
            lname[i] = (i % 2) ? ngx_toupper(ngx_sip_header_names[id].data[i])
                               : ngx_tolower(ngx_sip_header_names[id].data[i]);
        }

        lname[i] = '\0';

        snprintf(buf, sizeof(buf), RL "%s: %lu\r\n\r\n", lname,
                 (unsigned long) (id == NGX_SIP_HDR_CONTENT_LENGTH ? 0 : id));

        rc = parse(buf, 0);

        NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 1
                      && m.headers[0].id == id && m.hdr[id] == &m.headers[0]
                      && m.count[id] == 1,
                      "%s -> %lu", lname, (unsigned long) m.headers[0].id);

        h = ngx_sip_find_header(&m, ngx_sip_header_names[id].data,
                                ngx_sip_header_names[id].len);

        NGX_SIP_CHECK(h == &m.headers[0], "find %s", lname);
    }

    for (i = 0; i < sizeof(compact) / sizeof(compact[0]); i++) {
        snprintf(buf, sizeof(buf), RL "%s: 0\r\n%c :0\r\n\r\n",
                 compact[i].name, ngx_toupper(compact[i].name[0]));

        rc = parse(buf, 0);

        up[0] = ngx_toupper(compact[i].name[0]);
        up[1] = '\0';

        NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 2
                      && m.headers[0].id == compact[i].id
                      && m.headers[1].id == compact[i].id
                      && m.count[compact[i].id] == 2
                      && str_eq(&m.headers[1].value, "0")
                      && str_eq(&m.headers[1].name, up),
                      "compact %s", compact[i].name);
    }

    /* near misses are other headers */

    rc = parse(RL "Vias: a\r\nCall-IDs: b\r\nContent-Lengths: 1\r\n"
               "Fro: c\r\nT: d\r\nToo: e\r\nRetry-Afte: f\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 7
                  && m.count[NGX_SIP_HDR_OTHER] == 6
                  && m.headers[4].id == NGX_SIP_HDR_TO, "near misses");

    /* same length, first and last letter as a known name: same slot */

    rc = parse(RL "Vxa: a\r\nCall-XD: b\r\nContect: c\r\nFrxm: d\r\n"
               "Record-Rxxte: e\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 5
                  && m.count[NGX_SIP_HDR_OTHER] == 5, "slot near misses");

    /* names with all the token characters; unknown ones kept as sent */

    rc = parse(RL "extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\r\n"
               "X-Odd  :  spaced   value \t\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 2
                  && m.headers[0].id == NGX_SIP_HDR_OTHER
                  && str_eq(&m.headers[0].name, "extensionHeader-!.%*+_`'~")
                  && str_eq(&m.headers[0].value,
                            "\xef\xbb\xbf\xe5\xa4\xa7")
                  && str_eq(&m.headers[1].name, "X-Odd")
                  && str_eq(&m.headers[1].value, "spaced   value"),
                  "unknown headers");

    NGX_SIP_CHECK(m.headers[1].start == m.headers[0].end
                  && m.headers[1].end == cur + cur_len - 2
                  && memcmp(m.headers[1].start, "X-Odd", 5) == 0,
                  "line extents");

    h = ngx_sip_find_header(&m, (u_char *) "x-odd", 5);
    NGX_SIP_CHECK(h == &m.headers[1], "find unknown");

    h = ngx_sip_find_header(&m, (u_char *) "x-ode", 5);
    NGX_SIP_CHECK(h == NULL, "find absent");

    h = ngx_sip_find_header(&m, (u_char *) "Via", 3);
    NGX_SIP_CHECK(h == NULL, "find absent known");

    rc = parse(RL "v: SIP/2.0/UDP h\r\n\r\n", 0);
    h = ngx_sip_find_header(&m, (u_char *) "VIA", 3);
    NGX_SIP_CHECK(h == &m.headers[0], "find compact by long name");

    h = ngx_sip_find_header(&m, (u_char *) "v", 1);
    NGX_SIP_CHECK(h == &m.headers[0], "find compact by compact name");

    /* method ids */

    for (id = 1; id <= NGX_SIP_UPDATE; id++) {
        NGX_SIP_CHECK(ngx_sip_method_id(ngx_sip_method_names[id].data,
                                        ngx_sip_method_names[id].len)
                      == id, "method %lu", (unsigned long) id);
    }

    NGX_SIP_CHECK(ngx_sip_method_id((u_char *) "INVITe", 6)
                  == NGX_SIP_UNKNOWN, "INVITe");
    NGX_SIP_CHECK(ngx_sip_method_id((u_char *) "XYZ", 3)
                  == NGX_SIP_UNKNOWN, "XYZ");
    NGX_SIP_CHECK(ngx_sip_method_id((u_char *) "INFOS", 5)
                  == NGX_SIP_UNKNOWN, "INFOS");
    NGX_SIP_CHECK(ngx_sip_method_id((u_char *) "", 0)
                  == NGX_SIP_UNKNOWN, "empty method");
}


static void
test_folding(void)
{
    ngx_int_t  rc;

    rc = parse(RL "Subject: a\r\n b\r\n\tc  \r\n"
               "TO :\r\n <sip:bob@example.com> ;\r\n  tag = 1\r\n"
               "s :\r\n"
               "X-Empty:   \r\n   \r\n"
               "Via  : SIP  /   2.0\n /UDP\r\n    192.0.2.2;branch=x\r\n"
               "\r\n", 0);

    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.nheaders == 5, "folded: %ld %lu",
                  (long) rc, (unsigned long) m.nheaders);
    NGX_SIP_CHECK(str_eq(&m.headers[0].value, "a\r\n b\r\n\tc"), "fold 1");
    NGX_SIP_CHECK(str_eq(&m.headers[0].name, "Subject"), "fold 1 name");
    NGX_SIP_CHECK(str_eq(&m.headers[1].value,
                         "<sip:bob@example.com> ;\r\n  tag = 1")
                  && m.headers[1].id == NGX_SIP_HDR_TO, "fold 2");
    NGX_SIP_CHECK(m.headers[2].value.len == 0
                  && m.headers[2].id == NGX_SIP_HDR_SUBJECT
                  && m.count[NGX_SIP_HDR_SUBJECT] == 2, "empty value");
    NGX_SIP_CHECK(m.headers[3].value.len == 0, "folded empty value");
    NGX_SIP_CHECK(str_eq(&m.headers[4].value,
                         "SIP  /   2.0\n /UDP\r\n    192.0.2.2;branch=x"),
                  "fold with a bare LF");
    NGX_SIP_CHECK(m.hdr[NGX_SIP_HDR_SUBJECT] == &m.headers[0], "first");

    /* the start line cannot be continued */

    rc = parse(RL " folded\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header")
                  && m.nheaders == 6, "folded start line");
}


static void
test_bad_headers(void)
{
    char       *big;
    size_t      n, i;
    ngx_int_t   rc;

    rc = parse(RL VIA "Foobar roobar\r\n" FROM TO CALLID CSEQ "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Bad Header") && m.nheaders == 5
                  && m.hdr[NGX_SIP_HDR_CSEQ] != NULL, "no colon");

    rc = parse(RL ": value\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header")
                  && m.nheaders == 6, "no name");

    rc = parse(RL "X(y): value\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header"), "(");

    rc = parse(RL "Subject: a\rb\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header")
                  && m.nheaders == 6, "bare CR");

    rc = parse(RL "Subject: a\r\n\r" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header"),
                  "CR then no LF");

    rc = parse(RL "Subject\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header"),
                  "name alone");

    rc = parse(RL "Sub ject: x\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Header"),
                  "space in name");

    /* NUL and 8-bit octets are fine in a value: quoted-pair allows them */

    rc = parse_len(RL "To: \"a\\\0b\" <sip:c@d>\r\n\r\n",
                   sizeof(RL "To: \"a\\\0b\" <sip:c@d>\r\n\r\n") - 1, 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.headers[0].value.len == 16,
                  "NUL in value");

    /* no empty line */

    rc = parse(RL BASE, 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Missing Empty Line")
                  && m.nheaders == 6, "no empty line");

    rc = parse(RL BASE "Subject: x", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Missing Empty Line")
                  && m.nheaders == 6, "unterminated line");

    rc = parse(RL BASE "\r", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Missing Empty Line"),
                  "CR at the end");

    /* too many: the first ones are kept */

    m.headers = headers;
    m.max_headers = 4;
    set_input(RL BASE "\r\n", sizeof(RL BASE "\r\n") - 1);

    rc = ngx_sip_parse_message(&m, cur, cur + cur_len, 0, &err);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513
                  && reason_is("Too Many Headers") && m.nheaders == 4
                  && m.headers_end == cur + cur_len, "too many headers");

    m.headers = NULL;
    m.max_headers = 0;

    rc = ngx_sip_parse_message(&m, cur, cur + cur_len, 0, &err);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513, "no slots");

    /* counts saturate */

    n = 300;
    big = malloc(sizeof(RL) + n * 8 + 3);
    strcpy(big, RL);

    for (i = 0; i < n; i++) {
        strcat(big, "v: x,y\r\n");
    }

    strcat(big, "\r\n");

    rc = parse(big, 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513
                  && m.nheaders == NGX_SIP_MAX_HEADERS
                  && m.count[NGX_SIP_HDR_VIA] == 255, "count saturates");

    free(big);
}


static void
test_body(void)
{
    ngx_int_t  rc;

    rc = parse(RL BASE "Content-Length: 4\r\n\r\nbody", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.has_content_length
                  && m.content_length == 4 && str_eq(&m.body, "body")
                  && m.end == cur + cur_len, "body");

    /* RFC 4475 3.1.1.8: the rest of the datagram is not looked at */

    rc = parse(RL BASE "l: 2\r\n\r\nbody INVITE sip:x SIP/2.0\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && str_eq(&m.body, "bo")
                  && m.end == m.body.data + 2, "extra octets");

    rc = parse(RL BASE "Content-Length: 0\r\n\r\nINVITE", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.body.len == 0
                  && m.end == cur + cur_len - 6, "trailing INVITE");

    /* RFC 3261 18.3: no Content-Length in a datagram, up to its end */

    rc = parse(RL BASE "\r\nv=0\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && !m.has_content_length
                  && str_eq(&m.body, "v=0\r\n"), "no Content-Length");

    rc = parse(RL BASE "\r\nv=0\r\n", 1);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Missing Content-Length"),
                  "no Content-Length on a stream");

    rc = parse(RL BASE "Content-Length: 5\r\n\r\nv=0\r\n", 1);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.end == cur + cur_len,
                  "stream message");

    rc = parse(RL BASE "Content-Length: 9999\r\n\r\nv=0\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Content-Length Larger Than Message")
                  && m.hdr[NGX_SIP_HDR_VIA], "clerr");

    rc = parse(RL BASE "Content-Length: -999\r\n\r\nv=0\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Bad Content-Length"), "ncl");

    rc = parse(RL BASE "Content-Length: abc\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "non-numeric");

    rc = parse(RL BASE "Content-Length: 1 2\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "two numbers");

    rc = parse(RL BASE "Content-Length:\r\n\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "empty");

    rc = parse(RL BASE "Content-Length: 99999999999999999999999999\r\n\r\n",
               0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "overflow");

    rc = parse(RL BASE "Content-Length: 13\r\nl: 5\r\n\r\nabcde", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Conflicting Content-Length"), "mcl01");

    rc = parse(RL BASE "Content-Length: 5\r\nl: 005\r\n\r\nabcde", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.content_length == 5,
                  "same value twice");

    rc = parse(RL BASE "Content-Length:\r\n 5 \r\n\r\nabcde", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && m.content_length == 5, "folded");
}


static ngx_int_t
frame(ngx_sip_frame_t *f, const char *s, size_t max)
{
    set_input(s, strlen(s));

    return ngx_sip_frame(f, cur, cur + cur_len, max, &err);
}


static void
test_frame(void)
{
    size_t           i, len;
    ngx_int_t        rc;
    ngx_sip_frame_t  f;
    const char      *msg;

    msg = RL BASE "Content-Length: 4\r\n\r\nbody";
    len = strlen(msg);

    ngx_sip_frame_init(&f);
    rc = frame(&f, msg, 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.message_len == len
                  && f.header_len == len - 4 && f.crlf == 0
                  && f.pings == 0, "whole");

    /* RFC 5626 keepalives */

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.crlf == 4 && f.pings == 1,
                  "ping");

    rc = frame(&f, "\r\n\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.crlf == 6 && f.pings == 1,
                  "ping and a half");

    rc = frame(&f, "\r\n\r\n\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.crlf == 8 && f.pings == 2,
                  "two pings");

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.crlf == 2 && f.pings == 0,
                  "lone CRLF");

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\n\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.crlf == 2 && f.pings == 1,
                  "LF LF");

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\r\n\r\n" RL BASE "Content-Length: 4\r\n\r\nbody", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.crlf == 4 && f.pings == 1
                  && f.message_len == len && f.header_len == len, "ping+msg");

    /* the caller may drop the skipped octets while there is nothing else */

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\r\n\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && f.scanned == f.crlf
                  && f.header_len == 0, "keepalive only");

    f.scanned -= f.crlf;
    f.crlf = 0;

    rc = frame(&f, "\r\n" RL BASE "l:4\r\n\r\nbody", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.crlf == 2 && f.pings == 2
                  && f.message_len == len - 14, "after dropping: %ld",
                  (long) rc);

    /* pipelined */

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL BASE "l: 1\r\n\r\nx" RL BASE "l: 0\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.message_len == strlen(RL BASE) + 9,
                  "first of two");

    i = f.crlf + f.message_len;
    ngx_sip_frame_init(&f);
    rc = ngx_sip_frame(&f, cur + i, cur + cur_len, 65536, &err);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.crlf == 0
                  && i + f.message_len == cur_len, "second of two");

    /* Content-Length forms */

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "content-LENGTH :\r\n\t 3 \r\n\r\nabc", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.content_length == 3, "folded CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "L:3\n\nabc", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.message_len == strlen(RL) + 8,
                  "L:3 bare LF");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Lengthy: 3\r\nLocation: 7\r\n"
               "Contact: <sip:a@b>\r\nSubject: a\r\n Content-Length: 9\r\n"
               "l : 1\r\n\r\nx", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.content_length == 1,
                  "not Content-Length");

    /* "l" in a start line is not a header */

    ngx_sip_frame_init(&f);
    rc = frame(&f, "l: 5 sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK && f.content_length == 0, "start line");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL BASE "\r\nbody", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Missing Content-Length")
                  && f.header_len == strlen(RL BASE) + 2, "missing CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length: -1\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 400
                  && reason_is("Bad Content-Length"), "negative CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length: 1x\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "1x");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length: 1\r\n 2\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "folded digits");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length:\r\nX: 1\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && reason_is("Bad Content-Length"),
                  "empty CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length: 2\r\nl: 3\r\n\r\nabc", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR
                  && reason_is("Conflicting Content-Length"),
                  "conflicting CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Content-Length: 3\r\nl: 03\r\n\r\nabc", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_OK, "same CL twice");

    /* 513: headers, Content-Length, or both together too large */

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL BASE "l: 0\r\n\r\n", 100);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513
                  && reason_is("Message Too Large") && f.header_len == 0,
                  "headers too large");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Subject: ", 100);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN, "not yet too large");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "Subject: 12345678901234567890123456789012345678901"
               "2345678901234567890", 100);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513,
                  "too large before the end");

    ngx_sip_frame_init(&f);
    rc = frame(&f, "\r\n\r\n\r\n\r\n\r\n" RL "l: 0\r\n\r\n", 50);
    NGX_SIP_CHECK(rc == NGX_SIP_OK, "CRLFs do not count");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "l: 1000000000000000000000000000\r\n\r\n", 65536);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513
                  && f.header_len == 0, "huge CL");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "l: 70\r\n\r\n", 100);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR && err.status == 513
                  && f.header_len == strlen(RL) + 9, "with body too large");

    ngx_sip_frame_init(&f);
    rc = frame(&f, RL "l: 50\r\n\r\n", 100);
    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN, "waits for the body");

    /* split at every octet, the second part arriving later */

    msg = "\r\n\r\n" RL "Subject: a\r\n b\r\nl:\r\n 4\r\n\r\nbody" RL;
    len = strlen(msg) - strlen(RL);

    for (i = 0; i <= len; i++) {
        ngx_sip_frame_init(&f);
        set_input(msg, strlen(msg));

        rc = ngx_sip_frame(&f, cur, cur + i, 65536, &err);

        NGX_SIP_CHECK(rc == NGX_SIP_AGAIN || i == len, "split %lu early",
                      (unsigned long) i);

        rc = ngx_sip_frame(&f, cur, cur + cur_len, 65536, &err);

        NGX_SIP_CHECK(rc == NGX_SIP_OK && f.crlf == 4 && f.pings == 1
                      && f.crlf + f.message_len == len,
                      "split %lu: %ld", (unsigned long) i, (long) rc);
    }
}


static void
test_validate(void)
{
    ngx_int_t  rc;

    rc = parse(RL BASE "\r\n", 0);
    rc = (rc == NGX_SIP_OK) ? ngx_sip_msg_validate(&m, &err) : rc;

    NGX_SIP_CHECK(rc == NGX_OK, "valid: %.*s", (int) err.reason.len,
                  (char *) err.reason.data);
    NGX_SIP_CHECK(m.ruri.scheme_id == NGX_SIP_SCHEME_SIP
                  && str_eq(&m.ruri.host, "example.com")
                  && str_eq(&m.ruri.user, "bob"), "ruri");
    NGX_SIP_CHECK(str_eq(&m.via.host, "192.0.2.1") && m.via.port == 5060,
                  "via");
    NGX_SIP_CHECK(str_eq(&m.from.uri.user, "alice")
                  && str_eq(&m.from.tag, "1928301774"), "from");
    NGX_SIP_CHECK(str_eq(&m.to.uri.user, "bob") && m.to.tag.len == 0, "to");
    NGX_SIP_CHECK(m.cseq.number == 314159
                  && m.cseq.method_id == NGX_SIP_OPTIONS, "cseq");
    NGX_SIP_CHECK(str_eq(&m.call_id, "a84b4c76e66710@pc33.example.com"),
                  "call-id");
    NGX_SIP_CHECK(m.max_forwards == 70, "max-forwards");

    VCHECK(RL VIA FROM TO CALLID CSEQ "\r\n", 0, NULL);
    NGX_SIP_CHECK(m.max_forwards == -1, "no Max-Forwards");

    /* the top Via is the first via-parm of the first line */

    VCHECK(RL "Via: SIP/2.0/TCP top.example.com;branch=z9hG4bK1 ,"
           " SIP/2.0/UDP second.example.com\r\n"
           "v: SIP/2.0/UDP third.example.com\r\n"
           FROM TO CALLID CSEQ "\r\n", 0, NULL);
    NGX_SIP_CHECK(str_eq(&m.via.host, "top.example.com")
                  && str_eq(&m.via.transport, "TCP"), "top via");

    /* responses */

    VCHECK(STATUS BASE "\r\n", 0, NULL);
    VCHECK("SIP/2.0 200 OK\r\n" VIA FROM TO CALLID "CSeq: 1 INVITE\r\n\r\n",
           0, NULL);
    VCHECK(STATUS FROM TO CALLID CSEQ "\r\n", 400, "Missing Via");
    VCHECK("SIP/2.0 503 Overloaded\r\n" VIA FROM TO CALLID
           "CSeq: 36893488147419103232 INVITE\r\n\r\n", 400, "Bad CSeq");
    VCHECK("SIP/2.1 200 OK\r\n" BASE "\r\n", 505, "Version Not Supported");

    /* versions first */

    VCHECK("OPTIONS sip:bob@example.com SIP/7.0\r\n"
           "Via: SIP/7.0/UDP h;branch=z9hG4bK1\r\n" CSEQ "\r\n",
           505, "Version Not Supported");

    /* missing */

    VCHECK(RL FROM TO CALLID CSEQ MF "\r\n", 400, "Missing Via");
    VCHECK(RL VIA TO CALLID CSEQ MF "\r\n", 400, "Missing From");
    VCHECK(RL VIA FROM CALLID CSEQ MF "\r\n", 400, "Missing To");
    VCHECK(RL VIA FROM TO CSEQ MF "\r\n", 400, "Missing Call-ID");
    VCHECK(RL VIA FROM TO CALLID MF "\r\n", 400, "Missing CSeq");

    /* single-valued ones twice */

    VCHECK(RL BASE "i: other@h\r\n\r\n", 400, "Duplicate Call-ID");
    VCHECK(RL BASE "f: <sip:x@y>;tag=2\r\n\r\n", 400, "Duplicate From");
    VCHECK(RL BASE "t: <sip:x@y>\r\n\r\n", 400, "Duplicate To");
    VCHECK(RL BASE CSEQ "\r\n", 400, "Duplicate CSeq");
    VCHECK(RL BASE MF "\r\n", 400, "Duplicate Max-Forwards");

    /* syntax */

    VCHECK(RL "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"
           FROM TO CALLID CSEQ "\r\n", 400, "Bad Via");
    VCHECK(RL "Via: SIP/2.0/UDP 192.0.2.15,\r\n"
           FROM TO CALLID CSEQ "\r\n", 400, "Bad Via");
    VCHECK(RL VIA "Via: \r\n" FROM TO CALLID CSEQ "\r\n", 400, "Bad Via");
    VCHECK(RL VIA "Via: garbage\r\n" FROM TO CALLID CSEQ "\r\n",
           400, "Bad Via");
    VCHECK(RL VIA "From: \"Alice <sip:alice@example.com>;tag=1\r\n"
           TO CALLID CSEQ "\r\n", 400, "Bad From");
    VCHECK(RL VIA "From: Bell, Alexander <sip:a@example.com>;tag=43\r\n"
           TO CALLID CSEQ "\r\n", 400, "Bad From");
    VCHECK(RL VIA FROM "To: \"Watson, Thomas\" < sip:t@example.org >\r\n"
           CALLID CSEQ "\r\n", 400, "Bad To");
    VCHECK(RL VIA FROM "To: <sip:a@b>, <sip:c@d>\r\n" CALLID CSEQ "\r\n",
           400, "Bad To");
    VCHECK(RL VIA FROM "To: *\r\n" CALLID CSEQ "\r\n", 400, "Bad To");
    VCHECK(RL VIA FROM TO "Call-ID: a@b@c\r\n" CSEQ "\r\n",
           400, "Bad Call-ID");
    VCHECK(RL VIA FROM TO "Call-ID: a b\r\n" CSEQ "\r\n",
           400, "Bad Call-ID");
    VCHECK(RL VIA FROM TO "Call-ID: @b\r\n" CSEQ "\r\n", 400, "Bad Call-ID");
    VCHECK(RL VIA FROM TO "Call-ID: a@\r\n" CSEQ "\r\n", 400, "Bad Call-ID");
    VCHECK(RL VIA FROM TO "Call-ID:\r\n" CSEQ "\r\n", 400, "Bad Call-ID");
    VCHECK(RL VIA FROM TO "Call-ID: w`~)(><:\\/\"][?}{@x\r\n" CSEQ "\r\n",
           0, NULL);
    VCHECK(RL VIA FROM TO CALLID "CSeq: abc OPTIONS\r\n\r\n",
           400, "Bad CSeq");
    VCHECK(RL VIA FROM TO CALLID "CSeq: 4294967296 OPTIONS\r\n\r\n",
           400, "Bad CSeq");
    VCHECK(RL VIA FROM TO CALLID "CSeq: 4294967295 OPTIONS\r\n\r\n",
           0, NULL);
    VCHECK(RL VIA FROM TO CALLID "CSeq: 0009\r\n  OPTIONS\r\n\r\n",
           0, NULL);
    VCHECK(RL VIA FROM TO CALLID "CSeq: 1 INVITE\r\n\r\n",
           400, "CSeq Method Mismatch");
    VCHECK(RL VIA FROM TO CALLID "CSeq: 1 options\r\n\r\n",
           400, "CSeq Method Mismatch");
    VCHECK("NEWMETHOD sip:a@example.com SIP/2.0\r\n"
           VIA FROM TO CALLID "CSeq: 8 INVITE\r\n\r\n",
           400, "CSeq Method Mismatch");
    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: 256\r\n\r\n",
           400, "Bad Max-Forwards");
    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: 300\r\n\r\n",
           400, "Bad Max-Forwards");
    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: x\r\n\r\n",
           400, "Bad Max-Forwards");
    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: 0068\r\n\r\n",
           0, NULL);
    NGX_SIP_CHECK(m.max_forwards == 68, "0068");
    VCHECK(RL BASE "Expires: 4294967296\r\n\r\n", 400, "Bad Expires");
    VCHECK(RL BASE "Expires: 4294967295\r\n\r\n", 0, NULL);
    VCHECK(RL BASE "Expires: soon\r\n\r\n", 400, "Bad Expires");
    VCHECK(RLREG BASEREG "Contact: sip:user@example.com?Route=%3Csip:sip.example"
           ".com%3E\r\n\r\n", 400, "Bad Contact");
    VCHECK(RLREG BASEREG "Contact: <sip:user@example.com?Route=%3Csip:sip.example"
           ".com%3E>\r\n\r\n", 0, NULL);
    VCHECK(RLREG BASEREG "Contact: sip:+19725552222@gw1.example.net;unknownparam"
           "\r\n\r\n", 0, NULL);
    VCHECK(RLREG BASEREG "m: <sip:a@b>, \"B\" <sip:c@d>;q=0.5\r\nm: <sip:e@f>"
           "\r\n\r\n", 0, NULL);
    VCHECK(RLREG BASEREG "Contact: <sip:a@b>,\r\n\r\n", 400, "Bad Contact");
    VCHECK(RLREG BASEREG "Contact: <sip:a@b> <sip:c@d>\r\n\r\n",
           400, "Bad Contact");
    VCHECK(RLREG BASEREG "Contact: \"Joe\" <sip:joe@example.org>;;;;\r\n\r\n",
           400, "Bad Contact");
    VCHECK(RLREG BASEREG "Contact: *\r\nExpires: 0\r\n\r\n", 0, NULL);
    VCHECK(RLREG BASEREG "Contact: *, <sip:a@b>\r\n\r\n", 400, "Bad Contact");
    VCHECK(RLREG BASEREG "Contact: *\r\nContact: <sip:a@b>\r\n\r\n",
           400, "Bad Contact");

    /*
     * RFC 3261 16.3: what a proxy does not use it forwards as it came,
     * well-formed or not: the Contacts of other messages, Record-Route
     */

    VCHECK(RL BASE "Contact: <sip:a@b> <sip:c@d>\r\n"
           "Record-Route: <sip:p1.example.com;lr>,\r\n\r\n", 0, NULL);
    VCHECK(STATUS VIA FROM TO CALLID CSEQ "Contact: *, <sip:a@b>\r\n"
           "Record-Route: sip:p1.example.com;lr\r\n\r\n", 0, NULL);

    VCHECK(RL BASE "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>"
           "\r\n\r\n", 0, NULL);
    VCHECK(RL BASE "Route: sip:p1.example.com;lr\r\n\r\n", 400, "Bad Route");
    VCHECK(STATUS VIA FROM TO CALLID CSEQ "Route: <sip:a@b>,\r\n\r\n",
           400, "Bad Route");

    /* the Request-URI */

    VCHECK("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0"
           "\r\n" VIA FROM TO CALLID "CSeq: 1 INVITE\r\n\r\n",
           400, "Bad Request-URI");
    VCHECK("REGISTER sip:2001:db8::10 SIP/2.0\r\n"
           VIA FROM TO CALLID "CSeq: 1 REGISTER\r\n\r\n",
           400, "Bad Request-URI");
    VCHECK("REGISTER sip:[2001:db8::10] SIP/2.0\r\n"
           VIA FROM TO CALLID "CSeq: 1 REGISTER\r\n\r\n", 0, NULL);
    VCHECK("OPTIONS sip: SIP/2.0\r\n" BASE "\r\n", 400, "Bad Request-URI");
    VCHECK("OPTIONS sip SIP/2.0\r\n" BASE "\r\n", 400, "Bad Request-URI");
    VCHECK("OPTIONS 1sip:a@b SIP/2.0\r\n" BASE "\r\n",
           400, "Bad Request-URI");
    VCHECK("OPTIONS tel:+1-201-555-0123 SIP/2.0\r\n" BASE "\r\n", 0, NULL);
    NGX_SIP_CHECK(m.ruri.scheme_id == NGX_SIP_SCHEME_TEL, "tel");
    VCHECK("OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\r\n"
           BASE "\r\n", 416, "Unsupported URI Scheme");
    NGX_SIP_CHECK(m.ruri.scheme_id == NGX_SIP_SCHEME_OTHER
                  && str_eq(&m.ruri.scheme, "nobodyKnowsThisScheme"),
                  "unknown scheme");
    VCHECK("OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\n" BASE "\r\n",
           416, "Unsupported URI Scheme");
    VCHECK("OPTIONS http://example.com/ SIP/2.0\r\n" BASE "\r\n",
           416, "Unsupported URI Scheme");

    /* 420, with the option tags that are not supported */

    VCHECK(RL BASE "Require: nothingSupportsThis, nothingSupportsThisEither"
           "\r\nProxy-Require: noProxiesSupportThis,\r\n "
           "norDoAnyProxiesSupportThis\r\n\r\n", 420, "Bad Extension");
    NGX_SIP_CHECK(str_eq(&err.header, "Unsupported: nothingSupportsThis, "
                         "nothingSupportsThisEither, noProxiesSupportThis, "
                         "norDoAnyProxiesSupportThis"), "Unsupported: %.*s",
                  (int) err.header.len, (char *) err.header.data);

    VCHECK(RL BASE "Require: a,,b\r\n\r\n", 400, "Bad Require");
    NGX_SIP_CHECK(err.header.len == 0, "no Unsupported with 400");
    VCHECK(RL BASE "Proxy-Require: \r\n\r\n", 400, "Bad Proxy-Require");
    VCHECK(RL BASE "Require: x y\r\n\r\n", 400, "Bad Require");

    VCHECK("CANCEL sip:bob@example.com SIP/2.0\r\n" VIA FROM TO CALLID
           "CSeq: 1 CANCEL\r\nRequire: foo\r\n\r\n", 0, NULL);
    VCHECK("ACK sip:bob@example.com SIP/2.0\r\n" VIA FROM TO CALLID
           "CSeq: 1 ACK\r\nProxy-Require: foo\r\n\r\n", 0, NULL);

    /* a long list is cut, at a tag */

    VCHECK(RL BASE "Require: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbb"
           "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
           "bbbbbbbbbbbbbbbb, ccccccccccccccccccccccccccccccccccccccccccccccc"
           "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
           ", d\r\n\r\n", 420, "Bad Extension");
    NGX_SIP_CHECK(err.header.len <= NGX_SIP_ERROR_HEADER_LEN
                  && err.header.data[err.header.len - 1] == 'd'
                  && err.header.data[err.header.len - 2] == ' ',
                  "cut: %.*s", (int) err.header.len,
                  (char *) err.header.data);

    /* 483 last, when all else is right */

    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: 0\r\n\r\n",
           483, "Too Many Hops");
    NGX_SIP_CHECK(m.max_forwards == 0 && m.call_id.len, "483 fields");
    VCHECK("OPTIONS foo:bar SIP/2.0\r\n" VIA FROM TO CALLID CSEQ
           "Max-Forwards: 0\r\n\r\n", 416, "Unsupported URI Scheme");
    VCHECK(RL VIA FROM TO CALLID CSEQ "Max-Forwards: 0\r\nRequire: x\r\n\r\n",
           420, "Bad Extension");
    VCHECK(RL VIA TO CALLID CSEQ "Max-Forwards: 0\r\n\r\n",
           400, "Missing From");
    VCHECK(STATUS VIA FROM TO CALLID CSEQ "Max-Forwards: 0\r\n\r\n",
           0, NULL);

    /* a message that failed to parse is validated for its fields */

    rc = parse("INVITE  sip:bob@example.com SIP/2.0\r\n" BASE "\r\n", 0);
    NGX_SIP_CHECK(rc == NGX_SIP_ERROR, "bad start line");
    rc = ngx_sip_msg_validate(&m, &err);
    NGX_SIP_CHECK(rc == NGX_ERROR && m.via.host.len && m.call_id.len
                  && m.from.tag.len, "fields of a bad message");
}


/*
 * ngx_sip_chars[] against the sets as RFC 3261 25.1 writes them, every
 * octet; and ngx_sip_span() and ngx_sip_name_eq() at every length and
 * alignment that their word steps have.
 */

static void
test_chars(void)
{
    u_char       c, buf[64];
    size_t       n, i;
    ngx_uint_t   want, got, k;

    static const struct {
        ngx_uint_t   set;
        const char  *extra;
    } sets[] = {
        { NGX_SIP_C_TOKEN, "-.!%*_+`'~" },
        { NGX_SIP_C_WORD, "-.!%*_+`'~()<>:\\\"/[]?{}" },
        { NGX_SIP_C_PVALUE, "-.!%*_+`'~:[]" },
        { NGX_SIP_C_LWS, NULL },
        { NGX_SIP_C_UNRESERVED, "-_.!~*'()" },
        { NGX_SIP_C_USER, NULL },
        { NGX_SIP_C_PASSWORD, NULL },
        { NGX_SIP_C_PARAM, NULL },
        { NGX_SIP_C_HNV, NULL },
        { NGX_SIP_C_HOST, "-." },
        { NGX_SIP_C_RURI, "!#$%&'()*+,-./:;=?@[\\]^_`{|}~" }
    };

    static const struct {
        ngx_uint_t   set;
        const char  *all;
    } exact[] = {
        { NGX_SIP_C_LWS, " \t\r\n" },
        { NGX_SIP_C_USER, "&=+$,;?/" },
        { NGX_SIP_C_PASSWORD, "&=+$," },
        { NGX_SIP_C_PARAM, "[]/:&+$" },
        { NGX_SIP_C_HNV, "[]/?:+$" }
    };

    for (n = 0; n < 256; n++) {
        c = (u_char) n;

        for (k = 0; k < sizeof(sets) / sizeof(sets[0]); k++) {
            if (sets[k].extra) {
                want = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                        || (c >= '0' && c <= '9')
                        || (c && strchr(sets[k].extra, c) != NULL));

            } else {
                for (i = 0; exact[i].set != sets[k].set; i++) {
                    /* void */
                }

                want = (c && strchr(exact[i].all, c) != NULL);
            }

            got = ngx_sip_is(c, sets[k].set) ? 1 : 0;

            NGX_SIP_CHECK(got == want, "octet 0x%02x, set 0x%03lx: %lu",
                          (unsigned) c, (unsigned long) sets[k].set,
                          (unsigned long) got);
        }
    }

    /* a token of every length, then a stop octet */

    for (n = 0; n < 36; n++) {
        memset(buf, 'a', n);
        buf[n] = ':';

        NGX_SIP_CHECK(ngx_sip_span(buf, buf + n + 1, NGX_SIP_C_TOKEN)
                      == buf + n, "span of %lu token octets",
                      (unsigned long) n);
        NGX_SIP_CHECK(ngx_sip_span(buf, buf + n, NGX_SIP_C_TOKEN) == buf + n,
                      "span to the end, %lu octets", (unsigned long) n);
    }

    /* names of every length, a difference in each position */

    for (n = 1; n < 24; n++) {
        for (i = 0; i < n; i++) {
            buf[i] = (u_char) ('A' + i);
            buf[32 + i] = (u_char) ('a' + i);
        }

        NGX_SIP_CHECK(ngx_sip_name_eq(buf, (char *) buf + 32, n),
                      "name of %lu octets", (unsigned long) n);

        for (i = 0; i < n; i++) {
            buf[i] ^= 0x01;

            NGX_SIP_CHECK(!ngx_sip_name_eq(buf, (char *) buf + 32, n),
                          "%lu octets, differing at %lu", (unsigned long) n,
                          (unsigned long) i);

            buf[i] ^= 0x01;
        }
    }

    NGX_SIP_CHECK(ngx_sip_name_eq((u_char *) "cALL-id", "Call-ID", 7),
                  "Call-ID in any case");
    NGX_SIP_CHECK(!ngx_sip_name_eq((u_char *) "Call_ID", "Call-ID", 7),
                  "'_' is no '-'");
    NGX_SIP_CHECK(!ngx_sip_name_eq((u_char *) "branci", "branch", 6),
                  "branci");
}


/*
 * ngx_sip_find_eol() against a loop, at every length up to three of its
 * 16-octet steps, with CR, LF or neither at every place; the octets after
 * "last" are CRs, which it must never return.
 */

static void
test_find_eol(void)
{
    u_char      buf[64], *want, *got;
    size_t      n, i, at;
    ngx_uint_t  c, bad;

    static const u_char  eol[] = { CR, LF, 0 };

    bad = 0;

    for (n = 0; n <= 48; n++) {
        for (c = 0; c < 3; c++) {
            for (at = 0; at <= n; at++) {

                ngx_memset(buf, CR, sizeof(buf));
                ngx_memset(buf, 'x', n);

                if (at < n && eol[c]) {
                    buf[at] = eol[c];
                }

                want = NULL;

                for (i = 0; i < n; i++) {
                    if (buf[i] == CR || buf[i] == LF) {
                        want = &buf[i];
                        break;
                    }
                }

                got = ngx_sip_find_eol(buf, buf + n);

                if (got != want) {
                    bad++;
                }

                /* a second CR or LF after the first changes nothing */

                if (want && want + 1 < buf + n) {
                    want[1] = LF;

                    if (ngx_sip_find_eol(buf, buf + n) != want) {
                        bad++;
                    }
                }
            }
        }
    }

    NGX_SIP_CHECK(bad == 0, "find_eol at every length and place");
}


int
main(void)
{
    test_chars();
    test_find_eol();
    test_request_line();
    test_bad_request_line();
    test_status_line();
    test_header_names();
    test_folding();
    test_bad_headers();
    test_body();
    test_frame();
    test_validate();

    free(cur);

    return ngx_sip_test_done("test_parse");
}
