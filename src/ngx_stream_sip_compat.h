
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_STREAM_SIP_COMPAT_H_INCLUDED_
#define _NGX_STREAM_SIP_COMPAT_H_INCLUDED_


/*
 * What differs between the nginx versions the module builds against
 * (1.22 to 1.31), in one place: the rest of the tree uses these names.
 */


/*
 * nginx 1.25.5 added stream virtual servers: a listen holds several
 * servers, chosen by the TLS server name (ssl_servername, ssl_preread);
 * the configuration of a listen's address is that of its default server,
 * the one a session starts with and the only one a datagram ever has.
 */

#if (nginx_version >= 1025005)

#define ngx_stream_sip_addr_conf_ctx(addr_conf)                              \
    ((addr_conf)->default_server->ctx)

#define ngx_stream_sip_addr_conf_set_server(addr_conf, cscf)                 \
    ((addr_conf)->default_server = (cscf),                                   \
     (addr_conf)->virtual_names = NULL)

#else

#define ngx_stream_sip_addr_conf_ctx(addr_conf)                              \
    ((addr_conf)->ctx)

#define ngx_stream_sip_addr_conf_set_server(addr_conf, cscf)                 \
    (addr_conf)->ctx = (cscf)->ctx

#endif


#endif /* _NGX_STREAM_SIP_COMPAT_H_INCLUDED_ */
