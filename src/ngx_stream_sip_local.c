
/*
 * Copyright (C) ngx_sip authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * Two phases of a request (ngx_stream_sip_phase.c): whether it is for us,
 * decided once for all the phases after it, and, last, what we answer
 * ourselves when no phase before finished it.
 */


static ngx_str_t  ngx_stream_sip_options_headers = ngx_string(
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, SUBSCRIBE, "
    "NOTIFY, PUBLISH, INFO, REFER, MESSAGE, UPDATE" CRLF
    "Accept: application/sdp" CRLF
    "Supported: path" CRLF);

static ngx_str_t  ngx_stream_sip_allow_header = ngx_string(
    "Allow: OPTIONS" CRLF);


ngx_int_t
ngx_stream_sip_local_phase(ngx_stream_session_t *s, ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t       reason;
    ngx_sip_msg_t  *m;

    m = &ctx->msg;

    ctx->local = ngx_stream_sip_is_local(s, &m->ruri) ? 1 : 0;

    if (ctx->local && m->method_id == NGX_SIP_REGISTER
        && m->to.uri.scheme_id != NGX_SIP_SCHEME_SIP
        && m->to.uri.scheme_id != NGX_SIP_SCHEME_SIPS)
    {
        /* RFC 3261 10.3 step 5, RFC 4475 3.3.4: an AOR is a SIP URI */

        ngx_str_set(&reason, "To Is Not a SIP URI");
        ngx_stream_sip_respond(s, ctx, 400, &reason, NULL);
        return NGX_DONE;
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_stream_sip_answer_phase(ngx_stream_session_t *s,
    ngx_stream_sip_ctx_t *ctx)
{
    ngx_str_t       reason;
    ngx_sip_msg_t  *m;

    m = &ctx->msg;

    if (m->method_id == NGX_SIP_ACK) {

        /* an ACK is never answered (RFC 3261 17.2.1) */
        return NGX_DONE;
    }

    if (m->ruri.scheme_id == NGX_SIP_SCHEME_TEL) {
        ngx_str_set(&reason, "No Route for tel URI");
        ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
        return NGX_DONE;
    }

    if (!ctx->local) {

        /* not ours and no route for it: never an open relay */

        ngx_str_set(&reason, "Relaying Forbidden");
        ngx_stream_sip_respond(s, ctx, 403, &reason, NULL);
        return NGX_DONE;
    }

    switch (m->method_id) {

    case NGX_SIP_OPTIONS:
        ngx_str_set(&reason, "OK");
        ngx_stream_sip_respond(s, ctx, 200, &reason,
                               &ngx_stream_sip_options_headers);
        break;

    case NGX_SIP_CANCEL:
        ngx_str_set(&reason, "Call/Transaction Does Not Exist");
        ngx_stream_sip_respond(s, ctx, 481, &reason, NULL);
        break;

    case NGX_SIP_UNKNOWN:
        ngx_str_set(&reason, "Not Implemented");
        ngx_stream_sip_respond(s, ctx, 501, &reason,
                               &ngx_stream_sip_allow_header);
        break;

    default:

        if (m->ruri.user.len) {

            /* a user of ours that nothing here knows how to reach */

            ngx_str_set(&reason, "Not Found");
            ngx_stream_sip_respond(s, ctx, 404, &reason, NULL);
            break;
        }

        ngx_str_set(&reason, "Method Not Allowed");
        ngx_stream_sip_respond(s, ctx, 405, &reason,
                               &ngx_stream_sip_allow_header);
        break;
    }

    return NGX_DONE;
}
