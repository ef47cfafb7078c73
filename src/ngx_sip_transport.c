
/*
 * Copyright (C) ngx_sip authors
 */


#include "ngx_sip.h"


/*
 * The transports SIP names, in one table: the Via sent-protocol token
 * (RFC 3261 18.2.2, RFC 7118 5.1), the URI "transport=" value (RFC 3261
 * 19.1.1, RFC 7118 5.2), whether it is reliable (no retransmissions,
 * RFC 3261 17.1.1.2) and secure (sips:), and the port a URI or Via
 * without one means (RFC 3261 19.1.2, RFC 7118 5.2).  The ids are the
 * table's indexes; UDP, TCP and TLS keep the numbers the registrar's
 * state file has always written.
 */


static ngx_sip_transport_t  ngx_sip_transports[] = {

    { NGX_SIP_TRANSPORT_UDP, ngx_string("UDP"), ngx_string("udp"),
      0, 0, 5060 },

    { NGX_SIP_TRANSPORT_TCP, ngx_string("TCP"), ngx_string("tcp"),
      1, 0, 5060 },

    { NGX_SIP_TRANSPORT_TLS, ngx_string("TLS"), ngx_string("tls"),
      1, 1, 5061 },

    { NGX_SIP_TRANSPORT_WS, ngx_string("WS"), ngx_string("ws"),
      1, 0, 80 },

    { NGX_SIP_TRANSPORT_WSS, ngx_string("WSS"), ngx_string("wss"),
      1, 1, 443 },
};


ngx_sip_transport_t *
ngx_sip_transport(ngx_uint_t id)
{
    if (id >= NGX_SIP_TRANSPORT_NONE) {
        return NULL;
    }

    return &ngx_sip_transports[id];
}


/* a Via token or a URI "transport=" value, case-insensitively */

ngx_uint_t
ngx_sip_transport_id(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_SIP_TRANSPORT_NONE; i++) {

        if (name->len == ngx_sip_transports[i].via.len
            && ngx_strncasecmp(name->data, ngx_sip_transports[i].via.data,
                               name->len)
               == 0)
        {
            return i;
        }
    }

    return NGX_SIP_TRANSPORT_NONE;
}


/* the port of a transport, SIP's 5060 when the transport is unknown */

in_port_t
ngx_sip_transport_port(ngx_uint_t id)
{
    return id < NGX_SIP_TRANSPORT_NONE ? ngx_sip_transports[id].port : 5060;
}
