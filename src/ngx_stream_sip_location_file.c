
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"
#include "ngx_stream_sip_location.h"


/*
 * The state file of a location store: one line per binding,
 * tab-separated, fields %-encoded where they could hold a tab, a line
 * end or a '%':
 *
 *     aor expires q cseq transport contact call-id source instance
 *     reg-id path
 *
 * "expires" is absolute (seconds since the epoch).  It is written to
 * "path.tmp" and renamed over "path", so a crash never leaves half a file.
 * Written through the store's read() (every binding, in expiry order),
 * read back through its restore().
 */


typedef struct {
    u_char                          *buf;
    u_char                          *last;
    ngx_log_t                       *log;
} ngx_stream_sip_location_file_t;


static ngx_int_t ngx_stream_sip_location_file_fill(
    ngx_stream_sip_location_read_t *rd, ngx_stream_sip_location_iter_t *it);
static ngx_int_t ngx_stream_sip_location_file_line(
    ngx_stream_sip_location_t *loc, u_char *p, u_char *end, time_t now);
static u_char *ngx_stream_sip_location_file_field(u_char *dst, u_char *src,
    size_t len);


ngx_int_t
ngx_stream_sip_location_file_write(ngx_stream_sip_location_t *loc,
    ngx_log_t *log)
{
    u_char                          *tmp;
    ssize_t                          n;
    ngx_fd_t                         fd;
    ngx_int_t                        rc;
    ngx_stream_sip_location_file_t   f;
    ngx_stream_sip_location_read_t   rd;

    f.buf = NULL;
    f.last = NULL;
    f.log = log;

    ngx_memzero(&rd, sizeof(ngx_stream_sip_location_read_t));

    rd.expire = 1;
    rd.handler = ngx_stream_sip_location_file_fill;
    rd.data = &f;

    if (ngx_stream_sip_location_read(loc, &rd) != NGX_OK) {
        return NGX_ERROR;
    }

    /* what an operator sizes the zone by */

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "sip_location_zone \"%V\": %ui bindings, %ui AORs, "
                  "%uz of %uz bytes in use",
                  &loc->name, rd.stats.nbindings, rd.stats.naors,
                  rd.stats.used, rd.stats.size);

    tmp = ngx_alloc(loc->state.len + sizeof(".tmp"), log);
    if (tmp == NULL) {
        ngx_free(f.buf);
        return NGX_ERROR;
    }

    ngx_sprintf(tmp, "%V.tmp%Z", &loc->state);

    rc = NGX_ERROR;

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", tmp);
        goto done;
    }

    n = ngx_write_fd(fd, f.buf, f.last - f.buf);

    if (n != f.last - f.buf) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_write_fd_n " \"%s\" failed", tmp);
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp);
        goto done;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", tmp);
        goto done;
    }

    if (ngx_rename_file(tmp, loc->state.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" to \"%V\" failed",
                      tmp, &loc->state);
        goto done;
    }

    rc = NGX_OK;

done:

    ngx_free(tmp);
    ngx_free(f.buf);

    return rc;
}


/* every binding into one buffer, with the store consistent */

static ngx_int_t
ngx_stream_sip_location_file_fill(ngx_stream_sip_location_read_t *rd,
    ngx_stream_sip_location_iter_t *it)
{
    u_char                             *p;
    size_t                              size;
    ngx_stream_sip_location_file_t     *f;
    ngx_stream_sip_location_binding_t   b;

    f = rd->data;

    size = 1;

    while (it->next(it, &b)) {
        size += 3 * (b.aor.len + b.contact.len + b.call_id.len
                     + b.source.len + b.instance.len + b.reg_id.len
                     + b.path.len)
                + 4 * NGX_INT64_LEN + 16;
    }

    f->buf = ngx_alloc(size, f->log);
    if (f->buf == NULL) {
        return NGX_ERROR;
    }

    p = f->buf;

    ngx_stream_sip_location_rewind(it);

    while (it->next(it, &b)) {
        p = ngx_stream_sip_location_file_field(p, b.aor.data, b.aor.len);
        p = ngx_sprintf(p, "\t%T\t%ui\t%uD\t%ui\t", b.expires, b.q, b.cseq,
                        b.transport);
        p = ngx_stream_sip_location_file_field(p, b.contact.data,
                                               b.contact.len);
        *p++ = '\t';
        p = ngx_stream_sip_location_file_field(p, b.call_id.data,
                                               b.call_id.len);
        *p++ = '\t';
        p = ngx_stream_sip_location_file_field(p, b.source.data,
                                               b.source.len);
        *p++ = '\t';
        p = ngx_stream_sip_location_file_field(p, b.instance.data,
                                               b.instance.len);
        *p++ = '\t';
        p = ngx_stream_sip_location_file_field(p, b.reg_id.data,
                                               b.reg_id.len);
        *p++ = '\t';
        p = ngx_stream_sip_location_file_field(p, b.path.data, b.path.len);
        *p++ = LF;
    }

    f->last = p;

    return NGX_OK;
}


static u_char *
ngx_stream_sip_location_file_field(u_char *dst, u_char *src, size_t len)
{
    while (len--) {
        if (*src == '%' || *src == '\t' || *src == CR || *src == LF
            || *src == '\0')
        {
            /* uppercase, as RFC 3986 2.1 asks and the files so far have */

            *dst++ = '%';
            dst = ngx_sip_hex_encode(dst, src++, 1);
            dst[-2] = ngx_toupper(dst[-2]);
            dst[-1] = ngx_toupper(dst[-1]);
            continue;
        }

        *dst++ = *src++;
    }

    return dst;
}


/*
 * Read at start into an empty store.  A missing file is normal; a line
 * that does not make sense is logged, the file is kept aside as
 * "path.bad", and the start goes on with what could be read.
 */

ngx_int_t
ngx_stream_sip_location_file_read(ngx_stream_sip_location_t *loc,
    ngx_log_t *log)
{
    u_char           *buf, *p, *end, *nl, *bad;
    off_t             size;
    time_t            now;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_uint_t        line, errors, loaded;
    ngx_file_info_t   fi;

    fd = ngx_open_file(loc->state.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          ngx_open_file_n " \"%V\" failed", &loc->state);
        }

        return NGX_OK;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        (void) ngx_close_file(fd);
        return NGX_OK;
    }

    size = ngx_file_size(&fi);

    buf = ngx_alloc((size_t) size + 1, log);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, (size_t) size);

    (void) ngx_close_file(fd);

    if (n < 0) {
        ngx_free(buf);
        return NGX_OK;
    }

    now = ngx_time();
    p = buf;
    end = buf + n;
    line = 0;
    errors = 0;
    loaded = 0;

    while (p < end) {
        line++;

        nl = ngx_strlchr(p, end, LF);

        if (nl == NULL) {
            nl = end;
        }

        if (ngx_stream_sip_location_file_line(loc, p, nl, now) != NGX_OK) {
            if (errors++ < 10) {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "SIP state file \"%V\": bad line %ui",
                              &loc->state, line);
            }

        } else {
            loaded++;
        }

        p = nl + 1;
    }

    ngx_free(buf);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "SIP state file \"%V\": %ui bindings loaded, %ui lines bad",
                  &loc->state, loaded, errors);

    if (errors) {
        bad = ngx_alloc(loc->state.len + sizeof(".bad"), log);
        if (bad == NULL) {
            return NGX_OK;
        }

        ngx_sprintf(bad, "%V.bad%Z", &loc->state);

        if (ngx_rename_file(loc->state.data, bad) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          ngx_rename_file_n " \"%V\" to \"%s\" failed",
                          &loc->state, bad);
        }

        ngx_free(bad);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_location_file_line(ngx_stream_sip_location_t *loc, u_char *p,
    u_char *end, time_t now)
{
    u_char                             *f, *d;
    uint64_t                            c;
    ngx_int_t                           v[4];
    ngx_str_t                           field[11];
    ngx_uint_t                          i;
    ngx_sip_uri_t                       uri;
    ngx_stream_sip_location_binding_t   b;

    /* split and decode in place */

    for (i = 0; i < 11; i++) {
        f = p;
        d = p;

        while (p < end && *p != '\t') {
            if (*p == '%') {
                if (end - p < 3
                    || ngx_sip_hex_decode(p + 1, 2, &c) != NGX_OK)
                {
                    return NGX_ERROR;
                }

                *d++ = (u_char) c;
                p += 3;
                continue;
            }

            *d++ = *p++;
        }

        field[i].data = f;
        field[i].len = d - f;

        if (i < 10) {
            if (p == end) {
                return NGX_ERROR;
            }

            p++;
        }
    }

    if (p != end) {
        return NGX_ERROR;
    }

    for (i = 0; i < 4; i++) {
        v[i] = ngx_atoi(field[i + 1].data, field[i + 1].len);

        if (v[i] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (field[0].len < 5 || ngx_strncmp(field[0].data, "sip:", 4) != 0
        || field[5].len == 0 || v[1] > 1000 || v[3] > NGX_STREAM_SIP_WSS
        || ngx_sip_parse_uri(field[5].data, field[5].data + field[5].len,
                             &uri) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((time_t) v[0] <= now) {

        /* expired while we were down: not an error */
        return NGX_OK;
    }

    ngx_memzero(&b, sizeof(ngx_stream_sip_location_binding_t));

    b.aor = field[0];
    b.expires = v[0];
    b.q = v[1];
    b.cseq = (uint32_t) v[2];
    b.transport = v[3];
    b.contact = field[5];
    b.call_id = field[6];
    b.source = field[7];
    b.instance = field[8];
    b.reg_id = field[9];
    b.path = field[10];
    b.chash = ngx_stream_sip_location_contact_hash(&b.contact);

    return loc->ops->restore(loc, &b);
}
