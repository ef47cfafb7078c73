
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_SIP_TEST_H_INCLUDED_
#define _NGX_SIP_TEST_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>


/*
 * Every test program counts its checks and ends with the plain
 * "N passed, N failed" line that CI reads; its exit code is non-zero
 * when any check failed.
 */

static unsigned  ngx_sip_test_passed;
static unsigned  ngx_sip_test_failed;


#define NGX_SIP_CHECK(cond, ...)                                             \
    do {                                                                     \
        if (cond) {                                                          \
            ngx_sip_test_passed++;                                           \
        } else {                                                             \
            ngx_sip_test_failed++;                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
        }                                                                    \
    } while (0)


#define NGX_SIP_STR_EQ(s, lit)                                               \
    ((s).len == sizeof(lit) - 1 && memcmp((s).data, lit, (s).len) == 0)


static int
ngx_sip_test_done(const char *name)
{
    printf("%s: %u passed, %u failed\n", name, ngx_sip_test_passed,
           ngx_sip_test_failed);

    return ngx_sip_test_failed ? 1 : 0;
}


#endif /* _NGX_SIP_TEST_H_INCLUDED_ */
