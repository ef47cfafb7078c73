
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * A chained hash table of a worker's transactions, by a hash of their
 * branch.  It replaced two rbtrees: with a BYE's server transaction kept
 * 32 s for retransmissions (Timer J), a worker holds tens of thousands
 * of them at a few thousand calls per second, and every message looked
 * one up in a tree that deep: cache misses all the way down
 * (docs/benchmarks.md).  Buckets double when there are more nodes than
 * buckets; they never shrink.
 *
 * The key is a keyed hash (SipHash, the module's secret key): branches
 * are chosen by whoever sends the requests, and CRC32 collisions are
 * easy to make, so many requests could be made to share one bucket and
 * every lookup to walk them all.
 */


static void ngx_stream_sip_table_grow(ngx_stream_sip_table_t *t);


ngx_int_t
ngx_stream_sip_table_init(ngx_stream_sip_table_t *t, ngx_uint_t size,
    ngx_log_t *log)
{
    t->buckets = ngx_calloc(size * sizeof(ngx_stream_sip_tnode_t *), log);
    if (t->buckets == NULL) {
        return NGX_ERROR;
    }

    t->size = size;
    t->n = 0;
    t->log = log;

    return NGX_OK;
}


void
ngx_stream_sip_table_insert(ngx_stream_sip_table_t *t,
    ngx_stream_sip_tnode_t *node)
{
    ngx_stream_sip_tnode_t  **head;

    if (t->n >= t->size) {
        ngx_stream_sip_table_grow(t);
    }

    head = &t->buckets[node->key & (t->size - 1)];

    node->next = *head;
    node->prev = head;

    if (*head) {
        (*head)->prev = &node->next;
    }

    *head = node;
    t->n++;
}


void
ngx_stream_sip_table_delete(ngx_stream_sip_table_t *t,
    ngx_stream_sip_tnode_t *node)
{
    *node->prev = node->next;

    if (node->next) {
        node->next->prev = node->prev;
    }

    node->next = NULL;
    node->prev = NULL;
    t->n--;
}


uint32_t
ngx_stream_sip_table_key(ngx_str_t *branch)
{
    return (uint32_t) ngx_sip_siphash(ngx_stream_sip_key, branch->data,
                                      branch->len);
}


/* without memory for more buckets the chains just get longer */

static void
ngx_stream_sip_table_grow(ngx_stream_sip_table_t *t)
{
    ngx_uint_t                i, size;
    ngx_stream_sip_tnode_t  **buckets, **head, *node, *next;

    size = t->size * 2;

    buckets = ngx_calloc(size * sizeof(ngx_stream_sip_tnode_t *), t->log);
    if (buckets == NULL) {
        return;
    }

    for (i = 0; i < t->size; i++) {

        for (node = t->buckets[i]; node; node = next) {
            next = node->next;

            head = &buckets[node->key & (size - 1)];

            node->next = *head;
            node->prev = head;

            if (*head) {
                (*head)->prev = &node->next;
            }

            *head = node;
        }
    }

    ngx_free(t->buckets);

    t->buckets = buckets;
    t->size = size;
}
