
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
 * The server and client transactions of the stateful proxy (RFC 3261 17)
 * and their timers; the tables that find them by branch (see
 * ngx_stream_sip_proxy.h).
 */


static void ngx_stream_sip_stx_charge(ngx_stream_sip_stx_t *stx,
    u_char *data, ssize_t len);
static ngx_int_t ngx_stream_sip_branch_build(ngx_stream_sip_branch_t *b,
    ngx_sip_msg_t *m, ngx_str_t *ruri, ngx_str_t *route, ngx_uint_t flow,
    ngx_listening_t *ls, ngx_uint_t transport, ngx_str_t *host);
static void ngx_stream_sip_branch_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_branch_timeout(ngx_event_t *ev);
static void ngx_stream_sip_stx_advance(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_stx_final(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_stx_complete(ngx_stream_sip_stx_t *stx,
    ngx_uint_t status);
static void ngx_stream_sip_stx_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_stx_timeout(ngx_event_t *ev);
static ngx_uint_t ngx_stream_sip_better(ngx_uint_t status, ngx_uint_t best);
static ngx_int_t ngx_stream_sip_stx_answer(ngx_stream_sip_stx_t *stx,
    ngx_uint_t status, char *reason);
static ngx_int_t ngx_stream_sip_branch_redial(ngx_stream_sip_branch_t *b);
static void ngx_stream_sip_branch_resend_udp(ngx_stream_sip_branch_t *b);
static void ngx_stream_sip_tx_flow_failed(ngx_uint_t flow);
static void ngx_stream_sip_branch_cancelled(void *data, ngx_uint_t status,
    ngx_sip_msg_t *resp);
static void ngx_stream_sip_stx_hold(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_stx_unhold(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_branch_hold(ngx_stream_sip_branch_t *b);
static void ngx_stream_sip_branch_unhold(ngx_stream_sip_branch_t *b);
static ngx_stream_sip_tnode_t *ngx_stream_sip_table_find(
    ngx_stream_sip_table_t *t, ngx_str_t *branch, ngx_uint_t method,
    ngx_uint_t server);


static ngx_stream_sip_table_t  ngx_stream_sip_branches;
static ngx_stream_sip_table_t  ngx_stream_sip_stxs;
static ngx_uint_t         ngx_stream_sip_tx_ready;
static uint32_t           ngx_stream_sip_tx_counter;

static ngx_sip_header_t   ngx_stream_sip_proxy_headers[NGX_SIP_MAX_HEADERS];


/*
 * What our branches carry besides the loop hash: a counter, and this
 * worker's generation and number, so that any worker can pass an answer
 * to the one holding its transaction, also across a reload.
 */

uint32_t
ngx_stream_sip_salt(void)
{
    ngx_stream_sip_tx_counter++;

    return ((ngx_stream_sip_tx_counter & 0xffff) << 16)
           | (ngx_stream_sip_channel_generation() << 8)
           | (ngx_worker & 0xff);
}


/* the tables of this worker, made with its first transaction */

ngx_int_t
ngx_stream_sip_tx_init(void)
{
    if (ngx_stream_sip_tx_ready) {
        return NGX_OK;
    }

    if (ngx_stream_sip_table_init(&ngx_stream_sip_branches, 1024,
                                  ngx_cycle->log)
        != NGX_OK
        || ngx_stream_sip_table_init(&ngx_stream_sip_stxs, 1024,
                                     ngx_cycle->log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_stream_sip_flow_on_failed(ngx_stream_sip_tx_flow_failed);

    ngx_stream_sip_tx_ready = 1;

    return NGX_OK;
}


/*
 * A transaction counts on the flow it waits on (the caller's, a
 * branch's) while it has no final answer: a leaving worker closes an
 * idle flow only when none does (ngx_stream_sip_flow_busy()).
 */

static void
ngx_stream_sip_stx_hold(ngx_stream_sip_stx_t *stx)
{
    if (stx->client_flow && !stx->held) {
        ngx_stream_sip_flow_hold(stx->client_flow, 1);
        stx->held = 1;
    }
}


static void
ngx_stream_sip_stx_unhold(ngx_stream_sip_stx_t *stx)
{
    if (stx->held) {
        ngx_stream_sip_flow_hold(stx->client_flow, -1);
        stx->held = 0;
    }
}


static void
ngx_stream_sip_branch_hold(ngx_stream_sip_branch_t *b)
{
    if (b->flow && !b->held) {
        ngx_stream_sip_flow_hold(b->flow, 1);
        b->held = 1;
    }
}


static void
ngx_stream_sip_branch_unhold(ngx_stream_sip_branch_t *b)
{
    if (b->held) {
        ngx_stream_sip_flow_hold(b->flow, -1);
        b->held = 0;
    }
}


ngx_stream_sip_stx_t *
ngx_stream_sip_stx_create(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_array_t *targets, ngx_stream_sip_tx_source_t *src)
{
    u_char                     *p, *rr, token[16];
    ngx_str_t                   ob;
    ngx_uint_t                  i, outbound;
    ngx_pool_t                 *pool;
    ngx_sip_msg_t              *m;
    ngx_sip_addr_t              contact;
    ngx_connection_t           *c;
    size_t                      size;
    ngx_stream_sip_stx_t       *stx;
    ngx_stream_sip_target_t    *t;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = s->connection;
    m = &ctx->msg;
    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);
    size = 0;

    pool = ngx_create_pool(2048, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    stx = ngx_pcalloc(pool, sizeof(ngx_stream_sip_stx_t));
    if (stx == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    stx->pool = pool;
    stx->log = ngx_cycle->log;
    stx->start = ngx_current_msec;
    stx->sscf = sscf;
    stx->sslcf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_ssl_module);
    stx->ls = ngx_stream_sip_udp_listening(c);
    stx->method = m->method_id;
    stx->t1 = sscf->t1;
    stx->t2 = sscf->t2;
    stx->t4 = sscf->t4;
    stx->timer_c = sscf->invite_timeout;
    stx->tlcf = ngx_stream_get_module_srv_conf(s,
                                               ngx_stream_sip_tx_limit_module);

    stx->retransmit.handler = ngx_stream_sip_stx_retransmit;
    stx->retransmit.data = stx;
    stx->retransmit.log = stx->log;
    stx->retransmit.cancelable = 1;

    stx->timeout.handler = ngx_stream_sip_stx_timeout;
    stx->timeout.data = stx;
    stx->timeout.log = stx->log;
    stx->timeout.cancelable = 1;

    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        goto failed;
    }

    ngx_memcpy(&stx->local, c->local_sockaddr, c->local_socklen);
    stx->local_len = c->local_socklen;

    /* without a UDP listen, our address is that of the caller's side */

    if (stx->ls
        ? ngx_stream_sip_udp_host(c, stx->ls, pool, &stx->via_host)
          != NGX_OK
        : ngx_stream_sip_stream_host(stx->sscf, &stx->local.sockaddr,
                                     ctx->transport, c->listening, pool,
                                     &stx->via_host)
          != NGX_OK)
    {
        goto failed;
    }

    stx->orig.len = m->end - m->start;
    stx->orig.data = ngx_pnalloc(pool, stx->orig.len);
    stx->their.len = m->via.branch.len;
    stx->their.data = ngx_pnalloc(pool, m->via.branch.len + 1);

    if (stx->orig.data == NULL || stx->their.data == NULL) {
        goto failed;
    }

    ngx_memcpy(stx->orig.data, m->start, stx->orig.len);
    ngx_memcpy(stx->their.data, m->via.branch.data, m->via.branch.len);

    if (sscf->record_route && m->method_id != NGX_SIP_ACK
        && (m->to.tag.len == 0 || m->method_id == NGX_SIP_INVITE))
    {
        rr = ngx_pnalloc(pool, sizeof("<sip:;lr;nsip=>") + 16
                               + stx->via_host.len);
        if (rr == NULL) {
            goto failed;
        }

        ngx_stream_sip_proxy_route_token(&m->call_id, token);

        stx->record_route.data = rr;
        stx->record_route.len = ngx_sprintf(rr, "<sip:%V;lr;nsip=%*s>",
                                            &stx->via_host, (size_t) 16,
                                            token)
                                - rr;

        if (stx->ls) {
            stx->rr_udp = stx->record_route;
        }

        if (c->type == SOCK_STREAM) {

            /*
             * The caller's side: its transport, its very connection; an
             * RFC 5626 phone says "ob" in its Contact (RFC 5626 4.3).
             */

            outbound = 0;

            if (m->hdr[NGX_SIP_HDR_CONTACT]) {
                p = m->hdr[NGX_SIP_HDR_CONTACT]->value.data;

                outbound = ngx_sip_parse_addr(&p,
                                 p + m->hdr[NGX_SIP_HDR_CONTACT]->value.len,
                                 &contact, 1)
                           == NGX_OK
                           && ngx_sip_uri_param(&contact.uri.params, "ob",
                                                &ob)
                              == NGX_OK;
            }

            if (ngx_stream_sip_flow_route(stx, m, c->number, ngx_worker,
                                          ctx->transport, c->listening,
                                          outbound, &stx->record_route)
                == NGX_ERROR)
            {
                goto failed;
            }
        }
    }

    if (targets && targets->nelts) {

        /* beyond sip_max_branches a contact is never tried: not kept */

        stx->ntargets = ngx_min(targets->nelts,
                                (ngx_uint_t) stx->tlcf->max_branches);
        size = stx->ntargets * sizeof(ngx_stream_sip_target_t);
        stx->targets = ngx_palloc(pool, size);
        if (stx->targets == NULL) {
            goto failed;
        }

        t = targets->elts;

        if (stx->ntargets < targets->nelts) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "SIP proxy: %ui of %ui contacts left out, "
                          "over sip_max_branches",
                          targets->nelts - stx->ntargets, targets->nelts);
        }

        for (i = 0; i < stx->ntargets; i++) {

            /* the lookup's copies live in the datagram's pool */

            stx->targets[i].q = t[i].q;
            stx->targets[i].flow = t[i].flow;
            stx->targets[i].worker = t[i].worker;
            stx->targets[i].transport = t[i].transport;
            stx->targets[i].uri.len = t[i].uri.len;
            stx->targets[i].path.len = t[i].path.len;
            stx->targets[i].uri.data = ngx_pstrdup(pool, &t[i].uri);
            stx->targets[i].path.data = ngx_pstrdup(pool, &t[i].path);

            if (stx->targets[i].uri.data == NULL
                || (t[i].path.len && stx->targets[i].path.data == NULL))
            {
                goto failed;
            }

            size += t[i].uri.len + t[i].path.len;
        }
    }

    /* where answers go: as for our own (RFC 3261 18.2.2, RFC 3581) */

    ngx_memcpy(&stx->client, c->sockaddr, c->socklen);
    stx->client_len = c->socklen;

    if (c->type == SOCK_STREAM) {
        stx->client_flow = c->number;
    }

    /*
     * A browser's Via names a made-up host: where it really is goes in
     * it, as RFC 3261 18.2.1 and RFC 3581 say for a sent-by that is not
     * the source.  Other transports' Vias go as they came.
     */

    if (ngx_stream_sip_transport_ws(ctx->transport)) {
        stx->received.data = ngx_pstrdup(pool, &c->addr_text);
        if (stx->received.data == NULL) {
            goto failed;
        }

        stx->received.len = c->addr_text.len;
        stx->rport = ngx_inet_get_port(c->sockaddr);
    }

    if (!m->via.has_rport && m->via.text.len) {
        ngx_inet_set_port(&stx->client.sockaddr,
                          m->via.port ? m->via.port : 5060);
    }

    if (stx->their.len) {
        stx->node.key = ngx_stream_sip_table_key(&stx->their);
        ngx_stream_sip_table_insert(&ngx_stream_sip_stxs, &stx->node);
        stx->in_table = 1;

        ngx_stream_sip_stx_hold(stx);
    }

    /* from here on given back by ngx_stream_sip_stx_free() */

    stx->source = src;
    ngx_stream_sip_stx_charge(stx, NULL, NGX_STREAM_SIP_TX_OVERHEAD
                                         + stx->orig.len + size);

    return stx;

failed:

    ngx_destroy_pool(pool);

    return NULL;
}


/*
 * What a transaction keeps counts against sip_transactions: a message
 * it copied (len > 0), or one it gave back (len < 0, freed when it was
 * a large allocation of the pool; data may then be NULL: nothing to
 * free).
 */

static void
ngx_stream_sip_stx_charge(ngx_stream_sip_stx_t *stx, u_char *data,
    ssize_t len)
{
    if (len < 0 && data
        && ngx_pfree(stx->pool, data) != NGX_OK)
    {
        /* a small one stays in the pool until the end */
        return;
    }

    stx->charged += len;
    ngx_stream_sip_tx_charge(stx->source, len);
}


/*
 * A timer of the transaction cut to what is left of its lifetime
 * (sip_transaction_lifetime): however often a callee rings (Timer C
 * starts again with every provisional answer) and however many q levels
 * are tried one after the other, a transaction ends in time, and so
 * does a worker that leaves after a reload.  0: nothing is left.
 */

ngx_msec_t
ngx_stream_sip_stx_left(ngx_stream_sip_stx_t *stx, ngx_msec_t timer)
{
    ngx_msec_int_t  left;

    left = (ngx_msec_int_t) (stx->start + stx->tlcf->lifetime
                             - ngx_current_msec);

    if (left <= 0) {
        return 0;
    }

    return ngx_min(timer, (ngx_msec_t) left);
}


/*
 * The peer API of the upstream, set up as for a proxy_pass session, but
 * with the transaction's pool: the state must outlive the datagram's
 * session, as the transaction does.
 */

ngx_int_t
ngx_stream_sip_stx_upstream(ngx_stream_session_t *s,
    ngx_stream_sip_stx_t *stx, ngx_stream_upstream_srv_conf_t *uscf)
{
    ngx_int_t               rc;
    ngx_pool_t             *pool;
    ngx_stream_upstream_t  *u;

    u = ngx_pcalloc(stx->pool, sizeof(ngx_stream_upstream_t));
    if (u == NULL) {
        return NGX_ERROR;
    }

    u->upstream = uscf;
    u->peer.log = stx->log;
    u->peer.log_error = NGX_ERROR_ERR;

    pool = s->connection->pool;
    s->connection->pool = stx->pool;
    s->upstream = u;

    rc = uscf->peer.init(s, uscf);

    s->upstream = NULL;
    s->connection->pool = pool;

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    stx->upstream = u;

    return NGX_OK;
}


/*
 * The next destinations: the next peer of the upstream, or the next q
 * group of contacts.  NGX_DECLINED: nothing (more) to try.
 */

ngx_int_t
ngx_stream_sip_stx_next(ngx_stream_sip_stx_t *stx, ngx_sip_msg_t *m)
{
    socklen_t                 socklen;
    ngx_int_t                 rc;
    ngx_uint_t                q, started, flow, transport;
    ngx_sockaddr_t            sa;
    ngx_peer_connection_t    *pc;
    ngx_stream_sip_target_t  *t;

    if (stx->nbranches >= (ngx_uint_t) stx->tlcf->max_branches) {
        ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                      "SIP proxy: no more branches, %ui tried "
                      "(sip_max_branches)", stx->nbranches);
        return NGX_DECLINED;
    }

    if (stx->upstream) {
        pc = &stx->upstream->peer;

        if (stx->tried && pc->tries == 0) {
            return NGX_DECLINED;
        }

        rc = pc->get(pc, pc->data);

        if (rc != NGX_OK) {
            return NGX_DECLINED;
        }

        stx->tried++;

        ngx_memcpy(&sa, pc->sockaddr, pc->socklen);

        flow = 0;

        if (stx->transport != NGX_STREAM_SIP_UDP) {
            flow = ngx_stream_sip_flow_connect(stx->ls, &sa, pc->socklen,
                                               stx->transport, stx->sslcf,
                                               &stx->upstream->upstream->host,
                                               stx->log);
        }

        if (stx->transport != NGX_STREAM_SIP_UDP && flow == 0) {

            /*
             * No connection could even be started: the peer failed, the
             * next one is tried (free() counts the try down).
             */

            pc->free(pc, pc->data, NGX_PEER_FAILED);
            return ngx_stream_sip_stx_next(stx, m);
        }

        rc = ngx_stream_sip_branch_start(stx, m, NULL, NULL, &sa,
                                         pc->socklen, flow, ngx_worker,
                                         stx->transport);
        if (rc != NGX_OK) {
            pc->free(pc, pc->data, 0);
            return rc;
        }

        stx->branches->upstream = 1;

        return NGX_OK;
    }

    /* parallel within the best q left, serial between q values */

    started = 0;

    while (stx->ntargets && !started) {
        q = stx->targets[0].q;

        while (stx->ntargets && stx->targets[0].q == q) {
            t = &stx->targets[0];

            flow = 0;

            if (stx->nbranches >= (ngx_uint_t) stx->tlcf->max_branches) {
                ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                              "SIP proxy: contact \"%V\" left out, "
                              "over sip_max_branches", &t->uri);
                stx->ntargets = 0;
                break;
            }

            if (t->flow) {

                /*
                 * A phone on its own connection, if it is still there; the
                 * worker that holds it writes on it for us.
                 */

                if ((t->worker == ngx_worker
                     ? ngx_stream_sip_flow_exists(t->flow)
                     : ngx_stream_sip_channel_worker(t->worker) >= 0)
                    && ngx_stream_sip_branch_start(stx, m, &t->uri,
                                                   &t->path, NULL, 0,
                                                   t->flow, t->worker,
                                                   t->transport)
                       == NGX_OK)
                {
                    started++;

                } else {
                    ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                                  "SIP proxy: the connection of contact "
                                  "\"%V\" is gone", &t->uri);
                }

            } else if (ngx_stream_sip_target_hop(t, &sa, &socklen, &transport)
                != NGX_OK
                || (transport != NGX_STREAM_SIP_UDP
                    && !stx->tlcf->contact_connect)
                || (transport != NGX_STREAM_SIP_UDP
                    && (flow = ngx_stream_sip_flow_connect(stx->ls, &sa,
                                                           socklen, transport,
                                                           stx->sslcf, NULL,
                                                           stx->log))
                       == 0))
            {
                ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                              "SIP proxy: contact \"%V\" is not reachable "
                              "by address%s", &t->uri,
                              transport != NGX_STREAM_SIP_UDP
                              && !stx->tlcf->contact_connect
                              ? " (it registered over UDP, and "
                                "sip_contact_connect is off)" : "");

            } else if (ngx_stream_sip_branch_start(stx, m, &t->uri,
                                                   &t->path, &sa, socklen,
                                                   flow, ngx_worker,
                                                   transport)
                       == NGX_OK)
            {
                started++;
            }

            stx->targets++;
            stx->ntargets--;
        }
    }

    return started ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_stream_sip_branch_start(ngx_stream_sip_stx_t *stx, ngx_sip_msg_t *m,
    ngx_str_t *ruri, ngx_str_t *route, ngx_sockaddr_t *sa, socklen_t socklen,
    ngx_uint_t flow, ngx_uint_t worker, ngx_uint_t transport)
{
    ngx_str_t                 host, udp;
    ngx_uint_t                upgraded;
    ngx_listening_t          *ls;
    ngx_msec_t                timeout;
    ngx_stream_sip_branch_t  *b;

    host = stx->via_host;
    ls = stx->ls;
    upgraded = 0;

    timeout = ngx_stream_sip_stx_left(stx, 64 * stx->t1);

    if (timeout == 0) {
        ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                      "SIP proxy: no new branch, the transaction is older "
                      "than sip_transaction_lifetime");
        return NGX_DECLINED;
    }

    if (!flow) {
        transport = NGX_STREAM_SIP_UDP;

        if (ls == NULL) {
            ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                          "SIP proxy: no UDP listen to send from");
            return NGX_DECLINED;
        }
    }

    if (!flow && sa && sa->sockaddr.sa_family != ls->sockaddr->sa_family) {

        /* IPv4 <-> IPv6: our socket of the callee's family */

        ls = ngx_stream_sip_udp_listening_for(sa->sockaddr.sa_family,
                                          ngx_inet_get_port(stx->ls->sockaddr));
        if (ls == NULL) {
            ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                          "SIP proxy: no UDP listen of the next hop's "
                          "address family");
            return NGX_DECLINED;
        }

        host = ls->addr_text;
    }

    if (flow && worker == ngx_worker) {
        transport = ngx_stream_sip_flow_transport(flow);

        if (transport == NGX_STREAM_SIP_NONE) {
            return NGX_DECLINED;
        }
    }

    /* our Via on a flow: a listen of its transport (RFC 3261 18.2.2) */

    if (flow
        && ngx_stream_sip_stream_host(stx->sscf,
                                      stx->local_len ? &stx->local.sockaddr
                                                     : NULL,
                                      transport, NULL, stx->pool, &host)
           == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    b = ngx_pcalloc(stx->pool, sizeof(ngx_stream_sip_branch_t));
    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_stream_sip_stx_charge(stx, NULL, sizeof(ngx_stream_sip_branch_t));

    b->stx = stx;
    b->flow_worker = worker;

    b->branch.data = b->id;
    b->branch.len = ngx_sip_branch_make(b->id, m, ngx_stream_sip_salt(),
                                        ngx_stream_sip_key);

    if (ngx_stream_sip_branch_build(b, m, ruri, route, flow, ls, transport,
                                    &host)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (!flow && sa && b->sent.len > 1300
        && (ruri == NULL || stx->tlcf->contact_connect))
    {
        /*
         * RFC 3261 18.1.1: more than 1300 bytes go over TCP (and back
         * to UDP if the next hop takes no TCP); not to a contact that
         * registered over UDP, unless sip_contact_connect says so: a
         * registration names any address, ours would be the connection
         */

        flow = ngx_stream_sip_flow_connect(ls, sa, socklen,
                                           NGX_STREAM_SIP_TCP, stx->sslcf,
                                           NULL, stx->log);
        transport = NGX_STREAM_SIP_TCP;

        udp = b->sent;

        if (flow
            && ngx_stream_sip_stream_host(stx->sscf,
                                          stx->local_len
                                          ? &stx->local.sockaddr : NULL,
                                          transport, NULL, stx->pool, &host)
               != NGX_ERROR
            && ngx_stream_sip_branch_build(b, m, ruri, route, flow, ls,
                                           transport, &host)
               == NGX_OK)
        {
            /* resent over UDP, if need be, is built again */

            ngx_stream_sip_stx_charge(stx, udp.data, - (ssize_t) udp.len);
            upgraded = 1;

        } else {
            flow = 0;
        }
    }

    if (sa) {
        ngx_memcpy(&b->peer, sa, socklen);
        b->peer_len = socklen;
    }

    b->flow = flow;
    b->ls = ls;
    b->ruri = ruri;
    b->route = route;
    b->upgraded = upgraded;

    b->retransmit.handler = ngx_stream_sip_branch_retransmit;
    b->retransmit.data = b;
    b->retransmit.log = stx->log;
    b->retransmit.cancelable = 1;

    b->timeout.handler = ngx_stream_sip_branch_timeout;
    b->timeout.data = b;
    b->timeout.log = stx->log;
    /* a leaving worker waits for its branches' answers (or timeouts) */
    b->timeout.cancelable = 0;

    b->node.key = ngx_stream_sip_table_key(&b->branch);
    ngx_stream_sip_table_insert(&ngx_stream_sip_branches, &b->node);
    ngx_stream_sip_branch_hold(b);

    b->next = stx->branches;
    stx->branches = b;
    stx->nbranches++;
    stx->active++;

    ngx_stream_sip_to_peer(b, &b->sent);

    b->interval = stx->t1;

    /* a reliable transport does not need timers A and E (17.1.1.2) */

    if (!flow) {
        ngx_add_timer(&b->retransmit, b->interval);
    }

    ngx_add_timer(&b->timeout, timeout);

    return NGX_OK;
}


/*
 * The request as it goes on a branch: our Via (of the socket or flow it
 * leaves by), Record-Route (one value when both sides are our same UDP
 * socket, else the callee's side and then the caller's, RFC 5658), the
 * contact as Request-URI and its Path as Route.
 */

static ngx_int_t
ngx_stream_sip_branch_build(ngx_stream_sip_branch_t *b, ngx_sip_msg_t *m,
    ngx_str_t *ruri, ngx_str_t *route, ngx_uint_t flow, ngx_listening_t *ls,
    ngx_uint_t transport, ngx_str_t *host)
{
    u_char                *p, token[16], ftoken[NGX_INT_T_LEN * 2 + 20];
    size_t                 len;
    ngx_int_t              rc;
    ngx_str_t              side;
    ngx_sip_forward_t      f;
    ngx_stream_sip_stx_t  *stx;

    stx = b->stx;

    ngx_memzero(&f, sizeof(ngx_sip_forward_t));
    ngx_str_null(&side);

    f.pop_route = stx->pop_route;
    f.drop = stx->drop;
    f.received = stx->received;
    f.rport = stx->rport;

    rc = NGX_DECLINED;

    if (stx->record_route.len && flow) {

        /* the callee's side on its flow: a listen of that transport */

        rc = ngx_stream_sip_flow_route(stx, m, flow, b->flow_worker,
                                       transport, NULL, 0, &side);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (stx->record_route.len
        && (rc == NGX_OK || ls != stx->ls
            || (stx->rr_udp.len
                && stx->record_route.data != stx->rr_udp.data)))
    {
        p = ngx_pnalloc(stx->pool, stx->record_route.len + 2 + side.len
                                   + sizeof("<sip:;lr;nsip=>")
                                   + NGX_SOCKADDR_STRLEN + 16);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            f.record_route.data = p;
            f.record_route.len = ngx_cpymem(p, side.data, side.len) - p;

        } else if (ls != stx->ls) {
            ngx_stream_sip_proxy_route_token(&m->call_id, token);

            f.record_route.data = p;
            f.record_route.len = ngx_sprintf(p, "<sip:%V;lr;nsip=%*s>",
                                             &ls->addr_text, (size_t) 16,
                                             token)
                                 - p;

        } else {
            f.record_route.data = p;
            f.record_route.len = ngx_cpymem(p, stx->rr_udp.data,
                                            stx->rr_udp.len) - p;
        }

        p = f.record_route.data + f.record_route.len;
        *p++ = ','; *p++ = ' ';
        p = ngx_cpymem(p, stx->record_route.data, stx->record_route.len);
        f.record_route.len = p - f.record_route.data;

    } else {
        f.record_route = stx->record_route;
    }

    if (ruri) {

        /* RFC 3261 16.5: the Request-URI becomes the contact */
        f.ruri = *ruri;

    } else if (stx->strict_ruri.len) {
        f.ruri = stx->strict_ruri;
        f.append_route = stx->append_route;
    }

    if (stx->cut) {
        f.cut = stx->cut;
        f.cut_at = m->start + stx->cut_off;
    }

    if (route) {
        f.route = *route;
    }

    /*
     * A caller on a connection: our Via names it (nfl, as in our
     * Record-Route), so that a 2xx again after the transaction has gone
     * still finds it (RFC 3261 18.2.2, ngx_stream_sip_response_stream()).
     */

    ftoken[0] = '\0';

    if (stx->client_flow) {
        ngx_stream_sip_flow_token(&m->call_id, ngx_worker, stx->client_flow,
                                  ftoken);
    }

    f.via.data = ngx_pnalloc(stx->pool,
                             sizeof("SIP/2.0/UDP ;branch=;rport;nfl=")
                             + host->len + b->branch.len
                             + ngx_strlen(ftoken));
    if (f.via.data == NULL) {
        return NGX_ERROR;
    }

    f.via.len = ngx_sprintf(f.via.data, "SIP/2.0/%V %V;branch=%V;rport%s%s",
                            &ngx_sip_transport(transport)->via, host,
                            &b->branch, ftoken[0] ? ";nfl=" : "", ftoken)
                - f.via.data;

    len = ngx_sip_forward_size(m, &f);

    p = ngx_pnalloc(stx->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    b->sent.data = p;
    b->sent.len = ngx_sip_forward_request(p, m, &f) - p;

    ngx_stream_sip_stx_charge(stx, NULL, len);

    return NGX_OK;
}


/* timers A and E (RFC 3261 17.1.1.2, 17.1.2.2) */

static void
ngx_stream_sip_branch_retransmit(ngx_event_t *ev)
{
    ngx_stream_sip_branch_t  *b = ev->data;

    if (b->completed) {
        return;
    }

    ngx_stream_sip_to_peer(b, &b->sent);

    b->interval *= 2;

    if (b->stx->method != NGX_SIP_INVITE && b->interval > b->stx->t2) {
        b->interval = b->stx->t2;
    }

    ngx_add_timer(ev, b->interval);
}


/* timers B and F: nobody answered; Timer C: nobody picked up */

static void
ngx_stream_sip_branch_timeout(ngx_event_t *ev)
{
    ngx_stream_sip_branch_t  *b = ev->data;

    if (b->completed) {
        return;
    }

    if (b->stx->method == NGX_SIP_INVITE && b->status >= 100) {

        /*
         * Timer C (RFC 3261 16.6 step 11, 16.8): ringing too long.  The
         * branch is cancelled and counts as a 408; it stays for the 487
         * to be acknowledged.
         */

        ngx_log_error(NGX_LOG_INFO, b->stx->log, 0,
                      "SIP proxy: no final answer to INVITE in time");

        ngx_stream_sip_branch_cancel(b);

    } else {
        ngx_log_error(NGX_LOG_INFO, b->stx->log, 0,
                      "SIP proxy: no answer from the next hop");
    }

    ngx_stream_sip_branch_done(b, 408, NULL);
}


/*
 * A branch has its final answer ("answer" is it, as it goes to the
 * caller; NULL for a timeout of ours).  The caller learns of it now if it
 * is a 2xx; else it may be the best so far, and once no branch is left
 * the next destinations are tried or the best answer goes back.
 */

void
ngx_stream_sip_branch_done(ngx_stream_sip_branch_t *b, ngx_uint_t status,
    ngx_str_t *answer)
{
    ngx_peer_connection_t    *pc;
    ngx_stream_sip_stx_t     *stx;
    ngx_stream_sip_branch_t  *o;

    stx = b->stx;

    b->completed = 1;
    b->status = status;
    stx->active--;

    ngx_stream_sip_branch_unhold(b);

    if (b->retransmit.timer_set) {
        ngx_del_timer(&b->retransmit);
    }

    if (b->timeout.timer_set) {
        ngx_del_timer(&b->timeout);
    }

    if (b->upstream) {
        b->upstream = 0;
        pc = &stx->upstream->peer;

        /* nginx's max_fails accounting: no answer, or "go elsewhere" */

        pc->free(pc, pc->data,
                 (status == 408 && answer == NULL) || status == 503
                 ? NGX_PEER_FAILED : 0);
    }

    if (status < 300) {

        /* 2xx: to the caller at once, each of them (16.7 step 5) */

        if (!stx->completed || stx->method == NGX_SIP_INVITE) {
            ngx_stream_sip_to_client(stx, answer);
        }

        if (!stx->completed) {
            if (stx->method != NGX_SIP_INVITE) {
                stx->last.data = ngx_pnalloc(stx->pool, answer->len);

                if (stx->last.data) {
                    stx->last.len = answer->len;
                    ngx_memcpy(stx->last.data, answer->data, answer->len);
                    ngx_stream_sip_stx_charge(stx, NULL, answer->len);
                }
            }

            stx->completed = 1;
            ngx_stream_sip_stx_unhold(stx);

            if (stx->method == NGX_SIP_INVITE) {
                for (o = stx->branches; o; o = o->next) {
                    ngx_stream_sip_branch_cancel(o);
                }
            }

            ngx_stream_sip_stx_complete(stx, status);
        }

        return;
    }

    if (stx->completed) {
        return;
    }

    if (ngx_stream_sip_better(status, stx->best_status)) {
        stx->best_status = status;

        if (stx->best.len) {
            ngx_stream_sip_stx_charge(stx, stx->best.data,
                                      - (ssize_t) stx->best.len);
            stx->best.len = 0;
        }

        if (answer) {
            stx->best.data = ngx_pnalloc(stx->pool, answer->len);

            if (stx->best.data) {
                stx->best.len = answer->len;
                ngx_memcpy(stx->best.data, answer->data, answer->len);
                ngx_stream_sip_stx_charge(stx, NULL, answer->len);
            }
        }
    }

    if (status >= 600) {

        /* a 6xx ends the search (16.7 step 5) */

        stx->stop = 1;

        if (stx->method == NGX_SIP_INVITE) {
            for (o = stx->branches; o; o = o->next) {
                ngx_stream_sip_branch_cancel(o);
            }
        }
    }

    if (stx->active == 0) {
        ngx_stream_sip_stx_advance(stx);
    }
}


/* all branches answered, none with a 2xx: more to try, or the end */

static void
ngx_stream_sip_stx_advance(ngx_stream_sip_stx_t *stx)
{
    ngx_int_t       rc;
    ngx_sip_msg_t   m;

    if (!stx->stop && !stx->cancelled
        && (stx->ntargets
            || (stx->upstream && stx->upstream->peer.tries
                && (stx->best_status == 408 || stx->best_status == 503))))
    {
        if (ngx_stream_sip_reparse(&stx->orig, &m) == NGX_OK) {

            /* a new branch must not carry the old one's best answer */

            if (stx->upstream) {
                stx->best_status = 0;
                stx->best.len = 0;
            }

            rc = ngx_stream_sip_stx_next(stx, &m);

            if (rc == NGX_OK) {
                return;
            }

            if (stx->upstream && stx->best_status == 0) {
                stx->best_status = 503;
            }
        }
    }

    ngx_stream_sip_stx_final(stx);
}


static void
ngx_stream_sip_stx_final(ngx_stream_sip_stx_t *stx)
{
    ngx_uint_t  status;

    status = stx->best_status;

    stx->completed = 1;
    ngx_stream_sip_stx_unhold(stx);

    if (status == 503 && stx->upstream && stx->tried > 1) {
        (void) ngx_stream_sip_stx_answer(stx, 503,
                                         "No Upstream Peer Answered");

    } else if (status == 503 && stx->best.len == 0) {

        /* ours: the connection to the next hop failed */

        (void) ngx_stream_sip_stx_answer(stx, 503,
                                         "Could Not Reach Next Hop");

    } else if (status == 503) {

        /* a 503 is about the next hop, not about us (16.7 step 6) */

        (void) ngx_stream_sip_stx_answer(stx, 500, "Next Hop Unavailable");

    } else if (stx->best.len) {
        stx->last = stx->best;
        ngx_stream_sip_to_client(stx, &stx->last);

    } else if (status == 408 && stx->upstream && stx->tried > 1) {
        (void) ngx_stream_sip_stx_answer(stx, 503,
                                         "No Upstream Peer Answered");

    } else if (status == 408) {
        (void) ngx_stream_sip_stx_answer(stx, 408, "Request Timeout");

    } else if (status == 480) {
        (void) ngx_stream_sip_stx_answer(stx, 480,
                                         "No Route to Registered Contact");

    } else if (status == 0 && stx->cancelled) {
        (void) ngx_stream_sip_stx_answer(stx, 487, "Request Terminated");

    } else {
        (void) ngx_stream_sip_stx_answer(stx, 500, "No Final Answer");
    }

    ngx_stream_sip_stx_complete(stx, status);
}


/*
 * The caller has its final answer.  A non-2xx to an INVITE is sent
 * again over UDP until the ACK (timers G and H); the transaction stays
 * for the caller's retransmissions and for late answers of other
 * branches.  A non-INVITE stays T4 over UDP (Timer J, as Kamailio's wait
 * timer) and goes at once on a connection, where nothing is sent again
 * (RFC 3261 17.2.2): a trunk's or a browser's completed MESSAGEs are not
 * kept against its caps.
 */

static void
ngx_stream_sip_stx_complete(ngx_stream_sip_stx_t *stx, ngx_uint_t status)
{
    ngx_msec_t  linger;

    if (stx->method == NGX_SIP_INVITE) {

        if (status >= 300 && stx->last.len && stx->client_flow == 0) {
            stx->interval = stx->t1;
            ngx_add_timer(&stx->retransmit, stx->interval);
        }

        linger = (status < 300 && stx->nbranches == 1) ? 0 : 64 * stx->t1;

    } else {
        linger = stx->client_flow ? 0 : stx->t4;
    }

    ngx_add_timer(&stx->timeout, linger);
}


static void
ngx_stream_sip_stx_retransmit(ngx_event_t *ev)
{
    ngx_stream_sip_stx_t  *stx = ev->data;

    if (stx->acked || stx->last.len == 0) {
        return;
    }

    ngx_stream_sip_to_client(stx, &stx->last);

    stx->interval *= 2;

    if (stx->interval > stx->t2) {
        stx->interval = stx->t2;
    }

    ngx_add_timer(ev, stx->interval);
}


static void
ngx_stream_sip_stx_timeout(ngx_event_t *ev)
{
    ngx_stream_sip_stx_t  *stx = ev->data;

    if (stx->active) {

        /* cancelled branches still wait for their 487 */

        ngx_add_timer(ev, 1000);
        return;
    }

    ngx_stream_sip_stx_free(stx);
}


void
ngx_stream_sip_stx_free(ngx_stream_sip_stx_t *stx)
{
    ngx_peer_connection_t    *pc;
    ngx_stream_sip_branch_t  *b;

    for (b = stx->branches; b; b = b->next) {
        ngx_stream_sip_table_delete(&ngx_stream_sip_branches, &b->node);
        ngx_stream_sip_branch_unhold(b);

        if (b->cancel) {
            /* it runs to its end without us */
            ngx_stream_sip_client_tx_abandon(b->cancel);
        }

        if (b->retransmit.timer_set) {
            ngx_del_timer(&b->retransmit);
        }

        if (b->timeout.timer_set) {
            ngx_del_timer(&b->timeout);
        }

        if (b->upstream) {
            pc = &stx->upstream->peer;
            pc->free(pc, pc->data, 0);
        }
    }

    ngx_stream_sip_stx_unhold(stx);

    if (stx->in_table) {
        ngx_stream_sip_table_delete(&ngx_stream_sip_stxs, &stx->node);
    }

    if (stx->retransmit.timer_set) {
        ngx_del_timer(&stx->retransmit);
    }

    if (stx->timeout.timer_set) {
        ngx_del_timer(&stx->timeout);
    }

    ngx_stream_sip_tx_release(stx->source, stx->charged);

    ngx_destroy_pool(stx->pool);
}


/*
 * Which final answer the caller gets of several (RFC 3261 16.7 step 6):
 * a 6xx, else the lowest class, and among 4xx those that the caller can
 * act upon (credentials, a format, an extension, an address).
 */

static ngx_uint_t
ngx_stream_sip_better(ngx_uint_t status, ngx_uint_t best)
{
    if (best == 0) {
        return 1;
    }

    if (best >= 600) {
        return 0;
    }

    if (status >= 600) {
        return 1;
    }

    if (status / 100 != best / 100) {
        return status / 100 < best / 100;
    }

    if (status / 100 == 4) {
        switch (best) {
        case 401: case 407: case 415: case 420: case 484:
            return 0;
        }

        switch (status) {
        case 401: case 407: case 415: case 420: case 484:
            return 1;
        }

        /* a timeout of ours is the least telling 4xx */

        return best == 408;
    }

    return best == 503 && status != 503;
}


/* our own final answer to the caller, built from its request */

static ngx_int_t
ngx_stream_sip_stx_answer(ngx_stream_sip_stx_t *stx, ngx_uint_t status,
    char *reason)
{
    u_char           *p, text[NGX_SOCKADDR_STRLEN];
    ngx_str_t         addr, why;
    ngx_sip_msg_t     m;
    ngx_sip_resp_t    r;

    if (ngx_stream_sip_reparse(&stx->orig, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * As ngx_stream_sip_respond() does: the caller's address for
     * received, its port for rport (stx->client has the source port
     * whenever the request asked for rport).
     */

    addr.data = text;
    addr.len = ngx_sock_ntop(&stx->client.sockaddr, stx->client_len, text,
                             NGX_SOCKADDR_STRLEN, 0);

    why.data = (u_char *) reason;
    why.len = ngx_strlen(reason);

    ngx_sip_response_init(&r, &m, status, &why, &addr,
                          ngx_inet_get_port(&stx->client.sockaddr),
                          ngx_stream_sip_key);

    p = ngx_pnalloc(stx->pool, ngx_sip_response_size(&m, &r));
    if (p == NULL) {
        return NGX_ERROR;
    }

    stx->last.data = p;
    stx->last.len = ngx_sip_write_response(p, &m, &r) - p;

    ngx_stream_sip_stx_charge(stx, NULL, stx->last.len);

    ngx_stream_sip_to_client(stx, &stx->last);

    return NGX_OK;
}


/*
 * RFC 3261 9.1: a CANCEL only after a provisional answer.  It is a
 * client transaction of its own (ngx_stream_sip_client_tx.c): Timer E
 * over UDP until its answer or Timer F; the INVITE branch still waits
 * for its 487 (or Timer C) as before.
 */

void
ngx_stream_sip_branch_cancel(ngx_stream_sip_branch_t *b)
{
    u_char                      *p;
    size_t                       size;
    ngx_str_t                    out;
    ngx_sip_msg_t                m;
    ngx_stream_sip_stx_t        *stx;
    ngx_stream_sip_client_tx_t  *ct;

    if (b->completed || b->cancelled) {
        return;
    }

    if (b->status < 100) {
        b->cancel_pending = 1;
        return;
    }

    b->cancelled = 1;
    b->cancel_pending = 0;

    stx = b->stx;

    if (ngx_stream_sip_reparse(&b->sent, &m) != NGX_OK) {
        return;
    }

    size = ngx_sip_hop_request_size(&m, NULL);

    ct = ngx_stream_sip_client_tx_create(size, stx->log);

    if (ct) {
        p = ngx_pnalloc(ct->pool, size);
        if (p == NULL) {
            ngx_destroy_pool(ct->pool);
            return;
        }

        ct->request.data = p;
        ct->request.len = ngx_sip_write_hop_request(p, &m, NULL) - p;

        /* the same branch as the INVITE's (9.1), a copy in its pool */

        ct->branch.data = ngx_pnalloc(ct->pool, b->branch.len);
        if (ct->branch.data == NULL) {
            ngx_destroy_pool(ct->pool);
            return;
        }

        ngx_memcpy(ct->branch.data, b->branch.data, b->branch.len);
        ct->branch.len = b->branch.len;

        ct->method = NGX_SIP_CANCEL;
        ct->peer = b->peer;
        ct->peer_len = b->peer_len;
        ct->ls = b->ls;
        ct->flow = b->flow;
        ct->flow_worker = b->flow_worker;
        ct->t1 = stx->t1;
        ct->t2 = stx->t2;
        ct->t4 = stx->t4;
        ct->tlcf = stx->tlcf;
        ct->source = stx->source;
        ct->handler = ngx_stream_sip_branch_cancelled;
        ct->data = b;

        switch (ngx_stream_sip_client_tx_send(ct)) {

        case NGX_OK:
            b->cancel = ct;
            return;

        case NGX_BUSY:
            break;

        default: /* NGX_ERROR */
            return;
        }
    }

    /* over the caps or out of memory: sent once, as a stateless hop */

    p = ngx_pnalloc(stx->pool, size);
    if (p == NULL) {
        return;
    }

    out.data = p;
    out.len = ngx_sip_write_hop_request(p, &m, NULL) - p;

    ngx_stream_sip_to_peer(b, &out);

    /* sent or copied to the connection: not kept */

    (void) ngx_pfree(stx->pool, p);
}


/*
 * Our CANCEL is over.  Its INVITE branch needs nothing from it: the
 * branch ends with its 487, or Timer C, whatever the CANCEL got.
 */

static void
ngx_stream_sip_branch_cancelled(void *data, ngx_uint_t status,
    ngx_sip_msg_t *resp)
{
    ngx_stream_sip_branch_t  *b = data;

    b->cancel = NULL;

    if (status == 0) {
        ngx_log_error(NGX_LOG_INFO, b->stx->log, 0,
                      "SIP proxy: CANCEL of branch %V got no answer",
                      &b->branch);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, b->stx->log, 0,
                   "sip proxy: CANCEL of branch %V: %ui", &b->branch,
                   status);
}


void
ngx_stream_sip_branch_ack(ngx_stream_sip_branch_t *b, ngx_sip_msg_t *resp)
{
    u_char           *p;
    ngx_sip_msg_t     inv;

    if (ngx_stream_sip_reparse(&b->sent, &inv) != NGX_OK) {
        return;
    }

    p = ngx_pnalloc(b->stx->pool, ngx_sip_hop_request_size(&inv, resp));
    if (p == NULL) {
        return;
    }

    b->ack.data = p;
    b->ack.len = ngx_sip_write_hop_request(p, &inv, resp) - p;

    ngx_stream_sip_stx_charge(b->stx, NULL, b->ack.len);

    ngx_stream_sip_to_peer(b, &b->ack);
}


/*
 * A connection of ours never came up (refused, timed out, a certificate
 * that failed verification): the branches waiting for it fail now, as a
 * 503 of the next hop, which moves an upstream to its next peer.
 */

static void
ngx_stream_sip_tx_flow_failed(ngx_uint_t flow)
{
    ngx_uint_t                 i, n;
    ngx_stream_sip_tnode_t    *node;
    ngx_stream_sip_branch_t   *b, *failed[64];

    ngx_stream_sip_client_tx_flow_failed(flow);

    if (!ngx_stream_sip_tx_ready) {
        return;
    }

    /* collected first: failing one may start others */

    n = 0;

    for (i = 0; i < ngx_stream_sip_branches.size && n < 64; i++) {
        for (node = ngx_stream_sip_branches.buckets[i]; node && n < 64;
             node = node->next)
        {
            b = (ngx_stream_sip_branch_t *) node;

            if (b->flow == flow && !b->completed) {
                failed[n++] = b;
            }
        }
    }

    for (i = 0; i < n; i++) {
        b = failed[i];

        if (b->completed) {
            continue;
        }

        if (b->upgraded && b->status == 0) {
            ngx_stream_sip_branch_resend_udp(b);
            continue;
        }

        if (b->redial && b->status == 0 && !b->stx->cancelled
            && ngx_stream_sip_branch_redial(b) == NGX_OK)
        {
            continue;
        }

        /*
         * Another worker's flow is a phone's own connection (ours to an
         * address are opened where they are needed): it is gone, as a
         * contact whose connection is gone here is left out (480).
         */

        ngx_stream_sip_branch_done(b, b->flow_worker != ngx_worker ? 480 : 503,
                                   NULL);
    }
}


/*
 * In a dialog, the phone's own connection, held by another worker, is
 * gone, and it is no RFC 5626 flow: a new branch to its Contact (the
 * Request-URI), on a new connection if it says TCP or TLS, takes the
 * place of this one, as when the connection was one of ours
 * (ngx_stream_sip_proxy_request()).
 */

static ngx_int_t
ngx_stream_sip_branch_redial(ngx_stream_sip_branch_t *b)
{
    socklen_t               socklen;
    ngx_uint_t              transport, flow;
    ngx_sip_msg_t           m;
    ngx_sockaddr_t          sa;
    ngx_stream_sip_stx_t   *stx;
    ngx_stream_sip_route_t  r;

    stx = b->stx;
    flow = 0;

    if (ngx_stream_sip_reparse(&stx->orig, &m) != NGX_OK
        || ngx_stream_sip_route_parse(&m, stx->pool, &r) != NGX_OK
        || ngx_stream_sip_route_hop(&m, &r, stx->pop_route, &sa, &socklen,
                                    &transport)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (transport != NGX_STREAM_SIP_UDP) {
        flow = ngx_stream_sip_flow_connect(stx->ls, &sa, socklen, transport,
                                           stx->sslcf, NULL, stx->log);
        if (flow == 0) {
            return NGX_DECLINED;
        }
    }

    ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                  "SIP proxy: the connection of worker %ui is gone, "
                  "to the Request-URI", b->flow_worker);

    /* the new branch first: the transaction must not end in between */

    if (ngx_stream_sip_branch_start(stx, &m, NULL, NULL, &sa, socklen, flow,
                                    ngx_worker, transport)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    b->completed = 1;
    b->status = 480;
    stx->active--;

    ngx_stream_sip_branch_unhold(b);

    if (b->timeout.timer_set) {
        ngx_del_timer(&b->timeout);
    }

    return NGX_OK;
}


/* a request too big for UDP whose next hop takes no TCP: UDP after all */

static void
ngx_stream_sip_branch_resend_udp(ngx_stream_sip_branch_t *b)
{
    ngx_str_t              host, tcp;
    ngx_sip_msg_t          m;
    ngx_stream_sip_stx_t  *stx;

    stx = b->stx;

    if (b->ls == NULL) {
        ngx_stream_sip_branch_done(b, 503, NULL);
        return;
    }

    host = (b->ls == stx->ls) ? stx->via_host : b->ls->addr_text;

    tcp = b->sent;

    if (ngx_stream_sip_reparse(&stx->orig, &m) != NGX_OK
        || ngx_stream_sip_branch_build(b, &m, b->ruri, b->route, 0, b->ls,
                                       NGX_STREAM_SIP_UDP, &host)
           != NGX_OK)
    {
        ngx_stream_sip_branch_done(b, 503, NULL);
        return;
    }

    ngx_stream_sip_stx_charge(stx, tcp.data, - (ssize_t) tcp.len);

    ngx_log_error(NGX_LOG_INFO, stx->log, 0,
                  "SIP proxy: next hop takes no TCP, %uz bytes over UDP",
                  b->sent.len);

    ngx_stream_sip_branch_unhold(b);

    b->flow = 0;
    b->upgraded = 0;

    ngx_stream_sip_to_peer(b, &b->sent);

    b->interval = stx->t1;
    ngx_add_timer(&b->retransmit, b->interval);
}


/* a server transaction by the branch it was sent with, or a branch of ours */

static ngx_stream_sip_tnode_t *
ngx_stream_sip_table_find(ngx_stream_sip_table_t *t, ngx_str_t *branch,
    ngx_uint_t method, ngx_uint_t server)
{
    uint32_t                  key;
    ngx_str_t                *b;
    ngx_stream_sip_tnode_t   *node;
    ngx_stream_sip_stx_t     *stx;

    key = ngx_stream_sip_table_key(branch);

    for (node = ngx_stream_sip_table_bucket(t, key); node; node = node->next)
    {
        if (node->key != key) {
            continue;
        }

        stx = (ngx_stream_sip_stx_t *) node;

        b = server ? &stx->their : &((ngx_stream_sip_branch_t *) node)->branch;

        if (b->len == branch->len
            && ngx_memcmp(b->data, branch->data, b->len) == 0
            && (!server || stx->method == method))
        {
            return node;
        }
    }

    return NULL;
}


ngx_stream_sip_stx_t *
ngx_stream_sip_stx_find(ngx_str_t *branch, ngx_uint_t method)
{
    if (!ngx_stream_sip_tx_ready || branch->len == 0) {
        return NULL;
    }

    return (ngx_stream_sip_stx_t *)
               ngx_stream_sip_table_find(&ngx_stream_sip_stxs, branch, method,
                                         1);
}


ngx_stream_sip_branch_t *
ngx_stream_sip_branch_find(ngx_str_t *branch)
{
    if (!ngx_stream_sip_tx_ready || branch->len == 0) {
        return NULL;
    }

    return (ngx_stream_sip_branch_t *)
               ngx_stream_sip_table_find(&ngx_stream_sip_branches, branch, 0,
                                         0);
}


/*
 * A message we keep (the request as received, the request as sent, an
 * answer as forwarded) parsed again when it is needed: rarely, so it is
 * not worth keeping the parse.  The slots are the proxy's own: the
 * message being processed keeps the glue's.
 */

ngx_int_t
ngx_stream_sip_reparse(ngx_str_t *text, ngx_sip_msg_t *m)
{
    ngx_sip_error_t  err;

    ngx_memzero(m, sizeof(ngx_sip_msg_t));
    m->headers = ngx_stream_sip_proxy_headers;
    m->max_headers = NGX_SIP_MAX_HEADERS;

    if (ngx_sip_parse_message(m, text->data, text->data + text->len, 0,
                              &err)
        != NGX_SIP_OK
        || ngx_sip_msg_validate(m, &err) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
