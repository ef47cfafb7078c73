
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"
#include "ngx_stream_sip_location.h"


/*
 * The location store (ngx_stream_sip_location.h) and its shared memory
 * backend: an rbtree of AORs, each with its bindings, and one tree of all
 * bindings in expiry order.  Every worker reads and writes it under the
 * zone's mutex; it survives "nginx -s reload" like any zone, and a state
 * file (ngx_stream_sip_location_file.c) carries it over restarts.
 */


#define NGX_STREAM_SIP_STATE_INTERVAL  30000

/*
 * Bindings per AOR unless max_contacts= says otherwise: every Contact
 * one REGISTER may carry, and a 200 listing them all stays far below
 * what a UDP datagram can carry (RFC 3261 18.2.2 has no fallback for a
 * response); forking to more is an amplifier.
 */
#define NGX_STREAM_SIP_MAX_CONTACTS    32


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


/* the shared memory backend's part of a sip_location_zone */
typedef struct {
    ngx_stream_sip_location_sh_t    *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_shm_zone_t                  *shm_zone;
} ngx_stream_sip_location_shm_t;


typedef struct {
    ngx_array_t                      zones;   /* ngx_stream_sip_location_t * */
} ngx_stream_sip_location_main_conf_t;


/* what lookup() asks of read() */
typedef struct {
    ngx_pool_t                      *pool;
    time_t                           now;
    ngx_array_t                     *targets;
} ngx_stream_sip_location_lookup_t;


static ngx_int_t ngx_stream_sip_location_lookup_copy(
    ngx_stream_sip_location_read_t *rd, ngx_stream_sip_location_iter_t *it);
static ngx_int_t ngx_stream_sip_targets_sort(ngx_pool_t *pool,
    ngx_array_t *a);

static ngx_int_t ngx_stream_sip_shm_read(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_read_t *rd);
static ngx_int_t ngx_stream_sip_shm_save(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_save_t *sv);
static void ngx_stream_sip_shm_expire(ngx_stream_sip_location_t *loc,
    time_t now);
static ngx_int_t ngx_stream_sip_shm_restore(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_binding_t *b);
static void ngx_stream_sip_shm_iter_aor(ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_aor_t *a);
static ngx_uint_t ngx_stream_sip_shm_next_aor(
    ngx_stream_sip_location_iter_t *it, ngx_stream_sip_location_binding_t *b);
static ngx_uint_t ngx_stream_sip_shm_next_expiry(
    ngx_stream_sip_location_iter_t *it, ngx_stream_sip_location_binding_t *b);
static void ngx_stream_sip_shm_view(ngx_stream_sip_binding_t *b,
    ngx_stream_sip_location_binding_t *v);
static ngx_stream_sip_aor_t *ngx_stream_sip_aor_lookup(
    ngx_stream_sip_location_shm_t *shm, ngx_str_t *aor, uint32_t hash);
static ngx_stream_sip_aor_t *ngx_stream_sip_aor_create(
    ngx_stream_sip_location_shm_t *shm, ngx_str_t *aor, uint32_t hash);
static void ngx_stream_sip_aor_free(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_aor_t *a);
static void ngx_stream_sip_binding_free(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_binding_t *b);
static ngx_stream_sip_binding_t *ngx_stream_sip_binding_alloc(
    ngx_stream_sip_location_shm_t *shm, ngx_stream_sip_location_binding_t *v);
static void ngx_stream_sip_binding_insert(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_aor_t *a, ngx_stream_sip_binding_t *b);
static void ngx_stream_sip_expire(ngx_stream_sip_location_shm_t *shm,
    time_t now);
static void ngx_stream_sip_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);

static void ngx_stream_sip_state_timer(ngx_event_t *ev);
static ngx_int_t ngx_stream_sip_location_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_stream_sip_location_create_main_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_location_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_stream_sip_location_init_process(ngx_cycle_t *cycle);
static void ngx_stream_sip_location_exit_master(ngx_cycle_t *cycle);


static ngx_stream_sip_location_ops_t  ngx_stream_sip_location_shm_ops = {
    ngx_string("shm"),
    ngx_stream_sip_shm_read,
    ngx_stream_sip_shm_save,
    ngx_stream_sip_shm_expire,
    ngx_stream_sip_shm_restore
};


static ngx_command_t  ngx_stream_sip_location_commands[] = {

    { ngx_string("sip_location_zone"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_1MORE,
      ngx_stream_sip_location_zone,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_location_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_stream_sip_location_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_location_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_location_module_ctx,   /* module context */
    ngx_stream_sip_location_commands,      /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_stream_sip_location_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    ngx_stream_sip_location_exit_master,   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_event_t  ngx_stream_sip_state_event;


/*
 * The AOR of a URI, as the location service keys it: "sip:" user "@"
 * host, the user %-decoded (RFC 3261 19.1.4: escapes compare equal to
 * what they stand for; RFC 4475 3.1.1.4 keeps a %00 whole), the host in
 * lower case, no port or parameters; sips: shares the sip: AOR.
 */

ngx_int_t
ngx_stream_sip_location_aor(ngx_sip_uri_t *uri, u_char *buf, size_t size,
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


/*
 * Location service lookup for the proxy (RFC 3261 16.5): the contacts of
 * an AOR, best q first, copied into "pool".  NGX_DONE: no binding.  Only
 * the copy is done inside the store (under the zone's mutex: one walk,
 * O(n)); the order is made after, so other workers never wait for a
 * sort.  A backend that answers later is not usable here until the
 * request can wait for it.
 */

ngx_int_t
ngx_stream_sip_location_lookup(ngx_stream_sip_location_t *loc,
    ngx_str_t *aor, ngx_pool_t *pool, ngx_array_t **targets)
{
    ngx_int_t                          rc;
    ngx_stream_sip_location_read_t     rd;
    ngx_stream_sip_location_lookup_t   lk;

    lk.pool = pool;
    lk.now = ngx_time();
    lk.targets = NULL;

    ngx_memzero(&rd, sizeof(ngx_stream_sip_location_read_t));

    rd.aor = *aor;
    rd.handler = ngx_stream_sip_location_lookup_copy;
    rd.data = &lk;

    rc = ngx_stream_sip_location_read(loc, &rd);

    if (rc == NGX_AGAIN) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "sip_location_zone \"%V\": a lookup cannot wait",
                      &loc->name);
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (lk.targets->nelts == 0) {
        return NGX_DONE;
    }

    if (ngx_stream_sip_targets_sort(pool, lk.targets) != NGX_OK) {
        return NGX_ERROR;
    }

    *targets = lk.targets;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_location_lookup_copy(ngx_stream_sip_location_read_t *rd,
    ngx_stream_sip_location_iter_t *it)
{
    u_char                             *p;
    ngx_array_t                        *a;
    ngx_stream_sip_target_t            *t;
    ngx_stream_sip_location_lookup_t   *lk;
    ngx_stream_sip_location_binding_t   b;

    lk = rd->data;

    if (!it->exists) {
        return NGX_DONE;
    }

    a = ngx_array_create(lk->pool, it->n, sizeof(ngx_stream_sip_target_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    while (it->next(it, &b)) {

        if (b.expires <= lk->now) {
            continue;
        }

        t = ngx_array_push(a);    /* no allocation: n are there */
        p = ngx_pnalloc(lk->pool, b.contact.len + b.path.len);

        if (t == NULL || p == NULL) {
            return NGX_ERROR;
        }

        t->q = b.q;
        t->flow = b.flow;
        t->worker = b.flow_worker;
        t->transport = b.transport;
        t->uri.data = p;
        t->uri.len = b.contact.len;
        t->path.data = p + b.contact.len;
        t->path.len = b.path.len;

        p = ngx_cpymem(p, b.contact.data, b.contact.len);
        ngx_memcpy(p, b.path.data, b.path.len);
    }

    lk->targets = a;

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


/* RFC 3261 19.1.4, simplified: scheme and host case-insensitive */

ngx_uint_t
ngx_stream_sip_location_contact_eq(ngx_str_t *a, ngx_str_t *b)
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
 * A hash equal for any two contacts ngx_stream_sip_location_contact_eq()
 * finds equal: their length, and the parts it compares, case folded
 * where it ignores case.
 */

uint32_t
ngx_stream_sip_location_contact_hash(ngx_str_t *contact)
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


/* the zone a "sip_registrar" names, declared before it */

ngx_stream_sip_location_t *
ngx_stream_sip_location_get(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                            i;
    ngx_stream_sip_location_t           **loc;
    ngx_stream_sip_location_main_conf_t  *lmcf;

    lmcf = ngx_stream_conf_get_module_main_conf(cf,
                                             ngx_stream_sip_location_module);

    loc = lmcf->zones.elts;

    for (i = 0; i < lmcf->zones.nelts; i++) {
        if (loc[i]->name.len == name->len
            && ngx_strncmp(loc[i]->name.data, name->data, name->len) == 0)
        {
            return loc[i];
        }
    }

    return NULL;
}


/* the shared memory backend */

static ngx_int_t
ngx_stream_sip_shm_read(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_read_t *rd)
{
    uint32_t                         hash;
    ngx_int_t                        rc;
    ngx_stream_sip_location_sh_t    *sh;
    ngx_stream_sip_location_shm_t   *shm;
    ngx_stream_sip_location_iter_t   it;

    shm = loc->backend;
    sh = shm->sh;

    hash = rd->aor.len ? ngx_crc32_short(rd->aor.data, rd->aor.len) : 0;

    ngx_shmtx_lock(&shm->shpool->mutex);

    if (rd->expire) {
        ngx_stream_sip_expire(shm, ngx_time());
    }

    if (rd->aor.len) {
        ngx_stream_sip_shm_iter_aor(&it,
                             ngx_stream_sip_aor_lookup(shm, &rd->aor, hash));

    } else {
        it.n = sh->nbindings;
        it.exists = 1;
        it.next = ngx_stream_sip_shm_next_expiry;
        it.data = shm;
        it.cur = NULL;

        rd->stats.nbindings = sh->nbindings;
        rd->stats.naors = sh->naors;
        rd->stats.size = shm->shpool->end - shm->shpool->start;
        rd->stats.used = (rd->stats.size / ngx_pagesize
                          - shm->shpool->pfree) * ngx_pagesize;
    }

    rc = rd->handler(rd, &it);

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return rc;
}


/* see ngx_stream_sip_location_save_t: allocate, then change */

static ngx_int_t
ngx_stream_sip_shm_save(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_save_t *sv)
{
    uint32_t                           hash;
    ngx_int_t                          rc;
    ngx_uint_t                         i;
    ngx_queue_t                       *q, *next;
    ngx_stream_sip_aor_t              *a;
    ngx_stream_sip_binding_t          *b;
    ngx_stream_sip_location_shm_t     *shm;
    ngx_stream_sip_location_iter_t     it;
    ngx_stream_sip_location_change_t  *c;

    shm = loc->backend;
    hash = ngx_crc32_short(sv->aor.data, sv->aor.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    ngx_stream_sip_expire(shm, sv->now);

    a = ngx_stream_sip_aor_lookup(shm, &sv->aor, hash);

    ngx_stream_sip_shm_iter_aor(&it, a);

    rc = sv->decide(sv, &it);

    if (rc != NGX_OK) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        return (rc == NGX_DECLINED) ? NGX_OK : rc;
    }

    /* allocate everything new first: a full zone changes nothing */

    if (!sv->remove_all && sv->nchanges) {

        if (a == NULL) {
            a = ngx_stream_sip_aor_create(shm, &sv->aor, hash);
        }

        if (a == NULL) {
            sv->full = 1;
        }

        for (i = 0; !sv->full && i < sv->nchanges; i++) {
            c = &sv->changes[i];

            if (c->add == NULL) {
                continue;
            }

            c->fresh = ngx_stream_sip_binding_alloc(shm, c->add);

            if (c->fresh == NULL) {
                sv->full = 1;
            }
        }

        if (sv->full) {
            for (i = 0; i < sv->nchanges; i++) {
                if (sv->changes[i].fresh) {
                    ngx_slab_free_locked(shm->shpool, sv->changes[i].fresh);
                    sv->changes[i].fresh = NULL;
                }
            }

            if (a && a->nbindings == 0) {
                ngx_stream_sip_aor_free(shm, a);
            }

            ngx_shmtx_unlock(&shm->shpool->mutex);
            return NGX_OK;
        }
    }

    if (sv->remove_all && a) {
        for (q = ngx_queue_head(&a->bindings);
             q != ngx_queue_sentinel(&a->bindings);
             q = next)
        {
            next = ngx_queue_next(q);
            b = ngx_queue_data(q, ngx_stream_sip_binding_t, queue);
            ngx_stream_sip_binding_free(shm, b);
        }
    }

    for (i = 0; !sv->remove_all && i < sv->nchanges; i++) {
        c = &sv->changes[i];

        if (c->remove) {
            ngx_stream_sip_binding_free(shm, c->remove);
        }

        if (c->fresh) {
            ngx_stream_sip_binding_insert(shm, a, c->fresh);
            c->fresh = NULL;
        }
    }

    if (a && a->nbindings == 0) {
        ngx_stream_sip_aor_free(shm, a);
        a = NULL;
    }

    sv->applied = 1;

    ngx_stream_sip_shm_iter_aor(&it, a);

    rc = sv->reply(sv, &it);

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return rc;
}


static void
ngx_stream_sip_shm_expire(ngx_stream_sip_location_t *loc, time_t now)
{
    ngx_stream_sip_location_shm_t  *shm;

    shm = loc->backend;

    ngx_shmtx_lock(&shm->shpool->mutex);
    ngx_stream_sip_expire(shm, now);
    ngx_shmtx_unlock(&shm->shpool->mutex);
}


/* one binding of the state file, into a zone being started */

static ngx_int_t
ngx_stream_sip_shm_restore(ngx_stream_sip_location_t *loc,
    ngx_stream_sip_location_binding_t *v)
{
    uint32_t                        hash;
    ngx_stream_sip_aor_t           *a;
    ngx_stream_sip_binding_t       *b;
    ngx_stream_sip_location_shm_t  *shm;

    shm = loc->backend;
    hash = ngx_crc32_short(v->aor.data, v->aor.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    a = ngx_stream_sip_aor_lookup(shm, &v->aor, hash);

    if (a == NULL) {
        a = ngx_stream_sip_aor_create(shm, &v->aor, hash);
    }

    b = a ? ngx_stream_sip_binding_alloc(shm, v) : NULL;

    if (b == NULL) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_stream_sip_binding_insert(shm, a, b);

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return NGX_OK;
}


static void
ngx_stream_sip_shm_iter_aor(ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_aor_t *a)
{
    it->n = a ? a->nbindings : 0;
    it->exists = (a != NULL);
    it->next = ngx_stream_sip_shm_next_aor;
    it->data = a;
    it->cur = NULL;
}


static ngx_uint_t
ngx_stream_sip_shm_next_aor(ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_location_binding_t *v)
{
    ngx_queue_t           *q;
    ngx_stream_sip_aor_t  *a;

    a = it->data;

    if (a == NULL) {
        return 0;
    }

    q = it->cur ? ngx_queue_next((ngx_queue_t *) it->cur)
                : ngx_queue_head(&a->bindings);

    if (q == ngx_queue_sentinel(&a->bindings)) {
        return 0;
    }

    it->cur = q;

    ngx_stream_sip_shm_view(ngx_queue_data(q, ngx_stream_sip_binding_t, queue),
                            v);

    return 1;
}


static ngx_uint_t
ngx_stream_sip_shm_next_expiry(ngx_stream_sip_location_iter_t *it,
    ngx_stream_sip_location_binding_t *v)
{
    ngx_rbtree_t                   *tree;
    ngx_rbtree_node_t              *node;
    ngx_stream_sip_location_shm_t  *shm;

    shm = it->data;
    tree = &shm->sh->expire;

    if (it->cur) {
        node = ngx_rbtree_next(tree, it->cur);

    } else {
        node = (tree->root == tree->sentinel)
               ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
    }

    if (node == NULL) {
        return 0;
    }

    it->cur = node;

    ngx_stream_sip_shm_view(ngx_stream_sip_expire_binding(node), v);

    return 1;
}


static void
ngx_stream_sip_shm_view(ngx_stream_sip_binding_t *b,
    ngx_stream_sip_location_binding_t *v)
{
    u_char  *p;

    v->aor.len = b->aor->len;
    v->aor.data = b->aor->aor;

    p = b->data;

    v->contact.len = b->contact_len;
    v->contact.data = p;
    p += b->contact_len;

    v->call_id.len = b->call_id_len;
    v->call_id.data = p;
    p += b->call_id_len;

    v->source.len = b->source_len;
    v->source.data = p;
    p += b->source_len;

    v->instance.len = b->instance_len;
    v->instance.data = p;
    p += b->instance_len;

    v->reg_id.len = b->reg_id_len;
    v->reg_id.data = p;
    p += b->reg_id_len;

    v->path.len = b->path_len;
    v->path.data = p;

    v->expires = b->expires;
    v->cseq = b->cseq;
    v->branch = b->branch;
    v->chash = b->chash;
    v->q = b->q;
    v->transport = b->transport;
    v->flow = b->flow;
    v->flow_worker = b->flow_worker;
    v->id = b;
}


static ngx_stream_sip_aor_t *
ngx_stream_sip_aor_lookup(ngx_stream_sip_location_shm_t *shm, ngx_str_t *aor,
    uint32_t hash)
{
    ngx_int_t              rc;
    ngx_rbtree_node_t     *node, *sentinel;
    ngx_stream_sip_aor_t  *a;

    node = shm->sh->rbtree.root;
    sentinel = shm->sh->rbtree.sentinel;

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
ngx_stream_sip_aor_create(ngx_stream_sip_location_shm_t *shm, ngx_str_t *aor,
    uint32_t hash)
{
    ngx_stream_sip_aor_t  *a;

    a = ngx_slab_alloc_locked(shm->shpool,
                              offsetof(ngx_stream_sip_aor_t, aor) + aor->len);
    if (a == NULL) {
        return NULL;
    }

    a->node.key = hash;
    a->len = (u_short) aor->len;
    ngx_memcpy(a->aor, aor->data, aor->len);
    ngx_queue_init(&a->bindings);
    a->nbindings = 0;

    ngx_rbtree_insert(&shm->sh->rbtree, &a->node);
    shm->sh->naors++;

    return a;
}


static void
ngx_stream_sip_aor_free(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_aor_t *a)
{
    ngx_rbtree_delete(&shm->sh->rbtree, &a->node);
    ngx_slab_free_locked(shm->shpool, a);
    shm->sh->naors--;
}


/*
 * A binding is one slab allocation: the fixed fields, then contact,
 * Call-ID, source, instance, reg-id and Path.
 */

static ngx_stream_sip_binding_t *
ngx_stream_sip_binding_alloc(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_location_binding_t *v)
{
    u_char                    *p;
    ngx_stream_sip_binding_t  *b;

    if (v->contact.len > 255 || v->call_id.len > 255 || v->source.len > 255
        || v->instance.len > 255 || v->reg_id.len > 255
        || v->path.len > 65535)
    {
        return NULL;
    }

    b = ngx_slab_alloc_locked(shm->shpool,
                              offsetof(ngx_stream_sip_binding_t, data)
                              + v->contact.len + v->call_id.len
                              + v->source.len + v->instance.len
                              + v->reg_id.len + v->path.len);
    if (b == NULL) {
        return NULL;
    }

    ngx_memzero(b, offsetof(ngx_stream_sip_binding_t, data));

    b->expires = v->expires;
    b->flow = v->flow;
    b->cseq = v->cseq;
    b->branch = v->branch;
    b->chash = v->chash;
    b->q = (u_short) v->q;
    b->transport = (u_char) v->transport;
    b->flow_worker = (u_char) v->flow_worker;
    b->contact_len = (u_char) v->contact.len;
    b->call_id_len = (u_char) v->call_id.len;
    b->source_len = (u_char) v->source.len;
    b->instance_len = (u_char) v->instance.len;
    b->reg_id_len = (u_char) v->reg_id.len;
    b->path_len = (u_short) v->path.len;

    p = b->data;
    p = ngx_cpymem(p, v->contact.data, v->contact.len);
    p = ngx_cpymem(p, v->call_id.data, v->call_id.len);
    p = ngx_cpymem(p, v->source.data, v->source.len);
    p = ngx_cpymem(p, v->instance.data, v->instance.len);
    p = ngx_cpymem(p, v->reg_id.data, v->reg_id.len);
    ngx_memcpy(p, v->path.data, v->path.len);

    return b;
}


/*
 * At the end of its AOR, and in the tree of the zone's bindings by
 * expiry time, like nginx's timers: O(log n) wherever a new binding
 * goes.  A sorted list searched from the tail cost a walk past every
 * later binding of the zone, under its mutex, for each REGISTER with an
 * Expires shorter than the others'.
 */

static void
ngx_stream_sip_binding_insert(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_aor_t *a, ngx_stream_sip_binding_t *b)
{
    b->aor = a;

    ngx_queue_insert_tail(&a->bindings, &b->queue);
    a->nbindings++;
    shm->sh->nbindings++;

    b->expire.key = (ngx_rbtree_key_t) b->expires;

    ngx_rbtree_insert(&shm->sh->expire, &b->expire);
}


static void
ngx_stream_sip_binding_free(ngx_stream_sip_location_shm_t *shm,
    ngx_stream_sip_binding_t *b)
{
    ngx_stream_sip_aor_t  *a;

    a = b->aor;

    ngx_queue_remove(&b->queue);
    ngx_rbtree_delete(&shm->sh->expire, &b->expire);
    a->nbindings--;
    shm->sh->nbindings--;

    ngx_slab_free_locked(shm->shpool, b);
}


/* called with the zone locked */

static void
ngx_stream_sip_expire(ngx_stream_sip_location_shm_t *shm, time_t now)
{
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_stream_sip_aor_t      *a;
    ngx_stream_sip_binding_t  *b;

    sentinel = shm->sh->expire.sentinel;

    while (shm->sh->expire.root != sentinel) {
        node = ngx_rbtree_min(shm->sh->expire.root, sentinel);
        b = ngx_stream_sip_expire_binding(node);

        if (b->expires > now) {
            return;
        }

        a = b->aor;

        ngx_stream_sip_binding_free(shm, b);

        if (a->nbindings == 0) {
            ngx_stream_sip_aor_free(shm, a);
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


static void
ngx_stream_sip_state_timer(ngx_event_t *ev)
{
    ngx_uint_t                            i;
    ngx_stream_sip_location_t           **loc;
    ngx_stream_sip_location_main_conf_t  *lmcf;

    lmcf = ev->data;

    loc = lmcf->zones.elts;

    for (i = 0; i < lmcf->zones.nelts; i++) {

        if (loc[i]->state.len == 0) {
            loc[i]->ops->expire(loc[i], ngx_time());
            continue;
        }

        (void) ngx_stream_sip_location_file_write(loc[i], ev->log);
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_STREAM_SIP_STATE_INTERVAL);
    }
}


/* worker 0 sweeps expired bindings and writes the state files */

static ngx_int_t
ngx_stream_sip_location_init_process(ngx_cycle_t *cycle)
{
    ngx_stream_sip_location_main_conf_t  *lmcf;

    if (ngx_process != NGX_PROCESS_WORKER || ngx_worker != 0
        || cycle->conf_ctx[ngx_stream_module.index] == NULL)
    {
        return NGX_OK;
    }

    lmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                             ngx_stream_sip_location_module);

    if (lmcf == NULL || lmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    ngx_stream_sip_state_event.handler = ngx_stream_sip_state_timer;
    ngx_stream_sip_state_event.data = lmcf;
    ngx_stream_sip_state_event.log = cycle->log;
    ngx_stream_sip_state_event.cancelable = 1;

    ngx_add_timer(&ngx_stream_sip_state_event,
                  NGX_STREAM_SIP_STATE_INTERVAL);

    return NGX_OK;
}


/* the last word: the master writes the state when nginx stops */

static void
ngx_stream_sip_location_exit_master(ngx_cycle_t *cycle)
{
    ngx_uint_t                            i;
    ngx_stream_sip_location_t           **loc;
    ngx_stream_sip_location_shm_t        *shm;
    ngx_stream_sip_location_main_conf_t  *lmcf;

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_stream_module.index] == NULL)
    {
        return;
    }

    lmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                             ngx_stream_sip_location_module);

    if (lmcf == NULL) {
        return;
    }

    loc = lmcf->zones.elts;

    for (i = 0; i < lmcf->zones.nelts; i++) {
        shm = loc[i]->backend;

        if (loc[i]->state.len && shm->sh) {
            (void) ngx_stream_sip_location_file_write(loc[i], cycle->log);
        }
    }
}


static ngx_int_t
ngx_stream_sip_location_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_stream_sip_location_t  *oloc = data;

    size_t                          len;
    ngx_stream_sip_location_t      *loc;
    ngx_stream_sip_location_shm_t  *shm, *oshm;

    loc = shm_zone->data;
    shm = loc->backend;

    if (oloc) {
        oshm = oloc->backend;
        shm->sh = oshm->sh;
        shm->shpool = oshm->shpool;
        return NGX_OK;
    }

    shm->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm->sh = shm->shpool->data;
        return NGX_OK;
    }

    shm->sh = ngx_slab_alloc(shm->shpool,
                             sizeof(ngx_stream_sip_location_sh_t));
    if (shm->sh == NULL) {
        return NGX_ERROR;
    }

    shm->shpool->data = shm->sh;

    ngx_rbtree_init(&shm->sh->rbtree, &shm->sh->sentinel,
                    ngx_stream_sip_rbtree_insert_value);

    ngx_rbtree_init(&shm->sh->expire, &shm->sh->expire_sentinel,
                    ngx_rbtree_insert_timer_value);

    len = sizeof(" in sip_location_zone \"\"") + shm_zone->shm.name.len;

    shm->shpool->log_ctx = ngx_slab_alloc(shm->shpool, len);
    if (shm->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shm->shpool->log_ctx, " in sip_location_zone \"%V\"%Z",
                &shm_zone->shm.name);

    shm->shpool->log_nomem = 0;

    if (loc->state.len) {
        return ngx_stream_sip_location_file_read(loc, shm_zone->shm.log);
    }

    return NGX_OK;
}


static void *
ngx_stream_sip_location_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_location_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_location_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->zones, cf->pool, 2,
                       sizeof(ngx_stream_sip_location_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


/*
 * sip_location_zone name:size [state=path] [max_contacts=N];
 * shared memory is the one backend so far: the ops table is chosen here.
 */

static char *
ngx_stream_sip_location_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_location_main_conf_t *lmcf = conf;

    u_char                          *p;
    ssize_t                          size;
    ngx_str_t                       *value, name, s;
    ngx_int_t                        n;
    ngx_uint_t                       i;
    ngx_shm_zone_t                  *shm_zone;
    ngx_stream_sip_location_t       *loc, **lp;
    ngx_stream_sip_location_shm_t   *shm;

    value = cf->args->elts;

    loc = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_location_t));
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    shm = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_location_shm_t));
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    loc->ops = &ngx_stream_sip_location_shm_ops;
    loc->backend = shm;

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
                                     &ngx_stream_sip_location_module);
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
    shm->shm_zone = shm_zone;
    loc->name = shm_zone->shm.name;

    lp = ngx_array_push(&lmcf->zones);
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
