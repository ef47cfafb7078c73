
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The transaction-stateful proxy over UDP (RFC 3261 16 and 17).
 *
 * A request starts a server transaction (stx): it absorbs the caller's
 * retransmissions, answers CANCEL, keeps the final answer, and owns one
 * client transaction (branch) per destination tried.  Destinations come
 * from the location service (forked by q: parallel within a q, serial
 * between), from an upstream {} through nginx's peer API (serial: the
 * next peer after a timeout or a 503), from a single sip_pass address,
 * or, in a dialog, from the route set.  The best final answer of all
 * branches goes back (16.7).
 *
 * Every message of a Call-ID reaches the worker that owns it (see
 * ngx_stream_sip_channel.c), so transactions are plain per-worker state:
 * one hash table of branches by our branch parameter (responses) and one
 * of server transactions by the caller's (retransmissions, CANCEL, ACK,
 * ngx_stream_sip_table.c).  A
 * server transaction has a pool of its own that holds its branches; it
 * outlives the stream session of the datagram that started it.
 */


typedef struct ngx_stream_sip_stx_s     ngx_stream_sip_stx_t;
typedef struct ngx_stream_sip_branch_s  ngx_stream_sip_branch_t;


struct ngx_stream_sip_branch_s {
    ngx_stream_sip_tnode_t      node;        /* by our branch */
    ngx_stream_sip_stx_t       *stx;
    ngx_stream_sip_branch_t    *next;

    u_char                      id[NGX_SIP_BRANCH_LEN];
    ngx_str_t                   branch;      /* points to id */
    ngx_str_t                   sent;        /* the request as forwarded */
    ngx_str_t                   ack;         /* our ACK for a non-2xx */

    ngx_sockaddr_t              peer;
    socklen_t                   peer_len;
    ngx_uint_t                  flow;        /* or over this connection */
    ngx_uint_t                  flow_worker; /* the worker holding it */
    ngx_listening_t            *ls;          /* the UDP socket it uses */
    ngx_str_t                  *ruri;        /* as started, to start again */
    ngx_str_t                  *route;
    unsigned                    upgraded:1;  /* too big for UDP: TCP */
    unsigned                    redial:1;    /* a phone's own connection:
                                                gone, its Contact then */

    ngx_event_t                 retransmit;  /* A, E */
    ngx_event_t                 timeout;     /* B, F, then C */
    ngx_msec_t                  interval;

    ngx_uint_t                  status;      /* the last one received */
    unsigned                    completed:1;
    unsigned                    cancel_pending:1;
    unsigned                    cancelled:1;
    unsigned                    upstream:1;  /* holds a peer of the stx */
};


struct ngx_stream_sip_stx_s {
    ngx_stream_sip_tnode_t      node;        /* by the caller's branch */
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    ngx_listening_t            *ls;

    ngx_str_t                   their;       /* the caller's branch */
    ngx_uint_t                  method;
    ngx_str_t                   orig;        /* the request as received */
    ngx_str_t                   via_host;    /* our address, as text */
    ngx_str_t                   record_route; /* caller's side, or "" */
    ngx_str_t                   rr_udp;      /* our UDP side */
    ngx_stream_sip_srv_conf_t  *sscf;        /* of the caller's server */
    ngx_sockaddr_t              local;       /* the request came to */
    socklen_t                   local_len;
    ngx_uint_t                  transport;   /* to the upstream's peers */
    ngx_stream_sip_ssl_srv_conf_t  *sslcf;
    ngx_str_t                   last;        /* final answer to the caller */
    ngx_str_t                   best;        /* best final answer yet */
    ngx_uint_t                  best_status;

    ngx_sockaddr_t              client;
    socklen_t                   client_len;
    ngx_uint_t                  client_flow; /* or its connection */
    ngx_str_t                   received;    /* for a WebSocket caller's */
    ngx_uint_t                  rport;       /* Via (RFC 7118 5) */

    ngx_stream_sip_branch_t    *branches;
    ngx_uint_t                  nbranches;
    ngx_uint_t                  active;      /* without a final answer */

    ngx_uint_t                  drop;        /* our credentials */

    ngx_stream_sip_target_t    *targets;     /* not tried yet, by q */
    ngx_uint_t                  ntargets;

    ngx_stream_upstream_t      *upstream;    /* its peer API state */
    ngx_uint_t                  tried;

    ngx_msec_t                  start;       /* for $sip_duration */

    ngx_stream_sip_tx_source_t *source;      /* what it is charged to */
    size_t                      charged;     /* bytes it keeps */
    ngx_stream_sip_tx_limit_conf_t  *tlcf;   /* its fan-out limits */

    ngx_event_t                 retransmit;  /* G */
    ngx_event_t                 timeout;     /* H, J: then it goes */
    ngx_msec_t                  interval;
    ngx_msec_t                  t1;
    ngx_msec_t                  t2;
    ngx_msec_t                  t4;
    ngx_msec_t                  timer_c;

    ngx_uint_t                  pop_route;   /* our Route values */

    /* strict routing (RFC 3261 16.4, 16.6 step 7) */
    ngx_str_t                   strict_ruri;
    ngx_uint_t                  cut;         /* 1 + index of a Route */
    size_t                      cut_off;     /* from the message start */
    ngx_str_t                   append_route;

    unsigned                    completed:1; /* a final answer went back */
    unsigned                    cancelled:1;
    unsigned                    stop:1;      /* a 6xx: no more branches */
    unsigned                    acked:1;
    unsigned                    in_table:1;
};


/* what the Route header of a request says of us */
typedef struct {
    ngx_uint_t                  ours;        /* leading values of ours */
    ngx_uint_t                  flow;        /* a flow one of them names */
    ngx_uint_t                  worker;      /* that holds it */
    ngx_uint_t                  transport;   /* its transport */
    unsigned                    ob:1;        /* an RFC 5626 flow */
} ngx_stream_sip_route_t;


static ngx_int_t ngx_stream_sip_proxy_in_stx(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
static ngx_int_t ngx_stream_sip_proxy_route_set(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_route_t *r);
static ngx_int_t ngx_stream_sip_strict_in(ngx_sip_msg_t *m,
    ngx_str_t *ruri, ngx_uint_t *cut, u_char **cut_at);
static ngx_int_t ngx_stream_sip_route_value(ngx_sip_msg_t *m,
    ngx_uint_t index, ngx_sip_addr_t *addr);
static u_char *ngx_stream_sip_next_value(u_char *p, u_char *end);
static ngx_int_t ngx_stream_sip_proxy_hand_over(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_int_t slot);
static ngx_uint_t ngx_stream_sip_proxy_connect(ngx_stream_session_t *s,
    ngx_sockaddr_t *sa, socklen_t socklen, ngx_uint_t transport);
static ngx_int_t ngx_stream_sip_flow_route(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m, ngx_uint_t flow, ngx_uint_t worker,
    ngx_uint_t transport, ngx_listening_t *prefer, ngx_uint_t ob,
    ngx_str_t *rr);
static ngx_int_t ngx_stream_sip_stream_host(ngx_stream_sip_srv_conf_t *sscf,
    struct sockaddr *local, ngx_uint_t transport, ngx_listening_t *prefer,
    ngx_pool_t *pool, ngx_str_t *host);
static ngx_uint_t ngx_stream_sip_listening_ssl(ngx_listening_t *ls);
static ngx_stream_sip_srv_conf_t *ngx_stream_sip_listening_conf(
    ngx_listening_t *ls);
static ngx_uint_t ngx_stream_sip_route_is_us(ngx_stream_session_t *s,
    ngx_sip_uri_t *uri);
static void ngx_stream_sip_contact_flow(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_route_t *r);
static ngx_int_t ngx_stream_sip_proxy_pass(ngx_stream_session_t *s,
    ngx_stream_upstream_srv_conf_t **uscf, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport);
static ngx_int_t ngx_stream_sip_route_hop(ngx_sip_msg_t *m, ngx_uint_t ours,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport);
static ngx_int_t ngx_stream_sip_uri_sockaddr(ngx_sip_uri_t *uri,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport);
static ngx_int_t ngx_stream_sip_host_sockaddr(ngx_str_t *host,
    in_port_t port, ngx_sockaddr_t *sa, socklen_t *socklen);
static ngx_int_t ngx_stream_sip_target_hop(ngx_stream_sip_target_t *t,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport);
static void ngx_stream_sip_proxy_route_token(ngx_str_t *call_id,
    u_char *buf);
static ngx_int_t ngx_stream_sip_proxy_stateless(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_forward_t *tpl, ngx_uint_t flow,
    ngx_uint_t worker, ngx_uint_t transport, ngx_sockaddr_t *sa,
    socklen_t socklen);
static ngx_listening_t *ngx_stream_sip_udp_listening(ngx_connection_t *c);
static ngx_uint_t ngx_stream_sip_listening_is_sip(ngx_listening_t *ls);
static uint32_t ngx_stream_sip_salt(void);
static void ngx_stream_sip_branch_resend_udp(ngx_stream_sip_branch_t *b);
static ngx_int_t ngx_stream_sip_branch_redial(ngx_stream_sip_branch_t *b);
static ngx_int_t ngx_stream_sip_branch_build(ngx_stream_sip_branch_t *b,
    ngx_sip_msg_t *m, ngx_str_t *ruri, ngx_str_t *route, ngx_uint_t flow,
    ngx_listening_t *ls, ngx_uint_t transport, ngx_str_t *host);
static ngx_int_t ngx_stream_sip_udp_host(ngx_connection_t *c,
    ngx_listening_t *ls, ngx_pool_t *pool, ngx_str_t *host);
static void ngx_stream_sip_flow_token(ngx_str_t *call_id, ngx_uint_t worker,
    ngx_uint_t number, u_char *buf);
static void ngx_stream_sip_to_client(ngx_stream_sip_stx_t *stx,
    ngx_str_t *msg);
static void ngx_stream_sip_to_peer(ngx_stream_sip_branch_t *b,
    ngx_str_t *msg);
static void ngx_stream_sip_to_flow(ngx_uint_t flow, ngx_uint_t worker,
    ngx_str_t *msg, ngx_log_t *log);
static ngx_stream_sip_stx_t *ngx_stream_sip_stx_create(
    ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_array_t *targets, ngx_stream_sip_tx_source_t *src);
static void ngx_stream_sip_stx_charge(ngx_stream_sip_stx_t *stx,
    u_char *data, ssize_t len);
static ngx_msec_t ngx_stream_sip_stx_left(ngx_stream_sip_stx_t *stx,
    ngx_msec_t timer);
static ngx_int_t ngx_stream_sip_stx_upstream(ngx_stream_session_t *s,
    ngx_stream_sip_stx_t *stx, ngx_stream_upstream_srv_conf_t *uscf);
static ngx_int_t ngx_stream_sip_stx_next(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m);
static ngx_int_t ngx_stream_sip_branch_start(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m, ngx_str_t *ruri, ngx_str_t *route, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t flow, ngx_uint_t worker,
    ngx_uint_t transport);
static void ngx_stream_sip_branch_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_branch_timeout(ngx_event_t *ev);
static void ngx_stream_sip_branch_done(ngx_stream_sip_branch_t *b,
    ngx_uint_t status, ngx_str_t *answer);
static void ngx_stream_sip_branch_cancel(ngx_stream_sip_branch_t *b);
static void ngx_stream_sip_branch_ack(ngx_stream_sip_branch_t *b,
    ngx_sip_msg_t *resp);
static void ngx_stream_sip_stx_advance(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_stx_final(ngx_stream_sip_stx_t *stx);
static void ngx_stream_sip_stx_complete(ngx_stream_sip_stx_t *stx,
    ngx_uint_t status);
static void ngx_stream_sip_stx_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_stx_timeout(ngx_event_t *ev);
static void ngx_stream_sip_stx_free(ngx_stream_sip_stx_t *stx);
static ngx_int_t ngx_stream_sip_stx_answer(ngx_stream_sip_stx_t *stx,
    ngx_uint_t status, char *reason);
static ngx_uint_t ngx_stream_sip_better(ngx_uint_t status, ngx_uint_t best);
static void ngx_stream_sip_send(ngx_listening_t *ls, ngx_log_t *log,
    ngx_str_t *msg, ngx_sockaddr_t *sa, socklen_t socklen);
static ngx_stream_sip_stx_t *ngx_stream_sip_stx_find(ngx_str_t *branch,
    ngx_uint_t method);
static ngx_stream_sip_branch_t *ngx_stream_sip_branch_find(
    ngx_str_t *branch);
static ngx_stream_sip_tnode_t *ngx_stream_sip_table_find(
    ngx_stream_sip_table_t *t, ngx_str_t *branch, ngx_uint_t method,
    ngx_uint_t server);
static void ngx_stream_sip_proxy_log(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_branch_t *b);
static ngx_int_t ngx_stream_sip_response_sockaddr(ngx_sip_msg_t *m,
    ngx_sockaddr_t *sa, socklen_t *socklen);
static ngx_int_t ngx_stream_sip_reparse(ngx_str_t *text, ngx_sip_msg_t *m);
static void ngx_stream_sip_response_stream(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_sip_msg_t *fwd, ngx_str_t *out, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_listening_t *ls, ngx_uint_t transport,
    ngx_log_t *log);
static ngx_int_t ngx_stream_sip_response(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_sip_msg_t *m, ngx_pool_t *pool,
    ngx_log_t *log);


static ngx_stream_sip_table_t  ngx_stream_sip_branches;
static ngx_stream_sip_table_t  ngx_stream_sip_stxs;
static ngx_uint_t         ngx_stream_sip_tx_ready;
static uint32_t           ngx_stream_sip_tx_counter;

static ngx_sip_header_t   ngx_stream_sip_proxy_headers[NGX_SIP_MAX_HEADERS];
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
    u_char                          *cut_at;
    ngx_str_t                        sruri;
    ngx_uint_t                       strict, cut;
    ngx_sip_addr_t                   next;
    ngx_sip_forward_t                tpl;
    ngx_stream_sip_stx_t            *stx;
    ngx_stream_sip_route_t           r;
    ngx_stream_sip_tx_source_t      *src;
    ngx_stream_upstream_srv_conf_t  *uscf;

    m = &ctx->msg;
    cut = 0;
    cut_at = NULL;

    if (!ngx_stream_sip_tx_ready) {
        if (ngx_stream_sip_table_init(&ngx_stream_sip_branches, 1024,
                                      ngx_cycle->log)
            != NGX_OK
            || ngx_stream_sip_table_init(&ngx_stream_sip_stxs, 1024,
                                         ngx_cycle->log)
               != NGX_OK)
        {
            ngx_str_set(&reason, "Out of Memory");
            ngx_stream_sip_respond(s, ctx, 500, &reason, NULL);
            return NGX_OK;
        }

        ngx_stream_sip_tx_ready = 1;
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
    strict = 0;

    if (ngx_stream_sip_strict_in(m, &sruri, &cut, &cut_at) == NGX_OK) {

        /* a strict router before us: the target is the last Route */

        route = NGX_STREAM_SIP_ROUTE_DIALOG;
        r.ours = 0;
        r.flow = 0;
        strict = 1;

    } else {
        route = ngx_stream_sip_proxy_route_set(s, m, &r);
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

    if (route == NGX_STREAM_SIP_ROUTE_DIALOG && r.flow == 0 && !strict) {

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

        if (ngx_stream_sip_route_hop(m, r.ours, &sa, &socklen, &transport)
            != NGX_OK)
        {
            ngx_str_set(&reason, "No Route to Next Hop");
            ngx_stream_sip_respond(s, ctx, 502, &reason, NULL);
            return NGX_OK;
        }

        if (m->method_id == NGX_SIP_ACK) {

            /* the ACK of a 2xx goes on statelessly (RFC 3261 16.11) */

            /* with what strict routing asks, as for a branch */

            ngx_memzero(&tpl, sizeof(ngx_sip_forward_t));
            tpl.pop_route = r.ours;

            if (strict) {
                tpl.ruri = sruri;
                tpl.cut = cut;
                tpl.cut_at = cut_at;

            } else if (ngx_stream_sip_route_value(m, r.ours, &next) == NGX_OK
                       && !next.uri.lr)
            {
                tpl.pop_route = r.ours + 1;
                tpl.ruri = next.uri_text;
                tpl.append_route = m->request_uri;
            }

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

    stx->pop_route = r.ours;
    stx->transport = transport;

    if (strict) {
        stx->strict_ruri = sruri;
        stx->cut = cut;
        stx->cut_off = cut_at - m->start;

    } else if (route == NGX_STREAM_SIP_ROUTE_DIALOG && !flow
               && ngx_stream_sip_route_value(m, r.ours, &next) == NGX_OK
               && !next.uri.lr)
    {
        /*
         * RFC 3261 16.6 step 7: the next hop is a strict router: it gets
         * its own URI as the Request-URI, and the Request-URI goes last
         * into the Route.
         */

        stx->pop_route = r.ours + 1;
        stx->strict_ruri = next.uri_text;
        stx->append_route = m->request_uri;
    }

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
            && !r.ob && !strict)
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


/*
 * What the Route header says (RFC 3261 16.4): none, only us (a route
 * preloaded by a phone with us as outbound proxy: popped, then the
 * request is routed as if it had none), us and more but not as a route
 * we recorded (MORE), a route we recorded ourselves (DIALOG: its token
 * binds it to the Call-ID, so nobody can use us as a relay by making
 * up a route set), or somebody else (FOREIGN).
 */

ngx_int_t
ngx_stream_sip_proxy_route(ngx_stream_session_t *s, ngx_sip_msg_t *m)
{
    ngx_stream_sip_route_t  r;

    return ngx_stream_sip_proxy_route_set(s, m, &r);
}


/*
 * A next hop over TCP or TLS: the connection there is, or a new one, with
 * the server's sip_ssl settings; its number, or 0.
 */

static ngx_uint_t
ngx_stream_sip_proxy_connect(ngx_stream_session_t *s, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t transport)
{
    return ngx_stream_sip_flow_connect(
                               ngx_stream_sip_udp_listening(s->connection),
                               sa, socklen, transport,
                               ngx_stream_get_module_srv_conf(s,
                                                    ngx_stream_sip_ssl_module),
                               NULL, s->connection->log);
}


/* the request, as it came, to the worker of a channel slot (or none) */

static ngx_int_t
ngx_stream_sip_proxy_hand_over(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_int_t slot)
{
    if (slot < 0
        || ngx_stream_sip_channel_pass(s->connection, slot, ctx->msg.start,
                                       ctx->msg.end - ctx->msg.start)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ctx->passed = 1;

    return NGX_OK;
}


/*
 * The same, and how many leading values are ours.  Every value that
 * resolves to us is ours (RFC 3261 16.4: our own Record-Route, as it is
 * or as a phone rewrote it, or any address, name and port we listen
 * on), and all of them go, however many a peer left; a route we recorded
 * ourselves carries the token of the Call-ID.  After a double
 * Record-Route (RFC 5658) one of our values may name the flow of the
 * side that came by TCP or TLS ("nfl": worker, connection number and a
 * keyed hash of both and the Call-ID; "ob" when it is an RFC 5626 flow).
 */

static ngx_int_t
ngx_stream_sip_proxy_route_set(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r)
{
    u_char            *p, *end, token[16], ftoken[NGX_INT_T_LEN * 2 + 20];
    ngx_str_t          value, fl;
    ngx_uint_t         i, n, total, dialog, worker, number;
    ngx_sip_addr_t     addr;
    ngx_connection_t  *c;
    ngx_sip_header_t  *h;

    r->ours = 0;
    r->flow = 0;
    r->worker = 0;
    r->transport = NGX_STREAM_SIP_UDP;
    r->ob = 0;

    if (m->hdr[NGX_SIP_HDR_ROUTE] == NULL) {
        return NGX_STREAM_SIP_ROUTE_NONE;
    }

    c = s->connection;

    ngx_stream_sip_proxy_route_token(&m->call_id, token);

    n = 0;
    total = 0;
    dialog = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_ROUTE) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK) {
                return NGX_STREAM_SIP_ROUTE_FOREIGN;
            }

            total++;
            p = ngx_stream_sip_next_value(p, end);

            if (n + 1 != total) {
                continue;
            }

            /*
             * A token of ours for another Call-ID is a route made up (or
             * of another dialog): it is not relayed along.
             */

            if (ngx_sip_uri_param(&addr.uri.params, "nsip", &value)
                == NGX_OK)
            {
                if (value.len != 16
                    || ngx_memcmp(token, value.data, 16) != 0)
                {
                    continue;
                }

                dialog = 1;

            } else if (!ngx_stream_sip_route_is_us(s, &addr.uri)) {
                continue;
            }

            n++;

            if (ngx_sip_uri_param(&addr.uri.params, "nfl", &fl) != NGX_OK
                || ngx_stream_sip_flow_parse(&fl, &worker, &number)
                   != NGX_OK)
            {
                continue;
            }

            ngx_stream_sip_flow_token(&m->call_id, worker, number, ftoken);

            /*
             * The first of our values is the side the request came from,
             * the later ones where it goes: a flow counts only there (the
             * caller may come back on a new connection: its old one is
             * no way back), and never the one the request came on.
             */

            if (n >= 2
                && fl.len == ngx_strlen(ftoken)
                && ngx_memcmp(fl.data, ftoken, fl.len) == 0
                && !(worker == ngx_worker && c->type == SOCK_STREAM
                     && number == c->number))
            {
                r->flow = number;
                r->worker = worker;
                r->transport = (addr.uri.scheme_id == NGX_SIP_SCHEME_SIPS)
                               ? NGX_STREAM_SIP_TLS
                               : ngx_sip_transport_id(&addr.uri.transport);
                r->ob = (ngx_sip_uri_param(&addr.uri.params, "ob", &value)
                         == NGX_OK);

                /* a WebSocket is a flow: reached on it alone */

                if (r->transport == NGX_STREAM_SIP_NONE
                    || r->transport == NGX_STREAM_SIP_UDP)
                {
                    r->flow = 0;
                }
            }
        }
    }

    r->ours = n;

    if (n == 0) {
        return NGX_STREAM_SIP_ROUTE_FOREIGN;
    }

    if (dialog) {
        return NGX_STREAM_SIP_ROUTE_DIALOG;
    }

    if (n < total) {
        return NGX_STREAM_SIP_ROUTE_MORE;
    }

    return NGX_STREAM_SIP_ROUTE_OURS;
}


/*
 * Whether a Route value resolves to us: a name of ours (sip_domain,
 * sip_advertise) or an address we listen on, the connection's own too
 * (a wildcard listen), at a port we listen on (any transport: a phone
 * may name our UDP port with transport=tls), the default one when none.
 */

static ngx_uint_t
ngx_stream_sip_route_is_us(ngx_stream_session_t *s, ngx_sip_uri_t *uri)
{
    u_char                     *e;
    in_port_t                   port;
    socklen_t                   len;
    ngx_str_t                   host, adv;
    ngx_uint_t                  i, n, name, ip;
    ngx_sockaddr_t              sa;
    ngx_listening_t            *ls;
    ngx_connection_t           *c;
    ngx_stream_sip_srv_conf_t  *sscf;

    if (uri->scheme_id != NGX_SIP_SCHEME_SIP
        && uri->scheme_id != NGX_SIP_SCHEME_SIPS)
    {
        return 0;
    }

    c = s->connection;
    port = uri->port;

    if (port == 0) {
        port = ngx_sip_transport_port(uri->scheme_id == NGX_SIP_SCHEME_SIPS
                                      ? NGX_STREAM_SIP_TLS
                                      : ngx_sip_transport_id(&uri->transport));
    }

    host = uri->maddr.len ? uri->maddr : uri->host;

    /* sip_advertise, without its port */

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);
    adv = sscf->advertise;

    if (adv.len) {
        e = ngx_strlchr(adv.data + 1, adv.data + adv.len,
                        adv.data[0] == '[' ? ']' : ':');

        if (e) {
            adv.len = e - adv.data + (adv.data[0] == '[');
        }
    }

    /* a name of ours needs no port: a phone may write sip:example.com */

    name = (adv.len == host.len
            && ngx_strncasecmp(adv.data, host.data, host.len) == 0)
           || (uri->maddr.len == 0 && ngx_stream_sip_is_local(s, uri));

    if (name && uri->port == 0) {
        return 1;
    }

    ip = (ngx_stream_sip_host_sockaddr(&host, port, &sa, &len) == NGX_OK);

    if (!name && !ip) {
        return 0;
    }

    ls = ngx_stream_sip_listenings(&n);

    for (i = 0; i < n; i++) {

        if (ls[i].handler != ngx_stream_init_connection
            || ngx_inet_get_port(ls[i].sockaddr) != port
            || !ngx_stream_sip_listening_is_sip(&ls[i]))
        {
            continue;
        }

        if (name) {
            return 1;
        }

        if (!ls[i].wildcard) {
            if (ngx_cmp_sockaddr(&sa.sockaddr, len, ls[i].sockaddr,
                                 ls[i].socklen, 1)
                == NGX_OK)
            {
                return 1;
            }

            continue;
        }

        /* any address of the machine: we know the one it came to */

        if (ngx_connection_local_sockaddr(c, NULL, 0) == NGX_OK
            && ngx_cmp_sockaddr(&sa.sockaddr, len, c->local_sockaddr,
                                c->local_socklen, 0)
               == NGX_OK)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * In a dialog, nothing left of the route set but the Request-URI: when
 * it is a contact that registered on its own connection (the remote
 * party's AOR is the To), it goes on that connection: behind NAT its
 * Contact means nothing (RFC 5626), whatever the route set said.
 */

static void
ngx_stream_sip_contact_flow(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r)
{
    ngx_uint_t                i;
    ngx_sip_addr_t            addr;
    ngx_array_t              *targets;
    ngx_stream_sip_target_t  *t;

    if (ngx_stream_sip_route_value(m, r->ours, &addr) != NGX_DECLINED
        || !ngx_stream_sip_is_local(s, &m->to.uri)
        || ngx_stream_sip_registrar_lookup(s, &m->to.uri, &targets)
           != NGX_OK)
    {
        return;
    }

    t = targets->elts;

    for (i = 0; i < targets->nelts; i++) {

        if (t[i].flow == 0
            || t[i].uri.len != m->request_uri.len
            || ngx_strncmp(t[i].uri.data, m->request_uri.data,
                           t[i].uri.len) != 0
            || (t[i].worker == ngx_worker
                ? !ngx_stream_sip_flow_exists(t[i].flow)
                : ngx_stream_sip_channel_worker(t[i].worker) < 0))
        {
            continue;
        }

        r->flow = t[i].flow;
        r->worker = t[i].worker;
        r->transport = t[i].transport;

        return;
    }
}


/*
 * Our Record-Route value on a flow: a listening address of its transport
 * (never the local port of a connection we opened, which nobody reaches
 * once it closes: RFC 3261 16.6 step 4), and "nfl" naming the flow, so
 * that the other side's requests come back on this connection from
 * whichever worker reads them ("ob" when the phone asked for RFC 5626
 * outbound: then it fails with its connection).  A sips: request gets a
 * sips: value on TLS.  NGX_DECLINED: we listen on no such transport.
 */

static ngx_int_t
ngx_stream_sip_flow_route(ngx_stream_sip_stx_t *stx, ngx_sip_msg_t *m,
    ngx_uint_t flow, ngx_uint_t worker, ngx_uint_t transport,
    ngx_listening_t *prefer, ngx_uint_t ob, ngx_str_t *rr)
{
    u_char     *p, token[16], ftoken[NGX_INT_T_LEN * 2 + 20];
    ngx_str_t   host;
    ngx_int_t   rc;

    rc = ngx_stream_sip_stream_host(stx->sscf,
                                    stx->local_len ? &stx->local.sockaddr
                                                   : NULL,
                                    transport, prefer, stx->pool, &host);
    if (rc != NGX_OK) {
        return rc;
    }

    p = ngx_pnalloc(stx->pool, host.len
                               + sizeof("<sips:;transport=tls;lr;nsip=;ob>")
                               + 16 + sizeof(";nfl=") + NGX_INT_T_LEN * 2
                               + 20);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rr->data = p;

    ngx_stream_sip_proxy_route_token(&m->call_id, token);

    if (transport == NGX_STREAM_SIP_TLS
        && m->ruri.scheme_id == NGX_SIP_SCHEME_SIPS)
    {
        p = ngx_sprintf(p, "<sips:%V;lr;nsip=%*s", &host, (size_t) 16,
                        token);

    } else {
        p = ngx_sprintf(p, "<sip:%V;transport=%V;lr;nsip=%*s", &host,
                        &ngx_sip_transport(transport)->param,
                        (size_t) 16, token);
    }

    if (worker != ngx_worker || !ngx_stream_sip_flow_opened(flow)) {
        ngx_stream_sip_flow_token(&m->call_id, worker, flow, ftoken);
        p = ngx_sprintf(p, ";nfl=%s", ftoken);

        if (ob) {
            p = ngx_cpymem(p, ";ob", 3);
        }
    }

    *p++ = '>';

    rr->len = p - rr->data;

    return NGX_OK;
}


/*
 * Our address on TCP or TLS, for a Via or a Record-Route: a listen of
 * that transport ("prefer" if it is one), of the family of "local" if
 * there is one; sip_advertise names the host (its port, if it has one,
 * is a UDP one), and a wildcard listen the address "local" came to.
 * NGX_DECLINED: we listen on no such transport.
 */

static ngx_int_t
ngx_stream_sip_stream_host(ngx_stream_sip_srv_conf_t *sscf,
    struct sockaddr *local, ngx_uint_t transport, ngx_listening_t *prefer,
    ngx_pool_t *pool, ngx_str_t *host)
{
    u_char           *e;
    in_port_t         port;
    ngx_str_t         adv, *advertise;
    ngx_uint_t        i, n, tls;
    ngx_sockaddr_t    sa;
    ngx_listening_t  *ls, *found;

    tls = ngx_stream_sip_transport_secure(transport);
    found = NULL;
    advertise = &sscf->advertise;

    if (prefer && prefer->type == SOCK_STREAM
        && ngx_stream_sip_listening_ssl(prefer) == tls)
    {
        found = prefer;

    } else {

        /* of the same server: another one may be another domain */

        ls = ngx_stream_sip_listenings(&n);

        for (i = 0; i < n; i++) {

            if (ls[i].type != SOCK_STREAM
                || ls[i].handler != ngx_stream_init_connection
                || ngx_stream_sip_listening_conf(&ls[i]) != sscf
                || ngx_stream_sip_listening_ssl(&ls[i]) != tls)
            {
                continue;
            }

            if (local == NULL
                || ls[i].sockaddr->sa_family == local->sa_family)
            {
                found = &ls[i];
                break;
            }

            if (found == NULL) {
                found = &ls[i];
            }
        }
    }

    if (found == NULL) {
        return NGX_DECLINED;
    }

    port = ngx_inet_get_port(found->sockaddr);

    host->data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN + advertise->len
                                   + sizeof(":65535"));
    if (host->data == NULL) {
        return NGX_ERROR;
    }

    if (advertise->len) {
        adv = *advertise;
        e = ngx_strlchr(adv.data + 1, adv.data + adv.len,
                        adv.data[0] == '[' ? ']' : ':');

        if (e) {
            adv.len = e - adv.data + (adv.data[0] == '[');
        }

        host->len = ngx_sprintf(host->data, "%V:%ui", &adv, (ngx_uint_t) port)
                    - host->data;
        return NGX_OK;
    }

    if (found->wildcard && local
        && local->sa_family == found->sockaddr->sa_family)
    {
        ngx_memcpy(&sa, local, found->socklen);
        ngx_inet_set_port(&sa.sockaddr, port);

        host->len = ngx_sock_ntop(&sa.sockaddr, found->socklen, host->data,
                                  NGX_SOCKADDR_STRLEN, 1);
        return NGX_OK;
    }

    host->len = ngx_cpymem(host->data, found->addr_text.data,
                           found->addr_text.len)
                - host->data;

    return NGX_OK;
}


/*
 * RFC 3261 16.4: the Request-URI is a Record-Route of ours (a strict
 * router sent it): the real Request-URI is the last Route value, which
 * goes.  "cut" and "cut_at": where that value starts.
 */

static ngx_int_t
ngx_stream_sip_strict_in(ngx_sip_msg_t *m, ngx_str_t *ruri, ngx_uint_t *cut,
    u_char **cut_at)
{
    u_char            *p, *end, *start, token[16];
    ngx_str_t          value;
    ngx_uint_t         i;
    ngx_sip_addr_t     addr;
    ngx_sip_header_t  *h;

    if (m->hdr[NGX_SIP_HDR_ROUTE] == NULL
        || ngx_sip_uri_param(&m->ruri.params, "nsip", &value) != NGX_OK
        || value.len != 16)
    {
        return NGX_DECLINED;
    }

    ngx_stream_sip_proxy_route_token(&m->call_id, token);

    if (ngx_memcmp(token, value.data, 16) != 0) {
        return NGX_DECLINED;
    }

    for (i = m->nheaders; i > 0; i--) {
        if (m->headers[i - 1].id == NGX_SIP_HDR_ROUTE) {
            break;
        }
    }

    h = &m->headers[i - 1];
    p = h->value.data;
    end = p + h->value.len;
    ngx_str_null(ruri);

    while (p < end) {
        start = p;

        if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK) {
            break;
        }

        *ruri = addr.uri_text;
        *cut_at = start;

        p = ngx_stream_sip_next_value(p, end);
    }

    if (ruri->len == 0) {
        return NGX_DECLINED;
    }

    *cut = i;

    return NGX_OK;
}


/* past the separator after a value of a list: LWS and a comma */

static u_char *
ngx_stream_sip_next_value(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == CR || *p == LF || *p == ','))
    {
        p++;
    }

    return p;
}


/* the Route value at "index" (from 0), over all Route lines */

static ngx_int_t
ngx_stream_sip_route_value(ngx_sip_msg_t *m, ngx_uint_t index,
    ngx_sip_addr_t *addr)
{
    u_char            *p, *end;
    ngx_uint_t         i, n;
    ngx_sip_header_t  *h;

    n = 0;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_ROUTE) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            if (ngx_sip_parse_addr(&p, end, addr, 1) != NGX_OK) {
                return NGX_ERROR;
            }

            if (n++ == index) {
                return NGX_OK;
            }

            p = ngx_stream_sip_next_value(p, end);
        }
    }

    return NGX_DECLINED;
}


/* "worker.number.hash" of an nfl parameter: the first two */

ngx_int_t
ngx_stream_sip_flow_parse(ngx_str_t *fl, ngx_uint_t *worker,
    ngx_uint_t *number)
{
    u_char      *p, *end, *dot;
    ngx_int_t    w, n;

    p = fl->data;
    end = p + fl->len;

    dot = ngx_strlchr(p, end, '.');
    if (dot == NULL) {
        return NGX_ERROR;
    }

    w = ngx_atoi(p, dot - p);

    p = dot + 1;
    dot = ngx_strlchr(p, end, '.');

    if (w == NGX_ERROR || dot == NULL) {
        return NGX_ERROR;
    }

    n = ngx_atoi(p, dot - p);

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    *worker = w;
    *number = n;

    return NGX_OK;
}


/*
 * The worker an nfl value (from p up to the end of the parameter) names,
 * if its tag proves that we made it for this Call-ID.  A datagram read
 * by any worker is passed to the one named: without the proof anybody
 * could aim datagrams at one worker of his choice.
 */

ngx_int_t
ngx_stream_sip_flow_verify(ngx_str_t *call_id, u_char *p, u_char *end,
    ngx_uint_t *worker)
{
    u_char      ftoken[NGX_INT_T_LEN * 2 + 2 + 16 + 1];
    ngx_str_t   fl;
    ngx_uint_t  w, number;

    fl.data = p;

    while (p < end && *p != ';' && *p != '>' && *p != ',' && *p != ' '
           && *p != '\t' && *p != '?')
    {
        p++;
    }

    fl.len = p - fl.data;

    if (fl.len >= sizeof(ftoken)
        || ngx_stream_sip_flow_parse(&fl, &w, &number) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_stream_sip_flow_token(call_id, w, number, ftoken);

    if (fl.len != ngx_strlen(ftoken)
        || ngx_memcmp(fl.data, ftoken, fl.len) != 0)
    {
        return NGX_ERROR;
    }

    *worker = w;

    return NGX_OK;
}


/* the whole nfl value, null-terminated */

static void
ngx_stream_sip_flow_token(ngx_str_t *call_id, ngx_uint_t worker,
    ngx_uint_t number, u_char *buf)
{
    u_char    *p, in[NGX_INT_T_LEN * 2 + 2 + 256];
    size_t     len;
    uint64_t   tag;

    p = ngx_sprintf(buf, "%ui.%ui.", worker, number);

    len = p - buf;
    ngx_memcpy(in, buf, len);
    ngx_memcpy(in + len, call_id->data, ngx_min(call_id->len, 256));

    tag = ngx_sip_siphash(ngx_stream_sip_key, in,
                          len + ngx_min(call_id->len, 256));

    p = ngx_sip_write_hex(p, tag, 16);
    *p = '\0';
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


/*
 * sip_pass: an upstream (named, or made of "host:port" at configuration
 * time), or, with variables, whatever they give: the name of an
 * upstream {} block or an address.  NGX_DECLINED: no sip_pass here.
 */

static ngx_int_t
ngx_stream_sip_proxy_pass(ngx_stream_session_t *s,
    ngx_stream_upstream_srv_conf_t **uscf, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport)
{
    ngx_str_t                         value, host;
    ngx_uint_t                        i, port;
    ngx_stream_sip_srv_conf_t        *sscf;
    ngx_stream_sip_ssl_srv_conf_t    *sslcf;
    ngx_stream_upstream_srv_conf_t  **uscfp;
    ngx_stream_upstream_main_conf_t  *umcf;

    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    sslcf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_ssl_module);

    if (sscf->pass_upstream) {
        *uscf = sscf->pass_upstream;
        *transport = sslcf->enable ? NGX_STREAM_SIP_TLS : sscf->pass_transport;
        return NGX_OK;
    }

    if (sscf->pass_value == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_stream_complex_value(s, sscf->pass_value, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (value.len == 0) {
        return NGX_DECLINED;
    }

    if (ngx_stream_sip_pass_url(&value, &host, &port, transport) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "SIP proxy: sip_pass \"%V\" is not a UDP target",
                      &value);
        return NGX_ERROR;
    }

    umcf = ngx_stream_get_module_main_conf(s, ngx_stream_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        if ((uscfp[i]->flags & NGX_STREAM_UPSTREAM_CREATE)
            && port == 0
            && uscfp[i]->host.len == host.len
            && ngx_strncasecmp(uscfp[i]->host.data, host.data, host.len)
               == 0)
        {
            *uscf = uscfp[i];

            if (sslcf->enable) {
                *transport = NGX_STREAM_SIP_TLS;
            }

            return NGX_OK;
        }
    }

    if (ngx_stream_sip_host_sockaddr(&host, port ? port : 5060, sa, socklen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "SIP proxy: sip_pass \"%V\" is neither an upstream "
                      "nor an IP address", &value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "host[:port]", "sip[s]:host[:port][;params]": host, port (0 when
 * none), transport; NGX_ERROR for transports we do not know.
 */

ngx_int_t
ngx_stream_sip_pass_url(ngx_str_t *url, ngx_str_t *host, ngx_uint_t *port,
    ngx_uint_t *transport)
{
    u_char     *p, *end, *colon;
    ngx_str_t   params, value;
    ngx_int_t   n;

    p = url->data;
    end = p + url->len;
    *transport = NGX_STREAM_SIP_UDP;

    if (end - p > 5 && ngx_strncasecmp(p, (u_char *) "sips:", 5) == 0) {
        p += 5;
        *transport = NGX_STREAM_SIP_TLS;

    } else if (end - p > 4
               && ngx_strncasecmp(p, (u_char *) "sip:", 4) == 0)
    {
        p += 4;
    }

    params.data = ngx_strlchr(p, end, ';');

    if (params.data) {
        params.len = end - params.data;
        end = params.data;

        if (ngx_sip_uri_param(&params, "transport", &value) == NGX_OK) {
            *transport = ngx_sip_transport_id(&value);

            if (!ngx_stream_sip_sends_on(*transport)) {
                return NGX_ERROR;
            }
        }
    }

    if (p == end) {
        return NGX_ERROR;
    }

    host->data = p;
    *port = 0;

    if (*p == '[') {
        colon = ngx_strlchr(p, end, ']');

        if (colon == NULL) {
            return NGX_ERROR;
        }

        colon++;

        if (colon < end && *colon != ':') {
            return NGX_ERROR;
        }

    } else {
        colon = ngx_strlchr(p, end, ':');

        if (colon == NULL) {
            colon = end;
        }
    }

    host->len = colon - p;

    if (colon < end) {
        n = ngx_atoi(colon + 1, end - colon - 1);

        if (n < 1 || n > 65535) {
            return NGX_ERROR;
        }

        *port = n;
    }

    return NGX_OK;
}


/*
 * In a dialog: the next Route after ours, or else the Request-URI
 * (RFC 3261 16.4, 16.5).  Hosts must be IP addresses: DNS comes with
 * the resolver.
 */

static ngx_int_t
ngx_stream_sip_route_hop(ngx_sip_msg_t *m, ngx_uint_t ours,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport)
{
    ngx_sip_addr_t  addr;

    if (ngx_stream_sip_route_value(m, ours, &addr) == NGX_OK) {
        return ngx_stream_sip_uri_sockaddr(&addr.uri, sa, socklen, transport);
    }

    return ngx_stream_sip_uri_sockaddr(&m->ruri, sa, socklen, transport);
}


/* a registered contact: through its Path if it came with one (RFC 3327) */

static ngx_int_t
ngx_stream_sip_target_hop(ngx_stream_sip_target_t *t, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport)
{
    u_char          *p;
    ngx_sip_addr_t   addr;

    if (t->path.len) {
        p = t->path.data;

        if (ngx_sip_parse_addr(&p, p + t->path.len, &addr, 1) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_stream_sip_uri_sockaddr(&addr.uri, sa, socklen,
                                                   transport);
    }

    if (ngx_sip_parse_uri(t->uri.data, t->uri.data + t->uri.len, &addr.uri)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_stream_sip_uri_sockaddr(&addr.uri, sa, socklen,
                                                   transport);
}


static ngx_int_t
ngx_stream_sip_uri_sockaddr(ngx_sip_uri_t *uri, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport)
{
    *transport = NGX_STREAM_SIP_UDP;

    if (uri->transport.len) {
        *transport = ngx_sip_transport_id(&uri->transport);
    }

    if (uri->scheme_id == NGX_SIP_SCHEME_SIPS) {
        *transport = NGX_STREAM_SIP_TLS;

    } else if (uri->scheme_id != NGX_SIP_SCHEME_SIP) {
        return NGX_ERROR;
    }

    if (!ngx_stream_sip_sends_on(*transport)) {
        return NGX_ERROR;
    }

    return ngx_stream_sip_host_sockaddr(uri->maddr.len ? &uri->maddr
                                                       : &uri->host,
                                        uri->port ? uri->port
                                        : ngx_sip_transport_port(*transport),
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
    uint64_t  tag;

    tag = ngx_sip_siphash(ngx_stream_sip_key, call_id->data, call_id->len);

    (void) ngx_sip_write_hex(buf, tag, 16);
}


/*
 * What our branches carry besides the loop hash: a counter, and this
 * worker's generation and number, so that any worker can pass an answer
 * to the one holding its transaction, also across a reload.
 */

static uint32_t
ngx_stream_sip_salt(void)
{
    ngx_stream_sip_tx_counter++;

    return ((ngx_stream_sip_tx_counter & 0xffff) << 16)
           | (ngx_stream_sip_channel_generation() << 8)
           | (ngx_worker & 0xff);
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
        ngx_stream_sip_send(ls, s->connection->log, &out, sa, socklen);
    }

    return NGX_OK;
}


/*
 * The UDP socket requests leave from: the one of the datagram, or, for
 * a request that came by TCP or TLS, a UDP listen of the same port (of
 * any port) and address family.
 */

static ngx_listening_t *
ngx_stream_sip_udp_listening(ngx_connection_t *c)
{
    int               family;
    in_port_t         port;
    ngx_listening_t  *ls;
#if (NGX_HAVE_INET6)
    ngx_listening_t  *other;
#endif

    if (c->type == SOCK_DGRAM) {
        return c->listening;
    }

    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        return NULL;
    }

    family = c->local_sockaddr->sa_family;
    port = ngx_inet_get_port(c->local_sockaddr);

    ls = ngx_stream_sip_udp_listening_for(family, port);

    if (ls && ngx_inet_get_port(ls->sockaddr) == port) {
        return ls;
    }

    /* the same server's port in the other family, before any other */

#if (NGX_HAVE_INET6)
    other = ngx_stream_sip_udp_listening_for(family == AF_INET6 ? AF_INET
                                                                : AF_INET6,
                                             port);

    if (other && ngx_inet_get_port(other->sockaddr) == port) {
        return other;
    }
#endif

    return ls;
}


/*
 * Whether a listen belongs to a "sip on" server: sessions adopted through
 * it, and datagrams sent from it, must be SIP ones.
 */

static ngx_uint_t
ngx_stream_sip_listening_is_sip(ngx_listening_t *ls)
{
    ngx_stream_sip_srv_conf_t  *sscf;

    sscf = ngx_stream_sip_listening_conf(ls);

    return sscf != NULL && sscf->enable == 1;
}


/* the SIP configuration of a stream listen's (first) server */

static ngx_stream_sip_srv_conf_t *
ngx_stream_sip_listening_conf(ngx_listening_t *ls)
{
    ngx_stream_port_t      *port;
    ngx_stream_in_addr_t   *addr;
    ngx_stream_conf_ctx_t  *ctx;
#if (NGX_HAVE_INET6)
    ngx_stream_in6_addr_t  *addr6;
#endif

    port = ls->servers;

    if (port == NULL || port->naddrs == 0) {
        return NULL;
    }

    switch (ls->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        addr6 = port->addrs;
        ctx = ngx_stream_sip_addr_conf_ctx(&addr6[0].conf);
        break;
#endif

    default:
        addr = port->addrs;
        ctx = ngx_stream_sip_addr_conf_ctx(&addr[0].conf);
        break;
    }

    return ctx->srv_conf[ngx_stream_sip_module.ctx_index];
}


/* whether a stream listen is a TLS one */

static ngx_uint_t
ngx_stream_sip_listening_ssl(ngx_listening_t *ls)
{
    ngx_stream_port_t      *port;
    ngx_stream_in_addr_t   *addr;
#if (NGX_HAVE_INET6)
    ngx_stream_in6_addr_t  *addr6;
#endif

    port = ls->servers;

    if (port == NULL || port->naddrs == 0) {
        return 0;
    }

    switch (ls->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        addr6 = port->addrs;
        return addr6[0].conf.ssl;
#endif

    default:
        addr = port->addrs;
        return addr[0].conf.ssl;
    }
}


/*
 * The listen whose server a connection we open becomes a session of: a
 * UDP one as ngx_stream_sip_udp_listening_for() finds it, or, where
 * there is no UDP, a TCP one; a TLS one only for a TLS connection (on
 * any other nginx would start a server handshake), whose handshake is
 * done by then.
 */

ngx_listening_t *
ngx_stream_sip_adopt_listening(int family, in_port_t port,
    ngx_uint_t transport)
{
    ngx_uint_t        i, n;
    ngx_listening_t  *ls, *tls;

    ls = ngx_stream_sip_udp_listening_for(family, port);

    if (ls) {
        return ls;
    }

    tls = NULL;
    ls = ngx_stream_sip_listenings(&n);

    for (i = 0; i < n; i++) {

        if (ls[i].type != SOCK_STREAM
            || ls[i].handler != ngx_stream_init_connection
            || ls[i].sockaddr->sa_family != family
            || !ngx_stream_sip_listening_is_sip(&ls[i]))
        {
            continue;
        }

        if (!ngx_stream_sip_listening_ssl(&ls[i])) {
            return &ls[i];
        }

        if (tls == NULL && transport == NGX_STREAM_SIP_TLS) {
            tls = &ls[i];
        }
    }

    return tls;
}


/* a UDP listen of an address family: of that port if there is one */

ngx_listening_t *
ngx_stream_sip_udp_listening_for(int family, in_port_t port)
{
    ngx_uint_t        i, n;
    ngx_listening_t  *ls, *any;

    any = NULL;
    ls = ngx_stream_sip_listenings(&n);

    for (i = 0; i < n; i++) {

        if (ls[i].type != SOCK_DGRAM
            || ngx_stream_sip_udp_fd(&ls[i]) == (ngx_socket_t) -1
            || ls[i].handler != ngx_stream_init_connection
            || ls[i].sockaddr->sa_family != family
            || !ngx_stream_sip_listening_is_sip(&ls[i]))
        {
            continue;
        }

        if (ngx_inet_get_port(ls[i].sockaddr) == port) {
            return &ls[i];
        }

        if (any == NULL) {
            any = &ls[i];
        }
    }

    return any;
}


/*
 * Our address for Via and Record-Route towards UDP: sip_advertise (with
 * the listen's port unless it has one), or "ip:port" of the socket.
 */

static ngx_int_t
ngx_stream_sip_udp_host(ngx_connection_t *c, ngx_listening_t *ls,
    ngx_pool_t *pool, ngx_str_t *host)
{
    u_char                     *p;
    ngx_sockaddr_t              sa;
    ngx_stream_session_t       *s;
    ngx_stream_sip_srv_conf_t  *sscf;

    s = c->data;
    sscf = ngx_stream_get_module_srv_conf(s, ngx_stream_sip_module);

    if (sscf->advertise.len) {

        /* behind NAT, or on a wildcard listen: what peers must see */

        if (ngx_strlchr(sscf->advertise.data,
                        sscf->advertise.data + sscf->advertise.len, ']')
            ? sscf->advertise.data[sscf->advertise.len - 1] != ']'
            : ngx_strlchr(sscf->advertise.data,
                          sscf->advertise.data + sscf->advertise.len, ':')
              != NULL)
        {
            *host = sscf->advertise;
            return NGX_OK;
        }

        p = ngx_pnalloc(pool, sscf->advertise.len + sizeof(":65535"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        host->data = p;
        host->len = ngx_sprintf(p, "%V:%ui", &sscf->advertise,
                                (ngx_uint_t) ngx_inet_get_port(ls->sockaddr))
                    - p;
        return NGX_OK;
    }

    if (ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (c->local_sockaddr->sa_family != ls->sockaddr->sa_family) {

        /* in by IPv6, out by IPv4 or the other way: that listen's own */

        *host = ls->addr_text;
        return NGX_OK;
    }

    ngx_memcpy(&sa, c->local_sockaddr, c->local_socklen);
    ngx_inet_set_port(&sa.sockaddr, ngx_inet_get_port(ls->sockaddr));

    host->data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN);
    if (host->data == NULL) {
        return NGX_ERROR;
    }

    host->len = ngx_sock_ntop(&sa.sockaddr, c->local_socklen, host->data,
                              NGX_SOCKADDR_STRLEN, 1);

    return NGX_OK;
}


static void
ngx_stream_sip_to_client(ngx_stream_sip_stx_t *stx, ngx_str_t *msg)
{
    if (stx->client_flow) {
        ngx_stream_sip_to_flow(stx->client_flow, ngx_worker, msg, stx->log);
        return;
    }

    ngx_stream_sip_send(stx->ls, stx->log, msg, &stx->client,
                        stx->client_len);
}


static void
ngx_stream_sip_to_peer(ngx_stream_sip_branch_t *b, ngx_str_t *msg)
{
    if (b->flow) {
        ngx_stream_sip_to_flow(b->flow, b->flow_worker, msg, b->stx->log);
        return;
    }

    ngx_stream_sip_send(b->ls, b->stx->log, msg, &b->peer, b->peer_len);
}


/*
 * A flow of another worker: that worker writes it (and tells us when
 * the flow is gone, ngx_stream_sip_channel.c).
 */

static void
ngx_stream_sip_to_flow(ngx_uint_t flow, ngx_uint_t worker, ngx_str_t *msg,
    ngx_log_t *log)
{
    if (worker != ngx_worker) {
        if (ngx_stream_sip_channel_to_flow(worker, flow, msg, log)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "SIP proxy: message for worker %ui dropped",
                          worker);
        }

        return;
    }

    if (ngx_stream_sip_flow_send(flow, msg) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP proxy: message dropped: its connection is gone");
    }
}


static ngx_stream_sip_stx_t *
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

static ngx_msec_t
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

static ngx_int_t
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

static ngx_int_t
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


static ngx_int_t
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

static void
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
 * again until the ACK (timers G and H); the transaction stays for the
 * caller's retransmissions and for late answers of other branches.
 */

static void
ngx_stream_sip_stx_complete(ngx_stream_sip_stx_t *stx, ngx_uint_t status)
{
    ngx_msec_t  linger;

    if (stx->method == NGX_SIP_INVITE) {

        if (status >= 300 && stx->last.len) {
            stx->interval = stx->t1;
            ngx_add_timer(&stx->retransmit, stx->interval);
        }

        linger = (status < 300 && stx->nbranches == 1) ? 0 : 64 * stx->t1;

    } else {
        linger = stx->t4;
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


static void
ngx_stream_sip_stx_free(ngx_stream_sip_stx_t *stx)
{
    ngx_peer_connection_t    *pc;
    ngx_stream_sip_branch_t  *b;

    for (b = stx->branches; b; b = b->next) {
        ngx_stream_sip_table_delete(&ngx_stream_sip_branches, &b->node);

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
    u_char           *p;
    ngx_sip_msg_t     m;
    ngx_sip_resp_t    r;

    if (ngx_stream_sip_reparse(&stx->orig, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&r, sizeof(ngx_sip_resp_t));
    r.status = status;
    r.reason.data = (u_char *) reason;
    r.reason.len = ngx_strlen(reason);
    ngx_str_set(&r.to_tag, "ngxsip0");

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


/* RFC 3261 9.1: a CANCEL only after a provisional answer */

static void
ngx_stream_sip_branch_cancel(ngx_stream_sip_branch_t *b)
{
    u_char         *p;
    ngx_str_t       out;
    ngx_sip_msg_t   m;

    if (b->completed || b->cancelled) {
        return;
    }

    if (b->status < 100) {
        b->cancel_pending = 1;
        return;
    }

    b->cancelled = 1;
    b->cancel_pending = 0;

    if (ngx_stream_sip_reparse(&b->sent, &m) != NGX_OK) {
        return;
    }

    p = ngx_pnalloc(b->stx->pool, ngx_sip_hop_request_size(&m, NULL));
    if (p == NULL) {
        return;
    }

    out.data = p;
    out.len = ngx_sip_write_hop_request(p, &m, NULL) - p;

    ngx_stream_sip_to_peer(b, &out);

    /* sent or copied to the connection: not kept */

    (void) ngx_pfree(b->stx->pool, p);
}


static void
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


static void
ngx_stream_sip_send(ngx_listening_t *ls, ngx_log_t *log, ngx_str_t *msg,
    ngx_sockaddr_t *sa, socklen_t socklen)
{
    ssize_t  n;

    n = sendto(ngx_stream_sip_udp_fd(ls), msg->data, msg->len, 0,
               &sa->sockaddr, socklen);

    if (n != (ssize_t) msg->len) {
        ngx_log_error(NGX_LOG_INFO, log, ngx_socket_errno,
                      "SIP proxy: sendto() failed");
    }
}


/*
 * Whether a transaction still needs a connection: a request that came on
 * it and has no final answer yet, or a branch sent over it that has none.
 * A worker that leaves (nginx -s reload) closes the connection only then.
 * Walks every transaction: only a leaving worker asks, once a second.
 */

ngx_uint_t
ngx_stream_sip_proxy_flow_busy(ngx_uint_t flow)
{
    ngx_uint_t                i;
    ngx_stream_sip_tnode_t   *node;
    ngx_stream_sip_stx_t     *stx;
    ngx_stream_sip_branch_t  *b;

    if (!ngx_stream_sip_tx_ready) {
        return 0;
    }

    for (i = 0; i < ngx_stream_sip_branches.size; i++) {
        for (node = ngx_stream_sip_branches.buckets[i]; node;
             node = node->next)
        {
            b = (ngx_stream_sip_branch_t *) node;

            if (b->flow == flow && !b->completed) {
                return 1;
            }
        }
    }

    for (i = 0; i < ngx_stream_sip_stxs.size; i++) {
        for (node = ngx_stream_sip_stxs.buckets[i]; node; node = node->next) {
            stx = (ngx_stream_sip_stx_t *) node;

            if (stx->client_flow == flow && !stx->completed) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * A connection of ours never came up (refused, timed out, a certificate
 * that failed verification): the branches waiting for it fail now, as a
 * 503 of the next hop, which moves an upstream to its next peer.
 */

void
ngx_stream_sip_proxy_flow_failed(ngx_uint_t flow)
{
    ngx_uint_t                 i, n;
    ngx_stream_sip_tnode_t    *node;
    ngx_stream_sip_branch_t   *b, *failed[64];

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
    socklen_t              socklen;
    ngx_uint_t             transport, flow;
    ngx_sip_msg_t          m;
    ngx_sockaddr_t         sa;
    ngx_stream_sip_stx_t  *stx;

    stx = b->stx;
    flow = 0;

    if (ngx_stream_sip_reparse(&stx->orig, &m) != NGX_OK
        || ngx_stream_sip_route_hop(&m, stx->pop_route, &sa, &socklen,
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


static ngx_stream_sip_stx_t *
ngx_stream_sip_stx_find(ngx_str_t *branch, ngx_uint_t method)
{
    if (!ngx_stream_sip_tx_ready || branch->len == 0) {
        return NULL;
    }

    return (ngx_stream_sip_stx_t *)
               ngx_stream_sip_table_find(&ngx_stream_sip_stxs, branch, method,
                                         1);
}


static ngx_stream_sip_branch_t *
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

    if (m->cseq.method_id == NGX_SIP_CANCEL) {

        /* the answer to our own hop-by-hop CANCEL stops here */
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
            ngx_stream_sip_send(ls, log, &out, &sa, socklen);
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

static void
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
