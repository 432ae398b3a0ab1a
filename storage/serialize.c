/* cortado: blobs to Caffe2 BlobProto records (spec §4.3, §4.5).
 *
 * Design note. A tensor is cut into chunks of c elements (c from the
 * BlobSerializationOptions rule: -1 none, 0 the default 1,000,000, n),
 * starting at 0, c, 2c ... while start < max(numel, 1), so an empty
 * tensor still gives one chunk. Chunk k is stored under "<name>#%<k>"
 * ("#%0" also when unchunked) as
 *
 *   BlobProto  { name, type "Tensor", tensor }
 *   TensorProto{ dims (all of them, every chunk), data_type (always
 *                present), <data field>, name, device_detail
 *                {device_type 0}, segment {begin, end}, data_format 0
 *                (float only) }
 *
 * with every field in field-number order, as C++ protobuf writes them, so
 * the bytes are those of Caffe2 and deterministic (chunks in order, not
 * by 16 racing threads as in Caffe2). Data fields per dtype: float packed
 * float_data (bfloat16 option: raw_data, data_format 1); double packed
 * double_data; int64 packed int64_data; int32, bool, uint8, int8,
 * uint16, int16 packed int32_data (values widened); float16 int32_data of
 * the bit patterns; strings one string_data each; BYTE byte_data (Caffe2
 * refuses to write BYTE but reads it; we write it so BYTE tensors round
 * trip). Field 9 (double_data) and 10 (int64_data) come after name and
 * device_detail in that order.
 *
 * The encoder is written by hand on the wire rules rather than through
 * protobuf-c so that float and double payloads are handed to the DB as
 * pieces borrowed from the tensor (no copy); the tests check its bytes
 * against protobuf-c's packer and spec §4.5.
 */
#include <stdio.h>
#include <string.h>

#include "engine/alloc.h"
#include "engine/tensor_impl.h"
#include "storage/storage_impl.h"

#define DEFAULT_CHUNK 1000000

/* TensorProto field numbers. */
enum {
    F_DIMS = 1,
    F_DATA_TYPE = 2,
    F_FLOAT = 3,
    F_INT32 = 4,
    F_BYTE = 5,
    F_STRING = 6,
    F_NAME = 7,
    F_DEVICE = 8,
    F_DOUBLE = 9,
    F_INT64 = 10,
    F_SEGMENT = 11,
    F_RAW = 13,
    F_FORMAT = 15,
};

int64_t ct__chunk_len(int64_t numel, const struct ct_serialize_options *o)
{
    int64_t c = o != NULL ? o->chunk_size : 0;

    if (c == -1)
        return numel < INT64_MAX ? numel + 1 : INT64_MAX;
    if (c == 0)
        return DEFAULT_CHUNK;
    return c;
}

struct enc {
    struct ct__buf pre;  /* record value prefix: BlobProto up to tensor */
    struct ct__buf a;    /* TensorProto bytes before the borrowed payload */
    struct ct__buf b;    /* TensorProto bytes after it */
    struct ct__buf keyb; /* the key */
};

static int put_len_field(struct ct__buf *b, unsigned field, const void *p,
                         size_t n)
{
    int rc = ct__buf_reserve(b, 16 + n);

    if (rc != CT_OK)
        return rc;
    ct__buf_put_tag(b, field, CT_PB_LEN);
    ct__buf_put_varint(b, n);
    ct__buf_put(b, p, n);
    return CT_OK;
}

static int put_varint_field(struct ct__buf *b, unsigned field, uint64_t v)
{
    int rc = ct__buf_reserve(b, 16);

    if (rc != CT_OK)
        return rc;
    ct__buf_put_tag(b, field, CT_PB_VARINT);
    ct__buf_put_varint(b, v);
    return CT_OK;
}

/* Widened integer i of a tensor whose elements become int32_data. */
static int64_t elem_as_int(const void *data, ct_dtype_t dt, int64_t i)
{
    switch (dt) {
    case CT_DTYPE_I32:
        return ((const int32_t *)data)[i];
    case CT_DTYPE_I64:
        return ((const int64_t *)data)[i];
    case CT_DTYPE_BOOL:
        return ((const uint8_t *)data)[i] != 0;
    case CT_DTYPE_U8:
        return ((const uint8_t *)data)[i];
    case CT_DTYPE_I8:
        return ((const int8_t *)data)[i];
    case CT_DTYPE_U16:
    case CT_DTYPE_F16:
        return ((const uint16_t *)data)[i];
    case CT_DTYPE_I16:
        return ((const int16_t *)data)[i];
    default:
        CT_ASSERT(0, "dtype %d is not an integer dtype", (int)dt);
    }
    return 0;
}

/* Packed varint field of elements [begin, end). */
static int put_packed_ints(struct ct__buf *b, unsigned field, const void *data,
                           ct_dtype_t dt, int64_t begin, int64_t end)
{
    size_t n = 0;
    int64_t i;
    int rc;

    if (end == begin)
        return CT_OK;
    for (i = begin; i < end; i++)
        n += ct__varint_len((uint64_t)elem_as_int(data, dt, i));
    rc = ct__buf_reserve(b, 16 + n);
    if (rc != CT_OK)
        return rc;
    ct__buf_put_tag(b, field, CT_PB_LEN);
    ct__buf_put_varint(b, n);
    for (i = begin; i < end; i++)
        ct__buf_put_varint(b, (uint64_t)elem_as_int(data, dt, i));
    return CT_OK;
}

/* bfloat16: the upper half of the float, rounded to nearest even (NaNs
 * stay NaN), little-endian. */
static int put_bf16(struct ct__buf *b, const float *x, int64_t begin,
                    int64_t end)
{
    size_t n = (size_t)(end - begin) * 2;
    int64_t i;
    int rc = ct__buf_reserve(b, 16 + n);

    if (rc != CT_OK)
        return rc;
    ct__buf_put_tag(b, F_RAW, CT_PB_LEN);
    ct__buf_put_varint(b, n);
    for (i = begin; i < end; i++) {
        uint32_t u;
        uint16_t h;
        unsigned char le[2];
        memcpy(&u, &x[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            h = (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
        else
            h = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
        le[0] = (unsigned char)h;
        le[1] = (unsigned char)(h >> 8);
        ct__buf_put(b, le, 2);
    }
    return CT_OK;
}

static int put_strings(struct ct__buf *b, const ct_str_t *s, int64_t begin,
                       int64_t end)
{
    int64_t i;
    int rc;

    for (i = begin; i < end; i++) {
        rc = put_len_field(b, F_STRING, s[i].data, s[i].len);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

static int put_tail(struct ct__buf *b, const char *name, size_t name_len,
                    bool device)
{
    static const unsigned char dev[] = {0x08, 0x00}; /* device_type 0 */
    int rc = put_len_field(b, F_NAME, name, name_len);

    if (rc == CT_OK && device)
        rc = put_len_field(b, F_DEVICE, dev, sizeof(dev));
    return rc;
}

static int put_segment(struct ct__buf *b, int64_t begin, int64_t end)
{
    size_t n =
        2 + ct__varint_len((uint64_t)begin) + ct__varint_len((uint64_t)end);
    int rc = ct__buf_reserve(b, 8 + n);

    if (rc != CT_OK)
        return rc;
    ct__buf_put_tag(b, F_SEGMENT, CT_PB_LEN);
    ct__buf_put_varint(b, n);
    ct__buf_put_tag(b, 1, CT_PB_VARINT);
    ct__buf_put_varint(b, (uint64_t)begin);
    ct__buf_put_tag(b, 2, CT_PB_VARINT);
    ct__buf_put_varint(b, (uint64_t)end);
    return CT_OK;
}

/* Encodes chunk [begin, end) of t into e (a, b) and *payload. */
static int encode_chunk(struct enc *e, const char *name, size_t name_len,
                        const ct_tensor_t *t, int float_format, int64_t begin,
                        int64_t end, struct ct_db_iov *payload)
{
    ct_dtype_t dt = t->dtype;
    const void *data = ct_tensor_cdata(t);
    size_t isz = ct_dtype_size(dt);
    int64_t n = end - begin;
    int i, rc = CT_OK;

    e->a.len = e->b.len = 0;
    payload->base = NULL;
    payload->len = 0;
    for (i = 0; i < t->ndim && rc == CT_OK; i++)
        rc = put_varint_field(&e->a, F_DIMS, (uint64_t)t->dims[i]);
    if (rc == CT_OK)
        rc = put_varint_field(&e->a, F_DATA_TYPE, (uint64_t)dt);
    if (rc != CT_OK)
        return rc;
    switch (dt) {
    case CT_DTYPE_F32:
        if (float_format == 2) {
            rc = put_tail(&e->b, name, name_len, true);
            if (rc == CT_OK)
                rc = put_segment(&e->b, begin, end);
            if (rc == CT_OK)
                rc = put_bf16(&e->b, data, begin, end);
            if (rc == CT_OK)
                rc = put_varint_field(&e->b, F_FORMAT, 1);
            return rc;
        }
        /* fall through */
    case CT_DTYPE_BYTE:
        if (n > 0 || dt == CT_DTYPE_BYTE) {
            rc = ct__buf_reserve(&e->a, 16);
            if (rc != CT_OK)
                return rc;
            ct__buf_put_tag(&e->a, dt == CT_DTYPE_F32 ? F_FLOAT : F_BYTE,
                            CT_PB_LEN);
            ct__buf_put_varint(&e->a, (uint64_t)n * isz);
            payload->base = n > 0 ? (const char *)data + begin * isz : NULL;
            payload->len = (size_t)n * isz;
        }
        rc = put_tail(&e->b, name, name_len, true);
        if (rc == CT_OK)
            rc = put_segment(&e->b, begin, end);
        if (rc == CT_OK && dt == CT_DTYPE_F32)
            rc = put_varint_field(&e->b, F_FORMAT, 0);
        return rc;
    case CT_DTYPE_F64:
        rc = put_tail(&e->a, name, name_len, true);
        if (rc == CT_OK && n > 0) {
            rc = ct__buf_reserve(&e->a, 16);
            if (rc != CT_OK)
                return rc;
            ct__buf_put_tag(&e->a, F_DOUBLE, CT_PB_LEN);
            ct__buf_put_varint(&e->a, (uint64_t)n * 8);
            payload->base = (const double *)data + begin;
            payload->len = (size_t)n * 8;
        }
        return rc == CT_OK ? put_segment(&e->b, begin, end) : rc;
    case CT_DTYPE_I64:
        rc = put_tail(&e->a, name, name_len, true);
        if (rc == CT_OK)
            rc = put_packed_ints(&e->a, F_INT64, data, dt, begin, end);
        return rc == CT_OK ? put_segment(&e->a, begin, end) : rc;
    case CT_DTYPE_STRING:
        rc = put_strings(&e->a, data, begin, end);
        break;
    case CT_DTYPE_UNDEFINED:
        break;
    default: /* everything stored as int32_data */
        rc = put_packed_ints(&e->a, F_INT32, data, dt, begin, end);
        break;
    }
    if (rc == CT_OK)
        rc = put_tail(&e->a, name, name_len, true);
    return rc == CT_OK ? put_segment(&e->a, begin, end) : rc;
}

/* BlobProto prefix for a tensor chunk of tp_len bytes. */
static int encode_blob_prefix(struct ct__buf *pre, const char *name,
                              size_t name_len, uint64_t tp_len)
{
    int rc;

    pre->len = 0;
    rc = put_len_field(pre, 1, name, name_len);
    if (rc == CT_OK)
        rc = put_len_field(pre, 2, "Tensor", 6);
    if (rc == CT_OK)
        rc = ct__buf_reserve(pre, 16);
    if (rc == CT_OK) {
        ct__buf_put_tag(pre, 3, CT_PB_LEN);
        ct__buf_put_varint(pre, tp_len);
    }
    return rc;
}

int ct__serialize_string_value(const char *name, const void *bytes, size_t len,
                               struct ct__buf *out, ct_status_t *st)
{
    int rc;

    out->len = 0;
    rc = put_len_field(out, 1, name, strlen(name));
    if (rc == CT_OK)
        rc = put_len_field(out, 2, "std::string", 11);
    if (rc == CT_OK)
        rc = put_len_field(out, 4, bytes, len);
    if (rc != CT_OK)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory serializing string blob %s", name);
    return CT_OK;
}

static int check_item(const struct ct_save_item *it, ct_status_t *st)
{
    const struct ct_serialize_options *o = it->opts;

    if (it->name == NULL || it->name[0] == '\0')
        return ct_status_setf(st, CT_EINVAL, "a blob to save has no name");
    if (strstr(it->name, "#%") != NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "blob name \"%s\" contains the chunk separator "
                              "\"#%%\", so it could not be loaded back",
                              it->name);
    if (o != NULL && o->chunk_size < -1)
        return ct_status_setf(st, CT_EINVAL,
                              "blob %s: chunk_size %lld (want -1, 0 or > 0)",
                              it->name, (long long)o->chunk_size);
    if (o != NULL && (o->float_format < 0 || o->float_format > 2))
        return ct_status_setf(st, CT_EINVAL, "blob %s: unknown float_format %d",
                              it->name, o->float_format);
    if (it->tensor == NULL && it->str == NULL && it->str_len > 0)
        return ct_status_setf(st, CT_EINVAL, "blob %s: NULL string", it->name);
    if (it->tensor != NULL && it->tensor->dtype == CT_DTYPE_UNDEFINED &&
        it->tensor->numel != 0)
        return ct_status_setf(st, CT_ETYPE,
                              "blob %s: tensor of %lld elements has no dtype",
                              it->name, (long long)it->tensor->numel);
    if (it->tensor != NULL && it->tensor->numel > 0 &&
        ct_tensor_cdata(it->tensor) == NULL)
        return ct_status_setf(st, CT_ESTATE,
                              "The input does not have data input yet: %s",
                              it->name);
    return CT_OK;
}

int ct__serialize_item(const struct ct_save_item *it, ct__record_cb cb,
                       void *ctx, ct_status_t *st)
{
    struct enc e;
    size_t name_len;
    int64_t c, begin, numel, k;
    int rc = check_item(it, st);

    if (rc != CT_OK)
        return rc;
    memset(&e, 0, sizeof(e));
    name_len = strlen(it->name);
    if (it->tensor == NULL) {
        struct ct_db_iov v;
        uint64_t vlen;
        rc = ct__serialize_string_value(it->name, it->str, it->str_len, &e.a,
                                        st);
        if (rc == CT_OK) {
            v.base = e.a.p;
            v.len = e.a.len;
            vlen = e.a.len;
            rc = cb(ctx, it->name, name_len, &v, 1, vlen, st);
        }
        ct__buf_destroy(&e.a);
        return rc;
    }
    numel = it->tensor->numel;
    c = ct__chunk_len(numel, it->opts);
    for (begin = 0, k = 0; begin < (numel > 1 ? numel : 1); begin += c, k++) {
        int64_t end = numel - begin < c ? numel : begin + c;
        struct ct_db_iov v[4];
        uint64_t tp_len;
        char kbuf[32];
        int kn = snprintf(kbuf, sizeof(kbuf), "#%%%lld", (long long)k);

        rc = encode_chunk(&e, it->name, name_len, it->tensor,
                          it->opts != NULL ? it->opts->float_format : 0, begin,
                          end, &v[2]);
        if (rc == CT_OK) {
            tp_len = e.a.len + v[2].len + e.b.len;
            rc = encode_blob_prefix(&e.pre, it->name, name_len, tp_len);
        }
        if (rc == CT_OK) {
            e.keyb.len = 0;
            rc = ct__buf_reserve(&e.keyb, name_len + (size_t)kn + 1);
        }
        if (rc != CT_OK) {
            rc = ct_status_setf(st, CT_ENOMEM,
                                "out of memory serializing chunk %lld of %s",
                                (long long)k, it->name);
            break;
        }
        ct__buf_put(&e.keyb, it->name, name_len);
        ct__buf_put(&e.keyb, kbuf, (size_t)kn + 1);
        v[0].base = e.pre.p;
        v[0].len = e.pre.len;
        v[1].base = e.a.p;
        v[1].len = e.a.len;
        v[3].base = e.b.p;
        v[3].len = e.b.len;
        rc = cb(ctx, (const char *)e.keyb.p, e.keyb.len - 1, v, 4,
                e.pre.len + tp_len, st);
        if (rc != CT_OK)
            break;
        if (c >= numel - begin)
            break; /* also stops begin + c from overflowing */
    }
    ct__buf_destroy(&e.pre);
    ct__buf_destroy(&e.a);
    ct__buf_destroy(&e.b);
    ct__buf_destroy(&e.keyb);
    return rc;
}

/* ---- whole saves ---- */

struct save_ctx {
    ct_db_txn_t *txn;
    uint64_t n_records;
};

static int put_record(void *ctx, const char *key, size_t klen,
                      const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                      ct_status_t *st)
{
    struct save_ctx *s = ctx;
    int rc;

    (void)vlen;
    rc = ct_db_txn_putv(s->txn, key, klen, iov, n, st);
    if (rc == CT_OK)
        s->n_records++;
    return rc;
}

int ct_db_save_items(const char *type, const char *path, const char *db_options,
                     size_t db_options_len, const struct ct_save_item *items,
                     size_t n, struct ct_save_result *result, ct_status_t *st)
{
    struct save_ctx s = {NULL, 0};
    ct_db_t *db = NULL;
    uint64_t size = 0;
    size_t i;
    int rc;

    CT_ASSERT(type != NULL && path != NULL && (items != NULL || n == 0),
              "ct_db_save_items: NULL argument");
    for (i = 0; i < n; i++) {
        rc = check_item(&items[i], st);
        if (rc != CT_OK)
            return rc;
    }
    rc = ct_db_open(type, path, CT_DB_NEW, &db, st);
    if (rc != CT_OK)
        return rc;
    if (db_options != NULL)
        rc = ct_db_set_options(db, db_options, db_options_len, st);
    if (rc == CT_OK)
        rc = ct_db_txn_new(db, &s.txn, st);
    for (i = 0; i < n && rc == CT_OK; i++)
        rc = ct__serialize_item(&items[i], put_record, &s, st);
    if (rc == CT_OK)
        rc = ct_db_txn_commit(s.txn, st);
    ct_db_txn_free(s.txn);
    if (rc != CT_OK) {
        ct_db_free(db);
        return rc;
    }
    rc = ct__db_close_sized(db, &size, st);
    if (result != NULL && (rc == CT_OK || rc == CT_EDURABILITY)) {
        result->n_records = s.n_records;
        result->n_bytes = size;
    }
    return rc;
}
