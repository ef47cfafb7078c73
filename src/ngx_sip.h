
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_SIP_H_INCLUDED_
#define _NGX_SIP_H_INCLUDED_


/*
 * The SIP core (parser, message building) uses nothing from nginx but its
 * basic types and string helpers, so that tests/ can build it alone with
 * a tiny shim instead of a whole nginx tree.
 */

#ifdef NGX_SIP_STANDALONE
#include "ngx_sip_standalone.h"
#else
#include <ngx_config.h>
#include <ngx_core.h>
#endif

#if (defined __SSE2__ && !defined NGX_SIP_NO_SSE2)
#include <emmintrin.h>
#define NGX_SIP_SSE2                1
#endif


#define NGX_SIP_VERSION_20          2000

#define NGX_SIP_MAX_HEADERS         256


/* results of ngx_sip_frame() and ngx_sip_parse_message() */
#define NGX_SIP_OK                  0
#define NGX_SIP_AGAIN               -2
#define NGX_SIP_ERROR               -1


typedef enum {
    NGX_SIP_UNKNOWN = 0,
    NGX_SIP_INVITE,
    NGX_SIP_ACK,
    NGX_SIP_BYE,
    NGX_SIP_CANCEL,
    NGX_SIP_OPTIONS,
    NGX_SIP_REGISTER,
    NGX_SIP_PRACK,
    NGX_SIP_SUBSCRIBE,
    NGX_SIP_NOTIFY,
    NGX_SIP_PUBLISH,
    NGX_SIP_INFO,
    NGX_SIP_REFER,
    NGX_SIP_MESSAGE,
    NGX_SIP_UPDATE
} ngx_sip_method_e;


/*
 * Header ids; the order is the order of ngx_sip_header_names[] in
 * ngx_sip_parse.c.  NGX_SIP_HDR_OTHER is every header we do not look into;
 * it is kept byte for byte like all the others.
 */
typedef enum {
    NGX_SIP_HDR_OTHER = 0,
    NGX_SIP_HDR_VIA,
    NGX_SIP_HDR_FROM,
    NGX_SIP_HDR_TO,
    NGX_SIP_HDR_CALL_ID,
    NGX_SIP_HDR_CSEQ,
    NGX_SIP_HDR_MAX_FORWARDS,
    NGX_SIP_HDR_CONTACT,
    NGX_SIP_HDR_CONTENT_LENGTH,
    NGX_SIP_HDR_CONTENT_TYPE,
    NGX_SIP_HDR_CONTENT_ENCODING,
    NGX_SIP_HDR_EXPIRES,
    NGX_SIP_HDR_MIN_EXPIRES,
    NGX_SIP_HDR_ROUTE,
    NGX_SIP_HDR_RECORD_ROUTE,
    NGX_SIP_HDR_REQUIRE,
    NGX_SIP_HDR_PROXY_REQUIRE,
    NGX_SIP_HDR_SUPPORTED,
    NGX_SIP_HDR_UNSUPPORTED,
    NGX_SIP_HDR_ALLOW,
    NGX_SIP_HDR_ACCEPT,
    NGX_SIP_HDR_USER_AGENT,
    NGX_SIP_HDR_SERVER,
    NGX_SIP_HDR_AUTHORIZATION,
    NGX_SIP_HDR_PROXY_AUTHORIZATION,
    NGX_SIP_HDR_WWW_AUTHENTICATE,
    NGX_SIP_HDR_PROXY_AUTHENTICATE,
    NGX_SIP_HDR_PATH,
    NGX_SIP_HDR_SUBJECT,
    NGX_SIP_HDR_EVENT,
    NGX_SIP_HDR_ALLOW_EVENTS,
    NGX_SIP_HDR_REFER_TO,
    NGX_SIP_HDR_REFERRED_BY,
    NGX_SIP_HDR_SESSION_EXPIRES,
    NGX_SIP_HDR_IDENTITY,
    NGX_SIP_HDR_ACCEPT_CONTACT,
    NGX_SIP_HDR_REJECT_CONTACT,
    NGX_SIP_HDR_REQUEST_DISPOSITION,
    NGX_SIP_HDR_RETRY_AFTER,
    NGX_SIP_HDR_DATE,
    NGX_SIP_HDR_TIMESTAMP,
    NGX_SIP_HDR_MAX
} ngx_sip_header_e;


typedef struct {
    ngx_str_t                   name;      /* as on the wire */
    ngx_str_t                   value;     /* trimmed, folds kept as LWS */
    u_char                     *start;     /* first octet of the line */
    u_char                     *end;       /* after the line's CRLF */
    ngx_uint_t                  id;        /* ngx_sip_header_e */
} ngx_sip_header_t;


typedef enum {
    NGX_SIP_SCHEME_OTHER = 0,
    NGX_SIP_SCHEME_SIP,
    NGX_SIP_SCHEME_SIPS,
    NGX_SIP_SCHEME_TEL
} ngx_sip_scheme_e;


typedef enum {
    NGX_SIP_HOST_NAME = 0,
    NGX_SIP_HOST_IPV4,
    NGX_SIP_HOST_IPV6
} ngx_sip_host_e;


typedef struct {
    ngx_str_t                   text;      /* the whole URI */
    ngx_str_t                   scheme;
    ngx_str_t                   user;      /* still %-escaped */
    ngx_str_t                   password;
    ngx_str_t                   host;      /* IPv6 with its brackets */
    ngx_str_t                   port_text;
    ngx_str_t                   params;    /* from the first ';' on */
    ngx_str_t                   headers;   /* after '?' */
    ngx_str_t                   transport; /* uri-parameters we act on */
    ngx_str_t                   maddr;
    ngx_str_t                   user_param;
    ngx_str_t                   opaque;    /* tel: and unknown schemes */
    ngx_uint_t                  scheme_id; /* ngx_sip_scheme_e */
    ngx_uint_t                  host_type; /* ngx_sip_host_e */
    in_port_t                   port;      /* 0 when absent */
    unsigned                    lr:1;
} ngx_sip_uri_t;


typedef struct {
    ngx_str_t                   text;      /* the whole via-parm */
    ngx_str_t                   protocol;  /* "SIP/2.0" */
    ngx_str_t                   transport; /* "UDP", "TCP", "TLS" ... */
    ngx_str_t                   host;      /* IPv6 with its brackets */
    ngx_str_t                   port_text;
    ngx_str_t                   params;    /* from the first ';' on */
    ngx_str_t                   branch;
    ngx_str_t                   received;
    ngx_str_t                   rport_text;
    ngx_str_t                   maddr;
    ngx_str_t                   ttl;
    ngx_uint_t                  host_type;
    in_port_t                   port;      /* 0 when absent */
    in_port_t                   rport;     /* 0 when absent or empty */
    unsigned                    has_rport:1;
} ngx_sip_via_t;


/*
 * name-addr or addr-spec with params: From, To, Contact, Route ...;
 * ngx_sip_parse_addr() clears the fields one by one: a new field too
 */
typedef struct {
    ngx_str_t                   text;      /* the whole value */
    ngx_str_t                   display;   /* with quotes if quoted */
    ngx_str_t                   uri_text;  /* inside <> or the addr-spec */
    ngx_str_t                   params;    /* header params, from ';' on */
    ngx_str_t                   tag;
    ngx_str_t                   expires_text;
    ngx_str_t                   q_text;
    ngx_sip_uri_t               uri;
    ngx_uint_t                  q;         /* 0..1000, 1000 when absent */
    uint32_t                    expires;
    unsigned                    has_expires:1;
    unsigned                    has_q:1;
    unsigned                    angle:1;   /* was in <> */
    unsigned                    star:1;    /* Contact: * */
} ngx_sip_addr_t;


typedef struct {
    uint32_t                    number;
    ngx_str_t                   method;
    ngx_uint_t                  method_id;
} ngx_sip_cseq_t;


typedef struct {
    /* the whole message: start line to the end of the body */
    u_char                     *start;
    u_char                     *end;

    u_char                     *headers_end;  /* after the empty line */

    unsigned                    request:1;
    unsigned                    has_content_length:1;

    /* request line */
    ngx_str_t                   method;
    ngx_uint_t                  method_id;    /* ngx_sip_method_e */
    ngx_str_t                   request_uri;

    /* status line */
    ngx_uint_t                  status;
    ngx_str_t                   reason;

    ngx_str_t                   version;      /* "SIP/2.0" as sent */
    ngx_uint_t                  version_n;    /* major * 1000 + minor */

    ngx_sip_header_t           *headers;
    ngx_uint_t                  nheaders;
    ngx_uint_t                  max_headers;

    /* first header of each id, and how many lines carry it */
    ngx_sip_header_t           *hdr[NGX_SIP_HDR_MAX];
    u_char                      count[NGX_SIP_HDR_MAX];

    size_t                      content_length;
    ngx_str_t                   body;

    /* parsed by ngx_sip_msg_validate() for everyone after it */
    ngx_sip_uri_t               ruri;
    ngx_sip_via_t               via;          /* the top Via */
    ngx_sip_addr_t              from;
    ngx_sip_addr_t              to;
    ngx_sip_cseq_t              cseq;
    ngx_str_t                   call_id;
    ngx_int_t                   max_forwards; /* -1 when absent */
} ngx_sip_msg_t;


/*
 * Framing of stream transports (TCP, TLS).  Resumable: it is called again
 * with the same state as more octets arrive, [start,last) being all the
 * unconsumed octets of the stream, and never rescans octets it has seen.
 *
 * The offsets are from "start", so the caller may move the octets in
 * memory between calls.  On NGX_SIP_OK the message is the message_len
 * octets at start + crlf; the next one begins after it, with a new
 * ngx_sip_frame_init().
 *
 * CRs and LFs before a message are skipped (RFC 3261 7.5): "crlf" counts
 * the octets, "pings" the RFC 5626 3.5.1 double-CRLF keepalives among
 * them (each second line end).  The caller answers every new ping with
 * one CRLF "pong":
 *
 *     pings = f->pings;
 *     rc = ngx_sip_frame(f, ...);
 *     while (pings++ < f->pings) { send CRLF }
 *
 * A peer that only sends keepalives never completes a message; while
 * "header_len" is 0 and "scanned" equals "crlf", the caller may drop the
 * skipped octets: start += crlf, scanned -= crlf, crlf = 0.
 */

typedef struct {
    ngx_uint_t                  state;
    size_t                      scanned;      /* octets of [start,last) */
    size_t                      header_len;   /* from start to after the
                                                 empty line, crlf included */
    size_t                      message_len;  /* from start + crlf: headers
                                                 plus body */
    ngx_uint_t                  crlf;         /* octets skipped at start */
    ngx_uint_t                  pings;        /* RFC 5626 pings seen */

    /* private to the framer */
    size_t                      content_length;
    size_t                      value;
    ngx_uint_t                  index;
    ngx_uint_t                  lf;
    unsigned                    has_content_length:1;
    unsigned                    in_content_length:1;
    unsigned                    digits:1;
} ngx_sip_frame_t;


/*
 * An error to answer with: status and a reason phrase saying why.  Status
 * 0 from ngx_sip_parse_message() is an empty (keepalive) datagram: not an
 * error, nothing to answer.  "header" may point into "header_buf", so an
 * ngx_sip_error_t is used where it was filled, never copied.
 */

#define NGX_SIP_ERROR_HEADER_LEN    256

typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   reason;
    ngx_str_t                   header;   /* extra header line, no CRLF */
    u_char                      header_buf[NGX_SIP_ERROR_HEADER_LEN];
} ngx_sip_error_t;


/*
 * Transports (ngx_sip_transport.c): the ids index the table; UDP, TCP and
 * TLS are the numbers the registrar's state file holds.
 */

#define NGX_SIP_TRANSPORT_UDP       0
#define NGX_SIP_TRANSPORT_TCP       1
#define NGX_SIP_TRANSPORT_TLS       2
#define NGX_SIP_TRANSPORT_WS        3
#define NGX_SIP_TRANSPORT_WSS       4
#define NGX_SIP_TRANSPORT_NONE      5   /* unknown, or no transport */

typedef struct {
    ngx_uint_t                  id;
    ngx_str_t                   via;       /* Via token: "UDP", "WSS" */
    ngx_str_t                   param;     /* URI transport=: "udp", "wss" */
    unsigned                    reliable:1;
    unsigned                    secure:1;
    in_port_t                   port;      /* the default */
} ngx_sip_transport_t;


/* what ngx_sip_write_response() puts into a response to a request */

#define NGX_SIP_TO_TAG_LEN          16

typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   reason;
    ngx_str_t                   received;  /* top Via "received=", or empty */
    ngx_uint_t                  rport;     /* fills a bare "rport", or 0 */
    ngx_str_t                   to_tag;    /* added when To has none */
    ngx_str_t                   extra;     /* whole header lines, CRLFs */
    u_char                      tag_buf[NGX_SIP_TO_TAG_LEN];
} ngx_sip_resp_t;


/* libc's, vectorised: the parser's line scan */
#define ngx_sip_memchr(p, c, n)  ((u_char *) memchr(p, c, n))


extern ngx_str_t  ngx_sip_method_names[];
extern ngx_str_t  ngx_sip_header_names[];

/* option tags of Require/Proxy-Require we implement, ends with a null */
extern ngx_str_t  ngx_sip_supported_options[];

/* octet sets of RFC 3261 25.1, a bit each in ngx_sip_chars[] */
#define NGX_SIP_C_TOKEN        0x0001  /* token */
#define NGX_SIP_C_WORD         0x0002  /* word (Call-ID) */
#define NGX_SIP_C_PVALUE       0x0004  /* gen-value as token or host */
#define NGX_SIP_C_LWS          0x0008  /* SP HT CR LF */
#define NGX_SIP_C_UNRESERVED   0x0010  /* alphanum / mark */
#define NGX_SIP_C_USER         0x0020  /* user-unreserved */
#define NGX_SIP_C_PASSWORD     0x0040  /* password octets past unreserved */
#define NGX_SIP_C_PARAM        0x0080  /* param-unreserved */
#define NGX_SIP_C_HNV          0x0100  /* hnv-unreserved */
#define NGX_SIP_C_HOST         0x0200  /* alphanum / "-" / "." */
#define NGX_SIP_C_RURI         0x0400  /* VCHAR but < > " (Request-URI) */

extern const uint16_t  ngx_sip_chars[];

#define ngx_sip_is(c, set)   (ngx_sip_chars[(u_char) (c)] & (set))
#define ngx_sip_is_token(c)  ngx_sip_is(c, NGX_SIP_C_TOKEN)


/* past LWS (header values keep their folds, so CR and LF are LWS) */

static ngx_inline u_char *
ngx_sip_skip_lws(u_char *p, u_char *end)
{
    while (p < end && ngx_sip_is(*p, NGX_SIP_C_LWS)) {
        p++;
    }

    return p;
}


/*
 * The first octet at or after p that is not in the set, or end: four
 * octets a round, the loop test paid once for them.
 */

static ngx_inline u_char *
ngx_sip_span(u_char *p, u_char *end, ngx_uint_t set)
{
    while (end - p >= 4) {

        if (!ngx_sip_is(p[0], set)) {
            return p;
        }

        if (!ngx_sip_is(p[1], set)) {
            return p + 1;
        }

        if (!ngx_sip_is(p[2], set)) {
            return p + 2;
        }

        if (!ngx_sip_is(p[3], set)) {
            return p + 3;
        }

        p += 4;
    }

    while (p < end && ngx_sip_is(*p, set)) {
        p++;
    }

    return p;
}


/*
 * The first CR or LF at or after p, or NULL.  A header line ends at its
 * first CR or LF (any other CR is an error), so one scan for both does
 * the job of a memchr() for LF and one for a bare CR before it.  With
 * SSE2 (every x86-64) 16 octets a compare, the last 16 read overlapping
 * the ones before them rather than one at a time; nothing outside
 * p .. last - 1 is read.
 */

static ngx_inline u_char *
ngx_sip_find_eol(u_char *p, u_char *last)
{
#if (NGX_SIP_SSE2)
    unsigned  mask;
    __m128i   v, cr, lf;

    if (last - p >= 16) {
        cr = _mm_set1_epi8(CR);
        lf = _mm_set1_epi8(LF);

        for ( ;; ) {
            v = _mm_loadu_si128((const __m128i *) p);
            mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr),
                                                  _mm_cmpeq_epi8(v, lf)));

            if (mask) {
                return p + __builtin_ctz(mask);
            }

            if (last - p == 16) {
                return NULL;
            }

            /* the overlapped octets had neither, so they cannot match */

            p = (last - p >= 32) ? p + 16 : last - 16;
        }
    }
#endif

    for ( /* void */ ; p < last; p++) {
        if (*p == CR || *p == LF) {
            return p;
        }
    }

    return NULL;
}


/*
 * Case-insensitive equality of n octets of s with a name made of letters
 * and '-' only: OR 0x20 folds only 'A'-'Z' onto 'a'-'z' (and CR onto '-',
 * which is why s must be token octets where the name has a '-').  8
 * octets at a time: no per-octet tolower, no libc call.
 */

static ngx_inline ngx_uint_t
ngx_sip_name_eq(u_char *s, const char *name, size_t n)
{
    size_t    i;
    uint16_t  a2, b2;
    uint32_t  a4, b4;
    uint64_t  a8, b8;

    /*
     * whole words only, the last one overlapping the one before it, so
     * that nothing outside s[0 .. n-1] is read
     */

    if (n >= 8) {
        for (i = 0; i + 8 < n; i += 8) {
            ngx_memcpy(&a8, s + i, 8);
            ngx_memcpy(&b8, name + i, 8);

            if ((a8 | 0x2020202020202020ULL) != (b8 | 0x2020202020202020ULL))
            {
                return 0;
            }
        }

        ngx_memcpy(&a8, s + n - 8, 8);
        ngx_memcpy(&b8, name + n - 8, 8);

        return (a8 | 0x2020202020202020ULL) == (b8 | 0x2020202020202020ULL);
    }

    if (n >= 4) {
        ngx_memcpy(&a4, s, 4);
        ngx_memcpy(&b4, name, 4);

        if ((a4 | 0x20202020) != (b4 | 0x20202020)) {
            return 0;
        }

        ngx_memcpy(&a4, s + n - 4, 4);
        ngx_memcpy(&b4, name + n - 4, 4);

        return (a4 | 0x20202020) == (b4 | 0x20202020);
    }

    if (n >= 2) {
        ngx_memcpy(&a2, s, 2);
        ngx_memcpy(&b2, name, 2);

        if ((a2 | 0x2020) != (b2 | 0x2020)) {
            return 0;
        }

        ngx_memcpy(&a2, s + n - 2, 2);
        ngx_memcpy(&b2, name + n - 2, 2);

        return (a2 | 0x2020) == (b2 | 0x2020);
    }

    return n == 0 || (s[0] | 0x20) == ((u_char) name[0] | 0x20);
}


/* ngx_sip_parse.c */
void ngx_sip_frame_init(ngx_sip_frame_t *f);
ngx_int_t ngx_sip_frame(ngx_sip_frame_t *f, u_char *start, u_char *last,
    size_t max_size, ngx_sip_error_t *err);
ngx_int_t ngx_sip_parse_message(ngx_sip_msg_t *m, u_char *start, u_char *last,
    ngx_uint_t stream, ngx_sip_error_t *err);
/* once, right after ngx_sip_parse_message() of m */
ngx_int_t ngx_sip_msg_validate(ngx_sip_msg_t *m, ngx_sip_error_t *err);
ngx_uint_t ngx_sip_method_id(u_char *p, size_t len);
ngx_sip_header_t *ngx_sip_find_header(ngx_sip_msg_t *m, u_char *name,
    size_t len);

/* ngx_sip_parse_uri.c */
extern const ngx_sip_uri_t  ngx_sip_uri_zero;
ngx_int_t ngx_sip_parse_uri(u_char *p, u_char *end, ngx_sip_uri_t *uri);
ngx_int_t ngx_sip_uri_param(ngx_str_t *params, char *name, ngx_str_t *value);
ngx_int_t ngx_sip_unescape(ngx_str_t *src, u_char *dst, size_t *len);
ngx_int_t ngx_sip_is_ipv4(u_char *p, u_char *end);
ngx_int_t ngx_sip_is_ipv6(u_char *p, u_char *end);

/* ngx_sip_parse_header.c */
ngx_int_t ngx_sip_parse_via(u_char **pos, u_char *end, ngx_sip_via_t *via);
ngx_int_t ngx_sip_parse_addr(u_char **pos, u_char *end, ngx_sip_addr_t *addr,
    ngx_uint_t list);
ngx_int_t ngx_sip_parse_cseq(ngx_str_t *value, ngx_sip_cseq_t *cseq);
ngx_int_t ngx_sip_parse_uint32(ngx_str_t *value, uint32_t *n);
ngx_int_t ngx_sip_parse_token(u_char **pos, u_char *end, ngx_str_t *token);
ngx_int_t ngx_sip_param(ngx_str_t *params, char *name, ngx_str_t *value);

/* ngx_sip_message.c */
void ngx_sip_response_init(ngx_sip_resp_t *r, ngx_sip_msg_t *req,
    ngx_uint_t status, ngx_str_t *reason, ngx_str_t *addr, in_port_t port,
    u_char *key);
size_t ngx_sip_response_size(ngx_sip_msg_t *req, ngx_sip_resp_t *r);
u_char *ngx_sip_write_response(u_char *p, ngx_sip_msg_t *req,
    ngx_sip_resp_t *r);
u_char *ngx_sip_write_uint(u_char *p, ngx_uint_t n);
u_char *ngx_sip_write_top_via(u_char *p, ngx_sip_msg_t *m,
    ngx_sip_header_t *h, ngx_str_t *received, ngx_uint_t port);


/* ngx_sip_hash.c: SipHash-2-4, whole or a piece at a time, and FNV-1a */

typedef struct {
    uint64_t                    v[4];
    u_char                      tail[8];
    size_t                      len;
} ngx_sip_siphash_t;

void ngx_sip_siphash_init(ngx_sip_siphash_t *h, u_char *key);
void ngx_sip_siphash_update(ngx_sip_siphash_t *h, u_char *in, size_t len);
void ngx_sip_siphash_field(ngx_sip_siphash_t *h, u_char *p, size_t len);
uint64_t ngx_sip_siphash_final(ngx_sip_siphash_t *h);
uint64_t ngx_sip_siphash(u_char *key, u_char *in, size_t len);
uint32_t ngx_sip_hash(uint32_t h, u_char *p, size_t len);

/* ngx_sip_hex.c */
u_char *ngx_sip_hex_encode(u_char *p, u_char *bin, size_t len);
u_char *ngx_sip_write_hex(u_char *p, uint64_t v, ngx_uint_t digits);
ngx_int_t ngx_sip_hex_digit(u_char c);
ngx_int_t ngx_sip_hex_decode(u_char *p, size_t len, uint64_t *v);


/* ngx_sip_forward.c: what a proxy does to the messages it forwards */

#define NGX_SIP_BRANCH_LEN          43

typedef struct {
    ngx_str_t                   ruri;          /* new one, or empty */
    ngx_str_t                   via;           /* our whole via-parm */
    ngx_str_t                   record_route;  /* our value(s), or empty */
    ngx_str_t                   route;         /* Route to add on top */
    ngx_uint_t                  drop;          /* 1 + index of a header to
                                                  leave out, or 0 */
    ngx_uint_t                  cut;           /* 1 + index of a Route */
    u_char                     *cut_at;        /* ... that ends here */
    ngx_str_t                   append_route;  /* a last Route value */
    ngx_uint_t                  pop_route;     /* how many of the first
                                                  Route values are ours */
    ngx_str_t                   received;      /* added to the top Via, */
    ngx_uint_t                  rport;         /* with a bare rport's value:
                                                  RFC 3261 18.2.1, 3581 */
} ngx_sip_forward_t;

size_t ngx_sip_forward_size(ngx_sip_msg_t *m, ngx_sip_forward_t *f);
u_char *ngx_sip_forward_request(u_char *p, ngx_sip_msg_t *m,
    ngx_sip_forward_t *f);
u_char *ngx_sip_forward_response(u_char *p, ngx_sip_msg_t *m);
size_t ngx_sip_hop_request_size(ngx_sip_msg_t *inv, ngx_sip_msg_t *resp);
u_char *ngx_sip_write_hop_request(u_char *p, ngx_sip_msg_t *inv,
    ngx_sip_msg_t *resp);
size_t ngx_sip_branch_make(u_char *buf, ngx_sip_msg_t *m, uint32_t salt,
    u_char *key);
ngx_int_t ngx_sip_branch_check(ngx_str_t *branch, u_char *key,
    uint32_t *loop, uint32_t *salt);
ngx_int_t ngx_sip_loop_detect(ngx_sip_msg_t *m, u_char *key);


/* ngx_sip_auth.c: digest authentication */

#define NGX_SIP_AUTH_MD5            1
#define NGX_SIP_AUTH_SHA256         2

#define NGX_SIP_DIGEST_LEN          64         /* SHA-256 in hex */
#define NGX_SIP_NONCE_LEN           32

typedef struct {
    ngx_str_t                   username;
    ngx_str_t                   realm;
    ngx_str_t                   nonce;
    ngx_str_t                   uri;
    ngx_str_t                   response;
    ngx_str_t                   algorithm;
    ngx_str_t                   cnonce;
    ngx_str_t                   qop;
    ngx_str_t                   nc;
    ngx_str_t                   opaque;
    uint64_t                    nc_value;
    ngx_uint_t                  alg;
} ngx_sip_credentials_t;

ngx_int_t ngx_sip_parse_credentials(ngx_str_t *value,
    ngx_sip_credentials_t *cr);
size_t ngx_sip_digest_hash(ngx_uint_t alg, ngx_str_t *parts, ngx_uint_t n,
    u_char *out);
size_t ngx_sip_digest_response(ngx_sip_credentials_t *cr, ngx_str_t *ha1,
    ngx_str_t *method, u_char *out);
ngx_uint_t ngx_sip_auth_equal(u_char *a, u_char *b, size_t len);
void ngx_sip_nonce_make(u_char *buf, uint32_t now, uint32_t rnd, u_char *key,
    ngx_str_t *realm, ngx_str_t *addr);
ngx_int_t ngx_sip_nonce_check(ngx_str_t *nonce, u_char *key,
    ngx_str_t *realm, ngx_str_t *addr, uint32_t now, uint32_t lifetime);


ngx_sip_transport_t *ngx_sip_transport(ngx_uint_t id);
ngx_uint_t ngx_sip_transport_id(ngx_str_t *name);
in_port_t ngx_sip_transport_port(ngx_uint_t id);


#endif /* _NGX_SIP_H_INCLUDED_ */
