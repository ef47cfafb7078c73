
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_STREAM_SIP_PROXY_H_INCLUDED_
#define _NGX_STREAM_SIP_PROXY_H_INCLUDED_


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
typedef struct ngx_stream_sip_client_tx_s  ngx_stream_sip_client_tx_t;


/*
 * A request the module sends on its own account, as a non-INVITE client
 * transaction (ngx_stream_sip_client_tx.c).  "status" is the final
 * answer's, with "resp" (valid during the call only), or 0 and NULL on
 * Timer F or a connection that failed.
 */

typedef void (*ngx_stream_sip_client_tx_pt)(void *data, ngx_uint_t status,
    ngx_sip_msg_t *resp);

struct ngx_stream_sip_client_tx_s {
    ngx_stream_sip_tnode_t      node;        /* by its branch */
    ngx_pool_t                 *pool;        /* its own */
    ngx_log_t                  *log;

    /* filled in by whoever sends it */
    ngx_str_t                   request;     /* in the pool, all of it */
    ngx_str_t                   branch;      /* its top Via's, in request */
    ngx_uint_t                  method;      /* NGX_SIP_OPTIONS, ... */
    ngx_sockaddr_t              peer;        /* over UDP, from ls */
    socklen_t                   peer_len;
    ngx_listening_t            *ls;
    ngx_uint_t                  flow;        /* or over this connection */
    ngx_uint_t                  flow_worker; /* the worker holding it */
    ngx_msec_t                  t1;
    ngx_msec_t                  t2;
    ngx_msec_t                  t4;
    ngx_stream_sip_tx_limit_conf_t  *tlcf;   /* the caps it counts toward */
    ngx_stream_sip_tx_source_t *source;      /* charged to, or NULL */
    ngx_stream_sip_client_tx_pt handler;
    void                       *data;

    ngx_event_t                 retransmit;  /* E */
    ngx_event_t                 timeout;     /* F, then K */
    ngx_msec_t                  interval;
    size_t                      charged;
    unsigned                    proceeding:1;
    unsigned                    completed:1;
};


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
    unsigned                    held:1;      /* counted on its flow */

    ngx_stream_sip_client_tx_t *cancel;      /* our CANCEL, while it runs */
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
    unsigned                    held:1;      /* counted on client_flow */
};


/* route set and Record-Route tokens: ngx_stream_sip_route.c */
ngx_int_t ngx_stream_sip_route_parse(ngx_sip_msg_t *m, ngx_pool_t *pool,
    ngx_stream_sip_route_t *r);
void ngx_stream_sip_contact_flow(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_route_t *r);
ngx_int_t ngx_stream_sip_flow_route(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m, ngx_uint_t flow, ngx_uint_t worker,
    ngx_uint_t transport, ngx_listening_t *prefer, ngx_uint_t ob,
    ngx_str_t *rr);
void ngx_stream_sip_flow_token(ngx_str_t *call_id, ngx_uint_t worker,
    ngx_uint_t number, u_char *buf);
void ngx_stream_sip_route_rewrite(ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r, ngx_uint_t next, ngx_sip_forward_t *f);
ngx_int_t ngx_stream_sip_route_hop(ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r, ngx_uint_t ours, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport);
void ngx_stream_sip_proxy_route_token(ngx_str_t *call_id,
    u_char *buf);

/* next hops and transports: ngx_stream_sip_nexthop.c */
ngx_uint_t ngx_stream_sip_proxy_connect(ngx_stream_session_t *s,
    ngx_sockaddr_t *sa, socklen_t socklen, ngx_uint_t transport);
ngx_int_t ngx_stream_sip_proxy_hand_over(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_int_t slot);
ngx_int_t ngx_stream_sip_stream_host(ngx_stream_sip_srv_conf_t *sscf,
    struct sockaddr *local, ngx_uint_t transport, ngx_listening_t *prefer,
    ngx_pool_t *pool, ngx_str_t *host);
ngx_int_t ngx_stream_sip_proxy_pass(ngx_stream_session_t *s,
    ngx_stream_upstream_srv_conf_t **uscf, ngx_sockaddr_t *sa,
    socklen_t *socklen, ngx_uint_t *transport);
ngx_int_t ngx_stream_sip_target_hop(ngx_stream_sip_target_t *t,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport);
ngx_int_t ngx_stream_sip_uri_sockaddr(ngx_sip_uri_t *uri,
    ngx_sockaddr_t *sa, socklen_t *socklen, ngx_uint_t *transport);
ngx_int_t ngx_stream_sip_host_sockaddr(ngx_str_t *host,
    in_port_t port, ngx_sockaddr_t *sa, socklen_t *socklen);
ngx_listening_t *ngx_stream_sip_udp_listening(ngx_connection_t *c);
ngx_uint_t ngx_stream_sip_listening_is_sip(ngx_listening_t *ls);
ngx_int_t ngx_stream_sip_udp_host(ngx_connection_t *c,
    ngx_listening_t *ls, ngx_pool_t *pool, ngx_str_t *host);
void ngx_stream_sip_to_client(ngx_stream_sip_stx_t *stx,
    ngx_str_t *msg);
void ngx_stream_sip_to_peer(ngx_stream_sip_branch_t *b,
    ngx_str_t *msg);
void ngx_stream_sip_to_flow(ngx_uint_t flow, ngx_uint_t worker,
    ngx_str_t *msg, ngx_log_t *log);
void ngx_stream_sip_udp_send(ngx_listening_t *ls, ngx_log_t *log,
    ngx_str_t *msg, ngx_sockaddr_t *sa, socklen_t socklen);

/* transactions and their timers: ngx_stream_sip_tx.c */
uint32_t ngx_stream_sip_salt(void);
ngx_stream_sip_stx_t *ngx_stream_sip_stx_create(
    ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx,
    ngx_array_t *targets, ngx_stream_sip_tx_source_t *src);
ngx_msec_t ngx_stream_sip_stx_left(ngx_stream_sip_stx_t *stx,
    ngx_msec_t timer);
ngx_int_t ngx_stream_sip_stx_upstream(ngx_stream_session_t *s,
    ngx_stream_sip_stx_t *stx, ngx_stream_upstream_srv_conf_t *uscf);
ngx_int_t ngx_stream_sip_stx_next(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m);
ngx_int_t ngx_stream_sip_branch_start(ngx_stream_sip_stx_t *stx,
    ngx_sip_msg_t *m, ngx_str_t *ruri, ngx_str_t *route, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_uint_t flow, ngx_uint_t worker,
    ngx_uint_t transport);
void ngx_stream_sip_branch_done(ngx_stream_sip_branch_t *b,
    ngx_uint_t status, ngx_str_t *answer);
void ngx_stream_sip_stx_free(ngx_stream_sip_stx_t *stx);
void ngx_stream_sip_branch_cancel(ngx_stream_sip_branch_t *b);
void ngx_stream_sip_branch_ack(ngx_stream_sip_branch_t *b,
    ngx_sip_msg_t *resp);
ngx_stream_sip_stx_t *ngx_stream_sip_stx_find(ngx_str_t *branch,
    ngx_uint_t method);
ngx_stream_sip_branch_t *ngx_stream_sip_branch_find(
    ngx_str_t *branch);
ngx_int_t ngx_stream_sip_reparse(ngx_str_t *text, ngx_sip_msg_t *m);
ngx_int_t ngx_stream_sip_tx_init(void);

/* requests of our own: ngx_stream_sip_client_tx.c */
ngx_stream_sip_client_tx_t *ngx_stream_sip_client_tx_create(size_t size,
    ngx_log_t *log);
ngx_int_t ngx_stream_sip_client_tx_send(ngx_stream_sip_client_tx_t *ct);
void ngx_stream_sip_client_tx_abandon(ngx_stream_sip_client_tx_t *ct);
ngx_int_t ngx_stream_sip_client_tx_response(ngx_sip_msg_t *m);
void ngx_stream_sip_client_tx_flow_failed(ngx_uint_t flow);

/* the proxy: ngx_stream_sip_proxy.c */
void ngx_stream_sip_response_stream(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_sip_msg_t *fwd, ngx_str_t *out, ngx_sockaddr_t *sa,
    socklen_t socklen, ngx_listening_t *ls, ngx_uint_t transport,
    ngx_log_t *log);


#endif /* _NGX_STREAM_SIP_PROXY_H_INCLUDED_ */
