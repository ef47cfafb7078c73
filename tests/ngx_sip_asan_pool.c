
/*
 * Linked into the module of "make test-asan" only (ld --wrap, see the
 * Makefile): every allocation the module makes from an nginx pool
 * becomes a block of its own from malloc(), as with nginx's
 * NGX_DEBUG_PALLOC, so that AddressSanitizer knows the bounds of each.
 * Debian's nginx, which the module is loaded into, is not built with
 * NGX_DEBUG_PALLOC, and a pool's small allocations share one block.
 *
 * The block is malloc()ed here, not by ngx_pmemalign(): ASan's fast
 * unwinder would stop at nginx's frames (no frame pointers), and the
 * allocation stacks of its reports would not reach the module.  It is
 * listed among the pool's large allocations, which ngx_destroy_pool()
 * frees after running the cleanups, as it frees pool memory.
 *
 * A pool the module creates or allocates from gets max 0: what nginx's
 * own code allocates from it afterwards (ngx_array_push(), temporary
 * buffers, cleanups) is a block of its own too.
 */


#include <ngx_config.h>
#include <ngx_core.h>


ngx_pool_t *__real_ngx_create_pool(size_t size, ngx_log_t *log);
void *__real_ngx_palloc(ngx_pool_t *pool, size_t size);
ngx_pool_t *__wrap_ngx_create_pool(size_t size, ngx_log_t *log);
void *__wrap_ngx_palloc(ngx_pool_t *pool, size_t size);
void *__wrap_ngx_pnalloc(ngx_pool_t *pool, size_t size);
void *__wrap_ngx_pcalloc(ngx_pool_t *pool, size_t size);
static void *ngx_sip_asan_alloc(ngx_pool_t *pool, size_t size);


ngx_pool_t *
__wrap_ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *pool;

    pool = __real_ngx_create_pool(size, log);

    if (pool) {
        pool->max = 0;
    }

    return pool;
}


void *
__wrap_ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_sip_asan_alloc(pool, size);
}


void *
__wrap_ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_sip_asan_alloc(pool, size);
}


void *
__wrap_ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_sip_asan_alloc(pool, size);

    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


static void *
ngx_sip_asan_alloc(ngx_pool_t *pool, size_t size)
{
    void              *p;
    ngx_pool_large_t  *large;

    pool->max = 0;

    large = __real_ngx_palloc(pool, sizeof(ngx_pool_large_t));
    if (large == NULL) {
        return NULL;
    }

    p = malloc(size);
    if (p == NULL) {
        return NULL;
    }

    large->alloc = p;
    large->next = pool->large;
    pool->large = large;

    return p;
}
