
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * $sip_* variables: slices of the message being processed.  They are not
 * cacheable, because one stream connection carries many messages and the
 * access log is written for each.
 */


typedef enum {
    NGX_STREAM_SIP_VAR_METHOD = 0,
    NGX_STREAM_SIP_VAR_CALL_ID,
    NGX_STREAM_SIP_VAR_REQUEST_URI,
    NGX_STREAM_SIP_VAR_REQUEST_URI_USER,
    NGX_STREAM_SIP_VAR_REQUEST_URI_HOST,
    NGX_STREAM_SIP_VAR_FROM_USER,
    NGX_STREAM_SIP_VAR_FROM_HOST,
    NGX_STREAM_SIP_VAR_TO_USER,
    NGX_STREAM_SIP_VAR_TO_HOST,
    NGX_STREAM_SIP_VAR_CSEQ,
    NGX_STREAM_SIP_VAR_USER_AGENT
} ngx_stream_sip_var_e;


static ngx_int_t ngx_stream_sip_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_sip_variable_duration(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_sip_variable_status(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_sip_variable_transport(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_sip_variable_ws_origin(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_sip_variable_header(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_sip_msg_t *ngx_stream_sip_current(ngx_stream_session_t *s);
static void ngx_stream_sip_set(ngx_stream_variable_value_t *v, ngx_str_t *s);


static ngx_stream_variable_t  ngx_stream_sip_vars[] = {

    { ngx_string("sip_method"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_METHOD, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_call_id"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_CALL_ID, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_request_uri"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_REQUEST_URI, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_request_uri_user"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_REQUEST_URI_USER, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_request_uri_host"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_REQUEST_URI_HOST, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_from_user"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_FROM_USER, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_from_host"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_FROM_HOST, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_to_user"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_TO_USER, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_to_host"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_TO_HOST, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_cseq"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_CSEQ, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_user_agent"), NULL, ngx_stream_sip_variable,
      NGX_STREAM_SIP_VAR_USER_AGENT, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_status"), NULL, ngx_stream_sip_variable_status,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    /* a connection's changes once, when it turns out to be a WebSocket */
    { ngx_string("sip_transport"), NULL, ngx_stream_sip_variable_transport,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_websocket_origin"), NULL,
      ngx_stream_sip_variable_ws_origin, 0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_duration"), NULL, ngx_stream_sip_variable_duration,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("sip_header_"), NULL, ngx_stream_sip_variable_header,
      0, NGX_STREAM_VAR_NOCACHEABLE|NGX_STREAM_VAR_PREFIX, 0 },

      ngx_stream_null_variable
};


ngx_int_t
ngx_stream_sip_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_sip_vars; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_sip_msg_t *
ngx_stream_sip_current(ngx_stream_session_t *s)
{
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL || !ctx->msg_valid) {
        return NULL;
    }

    return &ctx->msg;
}


static void
ngx_stream_sip_set(ngx_stream_variable_value_t *v, ngx_str_t *s)
{
    if (s->len == 0) {
        v->not_found = 1;
        return;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;
}


static ngx_int_t
ngx_stream_sip_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    u_char            *p, *end;
    ngx_str_t          value;
    ngx_sip_msg_t     *m;
    ngx_sip_header_t  *h;

    m = ngx_stream_sip_current(s);

    if (m == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&value);

    switch (data) {

    case NGX_STREAM_SIP_VAR_METHOD:
        value = m->request ? m->method : m->cseq.method;
        break;

    case NGX_STREAM_SIP_VAR_CALL_ID:
        value = m->call_id;
        break;

    case NGX_STREAM_SIP_VAR_REQUEST_URI:
        value = m->request_uri;
        break;

    case NGX_STREAM_SIP_VAR_REQUEST_URI_USER:
        value = m->ruri.user;
        break;

    case NGX_STREAM_SIP_VAR_REQUEST_URI_HOST:
        value = m->ruri.host;
        break;

    case NGX_STREAM_SIP_VAR_FROM_USER:
        value = m->from.uri.user;
        break;

    case NGX_STREAM_SIP_VAR_FROM_HOST:
        value = m->from.uri.host;
        break;

    case NGX_STREAM_SIP_VAR_TO_USER:
        value = m->to.uri.user;
        break;

    case NGX_STREAM_SIP_VAR_TO_HOST:
        value = m->to.uri.host;
        break;

    case NGX_STREAM_SIP_VAR_CSEQ:

        /* the number, as sent */

        h = m->hdr[NGX_SIP_HDR_CSEQ];

        if (h == NULL) {
            break;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        value.data = h->value.data;
        value.len = p - h->value.data;
        break;

    case NGX_STREAM_SIP_VAR_USER_AGENT:
        h = m->hdr[NGX_SIP_HDR_USER_AGENT];

        if (h) {
            value = h->value;
        }

        break;
    }

    ngx_stream_sip_set(v, &value);

    return NGX_OK;
}


/*
 * How long the transaction a final answer ends took, from its request
 * to this answer, in seconds with milliseconds as $upstream_session_time
 */

static ngx_int_t
ngx_stream_sip_variable_duration(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    u_char                *p;
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL || !ctx->msg_valid || !ctx->has_duration) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(s->connection->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) ctx->duration / 1000,
                         ctx->duration % 1000)
             - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_variable_status(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_str_t              value;
    ngx_uint_t             status;
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL || !ctx->msg_valid) {
        v->not_found = 1;
        return NGX_OK;
    }

    status = ctx->status;

    if (status < 100 || status > 999) {
        v->not_found = 1;
        return NGX_OK;
    }

    ctx->status_text[0] = (u_char) ('0' + status / 100);
    ctx->status_text[1] = (u_char) ('0' + status / 10 % 10);
    ctx->status_text[2] = (u_char) ('0' + status % 10);

    value.data = ctx->status_text;
    value.len = 3;

    ngx_stream_sip_set(v, &value);

    return NGX_OK;
}


static ngx_int_t
ngx_stream_sip_variable_transport(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_str_t              value;
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = ngx_sip_transport(ctx->transport)->param;

    ngx_stream_sip_set(v, &value);

    return NGX_OK;
}


/* the Origin of a WebSocket's opening handshake: empty if none was sent */

static ngx_int_t
ngx_stream_sip_variable_ws_origin(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL || !ngx_stream_sip_transport_ws(ctx->transport)) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_stream_sip_set(v, &ctx->ws_origin);

    return NGX_OK;
}


/*
 * $sip_header_<name>: the first header of that name, long or compact
 * form, '_' in the variable name standing for '-'.
 */

static ngx_int_t
ngx_stream_sip_variable_header(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    u_char            ch, *want;
    size_t            len, i, k;
    ngx_uint_t        id;
    ngx_sip_msg_t    *m;
    ngx_sip_header_t *h;

    m = ngx_stream_sip_current(s);

    if (m == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    want = name->data + sizeof("sip_header_") - 1;
    len = name->len - (sizeof("sip_header_") - 1);

    /* a header we know by id has a compact form too: look it up so */

    for (id = 1; id < NGX_SIP_HDR_MAX; id++) {

        if (ngx_sip_header_names[id].len != len) {
            continue;
        }

        for (k = 0; k < len; k++) {
            ch = ngx_tolower(ngx_sip_header_names[id].data[k]);

            if (ch == '-') {
                ch = '_';
            }

            if (ch != want[k]) {
                break;
            }
        }

        if (k == len) {
            h = m->hdr[id];

            if (h == NULL) {
                v->not_found = 1;
                return NGX_OK;
            }

            ngx_stream_sip_set(v, &h->value);
            return NGX_OK;
        }
    }

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->name.len != len) {
            continue;
        }

        for (k = 0; k < len; k++) {
            ch = ngx_tolower(h->name.data[k]);

            if (ch == '-') {
                ch = '_';
            }

            if (ch != want[k]) {
                break;
            }
        }

        if (k == len) {
            ngx_stream_sip_set(v, &h->value);
            return NGX_OK;
        }
    }

    v->not_found = 1;

    return NGX_OK;
}
