
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * Differential libFuzzer target: the SIP core of this tree against the
 * one of a git revision (make fuzz-diff FUZZ_BASE=rev links it in with
 * every symbol renamed base_*).  Both must say the same of every input
 * (tests/ngx_sip_dump.h: every field, every error, the framer whole, in
 * reads of 7 octets and with a size limit): a change meant to be only
 * faster must not change a verdict or a slice.
 */


#include "ngx_sip.h"
#include "ngx_sip_dump.h"

#include <stdlib.h>


#define FUZZ_MAX_SIZE  4096


void base_ngx_sip_frame_init(ngx_sip_frame_t *f);
ngx_int_t base_ngx_sip_frame(ngx_sip_frame_t *f, u_char *start, u_char *last,
    size_t max_size, ngx_sip_error_t *err);
ngx_int_t base_ngx_sip_parse_message(ngx_sip_msg_t *m, u_char *start,
    u_char *last, ngx_uint_t stream, ngx_sip_error_t *err);
ngx_int_t base_ngx_sip_msg_validate(ngx_sip_msg_t *m, ngx_sip_error_t *err);
ngx_int_t base_ngx_sip_parse_via(u_char **pos, u_char *end,
    ngx_sip_via_t *via);
ngx_int_t base_ngx_sip_parse_addr(u_char **pos, u_char *end,
    ngx_sip_addr_t *addr, ngx_uint_t list);
ngx_int_t base_ngx_sip_parse_cseq(ngx_str_t *value, ngx_sip_cseq_t *cseq);


static ngx_sip_dump_ops_t  fuzz_base = {
    base_ngx_sip_frame_init,
    base_ngx_sip_frame,
    base_ngx_sip_parse_message,
    base_ngx_sip_msg_validate,
    base_ngx_sip_parse_via,
    base_ngx_sip_parse_addr,
    base_ngx_sip_parse_cseq
};


static char *
fuzz_dump(ngx_sip_dump_ops_t *ops, u_char *buf, size_t len, size_t *size)
{
    FILE  *out;
    char  *text;

    text = NULL;
    *size = 0;

    out = open_memstream(&text, size);
    if (out == NULL) {
        abort();
    }

    ngx_sip_dump(out, ops, buf, len);

    if (fclose(out) != 0) {
        abort();
    }

    return text;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *a, *b;
    size_t   na, nb;
    u_char  *buf;

    if (size > FUZZ_MAX_SIZE) {
        return 0;
    }

    /* an allocation of its exact size: ASan sees any read past it */

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);

    a = fuzz_dump(&fuzz_base, buf, size, &na);
    b = fuzz_dump(&ngx_sip_dump_core, buf, size, &nb);

    if (na != nb || memcmp(a, b, na) != 0) {
        fprintf(stderr, "base and new differ\n--- base\n%s\n--- new\n%s\n",
                a, b);
        __builtin_trap();
    }

    free(a);
    free(b);
    free(buf);

    return 0;
}
