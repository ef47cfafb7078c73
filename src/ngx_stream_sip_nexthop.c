
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
 * Where a request goes next and how: sip_pass (an address, an upstream {}
 * or a variable), the address of a URI or of a registered contact, our
 * listening sockets of each transport and our address on them, and the
 * senders to the caller, to a peer and to a flow in any worker.
 */


static ngx_stream_sip_srv_conf_t *ngx_stream_sip_listening_conf(
    ngx_listening_t *ls);
static ngx_uint_t ngx_stream_sip_listening_ssl(ngx_listening_t *ls);


/*
 * A next hop over TCP or TLS: the connection there is, or a new one, with
 * the server's sip_ssl settings; its number, or 0.
 */

ngx_uint_t
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

ngx_int_t
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
 * Our address on TCP or TLS, for a Via or a Record-Route: a listen of
 * that transport ("prefer" if it is one), of the family of "local" if
 * there is one; sip_advertise names the host (its port, if it has one,
 * is a UDP one), and a wildcard listen the address "local" came to.
 * NGX_DECLINED: we listen on no such transport.
 */

ngx_int_t
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
 * sip_pass: an upstream (named, or made of "host:port" at configuration
 * time), or, with variables, whatever they give: the name of an
 * upstream {} block or an address.  NGX_DECLINED: no sip_pass here.
 */

ngx_int_t
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


/* a registered contact: through its Path if it came with one (RFC 3327) */

ngx_int_t
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


ngx_int_t
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

ngx_int_t
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


/*
 * The UDP socket requests leave from: the one of the datagram, or, for
 * a request that came by TCP or TLS, a UDP listen of the same port (of
 * any port) and address family.
 */

ngx_listening_t *
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

ngx_uint_t
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

ngx_int_t
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


void
ngx_stream_sip_to_client(ngx_stream_sip_stx_t *stx, ngx_str_t *msg)
{
    if (stx->client_flow) {
        ngx_stream_sip_to_flow(stx->client_flow, ngx_worker, msg, stx->log);
        return;
    }

    ngx_stream_sip_udp_send(stx->ls, stx->log, msg, &stx->client,
                        stx->client_len);
}


void
ngx_stream_sip_to_peer(ngx_stream_sip_branch_t *b, ngx_str_t *msg)
{
    if (b->flow) {
        ngx_stream_sip_to_flow(b->flow, b->flow_worker, msg, b->stx->log);
        return;
    }

    ngx_stream_sip_udp_send(b->ls, b->stx->log, msg, &b->peer, b->peer_len);
}


/*
 * A flow of another worker: that worker writes it (and tells us when
 * the flow is gone, ngx_stream_sip_channel.c).
 */

void
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


void
ngx_stream_sip_udp_send(ngx_listening_t *ls, ngx_log_t *log, ngx_str_t *msg,
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
