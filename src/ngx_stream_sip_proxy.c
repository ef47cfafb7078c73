
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The transaction-stateful proxy over UDP (RFC 3261 16 and 17), first
 * part: one target per server (sip_pass), Record-Route, the server
 * transaction absorbing retransmissions, the client transaction
 * retransmitting (timers A and E) and giving up (B and F, 408), hop by
 * hop ACK for non-2xx, in-dialog requests along our Record-Route.
 *
 * Every message of a Call-ID reaches the worker that owns it (see
 * ngx_stream_sip_channel.c), so transactions are plain per-worker state:
 * one rbtree by our branch (responses) and one by the caller's branch
 * (retransmissions, CANCEL, ACK).  A transaction has a pool of its own
 * and outlives the stream session of the datagram that started it.
 */


typedef struct {
    ngx_rbtree_node_t           node;        /* by our branch */
    ngx_rbtree_node_t           snode;       /* by the caller's branch */
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    ngx_listening_t            *ls;

    ngx_str_t                   branch;      /* ours */
    ngx_str_t                   their;       /* the caller's */
    ngx_uint_t                  method;

    ngx_str_t                   orig;        /* the request as received */
    ngx_str_t                   sent;        /* as we forwarded it */
    ngx_str_t                   last;        /* last response to the caller */
    ngx_str_t                   ack;         /* our ACK for a non-2xx */

    ngx_sockaddr_t              peer;
    socklen_t                   peer_len;
    ngx_sockaddr_t              client;
    socklen_t                   client_len;

    ngx_event_t                 retransmit;
    ngx_event_t                 timeout;
    ngx_msec_t                  interval;
    ngx_msec_t                  t2;
    ngx_msec_t                  t4;
    ngx_msec_t                  timer_c;

    ngx_uint_t                  status;
    unsigned                    completed:1;
    unsigned                    in_tree:1;
    unsigned                    cancel_pending:1;
} ngx_stream_sip_tx_t;


static ngx_int_t ngx_stream_sip_proxy_retransmission(
    ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_proxy_next_hop(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *f, ngx_sockaddr_t *sa,
    socklen_t *socklen);
static ngx_int_t ngx_stream_sip_uri_sockaddr(ngx_sip_uri_t *uri,
    ngx_sockaddr_t *sa, socklen_t *socklen);
static ngx_int_t ngx_stream_sip_reparse(ngx_str_t *text, ngx_sip_msg_t *m);
static ngx_int_t ngx_stream_sip_host_sockaddr(ngx_str_t *host,
    in_port_t port, ngx_sockaddr_t *sa, socklen_t *socklen);
static ngx_int_t ngx_stream_sip_proxy_forward(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *f, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t stateful);
static void ngx_stream_sip_proxy_route_token(ngx_str_t *call_id,
    u_char *buf);
static ngx_int_t ngx_stream_sip_proxy_our_route(ngx_stream_session_t *s,
    ngx_sip_msg_t *m);
static void ngx_stream_sip_tx_send(ngx_stream_sip_tx_t *tx, ngx_str_t *msg,
    ngx_sockaddr_t *sa, socklen_t socklen);
static void ngx_stream_sip_tx_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_tx_timeout(ngx_event_t *ev);
static void ngx_stream_sip_tx_free(ngx_stream_sip_tx_t *tx);
static ngx_stream_sip_tx_t *ngx_stream_sip_tx_find(ngx_rbtree_t *tree,
    ngx_str_t *branch, ngx_uint_t server, ngx_uint_t method);
static ngx_int_t ngx_stream_sip_response_sockaddr(ngx_sip_msg_t *m,
    ngx_sockaddr_t *sa, socklen_t *socklen);
static ngx_int_t ngx_stream_sip_answer_tx(ngx_stream_sip_tx_t *tx,
    ngx_uint_t status, char *reason);
static void ngx_stream_sip_proxy_cancel(ngx_stream_sip_tx_t *tx);
static void ngx_stream_sip_proxy_ack(ngx_stream_sip_tx_t *tx,
    ngx_sip_msg_t *resp);

static ngx_rbtree_t       ngx_stream_sip_tx_tree;
static ngx_rbtree_node_t  ngx_stream_sip_tx_sentinel;
static ngx_rbtree_t       ngx_stream_sip_stx_tree;
static ngx_rbtree_node_t  ngx_stream_sip_stx_sentinel;
static ngx_uint_t         ngx_stream_sip_tx_ready;
static uint32_t           ngx_stream_sip_tx_counter;

static ngx_sip_header_t   ngx_stream_sip_proxy_headers[NGX_SIP_MAX_HEADERS];


/*
 * Called for a validated request that nothing local answered: NGX_OK when
 * the proxy took it (forwarded, absorbed or answered), NGX_DECLINED when
 * there is no route for it here.  "target" is a contact the location
 * service found for the Request-URI, or NULL.
 */

ngx_int_t
ngx_stream_sip_proxy_request(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_str_t *target)
{
    socklen_t                   socklen;
    ngx_str_t                   reason;
    ngx_sip_msg_t              *m;
    ngx_sockaddr_t              sa;
    ngx_sip_forward_t           f;
    ngx_stream_sip_srv_conf_t  *sscf;

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);
    m = &ctx->msg;

    if (ctx->transport != NGX_STREAM_SIP_UDP) {
        return NGX_DECLINED;
    }

    if (!ngx_stream_sip_tx_ready) {
        ngx_rbtree_init(&ngx_stream_sip_tx_tree, &ngx_stream_sip_tx_sentinel,
                        ngx_rbtree_insert_value);
        ngx_rbtree_init(&ngx_stream_sip_stx_tree,
                        &ngx_stream_sip_stx_sentinel,
                        ngx_rbtree_insert_value);
        ngx_stream_sip_tx_ready = 1;
    }

    if (ngx_stream_sip_proxy_retransmission(s, ctx) == NGX_OK) {
        return NGX_OK;
    }

    if (m->method_id == NGX_SIP_CANCEL) {
        ngx_str_set(&reason, "Call/Transaction Does Not Exist");
        ngx_stream_sip_respond(s, ctx, 481, &reason, NULL);
        return NGX_OK;
    }

    if (ngx_sip_loop_detect(m, ngx_stream_sip_key) != NGX_OK) {
        ngx_str_set(&reason, "Loop Detected");
        ngx_stream_sip_respond(s, ctx, 482, &reason, NULL);
        return NGX_OK;
    }

    ngx_memzero(&f, sizeof(ngx_sip_forward_t));

    if (m->to.tag.len || m->hdr[NGX_SIP_HDR_ROUTE]) {

        /* in a dialog: only along a route set we are part of */

        if (!ngx_stream_sip_proxy_our_route(s, m)) {

            if (m->method_id == NGX_SIP_ACK) {
                return NGX_OK;
            }

            ngx_str_set(&reason, "Not Here: No Route Through This Proxy");
            ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
            return NGX_OK;
        }

        f.pop_route = 1;

    } else if (target) {

        /* RFC 3261 16.5: the Request-URI becomes the contact */

        f.ruri = *target;

    } else if (sscf->pass.len == 0) {
        return NGX_DECLINED;

    } else if (m->method_id == NGX_SIP_ACK) {

        /* an ACK outside any transaction and dialog: nothing to do */
        return NGX_OK;
    }

    if (ngx_stream_sip_proxy_next_hop(s, ctx, &f, &sa, &socklen) != NGX_OK) {
        ngx_str_set(&reason, "No Route to Next Hop");
        ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
        return NGX_OK;
    }

    /* ACK for a 2xx goes on statelessly (RFC 3261 16.11) */

    return ngx_stream_sip_proxy_forward(s, ctx, &f, &sa, socklen,
                                        m->method_id != NGX_SIP_ACK);
}


/* a request of a transaction we have: RFC 3261 17.2.1 and 17.2.2 */

static ngx_int_t
ngx_stream_sip_proxy_retransmission(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t             reason;
    ngx_sip_msg_t        *m;
    ngx_stream_sip_tx_t  *tx;

    m = &ctx->msg;

    if (m->method_id == NGX_SIP_CANCEL) {
        tx = ngx_stream_sip_tx_find(&ngx_stream_sip_stx_tree, &m->via.branch,
                                    1, NGX_SIP_INVITE);

        if (tx == NULL) {
            return NGX_DECLINED;
        }

        ngx_str_set(&reason, "OK");
        ngx_stream_sip_respond(s, ctx, 200, &reason, NULL);

        /* RFC 3261 9.1: a CANCEL only after a provisional answer */

        if (!tx->completed && tx->status >= 100) {
            ngx_stream_sip_proxy_cancel(tx);

        } else if (!tx->completed) {
            tx->cancel_pending = 1;
        }

        return NGX_OK;
    }

    tx = ngx_stream_sip_tx_find(&ngx_stream_sip_stx_tree, &m->via.branch, 1,
                                m->method_id == NGX_SIP_ACK ? NGX_SIP_INVITE
                                                            : m->method_id);
    if (tx == NULL) {
        return NGX_DECLINED;
    }

    if (m->method_id == NGX_SIP_ACK) {

        /* the ACK of a non-2xx final answer ends here (17.2.1) */
        return NGX_OK;
    }

    if (tx->last.len) {
        ngx_stream_sip_tx_send(tx, &tx->last, &tx->client, tx->client_len);

    } else if (tx->method == NGX_SIP_INVITE) {
        ngx_str_set(&reason, "Trying");
        ngx_stream_sip_respond(s, ctx, 100, &reason, NULL);
    }

    return NGX_OK;
}


/*
 * Where a request goes: for an initial request the sip_pass target, in a
 * dialog the next Route after ours or else the Request-URI (RFC 3261
 * 16.4, 16.5).  Hosts must be IP addresses: DNS comes with the resolver.
 */

static ngx_int_t
ngx_stream_sip_proxy_next_hop(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *f, ngx_sockaddr_t *sa,
    socklen_t *socklen)
{
    u_char                     *p, *end;
    ngx_int_t                   rc;
    ngx_uint_t                  i, n;
    ngx_sip_msg_t              *m;
    ngx_sip_addr_t              addr;
    ngx_sip_header_t           *h;
    ngx_stream_sip_srv_conf_t  *sscf;

    m = &ctx->msg;

    if (f->ruri.len) {
        if (ngx_sip_parse_uri(f->ruri.data, f->ruri.data + f->ruri.len,
                              &addr.uri)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_stream_sip_uri_sockaddr(&addr.uri, sa, socklen);
    }

    if (!f->pop_route) {
        sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

        *socklen = sscf->pass_socklen;
        ngx_memcpy(sa, &sscf->pass_sockaddr, *socklen);

        return NGX_OK;
    }

    /* the second Route value, if any */

    n = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_ROUTE) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        for ( ;; ) {
            rc = ngx_sip_parse_addr(&p, end, &addr, 1);

            if (rc != NGX_OK) {
                break;
            }

            if (n++ == 1) {
                return ngx_stream_sip_uri_sockaddr(&addr.uri, sa, socklen);
            }

            while (p < end && *p != ',') {
                p++;
            }

            if (p == end) {
                break;
            }

            p++;
        }
    }

    return ngx_stream_sip_uri_sockaddr(&m->ruri, sa, socklen);
}


static ngx_int_t
ngx_stream_sip_uri_sockaddr(ngx_sip_uri_t *uri, ngx_sockaddr_t *sa,
    socklen_t *socklen)
{
    if (uri->scheme_id != NGX_SIP_SCHEME_SIP
        || (uri->transport.len
            && (uri->transport.len != 3
                || ngx_strncasecmp(uri->transport.data, (u_char *) "udp", 3)
                   != 0)))
    {
        return NGX_ERROR;
    }

    return ngx_stream_sip_host_sockaddr(uri->maddr.len ? &uri->maddr
                                                       : &uri->host,
                                        uri->port ? uri->port : 5060,
                                        sa, socklen);
}


/*
 * An IP address, with or without IPv6 brackets, and a port: parsed in
 * place, nothing allocated (it runs for every forwarded message).
 */

static ngx_int_t
ngx_stream_sip_host_sockaddr(ngx_str_t *host, in_port_t port,
    ngx_sockaddr_t *sa, socklen_t *socklen)
{
    u_char     *p;
    size_t      len;
    in_addr_t   inaddr;

    p = host->data;
    len = host->len;

    if (len > 2 && p[0] == '[') {
        p++;
        len -= 2;
    }

    ngx_memzero(sa, sizeof(ngx_sockaddr_t));

    inaddr = ngx_inet_addr(p, len);

    if (inaddr != INADDR_NONE) {
        sa->sockaddr_in.sin_family = AF_INET;
        sa->sockaddr_in.sin_addr.s_addr = inaddr;
        sa->sockaddr_in.sin_port = htons(port);
        *socklen = sizeof(struct sockaddr_in);
        return NGX_OK;
    }

#if (NGX_HAVE_INET6)

    if (ngx_inet6_addr(p, len, sa->sockaddr_in6.sin6_addr.s6_addr)
        == NGX_OK)
    {
        sa->sockaddr_in6.sin6_family = AF_INET6;
        sa->sockaddr_in6.sin6_port = htons(port);
        *socklen = sizeof(struct sockaddr_in6);
        return NGX_OK;
    }

#endif

    return NGX_ERROR;
}


/* ";nsip=" token of our Record-Route: it binds the route to the Call-ID */

static void
ngx_stream_sip_proxy_route_token(ngx_str_t *call_id, u_char *buf)
{
    u_char    *p;
    uint64_t   tag;
    ngx_uint_t i;

    static u_char  hex[] = "0123456789abcdef";

    tag = ngx_sip_siphash(ngx_stream_sip_key, call_id->data, call_id->len);

    p = buf;

    for (i = 0; i < 16; i++) {
        *p++ = hex[(tag >> ((15 - i) * 4)) & 0xf];
    }
}


static ngx_int_t
ngx_stream_sip_proxy_our_route(ngx_stream_session_t *s, ngx_sip_msg_t *m)
{
    u_char            *p, *end, token[16];
    ngx_str_t          value;
    ngx_sip_addr_t     addr;
    ngx_sip_header_t  *h;

    h = m->hdr[NGX_SIP_HDR_ROUTE];

    if (h == NULL) {
        return 0;
    }

    p = h->value.data;
    end = p + h->value.len;

    if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK
        || ngx_sip_uri_param(&addr.uri.params, "nsip", &value) != NGX_OK
        || value.len != 16)
    {
        return 0;
    }

    ngx_stream_sip_proxy_route_token(&m->call_id, token);

    return ngx_memcmp(token, value.data, 16) == 0;
}


static ngx_int_t
ngx_stream_sip_proxy_forward(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *f, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t stateful)
{
    u_char                     *p, *via, *rr, addr[NGX_SOCKADDR_STRLEN];
    u_char                      branch[NGX_SIP_BRANCH_LEN], token[16];
    size_t                      len, alen;
    ngx_str_t                   reason;
    ngx_pool_t                 *pool;
    ngx_sip_msg_t              *m;
    ngx_connection_t           *c;
    ngx_stream_sip_tx_t        *tx;
    ngx_stream_sip_srv_conf_t  *sscf;

    c = s->connection;
    m = &ctx->msg;
    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    alen = ngx_sock_ntop(c->local_sockaddr, c->local_socklen, addr,
                         NGX_SOCKADDR_STRLEN, 1);

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    tx = ngx_pcalloc(pool, sizeof(ngx_stream_sip_tx_t));
    via = ngx_pnalloc(pool, sizeof("SIP/2.0/UDP ;branch=;rport")
                            + alen + NGX_SIP_BRANCH_LEN);
    rr = ngx_pnalloc(pool, sizeof("<sip:;lr;nsip=>") + alen + 16);

    if (tx == NULL || via == NULL || rr == NULL) {
        goto failed;
    }

    tx->pool = pool;
    tx->log = ngx_cycle->log;
    tx->ls = c->listening;
    tx->method = m->method_id;
    tx->t2 = sscf->t2;
    tx->t4 = sscf->t4;
    tx->timer_c = sscf->invite_timeout;

    ngx_stream_sip_tx_counter++;

    len = ngx_sip_branch_make(branch, m,
                              (ngx_stream_sip_tx_counter << 8) | ngx_worker,
                              ngx_stream_sip_key);

    f->via.data = via;
    f->via.len = ngx_sprintf(via, "SIP/2.0/UDP %*s;branch=%*s;rport",
                             alen, addr, len, branch) - via;

    if (sscf->record_route && m->method_id != NGX_SIP_ACK
        && (m->to.tag.len == 0 || m->method_id == NGX_SIP_INVITE))
    {
        ngx_stream_sip_proxy_route_token(&m->call_id, token);

        f->record_route.data = rr;
        f->record_route.len = ngx_sprintf(rr, "<sip:%*s;lr;nsip=%*s>",
                                          alen, addr, (size_t) 16, token)
                              - rr;
    }

    len = ngx_sip_forward_size(m, f);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        goto failed;
    }

    tx->sent.data = p;
    tx->sent.len = ngx_sip_forward_request(p, m, f) - p;

    ngx_memcpy(&tx->peer, sa, socklen);
    tx->peer_len = socklen;

    ngx_stream_sip_tx_send(tx, &tx->sent, &tx->peer, tx->peer_len);

    if (!stateful) {
        ngx_destroy_pool(pool);
        return NGX_OK;
    }

    /* keep what the transaction needs: the request, the way back */

    tx->orig.data = ngx_pnalloc(pool, m->end - m->start);
    tx->branch.data = ngx_pnalloc(pool, NGX_SIP_BRANCH_LEN);
    tx->their.data = ngx_pnalloc(pool, m->via.branch.len + 1);

    if (tx->orig.data == NULL || tx->branch.data == NULL
        || tx->their.data == NULL)
    {
        goto failed;
    }

    tx->orig.len = m->end - m->start;
    ngx_memcpy(tx->orig.data, m->start, tx->orig.len);

    tx->branch.len = NGX_SIP_BRANCH_LEN;
    ngx_memcpy(tx->branch.data, branch, NGX_SIP_BRANCH_LEN);

    tx->their.len = m->via.branch.len;
    ngx_memcpy(tx->their.data, m->via.branch.data, m->via.branch.len);

    /* where answers go: as for our own (RFC 3261 18.2.2, RFC 3581) */

    ngx_memcpy(&tx->client, c->sockaddr, c->socklen);
    tx->client_len = c->socklen;

    if (!m->via.has_rport && m->via.text.len) {
        ngx_inet_set_port(&tx->client.sockaddr,
                          m->via.port ? m->via.port : 5060);
    }

    tx->node.key = ngx_crc32_short(tx->branch.data, tx->branch.len);
    tx->snode.key = ngx_crc32_short(tx->their.data, tx->their.len);

    ngx_rbtree_insert(&ngx_stream_sip_tx_tree, &tx->node);
    ngx_rbtree_insert(&ngx_stream_sip_stx_tree, &tx->snode);
    tx->in_tree = 1;

    tx->retransmit.handler = ngx_stream_sip_tx_retransmit;
    tx->retransmit.data = tx;
    tx->retransmit.log = tx->log;
    tx->retransmit.cancelable = 1;

    tx->timeout.handler = ngx_stream_sip_tx_timeout;
    tx->timeout.data = tx;
    tx->timeout.log = tx->log;
    tx->timeout.cancelable = 1;

    tx->interval = sscf->t1;

    ngx_add_timer(&tx->retransmit, tx->interval);
    ngx_add_timer(&tx->timeout, 64 * sscf->t1);

    if (m->method_id == NGX_SIP_INVITE) {

        /* RFC 3261 16.2: at once, so the caller stops retransmitting */

        ngx_str_set(&reason, "Trying");
        ngx_stream_sip_respond(s, ctx, 100, &reason, NULL);
    }

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


static void
ngx_stream_sip_tx_send(ngx_stream_sip_tx_t *tx, ngx_str_t *msg,
    ngx_sockaddr_t *sa, socklen_t socklen)
{
    ssize_t  n;

    n = sendto(tx->ls->fd, msg->data, msg->len, 0, &sa->sockaddr, socklen);

    if (n != (ssize_t) msg->len) {
        ngx_log_error(NGX_LOG_INFO, tx->log, ngx_socket_errno,
                      "SIP proxy: sendto() failed");
    }
}


/* timers A and E (RFC 3261 17.1.1.2, 17.1.2.2) */

static void
ngx_stream_sip_tx_retransmit(ngx_event_t *ev)
{
    ngx_stream_sip_tx_t  *tx = ev->data;

    if (tx->completed) {
        return;
    }

    ngx_stream_sip_tx_send(tx, &tx->sent, &tx->peer, tx->peer_len);

    tx->interval *= 2;

    if (tx->method != NGX_SIP_INVITE && tx->interval > tx->t2) {
        tx->interval = tx->t2;
    }

    ngx_add_timer(ev, tx->interval);
}


/* timers B and F: nobody answered; timers D and K: the end */

static void
ngx_stream_sip_tx_timeout(ngx_event_t *ev)
{
    ngx_stream_sip_tx_t  *tx = ev->data;

    if (!tx->completed && tx->method == NGX_SIP_INVITE
        && tx->status >= 100)
    {
        /*
         * Timer C (RFC 3261 16.6 step 11, 16.8): ringing too long.  The
         * branch is cancelled, the caller gets 408 now, and the
         * transaction stays for the 487 to be acknowledged.
         */

        ngx_log_error(NGX_LOG_INFO, tx->log, 0,
                      "SIP proxy: no final answer to INVITE in time");

        ngx_stream_sip_proxy_cancel(tx);
        (void) ngx_stream_sip_answer_tx(tx, 408, "Request Timeout");

        tx->completed = 1;
        tx->status = 408;

        ngx_add_timer(&tx->timeout, 32000);
        return;
    }

    if (!tx->completed && tx->status < 200) {
        ngx_log_error(NGX_LOG_INFO, tx->log, 0,
                      "SIP proxy: no final answer from the next hop");

        (void) ngx_stream_sip_answer_tx(tx, 408, "Request Timeout");
    }

    ngx_stream_sip_tx_free(tx);
}


static void
ngx_stream_sip_tx_free(ngx_stream_sip_tx_t *tx)
{
    if (tx->in_tree) {
        ngx_rbtree_delete(&ngx_stream_sip_tx_tree, &tx->node);
        ngx_rbtree_delete(&ngx_stream_sip_stx_tree, &tx->snode);
        tx->in_tree = 0;
    }

    if (tx->retransmit.timer_set) {
        ngx_del_timer(&tx->retransmit);
    }

    if (tx->timeout.timer_set) {
        ngx_del_timer(&tx->timeout);
    }

    ngx_destroy_pool(tx->pool);
}


/* our own final answer to the caller, built from its request */

static ngx_int_t
ngx_stream_sip_answer_tx(ngx_stream_sip_tx_t *tx, ngx_uint_t status,
    char *reason)
{
    u_char           *p;
    ngx_str_t         out;
    ngx_sip_msg_t     m;
    ngx_sip_resp_t    r;

    if (ngx_stream_sip_reparse(&tx->orig, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));
    r.status = status;
    r.reason.data = (u_char *) reason;
    r.reason.len = ngx_strlen(reason);
    ngx_str_set(&r.to_tag, "ngxsip0");

    p = ngx_pnalloc(tx->pool, ngx_sip_response_size(&m, &r));
    if (p == NULL) {
        return NGX_ERROR;
    }

    out.data = p;
    out.len = ngx_sip_write_response(p, &m, &r) - p;

    ngx_stream_sip_tx_send(tx, &out, &tx->client, tx->client_len);

    return NGX_OK;
}


static void
ngx_stream_sip_proxy_cancel(ngx_stream_sip_tx_t *tx)
{
    u_char         *p;
    ngx_str_t       out;
    ngx_sip_msg_t   m;

    if (ngx_stream_sip_reparse(&tx->sent, &m) != NGX_OK) {
        return;
    }

    p = ngx_pnalloc(tx->pool, ngx_sip_hop_request_size(&m, NULL));
    if (p == NULL) {
        return;
    }

    out.data = p;
    out.len = ngx_sip_write_hop_request(p, &m, NULL) - p;

    ngx_stream_sip_tx_send(tx, &out, &tx->peer, tx->peer_len);
}


/*
 * Equal keys may sit on either side after rotations, so both subtrees
 * of a node with the key are searched.
 */

static ngx_stream_sip_tx_t *
ngx_stream_sip_tx_find_in(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, uint32_t key, ngx_str_t *branch,
    ngx_uint_t server, ngx_uint_t method)
{
    ngx_str_t            *b;
    ngx_stream_sip_tx_t  *tx;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        if (server) {
            tx = (ngx_stream_sip_tx_t *)
                     ((u_char *) node - offsetof(ngx_stream_sip_tx_t, snode));
            b = &tx->their;

        } else {
            tx = (ngx_stream_sip_tx_t *) node;
            b = &tx->branch;
        }

        if (b->len == branch->len
            && ngx_memcmp(b->data, branch->data, b->len) == 0
            && (!server || tx->method == method))
        {
            return tx;
        }

        tx = ngx_stream_sip_tx_find_in(node->left, sentinel, key, branch,
                                       server, method);
        if (tx) {
            return tx;
        }

        node = node->right;
    }

    return NULL;
}


static ngx_stream_sip_tx_t *
ngx_stream_sip_tx_find(ngx_rbtree_t *tree, ngx_str_t *branch,
    ngx_uint_t server, ngx_uint_t method)
{
    if (!ngx_stream_sip_tx_ready || branch->len == 0) {
        return NULL;
    }

    return ngx_stream_sip_tx_find_in(tree->root, tree->sentinel,
                                     ngx_crc32_short(branch->data,
                                                     branch->len),
                                     branch, server, method);
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
    u_char               *p;
    uint32_t              loop, salt;
    socklen_t             socklen;
    ngx_str_t             out;
    ngx_uint_t            status;
    ngx_sip_msg_t        *m, fwd;
    ngx_sockaddr_t        sa;

    ngx_stream_sip_tx_t  *tx;

    m = &ctx->msg;

    /* we only send over UDP yet, so our answers only come that way */

    if (ctx->transport != NGX_STREAM_SIP_UDP
        || ngx_sip_branch_check(&m->via.branch, ngx_stream_sip_key, &loop,
                                &salt)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (m->cseq.method_id == NGX_SIP_CANCEL) {

        /* the answer to our own hop-by-hop CANCEL stops here */
        return NGX_OK;
    }

    p = ngx_pnalloc(s->connection->pool, m->end - m->start);
    if (p == NULL) {
        return NGX_OK;
    }

    out.data = p;
    out.len = ngx_sip_forward_response(p, m) - p;

    /* a client transaction is its branch and its method (17.1.3) */

    tx = ngx_stream_sip_tx_find(&ngx_stream_sip_tx_tree, &m->via.branch,
                                0, 0);

    if (tx && tx->method != m->cseq.method_id) {
        return NGX_OK;
    }

    if (tx == NULL) {
        if (ngx_stream_sip_reparse(&out, &fwd) != NGX_OK
            || ngx_stream_sip_response_sockaddr(&fwd, &sa, &socklen)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                          "SIP response dropped: no way back");
            return NGX_OK;
        }

        if (sendto(s->connection->listening->fd, out.data, out.len, 0,
                   &sa.sockaddr, socklen) != (ssize_t) out.len)
        {
            ngx_log_error(NGX_LOG_INFO, s->connection->log, ngx_socket_errno,
                          "SIP proxy: sendto() failed");
        }

        return NGX_OK;
    }

    status = m->status;
    ctx->status = status;

    if (status < 200) {

        /* a provisional answer stops INVITE retransmissions (17.1.1.2) */

        if (tx->method == NGX_SIP_INVITE && tx->retransmit.timer_set) {
            ngx_del_timer(&tx->retransmit);
        }

        if (tx->method != NGX_SIP_INVITE) {
            tx->interval = tx->t2;
        }

        if (tx->status < 100) {
            tx->status = 100;
        }

        /* Timer B is over; Timer C runs from every provisional (16.7) */

        if (tx->method == NGX_SIP_INVITE && status > 100) {
            ngx_add_timer(&tx->timeout, tx->timer_c);
        }

        if (tx->cancel_pending) {
            tx->cancel_pending = 0;
            ngx_stream_sip_proxy_cancel(tx);
        }

        if (status == 100) {

            /* 100 is hop by hop: we sent our own (16.7 step 3) */
            return NGX_OK;
        }

        tx->status = status;

        ngx_stream_sip_tx_send(tx, &out, &tx->client, tx->client_len);

        return NGX_OK;
    }

    if (tx->completed) {

        /* the final answer again: our ACK was lost (17.1.1.2) */

        if (tx->ack.len) {
            ngx_stream_sip_tx_send(tx, &tx->ack, &tx->peer, tx->peer_len);

        } else if (tx->method == NGX_SIP_INVITE && status >= 300) {

            /* the 487 after our Timer C CANCEL */
            ngx_stream_sip_proxy_ack(tx, m);
        }

        return NGX_OK;
    }

    tx->completed = 1;
    tx->status = status;

    ngx_stream_sip_tx_send(tx, &out, &tx->client, tx->client_len);

    if (tx->retransmit.timer_set) {
        ngx_del_timer(&tx->retransmit);
    }

    if (tx->method == NGX_SIP_INVITE && status < 300) {

        /* a 2xx ends the INVITE client transaction at once (17.1.1.2) */

        ngx_stream_sip_tx_free(tx);
        return NGX_OK;
    }

    /* keep the answer for retransmitted requests */

    tx->last.data = ngx_pnalloc(tx->pool, out.len);

    if (tx->last.data) {
        tx->last.len = out.len;
        ngx_memcpy(tx->last.data, out.data, out.len);
    }

    if (tx->method == NGX_SIP_INVITE) {
        ngx_stream_sip_proxy_ack(tx, m);
    }

    /* timers D and K: then the transaction goes */

    ngx_add_timer(&tx->timeout, tx->method == NGX_SIP_INVITE ? 32000
                                                             : tx->t4);

    return NGX_OK;
}


static void
ngx_stream_sip_proxy_ack(ngx_stream_sip_tx_t *tx, ngx_sip_msg_t *resp)
{
    u_char           *p;
    ngx_sip_msg_t     inv;

    if (ngx_stream_sip_reparse(&tx->sent, &inv) != NGX_OK) {
        return;
    }

    p = ngx_pnalloc(tx->pool, ngx_sip_hop_request_size(&inv, resp));
    if (p == NULL) {
        return;
    }

    tx->ack.data = p;
    tx->ack.len = ngx_sip_write_hop_request(p, &inv, resp) - p;

    ngx_stream_sip_tx_send(tx, &tx->ack, &tx->peer, tx->peer_len);
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
 * A message we keep (the request as received, the request as sent, an
 * answer as forwarded) parsed again when it is needed: rarely, so it is
 * not worth keeping the parse.  The slots are the proxy's own: the
 * message being processed keeps the glue's.
 */

static ngx_int_t
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
