
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"
#include "ngx_stream_sip_location.h"


/*
 * The registrar (RFC 3261 10.3) and redirect server (RFC 3261 8.3): what
 * a REGISTER asks for, decided against the bindings the location store
 * (ngx_stream_sip_location.h) shows, and the answers.  The store applies
 * the decision as one operation; nothing here knows how it keeps them.
 */


#define NGX_STREAM_SIP_MAX_REG         32

/* the largest UDP payload over IPv4 (65535 - 20 - 8) */
#define NGX_STREAM_SIP_UDP_MAX         65507


typedef struct {
    ngx_stream_sip_location_t       *location;
    ngx_flag_t                       redirect;
    time_t                           min_expires;
    time_t                           default_expires;
    time_t                           max_expires;
    ngx_uint_t                       min_expires_mode;
} ngx_stream_sip_registrar_srv_conf_t;


#define NGX_STREAM_SIP_MIN_EXPIRES_RAISE   0
#define NGX_STREAM_SIP_MIN_EXPIRES_REJECT  1


/* one Contact of a REGISTER, as decided before anything is changed */
typedef struct {
    ngx_sip_addr_t                   addr;
    time_t                           expires;
    void                            *binding;   /* the store's, matched */
    size_t                           line;      /* its Contact line's size */
    uint32_t                         chash;
    u_char                           next;      /* same slot, index + 1 */
} ngx_stream_sip_reg_t;


/* a REGISTER while the store applies it, which may take a while */
typedef struct {
    ngx_stream_session_t              *session;
    ngx_stream_sip_ctx_t              *ctx;
    ngx_stream_sip_location_t         *location;
    uint32_t                           branch;
    ngx_uint_t                         nreg;
    ngx_uint_t                         star;
    ngx_uint_t                         status;
    ngx_str_t                          reason;
    ngx_str_t                          aor;
    ngx_str_t                          source;
    ngx_str_t                          path;
    ngx_str_t                          extra;
    ngx_stream_sip_location_save_t     save;
    ngx_stream_sip_reg_t               reg[NGX_STREAM_SIP_MAX_REG];
    ngx_stream_sip_location_change_t   changes[NGX_STREAM_SIP_MAX_REG];
    ngx_stream_sip_location_binding_t  add[NGX_STREAM_SIP_MAX_REG];
    u_char                             aor_buf[512];
    u_char                             source_buf[128];
} ngx_stream_sip_register_t;


/* a request for the redirect server while the store reads its AOR */
typedef struct {
    ngx_stream_session_t              *session;
    ngx_stream_sip_ctx_t              *ctx;
    size_t                             max;
    time_t                             now;
    ngx_str_t                          path;
    ngx_str_t                          extra;
    ngx_stream_sip_location_read_t     read;
    u_char                             aor_buf[512];
} ngx_stream_sip_redirect_t;


static ngx_int_t ngx_stream_sip_register(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_registrar_srv_conf_t *rscf);
static ngx_int_t ngx_stream_sip_register_decide(
    ngx_stream_sip_location_save_t *sv, ngx_stream_sip_location_iter_t *it);
static ngx_int_t ngx_stream_sip_register_reply(
    ngx_stream_sip_location_save_t *sv, ngx_stream_sip_location_iter_t *it);
static void ngx_stream_sip_register_done(ngx_stream_sip_location_save_t *sv,
    ngx_int_t rc);
static ngx_int_t ngx_stream_sip_redirect(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_registrar_srv_conf_t *rscf);
static ngx_int_t ngx_stream_sip_redirect_contacts(
    ngx_stream_sip_location_read_t *rd, ngx_stream_sip_location_iter_t *it);
static void ngx_stream_sip_redirect_done(ngx_stream_sip_location_read_t *rd,
    ngx_int_t rc);
static void ngx_stream_sip_match(ngx_sip_msg_t *m,
    ngx_stream_sip_location_iter_t *it, ngx_stream_sip_reg_t *reg,
    ngx_uint_t nreg, ngx_uint_t star, uint32_t branch, ngx_uint_t *status,
    ngx_str_t *reason);
static size_t ngx_stream_sip_register_size(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_reg_t *reg, ngx_uint_t nreg, ngx_str_t *path);
static ngx_uint_t ngx_stream_sip_out_of_order(ngx_sip_msg_t *m,
    ngx_stream_sip_location_binding_t *b, uint32_t branch);
static u_char *ngx_stream_sip_contacts(ngx_stream_session_t *s,
    ngx_stream_sip_location_iter_t *it, time_t now, ngx_str_t *path,
    size_t max, ngx_str_t *out);

static void *ngx_stream_sip_registrar_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_registrar_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_stream_sip_registrar(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_registrar_expires(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


/* Kamailio's registrar "min_expires_mode": 0 raises, 1 answers 423 */

static ngx_conf_enum_t  ngx_stream_sip_min_expires_modes[] = {
    { ngx_string("raise"), NGX_STREAM_SIP_MIN_EXPIRES_RAISE },
    { ngx_string("reject"), NGX_STREAM_SIP_MIN_EXPIRES_REJECT },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_stream_sip_registrar_commands[] = {

    { ngx_string("sip_registrar"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_sip_registrar,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_registrar_expires"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE3,
      ngx_stream_sip_registrar_expires,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_registrar_min_expires_mode"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_registrar_srv_conf_t, min_expires_mode),
      &ngx_stream_sip_min_expires_modes },

    { ngx_string("sip_redirect"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_registrar_srv_conf_t, redirect),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_registrar_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_registrar_create_srv_conf,  /* create server configuration */
    ngx_stream_sip_registrar_merge_srv_conf    /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_registrar_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_registrar_module_ctx,  /* module context */
    ngx_stream_sip_registrar_commands,     /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Called by the SIP core for a validated request for one of our domains:
 * NGX_OK when answered here, NGX_DECLINED when it is none of our business.
 */

ngx_int_t
ngx_stream_sip_registrar_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_sip_msg_t                        *m;
    ngx_stream_sip_registrar_srv_conf_t  *rscf;

    rscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_registrar_module);

    if (rscf->location == NULL) {
        return NGX_DECLINED;
    }

    m = &ctx->msg;

    if (m->method_id == NGX_SIP_REGISTER) {
        return ngx_stream_sip_register(s, ctx, rscf);
    }

    if (rscf->redirect && m->ruri.user.len
        && m->method_id != NGX_SIP_ACK && m->method_id != NGX_SIP_CANCEL)
    {
        return ngx_stream_sip_redirect(s, ctx, rscf);
    }

    return NGX_DECLINED;
}


/*
 * Whether a REGISTER, parsed but not yet validated, is for this server's
 * registrar (sip_registrar on, a Request-URI of ours): then any worker
 * may answer it.
 */

ngx_uint_t
ngx_stream_sip_registrar_owns(ngx_stream_session_t *s, ngx_sip_msg_t *m)
{
    ngx_sip_uri_t                         uri;
    ngx_stream_sip_registrar_srv_conf_t  *rscf;

    rscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_registrar_module);

    if (rscf->location == NULL || m->request_uri.len == 0
        || ngx_sip_parse_uri(m->request_uri.data,
                             m->request_uri.data + m->request_uri.len, &uri)
           != NGX_OK)
    {
        return 0;
    }

    return ngx_stream_sip_is_local(s, &uri);
}


/*
 * RFC 3261 10.3 step 7: a CSeq not above the binding's, for its Call-ID,
 * fails.  But the same REGISTER again (same CSeq and branch: its 200 was
 * lost over UDP, or two workers read two copies) is a retransmission,
 * which a transaction layer would answer with that 200 again: it is
 * applied again, which changes nothing, and answered 200.
 */

static ngx_uint_t
ngx_stream_sip_out_of_order(ngx_sip_msg_t *m,
    ngx_stream_sip_location_binding_t *b, uint32_t branch)
{
    if (m->cseq.number < b->cseq) {
        return 1;
    }

    return m->cseq.number == b->cseq && branch != b->branch;
}



/* one "Contact:" line of a 200 or 302, as ngx_stream_sip_contacts() does */

#define ngx_stream_sip_contact_line_size(contact, instance, reg_id)         \
    (sizeof("Contact: <>;expires=;q=0.000;+sip.instance=;reg-id=" CRLF)      \
     + NGX_TIME_T_LEN + (contact) + (instance) + (reg_id))


/*
 * Steps 6 and 7 in one walk over the AOR's bindings, whatever their
 * number: the request's Contacts (32 at most) are in a table of 64 slots
 * by the hash of what ngx_stream_sip_location_contact_eq() compares, so a
 * binding costs one probe, not one comparison per Contact.  Each Contact
 * gets the first binding equal to it; a CSeq not above the binding's for
 * the same Call-ID is out of order.  With "*", every binding of the
 * Call-ID is checked.  Called inside the store's save().
 */

static void
ngx_stream_sip_match(ngx_sip_msg_t *m, ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_reg_t *reg, ngx_uint_t nreg, ngx_uint_t star,
    uint32_t branch, ngx_uint_t *status, ngx_str_t *reason)
{
    u_char                             slot[64];
    ngx_uint_t                         i, same_call;
    ngx_stream_sip_location_binding_t  b;

    ngx_memzero(slot, sizeof(slot));

    for (i = 0; !star && i < nreg; i++) {
        reg[i].next = slot[reg[i].chash & 63];
        slot[reg[i].chash & 63] = (u_char) (i + 1);
    }

    while (it->next(it, &b)) {

        same_call = b.call_id.len == m->call_id.len
                    && ngx_memcmp(b.call_id.data, m->call_id.data,
                                  m->call_id.len) == 0;

        if (star) {
            if (same_call && ngx_stream_sip_out_of_order(m, &b, branch)) {
                *status = 500;
                ngx_str_set(reason, "Out of Order CSeq for Call-ID");
            }

            continue;
        }

        for (i = slot[b.chash & 63]; i; i = reg[i - 1].next) {

            if (reg[i - 1].binding || reg[i - 1].chash != b.chash
                || !ngx_stream_sip_location_contact_eq(
                                        &reg[i - 1].addr.uri_text, &b.contact))
            {
                continue;
            }

            if (same_call && ngx_stream_sip_out_of_order(m, &b, branch)) {
                *status = 500;
                ngx_str_set(reason, "Out of Order CSeq for Call-ID");
            }

            reg[i - 1].binding = b.id;
            reg[i - 1].line = ngx_stream_sip_contact_line_size(
                                  b.contact.len, b.instance.len,
                                  b.reg_id.len);
        }
    }
}


/*
 * The size of the 200 a REGISTER would get once applied: the bindings
 * that stay, the new ones, the Path, the headers copied from the
 * request; an upper bound.  Called inside the store's save().
 */

static size_t
ngx_stream_sip_register_size(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_stream_sip_location_iter_t *it, ngx_stream_sip_reg_t *reg,
    ngx_uint_t nreg, ngx_str_t *path)
{
    size_t                             len;
    ngx_str_t                          instance, reg_id;
    ngx_uint_t                         i, k;
    ngx_sip_resp_t                     r;
    ngx_stream_sip_location_binding_t  b;

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));

    r.status = 200;
    ngx_str_set(&r.reason, "OK");
    r.received = s->connection->addr_text;
    r.rport = 65535;
    r.to_tag.len = NGX_SIP_TO_TAG_LEN;

    len = ngx_sip_response_size(m, &r)
          + sizeof("Path: " CRLF "Supported: path" CRLF) + path->len;

    ngx_stream_sip_location_rewind(it);

    while (it->next(it, &b)) {
        len += ngx_stream_sip_contact_line_size(b.contact.len,
                                                b.instance.len,
                                                b.reg_id.len);
    }

    for (i = 0; i < nreg; i++) {

        /* a binding replaced or removed is counted once, not again */

        if (reg[i].binding) {
            for (k = 0; k < i; k++) {
                if (reg[k].binding == reg[i].binding) {
                    break;
                }
            }

            if (k == i) {
                len -= reg[i].line;
            }
        }

        if (reg[i].expires == 0) {
            continue;
        }

        ngx_str_null(&instance);
        ngx_str_null(&reg_id);

        (void) ngx_sip_param(&reg[i].addr.params, "+sip.instance",
                             &instance);
        (void) ngx_sip_param(&reg[i].addr.params, "reg-id", &reg_id);

        len += ngx_stream_sip_contact_line_size(reg[i].addr.uri_text.len,
                                                instance.len, reg_id.len);
    }

    return len;
}


static ngx_int_t
ngx_stream_sip_register(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_registrar_srv_conf_t *rscf)
{
    u_char                     *p, *end;
    u_char                      min[sizeof("Min-Expires: " CRLF)
                                    + NGX_TIME_T_LEN];
    time_t                      expires, header_expires;
    uint32_t                    n;
    ngx_str_t                   reason, extra;
    ngx_int_t                   rc;
    ngx_uint_t                  i, nreg, star;
    ngx_sip_msg_t              *m;
    ngx_sip_addr_t              addr;
    ngx_sip_header_t           *h;
    ngx_stream_sip_reg_t       *reg;
    ngx_stream_sip_register_t  *rg;

    rg = ngx_palloc(s->connection->pool, sizeof(ngx_stream_sip_register_t));
    if (rg == NULL) {
        return NGX_ERROR;
    }

    m = &ctx->msg;
    reg = rg->reg;

    rg->session = s;
    rg->ctx = ctx;
    rg->location = rscf->location;
    rg->branch = ngx_crc32_short(m->via.branch.data, m->via.branch.len);
    rg->status = 0;
    ngx_str_null(&rg->reason);
    ngx_str_null(&rg->extra);

    /* step 5: the AOR is the To URI, and one of our domains */

    if (ngx_stream_sip_location_aor(&m->to.uri, rg->aor_buf,
                                    sizeof(rg->aor_buf), &rg->aor)
        != NGX_OK)
    {
        ngx_str_set(&reason, "Bad Address-of-Record in To");
        ngx_stream_sip_respond(s, ctx, 400, &reason, NULL);
        return NGX_OK;
    }

    if (!ngx_stream_sip_is_local(s, &m->to.uri)) {
        ngx_str_set(&reason, "Not Found: Domain Not Served Here");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
        return NGX_OK;
    }

    header_expires = rscf->default_expires;

    h = m->hdr[NGX_SIP_HDR_EXPIRES];

    if (h) {
        if (ngx_sip_parse_uint32(&h->value, &n) != NGX_OK) {
            ngx_str_set(&reason, "Bad Expires");
            ngx_stream_sip_respond(s, ctx, 400, &reason, NULL);
            return NGX_OK;
        }

        header_expires = n;
    }

    /* step 6: the Contacts, all parsed and checked before any change */

    nreg = 0;
    star = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_CONTACT) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        for ( ;; ) {
            rc = ngx_sip_parse_addr(&p, end, &addr, 1);

            if (rc == NGX_DECLINED) {
                break;
            }

            if (rc != NGX_OK) {
                ngx_str_set(&reason, "Bad Contact");
                ngx_stream_sip_respond(s, ctx, 400, &reason, NULL);
                return NGX_OK;
            }

            /* refused only when there is one more than reg[] holds */

            if (nreg == NGX_STREAM_SIP_MAX_REG) {
                ngx_str_set(&reason, "Too Many Contacts in Request");
                ngx_stream_sip_respond(s, ctx, 403, &reason, NULL);
                return NGX_OK;
            }

            reg[nreg].addr = addr;

            if (reg[nreg].addr.star) {
                star = 1;
            }

            expires = reg[nreg].addr.has_expires ? reg[nreg].addr.expires
                                                 : header_expires;

            if (expires > rscf->max_expires) {
                expires = rscf->max_expires;
            }

            reg[nreg].expires = expires;
            reg[nreg].binding = NULL;
            reg[nreg].line = 0;
            reg[nreg].chash =
                        ngx_stream_sip_location_contact_hash(&addr.uri_text);
            nreg++;

            while (p < end && (*p == ' ' || *p == '\t' || *p == CR
                               || *p == LF || *p == ','))
            {
                p++;
            }
        }
    }

    if (star && (nreg != 1 || m->hdr[NGX_SIP_HDR_EXPIRES] == NULL
                 || header_expires != 0))
    {
        ngx_str_set(&reason, "Contact * Needs Expires: 0 and No Other Contact");
        ngx_stream_sip_respond(s, ctx, 400, &reason, NULL);
        return NGX_OK;
    }

    for (i = 0; i < nreg; i++) {
        if (!star && reg[i].expires != 0
            && reg[i].expires < rscf->min_expires)
        {
            /*
             * RFC 3261 10.3 step 7 allows a registrar to raise it as
             * well; Kamailio does by default, and phones that asked for
             * less find the interval granted in the 200's Contact
             */

            if (rscf->min_expires_mode == NGX_STREAM_SIP_MIN_EXPIRES_RAISE) {
                reg[i].expires = rscf->min_expires;
                continue;
            }

            extra.data = min;
            extra.len = ngx_sprintf(min, "Min-Expires: %T" CRLF,
                                    rscf->min_expires) - min;

            ngx_str_set(&reason, "Interval Too Brief");
            ngx_stream_sip_respond(s, ctx, 423, &reason, &extra);
            return NGX_OK;
        }
    }

    /* what a new binding keeps: source, flow, instance, Path */

    rg->source.data = rg->source_buf;
    rg->source.len = ngx_sprintf(rg->source_buf, "%V:%V:%ui",
                                 &ngx_sip_transport(ctx->transport)->param,
                                 &s->connection->addr_text,
                                 (ngx_uint_t) ngx_inet_get_port(
                                                  s->connection->sockaddr))
                     - rg->source_buf;

    /* all Path values as one Route value, to be used as it is */

    ngx_str_null(&rg->path);

    if (m->hdr[NGX_SIP_HDR_PATH]) {
        n = 0;

        for (i = 0; i < m->nheaders; i++) {
            if (m->headers[i].id == NGX_SIP_HDR_PATH) {
                n += m->headers[i].value.len + 2;
            }
        }

        rg->path.data = ngx_pnalloc(s->connection->pool, n);
        if (rg->path.data == NULL) {
            return NGX_ERROR;
        }

        p = rg->path.data;

        for (i = 0; i < m->nheaders; i++) {
            if (m->headers[i].id == NGX_SIP_HDR_PATH) {
                if (p != rg->path.data) {
                    *p++ = ','; *p++ = ' ';
                }

                p = ngx_cpymem(p, m->headers[i].value.data,
                               m->headers[i].value.len);
            }
        }

        rg->path.len = p - rg->path.data;
    }

    rg->nreg = nreg;
    rg->star = star;

    ngx_memzero(&rg->save, sizeof(ngx_stream_sip_location_save_t));

    rg->save.aor = rg->aor;
    rg->save.now = ngx_time();
    rg->save.decide = ngx_stream_sip_register_decide;
    rg->save.reply = ngx_stream_sip_register_reply;
    rg->save.done = ngx_stream_sip_register_done;
    rg->save.data = rg;

    rc = ngx_stream_sip_location_save(rg->location, &rg->save);

    if (rc != NGX_AGAIN) {
        ngx_stream_sip_register_done(&rg->save, rc);
    }

    return NGX_OK;
}


/*
 * Steps 6 and 7 against the AOR's bindings as the store has them now:
 * ordering, max_contacts, whether the 200 would fit; then what changes.
 * NGX_DECLINED: refused, rg->status says how.
 */

static ngx_int_t
ngx_stream_sip_register_decide(ngx_stream_sip_location_save_t *sv,
    ngx_stream_sip_location_iter_t *it)
{
    ngx_uint_t                          i, k, nreg, count;
    ngx_sip_msg_t                      *m;
    ngx_stream_sip_reg_t               *reg;
    ngx_stream_sip_register_t          *rg;
    ngx_stream_sip_location_change_t   *c;
    ngx_stream_sip_location_binding_t  *b;

    rg = sv->data;
    m = &rg->ctx->msg;
    reg = rg->reg;
    nreg = rg->nreg;

    /* steps 6 and 7: match each Contact with a binding, check ordering */

    count = it->n;

    if (it->exists) {
        ngx_stream_sip_match(m, it, reg, nreg, rg->star, rg->branch,
                             &rg->status, &rg->reason);
    }

    for (i = 0; i < nreg && it->exists; i++) {

        if (reg[i].binding && reg[i].expires == 0) {
            count--;

        } else if (reg[i].binding == NULL && reg[i].expires) {

            /* the same new contact twice in one request counts once */

            for (k = 0; k < i; k++) {
                if (reg[k].binding == NULL && reg[k].expires
                    && ngx_stream_sip_location_contact_eq(
                                    &reg[k].addr.uri_text,
                                    &reg[i].addr.uri_text))
                {
                    break;
                }
            }

            if (k == i) {
                count++;
            }
        }
    }

    if (!it->exists) {
        for (i = 0; i < nreg; i++) {
            if (reg[i].expires && !reg[i].addr.star) {
                count++;
            }
        }
    }

    if (rg->status == 0 && !rg->star && rg->location->max_contacts
        && count > rg->location->max_contacts
        && (!it->exists || count > it->n))
    {
        rg->status = 403;
        ngx_str_set(&rg->reason, "Too Many Registered Contacts");
    }

    /*
     * The 200 lists every binding: when it could not be sent, nothing is
     * stored, and the phone is told why (no silent "Message too long").
     */

    if (rg->status == 0 && !rg->star
        && rg->ctx->transport == NGX_STREAM_SIP_UDP
        && ngx_stream_sip_register_size(rg->session, m, it, reg, nreg,
                                        &rg->path)
           > NGX_STREAM_SIP_UDP_MAX)
    {
        rg->status = 403;
        ngx_str_set(&rg->reason,
                    "Registered Contacts Would Not Fit in a UDP Response");

        ngx_log_error(NGX_LOG_NOTICE, rg->session->connection->log, 0,
                      "SIP REGISTER for \"%V\" refused: its 200 would not "
                      "fit in a UDP datagram", &rg->aor);
    }

    if (rg->status) {
        return NGX_DECLINED;
    }

    /* step 8: what to apply */

    if (rg->star) {
        sv->remove_all = 1;
        return NGX_OK;
    }

    for (i = 0; i < nreg; i++) {
        c = &rg->changes[i];

        c->remove = reg[i].binding;
        c->add = NULL;
        c->fresh = NULL;

        /* a binding two Contacts match is removed once */

        for (k = 0; c->remove && k < i; k++) {
            if (reg[k].binding == c->remove) {
                c->remove = NULL;
            }
        }

        if (reg[i].expires == 0) {
            continue;
        }

        /* a later duplicate of this contact in the request wins */

        for (k = i + 1; k < nreg; k++) {
            if (reg[k].expires
                && ngx_stream_sip_location_contact_eq(&reg[k].addr.uri_text,
                                                      &reg[i].addr.uri_text))
            {
                break;
            }
        }

        if (k < nreg) {
            continue;
        }

        b = &rg->add[i];
        c->add = b;

        b->aor = rg->aor;
        b->contact = reg[i].addr.uri_text;
        b->call_id = m->call_id;
        b->source = rg->source;
        b->path = rg->path;
        b->expires = sv->now + reg[i].expires;
        b->cseq = m->cseq.number;
        b->branch = rg->branch;
        b->chash = reg[i].chash;
        b->q = reg[i].addr.q;
        b->transport = rg->ctx->transport;

        ngx_str_null(&b->instance);
        ngx_str_null(&b->reg_id);

        (void) ngx_sip_param(&reg[i].addr.params, "+sip.instance",
                             &b->instance);
        (void) ngx_sip_param(&reg[i].addr.params, "reg-id", &b->reg_id);

        /*
         * Over TCP or TLS the phone is reached on its own connection
         * (RFC 5626): a Contact behind NAT means nothing to us.
         */

        if (rg->ctx->transport != NGX_STREAM_SIP_UDP) {
            b->flow = rg->session->connection->number;
            b->flow_worker = ngx_worker;

        } else {
            b->flow = 0;
            b->flow_worker = 0;
        }

        b->id = NULL;
    }

    sv->changes = rg->changes;
    sv->nchanges = nreg;

    return NGX_OK;
}


/*
 * The 200 lists every current binding (step 8); RFC 3327 5.3: the
 * registrar returns the Path it stored.
 */

static ngx_int_t
ngx_stream_sip_register_reply(ngx_stream_sip_location_save_t *sv,
    ngx_stream_sip_location_iter_t *it)
{
    ngx_stream_sip_register_t  *rg;

    rg = sv->data;

    if (ngx_stream_sip_contacts(rg->session, it, sv->now, &rg->path,
                                (size_t) -1, &rg->extra)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_sip_register_done(ngx_stream_sip_location_save_t *sv,
    ngx_int_t rc)
{
    ngx_str_t                   reason;
    ngx_stream_sip_register_t  *rg;

    rg = sv->data;

    if (rc != NGX_OK) {
        return;
    }

    if (rg->status) {
        ngx_stream_sip_respond(rg->session, rg->ctx, rg->status, &rg->reason,
                               NULL);
        return;
    }

    if (sv->full) {
        ngx_str_set(&reason, "Location Service Full");
        ngx_stream_sip_respond(rg->session, rg->ctx, 500, &reason, NULL);
        return;
    }

    ngx_str_set(&reason, "OK");
    ngx_stream_sip_respond(rg->session, rg->ctx, 200, &reason, &rg->extra);

    ngx_free(rg->extra.data);
}


/* RFC 3261 8.3: 302 with every current contact of the Request-URI */

static ngx_int_t
ngx_stream_sip_redirect(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_registrar_srv_conf_t *rscf)
{
    ngx_int_t                   rc;
    ngx_str_t                   aor, reason;
    ngx_sip_resp_t              r;
    ngx_stream_sip_redirect_t  *rd;

    rd = ngx_palloc(s->connection->pool, sizeof(ngx_stream_sip_redirect_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->session = s;
    rd->ctx = ctx;
    rd->now = ngx_time();

    if (ngx_stream_sip_location_aor(&ctx->msg.ruri, rd->aor_buf,
                                    sizeof(rd->aor_buf), &aor)
        != NGX_OK)
    {
        ngx_str_set(&reason, "Not Found");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
        return NGX_OK;
    }

    ngx_str_null(&rd->path);
    ngx_str_null(&rd->extra);

    /* over UDP, the contacts that fit (RFC 3261 8.3: any number of them) */

    if (ctx->transport == NGX_STREAM_SIP_UDP) {
        ngx_memzero(&r, sizeof(ngx_sip_resp_t));

        ngx_str_set(&r.reason, "Moved Temporarily");
        r.received = s->connection->addr_text;
        r.rport = 65535;
        r.to_tag.len = NGX_SIP_TO_TAG_LEN;

        rd->max = ngx_sip_response_size(&ctx->msg, &r);
        rd->max = (rd->max < NGX_STREAM_SIP_UDP_MAX)
                  ? NGX_STREAM_SIP_UDP_MAX - rd->max : 0;

    } else {
        rd->max = (size_t) -1;
    }

    ngx_memzero(&rd->read, sizeof(ngx_stream_sip_location_read_t));

    rd->read.aor = aor;
    rd->read.handler = ngx_stream_sip_redirect_contacts;
    rd->read.done = ngx_stream_sip_redirect_done;
    rd->read.data = rd;

    rc = ngx_stream_sip_location_read(rscf->location, &rd->read);

    if (rc != NGX_AGAIN) {
        ngx_stream_sip_redirect_done(&rd->read, rc);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_redirect_contacts(ngx_stream_sip_location_read_t *read,
    ngx_stream_sip_location_iter_t *it)
{
    ngx_stream_sip_redirect_t  *rd;

    rd = read->data;

    if (ngx_stream_sip_contacts(rd->session, it, rd->now, &rd->path, rd->max,
                                &rd->extra)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_sip_redirect_done(ngx_stream_sip_location_read_t *read,
    ngx_int_t rc)
{
    ngx_str_t                   reason;
    ngx_stream_sip_redirect_t  *rd;

    rd = read->data;

    if (rc != NGX_OK) {
        return;
    }

    if (rd->extra.len == 0) {
        ngx_str_set(&reason, "Not Found");
        ngx_stream_sip_respond(rd->session, rd->ctx, 404, &reason, NULL);

    } else {
        ngx_str_set(&reason, "Moved Temporarily");
        ngx_stream_sip_respond(rd->session, rd->ctx, 302, &reason,
                               &rd->extra);
    }

    ngx_free(rd->extra.data);
}


/*
 * "Contact: <uri>;expires=N[;q=0.x]" lines of the current bindings of an
 * AOR, after the Path lines if any, no more than "max" octets of them;
 * called inside the store's read() or save().  The buffer is the
 * caller's to ngx_free(): not from the connection's pool, which a
 * long-lived stream connection would grow with every REGISTER.
 */

static u_char *
ngx_stream_sip_contacts(ngx_stream_session_t *s,
    ngx_stream_sip_location_iter_t *it, time_t now, ngx_str_t *path,
    size_t max, ngx_str_t *out)
{
    u_char                             *p;
    size_t                              len, line;
    ngx_uint_t                          n;
    ngx_stream_sip_location_binding_t   b;

    len = sizeof("Path: " CRLF "Supported: path" CRLF) + path->len;

    ngx_stream_sip_location_rewind(it);

    while (it->next(it, &b)) {
        len += ngx_stream_sip_contact_line_size(b.contact.len, b.instance.len,
                                                b.reg_id.len);
    }

    p = ngx_alloc(len + 1, s->connection->log);
    if (p == NULL) {
        return NULL;
    }

    out->data = p;

    if (path->len) {
        p = ngx_sprintf(p, "Path: %V" CRLF "Supported: path" CRLF, path);
    }

    n = 0;

    ngx_stream_sip_location_rewind(it);

    while (it->next(it, &b)) {

        if (b.expires <= now) {
            continue;
        }

        line = ngx_stream_sip_contact_line_size(b.contact.len,
                                                b.instance.len,
                                                b.reg_id.len);

        if ((size_t) (p - out->data) + line > max) {
            break;
        }

        p = ngx_sprintf(p, "Contact: <%V>;expires=%T", &b.contact,
                        b.expires - now);

        if (b.q != 1000) {
            p = ngx_sprintf(p, ";q=%ui.%03ui", b.q / 1000, b.q % 1000);
        }

        if (b.instance.len) {
            p = ngx_sprintf(p, ";+sip.instance=%V", &b.instance);
        }

        if (b.reg_id.len) {
            p = ngx_sprintf(p, ";reg-id=%V", &b.reg_id);
        }

        *p++ = CR; *p++ = LF;
        n++;
    }

    /* no contact and no Path: an empty list, for 404 over 302 */

    out->len = (n || path->len) ? (size_t) (p - out->data) : 0;

    return p;
}


static void *
ngx_stream_sip_registrar_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_registrar_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_registrar_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->location = NULL;
     */

    conf->redirect = NGX_CONF_UNSET;
    conf->min_expires = NGX_CONF_UNSET;
    conf->default_expires = NGX_CONF_UNSET;
    conf->max_expires = NGX_CONF_UNSET;
    conf->min_expires_mode = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_stream_sip_registrar_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_sip_registrar_srv_conf_t *prev = parent;
    ngx_stream_sip_registrar_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->redirect, prev->redirect, 0);
    ngx_conf_merge_uint_value(conf->min_expires_mode, prev->min_expires_mode,
                              NGX_STREAM_SIP_MIN_EXPIRES_RAISE);

    if (conf->min_expires == NGX_CONF_UNSET) {
        conf->min_expires = (prev->min_expires == NGX_CONF_UNSET)
                            ? 60 : prev->min_expires;
        conf->default_expires = (prev->default_expires == NGX_CONF_UNSET)
                                ? 3600 : prev->default_expires;
        conf->max_expires = (prev->max_expires == NGX_CONF_UNSET)
                            ? 3600 : prev->max_expires;
    }

    if (conf->redirect && conf->location == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sip_redirect\" needs \"sip_registrar\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_sip_registrar(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_registrar_srv_conf_t *rscf = conf;

    ngx_str_t  *value;

    if (rscf->location) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rscf->location = ngx_stream_sip_location_get(cf, &value[1]);

    if (rscf->location == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown sip_location_zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_sip_registrar_expires(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_sip_registrar_srv_conf_t *rscf = conf;

    time_t      t[3];
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (rscf->min_expires != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        t[i] = ngx_parse_time(&value[i + 1], 1);

        if (t[i] == (time_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\"", &value[i + 1]);
            return NGX_CONF_ERROR;
        }
    }

    if (t[0] > t[1] || t[1] > t[2]) {
        return "needs min <= default <= max";
    }

    rscf->min_expires = t[0];
    rscf->default_expires = t[1];
    rscf->max_expires = t[2];

    return NGX_CONF_OK;
}


/*
 * The location service for the proxy (RFC 3261 16.5): the contacts of
 * the AOR of a Request-URI, best q first, in the session's pool.
 * NGX_DECLINED: no registrar here; NGX_DONE: no binding.
 */

ngx_int_t
ngx_stream_sip_registrar_lookup(ngx_stream_session_t *s, ngx_sip_uri_t *uri,
    ngx_array_t **targets)
{
    u_char                                aor_buf[512];
    ngx_str_t                             aor;
    ngx_stream_sip_registrar_srv_conf_t  *rscf;

    rscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_registrar_module);

    if (rscf->location == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_stream_sip_location_aor(uri, aor_buf, sizeof(aor_buf), &aor)
        != NGX_OK)
    {
        return NGX_DONE;
    }

    return ngx_stream_sip_location_lookup(rscf->location, &aor,
                                          s->connection->pool, targets);
}
