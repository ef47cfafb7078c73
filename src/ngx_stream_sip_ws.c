
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * SIP over WebSocket (RFC 7118) on a "sip on" TCP or TLS listen: the
 * connection's first octets tell a WebSocket opening handshake from SIP
 * over TCP/TLS; after our 101 every WebSocket message is one SIP message,
 * processed with a lifetime of its own as a framed TCP message is, and
 * everything we send on the connection goes in a frame.  The protocol
 * itself is ngx_sip_ws.c's (docs/design.md).
 */


static ngx_int_t ngx_stream_sip_ws_accept(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_ws_origin_allowed(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static void ngx_stream_sip_ws_refuse(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_uint_t status, char *reason);
static ngx_int_t ngx_stream_sip_ws_crlf(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_str_t *msg);


/*
 * The handshake is read from the connection's buffer, which holds the
 * request from its first octet.  NGX_DECLINED: SIP over TCP/TLS; NGX_OK:
 * more is needed (ctx->handshake), a WebSocket (ctx->ws) or a refusal
 * (ctx->close_after_output); NGX_ERROR: the session ends.
 */

ngx_int_t
ngx_stream_sip_ws_handshake(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_buf_t               *b;
    ngx_int_t                rc;
    ngx_sip_ws_handshake_t  *hs;

    b = ctx->in;
    hs = ctx->handshake;

    /* the results so far are slices of a buffer that has since grown */

    if (ctx->handshake_start != b->start) {
        ngx_sip_ws_handshake_init(hs, hs->max);
        ctx->handshake_start = b->start;
    }

    rc = ngx_sip_ws_handshake(hs, b->pos, b->last);

    switch (rc) {

    case NGX_AGAIN:
        return NGX_OK;

    case NGX_DECLINED:
        ctx->handshake = NULL;

        if (ngx_stream_sip_flow_add(s) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->flow = 1;

        return NGX_DECLINED;

    case NGX_ERROR:
        ngx_stream_sip_ws_refuse(s, ctx, hs->status, hs->reason);
        return NGX_OK;

    default: /* NGX_OK */
        return ngx_stream_sip_ws_accept(s, ctx);
    }
}


static ngx_int_t
ngx_stream_sip_ws_accept(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    u_char                     *p;
    size_t                      n;
    ngx_buf_t                  *b;
    ngx_connection_t           *c;
    ngx_sip_ws_handshake_t     *hs;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = s->connection;
    b = ctx->in;
    hs = ctx->handshake;

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    ctx->transport = c->ssl ? NGX_STREAM_SIP_WSS : NGX_STREAM_SIP_WS;

    /* the Origin outlives the request's octets: $sip_websocket_origin */

    if (hs->origin.len) {
        ctx->ws_origin.data = ngx_pnalloc(c->pool, hs->origin.len);
        if (ctx->ws_origin.data == NULL) {
            return NGX_ERROR;
        }

        ctx->ws_origin.len = hs->origin.len;
        ngx_memcpy(ctx->ws_origin.data, hs->origin.data, hs->origin.len);
    }

    switch (ngx_stream_sip_ws_origin_allowed(s, ctx)) {

    case NGX_ERROR:
        return NGX_ERROR;

    case NGX_DECLINED:
        ngx_stream_sip_ws_refuse(s, ctx, 403, "Origin not allowed");
        return NGX_OK;

    default:
        break;
    }

    ctx->ws = ngx_palloc(c->pool, sizeof(ngx_sip_ws_t));
    if (ctx->ws == NULL) {
        return NGX_ERROR;
    }

    ngx_sip_ws_init(ctx->ws, sscf->max_message_size);

    p = ngx_stream_sip_reserve(s, ctx, NGX_SIP_WS_RESPONSE_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sip_ws_handshake_response(p, hs);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->out_last = p;

    if (ngx_stream_sip_flush(s, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "SIP WebSocket (%s) opened, origin \"%V\"",
                  ctx->transport == NGX_STREAM_SIP_WSS ? "WSS" : "WS",
                  &ctx->ws_origin);

    /* frames the client sent right after the request move down */

    b->pos += hs->len;
    n = b->last - b->pos;

    ngx_memmove(b->start, b->pos, n);
    b->pos = b->start;
    b->last = b->start + n;

    ctx->handshake = NULL;

    if (ngx_stream_sip_flow_add(s) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->flow = 1;

    return NGX_OK;
}


/*
 * sip_websocket_origin: the handshake is taken when the value is neither
 * empty nor "0", as with map; NGX_DECLINED: refused.
 */

static ngx_int_t
ngx_stream_sip_ws_origin_allowed(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t                   value;
    ngx_stream_sip_srv_conf_t  *sscf;

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (sscf->websocket_origin == NULL) {
        return NGX_OK;
    }

    if (ngx_stream_complex_value(s, sscf->websocket_origin, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (value.len == 0 || (value.len == 1 && value.data[0] == '0')) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "SIP WebSocket origin \"%V\" not allowed",
                      &ctx->ws_origin);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* an HTTP error to a handshake, the connection closed once it is out */

static void
ngx_stream_sip_ws_refuse(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_uint_t status, char *reason)
{
    u_char  *p;
    size_t   len;

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "SIP WebSocket handshake refused: %ui %s",
                  status, reason);

    ctx->handshake = NULL;
    ctx->close_after_output = 1;
    ctx->in->pos = ctx->in->last;

    len = NGX_SIP_WS_RESPONSE_LEN + ngx_strlen(reason);

    p = ngx_stream_sip_reserve(s, ctx, len);
    if (p == NULL) {
        return;
    }

    p = ngx_sip_ws_http_error(p, p + len, status, reason);
    if (p == NULL) {
        return;
    }

    ctx->out_last = p;

    (void) ngx_stream_sip_flush(s, ctx);
}


/*
 * Frames as they come: every octet read is decoded at once, a whole
 * message ends up at the start of the buffer (ngx_sip_ws_decode()).
 */

ngx_int_t
ngx_stream_sip_ws_read(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_buf_t         *b;
    ngx_int_t          rc;
    ngx_str_t          msg;
    ngx_sip_ws_t      *ws;
    ngx_connection_t  *c;

    c = s->connection;
    b = ctx->in;
    ws = ctx->ws;

    for ( ;; ) {

        rc = ngx_sip_ws_decode(ws, b->start, b->last);

        if (rc == NGX_AGAIN) {
            b->last = ngx_sip_ws_compact(ws, b->start, b->last);
            b->pos = b->start;
            return NGX_OK;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP WebSocket: %s, closing with %ui",
                          ws->reason, ws->code);

            ngx_stream_sip_ws_close(s, ctx, ws->code, ws->reason);
            return NGX_OK;
        }

        if (rc == NGX_DONE) {
            ctx->close_after_output = 1;
            return NGX_OK;
        }

        switch (ws->opcode) {

        case NGX_SIP_WS_PING:
            if (ngx_stream_sip_ws_send(s, ctx, NGX_SIP_WS_PONG,
                                       ws->payload.data, ws->payload.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;

        case NGX_SIP_WS_PONG:
            continue;

        case NGX_SIP_WS_CLOSE:

            /* RFC 6455 5.5.1: the close is echoed, then TCP closes */

            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP WebSocket closed by peer with %ui",
                          ws->code);

            ngx_stream_sip_ws_close(s, ctx, ws->code, "");
            return NGX_OK;

        default: /* NGX_SIP_WS_TEXT, NGX_SIP_WS_BINARY */
            break;
        }

        msg = ws->payload;

        rc = ngx_stream_sip_ws_crlf(s, ctx, &msg);

        if (rc == NGX_DECLINED) {
            rc = ngx_stream_sip_message(s, ctx, msg.data,
                                        msg.data + msg.len);
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        /*
         * The message is in the buffer where the decoder writes the next
         * one: a message that waits in a phase stops the decoding until
         * it is finished (ngx_stream_sip_message_finish() frames the rest).
         */

        if (ctx->close_after_output || ctx->wait) {
            return NGX_OK;
        }
    }
}


/*
 * RFC 5626 3.5.1 keepalives in a message: a double CRLF is answered with
 * a CRLF, a lone one is nothing; NGX_DECLINED: a SIP message.
 */

static ngx_int_t
ngx_stream_sip_ws_crlf(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_str_t *msg)
{
    size_t  i;

    for (i = 0; i < msg->len; i++) {
        if (msg->data[i] != CR && msg->data[i] != LF) {
            return NGX_DECLINED;
        }
    }

    if (msg->len >= 4) {
        return ngx_stream_sip_ws_send(s, ctx, NGX_SIP_WS_TEXT,
                                      (u_char *) CRLF, 2);
    }

    return NGX_OK;
}


/*
 * A message in one frame of ours, unmasked: text when it is UTF-8 (as
 * SIP is but for a binary body), binary otherwise (opcode 0).
 */

ngx_int_t
ngx_stream_sip_ws_send(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_uint_t opcode, u_char *data, size_t len)
{
    u_char  *p;

    if (ctx->ws_closing) {
        return NGX_OK;
    }

    if (opcode == 0) {
        opcode = ngx_sip_ws_utf8(data, len) ? NGX_SIP_WS_TEXT
                                            : NGX_SIP_WS_BINARY;
    }

    p = ngx_stream_sip_reserve(s, ctx, NGX_SIP_WS_MAX_HEADER + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sip_ws_frame_header(p, opcode, len);

    ctx->out_last = ngx_cpymem(p, data, len);

    return ngx_stream_sip_flush(s, ctx);
}


/* our close frame, the last thing sent; the connection closes after it */

void
ngx_stream_sip_ws_close(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_uint_t code, char *reason)
{
    u_char  *p;

    ctx->close_after_output = 1;

    if (ctx->ws_closing) {
        return;
    }

    ctx->ws_closing = 1;

#if (NGX_STREAM_SSL)

    /*
     * The close handshake ends the connection (RFC 6455 7.1.1): no wait
     * for the peer's close_notify, during which the flow would still be
     * there to send calls to.
     */

    if (s->connection->ssl) {
        s->connection->ssl->no_wait_shutdown = 1;
    }

#endif

    p = ngx_stream_sip_reserve(s, ctx, 2 + NGX_SIP_WS_MAX_CONTROL);
    if (p == NULL) {
        return;
    }

    ctx->out_last = ngx_sip_ws_close_frame(p, code, reason);

    (void) ngx_stream_sip_flush(s, ctx);
}
