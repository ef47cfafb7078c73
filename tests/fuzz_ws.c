
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * libFuzzer target of the WebSocket core.  The first two octets of the
 * input choose the largest message and how the rest is split; the rest
 * is read as a handshake and as a client's frame stream, each fed whole
 * and then in chunks cut where the input says, through a buffer of the
 * size a connection has.  Both feeds must say the same; every slice
 * must lie in the input, and every answer built must fit its buffer.
 */


#include "ngx_sip_ws.h"

#include <stdlib.h>
#include <stdio.h>


#define FUZZ_MAX_SIZE    4096
#define FUZZ_MAX_EVENTS  4200


#define fuzz_assert(cond)                                                    \
    if (!(cond)) {                                                           \
        fprintf(stderr, "fuzz_ws.c:%d: %s\n", __LINE__, #cond);              \
        __builtin_trap();                                                    \
    }


typedef struct {
    ngx_int_t     rc;
    ngx_uint_t    opcode;
    ngx_uint_t    code;
    size_t        len;
    uint32_t      hash;
} fuzz_event_t;


typedef struct {
    fuzz_event_t  ev[FUZZ_MAX_EVENTS];
    ngx_uint_t    n;
} fuzz_trace_t;


static fuzz_trace_t  fuzz_whole, fuzz_split;
static u_char        fuzz_buf[65536 + NGX_SIP_WS_MAX_HEADER];
static u_char        fuzz_in_buf[FUZZ_MAX_SIZE];


/* the chunk sizes: a small generator seeded by the input's first octets */

static size_t
fuzz_chunk(uint32_t *seed, size_t left)
{
    *seed = *seed * 1103515245 + 12345;

    return ngx_min(left, 1 + ((*seed >> 16) % 37));
}


static void
fuzz_handshake(u_char *data, size_t size, uint32_t seed)
{
    u_char                  out[NGX_SIP_WS_RESPONSE_LEN + 512], *p, *end;
    size_t                  n;
    ngx_int_t               rc, rc2;
    ngx_sip_ws_handshake_t  hs, hs2;

    end = data + size;

    ngx_sip_ws_handshake_init(&hs, 1024);
    rc = ngx_sip_ws_handshake(&hs, data, end);

    /* the same octets arriving in pieces */

    ngx_sip_ws_handshake_init(&hs2, 1024);
    rc2 = NGX_AGAIN;

    for (n = 0; n < size && rc2 == NGX_AGAIN; /* void */) {
        n += fuzz_chunk(&seed, size - n);
        rc2 = ngx_sip_ws_handshake(&hs2, data, data + n);
    }

    /* what was decided on a prefix is what the whole says */

    fuzz_assert(rc == rc2 || (rc2 == NGX_AGAIN && size == 0));

    if (rc == NGX_ERROR) {
        fuzz_assert(hs.status == hs2.status && hs.reason == hs2.reason);

        p = ngx_sip_ws_http_error(out, out + sizeof(out), hs.status,
                                  hs.reason);
        fuzz_assert(p != NULL);
    }

    if (rc != NGX_OK) {
        return;
    }

    fuzz_assert(hs.len == hs2.len && hs.len <= size && hs.len <= 1024);
    fuzz_assert(hs.key.len == 24 && hs.host.len > 0);
    fuzz_assert(hs.key.data >= data && hs.key.data + 24 <= data + hs.len);
    fuzz_assert(hs.host.data >= data
                && hs.host.data + hs.host.len <= data + hs.len);
    fuzz_assert(hs.origin.len == 0
                || (hs.origin.data >= data
                    && hs.origin.data + hs.origin.len <= data + hs.len));
    fuzz_assert(hs.uri.data >= data
                && hs.uri.data + hs.uri.len <= data + hs.len);

    p = ngx_sip_ws_handshake_response(out, &hs);
    fuzz_assert(p != NULL && p - out <= NGX_SIP_WS_RESPONSE_LEN);
}


static uint32_t
fuzz_hash(u_char *p, size_t len)
{
    uint32_t  h;

    h = 2166136261u;

    while (len--) {
        h = (h ^ *p++) * 16777619u;
    }

    return h;
}


/* read through a buffer of max + a header, as a connection would */

static void
fuzz_frames(u_char *data, size_t size, size_t max, uint32_t seed,
    ngx_uint_t split, fuzz_trace_t *t)
{
    u_char        *last, pong[2 + NGX_SIP_WS_MAX_CONTROL + 8];
    size_t         cap, room, k, n;
    ngx_int_t      rc;
    ngx_sip_ws_t   ws;
    fuzz_event_t  *ev;

    t->n = 0;
    ngx_sip_ws_init(&ws, max);

    cap = max + NGX_SIP_WS_MAX_HEADER;
    last = fuzz_buf;

    while (size) {
        room = cap - (last - fuzz_buf);

        /* with room for a header, the decoder always moves on */
        fuzz_assert(room > 0);

        k = split ? fuzz_chunk(&seed, size) : size;
        k = ngx_min(k, room);

        ngx_memcpy(last, data, k);
        last += k;
        data += k;
        size -= k;

        for ( ;; ) {
            rc = ngx_sip_ws_decode(&ws, fuzz_buf, last);

            fuzz_assert(ws.in <= (size_t) (last - fuzz_buf));
            fuzz_assert(ws.out <= ws.in && ws.out <= max);

            if (rc == NGX_AGAIN) {
                last = ngx_sip_ws_compact(&ws, fuzz_buf, last);
                break;
            }

            fuzz_assert(t->n < FUZZ_MAX_EVENTS);
            ev = &t->ev[t->n++];

            ngx_memzero(ev, sizeof(fuzz_event_t));
            ev->rc = rc;

            if (rc == NGX_ERROR) {
                ev->code = ws.code;
                fuzz_assert(ws.reason != NULL);
                fuzz_assert(ngx_sip_ws_close_frame(pong, ws.code, ws.reason)
                            - pong <= 2 + NGX_SIP_WS_MAX_CONTROL);
                return;
            }

            if (rc == NGX_DONE) {
                return;
            }

            fuzz_assert(rc == NGX_OK);

            ev->opcode = ws.opcode;
            ev->code = ws.code;
            ev->len = ws.payload.len;
            ev->hash = fuzz_hash(ws.payload.data, ws.payload.len);

            switch (ws.opcode) {

            case NGX_SIP_WS_TEXT:
                fuzz_assert(ngx_sip_ws_utf8(ws.payload.data,
                                            ws.payload.len));
                /* fall through */

            case NGX_SIP_WS_BINARY:
                fuzz_assert(ws.payload.data == fuzz_buf
                            && ws.payload.len <= max);
                break;

            case NGX_SIP_WS_PING:
                fuzz_assert(ws.payload.len <= NGX_SIP_WS_MAX_CONTROL);
                n = ngx_sip_ws_frame_header(pong, NGX_SIP_WS_PONG,
                                            ws.payload.len) - pong;
                fuzz_assert(n == 2);
                break;

            case NGX_SIP_WS_PONG:
                fuzz_assert(ws.payload.len <= NGX_SIP_WS_MAX_CONTROL);
                break;

            case NGX_SIP_WS_CLOSE:
                fuzz_assert(ws.payload.len <= NGX_SIP_WS_MAX_CONTROL - 2);
                fuzz_assert(ngx_sip_ws_utf8(ws.payload.data,
                                            ws.payload.len));
                break;

            default:
                fuzz_assert(0);
            }
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t      max;
    uint32_t    seed;
    ngx_uint_t  i;

    if (size < 2 || size > FUZZ_MAX_SIZE + 2) {
        return 0;
    }

    /* 1 to 65536 octets, small ones more often */

    max = 1 + ((data[0] & 0x80) ? (size_t) data[0] << 8 | data[1]
                                : data[0] & 0x7f);
    seed = (uint32_t) data[1] << 8 | data[0];

    data += 2;
    size -= 2;

    /* the decoder unmasks in place: each feed gets its own copy */

    ngx_memcpy(fuzz_in_buf, data, size);
    fuzz_handshake(fuzz_in_buf, size, seed);

    fuzz_frames((u_char *) data, size, max, seed, 0, &fuzz_whole);
    fuzz_frames((u_char *) data, size, max, seed, 1, &fuzz_split);

    fuzz_assert(fuzz_whole.n == fuzz_split.n);

    for (i = 0; i < fuzz_whole.n; i++) {
        fuzz_assert(fuzz_whole.ev[i].rc == fuzz_split.ev[i].rc
                    && fuzz_whole.ev[i].opcode == fuzz_split.ev[i].opcode
                    && fuzz_whole.ev[i].code == fuzz_split.ev[i].code
                    && fuzz_whole.ev[i].len == fuzz_split.ev[i].len
                    && fuzz_whole.ev[i].hash == fuzz_split.ev[i].hash);
    }

    return 0;
}
