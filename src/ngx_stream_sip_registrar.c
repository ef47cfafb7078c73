
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The registrar (RFC 3261 10.3) and redirect server (RFC 3261 8.3) over
 * a location service in shared memory: an rbtree of AORs, each with its
 * bindings, and one tree of all bindings in expiry order.  Every worker
 * reads and writes it under the zone's mutex; it survives "nginx -s
 * reload" like any zone, and a state file carries it over restarts.
 */


#define NGX_STREAM_SIP_STATE_INTERVAL  30000
#define NGX_STREAM_SIP_MAX_REG         32

/*
 * Bindings per AOR unless max_contacts= says otherwise: every Contact
 * one REGISTER may carry, and a 200 listing them all stays far below
 * what a UDP datagram can carry (RFC 3261 18.2.2 has no fallback for a
 * response); forking to more is an amplifier.
 */
#define NGX_STREAM_SIP_MAX_CONTACTS    32

/* the largest UDP payload over IPv4 (65535 - 20 - 8) */
#define NGX_STREAM_SIP_UDP_MAX         65507


#define ngx_stream_sip_expire_binding(node)                                 \
    ((ngx_stream_sip_binding_t *)                                             \
     ((u_char *) (node) - offsetof(ngx_stream_sip_binding_t, expire)))


typedef struct {
    ngx_rbtree_node_t                node;      /* key: hash of the AOR */
    ngx_queue_t                      bindings;
    ngx_uint_t                       nbindings;
    u_short                          len;
    u_char                           aor[1];
} ngx_stream_sip_aor_t;


typedef struct {
    ngx_queue_t                      queue;     /* in its AOR */
    ngx_rbtree_node_t                expire;    /* in the zone, by time */
    ngx_stream_sip_aor_t            *aor;
    time_t                           expires;   /* absolute */
    ngx_uint_t                       flow;      /* its connection, or 0 */
    uint32_t                         cseq;
    uint32_t                         branch;    /* hash of the REGISTER's */
    uint32_t                         chash;     /* of the contact, as _eq */
    u_short                          q;
    u_char                           transport;
    u_char                           flow_worker;
    u_char                           contact_len;
    u_char                           call_id_len;
    u_char                           source_len;
    u_char                           instance_len;
    u_char                           reg_id_len;
    u_short                          path_len;
    u_char                           data[1];
} ngx_stream_sip_binding_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_rbtree_t                     expire;
    ngx_rbtree_node_t                expire_sentinel;
    ngx_uint_t                       nbindings;
    ngx_uint_t                       naors;
} ngx_stream_sip_location_sh_t;


typedef struct {
    ngx_stream_sip_location_sh_t    *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_shm_zone_t                  *shm_zone;
    ngx_str_t                        state;
    ngx_uint_t                       max_contacts;
} ngx_stream_sip_location_t;


typedef struct {
    ngx_array_t                      zones;   /* ngx_stream_sip_location_t * */
} ngx_stream_sip_registrar_main_conf_t;


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
    ngx_stream_sip_binding_t        *binding;
    ngx_stream_sip_binding_t        *fresh;
    uint32_t                         chash;
    u_char                           next;      /* same slot, index + 1 */
} ngx_stream_sip_reg_t;


static ngx_int_t ngx_stream_sip_register(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_registrar_srv_conf_t *rscf);
static ngx_int_t ngx_stream_sip_redirect(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_registrar_srv_conf_t *rscf);
static ngx_int_t ngx_stream_sip_aor(ngx_sip_uri_t *uri, u_char *buf,
    size_t size, ngx_str_t *aor);
static ngx_stream_sip_aor_t *ngx_stream_sip_aor_lookup(
    ngx_stream_sip_location_t *loc, ngx_str_t *aor, uint32_t hash);
static ngx_stream_sip_aor_t *ngx_stream_sip_aor_create(
    ngx_stream_sip_location_t *loc, ngx_str_t *aor, uint32_t hash);
static void ngx_stream_sip_binding_free(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_binding_t *b);
static ngx_stream_sip_binding_t *ngx_stream_sip_binding_alloc(
    ngx_stream_sip_location_t *loc, ngx_str_t *contact, ngx_str_t *call_id,
    ngx_str_t *source, ngx_str_t *instance, ngx_str_t *reg_id,
    ngx_str_t *path);
static void ngx_stream_sip_binding_expire_insert(
    ngx_stream_sip_location_t *loc, ngx_stream_sip_binding_t *b);
static void ngx_stream_sip_expire(ngx_stream_sip_location_t *loc,
    time_t now);
static ngx_uint_t ngx_stream_sip_contact_eq(ngx_str_t *a, ngx_str_t *b);
static uint32_t ngx_stream_sip_contact_hash(ngx_str_t *contact);
static void ngx_stream_sip_match(ngx_sip_msg_t *m, ngx_stream_sip_aor_t *a,
    ngx_stream_sip_reg_t *reg, ngx_uint_t nreg, ngx_uint_t star,
    uint32_t branch, ngx_uint_t *status, ngx_str_t *reason);
static size_t ngx_stream_sip_register_size(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_aor_t *a, ngx_stream_sip_reg_t *reg,
    ngx_uint_t nreg, ngx_str_t *path);
static ngx_int_t ngx_stream_sip_targets_sort(ngx_pool_t *pool,
    ngx_array_t *a);
static ngx_uint_t ngx_stream_sip_out_of_order(ngx_sip_msg_t *m,
    ngx_stream_sip_binding_t *b, uint32_t branch);
static u_char *ngx_stream_sip_contacts(ngx_stream_session_t *s,
    ngx_stream_sip_aor_t *aor, time_t now, ngx_str_t *path, size_t max,
    ngx_str_t *out);
static void ngx_stream_sip_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);

static ngx_int_t ngx_stream_sip_state_write(ngx_stream_sip_location_t *loc,
    ngx_log_t *log);
static ngx_int_t ngx_stream_sip_state_read(ngx_stream_sip_location_t *loc,
    ngx_log_t *log);
static ngx_int_t ngx_stream_sip_state_line(ngx_stream_sip_location_t *loc,
    u_char *p, u_char *end, time_t now);
static u_char *ngx_stream_sip_state_field(u_char *dst, u_char *src,
    size_t len);
static void ngx_stream_sip_state_timer(ngx_event_t *ev);

static ngx_int_t ngx_stream_sip_location_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_stream_sip_registrar_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_sip_registrar_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_registrar_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_stream_sip_location_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_registrar(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_registrar_expires(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_stream_sip_registrar_init_process(ngx_cycle_t *cycle);
static void ngx_stream_sip_registrar_exit_master(ngx_cycle_t *cycle);


/* Kamailio's registrar "min_expires_mode": 0 raises, 1 answers 423 */

static ngx_conf_enum_t  ngx_stream_sip_min_expires_modes[] = {
    { ngx_string("raise"), NGX_STREAM_SIP_MIN_EXPIRES_RAISE },
    { ngx_string("reject"), NGX_STREAM_SIP_MIN_EXPIRES_REJECT },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_stream_sip_registrar_commands[] = {

    { ngx_string("sip_location_zone"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_1MORE,
      ngx_stream_sip_location_zone,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

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

    ngx_stream_sip_registrar_create_main_conf, /* create main configuration */
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
    ngx_stream_sip_registrar_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    ngx_stream_sip_registrar_exit_master,  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_event_t  ngx_stream_sip_state_event;


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
ngx_stream_sip_out_of_order(ngx_sip_msg_t *m, ngx_stream_sip_binding_t *b,
    uint32_t branch)
{
    if (m->cseq.number < b->cseq) {
        return 1;
    }

    return m->cseq.number == b->cseq && branch != b->branch;
}


/*
 * Steps 6 and 7 in one walk over the AOR's bindings, whatever their
 * number: the request's Contacts (32 at most) are in a table of 64 slots
 * by the hash of what ngx_stream_sip_contact_eq() compares, so a binding
 * costs one probe, not one comparison per Contact.  Each Contact gets the
 * first binding equal to it; a CSeq not above the binding's for the same
 * Call-ID is out of order.  With "*", every binding of the Call-ID is
 * checked.  Called with the zone locked.
 */

static void
ngx_stream_sip_match(ngx_sip_msg_t *m, ngx_stream_sip_aor_t *a,
    ngx_stream_sip_reg_t *reg, ngx_uint_t nreg, ngx_uint_t star,
    uint32_t branch, ngx_uint_t *status, ngx_str_t *reason)
{
    u_char                     slot[64];
    ngx_str_t                  contact;
    ngx_uint_t                 i, same_call;
    ngx_queue_t               *q;
    ngx_stream_sip_binding_t  *b;

    ngx_memzero(slot, sizeof(slot));

    for (i = 0; !star && i < nreg; i++) {
        reg[i].next = slot[reg[i].chash & 63];
        slot[reg[i].chash & 63] = (u_char) (i + 1);
    }

    for (q = ngx_queue_head(&a->bindings);
         q != ngx_queue_sentinel(&a->bindings);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);

        same_call = b->call_id_len == m->call_id.len
                    && ngx_memcmp(b->data + b->contact_len, m->call_id.data,
                                  m->call_id.len) == 0;

        if (star) {
            if (same_call && ngx_stream_sip_out_of_order(m, b, branch)) {
                *status = 500;
                ngx_str_set(reason, "Out of Order CSeq for Call-ID");
            }

            continue;
        }

        contact.len = b->contact_len;
        contact.data = b->data;

        for (i = slot[b->chash & 63]; i; i = reg[i - 1].next) {

            if (reg[i - 1].binding || reg[i - 1].chash != b->chash
                || !ngx_stream_sip_contact_eq(&reg[i - 1].addr.uri_text,
                                              &contact))
            {
                continue;
            }

            if (same_call && ngx_stream_sip_out_of_order(m, b, branch)) {
                *status = 500;
                ngx_str_set(reason, "Out of Order CSeq for Call-ID");
            }

            reg[i - 1].binding = b;
        }
    }
}


/* one "Contact:" line of a 200 or 302, as ngx_stream_sip_contacts() does */

#define ngx_stream_sip_contact_line_size(contact, instance, reg_id)         \
    (sizeof("Contact: <>;expires=;q=0.000;+sip.instance=;reg-id=" CRLF)      \
     + NGX_TIME_T_LEN + (contact) + (instance) + (reg_id))


/*
 * The size of the 200 a REGISTER would get once applied: the bindings
 * that stay, the new ones, the Path, the headers copied from the
 * request; an upper bound.  Called with the zone locked.
 */

static size_t
ngx_stream_sip_register_size(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_stream_sip_aor_t *a, ngx_stream_sip_reg_t *reg, ngx_uint_t nreg,
    ngx_str_t *path)
{
    size_t                     len;
    ngx_str_t                  instance, reg_id;
    ngx_uint_t                 i, k;
    ngx_queue_t               *q;
    ngx_sip_resp_t             r;
    ngx_stream_sip_binding_t  *b;

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));

    r.status = 200;
    ngx_str_set(&r.reason, "OK");
    r.received = s->connection->addr_text;
    r.rport = 65535;
    r.to_tag.len = NGX_SIP_TO_TAG_LEN;

    len = ngx_sip_response_size(m, &r)
          + sizeof("Path: " CRLF "Supported: path" CRLF) + path->len;

    for (q = a ? ngx_queue_head(&a->bindings) : NULL;
         q && q != ngx_queue_sentinel(&a->bindings);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);

        len += ngx_stream_sip_contact_line_size(b->contact_len,
                                                b->instance_len,
                                                b->reg_id_len);
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
                b = reg[i].binding;
                len -= ngx_stream_sip_contact_line_size(b->contact_len,
                                                        b->instance_len,
                                                        b->reg_id_len);
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
    u_char                     *p, *end, aor_buf[512], source_buf[128];
    time_t                      now, expires, header_expires;
    uint32_t                    hash, n, branch;
    ngx_str_t                   aor, reason, extra, source, instance, reg_id;
    ngx_str_t                   path;
    ngx_int_t                   rc;
    ngx_uint_t                  i, k, nreg, star, count, status;
    ngx_queue_t                *q, *next;
    ngx_sip_msg_t              *m;
    ngx_sip_addr_t              addr;
    ngx_sip_header_t           *h;
    ngx_stream_sip_aor_t       *a;
    ngx_stream_sip_reg_t        reg[NGX_STREAM_SIP_MAX_REG];
    ngx_stream_sip_binding_t   *b;
    ngx_stream_sip_location_t  *loc;

    m = &ctx->msg;
    loc = rscf->location;
    now = ngx_time();
    branch = ngx_crc32_short(m->via.branch.data, m->via.branch.len);

    /* step 5: the AOR is the To URI, and one of our domains */

    if (ngx_stream_sip_aor(&m->to.uri, aor_buf, sizeof(aor_buf), &aor)
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
            reg[nreg].fresh = NULL;
            reg[nreg].chash = ngx_stream_sip_contact_hash(&addr.uri_text);
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

            extra.data = aor_buf;
            extra.len = ngx_sprintf(aor_buf, "Min-Expires: %T" CRLF,
                                    rscf->min_expires) - aor_buf;

            ngx_str_set(&reason, "Interval Too Brief");
            ngx_stream_sip_respond(s, ctx, 423, &reason, &extra);
            return NGX_OK;
        }
    }

    /* what a new binding keeps: source, flow, instance, Path */

    source.data = source_buf;
    source.len = ngx_sprintf(source_buf, "%V:%V:%ui",
                             &ngx_sip_transport(ctx->transport)->param,
                             &s->connection->addr_text,
                             (ngx_uint_t) ngx_inet_get_port(
                                                  s->connection->sockaddr))
                 - source_buf;

    /* all Path values as one Route value, to be used as it is */

    ngx_str_null(&path);

    if (m->hdr[NGX_SIP_HDR_PATH]) {
        n = 0;

        for (i = 0; i < m->nheaders; i++) {
            if (m->headers[i].id == NGX_SIP_HDR_PATH) {
                n += m->headers[i].value.len + 2;
            }
        }

        path.data = ngx_pnalloc(s->connection->pool, n);
        if (path.data == NULL) {
            return NGX_ERROR;
        }

        p = path.data;

        for (i = 0; i < m->nheaders; i++) {
            if (m->headers[i].id == NGX_SIP_HDR_PATH) {
                if (p != path.data) {
                    *p++ = ','; *p++ = ' ';
                }

                p = ngx_cpymem(p, m->headers[i].value.data,
                               m->headers[i].value.len);
            }
        }

        path.len = p - path.data;
    }

    hash = ngx_crc32_short(aor.data, aor.len);

    ngx_shmtx_lock(&loc->shpool->mutex);

    ngx_stream_sip_expire(loc, now);

    a = ngx_stream_sip_aor_lookup(loc, &aor, hash);

    /* steps 6 and 7: match each Contact with a binding, check ordering */

    count = a ? a->nbindings : 0;
    status = 0;
    ngx_str_null(&reason);

    if (a) {
        ngx_stream_sip_match(m, a, reg, nreg, star, branch, &status,
                             &reason);
    }

    for (i = 0; i < nreg && a; i++) {

        if (reg[i].binding && reg[i].expires == 0) {
            count--;

        } else if (reg[i].binding == NULL && reg[i].expires) {

            /* the same new contact twice in one request counts once */

            for (k = 0; k < i; k++) {
                if (reg[k].binding == NULL && reg[k].expires
                    && ngx_stream_sip_contact_eq(&reg[k].addr.uri_text,
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

    if (a == NULL) {
        for (i = 0; i < nreg; i++) {
            if (reg[i].expires && !reg[i].addr.star) {
                count++;
            }
        }
    }

    if (status == 0 && !star && loc->max_contacts
        && count > loc->max_contacts
        && (a == NULL || count > a->nbindings))
    {
        status = 403;
        ngx_str_set(&reason, "Too Many Registered Contacts");
    }

    /*
     * The 200 lists every binding: when it could not be sent, nothing is
     * stored, and the phone is told why (no silent "Message too long").
     */

    if (status == 0 && !star && ctx->transport == NGX_STREAM_SIP_UDP
        && ngx_stream_sip_register_size(s, m, a, reg, nreg, &path)
           > NGX_STREAM_SIP_UDP_MAX)
    {
        status = 403;
        ngx_str_set(&reason,
                    "Registered Contacts Would Not Fit in a UDP Response");

        ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                      "SIP REGISTER for \"%V\" refused: its 200 would not "
                      "fit in a UDP datagram", &aor);
    }

    /* allocate everything new first: a full zone changes nothing */

    if (status == 0 && !star && nreg) {

        if (a == NULL) {
            a = ngx_stream_sip_aor_create(loc, &aor, hash);
        }

        if (a == NULL) {
            status = 500;
            ngx_str_set(&reason, "Location Service Full");
        }

        for (i = 0; status == 0 && i < nreg; i++) {

            if (reg[i].expires == 0) {
                continue;
            }

            ngx_str_null(&instance);
            ngx_str_null(&reg_id);

            (void) ngx_sip_param(&reg[i].addr.params, "+sip.instance",
                                 &instance);
            (void) ngx_sip_param(&reg[i].addr.params, "reg-id", &reg_id);

            reg[i].fresh = ngx_stream_sip_binding_alloc(loc,
                                                  &reg[i].addr.uri_text,
                                                  &m->call_id, &source,
                                                  &instance, &reg_id, &path);
            if (reg[i].fresh == NULL) {
                status = 500;
                ngx_str_set(&reason, "Location Service Full");
            }
        }

        if (status) {
            for (i = 0; i < nreg; i++) {
                if (reg[i].fresh) {
                    ngx_slab_free_locked(loc->shpool, reg[i].fresh);
                }
            }

            if (a->nbindings == 0) {
                ngx_rbtree_delete(&loc->sh->rbtree, &a->node);
                ngx_slab_free_locked(loc->shpool, a);
                loc->sh->naors--;
            }

            a = NULL;
        }
    }

    if (status) {
        ngx_shmtx_unlock(&loc->shpool->mutex);
        ngx_stream_sip_respond(s, ctx, status, &reason, NULL);
        return NGX_OK;
    }

    /* step 8: apply */

    if (star && a) {
        for (q = ngx_queue_head(&a->bindings);
             q != ngx_queue_sentinel(&a->bindings);
             q = next)
        {
            next = ngx_queue_next(q);
            b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);
            ngx_stream_sip_binding_free(loc, b);
        }

        a = NULL;
    }

    for (i = 0; !star && i < nreg; i++) {

        if (reg[i].binding) {
            ngx_stream_sip_binding_free(loc, reg[i].binding);

            for (k = i + 1; k < nreg; k++) {
                if (reg[k].binding == reg[i].binding) {
                    reg[k].binding = NULL;
                }
            }
        }

        b = reg[i].fresh;

        if (b == NULL) {
            continue;
        }

        /* a later duplicate of this contact in the request wins */

        for (k = i + 1; k < nreg; k++) {
            if (reg[k].fresh
                && ngx_stream_sip_contact_eq(&reg[k].addr.uri_text,
                                             &reg[i].addr.uri_text))
            {
                break;
            }
        }

        if (k < nreg) {
            ngx_slab_free_locked(loc->shpool, b);
            continue;
        }

        b->aor = a;
        b->expires = now + reg[i].expires;
        b->cseq = m->cseq.number;
        b->branch = branch;
        b->q = (u_short) reg[i].addr.q;
        b->transport = (u_char) ctx->transport;

        /*
         * Over TCP or TLS the phone is reached on its own connection
         * (RFC 5626): a Contact behind NAT means nothing to us.
         */

        if (ctx->transport != NGX_STREAM_SIP_UDP) {
            b->flow = s->connection->number;
            b->flow_worker = (u_char) ngx_worker;
        }

        ngx_queue_insert_tail(&a->bindings, &b->queue);
        a->nbindings++;
        loc->sh->nbindings++;

        ngx_stream_sip_binding_expire_insert(loc, b);
    }

    if (a && a->nbindings == 0) {
        ngx_rbtree_delete(&loc->sh->rbtree, &a->node);
        ngx_slab_free_locked(loc->shpool, a);
        loc->sh->naors--;
        a = NULL;
    }

    /* the 200 lists every current binding (step 8) */

    ngx_str_null(&extra);

    /* RFC 3327 5.3: the registrar returns the Path it stored */

    p = ngx_stream_sip_contacts(s, a, now, &path, (size_t) -1, &extra);

    ngx_shmtx_unlock(&loc->shpool->mutex);

    if (p == NULL) {
        return NGX_OK;
    }

    ngx_str_set(&reason, "OK");
    ngx_stream_sip_respond(s, ctx, 200, &reason, &extra);

    ngx_free(extra.data);

    return NGX_OK;
}


/* RFC 3261 8.3: 302 with every current contact of the Request-URI */

static ngx_int_t
ngx_stream_sip_redirect(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_registrar_srv_conf_t *rscf)
{
    u_char                     *p, aor_buf[512];
    size_t                      max;
    time_t                      now;
    uint32_t                    hash;
    ngx_str_t                   aor, reason, extra, path;
    ngx_sip_resp_t              r;
    ngx_stream_sip_aor_t       *a;
    ngx_stream_sip_location_t  *loc;

    loc = rscf->location;
    now = ngx_time();

    if (ngx_stream_sip_aor(&ctx->msg.ruri, aor_buf, sizeof(aor_buf), &aor)
        != NGX_OK)
    {
        ngx_str_set(&reason, "Not Found");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
        return NGX_OK;
    }

    hash = ngx_crc32_short(aor.data, aor.len);

    ngx_str_null(&path);
    ngx_str_null(&extra);

    ngx_shmtx_lock(&loc->shpool->mutex);

    a = ngx_stream_sip_aor_lookup(loc, &aor, hash);

    /* over UDP, the contacts that fit (RFC 3261 8.3: any number of them) */

    if (ctx->transport == NGX_STREAM_SIP_UDP) {
        ngx_memzero(&r, sizeof(ngx_sip_resp_t));

        ngx_str_set(&r.reason, "Moved Temporarily");
        r.received = s->connection->addr_text;
        r.rport = 65535;
        r.to_tag.len = NGX_SIP_TO_TAG_LEN;

        max = ngx_sip_response_size(&ctx->msg, &r);
        max = (max < NGX_STREAM_SIP_UDP_MAX) ? NGX_STREAM_SIP_UDP_MAX - max
                                             : 0;

    } else {
        max = (size_t) -1;
    }

    p = ngx_stream_sip_contacts(s, a, now, &path, max, &extra);

    ngx_shmtx_unlock(&loc->shpool->mutex);

    if (p == NULL) {
        return NGX_OK;
    }

    if (extra.len == 0) {
        ngx_str_set(&reason, "Not Found");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);

    } else {
        ngx_str_set(&reason, "Moved Temporarily");
        ngx_stream_sip_respond(s, ctx, 302, &reason, &extra);
    }

    ngx_free(extra.data);

    return NGX_OK;
}


/*
 * "Contact: <uri>;expires=N[;q=0.x]" lines of the current bindings of an
 * AOR, after the Path lines if any, no more than "max" octets of them;
 * called with the zone locked.  The buffer is the caller's to ngx_free():
 * not from the connection's pool, which a long-lived stream connection
 * would grow with every REGISTER.
 */

static u_char *
ngx_stream_sip_contacts(ngx_stream_session_t *s, ngx_stream_sip_aor_t *aor,
    time_t now, ngx_str_t *path, size_t max, ngx_str_t *out)
{
    u_char                    *p;
    size_t                     len;
    ngx_uint_t                 n;
    ngx_queue_t               *q;
    ngx_stream_sip_binding_t  *b;

    len = sizeof("Path: " CRLF "Supported: path" CRLF) + path->len;

    if (aor) {
        for (q = ngx_queue_head(&aor->bindings);
             q != ngx_queue_sentinel(&aor->bindings);
             q = ngx_queue_next(q))
        {
            b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);

            len += ngx_stream_sip_contact_line_size(b->contact_len,
                                                    b->instance_len,
                                                    b->reg_id_len);
        }
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

    if (aor) {
        for (q = ngx_queue_head(&aor->bindings);
             q != ngx_queue_sentinel(&aor->bindings);
             q = ngx_queue_next(q))
        {
            b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);

            if (b->expires <= now) {
                continue;
            }

            if ((size_t) (p - out->data)
                + ngx_stream_sip_contact_line_size(b->contact_len,
                                                   b->instance_len,
                                                   b->reg_id_len)
                > max)
            {
                break;
            }

            p = ngx_sprintf(p, "Contact: <%*s>;expires=%T",
                            (size_t) b->contact_len, b->data,
                            b->expires - now);

            if (b->q != 1000) {
                p = ngx_sprintf(p, ";q=%ui.%03ui", (ngx_uint_t) b->q / 1000,
                                (ngx_uint_t) b->q % 1000);
            }

            if (b->instance_len) {
                p = ngx_sprintf(p, ";+sip.instance=%*s",
                                (size_t) b->instance_len,
                                b->data + b->contact_len + b->call_id_len
                                + b->source_len);
            }

            if (b->reg_id_len) {
                p = ngx_sprintf(p, ";reg-id=%*s", (size_t) b->reg_id_len,
                                b->data + b->contact_len + b->call_id_len
                                + b->source_len + b->instance_len);
            }

            *p++ = CR; *p++ = LF;
            n++;
        }
    }

    /* no contact and no Path: an empty list, for 404 over 302 */

    out->len = (n || path->len) ? (size_t) (p - out->data) : 0;

    return p;
}


/*
 * The AOR of a URI, as the location service keys it: "sip:" user "@"
 * host, the user %-decoded (RFC 3261 19.1.4: escapes compare equal to
 * what they stand for; RFC 4475 3.1.1.4 keeps a %00 whole), the host in
 * lower case, no port or parameters; sips: shares the sip: AOR.
 */

static ngx_int_t
ngx_stream_sip_aor(ngx_sip_uri_t *uri, u_char *buf, size_t size,
    ngx_str_t *aor)
{
    u_char  *p;
    size_t   len;

    if (uri->scheme_id != NGX_SIP_SCHEME_SIP
        && uri->scheme_id != NGX_SIP_SCHEME_SIPS)
    {
        return NGX_ERROR;
    }

    if (uri->user.len == 0 || uri->user.len + uri->host.len + 5 > size) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(buf, "sip:", 4);

    if (ngx_sip_unescape(&uri->user, p, &len) != NGX_OK) {
        return NGX_ERROR;
    }

    p += len;
    *p++ = '@';

    ngx_strlow(p, uri->host.data, uri->host.len);
    p += uri->host.len;

    aor->data = buf;
    aor->len = p - buf;

    return NGX_OK;
}


/* RFC 3261 19.1.4, simplified: scheme and host case-insensitive */

static ngx_uint_t
ngx_stream_sip_contact_eq(ngx_str_t *a, ngx_str_t *b)
{
    ngx_sip_uri_t  ua, ub;

    if (a->len != b->len) {
        return 0;
    }

    if (ngx_memcmp(a->data, b->data, a->len) == 0) {
        return 1;
    }

    if (ngx_sip_parse_uri(a->data, a->data + a->len, &ua) != NGX_OK
        || ngx_sip_parse_uri(b->data, b->data + b->len, &ub) != NGX_OK)
    {
        return 0;
    }

    return ua.scheme_id == ub.scheme_id
           && ua.user.len == ub.user.len
           && ngx_memcmp(ua.user.data, ub.user.data, ua.user.len) == 0
           && ua.host.len == ub.host.len
           && ngx_strncasecmp(ua.host.data, ub.host.data, ua.host.len) == 0
           && ua.port == ub.port
           && ua.params.len == ub.params.len
           && ngx_strncasecmp(ua.params.data, ub.params.data,
                              ua.params.len) == 0;
}


/*
 * A hash equal for any two contacts ngx_stream_sip_contact_eq() finds
 * equal: their length, and the parts it compares, case folded where it
 * ignores case.
 */

static uint32_t
ngx_stream_sip_contact_hash(ngx_str_t *contact)
{
    u_char         buf[256];
    size_t         len;
    uint32_t       h;
    ngx_uint_t     v[3];
    ngx_sip_uri_t  u;

    h = ngx_sip_hash(0, (u_char *) &contact->len, sizeof(size_t));

    if (contact->len >= sizeof(buf)
        || ngx_sip_parse_uri(contact->data, contact->data + contact->len, &u)
           != NGX_OK)
    {
        return ngx_sip_hash(h, contact->data, contact->len);
    }

    v[0] = u.scheme_id;
    v[1] = u.port;
    v[2] = u.user.len;

    h = ngx_sip_hash(h, (u_char *) v, sizeof(v));
    h = ngx_sip_hash(h, u.user.data, u.user.len);

    len = u.host.len + u.params.len;

    ngx_strlow(buf, u.host.data, u.host.len);
    ngx_strlow(buf + u.host.len, u.params.data, u.params.len);

    return ngx_sip_hash(h, buf, len);
}


static ngx_stream_sip_aor_t *
ngx_stream_sip_aor_lookup(ngx_stream_sip_location_t *loc, ngx_str_t *aor,
    uint32_t hash)
{
    ngx_int_t              rc;
    ngx_rbtree_node_t     *node, *sentinel;
    ngx_stream_sip_aor_t  *a;

    node = loc->sh->rbtree.root;
    sentinel = loc->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        a = (ngx_stream_sip_aor_t *) node;

        rc = ngx_memn2cmp(aor->data, a->aor, aor->len, (size_t) a->len);

        if (rc == 0) {
            return a;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_stream_sip_aor_t *
ngx_stream_sip_aor_create(ngx_stream_sip_location_t *loc, ngx_str_t *aor,
    uint32_t hash)
{
    ngx_stream_sip_aor_t  *a;

    a = ngx_slab_alloc_locked(loc->shpool,
                              offsetof(ngx_stream_sip_aor_t, aor) + aor->len);
    if (a == NULL) {
        return NULL;
    }

    a->node.key = hash;
    a->len = (u_short) aor->len;
    ngx_memcpy(a->aor, aor->data, aor->len);
    ngx_queue_init(&a->bindings);
    a->nbindings = 0;

    ngx_rbtree_insert(&loc->sh->rbtree, &a->node);
    loc->sh->naors++;

    return a;
}


static ngx_stream_sip_binding_t *
ngx_stream_sip_binding_alloc(ngx_stream_sip_location_t *loc,
    ngx_str_t *contact, ngx_str_t *call_id, ngx_str_t *source,
    ngx_str_t *instance, ngx_str_t *reg_id, ngx_str_t *path)
{
    u_char                    *p;
    ngx_stream_sip_binding_t  *b;

    if (contact->len > 255 || call_id->len > 255 || source->len > 255
        || instance->len > 255 || reg_id->len > 255 || path->len > 65535)
    {
        return NULL;
    }

    b = ngx_slab_alloc_locked(loc->shpool,
                              offsetof(ngx_stream_sip_binding_t, data)
                              + contact->len + call_id->len + source->len
                              + instance->len + reg_id->len + path->len);
    if (b == NULL) {
        return NULL;
    }

    ngx_memzero(b, offsetof(ngx_stream_sip_binding_t, data));

    b->q = 1000;
    b->chash = ngx_stream_sip_contact_hash(contact);
    b->contact_len = (u_char) contact->len;
    b->call_id_len = (u_char) call_id->len;
    b->source_len = (u_char) source->len;
    b->instance_len = (u_char) instance->len;
    b->reg_id_len = (u_char) reg_id->len;
    b->path_len = (u_short) path->len;

    p = b->data;
    p = ngx_cpymem(p, contact->data, contact->len);
    p = ngx_cpymem(p, call_id->data, call_id->len);
    p = ngx_cpymem(p, source->data, source->len);
    p = ngx_cpymem(p, instance->data, instance->len);
    p = ngx_cpymem(p, reg_id->data, reg_id->len);
    ngx_memcpy(p, path->data, path->len);

    return b;
}


static void
ngx_stream_sip_binding_free(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_binding_t *b)
{
    ngx_stream_sip_aor_t  *a;

    a = b->aor;

    ngx_queue_remove(&b->queue);
    ngx_rbtree_delete(&loc->sh->expire, &b->expire);
    a->nbindings--;
    loc->sh->nbindings--;

    ngx_slab_free_locked(loc->shpool, b);
}


/*
 * The bindings of the zone by expiry time, a tree like nginx's timers:
 * O(log n) wherever a new binding goes.  A sorted list searched from the
 * tail cost a walk past every later binding of the zone, under its
 * mutex, for each REGISTER with an Expires shorter than the others'.
 */

static void
ngx_stream_sip_binding_expire_insert(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_binding_t *b)
{
    b->expire.key = (ngx_rbtree_key_t) b->expires;

    ngx_rbtree_insert(&loc->sh->expire, &b->expire);
}


/* called with the zone locked */

static void
ngx_stream_sip_expire(ngx_stream_sip_location_t *loc, time_t now)
{
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_stream_sip_aor_t      *a;
    ngx_stream_sip_binding_t  *b;

    sentinel = loc->sh->expire.sentinel;

    while (loc->sh->expire.root != sentinel) {
        node = ngx_rbtree_min(loc->sh->expire.root, sentinel);
        b = ngx_stream_sip_expire_binding(node);

        if (b->expires > now) {
            return;
        }

        a = b->aor;

        ngx_stream_sip_binding_free(loc, b);

        if (a->nbindings == 0) {
            ngx_rbtree_delete(&loc->sh->rbtree, &a->node);
            ngx_slab_free_locked(loc->shpool, a);
            loc->sh->naors--;
        }
    }
}


static void
ngx_stream_sip_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t     **p;
    ngx_stream_sip_aor_t   *a, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            a = (ngx_stream_sip_aor_t *) node;
            t = (ngx_stream_sip_aor_t *) temp;

            p = (ngx_memn2cmp(a->aor, t->aor, a->len, t->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The state file: one line per binding, tab-separated, fields %-encoded
 * where they could hold a tab, a line end or a '%':
 *
 *     aor expires q cseq transport contact call-id source instance
 *     reg-id path
 *
 * "expires" is absolute (seconds since the epoch).  It is written to
 * "path.tmp" and renamed over "path", so a crash never leaves half a file.
 */

static ngx_int_t
ngx_stream_sip_state_write(ngx_stream_sip_location_t *loc, ngx_log_t *log)
{
    u_char                    *buf, *p, *name, *tmp;
    size_t                     size, used;
    time_t                     now;
    ssize_t                    n;
    ngx_fd_t                   fd;
    ngx_uint_t                 rc, nbindings, naors;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_stream_sip_binding_t  *b;

    now = ngx_time();

    ngx_shmtx_lock(&loc->shpool->mutex);

    ngx_stream_sip_expire(loc, now);

    size = 1;
    sentinel = loc->sh->expire.sentinel;

    for (node = (loc->sh->expire.root == sentinel)
                ? NULL : ngx_rbtree_min(loc->sh->expire.root, sentinel);
         node;
         node = ngx_rbtree_next(&loc->sh->expire, node))
    {
        b = ngx_stream_sip_expire_binding(node);

        size += 3 * (b->aor->len + b->contact_len + b->call_id_len
                     + b->source_len + b->instance_len + b->reg_id_len
                     + b->path_len)
                + 4 * NGX_INT64_LEN + 16;
    }

    buf = ngx_alloc(size, log);
    if (buf == NULL) {
        ngx_shmtx_unlock(&loc->shpool->mutex);
        return NGX_ERROR;
    }

    p = buf;

    for (node = (loc->sh->expire.root == sentinel)
                ? NULL : ngx_rbtree_min(loc->sh->expire.root, sentinel);
         node;
         node = ngx_rbtree_next(&loc->sh->expire, node))
    {
        b = ngx_stream_sip_expire_binding(node);

        name = b->data;

        p = ngx_stream_sip_state_field(p, b->aor->aor, b->aor->len);
        p = ngx_sprintf(p, "\t%T\t%ui\t%uD\t%ui\t", b->expires,
                        (ngx_uint_t) b->q, b->cseq,
                        (ngx_uint_t) b->transport);
        p = ngx_stream_sip_state_field(p, name, b->contact_len);
        name += b->contact_len;
        *p++ = '\t';
        p = ngx_stream_sip_state_field(p, name, b->call_id_len);
        name += b->call_id_len;
        *p++ = '\t';
        p = ngx_stream_sip_state_field(p, name, b->source_len);
        name += b->source_len;
        *p++ = '\t';
        p = ngx_stream_sip_state_field(p, name, b->instance_len);
        name += b->instance_len;
        *p++ = '\t';
        p = ngx_stream_sip_state_field(p, name, b->reg_id_len);
        name += b->reg_id_len;
        *p++ = '\t';
        p = ngx_stream_sip_state_field(p, name, b->path_len);
        *p++ = LF;
    }

    nbindings = loc->sh->nbindings;
    naors = loc->sh->naors;
    used = ((loc->shpool->end - loc->shpool->start) / ngx_pagesize
            - loc->shpool->pfree) * ngx_pagesize;

    ngx_shmtx_unlock(&loc->shpool->mutex);

    /* what an operator sizes the zone by */

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "sip_location_zone \"%V\": %ui bindings, %ui AORs, "
                  "%uz of %uz bytes in use",
                  &loc->shm_zone->shm.name, nbindings, naors, used,
                  (size_t) (loc->shpool->end - loc->shpool->start));

    tmp = ngx_alloc(loc->state.len + sizeof(".tmp"), log);
    if (tmp == NULL) {
        ngx_free(buf);
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

    n = ngx_write_fd(fd, buf, p - buf);

    if (n != p - buf) {
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
    ngx_free(buf);

    return rc;
}


static u_char *
ngx_stream_sip_state_field(u_char *dst, u_char *src, size_t len)
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
 * Read at start into an empty zone.  A missing file is normal; a line
 * that does not make sense is logged, the file is kept aside as
 * "path.bad", and the start goes on with what could be read.
 */

static ngx_int_t
ngx_stream_sip_state_read(ngx_stream_sip_location_t *loc, ngx_log_t *log)
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

        if (ngx_stream_sip_state_line(loc, p, nl, now) != NGX_OK) {
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
ngx_stream_sip_state_line(ngx_stream_sip_location_t *loc, u_char *p,
    u_char *end, time_t now)
{
    u_char                    *f, *d;
    time_t                     expires;
    uint32_t                   hash;
    uint64_t                   c;
    ngx_int_t                  v[4];
    ngx_str_t                  field[11];
    ngx_uint_t                 i;
    ngx_sip_uri_t              uri;
    ngx_stream_sip_aor_t      *a;
    ngx_stream_sip_binding_t  *b;

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

    expires = v[0];

    if (field[0].len < 5 || ngx_strncmp(field[0].data, "sip:", 4) != 0
        || field[5].len == 0 || v[1] > 1000 || v[3] > NGX_STREAM_SIP_WSS
        || ngx_sip_parse_uri(field[5].data, field[5].data + field[5].len,
                             &uri) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (expires <= now) {

        /* expired while we were down: not an error */
        return NGX_OK;
    }

    hash = ngx_crc32_short(field[0].data, field[0].len);

    ngx_shmtx_lock(&loc->shpool->mutex);

    a = ngx_stream_sip_aor_lookup(loc, &field[0], hash);

    if (a == NULL) {
        a = ngx_stream_sip_aor_create(loc, &field[0], hash);
    }

    b = a ? ngx_stream_sip_binding_alloc(loc, &field[5], &field[6],
                                         &field[7], &field[8], &field[9],
                                         &field[10])
          : NULL;

    if (b == NULL) {
        ngx_shmtx_unlock(&loc->shpool->mutex);
        return NGX_ERROR;
    }

    b->aor = a;
    b->expires = expires;
    b->q = (u_short) v[1];
    b->cseq = (uint32_t) v[2];
    b->branch = 0;
    b->transport = (u_char) v[3];

    ngx_queue_insert_tail(&a->bindings, &b->queue);
    a->nbindings++;
    loc->sh->nbindings++;

    ngx_stream_sip_binding_expire_insert(loc, b);

    ngx_shmtx_unlock(&loc->shpool->mutex);

    return NGX_OK;
}


static void
ngx_stream_sip_state_timer(ngx_event_t *ev)
{
    ngx_uint_t                             i;
    ngx_stream_sip_location_t            **loc;
    ngx_stream_sip_registrar_main_conf_t  *rmcf;

    rmcf = ev->data;

    loc = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {

        if (loc[i]->state.len == 0) {
            ngx_shmtx_lock(&loc[i]->shpool->mutex);
            ngx_stream_sip_expire(loc[i], ngx_time());
            ngx_shmtx_unlock(&loc[i]->shpool->mutex);
            continue;
        }

        (void) ngx_stream_sip_state_write(loc[i], ev->log);
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_STREAM_SIP_STATE_INTERVAL);
    }
}


/* worker 0 sweeps expired bindings and writes the state files */

static ngx_int_t
ngx_stream_sip_registrar_init_process(ngx_cycle_t *cycle)
{
    ngx_stream_sip_registrar_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER || ngx_worker != 0
        || cycle->conf_ctx[ngx_stream_module.index] == NULL)
    {
        return NGX_OK;
    }

    rmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                            ngx_stream_sip_registrar_module);

    if (rmcf == NULL || rmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    ngx_stream_sip_state_event.handler = ngx_stream_sip_state_timer;
    ngx_stream_sip_state_event.data = rmcf;
    ngx_stream_sip_state_event.log = cycle->log;
    ngx_stream_sip_state_event.cancelable = 1;

    ngx_add_timer(&ngx_stream_sip_state_event,
                  NGX_STREAM_SIP_STATE_INTERVAL);

    return NGX_OK;
}


/* the last word: the master writes the state when nginx stops */

static void
ngx_stream_sip_registrar_exit_master(ngx_cycle_t *cycle)
{
    ngx_uint_t                             i;
    ngx_stream_sip_location_t            **loc;
    ngx_stream_sip_registrar_main_conf_t  *rmcf;

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_stream_module.index] == NULL)
    {
        return;
    }

    rmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                            ngx_stream_sip_registrar_module);

    if (rmcf == NULL) {
        return;
    }

    loc = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (loc[i]->state.len && loc[i]->sh) {
            (void) ngx_stream_sip_state_write(loc[i], cycle->log);
        }
    }
}


static ngx_int_t
ngx_stream_sip_location_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_stream_sip_location_t  *oloc = data;

    size_t                      len;
    ngx_stream_sip_location_t  *loc;

    loc = shm_zone->data;

    if (oloc) {
        loc->sh = oloc->sh;
        loc->shpool = oloc->shpool;
        return NGX_OK;
    }

    loc->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        loc->sh = loc->shpool->data;
        return NGX_OK;
    }

    loc->sh = ngx_slab_alloc(loc->shpool,
                             sizeof(ngx_stream_sip_location_sh_t));
    if (loc->sh == NULL) {
        return NGX_ERROR;
    }

    loc->shpool->data = loc->sh;

    ngx_rbtree_init(&loc->sh->rbtree, &loc->sh->sentinel,
                    ngx_stream_sip_rbtree_insert_value);

    ngx_rbtree_init(&loc->sh->expire, &loc->sh->expire_sentinel,
                    ngx_rbtree_insert_timer_value);

    len = sizeof(" in sip_location_zone \"\"") + shm_zone->shm.name.len;

    loc->shpool->log_ctx = ngx_slab_alloc(loc->shpool, len);
    if (loc->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(loc->shpool->log_ctx, " in sip_location_zone \"%V\"%Z",
                &shm_zone->shm.name);

    loc->shpool->log_nomem = 0;

    if (loc->state.len) {
        return ngx_stream_sip_state_read(loc, shm_zone->shm.log);
    }

    return NGX_OK;
}


static void *
ngx_stream_sip_registrar_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_registrar_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_stream_sip_registrar_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->zones, cf->pool, 2,
                       sizeof(ngx_stream_sip_location_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
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


/* sip_location_zone name:size [state=path] [max_contacts=N]; */

static char *
ngx_stream_sip_location_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_registrar_main_conf_t *rmcf = conf;

    u_char                      *p;
    ssize_t                      size;
    ngx_str_t                   *value, name, s;
    ngx_int_t                    n;
    ngx_uint_t                   i;
    ngx_shm_zone_t              *shm_zone;
    ngx_stream_sip_location_t   *loc, **lp;

    value = cf->args->elts;

    loc = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_location_t));
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    name = value[1];
    p = (u_char *) ngx_strchr(name.data, ':');

    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected name:size", &name);
        return NGX_CONF_ERROR;
    }

    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "state=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (s.len == 0) {
                goto invalid;
            }

            if (ngx_conf_full_name(cf->cycle, &s, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            loc->state = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_contacts=", 13) == 0) {
            n = ngx_atoi(value[i].data + 13, value[i].len - 13);

            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            loc->max_contacts = n;
            continue;
        }

        goto invalid;
    }

    if (loc->max_contacts == 0) {
        loc->max_contacts = NGX_STREAM_SIP_MAX_CONTACTS;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_stream_sip_registrar_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_stream_sip_location_init_zone;
    shm_zone->data = loc;
    loc->shm_zone = shm_zone;

    lp = ngx_array_push(&rmcf->zones);
    if (lp == NULL) {
        return NGX_CONF_ERROR;
    }

    *lp = loc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


static char *
ngx_stream_sip_registrar(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_registrar_srv_conf_t *rscf = conf;

    ngx_str_t       *value;
    ngx_shm_zone_t  *shm_zone;

    if (rscf->location) {
        return "is duplicate";
    }

    value = cf->args->elts;

    shm_zone = ngx_shared_memory_add(cf, &value[1], 0,
                                     &ngx_stream_sip_registrar_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown sip_location_zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rscf->location = shm_zone->data;

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
 * Location service lookup for the proxy (RFC 3261 16.5): the contacts of
 * the AOR of a Request-URI, best q first, copied into the session's pool.
 * NGX_DECLINED: no registrar here; NGX_DONE: no binding.  Only the copy
 * is done under the zone's mutex (one walk, O(n)); the order is made
 * after, so other workers never wait for a sort.
 */

ngx_int_t
ngx_stream_sip_registrar_lookup(ngx_stream_session_t *s, ngx_sip_uri_t *uri,
    ngx_array_t **targets)
{
    u_char                               aor_buf[512], *p;
    time_t                               now;
    uint32_t                             hash;
    ngx_str_t                            aor;
    ngx_array_t                         *a;
    ngx_queue_t                         *q;
    ngx_stream_sip_aor_t                *r;
    ngx_stream_sip_target_t             *t;
    ngx_stream_sip_binding_t            *b;
    ngx_stream_sip_location_t           *loc;
    ngx_stream_sip_registrar_srv_conf_t *rscf;

    rscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_registrar_module);

    if (rscf->location == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_stream_sip_aor(uri, aor_buf, sizeof(aor_buf), &aor) != NGX_OK) {
        return NGX_DONE;
    }

    loc = rscf->location;
    now = ngx_time();
    hash = ngx_crc32_short(aor.data, aor.len);

    ngx_shmtx_lock(&loc->shpool->mutex);

    r = ngx_stream_sip_aor_lookup(loc, &aor, hash);

    if (r == NULL) {
        ngx_shmtx_unlock(&loc->shpool->mutex);
        return NGX_DONE;
    }

    a = ngx_array_create(s->connection->pool, r->nbindings,
                         sizeof(ngx_stream_sip_target_t));
    if (a == NULL) {
        ngx_shmtx_unlock(&loc->shpool->mutex);
        return NGX_ERROR;
    }

    for (q = ngx_queue_head(&r->bindings);
         q != ngx_queue_sentinel(&r->bindings);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);

        if (b->expires <= now) {
            continue;
        }

        t = ngx_array_push(a);    /* no allocation: nbindings are there */
        p = ngx_pnalloc(s->connection->pool, b->contact_len + b->path_len);

        if (t == NULL || p == NULL) {
            ngx_shmtx_unlock(&loc->shpool->mutex);
            return NGX_ERROR;
        }

        t->q = b->q;
        t->flow = b->flow;
        t->worker = b->flow_worker;
        t->transport = b->transport;
        t->uri.data = p;
        t->uri.len = b->contact_len;
        t->path.data = p + b->contact_len;
        t->path.len = b->path_len;

        p = ngx_cpymem(p, b->data, b->contact_len);
        ngx_memcpy(p,
                   b->data + b->contact_len + b->call_id_len
                   + b->source_len + b->instance_len + b->reg_id_len,
                   b->path_len);
    }

    ngx_shmtx_unlock(&loc->shpool->mutex);

    if (a->nelts == 0) {
        return NGX_DONE;
    }

    if (ngx_stream_sip_targets_sort(s->connection->pool, a) != NGX_OK) {
        return NGX_ERROR;
    }

    *targets = a;

    return NGX_OK;
}


/*
 * The order of forking: by q, best first, and of equals the one
 * registered first, as they were in the AOR.  q is 0 to 1000, so a
 * counting sort: O(n), stable, and no worst case for an attacker to aim
 * at (registering rising q made an insertion sort quadratic).
 */

static ngx_int_t
ngx_stream_sip_targets_sort(ngx_pool_t *pool, ngx_array_t *a)
{
    uint32_t                  *start;
    ngx_uint_t                 i, q, sum, c;
    ngx_stream_sip_target_t   *t, *sorted;

    if (a->nelts < 2) {
        return NGX_OK;
    }

    start = ngx_pcalloc(pool, 1001 * sizeof(uint32_t));
    sorted = ngx_palloc(pool, a->nelts * sizeof(ngx_stream_sip_target_t));

    if (start == NULL || sorted == NULL) {
        return NGX_ERROR;
    }

    t = a->elts;

    for (i = 0; i < a->nelts; i++) {
        start[ngx_min(t[i].q, 1000)]++;
    }

    /* where each q begins, from 1000 down */

    sum = 0;

    for (q = 1001; q-- > 0; /* void */) {
        c = start[q];
        start[q] = (uint32_t) sum;
        sum += c;
    }

    for (i = 0; i < a->nelts; i++) {
        sorted[start[ngx_min(t[i].q, 1000)]++] = t[i];
    }

    a->elts = sorted;
    a->nalloc = a->nelts;

    return NGX_OK;
}
