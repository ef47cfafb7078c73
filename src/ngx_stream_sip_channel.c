
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Datagrams between workers.  Without reuseport every worker may read any
 * datagram of a UDP listen, but SIP state (transactions, dialogs) must be
 * kept by one of them.  Each UDP message is owned by the worker
 * hash(Call-ID) mod workers: retransmissions, CANCEL, ACK and responses
 * share the Call-ID, so they all meet their state there without a shared
 * table.  A worker that reads a datagram it does not own passes it as it
 * came, with its addresses, through a Unix datagram socket of the owner;
 * the owner runs it through the stream session machinery exactly as if
 * its own socket had read it.
 *
 * The socket pairs are made by the master before the workers are forked,
 * one per worker slot, anew for every configuration cycle.
 */


typedef struct {
    uint32_t                  magic;
    uint32_t                  listening;
    socklen_t                 socklen;
    socklen_t                 local_socklen;
    ngx_sockaddr_t            sockaddr;
    ngx_sockaddr_t            local_sockaddr;
} ngx_stream_sip_channel_hdr_t;


typedef struct {
    ngx_socket_t              fd[2];
} ngx_stream_sip_channel_t;


#define NGX_STREAM_SIP_CHANNEL_MAGIC  0x53495043


static void ngx_stream_sip_channel_read(ngx_event_t *rev);
static void ngx_stream_sip_channel_inject(ngx_cycle_t *cycle,
    ngx_stream_sip_channel_hdr_t *hdr, u_char *data, size_t len,
    ngx_log_t *log);
static void ngx_stream_sip_channel_cleanup(void *data);
static ssize_t ngx_stream_sip_channel_recv(ngx_connection_t *c, u_char *buf,
    size_t size);


static ngx_stream_sip_channel_t  *ngx_stream_sip_channels;
static ngx_uint_t                 ngx_stream_sip_nchannels;
static ngx_uint_t                 ngx_stream_sip_channel_slot;
static ngx_uint_t                 ngx_stream_sip_channel_ready;

static u_char                     ngx_stream_sip_channel_buf[
                                      sizeof(ngx_stream_sip_channel_hdr_t)
                                      + 65536];


/* in the master, after the configuration is read */

ngx_int_t
ngx_stream_sip_channel_init_module(ngx_cycle_t *cycle)
{
    int                        sndbuf;
    ngx_uint_t                 i, n;
    ngx_core_conf_t           *ccf;
    ngx_pool_cleanup_t        *cln;
    ngx_stream_sip_channel_t  *ch;

    ngx_stream_sip_channels = NULL;
    ngx_stream_sip_nchannels = 0;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = ccf->worker_processes;

    if (!ccf->master || n < 2 || ngx_test_config) {
        return NGX_OK;
    }

    /* one more, with -2, marks the end for the cleanup */

    ch = ngx_pcalloc(cycle->pool, (n + 1) * sizeof(ngx_stream_sip_channel_t));
    if (ch == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        ch[i].fd[0] = (ngx_socket_t) -1;
        ch[i].fd[1] = (ngx_socket_t) -1;
    }

    ch[n].fd[0] = (ngx_socket_t) -2;
    ch[n].fd[1] = (ngx_socket_t) -2;

    cln->handler = ngx_stream_sip_channel_cleanup;
    cln->data = ch;

    ngx_stream_sip_channels = ch;
    ngx_stream_sip_nchannels = n;

    for (i = 0; i < n; i++) {

        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, ch[i].fd) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                          "socketpair() for SIP workers failed");
            return NGX_ERROR;
        }

        if (ngx_nonblocking(ch[i].fd[0]) == -1
            || ngx_nonblocking(ch[i].fd[1]) == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                          ngx_nonblocking_n " failed");
            return NGX_ERROR;
        }

        /* room for bursts: a full queue drops, as UDP would */

        sndbuf = 1024 * 1024;

        (void) setsockopt(ch[i].fd[1], SOL_SOCKET, SO_SNDBUF,
                          (const void *) &sndbuf, sizeof(int));
        (void) setsockopt(ch[i].fd[0], SOL_SOCKET, SO_RCVBUF,
                          (const void *) &sndbuf, sizeof(int));
    }

    return NGX_OK;
}


static void
ngx_stream_sip_channel_cleanup(void *data)
{
    ngx_stream_sip_channel_t  *ch = data;

    ngx_uint_t  i, k;

    for (i = 0; ch[i].fd[0] != (ngx_socket_t) -2; i++) {

        for (k = 0; k < 2; k++) {
            if (ch[i].fd[k] != (ngx_socket_t) -1) {
                (void) ngx_close_socket(ch[i].fd[k]);
                ch[i].fd[k] = (ngx_socket_t) -1;
            }
        }
    }
}


/* in a worker: keep our receiving end and the others' sending ends */

ngx_int_t
ngx_stream_sip_channel_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_event_t               *rev;
    ngx_connection_t          *c;
    ngx_stream_sip_channel_t  *ch;

    ngx_stream_sip_channel_ready = 0;

    if (ngx_process != NGX_PROCESS_WORKER || ngx_stream_sip_channels == NULL
        || ngx_worker >= ngx_stream_sip_nchannels)
    {
        return NGX_OK;
    }

    ch = ngx_stream_sip_channels;
    ngx_stream_sip_channel_slot = ngx_worker;

    for (i = 0; i < ngx_stream_sip_nchannels; i++) {

        if (i == ngx_worker) {
            (void) ngx_close_socket(ch[i].fd[1]);
            ch[i].fd[1] = (ngx_socket_t) -1;
            continue;
        }

        (void) ngx_close_socket(ch[i].fd[0]);
        ch[i].fd[0] = (ngx_socket_t) -1;
    }

    c = ngx_get_connection(ch[ngx_worker].fd[0], cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->pool = cycle->pool;

    rev = c->read;
    rev->handler = ngx_stream_sip_channel_read;
    rev->log = cycle->log;
    rev->channel = 1;

    if (ngx_add_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_stream_sip_channel_ready = 1;

    return NGX_OK;
}


/*
 * The worker that owns a message with this Call-ID, or -1 when this one
 * does (or there is nobody to share with).
 */

ngx_int_t
ngx_stream_sip_channel_owner(ngx_str_t *call_id)
{
    ngx_uint_t  slot;

    if (!ngx_stream_sip_channel_ready || call_id->len == 0) {
        return -1;
    }

    slot = ngx_crc32_short(call_id->data, call_id->len)
           % ngx_stream_sip_nchannels;

    return (slot == ngx_stream_sip_channel_slot) ? -1 : (ngx_int_t) slot;
}


/* the channel of a worker by its number: -1 for this one, or none */

ngx_int_t
ngx_stream_sip_channel_worker(ngx_uint_t worker)
{
    if (!ngx_stream_sip_channel_ready || worker >= ngx_stream_sip_nchannels
        || worker == ngx_stream_sip_channel_slot)
    {
        return -1;
    }

    return (ngx_int_t) worker;
}


ngx_int_t
ngx_stream_sip_channel_pass(ngx_connection_t *c, ngx_uint_t slot,
    u_char *data, size_t len)
{
    ssize_t                        n;
    struct iovec                   iov[2];
    struct msghdr                  msg;
    ngx_stream_sip_channel_hdr_t   hdr;

    if (c->listening == NULL || c->socklen > sizeof(ngx_sockaddr_t)
        || c->local_socklen > sizeof(ngx_sockaddr_t)
        || slot >= ngx_stream_sip_nchannels)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&hdr, sizeof(ngx_stream_sip_channel_hdr_t));

    hdr.magic = NGX_STREAM_SIP_CHANNEL_MAGIC;
    hdr.listening = (uint32_t) (c->listening - (ngx_listening_t *)
                                               ngx_cycle->listening.elts);
    hdr.socklen = c->socklen;
    hdr.local_socklen = c->local_socklen;
    ngx_memcpy(&hdr.sockaddr, c->sockaddr, c->socklen);
    ngx_memcpy(&hdr.local_sockaddr, c->local_sockaddr, c->local_socklen);

    iov[0].iov_base = (void *) &hdr;
    iov[0].iov_len = sizeof(ngx_stream_sip_channel_hdr_t);
    iov[1].iov_base = (void *) data;
    iov[1].iov_len = len;

    ngx_memzero(&msg, sizeof(struct msghdr));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;

    n = sendmsg(ngx_stream_sip_channels[slot].fd[1], &msg, 0);

    if (n == -1) {
        ngx_log_error(NGX_LOG_INFO, c->log, ngx_socket_errno,
                      "SIP datagram for worker %ui dropped", slot);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_sip_channel_read(ngx_event_t *rev)
{
    ssize_t                        n;
    ngx_uint_t                     i;
    ngx_connection_t              *c;
    ngx_stream_sip_channel_hdr_t  *hdr;

    c = rev->data;

    /* a bounded batch, then back to the event loop */

    for (i = 0; i < 64; i++) {

        n = recv(c->fd, ngx_stream_sip_channel_buf,
                 sizeof(ngx_stream_sip_channel_buf), 0);

        if (n == -1) {
            if (ngx_socket_errno != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, rev->log, ngx_socket_errno,
                              "SIP worker channel recv() failed");
            }

            return;
        }

        hdr = (ngx_stream_sip_channel_hdr_t *) ngx_stream_sip_channel_buf;

        if ((size_t) n <= sizeof(ngx_stream_sip_channel_hdr_t)
            || hdr->magic != NGX_STREAM_SIP_CHANNEL_MAGIC
            || hdr->listening >= ngx_cycle->listening.nelts
            || hdr->socklen > sizeof(ngx_sockaddr_t)
            || hdr->local_socklen > sizeof(ngx_sockaddr_t))
        {
            ngx_log_error(NGX_LOG_ALERT, rev->log, 0,
                          "SIP worker channel: bad message");
            continue;
        }

        ngx_stream_sip_channel_inject((ngx_cycle_t *) ngx_cycle, hdr,
                             ngx_stream_sip_channel_buf
                             + sizeof(ngx_stream_sip_channel_hdr_t),
                             n - sizeof(ngx_stream_sip_channel_hdr_t),
                             rev->log);
    }

    ngx_post_event(rev, &ngx_posted_events);
}


/*
 * What ngx_event_recvmsg() does for the first datagram of a client: a
 * connection on the listening socket, then the stream session handler.
 * It is not entered into the listening's table of UDP clients, so it
 * never receives a second datagram: the session ends after this one.
 */

static void
ngx_stream_sip_channel_inject(ngx_cycle_t *cycle,
    ngx_stream_sip_channel_hdr_t *hdr, u_char *data, size_t len,
    ngx_log_t *elog)
{
    ngx_log_t         *log;
    ngx_listening_t   *ls;
    ngx_connection_t  *c;

    ls = (ngx_listening_t *) cycle->listening.elts + hdr->listening;

    if (ls->type != SOCK_DGRAM || ls->fd == (ngx_socket_t) -1) {
        return;
    }

    c = ngx_get_connection(ls->fd, elog);
    if (c == NULL) {
        return;
    }

    c->shared = 1;
    c->type = SOCK_DGRAM;
    c->socklen = hdr->socklen;

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, 1);
#endif

    c->pool = ngx_create_pool(ls->pool_size, elog);
    if (c->pool == NULL) {
        goto failed;
    }

    c->sockaddr = ngx_palloc(c->pool, hdr->socklen);
    c->local_sockaddr = ngx_palloc(c->pool, hdr->local_socklen);
    log = ngx_palloc(c->pool, sizeof(ngx_log_t));
    c->buffer = ngx_create_temp_buf(c->pool, len);
    c->addr_text.data = ngx_pnalloc(c->pool, ls->addr_text_max_len);

    if (c->sockaddr == NULL || c->local_sockaddr == NULL || log == NULL
        || c->buffer == NULL || c->addr_text.data == NULL)
    {
        goto failed;
    }

    ngx_memcpy(c->sockaddr, &hdr->sockaddr, hdr->socklen);
    ngx_memcpy(c->local_sockaddr, &hdr->local_sockaddr, hdr->local_socklen);
    c->local_socklen = hdr->local_socklen;

    c->buffer->last = ngx_cpymem(c->buffer->last, data, len);

    *log = ls->log;

    c->recv = ngx_stream_sip_channel_recv;
    c->send = ngx_udp_send;
    c->send_chain = ngx_udp_send_chain;

    c->log = log;
    c->pool->log = log;
    c->listening = ls;

    c->read->active = 1;
    c->write->ready = 1;
    c->read->log = log;
    c->write->log = log;

    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->start_time = ngx_current_msec;

    c->addr_text.len = ngx_sock_ntop(c->sockaddr, c->socklen,
                                     c->addr_text.data,
                                     ls->addr_text_max_len, 0);
    if (c->addr_text.len == 0) {
        goto failed;
    }

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_handled, 1);
#endif

    log->data = NULL;
    log->handler = NULL;

    ls->handler(c);

    return;

failed:

    ngx_stream_sip_close_quietly(c);
}


/* whether a datagram came from another worker, not from the network */

ngx_uint_t
ngx_stream_sip_channel_injected(ngx_connection_t *c)
{
    return c->recv == ngx_stream_sip_channel_recv;
}


/* the one datagram is in c->buffer; there is never another */

static ssize_t
ngx_stream_sip_channel_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    return NGX_AGAIN;
}


/*
 * Ends a UDP session without its access log line: for a datagram passed
 * to its owner, whose session logs it.
 */

void
ngx_stream_sip_close_quietly(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif

    pool = c->pool;

    ngx_close_connection(c);

    if (pool) {
        ngx_destroy_pool(pool);
    }
}
