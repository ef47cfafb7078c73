
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_SIP_WS_H_INCLUDED_
#define _NGX_SIP_WS_H_INCLUDED_


#include "ngx_sip.h"


/*
 * The WebSocket protocol (RFC 6455) as SIP uses it (RFC 7118): the
 * opening handshake of a client, the frames it sends, the frames we send.
 * No I/O and no allocation: the caller owns the buffers, as it does for
 * SIP over TCP.
 */


/* the Sec-WebSocket-Accept value: base64 of a SHA-1 */
#define NGX_SIP_WS_ACCEPT_LEN       28

/* the largest frame header: 2 + 8 of length + 4 of mask */
#define NGX_SIP_WS_MAX_HEADER       14

/* a control frame's payload (RFC 6455 5.5) */
#define NGX_SIP_WS_MAX_CONTROL      125

/* the space ngx_sip_ws_handshake_response() needs, whatever the request */
#define NGX_SIP_WS_RESPONSE_LEN     256


/* opcodes (RFC 6455 5.2) */
#define NGX_SIP_WS_CONT             0x0
#define NGX_SIP_WS_TEXT             0x1
#define NGX_SIP_WS_BINARY           0x2
#define NGX_SIP_WS_CLOSE            0x8
#define NGX_SIP_WS_PING             0x9
#define NGX_SIP_WS_PONG             0xa


/* close codes (RFC 6455 7.4.1) */
#define NGX_SIP_WS_NORMAL           1000
#define NGX_SIP_WS_GOING_AWAY       1001
#define NGX_SIP_WS_PROTOCOL_ERROR   1002
#define NGX_SIP_WS_NO_STATUS        1005
#define NGX_SIP_WS_INVALID_DATA     1007
#define NGX_SIP_WS_TOO_BIG          1009
#define NGX_SIP_WS_INTERNAL_ERROR   1011


typedef struct {
    /* set by the caller */
    size_t                      max;        /* the longest request taken */

    /* the outcome */
    ngx_uint_t                  status;     /* HTTP status of a refusal */
    char                       *reason;     /* what was wrong */
    size_t                      len;        /* the request's octets */

    ngx_str_t                   uri;
    ngx_str_t                   host;
    ngx_str_t                   origin;     /* empty: none sent */
    ngx_str_t                   key;
    ngx_str_t                   version;

    /* where the scan is */
    size_t                      pos;        /* start of the next line */
    size_t                      scan;       /* its octets looked at */
    ngx_uint_t                  state;

    unsigned                    upgrade:1;
    unsigned                    connection:1;
    unsigned                    sip:1;
    unsigned                    body:1;
    unsigned                    dup:1;
} ngx_sip_ws_handshake_t;


typedef struct {
    /* set by the caller */
    size_t                      max;        /* the largest message taken */

    /* the event of NGX_OK */
    ngx_uint_t                  opcode;     /* TEXT, BINARY, PING, PONG,
                                               CLOSE */
    ngx_str_t                   payload;    /* message or control data */
    ngx_uint_t                  code;       /* CLOSE: the peer's code, or
                                               1005; NGX_ERROR: ours */
    char                       *reason;     /* NGX_ERROR: what was wrong */

    /* where the decoding is: offsets into the caller's buffer */
    size_t                      in;         /* first octet not decoded */
    size_t                      out;        /* end of the message so far */

    uint64_t                    left;       /* of the frame's payload */
    ngx_uint_t                  state;
    ngx_uint_t                  hlen;       /* of hdr[] */
    ngx_uint_t                  need;       /* header octets expected */
    ngx_uint_t                  moff;       /* payload octets mod 4 */
    ngx_uint_t                  utf8;       /* validator state */
    ngx_uint_t                  frame;      /* opcode of this frame */
    ngx_uint_t                  message;    /* of the message in progress */
    size_t                      clen;       /* of ctl[] */

    u_char                      hdr[NGX_SIP_WS_MAX_HEADER];
    u_char                      mask[4];
    u_char                      ctl[NGX_SIP_WS_MAX_CONTROL];

    unsigned                    fin:1;
    unsigned                    delivered:1;
} ngx_sip_ws_t;


void ngx_sip_ws_handshake_init(ngx_sip_ws_handshake_t *hs, size_t max);
ngx_int_t ngx_sip_ws_handshake(ngx_sip_ws_handshake_t *hs, u_char *start,
    u_char *last);
ngx_int_t ngx_sip_ws_accept(ngx_str_t *key, u_char *accept);
u_char *ngx_sip_ws_handshake_response(u_char *p, ngx_sip_ws_handshake_t *hs);
u_char *ngx_sip_ws_http_error(u_char *p, u_char *last, ngx_uint_t status,
    char *reason);

void ngx_sip_ws_init(ngx_sip_ws_t *ws, size_t max);
ngx_int_t ngx_sip_ws_decode(ngx_sip_ws_t *ws, u_char *buf, u_char *last);
u_char *ngx_sip_ws_compact(ngx_sip_ws_t *ws, u_char *buf, u_char *last);

u_char *ngx_sip_ws_frame_header(u_char *p, ngx_uint_t opcode, size_t len);
u_char *ngx_sip_ws_close_frame(u_char *p, ngx_uint_t code, char *reason);
ngx_uint_t ngx_sip_ws_utf8(u_char *p, size_t len);


#endif /* _NGX_SIP_WS_H_INCLUDED_ */
