
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Flows: the TCP and TLS connections of this worker by their connection
 * number, so that a message can go back on the connection a peer opened
 * (responses to its requests, requests to it along the route set), and
 * so that a reference to a connection never outlives it: whoever needs
 * one keeps its number and looks it up when it sends.  Connection
 * numbers come from a counter shared by all workers: a number names one
 * connection of one worker, and "nfl" parameters of our Record-Route
 * carry both (see ngx_stream_sip_proxy.c).
 */


typedef struct {
    ngx_rbtree_node_t        node;       /* key: connection number */
    ngx_stream_session_t    *session;
} ngx_stream_sip_flow_t;


static ngx_rbtree_t       ngx_stream_sip_flows;
static ngx_rbtree_node_t  ngx_stream_sip_flows_sentinel;
static ngx_uint_t         ngx_stream_sip_flows_ready;


ngx_int_t
ngx_stream_sip_flow_add(ngx_stream_session_t *s)
{
    ngx_stream_sip_flow_t  *f;

    if (!ngx_stream_sip_flows_ready) {
        ngx_rbtree_init(&ngx_stream_sip_flows,
                        &ngx_stream_sip_flows_sentinel,
                        ngx_rbtree_insert_value);
        ngx_stream_sip_flows_ready = 1;
    }

    f = ngx_pcalloc(s->connection->pool, sizeof(ngx_stream_sip_flow_t));
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->node.key = s->connection->number;
    f->session = s;

    ngx_rbtree_insert(&ngx_stream_sip_flows, &f->node);

    return NGX_OK;
}


void
ngx_stream_sip_flow_delete(ngx_stream_session_t *s)
{
    ngx_rbtree_node_t  *node;

    node = ngx_stream_sip_flow_node(s->connection->number);

    if (node) {
        ngx_rbtree_delete(&ngx_stream_sip_flows, node);
    }
}


ngx_rbtree_node_t *
ngx_stream_sip_flow_node(ngx_uint_t number)
{
    ngx_rbtree_node_t  *node, *sentinel;

    if (!ngx_stream_sip_flows_ready) {
        return NULL;
    }

    node = ngx_stream_sip_flows.root;
    sentinel = ngx_stream_sip_flows.sentinel;

    while (node != sentinel) {

        if (number == node->key) {
            return node;
        }

        node = (number < node->key) ? node->left : node->right;
    }

    return NULL;
}


ngx_stream_session_t *
ngx_stream_sip_flow_find(ngx_uint_t number)
{
    ngx_rbtree_node_t  *node;

    node = ngx_stream_sip_flow_node(number);

    return node ? ((ngx_stream_sip_flow_t *) node)->session : NULL;
}
