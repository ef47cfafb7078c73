
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_STREAM_SIP_H_INCLUDED_
#define _NGX_STREAM_SIP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_sip.h"
#include "ngx_sip_ws.h"
#include "ngx_stream_sip_compat.h"


/* the core's transport ids (ngx_sip_transport.c) */
#define NGX_STREAM_SIP_UDP   NGX_SIP_TRANSPORT_UDP
#define NGX_STREAM_SIP_TCP   NGX_SIP_TRANSPORT_TCP
#define NGX_STREAM_SIP_TLS   NGX_SIP_TRANSPORT_TLS
#define NGX_STREAM_SIP_WS    NGX_SIP_TRANSPORT_WS     /* on a TCP listen */
#define NGX_STREAM_SIP_WSS   NGX_SIP_TRANSPORT_WSS    /* on a TLS listen */
#define NGX_STREAM_SIP_NONE  NGX_SIP_TRANSPORT_NONE

/* the transports we open connections or send datagrams on */
#define ngx_stream_sip_sends_on(transport)                                   \
    ((transport) == NGX_STREAM_SIP_UDP || (transport) == NGX_STREAM_SIP_TCP  \
     || (transport) == NGX_STREAM_SIP_TLS)

#define ngx_stream_sip_transport_secure(t)                                   \
    ((t) == NGX_STREAM_SIP_TLS || (t) == NGX_STREAM_SIP_WSS)
#define ngx_stream_sip_transport_ws(t)                                       \
    ((t) == NGX_STREAM_SIP_WS || (t) == NGX_STREAM_SIP_WSS)

/* the opening handshake of a SIP WebSocket: its largest size, its time */
#define NGX_STREAM_SIP_WS_HANDSHAKE_MAX      8192
#define NGX_STREAM_SIP_WS_HANDSHAKE_TIMEOUT  10000


typedef struct {
    ngx_flag_t                  enable;
    ngx_array_t                *domains;          /* of ngx_str_t, lowercase */
    size_t                      max_message_size;
    ngx_msec_t                  connection_timeout;

    ngx_str_t                   pass;             /* sip_pass, as written */
    ngx_stream_upstream_srv_conf_t  *pass_upstream;
    ngx_stream_complex_value_t      *pass_value;
    ngx_uint_t                  pass_transport;
    ngx_flag_t                  record_route;
    ngx_str_t                   advertise;        /* host[:port], or "" */
    ngx_msec_t                  t1;
    ngx_msec_t                  t2;
    ngx_msec_t                  t4;
    ngx_msec_t                  invite_timeout;
    ngx_flag_t                  websocket;
    ngx_stream_complex_value_t *websocket_origin;
} ngx_stream_sip_srv_conf_t;


/*
 * The connection's own pool, variables and upstream states, put aside
 * while a message on a TCP or TLS connection has its own: nothing per
 * message is charged to anything that outlives it (docs/design.md).
 */
typedef struct {
    ngx_pool_t                   *pool;
    ngx_stream_variable_value_t  *variables;
    ngx_array_t                  *upstream_states;
} ngx_stream_sip_saved_t;


/* a Route value of a request, parsed once: ngx_stream_sip_route.c */
typedef struct {
    ngx_sip_addr_t              addr;
    u_char                     *start;            /* of its text */
    ngx_uint_t                  header;           /* 1 + index of its line */
} ngx_stream_sip_route_value_t;


/*
 * The routing of a request, decided once after validation by
 * ngx_stream_sip_proxy_route(): what the Route header says of us (RFC
 * 3261 16.4) and its values, parsed once.
 */
typedef struct {
    ngx_int_t                   kind;             /* NGX_STREAM_SIP_ROUTE_ */
    ngx_uint_t                  ours;             /* leading values of ours */
    ngx_uint_t                  flow;             /* one of them names */
    ngx_uint_t                  worker;           /* that holds it */
    ngx_uint_t                  transport;        /* its transport */

    /* a strict router before us: the real Request-URI, its Route value */
    ngx_str_t                   ruri;
    ngx_uint_t                  cut;              /* 1 + index of its line */
    u_char                     *cut_at;           /* where it starts */

    ngx_array_t                *values;           /* route_value_t, or NULL */
    ngx_uint_t                  nvalues;
    ngx_uint_t                  good;             /* before a bad one */

    unsigned                    ob:1;             /* an RFC 5626 flow */
    unsigned                    strict:1;
    unsigned                    bad:1;            /* a value did not parse */
} ngx_stream_sip_route_t;


/* a message waiting in a phase: ngx_stream_sip_phase.c */
typedef struct ngx_stream_sip_wait_s  ngx_stream_sip_wait_t;


typedef struct {
    ngx_stream_session_t       *session;

    /* the message being processed; valid only while it is */
    ngx_sip_msg_t               msg;
    unsigned                    msg_valid:1;
    unsigned                    validated:1;
    unsigned                    routed:1;         /* "route" is decided */

    ngx_stream_sip_route_t      route;

    /* what we answered it with, for $sip_status */
    ngx_uint_t                  status;
    u_char                      status_text[3];

    ngx_uint_t                  transport;

    /* stream transports */
    ngx_buf_t                  *in;
    ngx_sip_frame_t             frame;
    u_char                     *out;              /* ngx_alloc()ed */
    size_t                      out_size;
    u_char                     *out_pos;
    u_char                     *out_last;
    ngx_uint_t                  auth_header;      /* 1 + index, or 0 */
    ngx_msec_t                  duration;         /* $sip_duration */
    ngx_stream_sip_saved_t      saved;

    /* the phase to run next, and the wait a phase suspended it in */
    ngx_uint_t                  phase;
    ngx_stream_sip_wait_t      *wait;
    ngx_stream_sip_saved_t      parked;           /* its own, meanwhile */

    unsigned                    local:1;          /* the R-URI names us */
    unsigned                    wait_cleanup:1;

    /* SIP over WebSocket: ngx_stream_sip_ws.c */
    ngx_sip_ws_handshake_t     *handshake;        /* until classified */
    u_char                     *handshake_start;  /* the buffer it read */
    ngx_sip_ws_t               *ws;               /* after a 101 */
    ngx_str_t                   ws_origin;        /* $sip_websocket_origin */

    unsigned                    close_after_output:1;
    unsigned                    failed:1;
    unsigned                    preread:1;
    unsigned                    read_blocked:1;
    unsigned                    passed:1;
    unsigned                    flow:1;           /* in the flow table */
    unsigned                    has_duration:1;
    unsigned                    ws_closing:1;     /* our close is sent */
} ngx_stream_sip_ctx_t;


/*
 * The phases of a request (ngx_stream_sip_phase.c).  A handler returns
 * NGX_OK or NGX_DECLINED: the next phase; NGX_DONE (or NGX_ERROR): the
 * request is finished, answered, forwarded or dropped; NGX_AGAIN: it
 * waits, after ngx_stream_sip_phase_wait(), until whatever it waits for
 * calls ngx_stream_sip_phase_resume().
 */
typedef ngx_int_t (*ngx_stream_sip_phase_pt)(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
typedef void (*ngx_stream_sip_wait_cancel_pt)(void *data);

ngx_int_t ngx_stream_sip_phase_run(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_phase_wait(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_stream_sip_wait_cancel_pt cancel,
    void *data);
void ngx_stream_sip_phase_resume(ngx_stream_session_t *s, ngx_int_t rc);
void ngx_stream_sip_phase_abort(ngx_stream_sip_ctx_t *ctx);
ngx_uint_t ngx_stream_sip_phase_may_wait(ngx_stream_session_t *s);
ngx_uint_t ngx_stream_sip_delay_enabled(ngx_stream_session_t *s);

ngx_int_t ngx_stream_sip_local_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_answer_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_auth_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_delay_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);

/* the lifetime of a message that waits: ngx_stream_sip_module.c */
void ngx_stream_sip_message_wait(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
void ngx_stream_sip_message_resume(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
void ngx_stream_sip_message_finish(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);


/* TLS towards peers: ngx_stream_sip_ssl.c */
typedef struct {
    ngx_flag_t                  enable;
    ngx_flag_t                  verify;
    ngx_uint_t                  verify_depth;
    ngx_flag_t                  server_name;
    ngx_flag_t                  session_reuse;
    ngx_uint_t                  protocols;
    ngx_str_t                   ciphers;
    ngx_str_t                   certificate;
    ngx_str_t                   certificate_key;
    ngx_str_t                   trusted_certificate;
    ngx_str_t                   name;
#if (NGX_STREAM_SSL)
    ngx_ssl_t                  *ssl;
    ngx_ssl_session_t          *session;          /* per worker */
#endif
} ngx_stream_sip_ssl_srv_conf_t;


/* what the Route header of a request says: ngx_stream_sip_proxy_route() */
#define NGX_STREAM_SIP_ROUTE_NONE      0
#define NGX_STREAM_SIP_ROUTE_OURS      1
#define NGX_STREAM_SIP_ROUTE_MORE      2
#define NGX_STREAM_SIP_ROUTE_DIALOG    3
#define NGX_STREAM_SIP_ROUTE_FOREIGN   4


/* a contact of the location service to send a request to */
typedef struct {
    ngx_str_t                   uri;
    ngx_str_t                   path;             /* a Route value, or "" */
    ngx_uint_t                  q;
    ngx_uint_t                  flow;             /* its connection, or 0 */
    ngx_uint_t                  worker;           /* of the connection */
    ngx_uint_t                  transport;        /* it registered over */
} ngx_stream_sip_target_t;


ngx_int_t ngx_stream_sip_add_variables(ngx_conf_t *cf);
void ngx_stream_sip_respond(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_uint_t status, ngx_str_t *reason,
    ngx_str_t *extra);
ngx_uint_t ngx_stream_sip_is_local(ngx_stream_session_t *s,
    ngx_sip_uri_t *uri);
ngx_uint_t ngx_stream_sip_registrar_owns(ngx_stream_session_t *s,
    ngx_sip_msg_t *m);
ngx_int_t ngx_stream_sip_registrar_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);

ngx_int_t ngx_stream_sip_registrar_lookup(ngx_stream_session_t *s,
    ngx_sip_uri_t *uri, ngx_array_t **targets);
ngx_int_t ngx_stream_sip_proxy_request(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_array_t *targets);
ngx_int_t ngx_stream_sip_proxy_route(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_pass_url(ngx_str_t *url, ngx_str_t *host,
    ngx_uint_t *port, ngx_uint_t *transport);
ngx_int_t ngx_stream_sip_proxy_response(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);

ngx_int_t ngx_stream_sip_limit_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_auth_handler(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_uint_t ngx_stream_sip_auth_known(ngx_stream_session_t *s,
    ngx_str_t *user);

ngx_int_t ngx_stream_sip_output(ngx_stream_session_t *s, ngx_str_t *msg);
u_char *ngx_stream_sip_reserve(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, size_t len);
ngx_int_t ngx_stream_sip_flush(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_message(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, u_char *start, u_char *end);

ngx_int_t ngx_stream_sip_ws_handshake(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_ws_read(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx);
ngx_int_t ngx_stream_sip_ws_send(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_uint_t opcode, u_char *data, size_t len);
void ngx_stream_sip_ws_close(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, ngx_uint_t code, char *reason);

ngx_int_t ngx_stream_sip_flow_add(ngx_stream_session_t *s);
void ngx_stream_sip_flow_delete(ngx_stream_session_t *s);
ngx_stream_session_t *ngx_stream_sip_flow_find(ngx_uint_t number);
ngx_uint_t ngx_stream_sip_flow_exists(ngx_uint_t number);
ngx_uint_t ngx_stream_sip_flow_peer(ngx_sockaddr_t *sa, socklen_t socklen,
    ngx_uint_t transport);
ngx_int_t ngx_stream_sip_flow_send(ngx_uint_t number, ngx_str_t *msg);
ngx_uint_t ngx_stream_sip_flow_opened(ngx_uint_t number);
ngx_uint_t ngx_stream_sip_flow_busy(ngx_uint_t number);
void ngx_stream_sip_flow_hold(ngx_uint_t number, ngx_int_t n);
ngx_uint_t ngx_stream_sip_flow_transport(ngx_uint_t number);
ngx_uint_t ngx_stream_sip_flow_connect(ngx_listening_t *ls,
    ngx_sockaddr_t *sa, socklen_t socklen, ngx_uint_t transport,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name, ngx_log_t *log);

typedef void (*ngx_stream_sip_flow_failed_pt)(ngx_uint_t number);

void ngx_stream_sip_flow_failed(ngx_uint_t number);
void ngx_stream_sip_flow_on_failed(ngx_stream_sip_flow_failed_pt handler);
void ngx_stream_sip_proxy_passed_response(u_char *data, size_t len,
    ngx_log_t *log);
ngx_int_t ngx_stream_sip_response_owner(ngx_sip_msg_t *m);

#if (NGX_STREAM_SSL)
ngx_int_t ngx_stream_sip_ssl_connect(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name,
    ngx_connection_handler_pt done);
ngx_int_t ngx_stream_sip_ssl_verify(ngx_connection_t *c,
    ngx_stream_sip_ssl_srv_conf_t *sslcf, ngx_str_t *name);
#endif
ngx_int_t ngx_stream_sip_flow_parse(ngx_str_t *fl, ngx_uint_t *worker,
    ngx_uint_t *number);
ngx_int_t ngx_stream_sip_route_flow_worker(ngx_sip_msg_t *m,
    ngx_str_t *call_id, ngx_uint_t *worker);

typedef struct ngx_stream_sip_tnode_s  ngx_stream_sip_tnode_t;

struct ngx_stream_sip_tnode_s {
    ngx_stream_sip_tnode_t     *next;
    ngx_stream_sip_tnode_t    **prev;        /* what points to us */
    uint32_t                    key;
};

typedef struct {
    ngx_stream_sip_tnode_t    **buckets;
    ngx_uint_t                  size;        /* a power of two */
    ngx_uint_t                  n;
    ngx_log_t                  *log;
} ngx_stream_sip_table_t;

#define ngx_stream_sip_table_bucket(t, k)                                    \
    ((t)->buckets[(k) & ((t)->size - 1)])

ngx_int_t ngx_stream_sip_table_init(ngx_stream_sip_table_t *t,
    ngx_uint_t size, ngx_log_t *log);
void ngx_stream_sip_table_insert(ngx_stream_sip_table_t *t,
    ngx_stream_sip_tnode_t *node);
void ngx_stream_sip_table_delete(ngx_stream_sip_table_t *t,
    ngx_stream_sip_tnode_t *node);
uint32_t ngx_stream_sip_table_key(ngx_str_t *branch);

ngx_int_t ngx_stream_sip_channel_worker(ngx_uint_t worker);
ngx_int_t ngx_stream_sip_channel_worker_gen(ngx_uint_t generation,
    ngx_uint_t worker);
ngx_uint_t ngx_stream_sip_channel_generation(void);
ngx_int_t ngx_stream_sip_channel_prev_owner(ngx_str_t *call_id);
ngx_socket_t ngx_stream_sip_udp_fd(ngx_listening_t *ls);
ngx_listening_t *ngx_stream_sip_listenings(ngx_uint_t *n);
ngx_listening_t *ngx_stream_sip_udp_listening_for(int family, in_port_t port);
ngx_listening_t *ngx_stream_sip_adopt_listening(int family, in_port_t port,
    ngx_uint_t transport);
ngx_uint_t ngx_stream_sip_channel_injected(ngx_connection_t *c);
ngx_int_t ngx_stream_sip_channel_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_stream_sip_channel_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_stream_sip_channel_owner(ngx_str_t *call_id);
ngx_int_t ngx_stream_sip_channel_pass(ngx_connection_t *c, ngx_uint_t slot,
    u_char *data, size_t len);
ngx_int_t ngx_stream_sip_channel_to_flow(ngx_uint_t worker, ngx_uint_t flow,
    ngx_str_t *msg, ngx_log_t *log);
ngx_int_t ngx_stream_sip_channel_response(ngx_uint_t slot, u_char *data,
    size_t len, ngx_log_t *log);
void ngx_stream_sip_close_quietly(ngx_connection_t *c);


/* limits of transactions and of their fan-out: ngx_stream_sip_tx_limit.c */
typedef struct {
    ngx_uint_t                  transactions;     /* per worker */
    size_t                      bytes;
    ngx_flag_t                  drop;
    ngx_uint_t                  source_transactions;
    size_t                      source_bytes;
    ngx_flag_t                  source_drop;
    ngx_int_t                   max_branches;     /* per request, in all */
    ngx_msec_t                  lifetime;         /* of a transaction */
    ngx_flag_t                  contact_connect;
} ngx_stream_sip_tx_limit_conf_t;

typedef struct ngx_stream_sip_tx_source_s  ngx_stream_sip_tx_source_t;

/* what a transaction costs besides the messages it keeps */
#define NGX_STREAM_SIP_TX_OVERHEAD  2048

ngx_int_t ngx_stream_sip_tx_admit(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx, size_t size, ngx_stream_sip_tx_source_t **src);
void ngx_stream_sip_tx_charge(ngx_stream_sip_tx_source_t *src,
    ssize_t bytes);
ngx_int_t ngx_stream_sip_tx_take(ngx_stream_sip_tx_limit_conf_t *tlcf,
    ngx_stream_sip_tx_source_t *src, size_t need);
void ngx_stream_sip_tx_release(ngx_stream_sip_tx_source_t *src,
    size_t bytes);
void ngx_stream_sip_tx_totals(ngx_uint_t *transactions, size_t *bytes);
ngx_int_t ngx_stream_sip_flow_verify(ngx_str_t *call_id, u_char *p,
    u_char *end, ngx_uint_t *worker);


/* the secret of our branches and Record-Route tokens, one per master */
extern u_char        ngx_stream_sip_key[16];

extern ngx_module_t  ngx_stream_sip_module;
extern ngx_module_t  ngx_stream_sip_registrar_module;
extern ngx_module_t  ngx_stream_sip_auth_module;
extern ngx_module_t  ngx_stream_sip_limit_module;
extern ngx_module_t  ngx_stream_sip_ssl_module;
extern ngx_module_t  ngx_stream_sip_tx_limit_module;
extern ngx_module_t  ngx_stream_sip_delay_module;


#endif /* _NGX_STREAM_SIP_H_INCLUDED_ */
