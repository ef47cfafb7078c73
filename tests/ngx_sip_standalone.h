
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_SIP_STANDALONE_H_INCLUDED_
#define _NGX_SIP_STANDALONE_H_INCLUDED_


/*
 * The few nginx types and macros the SIP core uses, for building it
 * without nginx (unit tests, fuzzing).  Same names, same meaning as in
 * src/core/ngx_config.h and ngx_string.h.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <netinet/in.h>


typedef unsigned char   u_char;
typedef intptr_t        ngx_int_t;
typedef uintptr_t       ngx_uint_t;

typedef struct {
    size_t      len;
    u_char     *data;
} ngx_str_t;


#define NGX_OK          0
#define NGX_ERROR      -1
#define NGX_AGAIN      -2
#define NGX_DONE       -4
#define NGX_DECLINED   -5

#define LF     (u_char) '\n'
#define CR     (u_char) '\r'
#define CRLF   "\r\n"

#define ngx_string(str)     { sizeof(str) - 1, (u_char *) str }
#define ngx_null_string     { 0, NULL }
#define ngx_str_set(str, text)                                               \
    (str)->len = sizeof(text) - 1; (str)->data = (u_char *) text
#define ngx_str_null(str)   (str)->len = 0; (str)->data = NULL

#define ngx_tolower(c)      (u_char) ((c >= 'A' && c <= 'Z') ? (c | 0x20) : c)
#define ngx_toupper(c)      (u_char) ((c >= 'a' && c <= 'z') ? (c & ~0x20) : c)

#define ngx_strncmp(s1, s2, n)  strncmp((const char *) s1, (const char *) s2, n)
#define ngx_strlen(s)       strlen((const char *) s)
#define ngx_strncasecmp(s1, s2, n)                                           \
    strncasecmp((const char *) s1, (const char *) s2, n)

#define ngx_memzero(buf, n)       (void) memset(buf, 0, n)
#define ngx_memset(buf, c, n)     (void) memset(buf, c, n)
#define ngx_memcpy(dst, src, n)   (void) memcpy(dst, src, n)
#define ngx_memmove(dst, src, n)  (void) memmove(dst, src, n)
#define ngx_cpymem(dst, src, n)   (((u_char *) memcpy(dst, src, n)) + (n))
#define ngx_memcmp(s1, s2, n)     memcmp(s1, s2, n)

#define ngx_min(val1, val2)  ((val1 > val2) ? (val2) : (val1))
#define ngx_max(val1, val2)  ((val1 < val2) ? (val2) : (val1))

#define ngx_inline      inline


static ngx_inline u_char *
ngx_strlchr(u_char *p, u_char *last, u_char c)
{
    while (p < last) {

        if (*p == c) {
            return p;
        }

        p++;
    }

    return NULL;
}


#endif /* _NGX_SIP_STANDALONE_H_INCLUDED_ */
