
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * What the transactions of a worker may hold.  A request that the proxy
 * forwards makes a server transaction that lives until its final answer
 * and then some (Timer B 32 s without an answer, Timer C 180 s once one
 * rang), whoever sent it and without any login: a flood of INVITEs with
 * fresh branches to a next hop that never answers holds memory for each
 * of them.  Here the open transactions and the bytes they keep are
 * counted per worker and per source address, and a request over either
 * cap makes no transaction: 503 with Retry-After (RFC 3261 21.5.4), or,
 * with "drop", nothing over UDP.  The per-worker cap is what protects
 * the worker against many sources; the per-source one keeps one source
 * (an IPv6 /64 counts as one) from taking all of it.
 *
 * Sources are a chained hash table of this worker (keyed by SipHash with
 * the module's secret, so nobody can make them share a bucket); a
 * source's entry goes with its last transaction, so the table holds no
 * more entries than there are transactions.
 *
 * The same module carries the limits of the fan-out of one request:
 * branches per request, its lifetime, and whether a registered contact
 * may make us open a connection.
 */


struct ngx_stream_sip_tx_source_s {
    ngx_stream_sip_tnode_t           node;
    ngx_uint_t                       transactions;
    size_t                           bytes;
    u_char                           len;
    u_char                           addr[16];
};


typedef struct {
    ngx_uint_t                       count;
    ngx_uint_t                       refused;    /* since the last log */
    time_t                           logged;
} ngx_stream_sip_tx_log_t;


static ngx_stream_sip_tx_source_t *ngx_stream_sip_tx_source(
    ngx_stream_session_t *s, ngx_uint_t create);
static ngx_int_t ngx_stream_sip_tx_refuse(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_tx_limit_conf_t *tlcf,
    ngx_uint_t source, char *what);
static void *ngx_stream_sip_tx_limit_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_tx_limit_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_stream_sip_tx_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_stream_sip_tx_limit_commands[] = {

    { ngx_string("sip_transactions"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE123,
      ngx_stream_sip_tx_limit,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_transactions_per_source"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE123,
      ngx_stream_sip_tx_limit,
      NGX_STREAM_SRV_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("sip_max_branches"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_tx_limit_conf_t, max_branches),
      NULL },

    { ngx_string("sip_transaction_lifetime"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_tx_limit_conf_t, lifetime),
      NULL },

    { ngx_string("sip_contact_connect"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_tx_limit_conf_t, contact_connect),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_tx_limit_module_ctx = {
    NULL,                                    /* preconfiguration */
    NULL,                                    /* postconfiguration */

    NULL,                                    /* create main configuration */
    NULL,                                    /* init main configuration */

    ngx_stream_sip_tx_limit_create_srv_conf, /* create server configuration */
    ngx_stream_sip_tx_limit_merge_srv_conf   /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_tx_limit_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_tx_limit_module_ctx,     /* module context */
    ngx_stream_sip_tx_limit_commands,        /* module directives */
    NGX_STREAM_MODULE,                       /* module type */
    NULL,                                    /* init master */
    NULL,                                    /* init module */
    NULL,                                    /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    NULL,                                    /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


/* this worker's totals */
static ngx_uint_t               ngx_stream_sip_tx_count;
static size_t                   ngx_stream_sip_tx_bytes;
static ngx_stream_sip_table_t   ngx_stream_sip_tx_sources;
static ngx_uint_t               ngx_stream_sip_tx_sources_ready;
static ngx_stream_sip_tx_log_t  ngx_stream_sip_tx_log[2];


/*
 * Whether a new transaction of "size" bytes (the request's) may start:
 * NGX_OK with *src (to charge it to), or NGX_DONE when it was refused
 * (answered or dropped).
 */

ngx_int_t
ngx_stream_sip_tx_admit(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    size_t size, ngx_stream_sip_tx_source_t **src)
{
    size_t                           need;
    ngx_stream_sip_tx_source_t      *ts;
    ngx_stream_sip_tx_limit_conf_t  *tlcf;

    tlcf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_tx_limit_module);

    *src = NULL;
    need = NGX_STREAM_SIP_TX_OVERHEAD + size;

    if (ngx_stream_sip_tx_count >= tlcf->transactions
        || ngx_stream_sip_tx_bytes + need > tlcf->bytes)
    {
        return ngx_stream_sip_tx_refuse(s, ctx, tlcf, 0,
                                        "Too Many Transactions");
    }

    ts = ngx_stream_sip_tx_source(s, 0);

    if (ts
        && (ts->transactions >= tlcf->source_transactions
            || ts->bytes + need > tlcf->source_bytes))
    {
        return ngx_stream_sip_tx_refuse(s, ctx, tlcf, 1,
                                        "Too Many Transactions From Source");
    }

    if (ts == NULL) {
        ts = ngx_stream_sip_tx_source(s, 1);

        if (ts == NULL) {
            return ngx_stream_sip_tx_refuse(s, ctx, tlcf, 0,
                                            "Out of Memory");
        }
    }

    ts->transactions++;
    ngx_stream_sip_tx_count++;

    *src = ts;

    return NGX_OK;
}


/* bytes a transaction took (or, negative, gave back) */

void
ngx_stream_sip_tx_charge(ngx_stream_sip_tx_source_t *src, ssize_t bytes)
{
    ngx_stream_sip_tx_bytes += bytes;

    if (src) {
        src->bytes += bytes;
    }
}


/*
 * A transaction the module starts on its own (a CANCEL, a probe): under
 * the same caps, charged "need" bytes (overhead included) and to "src"
 * (NULL: to none), without a session to answer; NGX_BUSY when over.
 */

ngx_int_t
ngx_stream_sip_tx_take(ngx_stream_sip_tx_limit_conf_t *tlcf,
    ngx_stream_sip_tx_source_t *src, size_t need)
{
    if (ngx_stream_sip_tx_count >= tlcf->transactions
        || ngx_stream_sip_tx_bytes + need > tlcf->bytes)
    {
        return NGX_BUSY;
    }

    if (src
        && (src->transactions >= tlcf->source_transactions
            || src->bytes + need > tlcf->source_bytes))
    {
        return NGX_BUSY;
    }

    if (src) {
        src->transactions++;
    }

    ngx_stream_sip_tx_count++;
    ngx_stream_sip_tx_charge(src, need);

    return NGX_OK;
}


/* a transaction is over: what it held is free again */

void
ngx_stream_sip_tx_release(ngx_stream_sip_tx_source_t *src, size_t bytes)
{
    ngx_stream_sip_tx_bytes -= bytes;
    ngx_stream_sip_tx_count--;

    if (src == NULL) {
        return;
    }

    src->bytes -= bytes;

    if (--src->transactions == 0) {
        ngx_stream_sip_table_delete(&ngx_stream_sip_tx_sources, &src->node);
        ngx_free(src);
    }
}


/* this worker's figures, for the tests and the log */

void
ngx_stream_sip_tx_totals(ngx_uint_t *transactions, size_t *bytes)
{
    *transactions = ngx_stream_sip_tx_count;
    *bytes = ngx_stream_sip_tx_bytes;
}


/*
 * The source's entry: the address without port; an IPv6 address by its
 * /64, which is what one subscriber gets and can choose addresses in.
 */

static ngx_stream_sip_tx_source_t *
ngx_stream_sip_tx_source(ngx_stream_session_t *s, ngx_uint_t create)
{
    u_char                       key[16];
    size_t                       len;
    uint32_t                     hash;
    ngx_str_t                    k;
    struct sockaddr             *sa;
    ngx_stream_sip_tnode_t      *node;
    ngx_stream_sip_tx_source_t  *ts;

    sa = s->connection->sockaddr;

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        len = 8;
        ngx_memcpy(key, &((struct sockaddr_in6 *) sa)->sin6_addr, 8);
        break;
#endif

    case AF_INET:
        len = 4;
        ngx_memcpy(key, &((struct sockaddr_in *) sa)->sin_addr, 4);
        break;

    default:
        len = 0;
        break;
    }

    if (!ngx_stream_sip_tx_sources_ready) {
        if (ngx_stream_sip_table_init(&ngx_stream_sip_tx_sources, 256,
                                      ngx_cycle->log)
            != NGX_OK)
        {
            return NULL;
        }

        ngx_stream_sip_tx_sources_ready = 1;
    }

    k.data = key;
    k.len = len;
    hash = ngx_stream_sip_table_key(&k);

    for (node = ngx_stream_sip_table_bucket(&ngx_stream_sip_tx_sources, hash);
         node;
         node = node->next)
    {
        ts = (ngx_stream_sip_tx_source_t *) node;

        if (node->key == hash && ts->len == len
            && ngx_memcmp(ts->addr, key, len) == 0)
        {
            return ts;
        }
    }

    if (!create) {
        return NULL;
    }

    ts = ngx_alloc(sizeof(ngx_stream_sip_tx_source_t), ngx_cycle->log);
    if (ts == NULL) {
        return NULL;
    }

    ts->transactions = 0;
    ts->bytes = 0;
    ts->len = (u_char) len;
    ngx_memcpy(ts->addr, key, len);
    ts->node.key = hash;

    ngx_stream_sip_table_insert(&ngx_stream_sip_tx_sources, &ts->node);

    return ts;
}


static ngx_int_t
ngx_stream_sip_tx_refuse(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_tx_limit_conf_t *tlcf, ngx_uint_t source, char *what)
{
    ngx_str_t                 reason, extra;
    ngx_flag_t                drop;
    ngx_stream_sip_tx_log_t  *lg;

    drop = source ? tlcf->source_drop : tlcf->drop;

    /* a flood would flood the log too: once a second per worker */

    lg = &ngx_stream_sip_tx_log[source];
    lg->refused++;

    if (lg->logged != ngx_time()) {
        lg->logged = ngx_time();

        ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                      "SIP proxy: %ui request%s refused, %s: this worker "
                      "holds %ui transactions, %uz bytes%s",
                      lg->refused, lg->refused == 1 ? "" : "s",
                      source ? "over sip_transactions_per_source"
                             : "over sip_transactions",
                      ngx_stream_sip_tx_count, ngx_stream_sip_tx_bytes,
                      drop ? ", dropped" : "");

        lg->refused = 0;
    }

    if (drop && ctx->transport == NGX_STREAM_SIP_UDP) {
        return NGX_DONE;
    }

    if (ctx->msg.method_id == NGX_SIP_ACK) {
        return NGX_DONE;
    }

    reason.data = (u_char *) what;
    reason.len = ngx_strlen(what);
    ngx_str_set(&extra, "Retry-After: 5" CRLF);

    ngx_stream_sip_respond(s, ctx, 503, &reason, &extra);

    return NGX_DONE;
}


static void *
ngx_stream_sip_tx_limit_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_tx_limit_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_tx_limit_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->transactions = NGX_CONF_UNSET_UINT;
    conf->bytes = NGX_CONF_UNSET_SIZE;
    conf->drop = NGX_CONF_UNSET;
    conf->source_transactions = NGX_CONF_UNSET_UINT;
    conf->source_bytes = NGX_CONF_UNSET_SIZE;
    conf->source_drop = NGX_CONF_UNSET;
    conf->max_branches = NGX_CONF_UNSET;
    conf->lifetime = NGX_CONF_UNSET_MSEC;
    conf->contact_connect = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_stream_sip_tx_limit_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_sip_tx_limit_conf_t  *prev = parent;
    ngx_stream_sip_tx_limit_conf_t  *conf = child;

    ngx_conf_merge_uint_value(conf->transactions, prev->transactions, 16384);
    ngx_conf_merge_size_value(conf->bytes, prev->bytes, 64 * 1024 * 1024);
    ngx_conf_merge_value(conf->drop, prev->drop, 0);
    ngx_conf_merge_uint_value(conf->source_transactions,
                              prev->source_transactions, 2048);
    ngx_conf_merge_size_value(conf->source_bytes, prev->source_bytes,
                              16 * 1024 * 1024);
    ngx_conf_merge_value(conf->source_drop, prev->source_drop, 0);
    ngx_conf_merge_value(conf->max_branches, prev->max_branches, 12);
    ngx_conf_merge_msec_value(conf->lifetime, prev->lifetime, 300000);
    ngx_conf_merge_value(conf->contact_connect, prev->contact_connect, 0);

    if (conf->max_branches <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sip_max_branches\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* sip_transactions[_per_source] number [bytes=size] [drop] */

static char *
ngx_stream_sip_tx_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_tx_limit_conf_t  *tlcf = conf;

    size_t       size;
    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i, *count;
    size_t      *bytes;
    ngx_flag_t  *drop;

    if (cmd->offset) {
        count = &tlcf->source_transactions;
        bytes = &tlcf->source_bytes;
        drop = &tlcf->source_drop;

    } else {
        count = &tlcf->transactions;
        bytes = &tlcf->bytes;
        drop = &tlcf->drop;
    }

    if (*count != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of transactions \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    *count = n;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "bytes=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            size = ngx_parse_size(&s);
            if (size == (size_t) NGX_ERROR || size == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            *bytes = size;
            continue;
        }

        if (ngx_strcmp(value[i].data, "drop") == 0) {
            *drop = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
