
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The nginx side of SIP: a stream content handler.  A UDP datagram is one
 * stream session (nginx creates it per datagram source; we answer and end
 * it at once), a TCP or TLS connection is one session carrying any number
 * of messages framed by Content-Length.
 */


#define NGX_STREAM_SIP_BUFFER_SIZE   4096
#define NGX_STREAM_SIP_MAX_PENDING   262144
#define NGX_STREAM_SIP_MESSAGE_POOL  4096


static void ngx_stream_sip_handler(ngx_stream_session_t *s);
static void ngx_stream_sip_read_handler(ngx_event_t *rev);
static void ngx_stream_sip_write_handler(ngx_event_t *wev);
static void ngx_stream_sip_close(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, char *reason);
static ngx_int_t ngx_stream_sip_read(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_frame(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_grow_buffer(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static void ngx_stream_sip_frame_error(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_error_t *err);
static ngx_int_t ngx_stream_sip_message_start(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static void ngx_stream_sip_message_done(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static void ngx_stream_sip_process(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, u_char *start, u_char *end);
static ngx_int_t ngx_stream_sip_owner(ngx_stream_session_t *s,
    ngx_sip_msg_t *m);
static void ngx_stream_sip_respond_error(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_error_t *err);
static ngx_int_t ngx_stream_sip_send(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, u_char *data, size_t len);
static ngx_int_t ngx_stream_sip_udp_send(ngx_connection_t *c,
    struct sockaddr *sa, socklen_t socklen, u_char *data, size_t len);
static void ngx_stream_sip_log_message(ngx_stream_session_t *s);
static void ngx_stream_sip_cleanup(void *data);

static void *ngx_stream_sip_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_sip_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_stream_sip(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_stream_sip_domain(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_sip_timers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_stream_sip_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_stream_sip_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_stream_sip_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_stream_sip_commands[] = {

    { ngx_string("sip"),
      NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_stream_sip,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, enable),
      NULL },

    { ngx_string("sip_domain"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_sip_domain,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_max_message_size"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, max_message_size),
      NULL },

    { ngx_string("sip_pass"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_sip_pass,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_record_route"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, record_route),
      NULL },

    { ngx_string("sip_timers"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE3,
      ngx_stream_sip_timers,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sip_advertise"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, advertise),
      NULL },

    { ngx_string("sip_invite_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, invite_timeout),
      NULL },

    { ngx_string("sip_connection_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, connection_timeout),
      NULL },

    { ngx_string("sip_websocket"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, websocket),
      NULL },

    { ngx_string("sip_websocket_origin"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_set_complex_value_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_sip_srv_conf_t, websocket_origin),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_sip_module_ctx = {
    ngx_stream_sip_preconfiguration,       /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_sip_create_srv_conf,        /* create server configuration */
    ngx_stream_sip_merge_srv_conf          /* merge server configuration */
};


ngx_module_t  ngx_stream_sip_module = {
    NGX_MODULE_V1,
    &ngx_stream_sip_module_ctx,            /* module context */
    ngx_stream_sip_commands,               /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    ngx_stream_sip_init_module,            /* init module */
    ngx_stream_sip_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Parsing is synchronous and a worker handles one message at a time, so
 * one array of header slices serves every message of the worker.
 */
static ngx_sip_header_t  ngx_stream_sip_headers[NGX_SIP_MAX_HEADERS];

/* whether the configuration has a "sip on" server at all */
static ngx_uint_t  ngx_stream_sip_used;

/* made once by the master, so that it holds across reloads */
u_char  ngx_stream_sip_key[16];


static void
ngx_stream_sip_handler(ngx_stream_session_t *s)
{
    ngx_buf_t                  *b;
    ngx_connection_t           *c;
    ngx_pool_cleanup_t         *cln;
    ngx_stream_sip_ctx_t       *ctx;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = s->connection;

    c->log->action = "processing SIP";

    ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_sip_ctx_t));
    if (ctx == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->session = s;

    ngx_stream_set_ctx(s, ctx, ngx_stream_sip_module);

    if (c->type == SOCK_DGRAM) {
        ctx->transport = NGX_STREAM_SIP_UDP;

        b = c->buffer;

        if (b && b->pos < b->last) {
            ngx_stream_sip_process(s, ctx, b->pos, b->last);
            b->pos = b->last;
        }

        if (ctx->wait) {

            /* ngx_stream_sip_message_finish() ends the session */

            ngx_stream_sip_message_wait(s, ctx);
            return;
        }

        if (ctx->passed) {
            ngx_stream_sip_close_quietly(c);
            return;
        }

        /*
         * Every datagram is a session of its own: the access log gets a
         * line per datagram, and an idle phone holds no connection.
         */

        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    ctx->transport = c->ssl ? NGX_STREAM_SIP_TLS : NGX_STREAM_SIP_TCP;

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_stream_sip_cleanup;
    cln->data = ctx;

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    /*
     * A connection a peer opened may be a SIP WebSocket: its first octets
     * say (ngx_stream_sip_ws.c), and it becomes a flow of its transport
     * then.  One we opened is SIP over TCP or TLS.
     */

    if (sscf->websocket && !ngx_stream_sip_flow_exists(c->number)) {
        ctx->handshake = ngx_palloc(c->pool, sizeof(ngx_sip_ws_handshake_t));
        if (ctx->handshake == NULL) {
            ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_sip_ws_handshake_init(ctx->handshake,
                                  ngx_min(sscf->max_message_size,
                                          NGX_STREAM_SIP_WS_HANDSHAKE_MAX));

    } else {
        if (ngx_stream_sip_flow_add(s) != NGX_OK) {
            ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
            return;
        }

        ctx->flow = 1;
    }

    ngx_sip_frame_init(&ctx->frame);

    b = c->buffer;

    if (b && b->pos < b->last) {

        /* preread data, e.g. left by ssl_preread */

        ctx->in = ngx_create_temp_buf(c->pool,
                               ngx_max((size_t) NGX_STREAM_SIP_BUFFER_SIZE,
                                       (size_t) (b->last - b->pos)));
        if (ctx->in == NULL) {
            ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
            return;
        }

        ctx->in->last = ngx_cpymem(ctx->in->last, b->pos, b->last - b->pos);
        b->pos = b->last;

        ctx->preread = 1;
    }

    c->read->handler = ngx_stream_sip_read_handler;
    c->write->handler = ngx_stream_sip_write_handler;

    ngx_stream_sip_read_handler(c->read);
}


static void
ngx_stream_sip_read_handler(ngx_event_t *rev)
{
    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_stream_session_t       *s;
    ngx_stream_sip_ctx_t       *ctx;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = rev->data;
    s = c->data;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (rev->timedout && !ngx_exiting) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      ctx->handshake && ctx->in && ctx->in->last
                                                   != ctx->in->start
                      ? "WebSocket handshake not complete in time, closing"
                      : "SIP connection idle, closing");
        ngx_stream_sip_close(s, ctx, "idle");
        return;
    }

    if (c->close || rev->timedout) {

        /*
         * The worker is leaving (nginx -s reload): a flow closes once no
         * transaction needs it any more, its phone connects again, to a
         * new worker (docs/design.md).  Until then it is looked at
         * again every second.
         */

        c->close = 0;
        rev->timedout = 0;

        if (!c->idle || ngx_stream_sip_flow_busy(c->number)) {
            ngx_add_timer(rev, 1000);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "SIP connection closed: worker shutting down");
        ngx_stream_sip_close(s, ctx, "worker shutting down");
        return;
    }

    if (ctx->close_after_output) {
        return;
    }

    rc = ngx_stream_sip_read(s, ctx);

    if (rc == NGX_ERROR || ctx->failed) {
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (ctx->close_after_output) {

        if (ctx->out_pos == ctx->out_last) {
            ngx_stream_finalize_session(s, NGX_STREAM_OK);
            return;
        }

        /* the write handler closes once the answer is out */

        if (rev->timer_set) {
            ngx_del_timer(rev);
        }

        ngx_add_timer(s->connection->write, sscf->connection_timeout);
        return;
    }

    /* between messages a connection may be closed at shutdown */

    c->idle = (ctx->wait == NULL && ctx->out_pos == ctx->out_last
               && (ctx->in == NULL || ctx->in->pos == ctx->in->last));

    /*
     * A handshake once begun gets a short while to end (an HTTP request
     * is sent at once); a connection that has sent nothing yet is an idle
     * one, whatever it turns out to be.
     */

    ngx_add_timer(rev, ngx_exiting ? 1000
                       : (ctx->handshake && ctx->in
                          && ctx->in->last != ctx->in->start)
                         ? ngx_min(sscf->connection_timeout,
                                   NGX_STREAM_SIP_WS_HANDSHAKE_TIMEOUT)
                         : sscf->connection_timeout);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
    }
}


/*
 * A connection we end: a WebSocket says so first, with 1001 Going Away
 * (RFC 6455 7.4.1), and closes once that is out.
 */

static void
ngx_stream_sip_close(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    char *reason)
{
    ngx_stream_sip_srv_conf_t  *sscf;

    if (ctx->ws && !ctx->ws_closing && !ctx->failed) {
        ngx_stream_sip_ws_close(s, ctx, NGX_SIP_WS_GOING_AWAY, reason);

        if (!ctx->failed && ctx->out_pos != ctx->out_last) {
            sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);
            ngx_add_timer(s->connection->write,
                          ngx_min(sscf->connection_timeout, 5000));
            return;
        }
    }

    ngx_stream_finalize_session(s, NGX_STREAM_OK);
}


/*
 * Reads what the connection has, framing and processing every complete
 * message as it goes.  It never ends the session itself: on NGX_ERROR,
 * ctx->failed or ctx->close_after_output the read handler does.
 */

static ngx_int_t
ngx_stream_sip_read(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ssize_t            n;
    ngx_buf_t         *b;
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = s->connection;

    if (ctx->preread) {
        ctx->preread = 0;

        rc = ngx_stream_sip_frame(s, ctx);

        if (rc != NGX_OK || ctx->close_after_output) {
            return rc;
        }
    }

    for ( ;; ) {

        /*
         * A peer that sends but does not read gets no more of our
         * attention until it has read what we owe it.
         */

        if ((size_t) (ctx->out_last - ctx->out_pos)
            > NGX_STREAM_SIP_MAX_PENDING)
        {
            ctx->read_blocked = 1;
            return NGX_OK;
        }

        if (ctx->in == NULL) {
            ctx->in = ngx_create_temp_buf(c->pool,
                                          NGX_STREAM_SIP_BUFFER_SIZE);
            if (ctx->in == NULL) {
                return NGX_ERROR;
            }
        }

        b = ctx->in;

        if (b->last == b->end) {

            /* the slices of a message that waits are into the buffer */

            if (ctx->wait) {
                return NGX_OK;
            }

            if (ngx_stream_sip_grow_buffer(s, ctx) != NGX_OK) {
                return NGX_ERROR;
            }

            b = ctx->in;
        }

        n = c->recv(c, b->last, b->end - b->last);

        if (n == NGX_AGAIN) {
            return NGX_OK;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP peer closed connection");
            return NGX_ERROR;
        }

        b->last += n;
        s->received += n;

        if (ctx->wait) {

            /* framed once it is finished; meanwhile a close is seen */

            continue;
        }

        rc = ngx_stream_sip_frame(s, ctx);

        if (rc != NGX_OK || ctx->close_after_output) {
            return rc;
        }
    }
}


static ngx_int_t
ngx_stream_sip_frame(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    u_char                     *start;
    ngx_buf_t                  *b;
    ngx_int_t                   rc;
    ngx_uint_t                  pings;
    ngx_sip_error_t             err;
    ngx_stream_sip_srv_conf_t  *sscf;

    if (ctx->handshake) {
        rc = ngx_stream_sip_ws_handshake(s, ctx);

        if (rc != NGX_DECLINED && (rc != NGX_OK || ctx->ws == NULL)) {
            return rc;
        }
    }

    if (ctx->ws) {
        return ngx_stream_sip_ws_read(s, ctx);
    }

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    b = ctx->in;

    for ( ;; ) {

        if (b->pos == b->last) {
            b->pos = b->start;
            b->last = b->start;
            ngx_sip_frame_init(&ctx->frame);
            return NGX_OK;
        }

        pings = ctx->frame.pings;

        rc = ngx_sip_frame(&ctx->frame, b->pos, b->last,
                           sscf->max_message_size, &err);

        /*
         * RFC 5626 3.5.1: a double CRLF "ping" is answered with a single
         * CRLF "pong"; lone CRLFs between messages are skipped silently.
         */

        while (pings++ < ctx->frame.pings) {
            if (ngx_stream_sip_send(s, ctx, (u_char *) CRLF, 2) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (rc == NGX_SIP_AGAIN) {

            /* keepalives alone must not fill the buffer over the days */

            if (ctx->frame.header_len == 0
                && ctx->frame.scanned == ctx->frame.crlf)
            {
                b->pos += ctx->frame.crlf;
                ctx->frame.scanned = 0;
                ctx->frame.crlf = 0;

                if (b->pos == b->last) {
                    b->pos = b->start;
                    b->last = b->start;
                }
            }

            return NGX_OK;
        }

        if (rc == NGX_SIP_ERROR) {
            ngx_stream_sip_frame_error(s, ctx, &err);
            return NGX_OK;
        }

        start = b->pos + ctx->frame.crlf;

        if (ngx_stream_sip_message_start(s, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_stream_sip_process(s, ctx, start, start + ctx->frame.message_len);

        b->pos = start + ctx->frame.message_len;
        ngx_sip_frame_init(&ctx->frame);

        if (ctx->wait) {

            /* no next message until this one is finished: their order */

            ngx_stream_sip_message_wait(s, ctx);
            return NGX_OK;
        }

        ngx_stream_sip_message_done(s, ctx);

        if (ctx->failed) {
            return NGX_ERROR;
        }
    }
}


static ngx_int_t
ngx_stream_sip_grow_buffer(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    size_t                      size, used;
    ngx_buf_t                  *b, *nb;
    ngx_stream_sip_srv_conf_t  *sscf;

    b = ctx->in;
    used = b->last - b->pos;

    if (b->pos != b->start) {

        /* the framer keeps offsets from b->pos, so moving is safe */

        ngx_memmove(b->start, b->pos, used);
        b->pos = b->start;
        b->last = b->start + used;
        return NGX_OK;
    }

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    /* the framer rejects anything larger, so this is the bound */
    size = ngx_min((size_t) (b->end - b->start) * 2,
                   sscf->max_message_size + 1024);

    if (size <= (size_t) (b->end - b->start)) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "SIP message too large, closing");
        return NGX_ERROR;
    }

    nb = ngx_create_temp_buf(s->connection->pool, size);
    if (nb == NULL) {
        return NGX_ERROR;
    }

    nb->last = ngx_cpymem(nb->pos, b->pos, used);

    ngx_pfree(s->connection->pool, b->start);

    ctx->in = nb;

    return NGX_OK;
}


/*
 * A stream that cannot be framed cannot be trusted for anything after
 * the error: answer from the headers we have, if we can, and close.
 */

static void
ngx_stream_sip_frame_error(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_sip_error_t *err)
{
    u_char            *start, *end;
    ngx_buf_t         *b;
    ngx_sip_msg_t     *m;
    ngx_sip_error_t    perr;

    b = ctx->in;
    m = &ctx->msg;

    start = b->pos + ctx->frame.crlf;
    end = ctx->frame.header_len ? b->pos + ctx->frame.header_len : b->last;

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "SIP framing error: %ui %V, closing",
                  err->status, &err->reason);

    /* ngx_sip_parse_message() zeroes the rest of m */

    m->headers = ngx_stream_sip_headers;
    m->max_headers = NGX_SIP_MAX_HEADERS;

    (void) ngx_sip_parse_message(m, start, end, 0, &perr);

    ctx->close_after_output = 1;

    if (m->request && m->hdr[NGX_SIP_HDR_VIA] && m->method_id != NGX_SIP_ACK
        && ngx_stream_sip_message_start(s, ctx) == NGX_OK)
    {
        /* for the Via, From, To ... the response copies */
        (void) ngx_sip_msg_validate(m, &perr);

        ctx->msg_valid = 1;
        ngx_stream_sip_respond_error(s, ctx, err);
        ngx_stream_sip_message_done(s, ctx);
    }
}


/*
 * A message framed on a TCP or TLS connection gets a pool, variables and
 * upstream states of its own: while it is processed and logged they are
 * the session's, so that what nginx's code and ours allocate for it
 * (variable values, the access log line, $upstream_addr, copies of the
 * message) goes with it, and its log line describes it alone.  The
 * connection's are put back once it is logged.  A datagram needs none of
 * this: it is a session of its own.
 */

static ngx_int_t
ngx_stream_sip_message_start(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    size_t                        len;
    ngx_pool_t                   *pool;
    ngx_connection_t             *c;
    ngx_stream_variable_value_t  *v;
    ngx_stream_core_main_conf_t  *cmcf;

    c = s->connection;
    cmcf = ngx_stream_get_module_main_conf(s, ngx_stream_core_module);

    pool = ngx_create_pool(NGX_STREAM_SIP_MESSAGE_POOL, c->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    /*
     * What the connection had evaluated stays valid: a copy, so that
     * nothing cached during the message (in its pool) outlives it.
     */

    len = cmcf->variables.nelts * sizeof(ngx_stream_variable_value_t);

    v = ngx_palloc(pool, len);
    if (v == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_memcpy(v, s->variables, len);

    ctx->saved.pool = c->pool;
    ctx->saved.variables = s->variables;
    ctx->saved.upstream_states = s->upstream_states;

    c->pool = pool;
    s->variables = v;
    s->upstream_states = NULL;

    /* nothing of the previous message on the connection either */

    ctx->status = 0;
    ctx->msg_valid = 0;
    ctx->validated = 0;
    ctx->routed = 0;
    ctx->auth_header = 0;
    ctx->has_duration = 0;

    return NGX_OK;
}


static void
ngx_stream_sip_message_done(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = s->connection;

    ngx_stream_sip_log_message(s);

    pool = c->pool;

    c->pool = ctx->saved.pool;
    s->variables = ctx->saved.variables;
    s->upstream_states = ctx->saved.upstream_states;

    ngx_destroy_pool(pool);
}


/*
 * A message waits in a phase (ngx_stream_sip_phase.c).  A datagram's
 * session stays open for it, out of the listening's table of sessions:
 * the peer's next datagrams start sessions of their own, as they do once
 * a session ends.  On a stream the connection's pool and variables are
 * put back while the message keeps its own, and no other message of the
 * connection is framed until it is finished.
 */

void
ngx_stream_sip_message_wait(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_socket_t       fd;
    ngx_connection_t  *c;

    c = s->connection;

    if (ctx->transport == NGX_STREAM_SIP_UDP) {
        ngx_delete_udp_connection(c);

        /*
         * A worker that leaves (reload) closes the listening sockets; the
         * answer goes from our copy of the socket, open while we live.
         */

        fd = ngx_stream_sip_udp_fd(c->listening);

        if (fd != (ngx_socket_t) -1) {
            c->fd = fd;
        }

        return;
    }

    ctx->parked.pool = c->pool;
    ctx->parked.variables = s->variables;
    ctx->parked.upstream_states = s->upstream_states;

    c->pool = ctx->saved.pool;
    s->variables = ctx->saved.variables;
    s->upstream_states = ctx->saved.upstream_states;
}


void
ngx_stream_sip_message_resume(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_connection_t  *c;

    if (ctx->transport == NGX_STREAM_SIP_UDP) {
        return;
    }

    c = s->connection;

    ctx->saved.pool = c->pool;
    ctx->saved.variables = s->variables;
    ctx->saved.upstream_states = s->upstream_states;

    c->pool = ctx->parked.pool;
    s->variables = ctx->parked.variables;
    s->upstream_states = ctx->parked.upstream_states;

    ctx->parked.pool = NULL;
}


/* a message that waited is finished: as one that did not, then more */

void
ngx_stream_sip_message_finish(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    if (ctx->transport == NGX_STREAM_SIP_UDP) {
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    ngx_stream_sip_message_done(s, ctx);

    if (ctx->failed) {
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    /* the messages read meanwhile, then the connection */

    ctx->preread = 1;
    ngx_post_event(s->connection->read, &ngx_posted_events);
}


/* one whole message of a WebSocket, with a lifetime of its own */

ngx_int_t
ngx_stream_sip_message(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    u_char *start, u_char *end)
{
    if (ngx_stream_sip_message_start(s, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_stream_sip_process(s, ctx, start, end);

    if (ctx->wait) {

        /* the decoder is not called again until it is finished */

        ngx_stream_sip_message_wait(s, ctx);
        return NGX_OK;
    }

    ngx_stream_sip_message_done(s, ctx);

    return ctx->failed ? NGX_ERROR : NGX_OK;
}


static void
ngx_stream_sip_process(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    u_char *start, u_char *end)
{
    ngx_int_t                   rc, owner;
    ngx_sip_msg_t              *m;
    ngx_sip_error_t             err, verr;
    ngx_connection_t           *c;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = s->connection;
    m = &ctx->msg;
    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    /* ngx_sip_parse_message() zeroes the rest of m */

    m->headers = ngx_stream_sip_headers;
    m->max_headers = NGX_SIP_MAX_HEADERS;

    ctx->status = 0;
    ctx->msg_valid = 0;
    ctx->validated = 0;
    ctx->routed = 0;

    /* a WebSocket message is framed already, as a datagram is */

    rc = ngx_sip_parse_message(m, start, end,
                               ctx->transport == NGX_STREAM_SIP_TCP
                               || ctx->transport == NGX_STREAM_SIP_TLS,
                               &err);

    if (rc != NGX_SIP_OK && err.status == 0) {

        /* an empty datagram: a UDP keepalive */
        return;
    }

    /* a datagram passed on is not passed again: no ping-pong */

    if (ctx->transport == NGX_STREAM_SIP_UDP
        && m->hdr[NGX_SIP_HDR_CALL_ID]
        && !ngx_stream_sip_channel_injected(c))
    {
        owner = ngx_stream_sip_owner(s, m);

        if (owner >= 0
            && ngx_stream_sip_channel_pass(c, owner, start, end - start)
               == NGX_OK)
        {
            ctx->passed = 1;
            return;
        }
    }

    /*
     * A response on a flow for a branch another worker made: that worker
     * has its transaction (only it can write on the caller's connection).
     */

    if (ctx->transport != NGX_STREAM_SIP_UDP && rc == NGX_SIP_OK
        && !m->request)
    {
        owner = ngx_stream_sip_response_owner(m);

        if (owner >= 0
            && ngx_stream_sip_channel_response(owner, start, end - start,
                                               c->log)
               == NGX_OK)
        {
            return;
        }
    }

    /* over UDP the framer has not checked the size */

    if (ctx->transport == NGX_STREAM_SIP_UDP
        && (size_t) (end - start) > sscf->max_message_size)
    {
        rc = NGX_SIP_ERROR;
        err.status = 513;
        ngx_str_set(&err.reason, "Message Too Large");
        ngx_str_null(&err.header);
    }

    if (rc != NGX_SIP_OK) {

        if (!m->request || m->hdr[NGX_SIP_HDR_VIA] == NULL
            || m->method_id == NGX_SIP_ACK)
        {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP message dropped: %ui %V",
                          err.status, &err.reason);
            return;
        }

        /* the headers are there, only something in them is wrong */

        ctx->msg_valid = 1;
        (void) ngx_sip_msg_validate(m, &verr);

        ngx_stream_sip_respond_error(s, ctx, &err);
        return;
    }

    ctx->msg_valid = 1;

    rc = ngx_sip_msg_validate(m, &err);

    if (!m->request) {

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP response dropped: %ui %V",
                          err.status, &err.reason);
            return;
        }

        ctx->status = m->status;

        if (ngx_stream_sip_proxy_response(s, ctx) == NGX_OK) {
            return;
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "SIP response %ui dropped: no matching transaction",
                      m->status);
        return;
    }

    if (rc != NGX_OK) {

        if (m->method_id == NGX_SIP_ACK) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP ACK dropped: %ui %V",
                          err.status, &err.reason);
            return;
        }

        ngx_stream_sip_respond_error(s, ctx, &err);
        return;
    }

    ctx->validated = 1;

    /* the phases: ngx_stream_sip_phase.c; ctx->wait if it waits there */

    (void) ngx_stream_sip_phase_run(s, ctx);
}


/*
 * The worker a datagram belongs to: a response to the one that made the
 * branch of its top Via (it holds the transaction, whichever transport
 * the request came by), a request along a route to a flow to the one
 * holding the connection, everything else to the owner of its Call-ID.
 * Only routing: what it reads here is checked again there.
 */

static ngx_int_t
ngx_stream_sip_owner(ngx_stream_session_t *s, ngx_sip_msg_t *m)
{
    u_char         *p, *end;
    uint32_t        loop, salt;
    ngx_uint_t      w;
    ngx_sip_via_t   via;

    if (!m->request && m->hdr[NGX_SIP_HDR_VIA]) {
        p = m->hdr[NGX_SIP_HDR_VIA]->value.data;
        end = p + m->hdr[NGX_SIP_HDR_VIA]->value.len;

        if (ngx_sip_parse_via(&p, end, &via) == NGX_OK
            && ngx_sip_branch_check(&via.branch, ngx_stream_sip_key, &loop,
                                    &salt)
               == NGX_OK)
        {
            return ngx_stream_sip_channel_worker_gen((salt >> 8) & 0xff,
                                                     salt & 0xff);
        }
    }

    /*
     * A REGISTER for our registrar needs nothing a worker holds: the
     * bindings are in shared memory, and a retransmission is told there by
     * its branch.  Whoever reads it answers it: no pass, no second parse.
     * Unless it may wait in a phase: its retransmissions are then told by
     * the worker it waits in.
     */

    if (m->request && m->method_id == NGX_SIP_REGISTER
        && !ngx_stream_sip_phase_may_wait(s)
        && ngx_stream_sip_registrar_owns(s, m))
    {
        return -1;
    }

    if (m->request && m->hdr[NGX_SIP_HDR_ROUTE]
        && ngx_stream_sip_route_flow_worker(m,
                                       &m->hdr[NGX_SIP_HDR_CALL_ID]->value, &w)
           == NGX_OK)
    {
        return ngx_stream_sip_channel_worker(w);
    }

    return ngx_stream_sip_channel_owner(&m->hdr[NGX_SIP_HDR_CALL_ID]->value);
}


/*
 * Whether a Request-URI names us: one of sip_domain, or the address the
 * message arrived on.  Ports are not compared: a phone may well write
 * sip:example.com for a server listening on 5080.
 */

ngx_uint_t
ngx_stream_sip_is_local(ngx_stream_session_t *s, ngx_sip_uri_t *uri)
{
    u_char                      addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                   host, local, *d;
    ngx_uint_t                  i;
    ngx_stream_sip_srv_conf_t  *sscf;

    if (uri->scheme_id != NGX_SIP_SCHEME_SIP
        && uri->scheme_id != NGX_SIP_SCHEME_SIPS)
    {
        return 0;
    }

    host = uri->host;

    if (host.len > 2 && host.data[0] == '[') {
        host.data++;
        host.len -= 2;
    }

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (sscf->domains) {
        d = sscf->domains->elts;

        for (i = 0; i < sscf->domains->nelts; i++) {
            if (d[i].len == host.len
                && ngx_strncasecmp(d[i].data, host.data, host.len) == 0)
            {
                return 1;
            }
        }
    }

    local.data = addr;
    local.len = NGX_SOCKADDR_STRLEN;

    if (ngx_connection_local_sockaddr(s->connection, &local, 0) != NGX_OK) {
        return 0;
    }

    local.len = ngx_sock_ntop(s->connection->local_sockaddr,
                              s->connection->local_socklen, addr,
                              NGX_SOCKADDR_STRLEN, 0);

    return local.len == host.len
           && ngx_strncasecmp(local.data, host.data, host.len) == 0;
}


/*
 * A response to the request in ctx->msg, sent where RFC 3261 18.2.2 and
 * RFC 3581 say: on the connection for stream transports; over UDP to the
 * source address, at the rport or sent-by port.  A Via maddr is ignored,
 * so that nobody can point our answers at a third party.
 */

void
ngx_stream_sip_respond(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *reason, ngx_str_t *extra)
{
    u_char            *p, *buf;
    size_t             len;
    ngx_uint_t         port;
    ngx_sip_msg_t     *m;
    ngx_sip_resp_t     r;
    ngx_connection_t  *c;
    ngx_sockaddr_t     sa;

    c = s->connection;
    m = &ctx->msg;

    ctx->status = status;

    ngx_sip_response_init(&r, m, status, reason, &c->addr_text,
                          ngx_inet_get_port(c->sockaddr), ngx_stream_sip_key);

    if (extra) {
        r.extra = *extra;
    }

    len = ngx_sip_response_size(m, &r);

    /* TCP, TLS: straight into the output buffer, no copy */

    buf = (ctx->transport == NGX_STREAM_SIP_UDP || ctx->ws)
          ? ngx_pnalloc(c->pool, len) : ngx_stream_sip_reserve(s, ctx, len);

    if (buf == NULL) {
        return;
    }

    p = ngx_sip_write_response(buf, m, &r);

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "sip response: \"%*s\"", (size_t) (p - buf), buf);

    if (ctx->ws) {
        (void) ngx_stream_sip_ws_send(s, ctx, 0, buf, p - buf);
        return;
    }

    if (ctx->transport != NGX_STREAM_SIP_UDP) {
        ctx->out_last = p;
        (void) ngx_stream_sip_flush(s, ctx);
        return;
    }

    ngx_memcpy(&sa, c->sockaddr, c->socklen);

    if (!m->via.has_rport && m->via.text.len) {
        port = m->via.port ? m->via.port : 5060;
        ngx_inet_set_port(&sa.sockaddr, (in_port_t) port);
    }

    (void) ngx_stream_sip_udp_send(c, &sa.sockaddr, c->socklen, buf, p - buf);
}


static void
ngx_stream_sip_respond_error(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_error_t *err)
{
    u_char     line[NGX_SIP_ERROR_HEADER_LEN + 2], *p;
    ngx_str_t  extra;

    if (err->header.len == 0) {
        ngx_stream_sip_respond(s, ctx, err->status, &err->reason, NULL);
        return;
    }

    /* the parser gives the header without its line end */

    p = ngx_cpymem(line, err->header.data,
                   ngx_min(err->header.len, NGX_SIP_ERROR_HEADER_LEN));
    *p++ = CR; *p++ = LF;

    extra.data = line;
    extra.len = p - line;

    ngx_stream_sip_respond(s, ctx, err->status, &err->reason, &extra);
}


static ngx_int_t
ngx_stream_sip_udp_send(ngx_connection_t *c, struct sockaddr *sa,
    socklen_t socklen, u_char *data, size_t len)
{
    ssize_t           n;
    socklen_t         saved_len;
    struct sockaddr  *saved;

    /*
     * Sent from the listening socket itself, so that the peer sees our
     * SIP port as the source; going through c->send keeps nginx's own
     * error handling.
     */

    saved = c->sockaddr;
    saved_len = c->socklen;

    c->sockaddr = sa;
    c->socklen = socklen;

    n = c->send(c, data, len);

    c->sockaddr = saved;
    c->socklen = saved_len;

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0, "SIP UDP send failed");
        return NGX_ERROR;
    }

    c->sent += n;

    return NGX_OK;
}


/*
 * Stream output: written at once when the socket takes it, the rest kept
 * in ctx->out until the write handler can flush it.
 */

static ngx_int_t
ngx_stream_sip_send(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    u_char *data, size_t len)
{
    u_char  *p;

    if (ctx->ws) {
        return ngx_stream_sip_ws_send(s, ctx, 0, data, len);
    }

    p = ngx_stream_sip_reserve(s, ctx, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->out_last = ngx_cpymem(p, data, len);

    return ngx_stream_sip_flush(s, ctx);
}


/* a message for a flow (a TCP or TLS session), from outside of it */

ngx_int_t
ngx_stream_sip_output(ngx_stream_session_t *s, ngx_str_t *msg)
{
    ngx_stream_sip_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (ctx == NULL || ctx->failed) {
        return NGX_ERROR;
    }

    if (ngx_stream_sip_send(s, ctx, msg->data, msg->len) != NGX_OK) {

        /* its write handler closes it */

        ngx_post_event(s->connection->write, &ngx_posted_events);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Room for len more octets of output, written at the returned position;
 * the caller moves ctx->out_last past what it wrote.
 */

u_char *
ngx_stream_sip_reserve(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    size_t len)
{
    size_t   pending, size;
    u_char  *out;

    pending = ctx->out_last - ctx->out_pos;

    if (pending + len > ctx->out_size - (ctx->out_last - ctx->out)) {

        size = ngx_max(pending + len, (size_t) NGX_STREAM_SIP_BUFFER_SIZE);

        if (size > ctx->out_size) {
            out = ngx_alloc(size, s->connection->log);
            if (out == NULL) {
                ctx->failed = 1;
                return NULL;
            }

        } else {
            out = ctx->out;
        }

        if (pending) {
            ngx_memmove(out, ctx->out_pos, pending);
        }

        if (out != ctx->out) {
            if (ctx->out) {
                ngx_free(ctx->out);
            }

            ctx->out = out;
            ctx->out_size = size;
        }

        ctx->out_pos = out;
        ctx->out_last = out + pending;
    }

    return ctx->out_last;
}


ngx_int_t
ngx_stream_sip_flush(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->connection;

    while (ctx->out_pos < ctx->out_last) {

        n = c->send(c, ctx->out_pos, ctx->out_last - ctx->out_pos);

        if (n == NGX_ERROR) {
            ctx->failed = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN || n == 0) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ctx->failed = 1;
                return NGX_ERROR;
            }

            return NGX_OK;
        }

        ctx->out_pos += n;
        c->sent += n;
    }

    ctx->out_pos = ctx->out;
    ctx->out_last = ctx->out;

    return NGX_OK;
}


static void
ngx_stream_sip_write_handler(ngx_event_t *wev)
{
    ngx_connection_t      *c;
    ngx_stream_session_t  *s;
    ngx_stream_sip_ctx_t  *ctx;

    c = wev->data;
    s = c->data;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "SIP peer timed out reading");
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    if (ngx_stream_sip_flush(s, ctx) != NGX_OK) {
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    if (ctx->out_pos == ctx->out_last) {

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (ctx->close_after_output) {
            ngx_stream_finalize_session(s, NGX_STREAM_OK);
            return;
        }

        if (ctx->read_blocked) {
            ctx->read_blocked = 0;
            ngx_post_event(c->read, &ngx_posted_events);
        }
    }
}


/*
 * A TCP or TLS connection carries many messages; the access log gets a
 * line for each, through the log phase handlers of the stream core (the
 * session's own line at close follows as usual).
 */

static void
ngx_stream_sip_log_message(ngx_stream_session_t *s)
{
    ngx_uint_t                    i, n;
    ngx_stream_handler_pt        *h;
    ngx_stream_sip_ctx_t         *ctx;
    ngx_stream_core_main_conf_t  *cmcf;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    if (!ctx->msg_valid) {
        return;
    }

    cmcf = ngx_stream_get_module_main_conf(s, ngx_stream_core_module);

    h = cmcf->phases[NGX_STREAM_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_STREAM_LOG_PHASE].handlers.nelts;

    for (i = 0; i < n; i++) {
        (void) h[i](s);
    }

    ctx->msg_valid = 0;
}


static void
ngx_stream_sip_cleanup(void *data)
{
    ngx_stream_sip_ctx_t  *ctx = data;

    /* a message that waits is abandoned, its pool destroyed */

    ngx_stream_sip_phase_abort(ctx);

    if (ctx->parked.pool) {
        ngx_destroy_pool(ctx->parked.pool);
        ctx->parked.pool = NULL;
    }

    if (ctx->flow) {
        ngx_stream_sip_flow_delete(ctx->session);
        ctx->flow = 0;
    }

    if (ctx->out) {
        ngx_free(ctx->out);
        ctx->out = NULL;
    }
}


static void *
ngx_stream_sip_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_sip_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_sip_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->domains = NULL;
     *     conf->websocket_origin = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->max_message_size = NGX_CONF_UNSET_SIZE;
    conf->connection_timeout = NGX_CONF_UNSET_MSEC;
    conf->record_route = NGX_CONF_UNSET;
    conf->t1 = NGX_CONF_UNSET_MSEC;
    conf->invite_timeout = NGX_CONF_UNSET_MSEC;
    conf->websocket = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_stream_sip_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_stream_sip_srv_conf_t *prev = parent;
    ngx_stream_sip_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    if (conf->domains == NULL) {
        conf->domains = prev->domains;
    }

    ngx_conf_merge_size_value(conf->max_message_size,
                              prev->max_message_size, 65536);

    ngx_conf_merge_msec_value(conf->connection_timeout,
                              prev->connection_timeout, 180000);

    ngx_conf_merge_value(conf->record_route, prev->record_route, 1);
    ngx_conf_merge_value(conf->websocket, prev->websocket, 1);

    if (conf->websocket_origin == NULL) {
        conf->websocket_origin = prev->websocket_origin;
    }

    ngx_conf_merge_msec_value(conf->invite_timeout, prev->invite_timeout,
                              180000);

    if (conf->t1 == NGX_CONF_UNSET_MSEC) {
        if (prev->t1 == NGX_CONF_UNSET_MSEC) {
            conf->t1 = 500;
            conf->t2 = 4000;
            conf->t4 = 5000;

        } else {
            conf->t1 = prev->t1;
            conf->t2 = prev->t2;
            conf->t4 = prev->t4;
        }
    }

    if (conf->max_message_size < 512) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sip_max_message_size\" must be at least 512");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_sip(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_srv_conf_t *sscf = conf;

    char                        *rv;
    ngx_stream_core_srv_conf_t  *cscf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK || !sscf->enable) {
        return rv;
    }

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate: the server already has a content handler";
    }

    cscf->handler = ngx_stream_sip_handler;

    ngx_stream_sip_used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_stream_sip_domain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_srv_conf_t *sscf = conf;

    ngx_str_t   *value, *d;
    ngx_uint_t   i;

    if (sscf->domains == NULL) {
        sscf->domains = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_str_t));
        if (sscf->domains == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len > 2 && value[i].data[0] == '['
            && value[i].data[value[i].len - 1] == ']')
        {
            value[i].data++;
            value[i].len -= 2;
        }

        if (value[i].len == 0) {
            return "has an empty domain";
        }

        d = ngx_array_push(sscf->domains);
        if (d == NULL) {
            return NGX_CONF_ERROR;
        }

        *d = value[i];
        ngx_strlow(d->data, d->data, d->len);
    }

    return NGX_CONF_OK;
}


/*
 * sip_pass upstream | host:port | sip:host:port[;transport=udp] | $var;
 * an address is an implicit upstream, as for proxy_pass: resolved at
 * start, then balanced over all its addresses.
 */

static char *
ngx_stream_sip_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_srv_conf_t *sscf = conf;

    u_char                              *p;
    ngx_url_t                            u;
    ngx_str_t                           *value, host;
    ngx_uint_t                           port;
    ngx_stream_compile_complex_value_t   ccv;

    if (sscf->pass.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    sscf->pass = value[1];

    if (ngx_stream_script_variables_count(&value[1])) {
        ngx_memzero(&ccv, sizeof(ngx_stream_compile_complex_value_t));

        sscf->pass_value = ngx_palloc(cf->pool,
                                      sizeof(ngx_stream_complex_value_t));
        if (sscf->pass_value == NULL) {
            return NGX_CONF_ERROR;
        }

        ccv.cf = cf;
        ccv.value = &value[1];
        ccv.complex_value = sscf->pass_value;

        if (ngx_stream_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_stream_sip_pass_url(&value[1], &host, &port,
                                &sscf->pass_transport)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid target \"%V\" of \"sip_pass\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = host;
    u.no_resolve = 1;

    /* an address without a port is SIP's 5060; a bare name an upstream */

    if (port == 0
        && (ngx_inet_addr(host.data, host.len) != INADDR_NONE
            || host.data[0] == '['))
    {
        port = ngx_sip_transport_port(sscf->pass_transport);
    }

    if (port) {
        p = ngx_pnalloc(cf->pool, host.len + sizeof(":65535"));
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        u.url.data = p;
        u.url.len = ngx_sprintf(p, "%V:%ui", &host, port) - p;
    }

    sscf->pass_upstream = ngx_stream_upstream_add(cf, &u, 0);
    if (sscf->pass_upstream == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_sip_timers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_sip_srv_conf_t *sscf = conf;

    ngx_str_t   *value;
    ngx_msec_t   t[3];
    ngx_uint_t   i;

    if (sscf->t1 != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        t[i] = ngx_parse_time(&value[i + 1], 0);

        if (t[i] == (ngx_msec_t) NGX_ERROR || t[i] == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\"", &value[i + 1]);
            return NGX_CONF_ERROR;
        }
    }

    sscf->t1 = t[0];
    sscf->t2 = t[1];
    sscf->t4 = t[2];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_sip_preconfiguration(ngx_conf_t *cf)
{
    ngx_stream_sip_used = 0;

    return ngx_stream_sip_add_variables(cf);
}


static ngx_int_t
ngx_stream_sip_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;
    uint32_t    r;

    if (!ngx_stream_sip_used) {
        return NGX_OK;
    }

    for (i = 0; i < 16 && ngx_stream_sip_key[i] == 0; i++) {
        /* void */
    }

    if (i == 16) {
        for (i = 0; i < 16; i += 4) {
            r = (uint32_t) ngx_random() ^ (uint32_t) ngx_time()
                ^ ((uint32_t) ngx_pid << 16);
            ngx_memcpy(&ngx_stream_sip_key[i], &r, 4);
        }
    }

    return ngx_stream_sip_channel_init_module(cycle);
}


static ngx_int_t
ngx_stream_sip_init_process(ngx_cycle_t *cycle)
{
    return ngx_stream_sip_channel_init_process(cycle);
}
