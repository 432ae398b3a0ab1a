/* cortado internal: what the storage/ files share.
 *
 * - the DB backend vtable behind cortado/storage.h (db.c dispatches,
 *   minidb.c and lmdb.c implement);
 * - a growable byte buffer and protobuf wire encoders (pbwire.c) for the
 *   hand-written, canonical BlobProto / TensorProto encoder;
 * - the serializer (serialize.c) and the blob-state machine Load uses to
 *   assemble blobs from records (deserialize.c);
 * - the minidb header and manifest records (manifest.c);
 * - path resolution and the checkpoint pattern (path.c).
 * Only storage/ files and white-box tests include it.
 */
#ifndef CT_STORAGE_STORAGE_IMPL_H
#define CT_STORAGE_STORAGE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/storage.h"
#include "cortado/tensor.h"
#include "proto/caffe2.pb-c.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cortado's storage code assumes a little-endian host (as minidb does)"
#endif

/* ---- DB backends ---- */

struct ct__db_backend {
    const char *name;  /* canonical type, e.g. "minidb" */
    const char *alias; /* Caffe2's second registration, e.g. "MiniDB" */
    /* Fills db->impl and db->size. On failure db->impl is left NULL. */
    int (*open_cb)(ct_db_t *db, ct_status_t *st);
    /* publish: true from ct_db_close, false from ct_db_free. Releases
     * db->impl in both cases. */
    int (*close_cb)(ct_db_t *db, bool publish, ct_status_t *st);
    int (*cursor_new_cb)(ct_db_cursor_t *c, ct_status_t *st);
    void (*cursor_free_cb)(ct_db_cursor_t *c);
    int (*cursor_seek_to_first_cb)(ct_db_cursor_t *c, ct_status_t *st);
    int (*cursor_seek_cb)(ct_db_cursor_t *c, const void *key, size_t klen,
                          ct_status_t *st);
    int (*cursor_next_cb)(ct_db_cursor_t *c, ct_status_t *st);
    int (*cursor_value_cb)(ct_db_cursor_t *c, const void **val, size_t *len,
                           ct_status_t *st);
    int (*txn_new_cb)(ct_db_txn_t *t, ct_status_t *st);
    int (*txn_putv_cb)(ct_db_txn_t *t, const void *key, size_t klen,
                       const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                       ct_status_t *st);
    int (*txn_commit_cb)(ct_db_txn_t *t, ct_status_t *st);
    void (*txn_free_cb)(ct_db_txn_t *t);
};

struct ct_db_s {
    const struct ct__db_backend *be;
    char *path; /* owned */
    char *type; /* owned, as the caller spelled it */
    enum ct_db_mode mode;
    uint64_t size; /* bytes on disk at open (published, after close) */
    int n_cursors; /* live cursors and transactions: asserted 0 at close */
    int n_txns;
    void *impl; /* backend state */
};

/* Backends keep key, klen, valid and offset current. */
struct ct_db_cursor_s {
    ct_db_t *db;
    bool valid;
    const char *key; /* NUL-terminated, owned by the backend state */
    size_t klen;
    int64_t offset; /* -1 when meaningless */
    void *impl;
};

struct ct_db_txn_s {
    ct_db_t *db;
    void *impl;
};

extern const struct ct__db_backend ct__db_minidb;
/* After a cursor was created on a READ minidb: whether the file carries
 * a cortado header + manifest, and its count of data records. */
void ct__minidb_info(const ct_db_t *db, bool *has_manifest, uint64_t *n_data);
/* ct_db_close that also reports the bytes published (db->size). */
int ct__db_close_sized(ct_db_t *db, uint64_t *size, ct_status_t *st);
#ifdef CT_HAVE_LMDB
extern const struct ct__db_backend ct__db_lmdb;
#endif

/* ---- byte buffer and protobuf wire encoding (pbwire.c) ---- */

struct ct__buf {
    unsigned char *p; /* owned (ct__malloc) */
    size_t len, cap;
};

void ct__buf_init(struct ct__buf *b);
void ct__buf_destroy(struct ct__buf *b);
/* Makes room for n more bytes. CT_ENOMEM leaves b unchanged. */
int ct__buf_reserve(struct ct__buf *b, size_t n);
/* The same without doubling (readers: allocations stay within the
 * record sizes of the file). */
int ct__buf_reserve_exact(struct ct__buf *b, size_t n);
int ct__buf_append(struct ct__buf *b, const void *p, size_t n);
/* The helpers below assume the room was reserved. */
void ct__buf_put(struct ct__buf *b, const void *p, size_t n);
void ct__buf_put_u32le(struct ct__buf *b, uint32_t v);
void ct__buf_put_u64le(struct ct__buf *b, uint64_t v);
void ct__buf_put_varint(struct ct__buf *b, uint64_t v);
/* Tag (field << 3 | wire type). */
void ct__buf_put_tag(struct ct__buf *b, unsigned field, unsigned wt);
/* Bytes a varint of v takes (1..10). */
size_t ct__varint_len(uint64_t v);

#define CT_PB_VARINT 0u
#define CT_PB_I64 1u
#define CT_PB_LEN 2u
#define CT_PB_I32 5u

/* ---- serialization (serialize.c) ---- */

/* Receives each record the serializer produces: the key and the value as
 * n pieces (some borrowed from the tensor), valid during the call. */
typedef int (*ct__record_cb)(void *ctx, const char *key, size_t klen,
                             const struct ct_db_iov *iov, size_t n,
                             uint64_t vlen, ct_status_t *st);

/* The chunk length in elements that options give for numel elements
 * (Caffe2's BlobSerializationOptions rule: 0 default, -1 none). */
int64_t ct__chunk_len(int64_t numel, const struct ct_serialize_options *o);
/* Serializes one item into records, in chunk order. Errors: CT_EINVAL,
 * CT_ETYPE, CT_ENOMEM, or what cb returns. */
int ct__serialize_item(const struct ct_save_item *item, ct__record_cb cb,
                       void *ctx, ct_status_t *st);
/* The canonical BlobProto{name, type "std::string", content} bytes. */
int ct__serialize_string_value(const char *name, const void *bytes, size_t len,
                               struct ct__buf *out, ct_status_t *st);

/* ---- deserialization (deserialize.c) ---- */

enum ct__blob_kind { CT_BLOB_KIND_TENSOR = 1, CT_BLOB_KIND_STRING = 2 };

/* Caffe2's BlobState: a blob assembled from one or more records. */
struct ct__blob_state {
    enum ct__blob_kind kind;
    ct_tensor_t *tensor;    /* owned until taken */
    ct_str_t *str;          /* owned until taken (ct__malloc'd struct + data) */
    int64_t total, current; /* elements (tensors) or 1 (strings) */
    int64_t (*segs)[2];     /* [begin, end) seen, sorted by begin */
    size_t n_segs, cap_segs;
};

/* Merges one record (a BlobProto value stored under db key `key`) into
 * s, which is zeroed when the blob is new. eng allocates tensors;
 * bytes_bound (0: none) caps a tensor's element count times its
 * smallest encoding (a tensor cannot have more elements than the DB
 * has bytes), so hostile dims never reach the allocator. Errors:
 * CT_ECORRUPT naming key and what is wrong, CT_ENOTSUP (a BlobProto type
 * with no deserializer), CT_ENOMEM. */
int ct__blob_state_merge(struct ct__blob_state *s, ct_engine_t *eng,
                         const char *key, const void *val, size_t len,
                         uint64_t bytes_bound, ct_status_t *st);
/* CT_ECORRUPT "Data size mismatch for blob K. Expected: T Read: C" when
 * chunks are missing. */
int ct__blob_state_check(const struct ct__blob_state *s, const char *name,
                         ct_status_t *st);
void ct__blob_state_destroy(struct ct__blob_state *s);

/* A whole TensorProto (no chunk state) into a new tensor: the decoder
 * both paths share. Errors as ct__blob_state_merge. */
int ct__tensor_from_proto(ct_engine_t *eng, const Caffe2__TensorProto *tp,
                          const char *what, uint64_t bytes_bound,
                          ct_tensor_t **out, ct_status_t *st);
/* The cut blob name of a DB key: bytes before the first "#%". */
size_t ct__key_name_len(const char *key, size_t klen);

/* ---- std::string blobs (blob_string.c) ---- */

/* A ct_str_t and its bytes in one allocation. NULL on OOM. */
ct_str_t *ct__str_new(const void *bytes, size_t len);
void ct__str_free(void *s);

/* ---- minidb header and manifest (manifest.c) ---- */

/* The value of the header record (a canonical std::string BlobProto). */
const unsigned char *ct__minidb_header_value(size_t *len);
/* Version the header of a file declares, for messages; 0 if the value
 * is not a cortado header at all. */
int ct__minidb_header_version(const void *val, size_t len);

struct ct__manifest_entry {
    uint64_t offset; /* of the record's 8-byte length header */
    uint64_t vlen;
    uint32_t klen;
    uint32_t crc;    /* CRC32C of the value bytes */
    const char *key; /* borrowed from the manifest buffer */
};

struct ct__manifest {
    struct ct__manifest_entry *e;
    size_t n;
    struct Caffe2__BlobProto *proto; /* holds the content e[].key points in */
};

/* Appends one entry to an entry buffer (the writer's running list). */
int ct__manifest_add(struct ct__buf *entries, uint64_t offset, const void *key,
                     uint32_t klen, uint64_t vlen, uint32_t crc);
/* The manifest record value for n entries (canonical BlobProto). */
int ct__manifest_value(const struct ct__buf *entries, uint64_t n,
                       struct ct__buf *out, ct_status_t *st);
/* Parses and checks a manifest record value: BlobProto bytes exactly as
 * the writer produces them, magic, version, entry bounds, its own
 * CRC32C. where names the file and offset in messages. Errors:
 * CT_ECORRUPT, CT_ENOTSUP (newer version), CT_ENOMEM. */
int ct__manifest_parse(const void *val, size_t len, const char *where,
                       struct ct__manifest *m, ct_status_t *st);
void ct__manifest_destroy(struct ct__manifest *m);
/* True when a record value looks like a cortado manifest or header
 * (parsed as BlobProto with a cortado name, or manifest magic inside):
 * tells a damaged cortado record from foreign data. */
bool ct__minidb_value_is_ours(const void *val, size_t len);

/* ---- paths and patterns (path.c) ---- */

/* Joins and checks a Save / Load / DBExists path (reliability checklist
 * C10). absolute: db is used as given. Otherwise db must be relative,
 * without ".." components, and is joined to root; the result must stay
 * inside root once symbolic links are resolved (checked on the deepest
 * existing ancestor). *out is ct__malloc'd. Errors: CT_EPATH, CT_ENOMEM. */
int ct__path_resolve(const char *root, const char *db, bool absolute,
                     char **out, ct_status_t *st);
/* Lexical part only (no file system access), for argument checks. */
int ct__path_check_lexical(const char *db, bool absolute, ct_status_t *st);

/* A checkpoint pattern, validated once: literal text with at most one
 * integer conversion (%d, %i, %u with flags "-+ 0", width, precision and
 * length modifiers hh h l ll j z t q L ignored) and "%%". */
struct ct__pattern {
    char fmt[32]; /* the conversion rebuilt for int64, or "" when none */
    size_t conv_at, conv_len; /* where the conversion sits in the pattern */
};
/* Errors: CT_EARG "checkpoint pattern P: unsupported conversion %s at
 * offset N (only one %d-style integer conversion is substituted)". */
int ct__pattern_parse(const char *pattern, struct ct__pattern *p,
                      ct_status_t *st);
/* The pattern with iter substituted ("%%" becomes "%"). *out is
 * ct__malloc'd. CT_ENOMEM. */
int ct__pattern_format(const char *pattern, const struct ct__pattern *p,
                       int64_t iter, char **out, ct_status_t *st);

/* ---- CRC ---- */

uint32_t ct__crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* CT_STORAGE_STORAGE_IMPL_H */
