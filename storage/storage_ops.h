/* cortado internal: what the storage operators share (Save, Checkpoint,
 * Load, DBExists), and what the async checkpoint writer reuses: Save's
 * argument parsing (every argument of spec §4.6, validated once when the
 * op is created) and the synchronous save of an op's inputs.
 */
#ifndef CT_STORAGE_STORAGE_OPS_H
#define CT_STORAGE_STORAGE_OPS_H

#include "cortado/storage.h"
#include "ops/op_impl.h"

/* Save's arguments, parsed and checked. */
struct ct__save_args {
    char *db;      /* owned; the pattern for Checkpoint */
    char *db_type; /* owned, registered */
    bool absolute;
    int n;                             /* inputs */
    char **names;                      /* stored name of each input, owned */
    struct ct_serialize_options *opts; /* per input, owned */
    struct ct_save_item *items;        /* per input, filled at run time */
    char *db_options;                  /* owned bytes (may hold NULs) */
    size_t db_options_len;
};

/* Parses db (message `db_missing` when absent or empty), db_type,
 * absolute_path, strip_prefix, blob_name_overrides, chunk_size, options
 * and db_options for op's inputs. Errors: CT_EARG with Caffe2's texts
 * ("Must specify a db type.", "Duplicated input: X", "Number of blobs and
 * blob_name_overrides mismatch.", "unable to parse serialization
 * options", ...), CT_ENOTFOUND (db_type not registered), CT_EPATH (db
 * breaks the path rule), CT_ENOMEM. a is zeroed first; on failure it may
 * hold partial state that ct__save_args_destroy releases. */
int ct__save_args_parse(const ct_op_t *op, const char *db_missing,
                        struct ct__save_args *a, ct_status_t *st);
void ct__save_args_destroy(struct ct__save_args *a);
/* Saves op's inputs to db_path (relative to the workspace root unless
 * a->absolute), crash-safely. Fails the op context on error. */
int ct__save_run(ct_op_ctx_t *ctx, struct ct__save_args *a,
                 const char *db_path);

/* A string argument as an owned NUL-terminated copy (dflt when absent).
 * CT_EARG when it holds a NUL byte or is not a string. */
int ct__arg_dup_string(const ct_op_t *op, const char *name, const char *dflt,
                       char **out, ct_status_t *st);
/* A repeated string argument as owned NUL-terminated copies. */
int ct__arg_dup_strings(const ct_op_t *op, const char *name, char ***out,
                        size_t *n, ct_status_t *st);
void ct__strv_free(char **v, size_t n);

#endif /* CT_STORAGE_STORAGE_OPS_H */
