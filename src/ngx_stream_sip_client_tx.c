
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
 * Requests the module sends on its own account (RFC 3261 17.1.2, a
 * non-INVITE client transaction): the CANCEL of a branch today, a probe
 * or a NOTIFY tomorrow.  Whoever sends one gets its answer once, in this
 * worker, through a completion handler: the final response, or none on
 * Timer F or a connection that never came up.
 *
 * The response finds its transaction by the top Via branch and the CSeq
 * method (17.1.3), in a table of this worker: the branch carries our
 * salt (ngx_stream_sip_salt()), so any worker that reads the answer
 * passes it here as it does for the proxy's branches.  A CANCEL shares
 * its branch with the INVITE it cancels; the method tells them apart.
 *
 * A transaction has a pool of its own: it may outlive whoever sent it
 * (a CANCEL outlives its INVITE's server transaction when the 487 comes
 * first), and then it runs to its end without a handler.  It counts
 * toward the caps of ngx_stream_sip_tx_limit.c.
 */


static void ngx_stream_sip_client_tx_send_once(ngx_stream_sip_client_tx_t *ct);
static void ngx_stream_sip_client_tx_retransmit(ngx_event_t *ev);
static void ngx_stream_sip_client_tx_timeout(ngx_event_t *ev);
static void ngx_stream_sip_client_tx_done(ngx_stream_sip_client_tx_t *ct,
    ngx_uint_t status, ngx_sip_msg_t *resp);
static void ngx_stream_sip_client_tx_free(ngx_stream_sip_client_tx_t *ct);


static ngx_stream_sip_table_t  ngx_stream_sip_client_txs;
static ngx_uint_t              ngx_stream_sip_client_tx_ready;


/*
 * A transaction to fill in: its request (with our Via and a branch of
 * ours), where it goes, its timers and handler; "size" is what its pool
 * should hold besides (the request, typically).
 */

ngx_stream_sip_client_tx_t *
ngx_stream_sip_client_tx_create(size_t size, ngx_log_t *log)
{
    ngx_pool_t                  *pool;
    ngx_stream_sip_client_tx_t  *ct;

    pool = ngx_create_pool(ngx_max(size + sizeof(ngx_stream_sip_client_tx_t)
                                   + sizeof(ngx_pool_t) + 64, 512),
                           log);
    if (pool == NULL) {
        return NULL;
    }

    ct = ngx_pcalloc(pool, sizeof(ngx_stream_sip_client_tx_t));
    if (ct == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ct->pool = pool;
    ct->log = log;

    return ct;
}


/*
 * NGX_OK: sent, the handler will be called once.  NGX_BUSY: over the
 * transaction caps, NGX_ERROR: no memory; in both nothing was sent, the
 * transaction is freed and its handler is never called.
 */

ngx_int_t
ngx_stream_sip_client_tx_send(ngx_stream_sip_client_tx_t *ct)
{
    size_t  need;

    if (!ngx_stream_sip_client_tx_ready) {
        if (ngx_stream_sip_table_init(&ngx_stream_sip_client_txs, 256,
                                      ngx_cycle->log)
            != NGX_OK)
        {
            ngx_destroy_pool(ct->pool);
            return NGX_ERROR;
        }

        ngx_stream_sip_client_tx_ready = 1;
    }

    need = NGX_STREAM_SIP_TX_OVERHEAD + ct->request.len;

    if (ngx_stream_sip_tx_take(ct->tlcf, ct->source, need) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, ct->log, 0,
                      "SIP client transaction refused: too many transactions");
        ngx_destroy_pool(ct->pool);
        return NGX_BUSY;
    }

    ct->charged = need;

    ct->retransmit.handler = ngx_stream_sip_client_tx_retransmit;
    ct->retransmit.data = ct;
    ct->retransmit.log = ct->log;
    ct->retransmit.cancelable = 1;

    ct->timeout.handler = ngx_stream_sip_client_tx_timeout;
    ct->timeout.data = ct;
    ct->timeout.log = ct->log;
    /* a leaving worker waits for the answer, or Timer F */
    ct->timeout.cancelable = 0;

    ct->node.key = ngx_stream_sip_table_key(&ct->branch);
    ngx_stream_sip_table_insert(&ngx_stream_sip_client_txs, &ct->node);

    ngx_stream_sip_client_tx_send_once(ct);

    /* a reliable transport needs no Timer E (17.1.2.2) */

    ct->interval = ct->t1;

    if (!ct->flow) {
        ngx_add_timer(&ct->retransmit, ct->interval);
    }

    ngx_add_timer(&ct->timeout, 64 * ct->t1);

    return NGX_OK;
}


/* whoever sent it is gone: it runs to its end, telling no one */

void
ngx_stream_sip_client_tx_abandon(ngx_stream_sip_client_tx_t *ct)
{
    ct->handler = NULL;
    ct->data = NULL;
}


/*
 * A response: NGX_OK when it was one of ours (handled or absorbed),
 * NGX_DECLINED when no transaction of this worker has its branch and
 * method.
 */

ngx_int_t
ngx_stream_sip_client_tx_response(ngx_sip_msg_t *m)
{
    ngx_uint_t                   status;
    ngx_stream_sip_tnode_t      *node;
    ngx_stream_sip_client_tx_t  *ct;

    if (!ngx_stream_sip_client_tx_ready || m->request) {
        return NGX_DECLINED;
    }

    node = ngx_stream_sip_table_bucket(&ngx_stream_sip_client_txs,
                                       ngx_stream_sip_table_key(
                                           &m->via.branch));

    for ( /* void */ ; node; node = node->next) {
        ct = (ngx_stream_sip_client_tx_t *) node;

        if (ct->method == m->cseq.method_id
            && ct->branch.len == m->via.branch.len
            && ngx_strncmp(ct->branch.data, m->via.branch.data,
                           ct->branch.len)
               == 0)
        {
            break;
        }
    }

    if (node == NULL) {
        return NGX_DECLINED;
    }

    status = m->status;

    if (ct->completed) {

        /* Timer K: a retransmission of the final response, absorbed */
        return NGX_OK;
    }

    if (status < 200) {

        /* Proceeding: Timer E goes on at T2 (17.1.2.2) */

        if (!ct->proceeding) {
            ct->proceeding = 1;
            ct->interval = ct->t2;
        }

        return NGX_OK;
    }

    ngx_stream_sip_client_tx_done(ct, status, m);

    return NGX_OK;
}


/* a connection of ours never came up: what waited on it fails */

void
ngx_stream_sip_client_tx_flow_failed(ngx_uint_t flow)
{
    ngx_uint_t                   i, n;
    ngx_stream_sip_tnode_t      *node;
    ngx_stream_sip_client_tx_t  *ct, *failed[64];

    if (!ngx_stream_sip_client_tx_ready) {
        return;
    }

    /* collected first: a handler may send others */

    n = 0;

    for (i = 0; i < ngx_stream_sip_client_txs.size && n < 64; i++) {
        for (node = ngx_stream_sip_client_txs.buckets[i]; node && n < 64;
             node = node->next)
        {
            ct = (ngx_stream_sip_client_tx_t *) node;

            if (ct->flow == flow && !ct->completed) {
                failed[n++] = ct;
            }
        }
    }

    for (i = 0; i < n; i++) {
        ngx_stream_sip_client_tx_done(failed[i], 0, NULL);
    }
}


static void
ngx_stream_sip_client_tx_send_once(ngx_stream_sip_client_tx_t *ct)
{
    if (ct->flow) {
        ngx_stream_sip_to_flow(ct->flow, ct->flow_worker, &ct->request,
                               ct->log);
        return;
    }

    ngx_stream_sip_udp_send(ct->ls, ct->log, &ct->request, &ct->peer,
                            ct->peer_len);
}


/* Timer E: T1 doubling up to T2, or T2 once an answer came (17.1.2.2) */

static void
ngx_stream_sip_client_tx_retransmit(ngx_event_t *ev)
{
    ngx_stream_sip_client_tx_t  *ct;

    ct = ev->data;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, ct->log, 0,
                   "sip client transaction: retransmit %V", &ct->branch);

    ngx_stream_sip_client_tx_send_once(ct);

    if (!ct->proceeding) {
        ct->interval = ngx_min(2 * ct->interval, ct->t2);
    }

    ngx_add_timer(&ct->retransmit, ct->interval);
}


/* Timer F (no answer in 64*T1), or Timer K (its end after one) */

static void
ngx_stream_sip_client_tx_timeout(ngx_event_t *ev)
{
    ngx_stream_sip_client_tx_t  *ct;

    ct = ev->data;

    if (ct->completed) {
        ngx_stream_sip_client_tx_free(ct);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ct->log, 0,
                  "SIP client transaction %V timed out (Timer F)",
                  &ct->branch);

    ngx_stream_sip_client_tx_done(ct, 0, NULL);
}


/*
 * The handler learns the outcome; the transaction then stays T4 over
 * UDP to absorb retransmitted answers (Timer K), none over a connection.
 */

static void
ngx_stream_sip_client_tx_done(ngx_stream_sip_client_tx_t *ct,
    ngx_uint_t status, ngx_sip_msg_t *resp)
{
    void                         *data;
    ngx_stream_sip_client_tx_pt   handler;

    ct->completed = 1;

    if (ct->retransmit.timer_set) {
        ngx_del_timer(&ct->retransmit);
    }

    if (ct->timeout.timer_set) {
        ngx_del_timer(&ct->timeout);
    }

    handler = ct->handler;
    data = ct->data;
    ct->handler = NULL;

    if (status && !ct->flow) {
        ct->timeout.cancelable = 1;
        ngx_add_timer(&ct->timeout, ct->t4);

        if (handler) {
            handler(data, status, resp);
        }

        return;
    }

    /* freed first: the handler may send another at once */

    ngx_stream_sip_client_tx_free(ct);

    if (handler) {
        handler(data, status, resp);
    }
}


static void
ngx_stream_sip_client_tx_free(ngx_stream_sip_client_tx_t *ct)
{
    ngx_stream_sip_table_delete(&ngx_stream_sip_client_txs, &ct->node);

    if (ct->retransmit.timer_set) {
        ngx_del_timer(&ct->retransmit);
    }

    if (ct->timeout.timer_set) {
        ngx_del_timer(&ct->timeout);
    }

    ngx_stream_sip_tx_release(ct->source, ct->charged);

    ngx_destroy_pool(ct->pool);
}
