
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Flows: the TCP and TLS connections of this worker, those peers opened
 * to us and those we opened, by connection number and by peer address.
 *
 * By number, so that a message can go back on the connection a peer
 * opened (answers to its requests, requests to it along the route set)
 * and so that a reference to a connection never outlives it: whoever
 * needs one keeps its number and looks it up when it sends.  Numbers
 * come from a counter shared by all workers: a number names one
 * connection of one worker, and the "nfl" parameter of our Record-Route
 * carries both (ngx_stream_sip_route.c).
 *
 * Transactions (ngx_stream_sip_tx.c) count themselves on the flow they
 * wait on (ngx_stream_sip_flow_hold()), so that a leaving worker knows at
 * once whether an idle flow may close, and learn that a flow failed
 * through the handler they set: this file calls nothing of theirs.
 *
 * By peer address and transport, so that every message to a peer goes on
 * the connection there is, whoever opened it (RFC 5923 in spirit).
 *
 * A connection we open becomes a stream session of the server that
 * needed it, as if the peer had connected to us ("adopted" through the
 * server's listening, ngx_stream_init_connection()): what comes back on
 * it is read, framed and handled exactly as on an accepted one.  Until
 * it is connected, what is sent to it waits in the flow.
 */


typedef struct {
    ngx_rbtree_node_t        node;       /* key: connection number */
    ngx_rbtree_node_t        anode;      /* key: hash of peer address */
    ngx_connection_t        *connection;
    ngx_stream_session_t    *session;    /* NULL while connecting */
    ngx_listening_t         *ls;         /* the server it belongs to */
    ngx_uint_t               transport;
    unsigned                 opened:1;   /* by us, to an address */

    ngx_stream_sip_ssl_srv_conf_t  *sslcf;
    ngx_str_t                name;       /* to verify the peer as */

    u_char                  *pending;    /* ngx_alloc()ed */
    size_t                   npending;

    ngx_uint_t               holds;      /* transactions waiting on it */
} ngx_stream_sip_flow_t;


static ngx_stream_sip_flow_t *ngx_stream_sip_flow_get(ngx_uint_t number);
static uint32_t ngx_stream_sip_flow_hash(struct sockaddr *sa,
    socklen_t socklen, ngx_uint_t transport);
static void ngx_stream_sip_flow_insert(ngx_stream_sip_flow_t *f);
static void ngx_stream_sip_flow_connected(ngx_event_t *ev);
static void ngx_stream_sip_flow_handshaked(ngx_connection_t *c);
static void ngx_stream_sip_flow_adopt(ngx_stream_sip_flow_t *f);
static ngx_listening_t *ngx_stream_sip_flow_listening(
    ngx_stream_sip_flow_t *f);
static void ngx_stream_sip_flow_fail(ngx_stream_sip_flow_t *f);
static void ngx_stream_sip_flow_cleanup(void *data);
static void ngx_stream_sip_flow_gone(ngx_uint_t number);
static void ngx_stream_sip_flow_gone_handler(ngx_event_t *ev);


#define NGX_STREAM_SIP_MAX_GONE  64


static ngx_rbtree_t       ngx_stream_sip_flows;
static ngx_rbtree_node_t  ngx_stream_sip_flows_sentinel;
static ngx_rbtree_t       ngx_stream_sip_flow_addrs;
static ngx_rbtree_node_t  ngx_stream_sip_flow_addrs_sentinel;
static ngx_uint_t         ngx_stream_sip_flows_ready;

static ngx_stream_sip_flow_failed_pt  ngx_stream_sip_flow_failed_handler;

static ngx_event_t        ngx_stream_sip_gone_event;
static ngx_uint_t         ngx_stream_sip_gone[NGX_STREAM_SIP_MAX_GONE];
static ngx_uint_t         ngx_stream_sip_ngone;


/* a session on a TCP or TLS connection: accepted, or adopted */

ngx_int_t
ngx_stream_sip_flow_add(ngx_stream_session_t *s)
{
    ngx_str_t               msg;
    ngx_connection_t       *c;
    ngx_stream_sip_ctx_t   *ctx;
    ngx_stream_sip_flow_t  *f;

    c = s->connection;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_sip_module);

    f = ngx_stream_sip_flow_get(c->number);

    if (f) {

        /* one we opened, now a session: what waited goes */

        f->session = s;

        if (f->npending) {
            msg.data = f->pending;
            msg.len = f->npending;

            (void) ngx_stream_sip_output(s, &msg);

            ngx_free(f->pending);
            f->pending = NULL;
            f->npending = 0;
        }

        return NGX_OK;
    }

    f = ngx_pcalloc(c->pool, sizeof(ngx_stream_sip_flow_t));
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->connection = c;
    f->session = s;
    f->transport = ctx->transport;

    ngx_stream_sip_flow_insert(f);

    return NGX_OK;
}


static void
ngx_stream_sip_flow_insert(ngx_stream_sip_flow_t *f)
{
    ngx_connection_t  *c;

    if (!ngx_stream_sip_flows_ready) {
        ngx_rbtree_init(&ngx_stream_sip_flows,
                        &ngx_stream_sip_flows_sentinel,
                        ngx_rbtree_insert_value);
        ngx_rbtree_init(&ngx_stream_sip_flow_addrs,
                        &ngx_stream_sip_flow_addrs_sentinel,
                        ngx_rbtree_insert_value);
        ngx_stream_sip_flows_ready = 1;
    }

    c = f->connection;

    f->node.key = c->number;
    ngx_rbtree_insert(&ngx_stream_sip_flows, &f->node);

    f->anode.key = ngx_stream_sip_flow_hash(c->sockaddr, c->socklen,
                                            f->transport);
    ngx_rbtree_insert(&ngx_stream_sip_flow_addrs, &f->anode);
}


void
ngx_stream_sip_flow_delete(ngx_stream_session_t *s)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(s->connection->number);

    if (f) {
        ngx_rbtree_delete(&ngx_stream_sip_flows, &f->node);
        ngx_rbtree_delete(&ngx_stream_sip_flow_addrs, &f->anode);
        ngx_stream_sip_flow_gone(f->connection->number);
    }
}


/*
 * A flow that closed: the branches still waiting on it fail, not when
 * their timers say so.  Not at once: the connection is being closed by
 * whoever called, so a posted event does it.
 */

static void
ngx_stream_sip_flow_gone(ngx_uint_t number)
{
    if (ngx_stream_sip_ngone == NGX_STREAM_SIP_MAX_GONE) {
        return;
    }

    ngx_stream_sip_gone[ngx_stream_sip_ngone++] = number;

    if (!ngx_stream_sip_gone_event.posted) {
        ngx_stream_sip_gone_event.handler = ngx_stream_sip_flow_gone_handler;
        ngx_stream_sip_gone_event.log = ngx_cycle->log;
        ngx_post_event(&ngx_stream_sip_gone_event, &ngx_posted_events);
    }
}


static void
ngx_stream_sip_flow_gone_handler(ngx_event_t *ev)
{
    ngx_uint_t  i, n, gone[NGX_STREAM_SIP_MAX_GONE];

    n = ngx_stream_sip_ngone;
    ngx_memcpy(gone, ngx_stream_sip_gone, n * sizeof(ngx_uint_t));
    ngx_stream_sip_ngone = 0;

    for (i = 0; i < n; i++) {
        ngx_stream_sip_flow_failed(gone[i]);
    }
}


/*
 * A flow failed (never came up, or closed) here or in the worker holding
 * it: whoever waits on it learns it now, not at a timeout.
 */

void
ngx_stream_sip_flow_failed(ngx_uint_t number)
{
    if (ngx_stream_sip_flow_failed_handler) {
        ngx_stream_sip_flow_failed_handler(number);
    }
}


void
ngx_stream_sip_flow_on_failed(ngx_stream_sip_flow_failed_pt handler)
{
    ngx_stream_sip_flow_failed_handler = handler;
}


/*
 * A transaction waits on a flow of this worker, or no longer does (a
 * flow of another worker, or one gone, is not counted here).
 */

void
ngx_stream_sip_flow_hold(ngx_uint_t number, ngx_int_t n)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    if (f == NULL || (n < 0 && f->holds == 0)) {
        return;
    }

    f->holds += n;
}


/*
 * Whether a transaction still needs a flow: a request that came on it
 * and has no final answer yet, or a branch sent over it that has none.
 * A worker that leaves (nginx -s reload) closes the flow only then.
 */

ngx_uint_t
ngx_stream_sip_flow_busy(ngx_uint_t number)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    return f != NULL && f->holds != 0;
}


static ngx_stream_sip_flow_t *
ngx_stream_sip_flow_get(ngx_uint_t number)
{
    ngx_rbtree_node_t  *node, *sentinel;

    if (!ngx_stream_sip_flows_ready) {
        return NULL;
    }

    node = ngx_stream_sip_flows.root;
    sentinel = ngx_stream_sip_flows.sentinel;

    while (node != sentinel) {

        if (number == node->key) {
            return (ngx_stream_sip_flow_t *) node;
        }

        node = (number < node->key) ? node->left : node->right;
    }

    return NULL;
}


ngx_stream_session_t *
ngx_stream_sip_flow_find(ngx_uint_t number)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    return f ? f->session : NULL;
}


ngx_uint_t
ngx_stream_sip_flow_exists(ngx_uint_t number)
{
    return ngx_stream_sip_flow_get(number) != NULL;
}


/* a message for a flow: sent, or kept until it is connected */

ngx_int_t
ngx_stream_sip_flow_send(ngx_uint_t number, ngx_str_t *msg)
{
    u_char                 *p;
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    if (f == NULL) {
        return NGX_DECLINED;
    }

    if (f->session) {

        /*
         * A leaving worker closes a flow once no transaction needs it:
         * an answer going out may be the last, so it looks again soon.
         */

        if (ngx_exiting) {
            ngx_add_timer(f->connection->read, 1000);
        }

        return ngx_stream_sip_output(f->session, msg);
    }

    if (f->npending + msg->len > 65536) {
        return NGX_ERROR;
    }

    p = ngx_alloc(f->npending + msg->len, f->connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (f->npending) {
        ngx_memcpy(p, f->pending, f->npending);
        ngx_free(f->pending);
    }

    ngx_memcpy(p + f->npending, msg->data, msg->len);

    f->pending = p;
    f->npending += msg->len;

    return NGX_OK;
}


/* the transport of a flow of this worker, NGX_STREAM_SIP_NONE if gone */

ngx_uint_t
ngx_stream_sip_flow_transport(ngx_uint_t number)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    return f ? f->transport : NGX_STREAM_SIP_NONE;
}


/*
 * A connection we opened goes to an address anybody can reach again: a
 * route does not need to name it, and must not (it may close, and the
 * next one to the same address serves as well).
 */

ngx_uint_t
ngx_stream_sip_flow_opened(ngx_uint_t number)
{
    ngx_stream_sip_flow_t  *f;

    f = ngx_stream_sip_flow_get(number);

    return f != NULL && f->opened;
}


static uint32_t
ngx_stream_sip_flow_hash(struct sockaddr *sa, socklen_t socklen,
    ngx_uint_t transport)
{
    uint32_t  h;

    h = ngx_sip_hash(0, (u_char *) &transport, sizeof(ngx_uint_t));

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        h = ngx_sip_hash(h, (u_char *) &((struct sockaddr_in6 *) sa)->sin6_addr,
                         16);
        break;
#endif

    default:
        h = ngx_sip_hash(h, (u_char *) &((struct sockaddr_in *) sa)->sin_addr,
                         4);
        break;
    }

    return ngx_sip_hash(h, (u_char *) &((struct sockaddr_in *) sa)->sin_port,
                        2);
}


/*
 * A connection of this worker with that peer address, port and
 * transport, accepted or opened, whatever TLS verified: where a response
 * goes back when its transaction is gone (RFC 3261 18.2.2: the
 * connection the request came on, if still open).  Its number, or 0.
 */

ngx_uint_t
ngx_stream_sip_flow_peer(ngx_sockaddr_t *sa, socklen_t socklen,
    ngx_uint_t transport)
{
    uint32_t                 hash;
    ngx_rbtree_node_t       *node, *sentinel;
    ngx_stream_sip_flow_t   *f;

    if (!ngx_stream_sip_flows_ready) {
        return 0;
    }

    hash = ngx_stream_sip_flow_hash(&sa->sockaddr, socklen, transport);

    node = ngx_stream_sip_flow_addrs.root;
    sentinel = ngx_stream_sip_flow_addrs.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        f = (ngx_stream_sip_flow_t *)
                ((u_char *) node - offsetof(ngx_stream_sip_flow_t, anode));

        if (f->transport == transport
            && ngx_cmp_sockaddr(f->connection->sockaddr,
                                f->connection->socklen,
                                &sa->sockaddr, socklen, 1)
               == NGX_OK)
        {
            return f->connection->number;
        }

        node = node->right;
    }

    return 0;
}


/*
 * The flow to a peer: one there is (accepted or opened, to that address
 * and port by that transport), or a new connection.  Its number, or 0.
 */

ngx_uint_t
ngx_stream_sip_flow_connect(ngx_listening_t *ls, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t transport,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name, ngx_log_t *log)
{
    uint32_t                 hash;
    ngx_int_t                rc;
    ngx_pool_cleanup_t      *cln;
    ngx_log_t               *clog;
    ngx_rbtree_node_t       *node, *sentinel;
    ngx_connection_t        *c;
    ngx_peer_connection_t    pc;
    ngx_stream_sip_flow_t   *f;

    hash = ngx_stream_sip_flow_hash(&sa->sockaddr, socklen, transport);

    if (ngx_stream_sip_flows_ready) {
        node = ngx_stream_sip_flow_addrs.root;
        sentinel = ngx_stream_sip_flow_addrs.sentinel;

        /* equal hashes are searched in order: few flows share one */

        while (node != sentinel) {

            if (hash < node->key) {
                node = node->left;
                continue;
            }

            if (hash > node->key) {
                node = node->right;
                continue;
            }

            f = (ngx_stream_sip_flow_t *)
                    ((u_char *) node - offsetof(ngx_stream_sip_flow_t,
                                                anode));

            /*
             * TLS: only a connection of ours made with the same settings
             * and verified as the same name; a peer's own connection to
             * us proves nothing of what we would verify.
             */

            if (f->transport == transport
                && (transport != NGX_STREAM_SIP_TLS
                    || (f->sslcf && f->sslcf == sslcf
                        && (name == NULL
                            || (f->name.len == name->len
                                && ngx_strncmp(f->name.data, name->data,
                                               name->len) == 0))))
                && ngx_cmp_sockaddr(f->connection->sockaddr,
                                    f->connection->socklen,
                                    &sa->sockaddr, socklen, 1)
                   == NGX_OK
                && !(f->session
                     && ((ngx_stream_sip_ctx_t *)
                         ngx_stream_get_module_ctx(f->session,
                                                   ngx_stream_sip_module))
                        ->failed))
            {
                return f->connection->number;
            }

            node = node->right;
        }
    }

    /* a WebSocket client has only the connection it opened (RFC 7118) */

    if (transport == NGX_STREAM_SIP_UDP
        || ngx_stream_sip_transport_ws(transport)
#if !(NGX_STREAM_SSL)
        || transport == NGX_STREAM_SIP_TLS
#endif
       )
    {
        return 0;
    }

    /*
     * The connection becomes a session of a listening of its own address
     * family (nginx finds the server by the local address), of the same
     * port if there is one.
     */

    if (ls == NULL || ls->sockaddr->sa_family != sa->sockaddr.sa_family) {
        ls = ngx_stream_sip_adopt_listening(sa->sockaddr.sa_family,
                                   ls ? ngx_inet_get_port(ls->sockaddr) : 0,
                                   transport);
        if (ls == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "SIP: no \"sip on\" listen of the next hop's "
                          "address family to connect from");
            return 0;
        }
    }

    ngx_memzero(&pc, sizeof(ngx_peer_connection_t));

    pc.sockaddr = &sa->sockaddr;
    pc.socklen = socklen;
    pc.name = &ls->addr_text;
    pc.get = ngx_event_get_peer;
    pc.log = ngx_cycle->log;
    pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP proxy: could not connect to next hop");
        return 0;
    }

    c = pc.connection;

    c->pool = ngx_create_pool(ls->pool_size, ngx_cycle->log);
    if (c->pool == NULL) {
        ngx_close_connection(c);
        return 0;
    }

    /* a log of its own, as an accepted connection has: it outlives "log" */

    clog = ngx_palloc(c->pool, sizeof(ngx_log_t));
    f = ngx_pcalloc(c->pool, sizeof(ngx_stream_sip_flow_t));
    cln = ngx_pool_cleanup_add(c->pool, 0);
    c->addr_text.data = ngx_pnalloc(c->pool, NGX_SOCKADDR_STRLEN);
    c->sockaddr = ngx_palloc(c->pool, socklen);

    if (clog == NULL || f == NULL || cln == NULL
        || c->addr_text.data == NULL || c->sockaddr == NULL)
    {
        ngx_destroy_pool(c->pool);
        ngx_close_connection(c);
        return 0;
    }

    *clog = ls->log;
    clog->data = NULL;
    clog->handler = NULL;

    c->log = clog;
    c->pool->log = clog;
    c->read->log = clog;
    c->write->log = clog;

    ngx_memcpy(c->sockaddr, sa, socklen);
    c->socklen = socklen;

    /* as nginx has it for an accepted one: $remote_port adds the port */

    c->addr_text.len = ngx_sock_ntop(c->sockaddr, c->socklen,
                                     c->addr_text.data, NGX_SOCKADDR_STRLEN,
                                     0);

    f->connection = c;
    f->ls = ls;
    f->transport = transport;
    f->opened = 1;
    f->sslcf = sslcf;

    /* the name to verify: given, or the address */

    if (name && name->len) {
        f->name.data = ngx_pstrdup(c->pool, name);
        f->name.len = name->len;

    } else {
        f->name = c->addr_text;
    }

    cln->handler = ngx_stream_sip_flow_cleanup;
    cln->data = f;

    ngx_stream_sip_flow_insert(f);

    c->data = f;
    c->read->handler = ngx_stream_sip_flow_connected;
    c->write->handler = ngx_stream_sip_flow_connected;

    if (rc == NGX_OK) {
        ngx_post_event(c->write, &ngx_posted_events);

    } else {
        ngx_add_timer(c->write, 10000);
    }

    return c->number;
}


/*
 * Connected (or not): the connection becomes a session of the server it
 * was opened for.  It reads what comes back on it; what waited is sent
 * once the session is there (ngx_stream_sip_flow_add()).
 */

static void
ngx_stream_sip_flow_connected(ngx_event_t *ev)
{
    int                     err;
    socklen_t               len;
    ngx_connection_t       *c;
    ngx_stream_sip_flow_t  *f;

    c = ev->data;
    f = c->data;

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "SIP proxy: connecting to next hop timed out");
        ngx_stream_sip_flow_fail(f);
        return;
    }

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        ngx_log_error(NGX_LOG_INFO, c->log, err,
                      "SIP proxy: connect() to next hop failed");
        ngx_stream_sip_flow_fail(f);
        return;
    }

#if (NGX_STREAM_SSL)

    if (f->transport == NGX_STREAM_SIP_TLS && c->ssl == NULL) {

        switch (ngx_stream_sip_ssl_connect(c, f->sslcf, &f->name,
                                           ngx_stream_sip_flow_handshaked))
        {
        case NGX_AGAIN:
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, 10000);
            }

            return;

        case NGX_OK:
            ngx_stream_sip_flow_handshaked(c);
            return;

        default:
            ngx_stream_sip_flow_fail(f);
            return;
        }
    }

#endif

    ngx_stream_sip_flow_adopt(f);
}


#if (NGX_STREAM_SSL)

static void
ngx_stream_sip_flow_handshaked(ngx_connection_t *c)
{
    ngx_stream_sip_flow_t  *f;

    f = c->data;

    if (ngx_stream_sip_ssl_verify(c, f->sslcf, &f->name) != NGX_OK) {
        ngx_stream_sip_flow_fail(f);
        return;
    }

    ngx_stream_sip_flow_adopt(f);
}

#endif


static void
ngx_stream_sip_flow_adopt(ngx_stream_sip_flow_t *f)
{
    ngx_connection_t  *c;

    c = f->connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    /* nginx finds the server by it, as for an accepted connection */

    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        ngx_stream_sip_flow_fail(f);
        return;
    }

    c->listening = ngx_stream_sip_flow_listening(f);

    if (c->listening == NULL) {
        ngx_stream_sip_flow_fail(f);
        return;
    }

    c->read->handler = NULL;
    c->write->handler = NULL;

    ngx_stream_init_connection(c);
}


/*
 * The listening a connection we opened is adopted through.  nginx gives
 * a session the server of its listen's address, but a UDP listen has its
 * default server only, and since nginx 1.25.5 a listen may hold several
 * servers, chosen by the TLS server name: the connection belongs to the
 * server that opened it (the one of its sip_ssl settings), so unless that
 * is the listen's only server it gets a copy of the listening whose one
 * address is that server's.
 */

static ngx_listening_t *
ngx_stream_sip_flow_listening(ngx_stream_sip_flow_t *f)
{
    size_t                        size, offset;
    ngx_uint_t                    i;
    ngx_pool_t                   *pool;
    ngx_listening_t              *ls;
    ngx_stream_port_t            *port;
    ngx_stream_addr_conf_t       *conf;
    ngx_stream_core_srv_conf_t  **cscfp, *cscf;
    ngx_stream_core_main_conf_t  *cmcf;

    port = f->ls->servers;
    cmcf = ngx_stream_cycle_get_module_main_conf(ngx_cycle,
                                                 ngx_stream_core_module);

    if (port == NULL || port->naddrs == 0 || cmcf == NULL) {
        return f->ls;
    }

    cscf = NULL;
    cscfp = cmcf->servers.elts;

    for (i = 0; i < cmcf->servers.nelts; i++) {
        if (cscfp[i]->ctx->srv_conf[ngx_stream_sip_ssl_module.ctx_index]
            == f->sslcf)
        {
            cscf = cscfp[i];
            break;
        }
    }

#if (NGX_HAVE_INET6)
    if (f->ls->sockaddr->sa_family == AF_INET6) {
        size = sizeof(ngx_stream_in6_addr_t);
        offset = offsetof(ngx_stream_in6_addr_t, conf);

    } else
#endif
    {
        size = sizeof(ngx_stream_in_addr_t);
        offset = offsetof(ngx_stream_in_addr_t, conf);
    }

    conf = (ngx_stream_addr_conf_t *) ((u_char *) port->addrs + offset);

    if (cscf == NULL
        || (port->naddrs == 1
            && ngx_stream_sip_addr_conf_ctx(conf) == cscf->ctx))
    {
        return f->ls;
    }

    pool = f->connection->pool;

    ls = ngx_palloc(pool, sizeof(ngx_listening_t));
    port = ngx_palloc(pool, sizeof(ngx_stream_port_t));

    if (ls == NULL || port == NULL) {
        return NULL;
    }

    *ls = *f->ls;
    *port = *(ngx_stream_port_t *) f->ls->servers;

    port->addrs = ngx_palloc(pool, size);
    if (port->addrs == NULL) {
        return NULL;
    }

    ngx_memcpy(port->addrs, ((ngx_stream_port_t *) f->ls->servers)->addrs,
               size);
    port->naddrs = 1;
    ls->servers = port;

    conf = (ngx_stream_addr_conf_t *) ((u_char *) port->addrs + offset);

    ngx_stream_sip_addr_conf_set_server(conf, cscf);
    conf->ssl = 0;
    conf->proxy_protocol = 0;

    return ls;
}


/* never connected: what waited for it fails now, not at its timeout */

static void
ngx_stream_sip_flow_fail(ngx_stream_sip_flow_t *f)
{
    ngx_uint_t         number;
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = f->connection;
    pool = c->pool;
    number = c->number;

#if (NGX_STREAM_SSL)
    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }
#endif

    ngx_close_connection(c);
    ngx_destroy_pool(pool);

    ngx_stream_sip_flow_failed(number);
}


/* the flow goes with its connection's pool, whatever closes it */

static void
ngx_stream_sip_flow_cleanup(void *data)
{
    ngx_stream_sip_flow_t  *f = data;

    if (f->pending) {
        ngx_free(f->pending);
        f->pending = NULL;
    }

    if (ngx_stream_sip_flow_get(f->connection->number) == f) {
        ngx_rbtree_delete(&ngx_stream_sip_flows, &f->node);
        ngx_rbtree_delete(&ngx_stream_sip_flow_addrs, &f->anode);
        ngx_stream_sip_flow_gone(f->connection->number);
    }
}
