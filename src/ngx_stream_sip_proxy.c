
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"
#include "ngx_stream_sip_proxy.h"


/*
 * The proxy's entry points (RFC 3261 16): a request that nothing local
 * answered is forwarded statefully (ngx_stream_sip_tx.c) or, when it is
 * an ACK for a 2xx or has nowhere to be absorbed, statelessly; a
 * response is matched to its branch, passed to the worker holding it, or
 * forwarded by its Via.  Route sets are in ngx_stream_sip_route.c, next
 * hops and transports in ngx_stream_sip_nexthop.c.
 */


static ngx_int_t ngx_stream_sip_proxy_in_stx(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_proxy_stateless(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *tpl, ngx_uint_t flow,
    ngx_uint_t worker, ngx_uint_t transport, ngx_sockaddr_t *sa,
    socklen_t socklen);
static ngx_int_t ngx_stream_sip_response(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_msg_t *m, ngx_pool_t *pool,
    ngx_log_t *log);
static void ngx_stream_sip_proxy_log(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_branch_t *b);
static ngx_int_t ngx_stream_sip_response_sockaddr(ngx_sip_msg_t *m,
    ngx_sockaddr_t *sa, socklen_t *socklen);


static ngx_sip_header_t   ngx_stream_sip_passed_headers[NGX_SIP_MAX_HEADERS];


/*
 * Called for a validated request that nothing local answered: NGX_OK when
 * the proxy took it (forwarded, absorbed or answered), NGX_DECLINED when
 * there is no route for it here.  "targets" are the contacts the location
 * service found for the Request-URI (ngx_stream_sip_target_t, best q
 * first), or NULL.
 */

ngx_int_t
ngx_stream_sip_proxy_request(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_array_t *targets)
{
    ngx_int_t                        rc, route, slot;
    socklen_t                        socklen;
    ngx_str_t                        reason;
    ngx_uint_t                       transport, flow;
    ngx_sip_msg_t                   *m;
    ngx_sockaddr_t                   sa;
    ngx_sip_forward_t                tpl;
    ngx_stream_sip_stx_t            *stx;
    ngx_stream_sip_route_t           r;
    ngx_stream_sip_tx_source_t      *src;
    ngx_stream_upstream_srv_conf_t  *uscf;

    m = &ctx->msg;

    if (ngx_stream_sip_tx_init() != NGX_OK) {
        ngx_str_set(&reason, "Out of Memory");
        ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
        return NGX_OK;
    }

    if (ngx_stream_sip_proxy_in_stx(s, ctx) == NGX_OK) {
        return NGX_OK;
    }

    if (m->method_id == NGX_SIP_CANCEL) {

        /* its INVITE may be with an old worker, from before a reload */

        slot = (ctx->transport == NGX_STREAM_SIP_UDP)
               ? ngx_stream_sip_channel_prev_owner(&m->call_id) : -1;

        if (ngx_stream_sip_proxy_hand_over(s, ctx, slot) == NGX_OK) {
            return NGX_OK;
        }

        ngx_str_set(&reason, "Call/Transaction Does Not Exist");
        ngx_stream_sip_respond(s, ctx, 481, &reason, NULL);
        return NGX_OK;
    }

    if (ngx_sip_loop_detect(m, ngx_stream_sip_key) != NGX_OK) {
        ngx_str_set(&reason, "Loop Detected");
        ngx_stream_sip_respond(s, ctx, 482, &reason, NULL);
        return NGX_OK;
    }

    uscf = NULL;
    socklen = 0;
    transport = NGX_STREAM_SIP_UDP;
    flow = 0;

    /* decided once (maybe already for the location service): a copy */

    route = ngx_stream_sip_proxy_route(s, ctx);

    if (route == NGX_ERROR) {
        ngx_str_set(&reason, "Out of Memory");
        ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
        return NGX_OK;
    }

    r = ctx->route;

    if (r.strict) {
        route = NGX_STREAM_SIP_ROUTE_DIALOG;
    }

    if (route == NGX_STREAM_SIP_ROUTE_FOREIGN
        || (route != NGX_STREAM_SIP_ROUTE_DIALOG
            && (m->to.tag.len || route == NGX_STREAM_SIP_ROUTE_MORE)))
    {
        /*
         * In a dialog, or with a route set beyond us: only along a route
         * that we record-routed ourselves, never as an open relay.
         */

        if (m->method_id == NGX_SIP_ACK) {
            return NGX_OK;
        }

        ngx_str_set(&reason, "Not Here: No Route Through This Proxy");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
        return NGX_OK;
    }

    if (route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow
        && (r.worker == ngx_worker
            ? !ngx_stream_sip_flow_exists(r.flow)
            : ngx_stream_sip_channel_worker(r.worker) < 0))
    {
        /*
         * The connection is gone.  Only an RFC 5626 flow fails with it,
         * and a WebSocket (RFC 7118: nobody connects to a browser); a
         * phone that just used TCP or TLS is reached as its Contact (the
         * Request-URI) says, on a new connection, as with Kamailio.
         */

        if (r.ob || ngx_stream_sip_transport_ws(r.transport)) {
            if (m->method_id == NGX_SIP_ACK) {
                return NGX_OK;
            }

            ngx_str_set(&reason, "Flow Failed");
            ngx_stream_sip_respond(s, ctx, 430, &reason, NULL);
            return NGX_OK;
        }

        r.flow = 0;
    }

    if (route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow == 0 && !r.strict) {

        /* to a contact registered on its own connection: on that one */

        ngx_stream_sip_contact_flow(s, m, &r);
    }

    if (route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow) {

        /* back to a phone on the connection it opened (RFC 5626 5.3) */

        if (m->method_id == NGX_SIP_ACK) {
            ngx_memzero(&tpl, sizeof(ngx_sip_forward_t));
            tpl.pop_route = r.ours;

            return ngx_stream_sip_proxy_stateless(s, ctx, &tpl, r.flow,
                                                  r.worker, r.transport,
                                                  NULL, 0);
        }

    } else if (route == NGX_STREAM_SIP_ROUTE_DIALOG) {

        if (ngx_stream_sip_route_hop(m, &r, r.ours, &sa, &socklen,
                                     &transport)
            != NGX_OK)
        {
            ngx_str_set(&reason, "No Route to Next Hop");
            ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
            return NGX_OK;
        }

        if (m->method_id == NGX_SIP_ACK) {

            /*
             * the ACK of a 2xx goes on statelessly (RFC 3261 16.11), with
             * what strict routing asks, as for a branch
             */

            ngx_memzero(&tpl, sizeof(ngx_sip_forward_t));
            ngx_stream_sip_route_rewrite(m, &r, 1, &tpl);

            if (transport != NGX_STREAM_SIP_UDP) {
                flow = ngx_stream_sip_proxy_connect(s, &sa, socklen,
                                                    transport);
                if (flow == 0) {
                    return NGX_OK;
                }
            }

            return ngx_stream_sip_proxy_stateless(s, ctx, &tpl, flow,
                                                  ngx_worker, transport,
                                                  &sa, socklen);
        }

    } else if (targets == NULL) {

        rc = ngx_stream_sip_proxy_pass(s, &uscf, &sa, &socklen, &transport);

        if (rc == NGX_DECLINED) {
            return NGX_DECLINED;
        }

        if (m->method_id == NGX_SIP_ACK) {

            /* an ACK outside any transaction and dialog: nothing to do */
            return NGX_OK;
        }

        if (rc != NGX_OK) {
            ngx_str_set(&reason, "Bad Next Hop in sip_pass");
            ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
            return NGX_OK;
        }
    }

    if (transport == NGX_STREAM_SIP_UDP && targets == NULL
        && !(route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow)
        && ngx_stream_sip_udp_listening(s->connection) == NULL)
    {
        /* only where UDP is really used: TCP and TLS need no UDP listen */

        ngx_str_set(&reason, "No UDP Listener to Forward From");
        ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
        return NGX_OK;
    }

    if (route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow) {
        flow = r.flow;
        transport = r.transport;

    } else if (uscf == NULL && socklen && transport != NGX_STREAM_SIP_UDP) {

        flow = ngx_stream_sip_proxy_connect(s, &sa, socklen, transport);
        if (flow == 0) {
            ngx_str_set(&reason, "Could Not Connect to Next Hop");
            ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
            return NGX_OK;
        }
    }

    /* what this worker and this source may still hold */

    if (ngx_stream_sip_tx_admit(s, ctx, m->end - m->start, &src) != NGX_OK) {
        return NGX_OK;
    }

    stx = ngx_stream_sip_stx_create(s, ctx, targets, src);
    if (stx == NULL) {
        ngx_stream_sip_tx_release(src, 0);
        ngx_str_set(&reason, "Out of Memory");
        ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
        return NGX_OK;
    }

    stx->transport = transport;

    ngx_memzero(&tpl, sizeof(ngx_sip_forward_t));
    ngx_stream_sip_route_rewrite(m, &r,
                                 route == NGX_STREAM_SIP_ROUTE_DIALOG && !flow,
                                 &tpl);

    stx->pop_route = tpl.pop_route;
    stx->strict_ruri = tpl.ruri;
    stx->append_route = tpl.append_route;
    stx->cut = tpl.cut;
    stx->cut_off = tpl.cut ? (size_t) (tpl.cut_at - m->start) : 0;

    if (stx->strict_ruri.len) {
        stx->strict_ruri.data = ngx_pstrdup(stx->pool, &stx->strict_ruri);
        stx->append_route.data = stx->append_route.len
                                 ? ngx_pstrdup(stx->pool, &stx->append_route)
                                 : NULL;

        if (stx->strict_ruri.data == NULL
            || (stx->append_route.len && stx->append_route.data == NULL))
        {
            ngx_stream_sip_stx_free(stx);
            ngx_str_set(&reason, "Out of Memory");
            ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
            return NGX_OK;
        }
    }
    stx->drop = ctx->auth_header;

    if (uscf && ngx_stream_sip_stx_upstream(s, stx, uscf) != NGX_OK) {
        ngx_stream_sip_stx_free(stx);
        ngx_str_set(&reason, "Out of Memory");
        ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
        return NGX_OK;
    }

    if (m->method_id == NGX_SIP_INVITE) {

        /* RFC 3261 16.2: at once, so the caller stops retransmitting */

        ngx_str_set(&reason, "Trying");
        ngx_stream_sip_respond(s, ctx, 100, &reason, NULL);
    }

    if (targets || uscf) {
        rc = ngx_stream_sip_stx_next(stx, m);

    } else {
        rc = ngx_stream_sip_branch_start(stx, m, NULL, NULL,
                                         socklen ? &sa : NULL, socklen, flow,
                                         flow == r.flow && flow
                                         ? r.worker : ngx_worker,
                                         transport);

        if (rc == NGX_OK && flow == r.flow && flow && r.worker != ngx_worker
            && !r.ob && !r.strict)
        {
            /*
             * Whether another worker's connection is still there is
             * learnt from that worker: if gone, the Request-URI on a new
             * connection, as above for one of ours.
             */

            stx->branches->redial = 1;
        }
    }

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        if (uscf) {
            ngx_str_set(&reason, "No Upstream Peer Available");
            ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                          "SIP proxy: no live peer in upstream \"%V\"",
                          &uscf->host);

        } else {
            ngx_str_set(&reason, "No Route to Registered Contact");
        }

        ngx_stream_sip_respond(s, ctx, uscf ? 503 : 480, &reason, NULL);

    } else {
        ngx_str_set(&reason, "Could Not Forward");
        ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
    }

    ngx_stream_sip_stx_free(stx);

    return NGX_OK;
}


/* a request of a transaction we have: RFC 3261 17.2.1, 17.2.2, 16.10 */

static ngx_int_t
ngx_stream_sip_proxy_in_stx(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t                 reason;
    ngx_sip_msg_t            *m;
    ngx_stream_sip_stx_t     *stx;
    ngx_stream_sip_branch_t  *b;

    m = &ctx->msg;

    if (m->method_id == NGX_SIP_CANCEL) {
        stx = ngx_stream_sip_stx_find(&m->via.branch, NGX_SIP_INVITE);

        if (stx == NULL) {
            return NGX_DECLINED;
        }

        ngx_str_set(&reason, "OK");
        ngx_stream_sip_respond(s, ctx, 200, &reason, NULL);

        if (stx->completed || stx->cancelled) {
            return NGX_OK;
        }

        stx->cancelled = 1;

        for (b = stx->branches; b; b = b->next) {
            ngx_stream_sip_branch_cancel(b);
        }

        return NGX_OK;
    }

    stx = ngx_stream_sip_stx_find(&m->via.branch,
                                  m->method_id == NGX_SIP_ACK
                                  ? NGX_SIP_INVITE : m->method_id);
    if (stx == NULL) {
        return NGX_DECLINED;
    }

    if (m->method_id == NGX_SIP_ACK) {

        /* the ACK of a non-2xx final answer ends here (17.2.1) */

        stx->acked = 1;

        if (stx->retransmit.timer_set) {
            ngx_del_timer(&stx->retransmit);
        }

        return NGX_OK;
    }

    if (stx->last.len) {
        ngx_stream_sip_to_client(stx, &stx->last);

    } else if (stx->method == NGX_SIP_INVITE) {
        ngx_str_set(&reason, "Trying");
        ngx_stream_sip_respond(s, ctx, 100, &reason, NULL);
    }

    return NGX_OK;
}


/* an ACK of a 2xx: our Via on it, sent, forgotten */

static ngx_int_t
ngx_stream_sip_proxy_stateless(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *tpl, ngx_uint_t flow,
    ngx_uint_t worker, ngx_uint_t transport, ngx_sockaddr_t *sa,
    socklen_t socklen)
{
    u_char                     *p, branch[NGX_SIP_BRANCH_LEN];
    size_t                      len;
    ngx_int_t                   rc;
    ngx_str_t                   host, out;
    ngx_pool_t                 *pool;
    ngx_listening_t            *ls;
    ngx_sip_forward_t           f;
    ngx_stream_sip_srv_conf_t  *sscf;

    pool = s->connection->pool;
    ls = NULL;

    if (flow) {
        sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

        if (ngx_connection_local_sockaddr(s->connection, NULL, 0) != NGX_OK)
        {
            return NGX_OK;
        }

        rc = ngx_stream_sip_stream_host(sscf,
                                        s->connection->local_sockaddr,
                                        transport, NULL, pool, &host);
        if (rc == NGX_ERROR) {
            return NGX_OK;
        }

        if (rc == NGX_DECLINED) {

            /* no listen of that transport: the one it came to */

            if (ngx_stream_sip_udp_listening(s->connection) == NULL
                || ngx_stream_sip_udp_host(s->connection,
                                  ngx_stream_sip_udp_listening(s->connection),
                                  pool, &host)
                   != NGX_OK)
            {
                return NGX_OK;
            }
        }

    } else {
        ls = ngx_stream_sip_udp_listening(s->connection);
        transport = NGX_STREAM_SIP_UDP;

        if (ls == NULL
            || ngx_stream_sip_udp_host(s->connection, ls, pool, &host)
               != NGX_OK)
        {
            return NGX_OK;
        }
    }

    f = *tpl;

    len = ngx_sip_branch_make(branch, &ctx->msg,
                              ngx_stream_sip_salt(),
                              ngx_stream_sip_key);

    f.via.data = ngx_pnalloc(pool, sizeof("SIP/2.0/UDP ;branch=;rport")
                                   + host.len + len);
    if (f.via.data == NULL) {
        return NGX_ERROR;
    }

    f.via.len = ngx_sprintf(f.via.data, "SIP/2.0/%V %V;branch=%*s;rport",
                            &ngx_sip_transport(transport)->via, &host,
                            len, branch)
                - f.via.data;

    p = ngx_pnalloc(pool, ngx_sip_forward_size(&ctx->msg, &f));
    if (p == NULL) {
        return NGX_ERROR;
    }

    out.data = p;
    out.len = ngx_sip_forward_request(p, &ctx->msg, &f) - p;

    if (flow) {
        ngx_stream_sip_to_flow(flow, worker, &out, s->connection->log);

    } else {
        ngx_stream_sip_udp_send(ls, s->connection->log, &out, sa, socklen);
    }

    return NGX_OK;
}


/*
 * A response: ours when its top Via carries a branch we made.  With its
 * transaction it updates it; without (a 2xx retransmission, or after a
 * reload) it goes on statelessly to the next Via (RFC 3261 16.7, 16.11).
 */

ngx_int_t
ngx_stream_sip_proxy_response(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    return ngx_stream_sip_response(s, ctx, &ctx->msg, s->connection->pool,
                                   s->connection->log);
}


/*
 * A response another worker read on a flow it holds, for a branch of
 * ours: handled as if read here, without a session of its own.
 */

void
ngx_stream_sip_proxy_passed_response(u_char *data, size_t len,
    ngx_log_t *log)
{
    ngx_pool_t       *pool;
    ngx_sip_msg_t     m;
    ngx_sip_error_t   err;

    ngx_memzero(&m, sizeof(ngx_sip_msg_t));
    m.headers = ngx_stream_sip_passed_headers;
    m.max_headers = NGX_SIP_MAX_HEADERS;

    if (ngx_sip_parse_message(&m, data, data + len, 1, &err) != NGX_SIP_OK
        || m.request
        || ngx_sip_msg_validate(&m, &err) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP response from a worker dropped");
        return;
    }

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return;
    }

    if (ngx_stream_sip_response(NULL, NULL, &m, pool, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP response %ui from a worker dropped: not ours",
                      m.status);
    }

    ngx_destroy_pool(pool);
}


/*
 * The worker a response belongs to: the one that made the branch of its
 * top Via (it holds the transaction), or -1 for this one or none.
 */

ngx_int_t
ngx_stream_sip_response_owner(ngx_sip_msg_t *m)
{
    u_char         *p, *end;
    uint32_t        loop, salt;
    ngx_sip_via_t   via;

    if (m->request || m->hdr[NGX_SIP_HDR_VIA] == NULL) {
        return -1;
    }

    p = m->hdr[NGX_SIP_HDR_VIA]->value.data;
    end = p + m->hdr[NGX_SIP_HDR_VIA]->value.len;

    if (ngx_sip_parse_via(&p, end, &via) != NGX_OK
        || ngx_sip_branch_check(&via.branch, ngx_stream_sip_key, &loop,
                                &salt)
           != NGX_OK)
    {
        return -1;
    }

    return ngx_stream_sip_channel_worker_gen((salt >> 8) & 0xff,
                                             salt & 0xff);
}


/* "s" and "ctx" are NULL for a response passed by another worker */

static ngx_int_t
ngx_stream_sip_response(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_sip_msg_t *m, ngx_pool_t *pool, ngx_log_t *log)
{
    u_char                   *p;
    uint32_t                  loop, salt;
    socklen_t                 socklen;
    ngx_str_t                 out;
    ngx_uint_t                status, transport;
    ngx_sip_msg_t             fwd;
    ngx_sockaddr_t            sa;
    ngx_listening_t          *ls;
    ngx_stream_sip_stx_t     *stx;
    ngx_stream_sip_branch_t  *b;

    if (ngx_sip_branch_check(&m->via.branch, ngx_stream_sip_key, &loop,
                             &salt)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* an answer to a request of our own (our CANCEL of a branch) */

    if (ngx_stream_sip_client_tx_response(m) == NGX_OK
        || m->cseq.method_id == NGX_SIP_CANCEL)
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, m->end - m->start);
    if (p == NULL) {
        return NGX_OK;
    }

    out.data = p;
    out.len = ngx_sip_forward_response(p, m) - p;

    /* a client transaction is its branch and its method (17.1.3) */

    b = ngx_stream_sip_branch_find(&m->via.branch);

    if (b && b->stx->method != m->cseq.method_id) {
        return NGX_OK;
    }

    if (b == NULL) {
        if (ngx_stream_sip_reparse(&out, &fwd) != NGX_OK
            || ngx_stream_sip_response_sockaddr(&fwd, &sa, &socklen)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "SIP response dropped: no way back");
            return NGX_OK;
        }

        ls = s ? ngx_stream_sip_udp_listening(s->connection)
               : ngx_stream_sip_udp_listening_for(sa.sockaddr.sa_family, 0);

        transport = ngx_sip_transport_id(&fwd.via.transport);

        if (transport != NGX_STREAM_SIP_UDP
            && transport != NGX_STREAM_SIP_NONE)
        {
            ngx_stream_sip_response_stream(s, m, &fwd, &out, &sa, socklen,
                                           ls, transport, log);
            return NGX_OK;
        }

        if (ls) {
            ngx_stream_sip_udp_send(ls, log, &out, &sa, socklen);
        }

        return NGX_OK;
    }

    stx = b->stx;
    status = m->status;

    if (ctx) {
        ctx->status = status;
    }

    if (status < 200) {

        if (b->completed) {
            return NGX_OK;
        }

        /* a provisional answer stops INVITE retransmissions (17.1.1.2) */

        if (stx->method == NGX_SIP_INVITE) {
            if (b->retransmit.timer_set) {
                ngx_del_timer(&b->retransmit);
            }

            /* Timer B is over; Timer C runs from every provisional (16.7) */

            if (status > 100 || b->status == 0) {
                ngx_add_timer(&b->timeout,
                              ngx_stream_sip_stx_left(stx, stx->timer_c));
            }

        } else {
            b->interval = stx->t2;
        }

        if (b->status < 100) {
            b->status = 100;
        }

        if (b->cancel_pending) {
            ngx_stream_sip_branch_cancel(b);
        }

        if (status == 100 || stx->completed) {

            /* 100 is hop by hop: we sent our own (16.7 step 3) */
            return NGX_OK;
        }

        b->status = status;

        ngx_stream_sip_to_client(stx, &out);

        return NGX_OK;
    }

    if (b->completed) {

        /* a 2xx again goes on; a non-2xx again: our ACK was lost */

        if (status < 300) {
            ngx_stream_sip_to_client(stx, &out);

        } else if (stx->method == NGX_SIP_INVITE) {
            if (b->ack.len) {
                ngx_stream_sip_to_peer(b, &b->ack);

            } else {

                /* the 487 after a Timer C CANCEL */
                ngx_stream_sip_branch_ack(b, m);
            }
        }

        return NGX_OK;
    }

    if (stx->method == NGX_SIP_INVITE && status >= 300) {
        ngx_stream_sip_branch_ack(b, m);
    }

    if (s) {
        ngx_stream_sip_proxy_log(s, ctx, b);
    }

    ngx_stream_sip_branch_done(b, status, &out);

    return NGX_OK;
}


/*
 * A final answer ends a client transaction: the access log line of the
 * session it came in (its datagram, or its message on a flow) gets
 * $sip_duration, and $upstream_addr and $upstream_session_time of
 * nginx's upstream module, as for a proxy_pass session.
 */

static void
ngx_stream_sip_proxy_log(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_stream_sip_branch_t *b)
{
    u_char                       *p;
    ngx_str_t                    *name;
    ngx_stream_upstream_state_t  *state;

    ctx->duration = ngx_current_msec - b->stx->start;
    ctx->has_duration = 1;

    if (s->upstream_states == NULL) {
        s->upstream_states = ngx_array_create(s->connection->pool, 1,
                                        sizeof(ngx_stream_upstream_state_t));
        if (s->upstream_states == NULL) {
            return;
        }
    }

    state = ngx_array_push(s->upstream_states);
    name = ngx_palloc(s->connection->pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(s->connection->pool, NGX_SOCKADDR_STRLEN);

    if (state == NULL || name == NULL || p == NULL) {
        return;
    }

    ngx_memzero(state, sizeof(ngx_stream_upstream_state_t));

    /* a branch on a flow may have no address of its own: the flow's */

    if (b->peer_len) {
        name->len = ngx_sock_ntop(&b->peer.sockaddr, b->peer_len, p,
                                  NGX_SOCKADDR_STRLEN, 1);

    } else {
        name->len = ngx_sock_ntop(s->connection->sockaddr,
                                  s->connection->socklen, p,
                                  NGX_SOCKADDR_STRLEN, 1);
    }

    name->data = p;

    state->peer = name;
    state->response_time = ctx->duration;
    state->connect_time = (ngx_msec_t) -1;
    state->first_byte_time = (ngx_msec_t) -1;
}


/* where a response goes by its (new) top Via: received, rport, sent-by */

static ngx_int_t
ngx_stream_sip_response_sockaddr(ngx_sip_msg_t *m, ngx_sockaddr_t *sa,
    socklen_t *socklen)
{
    if (m->via.text.len == 0) {
        return NGX_ERROR;
    }

    return ngx_stream_sip_host_sockaddr(m->via.received.len
                                        ? &m->via.received : &m->via.host,
                                        m->via.rport ? m->via.rport
                                        : (m->via.port ? m->via.port : 5060),
                                        sa, socklen);
}


/*
 * A response whose transaction is gone (a 2xx again: RFC 3261 16.7 step
 * 10 is stateless then) to a Via of TCP or TLS goes by that transport,
 * not UDP (18.2.2): on the caller's connection that our Via names (nfl,
 * ngx_stream_sip_branch_build(); a response on a flow comes to the worker
 * of its branch, the one that had the caller), or one to its received
 * address and rport, else on a new connection to its sent-by.
 */

void
ngx_stream_sip_response_stream(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_sip_msg_t *fwd, ngx_str_t *out, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_listening_t *ls, ngx_uint_t transport,
    ngx_log_t *log)
{
    ngx_str_t   fl;
    ngx_uint_t  flow, worker, w;

    if (ngx_sip_param(&m->via.params, "nfl", &fl) == NGX_OK
        && ngx_stream_sip_flow_verify(&m->call_id, fl.data, fl.data + fl.len,
                                      &worker)
           == NGX_OK
        && ngx_stream_sip_flow_parse(&fl, &w, &flow) == NGX_OK
        && (worker != ngx_worker || ngx_stream_sip_flow_exists(flow)))
    {
        ngx_stream_sip_to_flow(flow, worker, out, log);
        return;
    }

    flow = ngx_stream_sip_flow_peer(sa, socklen, transport);

    if (flow == 0) {
        ngx_inet_set_port(&sa->sockaddr,
                          fwd->via.port ? fwd->via.port
                          : ngx_sip_transport_port(transport));

        flow = ngx_stream_sip_flow_connect(ls, sa, socklen, transport,
                                  s ? ngx_stream_get_module_srv_conf(s,
                                                    ngx_stream_sip_ssl_module)
                                    : NULL,
                                  NULL, log);
    }

    if (flow == 0) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP response dropped: no connection back");
        return;
    }

    ngx_stream_sip_to_flow(flow, ngx_worker, out, log);
}
