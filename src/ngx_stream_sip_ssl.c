
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * TLS towards peers: sips: and transport=tls next hops, and every peer
 * of sip_pass with "sip_ssl on".  The directives are proxy_ssl_*'s, with
 * the same meaning, on the same nginx functions: a client SSL context
 * per server, made when the configuration is read.  The handshake runs
 * on a connection of ours once it is connected (ngx_stream_sip_flow.c),
 * before it becomes a session; a failed verification fails the flow and
 * with it the branches waiting for it (503, or the next peer).
 */


#if (NGX_STREAM_SSL)

static ngx_int_t ngx_stream_sip_ssl_set_name(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name);
static ngx_int_t ngx_stream_sip_ssl_init(ngx_conf_t *cf,
    ngx_stream_sip_ssl_srv_conf_t *conf);

#endif

static void *ngx_stream_sip_ssl_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_ssl_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);


#if (NGX_STREAM_SSL)

static ngx_conf_bitmask_t  ngx_stream_sip_ssl_protocols[] = {
    { ngx_string("SSLv2"), NGX_SSL_SSLv2 },
    { ngx_string("SSLv3"), NGX_SSL_SSLv3 },
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};

#endif


static ngx_command_t  ngx_stream_sip_ssl_commands[] = {

#if (NGX_STREAM_SSL)

    { ngx_string("sip_ssl"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, enable),
      NULL },

    { ngx_string("sip_ssl_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, certificate),
      NULL },

    { ngx_string("sip_ssl_certificate_key"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, certificate_key),
      NULL },

    { ngx_string("sip_ssl_trusted_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, trusted_certificate),
      NULL },

    { ngx_string("sip_ssl_verify"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, verify),
      NULL },

    { ngx_string("sip_ssl_verify_depth"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, verify_depth),
      NULL },

    { ngx_string("sip_ssl_name"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, name),
      NULL },

    { ngx_string("sip_ssl_server_name"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, server_name),
      NULL },

    { ngx_string("sip_ssl_protocols"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, protocols),
      &ngx_stream_sip_ssl_protocols },

    { ngx_string("sip_ssl_ciphers"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, ciphers),
      NULL },

    { ngx_string("sip_ssl_session_reuse"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_ssl_srv_conf_t, session_reuse),
      NULL },

#endif

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_ssl_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_ssl_create_srv_conf,    /* create server configuration */
    ngx_stream_sip_ssl_merge_srv_conf      /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_ssl_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_ssl_module_ctx,        /* module context */
    ngx_stream_sip_ssl_commands,           /* module directives */
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


#if (NGX_STREAM_SSL)

/*
 * The client handshake on a connected flow.  NGX_OK: done, "c" may
 * become a session; NGX_AGAIN: "done" is called when it is over (with
 * c->ssl->handshaked telling how); NGX_ERROR: failed.
 */

ngx_int_t
ngx_stream_sip_ssl_connect(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name,
    ngx_connection_handler_pt done)
{
    ngx_int_t  rc;

    if (sslcf == NULL || sslcf->ssl == NULL) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "SIP proxy: no TLS for next hops configured here");
        return NGX_ERROR;
    }

    if (ngx_ssl_create_connection(sslcf->ssl, c,
                                  NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_stream_sip_ssl_set_name(c, sslcf, name) != NGX_OK) {
        return NGX_ERROR;
    }

    if (sslcf->session_reuse && sslcf->session) {
        if (ngx_ssl_set_session(c, sslcf->session) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    c->log->action = "SSL handshaking to next hop";

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = done;
        return NGX_AGAIN;
    }

    return rc == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* after the handshake: what verification asks, and the session kept */

ngx_int_t
ngx_stream_sip_ssl_verify(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name)
{
    long                rc;
    ngx_str_t           host;
    ngx_ssl_session_t  *session;

    if (!c->ssl || !c->ssl->handshaked) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "SIP proxy: TLS handshake with next hop failed");
        return NGX_ERROR;
    }

    if (sslcf->verify) {
        rc = SSL_get_verify_result(c->ssl->connection);

        if (rc != X509_V_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "SIP proxy: next hop's certificate verify error: "
                          "(%l:%s)", rc, X509_verify_cert_error_string(rc));
            return NGX_ERROR;
        }

        host = sslcf->name.len ? sslcf->name : *name;

        if (ngx_ssl_check_host(c, &host) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "SIP proxy: next hop's certificate does not "
                          "match \"%V\"", &host);
            return NGX_ERROR;
        }
    }

    if (sslcf->session_reuse) {
        session = ngx_ssl_get_session(c);

        if (session) {
            if (sslcf->session) {
                ngx_ssl_free_session(sslcf->session);
            }

            sslcf->session = session;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_ssl_set_name(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name)
{
    u_char     *p;
    ngx_str_t   host;

    host = sslcf->name.len ? sslcf->name : *name;

    if (!sslcf->server_name || host.len == 0 || host.data[0] == '['
        || ngx_inet_addr(host.data, host.len) != INADDR_NONE)
    {
        /* RFC 6066: no IP addresses in SNI */
        return NGX_OK;
    }

#ifdef SSL_CTRL_SET_TLSEXT_HOSTNAME

    p = ngx_pnalloc(c->pool, host.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(p, host.data, host.len + 1);

    if (SSL_set_tlsext_host_name(c->ssl->connection, (char *) p) == 0) {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "SSL_set_tlsext_host_name(\"%s\") failed", p);
        return NGX_ERROR;
    }

#endif

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_ssl_init(ngx_conf_t *cf, ngx_stream_sip_ssl_srv_conf_t *conf)
{
    ngx_pool_cleanup_t  *cln;

    conf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (conf->ssl == NULL) {
        return NGX_ERROR;
    }

    conf->ssl->log = cf->log;

    if (ngx_ssl_create(conf->ssl, conf->protocols, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(conf->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = conf->ssl;

    if (ngx_ssl_ciphers(cf, conf->ssl, &conf->ciphers, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (conf->certificate.len) {

        if (conf->certificate_key.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no \"sip_ssl_certificate_key\" is defined "
                          "for certificate \"%V\"", &conf->certificate);
            return NGX_ERROR;
        }

        if (ngx_ssl_certificate(cf, conf->ssl, &conf->certificate,
                                &conf->certificate_key, NULL)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (conf->verify) {
        if (conf->trusted_certificate.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no sip_ssl_trusted_certificate for sip_ssl_verify");
            return NGX_ERROR;
        }

        if (ngx_ssl_trusted_certificate(cf, conf->ssl,
                                        &conf->trusted_certificate,
                                        conf->verify_depth)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ssl_client_session_cache(cf, conf->ssl, conf->session_reuse)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


#endif


static void *
ngx_stream_sip_ssl_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_ssl_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_ssl_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->protocols = 0;
     *     conf->certificate = { 0, NULL };
     *     conf->ssl = NULL;
     *     conf->session = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->verify = NGX_CONF_UNSET;
    conf->verify_depth = NGX_CONF_UNSET_UINT;
    conf->server_name = NGX_CONF_UNSET;
    conf->session_reuse = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_stream_sip_ssl_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_sip_ssl_srv_conf_t *prev = parent;
    ngx_stream_sip_ssl_srv_conf_t *conf = child;

    ngx_stream_sip_srv_conf_t  *sscf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->verify, prev->verify, 0);
    ngx_conf_merge_uint_value(conf->verify_depth, prev->verify_depth, 1);
    ngx_conf_merge_value(conf->server_name, prev->server_name, 0);
    ngx_conf_merge_value(conf->session_reuse, prev->session_reuse, 1);
    ngx_conf_merge_str_value(conf->certificate, prev->certificate, "");
    ngx_conf_merge_str_value(conf->certificate_key, prev->certificate_key,
                             "");
    ngx_conf_merge_str_value(conf->trusted_certificate,
                             prev->trusted_certificate, "");
    ngx_conf_merge_str_value(conf->name, prev->name, "");
    ngx_conf_merge_str_value(conf->ciphers, prev->ciphers, "DEFAULT");
    ngx_conf_merge_bitmask_value(conf->protocols, prev->protocols,
                                 (NGX_CONF_BITMASK_SET|NGX_SSL_TLSv1_2
                                  |NGX_SSL_TLSv1_3));

#if (NGX_STREAM_SSL)

    /* every SIP server may meet a sips: route: each has a context */

    sscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_sip_module);

    if (sscf->enable == 1 && ngx_stream_sip_ssl_init(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

#else

    (void) sscf;

#endif

    return NGX_CONF_OK;
}
