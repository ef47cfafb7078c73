
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * sip_debug_delay: a phase that makes every request but ACK and CANCEL
 * wait for a time, on a timer, before the phases after it.  For testing
 * the phase engine (a request that waits, as one waiting for a DNS answer
 * or a store would): off by default, never for production.  ACK and
 * CANCEL follow their INVITE at once: a CANCEL of an INVITE still
 * waiting is answered by the engine.
 */


typedef struct {
    ngx_msec_t                  delay;
} ngx_stream_sip_delay_srv_conf_t;


static void ngx_stream_sip_delay_handler(ngx_event_t *ev);
static void ngx_stream_sip_delay_cancel(void *data);
static void *ngx_stream_sip_delay_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_delay_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);


static ngx_command_t  ngx_stream_sip_delay_commands[] = {

    { ngx_string("sip_debug_delay"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_delay_srv_conf_t, delay),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_delay_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_delay_create_srv_conf,  /* create server configuration */
    ngx_stream_sip_delay_merge_srv_conf    /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_delay_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_delay_module_ctx,      /* module context */
    ngx_stream_sip_delay_commands,         /* module directives */
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


ngx_int_t
ngx_stream_sip_delay_phase(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_str_t                         reason, extra;
    ngx_event_t                      *ev;
    ngx_connection_t                 *c;
    ngx_stream_sip_delay_srv_conf_t  *dscf;

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_delay_module);

    if (dscf->delay == 0
        || ctx->msg.method_id == NGX_SIP_ACK
        || ctx->msg.method_id == NGX_SIP_CANCEL)
    {
        return NGX_DECLINED;
    }

    c = s->connection;

    /* in the message's pool: it lives while the message waits */

    ev = ngx_pcalloc(c->pool, sizeof(ngx_event_t));
    if (ev == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_stream_sip_phase_wait(s, ctx, ngx_stream_sip_delay_cancel, ev);

    if (rc == NGX_BUSY) {
        ngx_str_set(&reason, "Too Many Requests Waiting");
        ngx_str_set(&extra, "Retry-After: 5" CRLF);
        ngx_stream_sip_respond(s, ctx, 503, &reason, &extra);
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ev->handler = ngx_stream_sip_delay_handler;
    ev->data = s;
    ev->log = c->log;

    /*
     * Not cancelable: a worker leaving (nginx -s reload) finishes the
     * requests that wait before it exits.
     */

    ngx_add_timer(ev, dscf->delay);

    return NGX_AGAIN;
}


ngx_uint_t
ngx_stream_sip_delay_enabled(ngx_stream_session_t *s)
{
    ngx_stream_sip_delay_srv_conf_t  *dscf;

    dscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_delay_module);

    return dscf->delay != 0;
}


static void
ngx_stream_sip_delay_handler(ngx_event_t *ev)
{
    ngx_stream_session_t  *s;

    s = ev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, ev->log, 0, "sip debug delay over");

    ngx_stream_sip_phase_resume(s, NGX_DECLINED);
}


static void
ngx_stream_sip_delay_cancel(void *data)
{
    ngx_event_t  *ev = data;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}


static void *
ngx_stream_sip_delay_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_delay_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_delay_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->delay = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_stream_sip_delay_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_sip_delay_srv_conf_t  *prev = parent;
    ngx_stream_sip_delay_srv_conf_t  *conf = child;

    ngx_conf_merge_msec_value(conf->delay, prev->delay, 0);

    return NGX_CONF_OK;
}
