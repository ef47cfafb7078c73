
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * The transport table: lookups by id and by name, both spellings, and
 * the defaults RFC 3261 and RFC 7118 give.
 */


#include "ngx_sip.h"
#include "ngx_sip_test.h"


static ngx_uint_t
lookup(const char *name)
{
    ngx_str_t  s;

    s.data = (u_char *) name;
    s.len = strlen(name);

    return ngx_sip_transport_id(&s);
}


int
main(void)
{
    ngx_uint_t            id;
    ngx_sip_transport_t  *t;

    static struct {
        const char  *via;
        const char  *param;
        ngx_uint_t   id;
        unsigned     reliable;
        unsigned     secure;
        in_port_t    port;
    } want[] = {
        { "UDP", "udp", NGX_SIP_TRANSPORT_UDP, 0, 0, 5060 },
        { "TCP", "tcp", NGX_SIP_TRANSPORT_TCP, 1, 0, 5060 },
        { "TLS", "tls", NGX_SIP_TRANSPORT_TLS, 1, 1, 5061 },
        { "WS", "ws", NGX_SIP_TRANSPORT_WS, 1, 0, 80 },
        { "WSS", "wss", NGX_SIP_TRANSPORT_WSS, 1, 1, 443 },
    };

    /* the registrar's state file holds these numbers */

    NGX_SIP_CHECK(NGX_SIP_TRANSPORT_UDP == 0, "udp id");
    NGX_SIP_CHECK(NGX_SIP_TRANSPORT_TCP == 1, "tcp id");
    NGX_SIP_CHECK(NGX_SIP_TRANSPORT_TLS == 2, "tls id");

    for (id = 0; id < sizeof(want) / sizeof(want[0]); id++) {
        t = ngx_sip_transport(want[id].id);

        NGX_SIP_CHECK(t != NULL, "%s by id", want[id].via);

        if (t == NULL) {
            continue;
        }

        NGX_SIP_CHECK(t->id == want[id].id, "%s id", want[id].via);
        NGX_SIP_CHECK(t->via.len == strlen(want[id].via)
                      && memcmp(t->via.data, want[id].via, t->via.len) == 0,
                      "%s via", want[id].via);
        NGX_SIP_CHECK(t->param.len == strlen(want[id].param)
                      && memcmp(t->param.data, want[id].param, t->param.len)
                         == 0,
                      "%s param", want[id].via);
        NGX_SIP_CHECK(t->reliable == want[id].reliable, "%s reliable",
                      want[id].via);
        NGX_SIP_CHECK(t->secure == want[id].secure, "%s secure",
                      want[id].via);
        NGX_SIP_CHECK(t->port == want[id].port, "%s port", want[id].via);
        NGX_SIP_CHECK(ngx_sip_transport_port(want[id].id) == want[id].port,
                      "%s port()", want[id].via);

        NGX_SIP_CHECK(lookup(want[id].via) == want[id].id, "%s by Via token",
                      want[id].via);
        NGX_SIP_CHECK(lookup(want[id].param) == want[id].id,
                      "%s by transport=", want[id].via);
    }

    NGX_SIP_CHECK(lookup("Tls") == NGX_SIP_TRANSPORT_TLS, "mixed case");
    NGX_SIP_CHECK(lookup("wSs") == NGX_SIP_TRANSPORT_WSS, "mixed case wss");

    /* near misses: prefixes, longer names, empty, unknown */

    NGX_SIP_CHECK(lookup("") == NGX_SIP_TRANSPORT_NONE, "empty");
    NGX_SIP_CHECK(lookup("W") == NGX_SIP_TRANSPORT_NONE, "W");
    NGX_SIP_CHECK(lookup("UD") == NGX_SIP_TRANSPORT_NONE, "UD");
    NGX_SIP_CHECK(lookup("UDPX") == NGX_SIP_TRANSPORT_NONE, "UDPX");
    NGX_SIP_CHECK(lookup("WSSS") == NGX_SIP_TRANSPORT_NONE, "WSSS");
    NGX_SIP_CHECK(lookup("SCTP") == NGX_SIP_TRANSPORT_NONE, "SCTP");
    NGX_SIP_CHECK(lookup("TLS-SCTP") == NGX_SIP_TRANSPORT_NONE, "TLS-SCTP");

    NGX_SIP_CHECK(ngx_sip_transport(NGX_SIP_TRANSPORT_NONE) == NULL,
                  "none by id");
    NGX_SIP_CHECK(ngx_sip_transport(1000) == NULL, "out of range");
    NGX_SIP_CHECK(ngx_sip_transport_port(NGX_SIP_TRANSPORT_NONE) == 5060,
                  "none port");

    return ngx_sip_test_done("test_transport");
}
