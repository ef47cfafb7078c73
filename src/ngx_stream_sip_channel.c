
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
 * table (a REGISTER for the registrar, whose state is in shared memory,
 * is answered by whichever worker reads it).  A worker that reads a
 * datagram it does not own passes it as it came, with its addresses,
 * through a Unix datagram socket of the owner; the owner runs it through
 * the stream session machinery exactly as if its own socket had read it.
 *
 * The socket pairs are made by the master before the workers are forked,
 * one per worker slot, anew for every configuration cycle.  The master
 * keeps the sending ends of the previous cycle's pairs until the next
 * reload, so that new workers can still reach the old ones: a response
 * to a transaction an old worker holds (our branch names its generation
 * and number) goes to it while it finishes its work.  The master closes
 * its copies of the old receiving ends, so a datagram for an old worker
 * that has left is refused, and handled by the worker that read it.
 */


typedef struct {
    uint32_t                  magic;
    uint32_t                  generation;
    uint32_t                  kind;
    uint32_t                  from;       /* the sender's slot */
    ngx_uint_t                flow;       /* a connection number */
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

/* what a message of the channel is */
#define NGX_STREAM_SIP_CHANNEL_DATAGRAM  0    /* as it came, to handle */
#define NGX_STREAM_SIP_CHANNEL_FLOW      1    /* to write on a flow */
#define NGX_STREAM_SIP_CHANNEL_RESPONSE  2    /* for a branch of ours */
#define NGX_STREAM_SIP_CHANNEL_GONE      3    /* that flow is not here */


static void ngx_stream_sip_channel_read(ngx_event_t *rev);
static void ngx_stream_sip_channel_inject(ngx_cycle_t *cycle,
    ngx_stream_sip_channel_hdr_t *hdr, u_char *data, size_t len,
    ngx_log_t *log);
static void ngx_stream_sip_channel_close(ngx_stream_sip_channel_t *ch,
    ngx_uint_t n, ngx_uint_t end);
static ngx_listening_t *ngx_stream_sip_channel_listening(ngx_cycle_t *cycle,
    ngx_stream_sip_channel_hdr_t *hdr);
static ssize_t ngx_stream_sip_channel_recv(ngx_connection_t *c, u_char *buf,
    size_t size);
static ngx_int_t ngx_stream_sip_channel_send(ngx_uint_t slot,
    ngx_stream_sip_channel_hdr_t *hdr, u_char *data, size_t len,
    ngx_log_t *log);
static void ngx_stream_sip_channel_flow(ngx_stream_sip_channel_hdr_t *hdr,
    u_char *data, size_t len, ngx_log_t *log);


static ngx_stream_sip_channel_t  *ngx_stream_sip_channels;
static ngx_uint_t                 ngx_stream_sip_nchannels;
static ngx_stream_sip_channel_t  *ngx_stream_sip_prev_channels;
static ngx_uint_t                 ngx_stream_sip_prev_nchannels;
static ngx_uint_t                 ngx_stream_sip_generation;
static ngx_uint_t                 ngx_stream_sip_from_newer;
static ngx_socket_t              *ngx_stream_sip_udp_fds;
static ngx_listening_t           *ngx_stream_sip_listening;
static ngx_uint_t                 ngx_stream_sip_nlistening;
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
    ngx_stream_sip_channel_t  *ch;

    if (ngx_test_config) {
        return NGX_OK;
    }

    /*
     * The workers of two cycles ago have had their time; the last
     * cycle's keep their own receiving ends, the master needs none.
     */

    if (ngx_stream_sip_prev_channels) {
        ngx_stream_sip_channel_close(ngx_stream_sip_prev_channels,
                                     ngx_stream_sip_prev_nchannels, 2);
        ngx_free(ngx_stream_sip_prev_channels);
    }

    ngx_stream_sip_prev_channels = ngx_stream_sip_channels;
    ngx_stream_sip_prev_nchannels = ngx_stream_sip_nchannels;

    if (ngx_stream_sip_prev_channels) {
        ngx_stream_sip_channel_close(ngx_stream_sip_prev_channels,
                                     ngx_stream_sip_prev_nchannels, 1);
    }

    ngx_stream_sip_channels = NULL;
    ngx_stream_sip_nchannels = 0;
    ngx_stream_sip_generation++;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = ccf->worker_processes;

    /* one worker too: after a reload the new one reaches the old one */

    if (!ccf->master || n == 0) {
        return NGX_OK;
    }

    /* not in the cycle's pool: the next cycle's workers use them too */

    ch = ngx_alloc(n * sizeof(ngx_stream_sip_channel_t), cycle->log);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        ch[i].fd[0] = (ngx_socket_t) -1;
        ch[i].fd[1] = (ngx_socket_t) -1;
    }

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


/* closes the receiving ends (end 1), or both (end 2) */

static void
ngx_stream_sip_channel_close(ngx_stream_sip_channel_t *ch, ngx_uint_t n,
    ngx_uint_t end)
{
    ngx_uint_t  i, k;

    for (i = 0; i < n; i++) {

        for (k = 0; k < end; k++) {
            if (ch[i].fd[k] != (ngx_socket_t) -1) {
                (void) ngx_close_socket(ch[i].fd[k]);
                ch[i].fd[k] = (ngx_socket_t) -1;
            }
        }
    }
}


/*
 * In a worker: keep our receiving end and the others' sending ends, and a
 * duplicate of every UDP listening socket, to send from while leaving:
 * nginx closes the listening sockets of a worker that shuts down, and its
 * transactions still answer from them.
 */

ngx_int_t
ngx_stream_sip_channel_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_event_t               *rev;
    ngx_listening_t           *ls;
    ngx_connection_t          *c;
    ngx_stream_sip_channel_t  *ch;

    ngx_stream_sip_channel_ready = 0;

    if (ngx_process != NGX_PROCESS_WORKER) {
        return NGX_OK;
    }

    ngx_stream_sip_udp_fds = ngx_palloc(cycle->pool, cycle->listening.nelts
                                                     * sizeof(ngx_socket_t));
    if (ngx_stream_sip_udp_fds == NULL) {
        return NGX_ERROR;
    }

    /* a leaving worker's cycle says it has none */

    ls = cycle->listening.elts;
    ngx_stream_sip_listening = ls;
    ngx_stream_sip_nlistening = cycle->listening.nelts;

    for (i = 0; i < cycle->listening.nelts; i++) {
        ngx_stream_sip_udp_fds[i] = (ngx_socket_t) -1;

        if (ls[i].type != SOCK_DGRAM || ls[i].fd == (ngx_socket_t) -1) {
            continue;
        }

        ngx_stream_sip_udp_fds[i] = dup(ls[i].fd);

        if (ngx_stream_sip_udp_fds[i] == (ngx_socket_t) -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                          "dup() of a UDP listening socket failed");
            return NGX_ERROR;
        }
    }

    if (ngx_stream_sip_channels == NULL
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


/* the socket to send from of a UDP listening, open while we live */

ngx_socket_t
ngx_stream_sip_udp_fd(ngx_listening_t *ls)
{
    ngx_uint_t  i;

    if (ngx_stream_sip_udp_fds == NULL) {
        return ls->fd;
    }

    i = ls - ngx_stream_sip_listening;

    if (i >= ngx_stream_sip_nlistening) {
        return (ngx_socket_t) -1;
    }

    return ngx_stream_sip_udp_fds[i];
}


/*
 * The listenings of this worker's cycle, also while it leaves: nginx
 * then empties the cycle's list, and our duplicates live on.
 */

ngx_listening_t *
ngx_stream_sip_listenings(ngx_uint_t *n)
{
    if (ngx_stream_sip_listening == NULL) {
        *n = ngx_cycle->listening.nelts;
        return ngx_cycle->listening.elts;
    }

    *n = ngx_stream_sip_nlistening;

    return ngx_stream_sip_listening;
}


/* the generation of workers we belong to, as our branches carry it */

ngx_uint_t
ngx_stream_sip_channel_generation(void)
{
    return ngx_stream_sip_generation & 0xff;
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


/*
 * The worker of the previous generation that owned a Call-ID: where a
 * CANCEL goes whose INVITE nobody here has (it came before a reload).
 * Not from a worker that got it from a newer generation: one step back.
 */

ngx_int_t
ngx_stream_sip_channel_prev_owner(ngx_str_t *call_id)
{
    ngx_uint_t  slot;

    if (ngx_stream_sip_from_newer || ngx_stream_sip_prev_nchannels == 0
        || call_id->len == 0)
    {
        return -1;
    }

    slot = ngx_crc32_short(call_id->data, call_id->len)
           % ngx_stream_sip_prev_nchannels;

    if (ngx_stream_sip_prev_channels[slot].fd[1] == (ngx_socket_t) -1) {
        return -1;
    }

    return (ngx_int_t) (ngx_stream_sip_nchannels + slot);
}


/*
 * The same for a worker of our generation or of the one before: old
 * workers' slots follow ours.
 */

ngx_int_t
ngx_stream_sip_channel_worker_gen(ngx_uint_t generation, ngx_uint_t worker)
{
    if (generation == (ngx_stream_sip_generation & 0xff)) {
        return ngx_stream_sip_channel_worker(worker);
    }

    if (generation != ((ngx_stream_sip_generation - 1) & 0xff)
        || worker >= ngx_stream_sip_prev_nchannels
        || ngx_stream_sip_prev_channels[worker].fd[1] == (ngx_socket_t) -1)
    {
        return -1;
    }

    return (ngx_int_t) (ngx_stream_sip_nchannels + worker);
}


ngx_int_t
ngx_stream_sip_channel_pass(ngx_connection_t *c, ngx_uint_t slot,
    u_char *data, size_t len)
{
    ngx_uint_t                     nls;
    ngx_stream_sip_channel_hdr_t   hdr;

    if (c->listening == NULL || c->socklen > sizeof(ngx_sockaddr_t)
        || c->local_socklen > sizeof(ngx_sockaddr_t))
    {
        return NGX_ERROR;
    }

    ngx_memzero(&hdr, sizeof(ngx_stream_sip_channel_hdr_t));

    hdr.kind = NGX_STREAM_SIP_CHANNEL_DATAGRAM;
    hdr.listening = (uint32_t) (c->listening
                                - ngx_stream_sip_listenings(&nls));
    hdr.socklen = c->socklen;
    hdr.local_socklen = c->local_socklen;
    ngx_memcpy(&hdr.sockaddr, c->sockaddr, c->socklen);
    ngx_memcpy(&hdr.local_sockaddr, c->local_sockaddr, c->local_socklen);

    return ngx_stream_sip_channel_send(slot, &hdr, data, len, c->log);
}


/*
 * A message for a flow another worker holds (only the worker that
 * accepted or opened a connection can write to it): that worker writes
 * it as it is.  NGX_DECLINED: there is no such worker.
 */

ngx_int_t
ngx_stream_sip_channel_to_flow(ngx_uint_t worker, ngx_uint_t flow,
    ngx_str_t *msg, ngx_log_t *log)
{
    ngx_int_t                      slot;
    ngx_stream_sip_channel_hdr_t   hdr;

    slot = ngx_stream_sip_channel_worker(worker);

    if (slot < 0) {
        return NGX_DECLINED;
    }

    ngx_memzero(&hdr, sizeof(ngx_stream_sip_channel_hdr_t));

    hdr.kind = NGX_STREAM_SIP_CHANNEL_FLOW;
    hdr.flow = flow;

    return ngx_stream_sip_channel_send(slot, &hdr, msg->data, msg->len, log);
}


/*
 * A response that came on a flow of this worker for a branch another
 * one made: that worker has the transaction (its number is in the
 * branch, ngx_stream_sip_owner()).
 */

ngx_int_t
ngx_stream_sip_channel_response(ngx_uint_t slot, u_char *data, size_t len,
    ngx_log_t *log)
{
    ngx_stream_sip_channel_hdr_t  hdr;

    ngx_memzero(&hdr, sizeof(ngx_stream_sip_channel_hdr_t));

    hdr.kind = NGX_STREAM_SIP_CHANNEL_RESPONSE;

    return ngx_stream_sip_channel_send(slot, &hdr, data, len, log);
}


static ngx_int_t
ngx_stream_sip_channel_send(ngx_uint_t slot,
    ngx_stream_sip_channel_hdr_t *hdr, u_char *data, size_t len,
    ngx_log_t *log)
{
    ssize_t         n;
    ngx_socket_t    fd;
    struct iovec    iov[2];
    struct msghdr   msg;

    if (slot >= ngx_stream_sip_nchannels + ngx_stream_sip_prev_nchannels) {
        return NGX_ERROR;
    }

    /* the receiver reads no more: a bigger message would be cut */

    if (len > sizeof(ngx_stream_sip_channel_buf)
              - sizeof(ngx_stream_sip_channel_hdr_t))
    {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "SIP message of %uz bytes for worker %ui dropped: "
                      "too big to pass", len, slot);
        return NGX_ERROR;
    }

    if (slot < ngx_stream_sip_nchannels) {
        fd = ngx_stream_sip_channels[slot].fd[1];

    } else {
        fd = ngx_stream_sip_prev_channels[slot - ngx_stream_sip_nchannels]
                 .fd[1];
    }

    hdr->magic = NGX_STREAM_SIP_CHANNEL_MAGIC;
    hdr->generation = (uint32_t) ngx_stream_sip_generation;
    hdr->from = (uint32_t) ngx_stream_sip_channel_slot;

    iov[0].iov_base = (void *) hdr;
    iov[0].iov_len = sizeof(ngx_stream_sip_channel_hdr_t);
    iov[1].iov_base = (void *) data;
    iov[1].iov_len = len;

    ngx_memzero(&msg, sizeof(struct msghdr));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;

    n = sendmsg(fd, &msg, 0);

    if (n == -1) {
        ngx_log_error(NGX_LOG_INFO, log, ngx_socket_errno,
                      "SIP datagram for worker %ui dropped", slot);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * What another worker sent for a flow of ours, or about a flow of its
 * own: written on it, or the sender learns that it is gone, so that a
 * branch waiting for an answer on it fails now, not at its timeout.
 */

static void
ngx_stream_sip_channel_flow(ngx_stream_sip_channel_hdr_t *hdr, u_char *data,
    size_t len, ngx_log_t *log)
{
    ngx_str_t                     msg;
    ngx_stream_sip_channel_hdr_t  gone;

    if (hdr->kind == NGX_STREAM_SIP_CHANNEL_GONE) {
        ngx_stream_sip_flow_failed(hdr->flow);
        return;
    }

    msg.data = data;
    msg.len = len;

    if (ngx_stream_sip_flow_send(hdr->flow, &msg) == NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "SIP message from worker %uD dropped: its connection "
                  "is gone", hdr->from);

    if (hdr->generation != (uint32_t) ngx_stream_sip_generation
        || hdr->from >= ngx_stream_sip_nchannels)
    {
        return;
    }

    ngx_memzero(&gone, sizeof(ngx_stream_sip_channel_hdr_t));

    gone.kind = NGX_STREAM_SIP_CHANNEL_GONE;
    gone.flow = hdr->flow;

    (void) ngx_stream_sip_channel_send(hdr->from, &gone, (u_char *) "", 1,
                                       log);
}


static void
ngx_stream_sip_channel_read(ngx_event_t *rev)
{
    u_char                        *data;
    size_t                         len;
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
            || hdr->socklen > sizeof(ngx_sockaddr_t)
            || hdr->local_socklen > sizeof(ngx_sockaddr_t))
        {
            ngx_log_error(NGX_LOG_ALERT, rev->log, 0,
                          "SIP worker channel: bad message");
            continue;
        }

        data = ngx_stream_sip_channel_buf
               + sizeof(ngx_stream_sip_channel_hdr_t);
        len = n - sizeof(ngx_stream_sip_channel_hdr_t);

        switch (hdr->kind) {

        case NGX_STREAM_SIP_CHANNEL_DATAGRAM:
            break;

        case NGX_STREAM_SIP_CHANNEL_FLOW:
        case NGX_STREAM_SIP_CHANNEL_GONE:
            ngx_stream_sip_channel_flow(hdr, data, len, rev->log);
            continue;

        case NGX_STREAM_SIP_CHANNEL_RESPONSE:
            ngx_stream_sip_proxy_passed_response(data, len, rev->log);
            continue;

        default:
            ngx_log_error(NGX_LOG_ALERT, rev->log, 0,
                          "SIP worker channel: bad message");
            continue;
        }

        ngx_stream_sip_channel_inject((ngx_cycle_t *) ngx_cycle, hdr, data,
                                      len, rev->log);
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

    ls = ngx_stream_sip_channel_listening(cycle, hdr);

    if (ls == NULL || ngx_stream_sip_udp_fd(ls) == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_INFO, elog, 0,
                      "SIP datagram from a worker dropped: no such listen");
        return;
    }

    c = ngx_get_connection(ngx_stream_sip_udp_fd(ls), elog);
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

    /* the session runs to its end here: the flag holds just for it */

    ngx_stream_sip_from_newer = (hdr->generation
                                 != (uint32_t) ngx_stream_sip_generation);

    ls->handler(c);

    ngx_stream_sip_from_newer = 0;

    return;

failed:

    ngx_stream_sip_close_quietly(c);
}


/*
 * The listening a passed datagram came in on: by index from a worker of
 * our configuration; from one of another (a newer one passes to us while
 * we leave) by the address it was sent to.
 */

static ngx_listening_t *
ngx_stream_sip_channel_listening(ngx_cycle_t *cycle,
    ngx_stream_sip_channel_hdr_t *hdr)
{
    ngx_uint_t        i, n;
    struct sockaddr  *local;
    ngx_listening_t  *ls;

    ls = ngx_stream_sip_listenings(&n);

    if (hdr->generation == (uint32_t) ngx_stream_sip_generation) {

        if (hdr->listening >= n
            || ls[hdr->listening].type != SOCK_DGRAM)
        {
            return NULL;
        }

        return &ls[hdr->listening];
    }

    local = &hdr->local_sockaddr.sockaddr;

    for (i = 0; i < n; i++) {

        if (ls[i].type != SOCK_DGRAM
            || ls[i].sockaddr->sa_family != local->sa_family
            || ngx_inet_get_port(ls[i].sockaddr) != ngx_inet_get_port(local))
        {
            continue;
        }

        if (ls[i].wildcard
            || ngx_cmp_sockaddr(ls[i].sockaddr, ls[i].socklen, local,
                                hdr->local_socklen, 0)
               == NGX_OK)
        {
            return &ls[i];
        }
    }

    return NULL;
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
