
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The phase engine of a validated request, in the manner of nginx's own
 * (ngx_stream_core_run_phases()): the request goes through the handlers
 * of ngx_stream_sip_phases[] in order, ctx->phase naming the next one.
 * A handler that cannot finish now (a timer, a DNS answer, a reply from
 * a store) calls ngx_stream_sip_phase_wait() and returns NGX_AGAIN; the
 * message then keeps its pool, its parsed headers, its buffer and its
 * session until the event calls ngx_stream_sip_phase_resume(), which
 * goes on with the next phase.  The glue (ngx_stream_sip_module.c)
 * keeps a waiting message's session open: a datagram's session is not
 * ended, a TCP or TLS connection reads no further message until this
 * one is finished, so that the connection's messages keep their order.
 *
 * A worker's waiting requests are in a table by their top Via branch:
 * a retransmission of one (same branch, sent-by and method) is absorbed
 * while it waits, and a CANCEL for a waiting INVITE is answered 200 at
 * once and the INVITE 487 when it resumes.  The table is bounded: a
 * handler told NGX_BUSY by ngx_stream_sip_phase_wait() does not wait.
 */


#define NGX_STREAM_SIP_MAX_WAITING  1024


struct ngx_stream_sip_wait_s {
    ngx_stream_sip_tnode_t          node;     /* by the top Via branch */
    ngx_stream_session_t           *session;
    ngx_sip_msg_t                  *msg;
    ngx_stream_sip_wait_cancel_pt   cancel;
    void                           *data;
    unsigned                        cancelled:1;  /* a CANCEL came */
};


static ngx_int_t ngx_stream_sip_phase_next(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_phase_waiting(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_stream_sip_wait_t *ngx_stream_sip_phase_find(ngx_sip_msg_t *m,
    ngx_uint_t method);
static void ngx_stream_sip_phase_cleanup(void *data);
static ngx_int_t ngx_stream_sip_registrar_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_location_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_forward_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);


/*
 * The order of the phases.  Validation is done before them, in the glue:
 * only a valid request gets here.
 */

static ngx_stream_sip_phase_pt  ngx_stream_sip_phases[] = {
    ngx_stream_sip_limit_handler,      /* sip_limit: ngx_stream_sip_limit.c */
    ngx_stream_sip_delay_phase,        /* sip_debug_delay */
    ngx_stream_sip_local_phase,        /* is it ours: ngx_stream_sip_local.c */
    ngx_stream_sip_auth_phase,         /* sip_auth: ngx_stream_sip_auth.c */
    ngx_stream_sip_registrar_phase,    /* REGISTER for us */
    ngx_stream_sip_location_phase,     /* a user of ours, where he is */
    ngx_stream_sip_forward_phase,      /* along a route, to sip_pass */
    ngx_stream_sip_answer_phase        /* what we answer ourselves */
};


static ngx_stream_sip_table_t  ngx_stream_sip_waiting;


ngx_int_t
ngx_stream_sip_phase_run(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ctx->phase = 0;
    ctx->local = 0;

    if (ngx_stream_sip_waiting.n
        && ngx_stream_sip_phase_waiting(s, ctx) == NGX_DONE)
    {
        return NGX_DONE;
    }

    return ngx_stream_sip_phase_next(s, ctx);
}


static ngx_int_t
ngx_stream_sip_phase_next(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_int_t  rc;

    while (ctx->phase < sizeof(ngx_stream_sip_phases)
                        / sizeof(ngx_stream_sip_phase_pt))
    {
        rc = ngx_stream_sip_phases[ctx->phase](s, ctx);

        if (rc == NGX_AGAIN) {

            if (ctx->wait == NULL) {
                ngx_log_error(NGX_LOG_ALERT, s->connection->log, 0,
                              "SIP phase %ui suspended without a wait",
                              ctx->phase);
                return NGX_DONE;
            }

            return NGX_AGAIN;
        }

        if (rc != NGX_OK && rc != NGX_DECLINED) {
            return NGX_DONE;
        }

        ctx->phase++;
    }

    return NGX_DONE;
}


/*
 * A request matching one that waits: a retransmission of it is absorbed,
 * a CANCEL of a waiting INVITE answered (RFC 3261 9.2: 200 for the
 * CANCEL, 487 for the INVITE, here when it resumes).
 */

static ngx_int_t
ngx_stream_sip_phase_waiting(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t               reason;
    ngx_sip_msg_t          *m;
    ngx_stream_sip_wait_t  *w;

    m = &ctx->msg;

    if (m->via.branch.len == 0) {
        return NGX_DECLINED;
    }

    w = ngx_stream_sip_phase_find(m, m->method_id);

    if (w) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, s->connection->log, 0,
                       "sip retransmission of a waiting %V absorbed",
                       &m->method);
        return NGX_DONE;
    }

    if (m->method_id != NGX_SIP_CANCEL) {
        return NGX_DECLINED;
    }

    w = ngx_stream_sip_phase_find(m, NGX_SIP_INVITE);

    if (w == NULL) {
        return NGX_DECLINED;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, s->connection->log, 0,
                   "sip CANCEL of a waiting INVITE");

    w->cancelled = 1;

    ngx_str_set(&reason, "OK");
    ngx_stream_sip_respond(s, ctx, 200, &reason, NULL);

    return NGX_DONE;
}


/* RFC 3261 17.2.3: the branch, the sent-by and the method */

static ngx_stream_sip_wait_t *
ngx_stream_sip_phase_find(ngx_sip_msg_t *m, ngx_uint_t method)
{
    uint32_t                 key;
    ngx_sip_msg_t           *wm;
    ngx_stream_sip_tnode_t  *node;
    ngx_stream_sip_wait_t   *w;

    key = ngx_stream_sip_table_key(&m->via.branch);

    for (node = ngx_stream_sip_table_bucket(&ngx_stream_sip_waiting, key);
         node;
         node = node->next)
    {
        if (node->key != key) {
            continue;
        }

        w = (ngx_stream_sip_wait_t *) node;
        wm = w->msg;

        if (wm->method_id == method
            && (method != NGX_SIP_UNKNOWN
                || (wm->method.len == m->method.len
                    && ngx_strncmp(wm->method.data, m->method.data,
                                   m->method.len) == 0))
            && wm->via.branch.len == m->via.branch.len
            && ngx_strncmp(wm->via.branch.data, m->via.branch.data,
                           m->via.branch.len) == 0
            && wm->via.port == m->via.port
            && wm->via.host.len == m->via.host.len
            && ngx_strncasecmp(wm->via.host.data, m->via.host.data,
                               m->via.host.len) == 0)
        {
            return w;
        }
    }

    return NULL;
}


/*
 * Called by a phase handler about to return NGX_AGAIN: "cancel" is
 * called with "data" if the message is abandoned while it waits (its
 * connection closes), to take back the timer or the query it waits on.
 * NGX_BUSY: too many requests wait already, the handler must not wait.
 */

ngx_int_t
ngx_stream_sip_phase_wait(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_wait_cancel_pt cancel, void *data)
{
    ngx_uint_t              i;
    ngx_sip_msg_t          *m;
    ngx_connection_t       *c;
    ngx_sip_header_t       *headers;
    ngx_pool_cleanup_t     *cln;
    ngx_stream_sip_wait_t  *w;

    c = s->connection;
    m = &ctx->msg;

    if (ngx_stream_sip_waiting.buckets == NULL
        && ngx_stream_sip_table_init(&ngx_stream_sip_waiting, 64,
                                     ngx_cycle->log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_stream_sip_waiting.n >= NGX_STREAM_SIP_MAX_WAITING) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "SIP request cannot wait: %d requests wait already",
                      NGX_STREAM_SIP_MAX_WAITING);
        return NGX_BUSY;
    }

    /*
     * The message's pool (the session's for a datagram, the message's
     * own on a stream) lives until the message is finished.  The header
     * slices were parsed into the worker's array, which the next message
     * parses into: they go with the message.
     */

    w = ngx_pcalloc(c->pool, sizeof(ngx_stream_sip_wait_t));
    headers = ngx_palloc(c->pool, m->nheaders * sizeof(ngx_sip_header_t));

    if (w == NULL || headers == NULL) {
        return NGX_ERROR;
    }

    if (ctx->transport == NGX_STREAM_SIP_UDP && !ctx->wait_cleanup) {

        /* a stream's connection has its cleanup: ngx_stream_sip_cleanup() */

        cln = ngx_pool_cleanup_add(c->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_stream_sip_phase_cleanup;
        cln->data = ctx;

        ctx->wait_cleanup = 1;
    }

    ngx_memcpy(headers, m->headers, m->nheaders * sizeof(ngx_sip_header_t));

    for (i = 0; i < NGX_SIP_HDR_MAX; i++) {
        if (m->hdr[i]) {
            m->hdr[i] = headers + (m->hdr[i] - m->headers);
        }
    }

    m->headers = headers;
    m->max_headers = m->nheaders;

    w->session = s;
    w->msg = m;
    w->cancel = cancel;
    w->data = data;
    w->node.key = ngx_stream_sip_table_key(&m->via.branch);

    ngx_stream_sip_table_insert(&ngx_stream_sip_waiting, &w->node);

    ctx->wait = w;

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "sip %V waits in phase %ui", &m->method, ctx->phase);

    return NGX_OK;
}


/*
 * From the event a waiting phase waited for.  rc is that phase's
 * verdict: NGX_OK or NGX_DECLINED, the next phase; NGX_DONE or NGX_ERROR,
 * finished (the phase answered it, or gave up).
 */

void
ngx_stream_sip_phase_resume(ngx_stream_session_t *s, ngx_int_t rc)
{
    ngx_str_t               reason;
    ngx_uint_t              cancelled;
    ngx_stream_sip_ctx_t   *ctx;
    ngx_stream_sip_wait_t  *w;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    w = ctx->wait;

    if (w == NULL) {
        return;
    }

    ngx_stream_sip_table_delete(&ngx_stream_sip_waiting, &w->node);

    cancelled = w->cancelled;
    ctx->wait = NULL;

    ngx_stream_sip_message_resume(s, ctx);

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, s->connection->log, 0,
                   "sip %V resumed in phase %ui", &ctx->msg.method,
                   ctx->phase);

    if (cancelled) {
        ngx_str_set(&reason, "Request Terminated");
        ngx_stream_sip_respond(s, ctx, 487, &reason, NULL);

    } else if (rc == NGX_OK || rc == NGX_DECLINED) {
        ctx->phase++;

        if (ngx_stream_sip_phase_next(s, ctx) == NGX_AGAIN) {
            ngx_stream_sip_message_wait(s, ctx);
            return;
        }
    }

    ngx_stream_sip_message_finish(s, ctx);
}


/*
 * The message is abandoned while it waits: its session is closing.  What
 * it waits for is taken back; its memory goes with its pool.
 */

void
ngx_stream_sip_phase_abort(ngx_stream_sip_ctx_t *ctx)
{
    ngx_stream_sip_wait_t  *w;

    w = ctx->wait;

    if (w == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ctx->session->connection->log, 0,
                  "SIP %V dropped: its session closed while it waited",
                  &ctx->msg.method);

    ngx_stream_sip_table_delete(&ngx_stream_sip_waiting, &w->node);

    ctx->wait = NULL;

    if (w->cancel) {
        w->cancel(w->data);
    }
}


static void
ngx_stream_sip_phase_cleanup(void *data)
{
    ngx_stream_sip_ctx_t  *ctx = data;

    ngx_stream_sip_phase_abort(ctx);
}


/*
 * Whether a request of this server may wait in a phase: then the worker
 * it waits in is the one to tell its retransmissions.
 */

ngx_uint_t
ngx_stream_sip_phase_may_wait(ngx_stream_session_t *s)
{
    return ngx_stream_sip_delay_enabled(s);
}


/*
 * The phases below only call what the registrar and the proxy offer; what
 * each needs to know of the request is decided here, once.
 */

static ngx_int_t
ngx_stream_sip_registrar_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    if (!ctx->local || ctx->msg.method_id == NGX_SIP_ACK) {
        return NGX_DECLINED;
    }

    return ngx_stream_sip_registrar_handler(s, ctx) == NGX_DECLINED
           ? NGX_DECLINED : NGX_DONE;
}


/* a user of ours: to where the location service says (RFC 3261 16.5) */

static ngx_int_t
ngx_stream_sip_location_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   reason;
    ngx_array_t                *targets;
    ngx_sip_msg_t              *m;
    ngx_stream_sip_srv_conf_t  *sscf;

    m = &ctx->msg;

    if (!ctx->local || m->ruri.user.len == 0 || m->to.tag.len
        || m->method_id == NGX_SIP_ACK || m->method_id == NGX_SIP_CANCEL
        || m->method_id == NGX_SIP_REGISTER
        || ngx_stream_sip_proxy_route(s, ctx) > NGX_STREAM_SIP_ROUTE_OURS)
    {
        return NGX_DECLINED;
    }

    rc = ngx_stream_sip_registrar_lookup(s, &m->ruri, &targets);

    if (rc == NGX_OK
        && ngx_stream_sip_proxy_request(s, ctx, targets) != NGX_DECLINED)
    {
        return NGX_DONE;
    }

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (rc != NGX_DONE || sscf->pass.len) {
        return NGX_DECLINED;
    }

    /* a user in the user file is known, just not reachable now */

    if (ngx_stream_sip_auth_known(s, &m->ruri.user)) {
        ngx_str_set(&reason, "Temporarily Unavailable");
        ngx_stream_sip_respond(s, ctx, 480, &reason, NULL);
        return NGX_DONE;
    }

    ngx_str_set(&reason, "Not Found");
    ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);

    return NGX_DONE;
}


/*
 * The proxy: requests in a dialog go along our Record-Route, all others
 * to sip_pass, but for what we answer ourselves: REGISTER and OPTIONS to
 * the server itself.  CANCEL finds its INVITE there.
 */

static ngx_int_t
ngx_stream_sip_forward_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_sip_msg_t              *m;
    ngx_stream_sip_srv_conf_t  *sscf;

    m = &ctx->msg;
    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (m->to.tag.len || m->hdr[NGX_SIP_HDR_ROUTE]
        || m->method_id == NGX_SIP_CANCEL
        || (sscf->pass.len
            && !(ctx->local && (m->method_id == NGX_SIP_REGISTER
                                || (m->method_id == NGX_SIP_OPTIONS
                                    && m->ruri.user.len == 0)))))
    {
        if (ngx_stream_sip_proxy_request(s, ctx, NULL) != NGX_DECLINED) {
            return NGX_DONE;
        }
    }

    return NGX_DECLINED;
}
