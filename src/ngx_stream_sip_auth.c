
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Digest authentication of REGISTER (401) and of requests from users of
 * our domains (407), RFC 3261 22 with RFC 8760's SHA-256.
 *
 * Nonces need no state to be checked (ngx_sip_auth.c); what needs state
 * shared by workers is small: the highest nc seen per nonce, so that
 * credentials cannot be replayed within the nonce's life, and failures
 * per source address, so that password guessing ends in 403.  Each has
 * its own shared zone, an rbtree with an LRU queue that drops the oldest
 * entries when the zone is full: failures from any number of sources
 * never push a nonce count out.  A nonce is bound to the address it was
 * sent to, and a failure is only counted for a nonce of the request's
 * source: a forged source address cannot lock its owner out.
 *
 * The user file is read by each worker, again when its mtime changes
 * (looked at no more than once a second): a file of htdigest lines,
 * "user:realm:HA1", HA1 being MD5 (32 hex digits) or SHA-256 (64).
 */


#define NGX_STREAM_SIP_AUTH_FAIL_WINDOW  60
#define NGX_STREAM_SIP_AUTH_MAX_FAILS    10
#define NGX_STREAM_SIP_AUTH_ZONE_SIZE    (1024 * 1024)
#define NGX_STREAM_SIP_AUTH_FAILS_SIZE   (1024 * 1024)


typedef struct {
    ngx_str_t                        user;
    ngx_str_t                        realm;
    ngx_str_t                        md5;
    ngx_str_t                        sha256;
} ngx_stream_sip_auth_user_t;


typedef struct {
    ngx_str_t                        name;
    time_t                           mtime;
    time_t                           checked;
    ngx_pool_t                      *pool;
    ngx_array_t                     *users;
} ngx_stream_sip_auth_file_t;


typedef struct {
    ngx_stream_complex_value_t      *realm;      /* NULL: off */
    ngx_stream_sip_auth_file_t      *file;
    time_t                           nonce_timeout;
    ngx_uint_t                       algs[2];     /* in the order offered */
    ngx_uint_t                       nalgs;
} ngx_stream_sip_auth_srv_conf_t;


typedef struct {
    ngx_shm_zone_t                  *zone;       /* nonce counts */
    ngx_shm_zone_t                  *fails;      /* failures by address */
    size_t                           zone_size;
    size_t                           fails_size;
} ngx_stream_sip_auth_main_conf_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      lru;

    /*
     * The time of the newest nonce whose count was dropped while it was
     * still valid: older nonces without a count are stale, not new, so
     * a full zone never lets credentials be replayed.
     */
    uint32_t                         evicted;
} ngx_stream_sip_auth_sh_t;


typedef struct {
    ngx_stream_sip_auth_sh_t        *sh;
    ngx_slab_pool_t                 *shpool;
} ngx_stream_sip_auth_zone_t;


typedef struct {
    ngx_rbtree_node_t                node;
    ngx_queue_t                      queue;
    time_t                           expires;
    uint64_t                         nc;
    uint32_t                         branch;
    ngx_uint_t                       count;
    u_char                           len;
    u_char                           data[1];
} ngx_stream_sip_auth_node_t;


static ngx_int_t ngx_stream_sip_auth_challenge(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_auth_srv_conf_t *ascf,
    ngx_str_t *realm, ngx_uint_t status, ngx_uint_t stale);
static ngx_stream_sip_auth_user_t *ngx_stream_sip_auth_user(
    ngx_stream_session_t *s, ngx_stream_sip_auth_file_t *file,
    ngx_str_t *user, ngx_str_t *realm);
static ngx_int_t ngx_stream_sip_auth_read_file(ngx_stream_sip_auth_file_t *f,
    ngx_log_t *log);
static ngx_int_t ngx_stream_sip_auth_count(ngx_shm_zone_t *zone,
    ngx_str_t *key, time_t expires, uint64_t nc, uint32_t branch,
    ngx_uint_t add, ngx_uint_t *count);
static ngx_shm_zone_t *ngx_stream_sip_auth_add_zone(ngx_conf_t *cf,
    char *name, size_t size);
static ngx_stream_sip_auth_node_t *ngx_stream_sip_auth_lookup(
    ngx_stream_sip_auth_zone_t *z, ngx_str_t *key, uint32_t hash);
static ngx_int_t ngx_stream_sip_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_stream_sip_auth_cleanup_file(void *data);
static void *ngx_stream_sip_auth_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_sip_auth_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_auth_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_stream_sip_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_auth_user_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_auth_algorithms(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_stream_sip_auth_zone_size(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_stream_sip_auth_commands[] = {

    { ngx_string("sip_auth"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_sip_auth,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_auth_user_file"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_sip_auth_user_file,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_auth_algorithms"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_sip_auth_algorithms,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_auth_zone_size"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_stream_sip_auth_zone_size,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_auth_nonce_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_auth_srv_conf_t, nonce_timeout),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_auth_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_stream_sip_auth_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_auth_create_srv_conf,   /* create server configuration */
    ngx_stream_sip_auth_merge_srv_conf     /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_auth_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_auth_module_ctx,       /* module context */
    ngx_stream_sip_auth_commands,          /* module directives */
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
 * NGX_OK: the request may go on (authenticated, or not to be challenged);
 * NGX_DONE: it was answered (a challenge, or 403).
 */

ngx_int_t
ngx_stream_sip_auth_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    u_char                          *p, expect[NGX_SIP_DIGEST_LEN];
    u_char                           key[NGX_SIP_NONCE_LEN + 1];
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        realm, reason, *ha1, k, *aor_user;
    ngx_uint_t                       i, status, id, count;
    ngx_sip_msg_t                   *m;
    ngx_sip_header_t                *h, *found;
    ngx_sip_credentials_t            cr, c;
    ngx_stream_sip_auth_user_t       *u;
    ngx_stream_sip_auth_srv_conf_t   *ascf;
    ngx_stream_sip_auth_main_conf_t  *amcf;

    ascf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_auth_module);
    amcf = ngx_stream_get_module_main_conf(s, ngx_stream_sip_auth_module);
    m = &ctx->msg;

    if (ascf->realm == NULL || ascf->file == NULL
        || m->method_id == NGX_SIP_ACK || m->method_id == NGX_SIP_CANCEL
        || m->to.tag.len)
    {
        return NGX_OK;
    }

    if (m->method_id == NGX_SIP_REGISTER) {
        status = 401;
        id = NGX_SIP_HDR_AUTHORIZATION;
        aor_user = &m->to.uri.user;

    } else if (ngx_stream_sip_is_local(s, &m->from.uri)
               && !(m->ruri.user.len == 0
                    && ngx_stream_sip_is_local(s, &m->ruri)))
    {
        /* from one of ours, and not to the server itself (a keepalive) */

        status = 407;
        id = NGX_SIP_HDR_PROXY_AUTHORIZATION;
        aor_user = &m->from.uri.user;

    } else if (ngx_stream_sip_is_local(s, &m->ruri)) {

        /* from elsewhere to us: anybody may call our users */
        return NGX_OK;

    } else {

        /*
         * From another domain, whose users we cannot challenge, to
         * another domain: relayed only for a trusted source (realm
         * "off"), never to sip_pass (a PBX, a carrier) for anybody.
         */

        status = 403;
        id = 0;
        aor_user = NULL;
    }

    if (ngx_stream_complex_value(s, ascf->realm, &realm) != NGX_OK) {
        return NGX_ERROR;
    }

    if (realm.len == 0
        || (realm.len == 3 && ngx_strncmp(realm.data, "off", 3) == 0))
    {
        return NGX_OK;
    }

    if (status == 403) {
        ngx_str_set(&reason, "Relaying Forbidden: From Is Not Our Domain");
        ngx_stream_sip_respond(s, ctx, 403, &reason, NULL);
        return NGX_DONE;
    }

    /* the credentials for our realm, of all the client sent */

    found = NULL;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != id
            || ngx_sip_parse_credentials(&h->value, &c) != NGX_OK
            || c.realm.len != realm.len
            || ngx_strncmp(c.realm.data, realm.data, realm.len) != 0)
        {
            continue;
        }

        found = h;
        cr = c;
        ctx->auth_header = i + 1;
        break;
    }

    if (found == NULL
        || (cr.alg != ascf->algs[0]
            && (ascf->nalgs == 1 || cr.alg != ascf->algs[1])))
    {
        return ngx_stream_sip_auth_challenge(s, ctx, ascf, &realm, status,
                                             0);
    }

    rc = ngx_sip_nonce_check(&cr.nonce, ngx_stream_sip_key, &realm,
                             &s->connection->addr_text,
                             (uint32_t) ngx_time(),
                             (uint32_t) ascf->nonce_timeout);

    if (rc != NGX_OK) {

        /*
         * A nonce we made, but too old: stale (RFC 7616 3.3).  One not
         * made for this address (a forged source, or an address that
         * changed) is not a failure: a new challenge, to that address.
         */

        return ngx_stream_sip_auth_challenge(s, ctx, ascf, &realm, status,
                                             rc == NGX_DECLINED);
    }

    /* guessing passwords from one address ends for a while */

    p = ngx_cpymem(key, "f", 1);
    k.data = key;
    k.len = (ngx_cpymem(p, s->connection->addr_text.data,
                        ngx_min(s->connection->addr_text.len,
                                NGX_SIP_NONCE_LEN))
             - key);

    if (ngx_stream_sip_auth_count(amcf->fails, &k, 0, 0, 0, 0, &count)
        == NGX_OK
        && count >= NGX_STREAM_SIP_AUTH_MAX_FAILS)
    {
        ngx_str_set(&reason, "Too Many Failed Authentications");
        ngx_stream_sip_respond(s, ctx, 403, &reason, NULL);
        return NGX_DONE;
    }

    u = ngx_stream_sip_auth_user(s, ascf->file, &cr.username, &realm);
    ha1 = u ? (cr.alg == NGX_SIP_AUTH_SHA256 ? &u->sha256 : &u->md5) : NULL;

    len = 0;

    if (ha1 && ha1->len) {
        len = ngx_sip_digest_response(&cr, ha1, &m->method, expect);
    }

    if (len == 0 || len != cr.response.len
        || !ngx_sip_auth_equal(expect, cr.response.data, len))
    {
        /* an unknown user fails exactly as a wrong password does */

        ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                      "SIP auth failed for \"%V\" from %V", &cr.username,
                      &s->connection->addr_text);

        (void) ngx_stream_sip_auth_count(amcf->fails, &k,
                                         ngx_time()
                                         + NGX_STREAM_SIP_AUTH_FAIL_WINDOW,
                                         0, 0, 1, &count);

        return ngx_stream_sip_auth_challenge(s, ctx, ascf, &realm, status,
                                             0);
    }

    /* the same nc twice is a replay, unless it is a retransmission */

    p = ngx_cpymem(key, "n", 1);
    p = ngx_cpymem(p, cr.nonce.data, NGX_SIP_NONCE_LEN);
    k.len = p - key;

    if (ngx_stream_sip_auth_count(amcf->zone, &k,
                                  ngx_time() + ascf->nonce_timeout,
                                  cr.qop.len ? cr.nc_value : 0,
                                  ngx_crc32_short(m->via.branch.data,
                                                  m->via.branch.len),
                                  1, &count)
        == NGX_DECLINED)
    {
        ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                      "SIP auth: nonce count replayed for \"%V\" from %V",
                      &cr.username, &s->connection->addr_text);

        return ngx_stream_sip_auth_challenge(s, ctx, ascf, &realm, status,
                                             1);
    }

    if (aor_user->len != cr.username.len
        || ngx_strncmp(aor_user->data, cr.username.data, cr.username.len)
           != 0)
    {
        if (status == 401) {
            ngx_str_set(&reason, "Authenticated User Does Not Match To");

        } else {
            ngx_str_set(&reason, "Authenticated User Does Not Match From");
        }

        ngx_stream_sip_respond(s, ctx, 403, &reason, NULL);
        return NGX_DONE;
    }

    return NGX_OK;
}


/* whether a user of ours exists, for 480 instead of 404 */

ngx_uint_t
ngx_stream_sip_auth_known(ngx_stream_session_t *s, ngx_str_t *user)
{
    ngx_str_t                        realm;
    ngx_stream_sip_auth_srv_conf_t  *ascf;

    ascf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_auth_module);

    if (ascf->realm == NULL || ascf->file == NULL
        || ngx_stream_complex_value(s, ascf->realm, &realm) != NGX_OK)
    {
        return 0;
    }

    return ngx_stream_sip_auth_user(s, ascf->file, user, &realm) != NULL;
}


static ngx_int_t
ngx_stream_sip_auth_challenge(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_auth_srv_conf_t *ascf,
    ngx_str_t *realm, ngx_uint_t status, ngx_uint_t stale)
{
    u_char      *p, nonce[NGX_SIP_NONCE_LEN];
    size_t       len;
    ngx_str_t    reason, extra, name;
    ngx_uint_t   i;

    ngx_sip_nonce_make(nonce, (uint32_t) ngx_time(), (uint32_t) ngx_random(),
                       ngx_stream_sip_key, realm, &s->connection->addr_text);

    if (status == 401) {
        ngx_str_set(&name, "WWW-Authenticate");
        ngx_str_set(&reason, "Unauthorized");

    } else {
        ngx_str_set(&name, "Proxy-Authenticate");
        ngx_str_set(&reason, "Proxy Authentication Required");
    }

    len = 2 * (sizeof(": Digest realm=\"\", nonce=\"\", algorithm=SHA-256,"
                      " qop=\"auth\", stale=true" CRLF)
               + name.len + realm->len + NGX_SIP_NONCE_LEN);

    p = ngx_pnalloc(s->connection->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the client takes the first it supports (RFC 8760 2.4) */

    extra.data = p;

    for (i = 0; i < ascf->nalgs; i++) {
        p = ngx_sprintf(p, "%V: Digest realm=\"%V\", nonce=\"%*s\", "
                           "algorithm=%s, qop=\"auth\"%s" CRLF,
                        &name, realm, (size_t) NGX_SIP_NONCE_LEN, nonce,
                        ascf->algs[i] == NGX_SIP_AUTH_SHA256 ? "SHA-256"
                                                             : "MD5",
                        stale ? ", stale=true" : "");
    }

    extra.len = p - extra.data;

    ngx_stream_sip_respond(s, ctx, status, &reason, &extra);

    return NGX_DONE;
}


static ngx_stream_sip_auth_user_t *
ngx_stream_sip_auth_user(ngx_stream_session_t *s,
    ngx_stream_sip_auth_file_t *file, ngx_str_t *user, ngx_str_t *realm)
{
    ngx_uint_t                   i;
    ngx_stream_sip_auth_user_t  *u;

    if (file->checked != ngx_time()) {
        file->checked = ngx_time();
        (void) ngx_stream_sip_auth_read_file(file, s->connection->log);
    }

    if (file->users == NULL) {
        return NULL;
    }

    u = file->users->elts;

    for (i = 0; i < file->users->nelts; i++) {
        if (u[i].user.len == user->len
            && u[i].realm.len == realm->len
            && ngx_strncmp(u[i].user.data, user->data, user->len) == 0
            && ngx_strncmp(u[i].realm.data, realm->data, realm->len) == 0)
        {
            return &u[i];
        }
    }

    return NULL;
}


/* the file again when it changed; the old users stay if it is unreadable */

static ngx_int_t
ngx_stream_sip_auth_read_file(ngx_stream_sip_auth_file_t *f, ngx_log_t *log)
{
    u_char                      *buf, *p, *end, *line, *c1, *c2, *eol;
    size_t                       size;
    ssize_t                      n;
    ngx_fd_t                     fd;
    ngx_str_t                    ha1;
    ngx_uint_t                   i, lineno;
    ngx_pool_t                  *pool;
    ngx_array_t                 *users;
    ngx_file_info_t              fi;
    ngx_stream_sip_auth_user_t  *u, *all;

    fd = ngx_open_file(f->name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &f->name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_mtime(&fi) == f->mtime)
    {
        ngx_close_file(fd);
        return NGX_OK;
    }

    size = (size_t) ngx_file_size(&fi);

    /* the pool outlives the request whose log "log" may be */

    pool = ngx_create_pool(size + 1024, ngx_cycle->log);
    if (pool == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(pool, size + 1);
    users = ngx_array_create(pool, 16, sizeof(ngx_stream_sip_auth_user_t));

    if (buf == NULL || users == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, buf, size);

    if (n == -1 || (size_t) n != size) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      ngx_read_fd_n " \"%V\" failed", &f->name);
        goto failed;
    }

    ngx_close_file(fd);
    fd = NGX_INVALID_FILE;

    p = buf;
    end = buf + size;
    lineno = 0;

    while (p < end) {
        line = p;
        eol = ngx_strlchr(p, end, LF);

        if (eol == NULL) {
            eol = end;
        }

        p = eol + 1;
        lineno++;

        if (eol > line && eol[-1] == CR) {
            eol--;
        }

        if (eol == line || *line == '#') {
            continue;
        }

        c1 = ngx_strlchr(line, eol, ':');
        c2 = c1 ? ngx_strlchr(c1 + 1, eol, ':') : NULL;

        ha1.data = c2 ? c2 + 1 : NULL;
        ha1.len = c2 ? (size_t) (eol - c2 - 1) : 0;

        if (c2 == NULL || c1 == line || (ha1.len != 32 && ha1.len != 64)) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "SIP auth: bad line %ui in \"%V\"", lineno,
                          &f->name);
            continue;
        }

        for (i = 0; i < ha1.len; i++) {
            ha1.data[i] = ngx_tolower(ha1.data[i]);
        }

        /* one entry per user and realm, with either HA1 or both */

        all = users->elts;
        u = NULL;

        for (i = 0; i < users->nelts; i++) {
            if (all[i].user.len == (size_t) (c1 - line)
                && all[i].realm.len == (size_t) (c2 - c1 - 1)
                && ngx_strncmp(all[i].user.data, line, c1 - line) == 0
                && ngx_strncmp(all[i].realm.data, c1 + 1, c2 - c1 - 1) == 0)
            {
                u = &all[i];
                break;
            }
        }

        if (u == NULL) {
            u = ngx_array_push(users);
            if (u == NULL) {
                goto failed;
            }

            ngx_memzero(u, sizeof(ngx_stream_sip_auth_user_t));

            u->user.data = line;
            u->user.len = c1 - line;
            u->realm.data = c1 + 1;
            u->realm.len = c2 - c1 - 1;
        }

        if (ha1.len == 32) {
            u->md5 = ha1;

        } else {
            u->sha256 = ha1;
        }
    }

    if (f->pool) {
        ngx_destroy_pool(f->pool);
    }

    f->pool = pool;
    f->users = users;
    f->mtime = ngx_file_mtime(&fi);

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "SIP auth: %ui users read from \"%V\"", users->nelts,
                  &f->name);

    return NGX_OK;

failed:

    if (fd != NGX_INVALID_FILE) {
        ngx_close_file(fd);
    }

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/*
 * A counter in a shared zone: with "add", the nc of a nonce moves on
 * (NGX_DECLINED when it does not: a replay, unless the branch is the
 * same, which makes it a retransmission; or when the nonce is older than
 * one whose count the zone had to drop), or a failure count goes up.
 * Without "add", the current count.  Expired entries count as none.
 */

static ngx_int_t
ngx_stream_sip_auth_count(ngx_shm_zone_t *zone, ngx_str_t *key,
    time_t expires, uint64_t nc, uint32_t branch, ngx_uint_t add,
    ngx_uint_t *count)
{
    size_t                       n;
    uint32_t                     hash;
    uint64_t                     issued;
    ngx_int_t                    rc;
    ngx_str_t                    part;
    ngx_queue_t                 *q;
    ngx_stream_sip_auth_zone_t  *z;
    ngx_stream_sip_auth_node_t  *e;

    *count = 0;

    if (zone == NULL) {
        return NGX_OK;
    }

    z = zone->data;
    hash = ngx_crc32_short(key->data, key->len);
    rc = NGX_OK;

    ngx_shmtx_lock(&z->shpool->mutex);

    e = ngx_stream_sip_auth_lookup(z, key, hash);

    if (e && e->expires <= ngx_time()) {
        ngx_queue_remove(&e->queue);
        ngx_rbtree_delete(&z->sh->rbtree, &e->node);
        ngx_slab_free_locked(z->shpool, e);
        e = NULL;
    }

    if (!add) {
        *count = e ? e->count : 0;
        goto done;
    }

    if (e) {
        if (key->data[0] == 'n') {
            if (nc > e->nc) {
                e->nc = nc;
                e->branch = branch;

            } else if (nc != e->nc || branch != e->branch) {
                rc = NGX_DECLINED;
            }

        } else {
            e->count++;
        }

        *count = e->count;

        ngx_queue_remove(&e->queue);
        ngx_queue_insert_head(&z->sh->lru, &e->queue);

        goto done;
    }

    /* "n", then the nonce, whose first 8 hex digits are its time */

    issued = 0;

    if (key->data[0] == 'n') {
        part.data = key->data + 1;
        part.len = 8;

        if (ngx_sip_hex_decode(part.data, part.len, &issued) != NGX_OK
            || (uint32_t) issued <= z->sh->evicted)
        {
            rc = NGX_DECLINED;
            goto done;
        }
    }

    n = offsetof(ngx_stream_sip_auth_node_t, data) + key->len;

    e = ngx_slab_alloc_locked(z->shpool, n);

    if (e == NULL && !ngx_queue_empty(&z->sh->lru)) {

        /* full: the least recently used entry goes */

        q = ngx_queue_last(&z->sh->lru);
        e = ngx_queue_data(q, ngx_stream_sip_auth_node_t, queue);

        if (e->data[0] == 'n' && e->expires > ngx_time()) {
            part.data = e->data + 1;
            part.len = 8;

            if (ngx_sip_hex_decode(part.data, part.len, &issued) == NGX_OK
                && (uint32_t) issued > z->sh->evicted)
            {
                z->sh->evicted = (uint32_t) issued;
            }
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&z->sh->rbtree, &e->node);
        ngx_slab_free_locked(z->shpool, e);

        e = ngx_slab_alloc_locked(z->shpool, n);
    }

    if (e == NULL) {
        goto done;
    }

    e->node.key = hash;
    e->expires = expires;
    e->nc = nc;
    e->branch = branch;
    e->count = 1;
    e->len = (u_char) key->len;
    ngx_memcpy(e->data, key->data, key->len);

    ngx_rbtree_insert(&z->sh->rbtree, &e->node);
    ngx_queue_insert_head(&z->sh->lru, &e->queue);

    *count = 1;

done:

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


static ngx_stream_sip_auth_node_t *
ngx_stream_sip_auth_lookup(ngx_stream_sip_auth_zone_t *z, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_stream_sip_auth_node_t  *e;

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        e = (ngx_stream_sip_auth_node_t *) node;

        rc = ngx_memn2cmp(key->data, e->data, key->len, (size_t) e->len);

        if (rc == 0) {
            return e;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_stream_sip_auth_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_stream_sip_auth_node_t   *e, *et;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            e = (ngx_stream_sip_auth_node_t *) node;
            et = (ngx_stream_sip_auth_node_t *) temp;

            p = (ngx_memn2cmp(e->data, et->data, e->len, et->len) < 0)
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
ngx_stream_sip_auth_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_stream_sip_auth_zone_t  *ozone = data;

    ngx_stream_sip_auth_zone_t  *z;

    z = shm_zone->data;

    if (ozone) {
        z->sh = ozone->sh;
        z->shpool = ozone->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool, sizeof(ngx_stream_sip_auth_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_stream_sip_auth_rbtree_insert);
    ngx_queue_init(&z->sh->lru);
    z->sh->evicted = 0;

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


static void *
ngx_stream_sip_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_auth_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_auth_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    amcf->zone_size = NGX_STREAM_SIP_AUTH_ZONE_SIZE;
    amcf->fails_size = NGX_STREAM_SIP_AUTH_FAILS_SIZE;

    return amcf;
}


static void *
ngx_stream_sip_auth_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_auth_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_auth_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->realm = NGX_CONF_UNSET_PTR;
    conf->file = NGX_CONF_UNSET_PTR;
    conf->nonce_timeout = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_stream_sip_auth_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_sip_auth_srv_conf_t *prev = parent;
    ngx_stream_sip_auth_srv_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->realm, prev->realm, NULL);
    ngx_conf_merge_ptr_value(conf->file, prev->file, NULL);
    ngx_conf_merge_sec_value(conf->nonce_timeout, prev->nonce_timeout, 300);

    if (conf->nalgs == 0) {
        if (prev->nalgs) {
            conf->nalgs = prev->nalgs;
            conf->algs[0] = prev->algs[0];
            conf->algs[1] = prev->algs[1];

        } else {
            /*
             * MD5 alone: libre (baresip 1.0) gives up on a challenge
             * set with any SHA-256 in it, and sipsak, SIPp 3.6 and
             * JsSIP answer the first challenge whatever it is
             */

            conf->nalgs = 1;
            conf->algs[0] = NGX_SIP_AUTH_MD5;
        }
    }

    if (conf->realm && conf->file == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sip_auth\" needs \"sip_auth_user_file\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* sip_auth realm | off | $variable; */

static char *
ngx_stream_sip_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_auth_srv_conf_t *ascf = conf;

    ngx_str_t                           *value;
    ngx_stream_sip_auth_main_conf_t     *amcf;
    ngx_stream_compile_complex_value_t   ccv;

    if (ascf->realm != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ascf->realm = NULL;
        return NGX_CONF_OK;
    }

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '"')) {
        return "must not contain quotes";
    }

    ascf->realm = ngx_palloc(cf->pool, sizeof(ngx_stream_complex_value_t));
    if (ascf->realm == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = ascf->realm;

    if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * Zones for all servers: nonce counts, and failures per address
     * apart, so that no number of failures can push a count out.
     */

    amcf = ngx_stream_conf_get_module_main_conf(cf,
                                                ngx_stream_sip_auth_module);

    if (amcf->zone == NULL) {
        amcf->zone = ngx_stream_sip_auth_add_zone(cf, "ngx_sip_auth",
                                                  amcf->zone_size);
        amcf->fails = ngx_stream_sip_auth_add_zone(cf, "ngx_sip_auth_fails",
                                                   amcf->fails_size);

        if (amcf->zone == NULL || amcf->fails == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_shm_zone_t *
ngx_stream_sip_auth_add_zone(ngx_conf_t *cf, char *name, size_t size)
{
    ngx_str_t                    n;
    ngx_shm_zone_t              *zone;
    ngx_stream_sip_auth_zone_t  *z;

    n.data = (u_char *) name;
    n.len = ngx_strlen(name);

    zone = ngx_shared_memory_add(cf, &n, size, &ngx_stream_sip_auth_module);
    if (zone == NULL) {
        return NULL;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_auth_zone_t));
    if (z == NULL) {
        return NULL;
    }

    zone->data = z;
    zone->init = ngx_stream_sip_auth_init_zone;

    return zone;
}


static char *
ngx_stream_sip_auth_user_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_auth_srv_conf_t *ascf = conf;

    ngx_str_t                   *value;
    ngx_pool_cleanup_t          *cln;
    ngx_stream_sip_auth_file_t  *f;

    if (ascf->file != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    f = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_auth_file_t));
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    f->name = value[1];

    if (ngx_conf_full_name(cf->cycle, &f->name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* read now, so that a missing file stops the start, not a call */

    if (ngx_stream_sip_auth_read_file(f, cf->log) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_stream_sip_auth_cleanup_file;
    cln->data = f;

    f->checked = ngx_time();
    ascf->file = f;

    return NGX_CONF_OK;
}


/* sip_auth_algorithms SHA-256 | MD5 ...; in the order of the challenges */

static char *
ngx_stream_sip_auth_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_sip_auth_srv_conf_t *ascf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, alg;

    if (ascf->nalgs) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcasecmp(value[i].data, (u_char *) "SHA-256") == 0) {
            alg = NGX_SIP_AUTH_SHA256;

        } else if (ngx_strcasecmp(value[i].data, (u_char *) "MD5") == 0) {
            alg = NGX_SIP_AUTH_MD5;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown algorithm \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ascf->nalgs && ascf->algs[0] == alg) {
            return "lists an algorithm twice";
        }

        ascf->algs[ascf->nalgs++] = alg;
    }

    return NGX_CONF_OK;
}


/*
 * sip_auth_zone_size nonces fails; the zones are made by the first
 * sip_auth, before or after this
 */

static char *
ngx_stream_sip_auth_zone_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_sip_auth_main_conf_t *amcf = conf;

    ssize_t      size[2];
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 0; i < 2; i++) {
        size[i] = ngx_parse_size(&value[i + 1]);

        if (size[i] == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid size \"%V\"", &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        if (size[i] < (ssize_t) (8 * ngx_pagesize)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "size \"%V\" is too small", &value[i + 1]);
            return NGX_CONF_ERROR;
        }
    }

    amcf->zone_size = size[0];
    amcf->fails_size = size[1];

    if (amcf->zone) {
        amcf->zone->shm.size = size[0];
        amcf->fails->shm.size = size[1];
    }

    return NGX_CONF_OK;
}


static void
ngx_stream_sip_auth_cleanup_file(void *data)
{
    ngx_stream_sip_auth_file_t  *f = data;

    if (f->pool) {
        ngx_destroy_pool(f->pool);
        f->pool = NULL;
    }
}
