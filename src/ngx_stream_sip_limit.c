
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Request rate limits in the manner of limit_req: a leaky bucket per
 * key (the source address unless told otherwise) in a shared zone, so
 * that all workers count together.  SIP requests are never delayed, as
 * limit_req can: a delayed request is retransmitted by its client, which
 * makes the flood worse.  Over the limit a request gets 503 with
 * Retry-After, or, with "drop", nothing at all (a flood over UDP should
 * not be answered: the source address may be forged).
 */


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      queue;
} ngx_stream_sip_limit_sh_t;


typedef struct {
    ngx_stream_sip_limit_sh_t       *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_uint_t                       rate;       /* per 1000 s */
    ngx_stream_complex_value_t       key;
    time_t                           logged;     /* per worker */
} ngx_stream_sip_limit_ctx_t;


typedef struct {
    ngx_rbtree_node_t                node;
    ngx_queue_t                      queue;
    ngx_msec_t                       last;
    ngx_uint_t                       excess;     /* requests * 1000 */
    u_short                          len;
    u_char                           data[1];
} ngx_stream_sip_limit_node_t;


typedef struct {
    ngx_shm_zone_t                  *zone;
    ngx_uint_t                       burst;      /* requests * 1000 */
    ngx_flag_t                       drop;
} ngx_stream_sip_limit_srv_conf_t;


static ngx_int_t ngx_stream_sip_limit_lookup(ngx_stream_sip_limit_ctx_t *ctx,
    ngx_str_t *key, ngx_uint_t burst);
static void ngx_stream_sip_limit_expire(ngx_stream_sip_limit_ctx_t *ctx,
    ngx_uint_t force);
static void ngx_stream_sip_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_stream_sip_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_stream_sip_limit_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_limit_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_stream_sip_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_stream_sip_limit_commands[] = {

    { ngx_string("sip_limit_zone"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_stream_sip_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("sip_limit"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1234,
      ngx_stream_sip_limit,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_limit_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_limit_create_srv_conf,  /* create server configuration */
    ngx_stream_sip_limit_merge_srv_conf    /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_limit_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_limit_module_ctx,      /* module context */
    ngx_stream_sip_limit_commands,         /* module directives */
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


/* NGX_OK: go on; NGX_DONE: over the limit, answered or dropped */

ngx_int_t
ngx_stream_sip_limit_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_str_t                         key, reason, extra;
    ngx_stream_sip_limit_ctx_t       *lctx;
    ngx_stream_sip_limit_srv_conf_t  *lscf;

    lscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_limit_module);

    if (lscf->zone == NULL
        || ctx->msg.method_id == NGX_SIP_ACK
        || ctx->msg.method_id == NGX_SIP_CANCEL)
    {
        /* ACK and CANCEL belong to transactions already counted */
        return NGX_OK;
    }

    lctx = lscf->zone->data;

    if (ngx_stream_complex_value(s, &lctx->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0 || key.len > 65535) {
        return NGX_OK;
    }

    ngx_shmtx_lock(&lctx->shpool->mutex);

    ngx_stream_sip_limit_expire(lctx, 0);

    rc = ngx_stream_sip_limit_lookup(lctx, &key, lscf->burst);

    ngx_shmtx_unlock(&lctx->shpool->mutex);

    if (rc != NGX_BUSY) {
        return NGX_OK;
    }

    /* a flood would flood the log too: once a second per worker */

    if (lctx->logged != ngx_time()) {
        lctx->logged = ngx_time();
        ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                      "SIP limit exceeded by \"%V\" in zone \"%V\"%s",
                      &key, &lscf->zone->shm.name,
                      lscf->drop ? ", dropped" : "");
    }

    if (lscf->drop && ctx->transport == NGX_STREAM_SIP_UDP) {
        return NGX_DONE;
    }

    ngx_str_set(&reason, "Rate Limit Exceeded");
    ngx_str_set(&extra, "Retry-After: 5" CRLF);

    ngx_stream_sip_respond(s, ctx, 503, &reason, &extra);

    return NGX_DONE;
}


static ngx_int_t
ngx_stream_sip_limit_lookup(ngx_stream_sip_limit_ctx_t *ctx, ngx_str_t *key,
    ngx_uint_t burst)
{
    size_t                        size;
    uint32_t                      hash;
    ngx_int_t                     rc, excess;
    ngx_msec_t                    now;
    ngx_msec_int_t                ms;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_stream_sip_limit_node_t  *lr;

    hash = ngx_crc32_short(key->data, key->len);
    now = ngx_current_msec;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        lr = (ngx_stream_sip_limit_node_t *) node;

        rc = ngx_memn2cmp(key->data, lr->data, key->len, (size_t) lr->len);

        if (rc != 0) {
            node = (rc < 0) ? node->left : node->right;
            continue;
        }

        ngx_queue_remove(&lr->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &lr->queue);

        ms = (ngx_msec_int_t) (now - lr->last);

        if (ms < -60000) {
            ms = 1;

        } else if (ms < 0) {
            ms = 0;
        }

        excess = lr->excess - ctx->rate * ms / 1000 + 1000;

        if (excess < 0) {
            excess = 0;
        }

        if ((ngx_uint_t) excess > burst) {
            return NGX_BUSY;
        }

        lr->excess = excess;
        lr->last = now;

        return NGX_OK;
    }

    size = offsetof(ngx_stream_sip_limit_node_t, data) + key->len;

    lr = ngx_slab_alloc_locked(ctx->shpool, size);

    if (lr == NULL) {

        /* full: the least recently seen keys go */

        ngx_stream_sip_limit_expire(ctx, 1);
        ngx_stream_sip_limit_expire(ctx, 1);

        lr = ngx_slab_alloc_locked(ctx->shpool, size);

        if (lr == NULL) {
            return NGX_OK;
        }
    }

    lr->node.key = hash;
    lr->len = (u_short) key->len;
    lr->excess = 0;
    lr->last = now;
    ngx_memcpy(lr->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, &lr->node);
    ngx_queue_insert_head(&ctx->sh->queue, &lr->queue);

    return NGX_OK;
}


/*
 * The oldest key goes when it was last seen a minute ago and its bucket
 * has run empty since, or when forced (the zone is full).
 */

static void
ngx_stream_sip_limit_expire(ngx_stream_sip_limit_ctx_t *ctx,
    ngx_uint_t force)
{
    ngx_int_t                     excess;
    ngx_msec_t                    now;
    ngx_queue_t                  *q;
    ngx_msec_int_t                ms;
    ngx_stream_sip_limit_node_t  *lr;

    if (ngx_queue_empty(&ctx->sh->queue)) {
        return;
    }

    now = ngx_current_msec;

    q = ngx_queue_last(&ctx->sh->queue);
    lr = ngx_queue_data(q, ngx_stream_sip_limit_node_t, queue);

    if (!force) {
        ms = (ngx_msec_int_t) (now - lr->last);
        ms = ngx_abs(ms);

        if (ms < 60000) {
            return;
        }

        excess = lr->excess - ctx->rate * ms / 1000;

        if (excess > 0) {
            return;
        }
    }

    ngx_queue_remove(q);
    ngx_rbtree_delete(&ctx->sh->rbtree, &lr->node);
    ngx_slab_free_locked(ctx->shpool, lr);
}


static void
ngx_stream_sip_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_stream_sip_limit_node_t   *lr, *lrt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            lr = (ngx_stream_sip_limit_node_t *) node;
            lrt = (ngx_stream_sip_limit_node_t *) temp;

            p = (ngx_memn2cmp(lr->data, lrt->data, lr->len, lrt->len) < 0)
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


static ngx_int_t
ngx_stream_sip_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_stream_sip_limit_ctx_t  *octx = data;

    size_t                       len;
    ngx_stream_sip_limit_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_stream_sip_limit_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_stream_sip_limit_rbtree_insert);
    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in sip_limit_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in sip_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


static void *
ngx_stream_sip_limit_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_limit_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_limit_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone = NGX_CONF_UNSET_PTR;
    conf->burst = NGX_CONF_UNSET_UINT;
    conf->drop = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_stream_sip_limit_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_sip_limit_srv_conf_t *prev = parent;
    ngx_stream_sip_limit_srv_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);
    ngx_conf_merge_uint_value(conf->burst, prev->burst, 0);
    ngx_conf_merge_value(conf->drop, prev->drop, 0);

    return NGX_CONF_OK;
}


/* sip_limit_zone name:size rate=Nr/s|Nr/m [key=$variable]; */

static char *
ngx_stream_sip_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                              *p;
    ssize_t                              size;
    ngx_str_t                           *value, name, s, key;
    ngx_int_t                            rate, scale;
    ngx_uint_t                           i;
    ngx_shm_zone_t                      *shm_zone;
    ngx_stream_sip_limit_ctx_t          *ctx;
    ngx_stream_compile_complex_value_t   ccv;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rate = 0;
    scale = 1;
    ngx_str_set(&key, "$remote_addr");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            p = value[i].data + value[i].len - 3;

            if (value[i].len > 8 && ngx_strncmp(p, "r/s", 3) == 0) {
                scale = 1;

            } else if (value[i].len > 8 && ngx_strncmp(p, "r/m", 3) == 0) {
                scale = 60;

            } else {
                goto invalid;
            }

            rate = ngx_atoi(value[i].data + 5, value[i].len - 8);

            if (rate <= 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0
            && value[i].len > 4)
        {
            key.data = value[i].data + 4;
            key.len = value[i].len - 4;
            continue;
        }

    invalid:

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (rate == 0) {
        return "needs \"rate=\"";
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_limit_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->rate = rate * 1000 / scale;

    ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &key;
    ccv.complex_value = &ctx->key;

    if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_stream_sip_limit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_stream_sip_limit_init_zone;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


/* sip_limit zone [burst=N] [nodelay] [drop]; */

static char *
ngx_stream_sip_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_limit_srv_conf_t *lscf = conf;

    ngx_int_t    burst;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (lscf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        lscf->zone = NULL;
        return NGX_CONF_OK;
    }

    lscf->zone = ngx_shared_memory_add(cf, &value[1], 0,
                                       &ngx_stream_sip_limit_module);
    if (lscf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    burst = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            burst = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (burst < 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid burst value \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        /* SIP requests are never delayed: nodelay is what happens anyway */

        if (ngx_strcmp(value[i].data, "nodelay") == 0) {
            continue;
        }

        if (ngx_strcmp(value[i].data, "drop") == 0) {
            lscf->drop = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lscf->drop == NGX_CONF_UNSET) {
        lscf->drop = 0;
    }

    lscf->burst = burst * 1000;

    return NGX_CONF_OK;
}
