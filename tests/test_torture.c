
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * The RFC 4475 and RFC 5118 torture messages, with the verdict each RFC
 * gives (verdicts.tsv of the corpus): every message is parsed as a UDP
 * datagram and validated, and the outcome is compared with the expected
 * one, as the stream glue would act on it.  Every message is also fed to
 * the stream framer split at every octet, one octet at a time and in
 * random chunks, and must be framed as when it arrives whole.
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"

#include <errno.h>


#define TORTURE_DEFAULT   "../shared/sip-torture"
#define MAX_SIZE          65536


typedef struct {
    ngx_int_t         rc;
    ngx_uint_t        status;
    size_t            message_len;
    size_t            header_len;
    ngx_uint_t        crlf;
    ngx_uint_t        pings;
} frame_result_t;


static ngx_sip_header_t  headers[NGX_SIP_MAX_HEADERS];


static u_char *
read_file(const char *path, size_t *len)
{
    long    size;
    FILE   *f;
    u_char *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    /* exactly the file: ASan catches any read past the datagram */

    buf = malloc(size ? size : 1);

    if (buf == NULL || fread(buf, 1, size, f) != (size_t) size) {
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    *len = size;

    return buf;
}


/* what the glue does with a message: answers it (status) or drops it */

static int
outcome_matches(const char *expect, ngx_int_t prc, ngx_int_t vrc,
    ngx_sip_msg_t *m, ngx_sip_error_t *err, char *got, size_t gotlen)
{
    int          answered, ok;
    char         alt[64];
    const char  *p, *e;
    size_t       n;
    ngx_uint_t   status;

    answered = m->request && m->hdr[NGX_SIP_HDR_VIA] != NULL
               && m->method_id != NGX_SIP_ACK;

    status = 0;

    if (prc != NGX_SIP_OK || vrc != NGX_OK) {
        status = err->status;
    }

    if (!answered) {
        snprintf(got, gotlen, "drop (%s %lu%s%.*s)",
                 m->request ? "request" : (m->status ? "response"
                                                      : "unparsed"),
                 (unsigned long) (m->request ? m->method_id : m->status),
                 status ? ", error: " : ", valid",
                 status ? (int) err->reason.len : 0,
                 status ? (char *) err->reason.data : "");

    } else if (status) {
        snprintf(got, gotlen, "%lu %.*s%s%.*s", (unsigned long) status,
                 (int) err->reason.len, (char *) err->reason.data,
                 err->header.len ? " / " : "",
                 (int) err->header.len,
                 err->header.len ? (char *) err->header.data : "");

    } else {
        snprintf(got, gotlen, "processed");
    }

    ok = 0;

    for (p = expect; *p; p = *e ? e + 1 : e) {
        e = strchr(p, '|');
        if (e == NULL) {
            e = p + strlen(p);
        }

        n = ngx_min((size_t) (e - p), sizeof(alt) - 1);
        memcpy(alt, p, n);
        alt[n] = '\0';

        if (strcmp(alt, "any-non-crash") == 0) {
            ok = 1;

        } else if (strcmp(alt, "drop") == 0) {
            ok |= !answered;

        } else if (strcmp(alt, "2xx-or-proxy") == 0
                   || strcmp(alt, "proxy") == 0
                   || strcmp(alt, "2xx") == 0)
        {
            ok |= answered && status == 0;

        } else if (alt[0] >= '1' && alt[0] <= '6') {
            ok |= answered && status == (ngx_uint_t) atoi(alt);
        }
    }

    return ok;
}


static void
frame_all(u_char *buf, size_t len, frame_result_t *r)
{
    ngx_sip_frame_t  f;
    ngx_sip_error_t  err;

    ngx_sip_frame_init(&f);

    r->rc = ngx_sip_frame(&f, buf, buf + len, MAX_SIZE, &err);
    r->status = (r->rc == NGX_SIP_ERROR) ? err.status : 0;
    r->message_len = f.message_len;
    r->header_len = f.header_len;
    r->crlf = f.crlf;
    r->pings = f.pings;
}


static int
frame_same(frame_result_t *a, frame_result_t *b)
{
    if (a->rc != b->rc || a->status != b->status || a->crlf != b->crlf
        || a->pings != b->pings)
    {
        return 0;
    }

    if (a->rc == NGX_SIP_OK) {
        return a->message_len == b->message_len
               && a->header_len == b->header_len;
    }

    return 1;
}


/*
 * Feeds [0,len) in chunks; each call gets all octets so far, copied to a
 * new buffer of exactly that size, the way the glue may move them.
 */

static void
frame_chunks(u_char *buf, size_t len, size_t *cuts, size_t ncuts,
    frame_result_t *r)
{
    size_t           i, end;
    u_char          *copy;
    ngx_sip_frame_t  f;
    ngx_sip_error_t  err;

    ngx_sip_frame_init(&f);

    r->rc = NGX_SIP_AGAIN;

    for (i = 0; i <= ncuts; i++) {
        end = (i < ncuts) ? cuts[i] : len;

        copy = malloc(end ? end : 1);
        memcpy(copy, buf, end);

        r->rc = ngx_sip_frame(&f, copy, copy + end, MAX_SIZE, &err);

        free(copy);

        if (r->rc != NGX_SIP_AGAIN) {
            break;
        }
    }

    r->status = (r->rc == NGX_SIP_ERROR) ? err.status : 0;
    r->message_len = f.message_len;
    r->header_len = f.header_len;
    r->crlf = f.crlf;
    r->pings = f.pings;
}


static uint32_t  rnd_state = 4475;

static uint32_t
rnd(void)
{
    rnd_state = rnd_state * 1103515245 + 12345;
    return (rnd_state >> 16) & 0x7fff;
}


static void
test_framing(const char *name, u_char *data, size_t len)
{
    size_t           i, k, n, *cuts;
    u_char          *buf;
    ngx_int_t        rc;
    ngx_uint_t       fails, count;
    frame_result_t   whole, part;
    ngx_sip_msg_t    m;
    ngx_sip_error_t  err;
    ngx_sip_frame_t  f;

    /* a keepalive ping before the message, as phones send them */

    n = len + 4;
    buf = malloc(n);
    memcpy(buf, "\r\n\r\n", 4);
    memcpy(buf + 4, data, len);

    frame_all(buf, n, &whole);

    NGX_SIP_CHECK(whole.crlf == 4 && whole.pings == 1,
                  "%s: crlf %lu pings %lu", name,
                  (unsigned long) whole.crlf, (unsigned long) whole.pings);

    if (whole.rc == NGX_SIP_OK) {

        /* the framed message parses as a whole stream message */

        m.headers = headers;
        m.max_headers = NGX_SIP_MAX_HEADERS;

        rc = ngx_sip_parse_message(&m, buf + whole.crlf,
                                   buf + whole.crlf + whole.message_len, 1,
                                   &err);

        NGX_SIP_CHECK(rc != NGX_SIP_OK
                      || m.end == buf + whole.crlf + whole.message_len,
                      "%s: framed %lu, parsed %ld", name,
                      (unsigned long) whole.message_len,
                      (long) (m.end - m.start));

        NGX_SIP_CHECK(m.headers_end == buf + whole.header_len,
                      "%s: header_len %lu", name,
                      (unsigned long) whole.header_len);
    }

    cuts = malloc(n * sizeof(size_t));

    /* two reads, split at every octet */

    fails = 0;

    for (i = 1; i < n; i++) {
        cuts[0] = i;
        frame_chunks(buf, n, cuts, 1, &part);

        if (!frame_same(&whole, &part)) {
            fails++;
        }
    }

    NGX_SIP_CHECK(fails == 0, "%s: %lu split positions frame differently",
                  name, (unsigned long) fails);

    /* one octet at a time */

    for (i = 0; i < n - 1; i++) {
        cuts[i] = i + 1;
    }

    frame_chunks(buf, n, cuts, n - 1, &part);

    NGX_SIP_CHECK(frame_same(&whole, &part),
                  "%s: octet by octet: rc %ld/%ld len %lu/%lu", name,
                  (long) part.rc, (long) whole.rc,
                  (unsigned long) part.message_len,
                  (unsigned long) whole.message_len);

    /* random chunks, a fixed seed */

    for (k = 0; k < 20; k++) {
        count = 0;

        for (i = rnd() % 64 + 1; i < n; i += rnd() % 200 + 1) {
            cuts[count++] = i;
        }

        frame_chunks(buf, n, cuts, count, &part);

        NGX_SIP_CHECK(frame_same(&whole, &part),
                      "%s: random chunks, round %lu", name,
                      (unsigned long) k);
    }

    free(cuts);
    free(buf);

    /* three copies pipelined in one read, with CRLFs between them */

    if (whole.rc != NGX_SIP_OK || whole.message_len != len) {
        return;
    }

    n = 3 * len + 4;
    buf = malloc(n);
    memcpy(buf, data, len);
    memcpy(buf + len, "\r\n", 2);
    memcpy(buf + len + 2, data, len);
    memcpy(buf + 2 * len + 2, "\r\n", 2);
    memcpy(buf + 2 * len + 4, data, len);

    count = 0;
    i = 0;

    for ( ;; ) {
        ngx_sip_frame_init(&f);

        rc = ngx_sip_frame(&f, buf + i, buf + n, MAX_SIZE, &err);

        if (rc != NGX_SIP_OK) {
            break;
        }

        NGX_SIP_CHECK(f.message_len == len, "%s: pipelined message %lu",
                      name, (unsigned long) count);

        i += f.crlf + f.message_len;
        count++;
    }

    NGX_SIP_CHECK(rc == NGX_SIP_AGAIN && count == 3 && i == n,
                  "%s: pipelined: %lu messages, rc %ld", name,
                  (unsigned long) count, (long) rc);

    free(buf);
}


int
main(void)
{
    int              ok;
    char             line[4096], path[4096], got[512], *file, *verdict;
    char            *expect, *dir, *tab;
    FILE            *tsv;
    size_t           len;
    u_char          *data;
    ngx_int_t        prc, vrc;
    ngx_uint_t       total, passed;
    ngx_sip_msg_t    m;
    ngx_sip_error_t  err;

    dir = getenv("SIP_TORTURE");
    if (dir == NULL || *dir == '\0') {
        dir = TORTURE_DEFAULT;
    }

    snprintf(path, sizeof(path), "%s/verdicts.tsv", dir);

    tsv = fopen(path, "r");
    if (tsv == NULL) {
        fprintf(stderr, "FAIL cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }

    total = 0;
    passed = 0;

    /* the header line */

    if (fgets(line, sizeof(line), tsv) == NULL) {
        fprintf(stderr, "FAIL %s is empty\n", path);
        return 1;
    }

    while (fgets(line, sizeof(line), tsv)) {
        line[strcspn(line, "\r\n")] = '\0';

        if (line[0] == '\0') {
            continue;
        }

        file = line;

        tab = strchr(file, '\t');
        if (tab == NULL) {
            continue;
        }
        *tab = '\0';
        verdict = tab + 1;

        tab = strchr(verdict, '\t');
        if (tab == NULL) {
            continue;
        }
        *tab = '\0';
        expect = tab + 1;

        tab = strchr(expect, '\t');
        if (tab) {
            *tab = '\0';
        }

        snprintf(path, sizeof(path), "%s/%s", dir, file);

        data = read_file(path, &len);

        NGX_SIP_CHECK(data != NULL, "cannot read %s", path);

        if (data == NULL) {
            continue;
        }

        total++;

        m.headers = headers;
        m.max_headers = NGX_SIP_MAX_HEADERS;

        prc = ngx_sip_parse_message(&m, data, data + len, 0, &err);
        vrc = NGX_OK;

        if (prc == NGX_SIP_OK) {
            vrc = ngx_sip_msg_validate(&m, &err);
        }

        ok = outcome_matches(expect, prc, vrc, &m, &err, got, sizeof(got));

        printf("%s %-45s %-8s expect %-20s got %s\n", ok ? "ok  " : "FAIL",
               file, verdict, expect, got);

        NGX_SIP_CHECK(ok, "%s: expected %s, got %s", file, expect, got);

        if (ok) {
            passed++;
        }

        test_framing(file, data, len);

        free(data);
    }

    fclose(tsv);

    printf("torture: %lu of %lu messages as expected\n",
           (unsigned long) passed, (unsigned long) total);

    NGX_SIP_CHECK(total == 63, "%lu messages in verdicts.tsv",
                  (unsigned long) total);

    return ngx_sip_test_done("test_torture");
}
