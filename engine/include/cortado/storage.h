/* cortado: key/value databases, blob serialization and crash-safe saves.
 *
 * A DB is Caffe2's db::DB: a bag of (key, value) byte records opened by a
 * registered type ("minidb", "lmdb") in READ, WRITE (append) or NEW
 * (replace) mode, read with a cursor and written through transactions.
 * Blobs are stored as Caffe2 BlobProto records (tensors chunked under
 * `<name>#%<k>`), byte-compatible with Caffe2 in both directions. minidb
 * files written here are replaced crash-safely (temporary file, fsync,
 * rename, fsync of the directory) and carry a CRC32C manifest that the
 * reader verifies. See docs/storage.md.
 * Thread-safety: a DB handle and its cursors and transactions are used by
 * one thread at a time; distinct handles are independent. The free
 * functions (ct_crc32c, ct_db_save_items ...) are thread-safe.
 */
#ifndef CORTADO_STORAGE_H
#define CORTADO_STORAGE_H

#include <stdbool.h>
#include <stdio.h>

#include "cortado/blob.h"
#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_db_s ct_db_t;
typedef struct ct_db_cursor_s ct_db_cursor_t;
typedef struct ct_db_txn_s ct_db_txn_t;

/* Caffe2's db::Mode. */
enum ct_db_mode {
    CT_DB_READ = 0,  /* existing DB, cursors only */
    CT_DB_WRITE = 1, /* append to an existing DB (created when missing) */
    CT_DB_NEW = 2,   /* a new DB replacing any previous one */
    CT_DB_MODE_COUNT
};

/* One piece of a record value; a value may be given as several pieces
 * that are stored back to back (no copy is made of large pieces). */
struct ct_db_iov {
    const void *base;
    size_t len; /* bytes */
};

/* Keys of the two records cortado adds to every minidb it writes: a
 * header first and a manifest (each data record's offset, lengths and
 * CRC32C) last. Both are BlobProtos of type "std::string", so Caffe2 reads
 * the file unchanged; ct_db cursors never return them. */
#define CT_MINIDB_HEADER_KEY "!!CT_HEADER"
#define CT_MINIDB_MANIFEST_KEY "!!CT_MANIFEST"

/* ---- DB lifecycle ---- */

/* Opens the DB `path` of type `type` (case-sensitive, as Caffe2's
 * registry: "minidb"/"MiniDB", "lmdb"/"LMDB"). READ needs an existing DB;
 * NEW writes a replacement that becomes visible only at ct_db_close
 * (minidb: the previous file is never modified before then); WRITE
 * appends (minidb: by writing a new file holding the old records and the
 * new ones, published the same way). *out is freed with ct_db_close or
 * ct_db_free. Errors: CT_ENOTFOUND "Cannot find db implementation of type
 * T (while trying to open P)" for an unregistered type, or a missing path
 * in READ mode; CT_EPATH (a directory, FIFO or device where a file is
 * expected; a name that is one of cortado's temporary files); CT_EIO with
 * the errno text; CT_EEXIST (lmdb NEW on an existing directory);
 * CT_ENOMEM. Thread-safe. */
CT_API int ct_db_open(const char *type, const char *path, enum ct_db_mode mode,
                      ct_db_t **out, ct_status_t *st);
/* Finishes and frees db. In WRITE and NEW mode everything put is made
 * durable and visible: minidb appends its manifest, fsyncs the temporary
 * file, renames it over path and fsyncs the directory. Errors: CT_EIO
 * (nothing published; the previous file is untouched and the temporary
 * removed), CT_EDURABILITY (published, but the directory fsync failed, so
 * a crash may still bring back the previous file), or the error a
 * previous put or commit already returned. db is freed in every case.
 * NULL allowed (returns CT_OK). */
CT_API int ct_db_close(ct_db_t *db, ct_status_t *st);
/* Frees db without publishing anything not yet published: a minidb in
 * WRITE or NEW mode is discarded (temporary file removed, the previous
 * file untouched). lmdb transactions already committed stay. NULL
 * allowed. */
CT_API void ct_db_free(ct_db_t *db);

/* True when `type` names a registered DB type. Thread-safe. */
CT_API bool ct_db_type_registered(const char *type);
/* The registered type names, comma-separated, in static storage. */
CT_API const char *ct_db_type_list(void);
/* Caffe2's DB::SetOptions, given the Save / Load `db_options` bytes. The
 * built-in backends take no options and accept any string. */
CT_API int ct_db_set_options(ct_db_t *db, const char *opts, size_t len,
                             ct_status_t *st);
/* The path and type db was opened with; owned by db. */
CT_API const char *ct_db_path(const ct_db_t *db);
CT_API const char *ct_db_type_name(const ct_db_t *db);
/* Bytes the DB occupies on disk when opened (minidb: the file size; lmdb:
 * data.mdb), or 0 when unknown. Loaders use it to bound allocations. */
CT_API uint64_t ct_db_size(const ct_db_t *db);

/* ---- cursors (READ mode) ---- */

/* A cursor positioned on the first record (or invalid for an empty DB).
 * Owned by the caller, freed with ct_db_cursor_free before db. minidb
 * checks the whole file's record framing and its header and manifest
 * here. Errors: CT_ESTATE (not READ mode), CT_ECORRUPT naming the byte
 * offset ("record at offset 4242: key length 0 is not positive", "no
 * manifest record at the end: truncated or incomplete file"), CT_ENOTSUP
 * (manifest of a newer version), CT_EIO, CT_ENOMEM. */
CT_API int ct_db_cursor_new(ct_db_t *db, ct_db_cursor_t **out, ct_status_t *st);
CT_API void ct_db_cursor_free(ct_db_cursor_t *c);
CT_API int ct_db_cursor_seek_to_first(ct_db_cursor_t *c, ct_status_t *st);
/* Positions on the first key >= key. CT_ENOTSUP for minidb ("MiniDB does
 * not support seeking"). */
CT_API int ct_db_cursor_seek(ct_db_cursor_t *c, const void *key, size_t klen,
                             ct_status_t *st);
/* Moves to the next record; past the last one the cursor turns invalid.
 * Errors (the cursor turns invalid): CT_ECORRUPT with key and offset,
 * CT_EIO, CT_ENOMEM. */
CT_API int ct_db_cursor_next(ct_db_cursor_t *c, ct_status_t *st);
CT_API bool ct_db_cursor_valid(const ct_db_cursor_t *c);
/* The current key, owned by the cursor and valid until it moves; *len
 * receives its length (keys may hold NULs; a NUL follows the bytes). */
CT_API const char *ct_db_cursor_key(const ct_db_cursor_t *c, size_t *len);
/* The current value, read on demand (records a loader skips are never
 * read) and checked against the manifest CRC32C when there is one.
 * *val is owned by the cursor, valid until it moves. Errors: CT_ECORRUPT
 * "key K at offset O: CRC32C mismatch (stored X, computed Y)", CT_EIO,
 * CT_ENOMEM. */
CT_API int ct_db_cursor_value(ct_db_cursor_t *c, const void **val, size_t *len,
                              ct_status_t *st);
/* Byte offset of the current record in the file, or -1 when the backend
 * has no such notion (lmdb). For messages. */
CT_API int64_t ct_db_cursor_offset(const ct_db_cursor_t *c);

/* ---- transactions (WRITE and NEW mode) ---- */

/* A transaction, owned by the caller and freed with ct_db_txn_free
 * before db. Errors: CT_ESTATE (READ mode), CT_EIO (lmdb), CT_ENOMEM. */
CT_API int ct_db_txn_new(ct_db_t *db, ct_db_txn_t **out, ct_status_t *st);
/* Stores a record. minidb refuses empty keys and values (Caffe2 writes
 * them but cannot read them back): CT_EINVAL. minidb writes the record
 * to its temporary file (nothing is visible before ct_db_close); lmdb
 * stages it in the transaction. Errors: CT_EINVAL, CT_EIO, CT_ENOMEM;
 * after an I/O error every later call on the DB returns it again. */
CT_API int ct_db_txn_put(ct_db_txn_t *t, const void *key, size_t klen,
                         const void *val, size_t vlen, ct_status_t *st);
/* The same with the value given as n pieces stored back to back. */
CT_API int ct_db_txn_putv(ct_db_txn_t *t, const void *key, size_t klen,
                          const struct ct_db_iov *iov, size_t n,
                          ct_status_t *st);
/* Caffe2's Commit: minidb flushes its buffer to the temporary file; lmdb
 * commits the transaction and starts the next one. */
CT_API int ct_db_txn_commit(ct_db_txn_t *t, ct_status_t *st);
/* Frees t. minidb keeps what was put (as Caffe2's destructor commits);
 * lmdb aborts what was not committed. NULL allowed. */
CT_API void ct_db_txn_free(ct_db_txn_t *t);

/* ---- whole-DB helpers (the write path Save, Checkpoint and the async
 * checkpoint writer share) ---- */

/* A record, for ct_db_write_records. */
struct ct_db_record {
    const char *key;
    size_t klen;
    const void *val;
    size_t vlen;
};

/* Writes the n records, in order, into a NEW DB at path and publishes it
 * with ct_db_close (crash-safe for minidb). All-or-nothing: on failure the
 * previous DB at path is untouched. Errors: those of ct_db_open,
 * ct_db_txn_put and ct_db_close (CT_EDURABILITY included). Thread-safe
 * for distinct paths. */
CT_API int ct_db_write_records(const char *type, const char *path,
                               const struct ct_db_record *recs, size_t n,
                               ct_status_t *st);

/* Caffe2's BlobSerializationOptions for one blob. */
struct ct_serialize_options {
    /* Elements per chunk: 0 = the default (1,000,000), -1 = no chunking,
     * n > 0 = n. (Save's legacy `chunk_size` argument uses 0 and -1 the
     * other way round; the op translates.) */
    int64_t chunk_size;
    /* 0 or 1: floats as float_data; 2: bfloat16 in raw_data. */
    int float_format;
};

/* One blob to save: a tensor, or the bytes of a std::string blob. */
struct ct_save_item {
    const char *name;          /* stored name; tensor keys get "#%<k>" */
    const ct_tensor_t *tensor; /* borrowed; NULL for a string */
    const char *str;           /* string bytes when tensor is NULL */
    size_t str_len;
    const struct ct_serialize_options *opts; /* NULL = defaults */
};

/* Where a save went, for stats. Zero-initialise. */
struct ct_save_result {
    uint64_t n_records; /* records written (chunks + strings) */
    uint64_t n_bytes;   /* bytes of the published file(s) */
};

/* Serializes the items in order (each tensor's chunks in chunk order; the
 * bytes are deterministic) into a NEW DB of `type` at `path` and
 * publishes it as ct_db_write_records does, streaming: at most one chunk
 * is encoded in memory at a time, and float/double data is written from
 * the tensor itself. Tensors are only read. db_options (may be NULL)
 * goes to ct_db_set_options; result may be NULL. Errors: CT_EINVAL (bad
 * options or an empty name), CT_ETYPE (a dtype with no serialization),
 * and those of ct_db_write_records. Thread-safe for distinct paths while
 * no thread writes the tensors. */
CT_API int ct_db_save_items(const char *type, const char *path,
                            const char *db_options, size_t db_options_len,
                            const struct ct_save_item *items, size_t n,
                            struct ct_save_result *result, ct_status_t *st);

/* Reads every record of the DB, checking framing, header, manifest and
 * every CRC32C (minidb); *n_records (may be NULL) receives the count of
 * data records. Errors as ct_db_cursor_next / ct_db_cursor_value. */
CT_API int ct_db_verify(const char *type, const char *path, uint64_t *n_records,
                        ct_status_t *st);

/* Removes the stale temporary files a crashed writer of `path` left in
 * its directory (".<name>.tmp.<pid>.<seq>" whose process is gone);
 * temporary files of live processes are left alone. minidb NEW and WRITE
 * call it on every open. *n_removed may be NULL. Errors: CT_EIO (the
 * directory cannot be read). */
CT_API int ct_db_sweep_temp_files(const char *path, int *n_removed,
                                  ct_status_t *st);

/* ---- asynchronous checkpoints (storage/checkpoint.c) ----
 *
 * Each engine owns one checkpoint writer thread, started on first use. A
 * call stages a consistent snapshot of the blobs, queues it and returns;
 * the writer serializes it exactly as ct_db_save_items does (the file is
 * byte-identical to a synchronous save) and publishes it crash-safely.
 * Saves are grouped by pattern (a "checkpoint stream"): each stream has
 * at most max_in_flight saves queued or being written (the next call
 * waits: back-pressure), remembers the first error of its saves until a
 * call reports it, and keeps its newest keep_last files. ct_engine_free
 * waits for every queued save (see docs/storage.md).
 * Thread-safety: both functions may be called from any number of threads
 * at once; ct_engine_free must not race with them. */

/* How a save snapshots tensor contents. */
enum ct_checkpoint_snapshot {
    /* Copy into staging tensors that the stream keeps and reuses from
     * save to save (charged to the engine's memory budget). The caller
     * may change the tensors in any way as soon as the call returns. */
    CT_CHECKPOINT_SNAPSHOT_COPY = 0,
    /* Take a reference on each tensor's storage instead (no copy at call
     * time); a later ct_tensor_resize of the live tensor (what every op
     * does before it writes an output, in place included) copies on write
     * while the save still holds the storage. The caller must not write
     * elements through a pointer obtained before the call (ct_tensor_data)
     * without a ct_tensor_resize first. String tensors are always copied. */
    CT_CHECKPOINT_SNAPSHOT_SHARE = 1,
    CT_CHECKPOINT_SNAPSHOT_COUNT
};

/* Options of ct_engine_checkpoint_async. Fill the defaults with
 * ct_checkpoint_options_init, then change what you need. */
struct ct_checkpoint_options {
    const char *db_type; /* registered DB type; NULL = "minidb" */
    int max_in_flight;   /* saves of the stream queued or being written
                            at once, >= 1 (default 1) */
    int keep_last;       /* > 0: after a save is published, delete the
                            stream's older files so that the newest
                            keep_last remain; 0 (default): keep all */
    int snapshot;        /* enum ct_checkpoint_snapshot (default COPY) */
    const struct ct_serialize_options *serialize; /* every tensor; NULL =
                                                     the defaults */
    const char *db_options; /* for ct_db_set_options; may be NULL */
    size_t db_options_len;  /* bytes */
};

/* Fills o with the defaults. */
CT_API void ct_checkpoint_options_init(struct ct_checkpoint_options *o);

/* Saves the blobs `names[0..n)` of ws (tensors or std::string blobs,
 * stored under their names, in this order) asynchronously to the file
 * that `pattern` gives for `iter`: literal text, "%%" and at most one
 * %d-style conversion, as the Checkpoint op's `db` (the path is used as
 * given, relative to the working directory unless absolute). The call
 * first waits while the stream (the pattern string) has max_in_flight
 * saves in flight, then reports the stream's pending error if there is
 * one, and otherwise stages the blobs and queues the save. opts may be
 * NULL (defaults); every pointer is borrowed for the call only.
 * Returns CT_OK once queued. Errors: the first unreported error of an
 * earlier save of this stream (CT_EIO: that file was not written and the
 * previous one is intact; CT_EDURABILITY: it was published but the
 * directory fsync failed; ...), in which case nothing is staged or
 * queued by this call; CT_EINVAL (bad option or name), CT_EARG (bad
 * pattern), CT_ENOTFOUND (a missing blob or DB type), CT_ETYPE (a blob
 * that cannot be saved), CT_ENOMEM (staging over the memory budget;
 * nothing is queued and no file is touched). Thread-safe. */
CT_API int ct_engine_checkpoint_async(ct_engine_t *eng,
                                      const ct_workspace_t *ws,
                                      const char *const *names, size_t n,
                                      const char *pattern, int64_t iter,
                                      const struct ct_checkpoint_options *opts,
                                      ct_status_t *st);
/* Waits until every save queued before the call is finished, releases
 * the staging memory the streams keep, and reports (and clears) the
 * pending errors of every stream: the oldest one is returned, its
 * message followed by how many more there were. CT_OK when there were
 * none. Thread-safe. */
CT_API int ct_engine_flush_checkpoints(ct_engine_t *eng, ct_status_t *st);

/* ---- inspection ---- */

/* "minidb" when the file at path parses as minidb records whose first
 * value is a BlobProto or TensorProto(s), "lmdb" for a directory holding
 * data.mdb, else NULL (not an error). Static strings. Never fails. */
CT_API const char *ct_db_detect_type(const char *path);
/* Prints a listing of the DB to out: every blob with its type, dtype,
 * shape, chunk count and bytes, the header / manifest status and whether
 * every CRC32C matched. A corrupt record is listed and reported
 * ("CRC32C mismatch at offset O") and the function returns CT_ECORRUPT
 * after printing; other errors as ct_db_open. */
CT_API int ct_db_describe(const char *type, const char *path, FILE *out,
                          ct_status_t *st);

/* ---- std::string blobs ---- */

/* The blob type of Caffe2's std::string blobs (what Load makes of a
 * BlobProto of type "std::string", e.g. the "!!META_NET_DEF" record of a
 * predictor export). obj is a ct_str_t *. */
CT_API extern const ct_blob_type_t ct_blob_type_string;
/* Puts a copy of the bytes into b as a std::string blob. CT_ENOMEM
 * leaves b unchanged. */
CT_API int ct_blob_set_string(ct_blob_t *b, const void *bytes, size_t len,
                              ct_status_t *st);
/* The string if b holds one, else NULL (not found). Borrowed. */
CT_API const ct_str_t *ct_blob_get_string(const ct_blob_t *b);

/* ---- CRC32C ---- */

/* CRC-32C (Castagnoli, iSCSI), continuing from crc (0 to start), so that
 * ct_crc32c(ct_crc32c(0, a), b) equals the CRC of a followed by b. Uses
 * SSE4.2 when the CPU has it. Thread-safe. */
CT_API uint32_t ct_crc32c(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_STORAGE_H */
