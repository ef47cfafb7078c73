
/*
 * Copyright (C) ngx_sip authors
 */


#ifndef _NGX_STREAM_SIP_LOCATION_H_INCLUDED_
#define _NGX_STREAM_SIP_LOCATION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>
#include "ngx_stream_sip.h"


/*
 * The location service (RFC 3261 10.2): bindings of addresses of record
 * to contacts, behind a table of operations a backend implements.
 * Shared memory (ngx_stream_sip_location.c) is the first backend; one
 * that asks a server (Redis) answers later: its read and save return
 * NGX_AGAIN and call the caller's handler when done.  The shared memory
 * backend always answers at once (NGX_OK, the handler is not called).
 * docs/design.md, "Location service", says what a backend implements.
 */


typedef struct ngx_stream_sip_location_s       ngx_stream_sip_location_t;
typedef struct ngx_stream_sip_location_iter_s  ngx_stream_sip_location_iter_t;
typedef struct ngx_stream_sip_location_read_s  ngx_stream_sip_location_read_t;
typedef struct ngx_stream_sip_location_save_s  ngx_stream_sip_location_save_t;


/*
 * One binding as a backend shows it: slices into the backend's own copy,
 * valid only inside the callback that was given it.
 */
typedef struct {
    ngx_str_t                        aor;
    ngx_str_t                        contact;
    ngx_str_t                        call_id;
    ngx_str_t                        source;    /* "udp:addr:port" */
    ngx_str_t                        instance;  /* +sip.instance, or "" */
    ngx_str_t                        reg_id;
    ngx_str_t                        path;      /* a Route value, or "" */
    time_t                           expires;   /* absolute */
    uint32_t                         cseq;
    uint32_t                         branch;    /* hash of the REGISTER's */
    uint32_t                         chash;     /* location_contact_hash */
    ngx_uint_t                       q;         /* 0 .. 1000 */
    ngx_uint_t                       transport;
    ngx_uint_t                       flow;      /* its connection, or 0 */
    ngx_uint_t                       flow_worker;
    void                            *id;       /* the backend's handle */
} ngx_stream_sip_location_binding_t;


/*
 * The bindings of one AOR (or, for the state file, of the whole store in
 * expiry order), walked as often as needed with next() after rewind().
 */
struct ngx_stream_sip_location_iter_s {
    ngx_uint_t                       n;         /* bindings in it */
    unsigned                         exists:1;  /* the AOR is known */
    ngx_uint_t                     (*next)(ngx_stream_sip_location_iter_t *it,
                                        ngx_stream_sip_location_binding_t *b);
    void                            *data;      /* the backend's */
    void                            *cur;
};

#define ngx_stream_sip_location_rewind(it)  (it)->cur = NULL


/* what the store gives back besides the bindings of a walk */
typedef struct {
    ngx_uint_t                       nbindings;
    ngx_uint_t                       naors;
    size_t                           used;
    size_t                           size;
} ngx_stream_sip_location_stats_t;


/*
 * Read the bindings of an AOR (or, with aor.len 0, every binding of the
 * store): "handler" is called once with an iterator over them, with the
 * store consistent (the zone locked); what it returns is what read()
 * returns, or what "done" is called with when read() said NGX_AGAIN.
 */
struct ngx_stream_sip_location_read_s {
    ngx_str_t                        aor;
    ngx_uint_t                       expire;    /* sweep what expired */
    ngx_int_t                      (*handler)(
                                        ngx_stream_sip_location_read_t *rd,
                                        ngx_stream_sip_location_iter_t *it);
    void                           (*done)(ngx_stream_sip_location_read_t *rd,
                                        ngx_int_t rc);
    void                            *data;
    ngx_stream_sip_location_stats_t  stats;
};


/*
 * One change of a save: remove a binding the decision found (its id;
 * each id at most once), add one, or both (a refresh).
 */
typedef struct {
    void                               *remove;
    ngx_stream_sip_location_binding_t  *add;
    void                               *fresh;    /* the store's */
} ngx_stream_sip_location_change_t;


/*
 * Add, refresh and remove bindings of one AOR as one operation: the
 * store sweeps what expired, calls decide() with the AOR's bindings, and
 * when it returns NGX_OK applies "changes" (or removes every binding:
 * remove_all): new bindings first, so that a full store changes nothing
 * ("full" is set then), the removals, the additions at the end of the
 * AOR's list.  Once applied, reply() is called with the bindings the AOR
 * has now.  save() returns NGX_OK when done, NGX_AGAIN when "done" will
 * be called, NGX_ERROR.
 */
struct ngx_stream_sip_location_save_s {
    ngx_str_t                        aor;
    time_t                           now;
    ngx_int_t                      (*decide)(
                                        ngx_stream_sip_location_save_t *sv,
                                        ngx_stream_sip_location_iter_t *it);
    ngx_int_t                      (*reply)(
                                        ngx_stream_sip_location_save_t *sv,
                                        ngx_stream_sip_location_iter_t *it);
    void                           (*done)(ngx_stream_sip_location_save_t *sv,
                                        ngx_int_t rc);
    void                            *data;

    /* set by decide() */
    ngx_stream_sip_location_change_t *changes;
    ngx_uint_t                       nchanges;
    unsigned                         remove_all:1;

    /* set by the store */
    unsigned                         applied:1;
    unsigned                         full:1;
};


/* what a backend implements */
typedef struct {
    ngx_str_t                        name;
    ngx_int_t                      (*read)(ngx_stream_sip_location_t *loc,
                                        ngx_stream_sip_location_read_t *rd);
    ngx_int_t                      (*save)(ngx_stream_sip_location_t *loc,
                                        ngx_stream_sip_location_save_t *sv);
    void                           (*expire)(ngx_stream_sip_location_t *loc,
                                        time_t now);

    /* restore one binding from the state file; NULL: no state file */
    ngx_int_t                      (*restore)(ngx_stream_sip_location_t *loc,
                                        ngx_stream_sip_location_binding_t *b);
} ngx_stream_sip_location_ops_t;


/* a sip_location_zone */
struct ngx_stream_sip_location_s {
    ngx_stream_sip_location_ops_t   *ops;
    void                            *backend;   /* the backend's state */
    ngx_str_t                        name;
    ngx_str_t                        state;     /* the state file, or "" */
    ngx_uint_t                       max_contacts;
};


#define ngx_stream_sip_location_read(loc, rd)  (loc)->ops->read(loc, rd)
#define ngx_stream_sip_location_save(loc, sv)  (loc)->ops->save(loc, sv)


ngx_stream_sip_location_t *ngx_stream_sip_location_get(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_stream_sip_location_aor(ngx_sip_uri_t *uri, u_char *buf,
    size_t size, ngx_str_t *aor);
ngx_int_t ngx_stream_sip_location_lookup(ngx_stream_sip_location_t *loc,
    ngx_str_t *aor, ngx_pool_t *pool, ngx_array_t **targets);
ngx_uint_t ngx_stream_sip_location_contact_eq(ngx_str_t *a, ngx_str_t *b);
uint32_t ngx_stream_sip_location_contact_hash(ngx_str_t *contact);

/* the state file: ngx_stream_sip_location_file.c */
ngx_int_t ngx_stream_sip_location_file_write(ngx_stream_sip_location_t *loc,
    ngx_log_t *log);
ngx_int_t ngx_stream_sip_location_file_read(ngx_stream_sip_location_t *loc,
    ngx_log_t *log);


extern ngx_module_t  ngx_stream_sip_location_module;


#endif /* _NGX_STREAM_SIP_LOCATION_H_INCLUDED_ */
