
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
 * The route set of a request and the Record-Route values we put in
 * (RFC 3261 16.4, 16.6, RFC 5658): which leading Route values are ours,
 * strict routing, and our tokens: "nsip" binds a route we recorded to its
 * Call-ID, "nfl" names the TCP or TLS flow of one side of a dialog.
 */


static ngx_uint_t ngx_stream_sip_route_is_us(ngx_stream_session_t *s,
    ngx_sip_uri_t *uri);
static u_char *ngx_stream_sip_next_value(u_char *p, u_char *end);
static ngx_int_t ngx_stream_sip_proxy_route_set(ngx_stream_session_t *s,
    ngx_sip_msg_t *m, ngx_stream_sip_route_t *r);
static ngx_int_t ngx_stream_sip_strict_in(ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r);
static ngx_int_t ngx_stream_sip_route_value(ngx_stream_sip_route_t *r,
    ngx_uint_t index, ngx_sip_addr_t **addr);


/*
 * What the Route header says (RFC 3261 16.4): none, only us (a route
 * preloaded by a phone with us as outbound proxy: popped, then the
 * request is routed as if it had none), us and more but not as a route
 * we recorded (MORE), a route we recorded ourselves (DIALOG: its token
 * binds it to the Call-ID, so nobody can use us as a relay by making
 * up a route set), or somebody else (FOREIGN).
 */

ngx_int_t
ngx_stream_sip_proxy_route(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_sip_msg_t           *m;
    ngx_stream_sip_route_t  *r;

    r = &ctx->route;

    if (ctx->routed) {
        return r->kind;
    }

    m = &ctx->msg;

    ngx_memzero(r, sizeof(ngx_stream_sip_route_t));

    if (ngx_stream_sip_route_parse(m, s->connection->pool, r) != NGX_OK) {
        return NGX_ERROR;
    }

    r->kind = ngx_stream_sip_proxy_route_set(s, m, r);

    if (ngx_stream_sip_strict_in(m, r) == NGX_OK) {

        /* a strict router before us: the target is the last Route */

        r->strict = 1;
        r->ours = 0;
        r->flow = 0;
    }

    ctx->routed = 1;

    return r->kind;
}


/*
 * The Route values of a message, parsed once, in order.  A value that
 * does not parse ends its line: "good" counts the values before the
 * first such one, the ones after it in later lines are still there (the
 * last line matters to strict routing).
 */

ngx_int_t
ngx_stream_sip_route_parse(ngx_sip_msg_t *m, ngx_pool_t *pool,
    ngx_stream_sip_route_t *r)
{
    u_char                        *p, *end, *start;
    ngx_uint_t                     i;
    ngx_sip_header_t              *h;
    ngx_stream_sip_route_value_t  *v;

    r->values = NULL;
    r->nvalues = 0;
    r->good = 0;
    r->bad = 0;

    if (m->hdr[NGX_SIP_HDR_ROUTE] == NULL) {
        return NGX_OK;
    }

    r->values = ngx_array_create(pool, 2,
                                 sizeof(ngx_stream_sip_route_value_t));
    if (r->values == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_ROUTE) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            v = ngx_array_push(r->values);
            if (v == NULL) {
                return NGX_ERROR;
            }

            start = p;

            if (ngx_sip_parse_addr(&p, end, &v->addr, 1) != NGX_OK) {
                r->values->nelts--;
                r->bad = 1;
                break;
            }

            v->start = start;
            v->header = i + 1;

            if (!r->bad) {
                r->good++;
            }

            p = ngx_stream_sip_next_value(p, end);
        }
    }

    r->nvalues = r->values->nelts;

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
    u_char             token[16], ftoken[NGX_INT_T_LEN * 2 + 20];
    ngx_str_t          value, fl;
    ngx_uint_t         i, n, total, dialog, worker, number;
    ngx_sip_addr_t    *addr;
    ngx_connection_t  *c;

    r->ours = 0;
    r->flow = 0;
    r->worker = 0;
    r->transport = NGX_STREAM_SIP_UDP;
    r->ob = 0;

    if (m->hdr[NGX_SIP_HDR_ROUTE] == NULL) {
        return NGX_STREAM_SIP_ROUTE_NONE;
    }

    if (r->bad) {
        return NGX_STREAM_SIP_ROUTE_FOREIGN;
    }

    c = s->connection;

    ngx_stream_sip_proxy_route_token(&m->call_id, token);

    n = 0;
    total = 0;
    dialog = 0;

    for (i = 0; i < r->nvalues; i++) {
        addr = &((ngx_stream_sip_route_value_t *) r->values->elts)[i].addr;

        total++;

        if (n + 1 != total) {
            continue;
        }

        /*
         * A token of ours for another Call-ID is a route made up (or
         * of another dialog): it is not relayed along.
         */

        if (ngx_sip_uri_param(&addr->uri.params, "nsip", &value)
            == NGX_OK)
        {
            if (value.len != 16
                || ngx_memcmp(token, value.data, 16) != 0)
            {
                continue;
            }

            dialog = 1;

        } else if (!ngx_stream_sip_route_is_us(s, &addr->uri)) {
            continue;
        }

        n++;

        if (ngx_sip_uri_param(&addr->uri.params, "nfl", &fl) != NGX_OK
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
            r->transport = (addr->uri.scheme_id == NGX_SIP_SCHEME_SIPS)
                           ? NGX_STREAM_SIP_TLS
                           : ngx_sip_transport_id(&addr->uri.transport);
            r->ob = (ngx_sip_uri_param(&addr->uri.params, "ob", &value)
                     == NGX_OK);

            /* a WebSocket is a flow: reached on it alone */

            if (r->transport == NGX_STREAM_SIP_NONE
                || r->transport == NGX_STREAM_SIP_UDP)
            {
                r->flow = 0;
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

void
ngx_stream_sip_contact_flow(ngx_stream_session_t *s, ngx_sip_msg_t *m,
    ngx_stream_sip_route_t *r)
{
    ngx_uint_t                i;
    ngx_array_t              *targets;
    ngx_sip_addr_t           *addr;
    ngx_stream_sip_target_t  *t;

    if (ngx_stream_sip_route_value(r, r->ours, &addr) != NGX_DECLINED
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

ngx_int_t
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
 * RFC 3261 16.4: the Request-URI is a Record-Route of ours (a strict
 * router sent it): the real Request-URI is the last Route value, which
 * goes.  "cut" (its line) and "cut_at": where that value starts.
 */

static ngx_int_t
ngx_stream_sip_strict_in(ngx_sip_msg_t *m, ngx_stream_sip_route_t *r)
{
    u_char                        token[16];
    ngx_str_t                     value;
    ngx_uint_t                    i, k;
    ngx_stream_sip_route_value_t  *v;

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

    ngx_str_null(&r->ruri);

    v = r->values->elts;

    for (k = 0; k < r->nvalues; k++) {
        if (v[k].header == i) {
            r->ruri = v[k].addr.uri_text;
            r->cut_at = v[k].start;
        }
    }

    if (r->ruri.len == 0) {
        return NGX_DECLINED;
    }

    r->cut = i;

    return NGX_OK;
}

/*
 * What strict routing does to a request we forward: after a strict
 * router (r->strict), the real Request-URI back from the last Route
 * value; before one (RFC 3261 16.6 step 7: "next" when the next hop is
 * the next Route value, and that value has no "lr"), its URI as the
 * Request-URI and the Request-URI last into the Route.  Our own Route
 * values go in either case.
 */

void
ngx_stream_sip_route_rewrite(ngx_sip_msg_t *m, ngx_stream_sip_route_t *r,
    ngx_uint_t next, ngx_sip_forward_t *f)
{
    ngx_sip_addr_t  *addr;

    f->pop_route = r->ours;

    if (r->strict) {
        f->ruri = r->ruri;
        f->cut = r->cut;
        f->cut_at = r->cut_at;

    } else if (next
               && ngx_stream_sip_route_value(r, r->ours, &addr) == NGX_OK
               && !addr->uri.lr)
    {
        f->pop_route = r->ours + 1;
        f->ruri = addr->uri_text;
        f->append_route = m->request_uri;
    }
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


/*
 * The Route value at "index" (from 0), over all Route lines; NGX_ERROR
 * when one before it does not parse.
 */

static ngx_int_t
ngx_stream_sip_route_value(ngx_stream_sip_route_t *r, ngx_uint_t index,
    ngx_sip_addr_t **addr)
{
    if (index < r->good) {
        *addr = &((ngx_stream_sip_route_value_t *) r->values->elts)[index]
                                                                   .addr;
        return NGX_OK;
    }

    return r->bad ? NGX_ERROR : NGX_DECLINED;
}

/*
 * The worker holding the flow that a Route value of ours names ("nfl"),
 * for the owner of a request not yet validated (so "call_id" is the raw
 * header).  An nfl we cannot prove is as if it were not there.
 */

ngx_int_t
ngx_stream_sip_route_flow_worker(ngx_sip_msg_t *m, ngx_str_t *call_id,
    ngx_uint_t *worker)
{
    u_char            *p, *end;
    ngx_str_t          fl;
    ngx_uint_t         i;
    ngx_sip_addr_t     addr;
    ngx_sip_header_t  *h;

    for (i = 0; i < m->nheaders; i++) {
        h = &m->headers[i];

        if (h->id != NGX_SIP_HDR_ROUTE) {
            continue;
        }

        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            if (ngx_sip_parse_addr(&p, end, &addr, 1) != NGX_OK) {
                break;
            }

            p = ngx_stream_sip_next_value(p, end);

            if (ngx_sip_uri_param(&addr.uri.params, "nfl", &fl) == NGX_OK
                && ngx_stream_sip_flow_verify(call_id, fl.data,
                                              fl.data + fl.len, worker)
                   == NGX_OK)
            {
                return NGX_OK;
            }
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

void
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


/*
 * In a dialog: the next Route after ours, or else the Request-URI
 * (RFC 3261 16.4, 16.5).  Hosts must be IP addresses: DNS comes with
 * the resolver.
 */

ngx_int_t
ngx_stream_sip_route_hop(ngx_sip_msg_t *m, ngx_stream_sip_route_t *r,
    ngx_uint_t ours, ngx_sockaddr_t *sa, socklen_t *socklen,
    ngx_uint_t *transport)
{
    ngx_sip_addr_t  *addr;

    if (ngx_stream_sip_route_value(r, ours, &addr) == NGX_OK) {
        return ngx_stream_sip_uri_sockaddr(&addr->uri, sa, socklen,
                                           transport);
    }

    return ngx_stream_sip_uri_sockaddr(&m->ruri, sa, socklen, transport);
}


/* ";nsip=" token of our Record-Route: it binds the route to the Call-ID */

void
ngx_stream_sip_proxy_route_token(ngx_str_t *call_id, u_char *buf)
{
    uint64_t  tag;

    tag = ngx_sip_siphash(ngx_stream_sip_key, call_id->data, call_id->len);

    (void) ngx_sip_write_hex(buf, tag, 16);
}
