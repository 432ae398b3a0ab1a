/* cortado internal: the minidb backend's state, shared by minidb.c (open,
 * close, the writer) and minidb_read.c (the scan and the cursors). See
 * the design note at the top of storage/minidb.c. */
#ifndef CT_STORAGE_MINIDB_IMPL_H
#define CT_STORAGE_MINIDB_IMPL_H

#include "storage/fileio.h"
#include "storage/storage_impl.h"

struct ct__mdb {
    int fd; /* READ: the file; -1 otherwise */
    /* reader, filled by scan() */
    bool scanned;
    bool has_manifest;
    uint64_t first_data; /* offset of the first data record */
    uint64_t end_data;   /* where data records end (manifest or EOF) */
    uint64_t n_data;
    struct ct__manifest man;
    /* writer */
    bool writing;
    struct ct__afile af;
    struct ct__buf wbuf;    /* bytes not yet handed to the file */
    struct ct__buf entries; /* manifest entries so far */
    uint64_t n_entries;
    uint64_t off; /* offset of the next record (written + buffered) */
    int err;      /* sticky failure of a put or commit */
    ct_status_t err_st;
};

struct ct__mcur {
    uint64_t pos, next;
    size_t idx; /* data record index, for the manifest entry */
    uint32_t vlen;
    struct ct__buf key, val;
    bool val_loaded;
};

/* Whether key is one of the reserved "!!CT_HEADER" / "!!CT_MANIFEST". */
bool ct__minidb_reserved_key(const void *key, size_t klen);
/* READ mode: opens and stats the file (no reading yet). */
int ct__minidb_open_read(ct_db_t *db, struct ct__mdb *m, ct_status_t *st);
/* The cursor callbacks of the backend table. */
int ct__minidb_cursor_new(ct_db_cursor_t *c, ct_status_t *st);
void ct__minidb_cursor_free(ct_db_cursor_t *c);
int ct__minidb_cursor_seek_to_first(ct_db_cursor_t *c, ct_status_t *st);
int ct__minidb_cursor_seek(ct_db_cursor_t *c, const void *key, size_t klen,
                           ct_status_t *st);
int ct__minidb_cursor_next(ct_db_cursor_t *c, ct_status_t *st);
int ct__minidb_cursor_value(ct_db_cursor_t *c, const void **val, size_t *len,
                            ct_status_t *st);

#endif /* CT_STORAGE_MINIDB_IMPL_H */
