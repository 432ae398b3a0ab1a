/* cortado: Caffe2 BlobProto records back into blobs (spec §4.4, §4.7).
 *
 * Design note. Load assembles each blob from one or more records with
 * Caffe2's BlobState rules (total and current element counts, the same
 * error texts), made stricter where Caffe2 let damage through:
 *   - every check runs before anything is allocated or written: dtype
 *     present and known, rank <= CT_MAX_DIMS, dims non-negative with a
 *     product that fits int64, segment inside the tensor, the data field
 *     holding exactly the segment's element count, and the element count
 *     times the dtype's smallest encoding no larger than the DB (so a
 *     record claiming 2^62 elements fails before the allocator is asked);
 *   - chunks of one tensor must agree on dtype and dims, and may not
 *     overlap (Caffe2 only counted elements, so a duplicated chunk could
 *     stand in for a missing one);
 * Decoding accepts any valid encoding: packed or unpacked repeated
 * fields, any field order (both through protobuf-c via ct_proto_unpack,
 * the guarded reader), the typed fields or little-endian raw_data
 * (ONNX-style) for fixed-width dtypes, byte_data for the small integer
 * and float16 dtypes (Caffe2's bytes-holder flag), int32_data otherwise.
 * Values in int32_data are cast to the narrow dtype as C++ does.
 */
#include <stdio.h>
#include <string.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "engine/tensor_impl.h"
#include "storage/storage_impl.h"

size_t ct__key_name_len(const char *key, size_t klen)
{
    size_t i;

    for (i = 0; i + 1 < klen; i++)
        if (key[i] == '#' && key[i + 1] == '%')
            return i;
    return klen;
}

void ct__blob_state_destroy(struct ct__blob_state *s)
{
    ct_tensor_free(s->tensor);
    ct__str_free(s->str);
    ct__free(s->segs);
    memset(s, 0, sizeof(*s));
}

int ct__blob_state_check(const struct ct__blob_state *s, const char *name,
                         ct_status_t *st)
{
    if (s->current != s->total)
        return ct_status_setf(st, CT_ECORRUPT,
                              "Data size mismatch for blob %s. Expected: %lld "
                              "Read: %lld",
                              name, (long long)s->total, (long long)s->current);
    return CT_OK;
}

/* Smallest number of bytes one element of dt takes in the file, given
 * how this chunk is encoded: 4 for float (2 for bfloat16), 8 for double,
 * 2 for a string (tag and length of an empty one), 1 otherwise (a varint
 * or a byte). With numel * this <= the db's size, a tensor's storage is
 * at most itemsize / this times the file size: 1x for float and double,
 * 8x for int64 small enough to be 1-byte varints. */
static uint64_t min_wire_bytes(ct_dtype_t dt, const Caffe2__TensorProto *tp)
{
    switch (dt) {
    case CT_DTYPE_F32:
        return tp->has_data_format && tp->data_format == 1 ? 2 : 4;
    case CT_DTYPE_STRING:
        return 2;
    case CT_DTYPE_F64:
        return 8;
    default:
        return 1;
    }
}

/* The element count the data field of tp holds for dtype dt, and where:
 * *src is the typed array or byte data, *mode says how to read it. */
enum src_mode {
    SRC_NONE,  /* count 0, nothing present */
    SRC_FLOAT, /* float_data */
    SRC_DOUBLE,
    SRC_INT32,
    SRC_INT64,
    SRC_BYTES, /* byte_data / raw_data, little-endian itemsize each */
    SRC_BF16,  /* raw_data, 2 bytes each */
    SRC_STRING
};

struct src {
    enum src_mode mode;
    const void *p;
    size_t n; /* elements */
};

static void pick_source(const Caffe2__TensorProto *tp, ct_dtype_t dt,
                        size_t isz, struct src *s)
{
    s->mode = SRC_NONE;
    s->p = NULL;
    s->n = 0;
    if (tp->has_data_format && tp->data_format == 1) {
        if (tp->has_raw_data) {
            s->mode = SRC_BF16;
            s->p = tp->raw_data.data;
            s->n = tp->raw_data.len / 2;
        }
        return;
    }
#define TYPED(field, m)                                                        \
    do {                                                                       \
        if (tp->n_##field > 0) {                                               \
            s->mode = m;                                                       \
            s->p = tp->field;                                                  \
            s->n = tp->n_##field;                                              \
            return;                                                            \
        }                                                                      \
    } while (0)
    switch (dt) {
    case CT_DTYPE_F32:
        TYPED(float_data, SRC_FLOAT);
        break;
    case CT_DTYPE_F64:
        TYPED(double_data, SRC_DOUBLE);
        break;
    case CT_DTYPE_I32:
        TYPED(int32_data, SRC_INT32);
        break;
    case CT_DTYPE_I64:
        TYPED(int64_data, SRC_INT64);
        break;
    case CT_DTYPE_STRING:
        TYPED(string_data, SRC_STRING);
        return;
    case CT_DTYPE_BYTE:
        break;
    default: /* bool, u8, i8, u16, i16, f16 */
        if (!tp->has_byte_data)
            TYPED(int32_data, SRC_INT32);
        break;
    }
#undef TYPED
    if (tp->has_byte_data && tp->byte_data.len > 0 && dt != CT_DTYPE_F32 &&
        dt != CT_DTYPE_F64 && dt != CT_DTYPE_I32 && dt != CT_DTYPE_I64) {
        s->mode = SRC_BYTES;
        s->p = tp->byte_data.data;
        s->n =
            tp->byte_data.len % isz == 0 ? tp->byte_data.len / isz : SIZE_MAX;
    } else if (tp->has_raw_data && tp->raw_data.len > 0) {
        s->mode = SRC_BYTES;
        s->p = tp->raw_data.data;
        s->n = tp->raw_data.len % isz == 0 ? tp->raw_data.len / isz : SIZE_MAX;
    }
}

static void fill(ct_tensor_t *t, int64_t begin, const struct src *s,
                 int64_t count)
{
    ct_dtype_t dt = t->dtype;
    size_t isz = ct_dtype_size(dt);
    char *dst = (char *)ct_tensor_data(t) + (size_t)begin * isz;
    int64_t i;

    switch (s->mode) {
    case SRC_NONE:
        break;
    case SRC_FLOAT:
    case SRC_DOUBLE:
    case SRC_BYTES:
        memcpy(dst, s->p, (size_t)count * isz);
        break;
    case SRC_BF16:
        for (i = 0; i < count; i++) {
            const unsigned char *b = (const unsigned char *)s->p + 2 * i;
            uint32_t u = ((uint32_t)b[0] | (uint32_t)b[1] << 8) << 16;
            memcpy(dst + 4 * i, &u, 4);
        }
        break;
    case SRC_INT64:
        if (dt == CT_DTYPE_I64)
            memcpy(dst, s->p, (size_t)count * 8);
        break;
    case SRC_INT32: {
        const int32_t *v = s->p;
        for (i = 0; i < count; i++) {
            switch (dt) {
            case CT_DTYPE_I32:
                ((int32_t *)dst)[i] = v[i];
                break;
            case CT_DTYPE_BOOL:
                ((uint8_t *)dst)[i] = v[i] != 0;
                break;
            case CT_DTYPE_U8:
            case CT_DTYPE_I8:
                ((uint8_t *)dst)[i] = (uint8_t)v[i];
                break;
            default: /* u16, i16, f16 */
                ((uint16_t *)dst)[i] = (uint16_t)v[i];
                break;
            }
        }
        break;
    }
    case SRC_STRING:
        break; /* strings are copied by the caller (they allocate) */
    }
}

static int check_dtype(const Caffe2__TensorProto *tp, const char *key,
                       ct_status_t *st)
{
    int dt = (int)tp->data_type;

    if (!tp->has_data_type)
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: Cannot deserialize tensor: "
                              "unrecognized data type (data_type absent)",
                              key);
    if (dt == CT_DTYPE_UNDEFINED || ct_dtype_valid(dt))
        return CT_OK;
    if (dt == 14 || dt == 15)
        return ct_status_setf(
            st, CT_ENOTSUP,
            "key %s: data_type %d (%s) needs a specialised "
            "deserializer cortado does not have",
            key, dt, dt == 14 ? "ZERO_COLLISION_HASH" : "REBATCHING_BUFFER");
    return ct_status_setf(st, CT_ECORRUPT,
                          "key %s: Cannot deserialize tensor: unrecognized "
                          "data type %d",
                          key, dt);
}

static bool same_shape(const ct_tensor_t *t, ct_dtype_t dt,
                       const Caffe2__TensorProto *tp)
{
    size_t i;

    if (t->dtype != dt || (size_t)t->ndim != tp->n_dims)
        return false;
    for (i = 0; i < tp->n_dims; i++)
        if (t->dims[i] != tp->dims[i])
            return false;
    return true;
}

/* Records [b, e) in the sorted segment list; CT_EEXIST on overlap. */
static int add_segment(struct ct__blob_state *s, int64_t b, int64_t e)
{
    size_t i, at;

    if (b == e)
        return CT_OK;
    for (at = 0; at < s->n_segs && s->segs[at][0] < b; at++)
        ;
    if ((at > 0 && s->segs[at - 1][1] > b) ||
        (at < s->n_segs && s->segs[at][0] < e))
        return CT_EEXIST;
    if (ct__grow((void **)&s->segs, &s->cap_segs, s->n_segs + 1,
                 sizeof(s->segs[0])) != CT_OK)
        return CT_ENOMEM;
    for (i = s->n_segs; i > at; i--) {
        s->segs[i][0] = s->segs[i - 1][0];
        s->segs[i][1] = s->segs[i - 1][1];
    }
    s->segs[at][0] = b;
    s->segs[at][1] = e;
    s->n_segs++;
    return CT_OK;
}

static int merge_tensor(struct ct__blob_state *s, ct_engine_t *eng,
                        const char *key, const Caffe2__TensorProto *tp,
                        uint64_t bound, ct_status_t *st)
{
    ct_dtype_t dt;
    int64_t dims[CT_MAX_DIMS], numel, begin, end, count;
    struct src src;
    ct_status_t tmp;
    char sbuf[160];
    size_t i;
    int ndim, rc;

    rc = check_dtype(tp, key, st);
    if (rc != CT_OK)
        return rc;
    dt = (ct_dtype_t)tp->data_type;
    if (tp->n_dims > CT_MAX_DIMS)
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: invalid tensor shape: rank %zu exceeds "
                              "%d",
                              key, tp->n_dims, CT_MAX_DIMS);
    ndim = (int)tp->n_dims;
    for (i = 0; i < tp->n_dims; i++)
        dims[i] = tp->dims[i];
    if (ct_dims_numel(ndim, dims, &numel, &tmp) != CT_OK)
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: invalid tensor shape: %s", key, tmp.msg);
    if (dt == CT_DTYPE_UNDEFINED) {
        if (numel != 0)
            return ct_status_setf(st, CT_ENOTSUP,
                                  "key %s: data_type UNDEFINED with %lld "
                                  "elements (nested blobs) is not supported",
                                  key, (long long)numel);
        /* Caffe2: an empty UNDEFINED tensor loads as FLOAT of shape [0]. */
        dt = CT_DTYPE_F32;
        ndim = 1;
        dims[0] = 0;
    }
    if (tp->has_data_format && tp->data_format != 0 &&
        !(tp->data_format == 1 && dt == CT_DTYPE_F32))
        return ct_status_setf(st, CT_ENOTSUP,
                              "key %s: unsupported serialization format %u "
                              "for %s",
                              key, tp->data_format, ct_dtype_name(dt));
    begin = tp->segment != NULL ? tp->segment->begin : 0;
    end = tp->segment != NULL ? tp->segment->end : numel;
    if (begin < 0 || begin > end || end > numel)
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: Invalid chunk %lld %lld with total "
                              "tensor size %lld",
                              key, (long long)begin, (long long)end,
                              (long long)numel);
    count = end - begin;
    pick_source(tp, dt, ct_dtype_size(dt), &src);
    if ((count > 0 || src.n > 0) && src.n != (size_t)count) {
        if (src.n == SIZE_MAX)
            snprintf(sbuf, sizeof(sbuf), "a partial number of");
        else
            snprintf(sbuf, sizeof(sbuf), "%zu", src.n);
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: Incorrect proto field size: the %s "
                              "data holds %s values, the chunk [%lld, %lld) "
                              "needs %lld",
                              key, ct_dtype_name(dt), sbuf, (long long)begin,
                              (long long)end, (long long)count);
    }
    if (bound > 0 && (uint64_t)numel > bound / min_wire_bytes(dt, tp))
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: invalid tensor shape %s: %lld %s "
                              "elements cannot fit in a db of %llu bytes",
                              key, ct_dims_str(ndim, dims, sbuf, sizeof(sbuf)),
                              (long long)numel, ct_dtype_name(dt),
                              (unsigned long long)bound);
    if (s->kind == 0) {
        rc = ct_tensor_new_shape(eng, dt, ndim, dims, &s->tensor, &tmp);
        if (rc != CT_OK)
            return ct_status_setf(st, rc, "key %s: %s", key, tmp.msg);
        s->kind = CT_BLOB_KIND_TENSOR;
        s->total = numel;
        s->current = 0;
    } else {
        if (s->kind != CT_BLOB_KIND_TENSOR)
            return ct_status_setf(st, CT_ECORRUPT, "Must be tensor %s", key);
        if (s->current >= s->total)
            return ct_status_setf(st, CT_ECORRUPT,
                                  "Found an extra part for an already filled "
                                  "tensor: %s",
                                  key);
        if (tp->segment == NULL)
            return ct_status_setf(
                st, CT_ECORRUPT, "Partial tensor must have a segment: %s", key);
        if (!same_shape(s->tensor, dt, tp))
            return ct_status_setf(
                st, CT_ECORRUPT,
                "key %s: chunk of %s %s differs from the "
                "first chunk's %s %s",
                key, ct_dtype_name(dt), ct_dims_str(ndim, dims, sbuf, 80),
                ct_dtype_name(s->tensor->dtype),
                ct_tensor_shape_str(s->tensor, sbuf + 80, 80));
    }
    rc = add_segment(s, begin, end);
    if (rc == CT_EEXIST)
        return ct_status_setf(st, CT_ECORRUPT,
                              "key %s: chunk [%lld, %lld) overlaps an "
                              "earlier chunk of the same tensor",
                              key, (long long)begin, (long long)end);
    if (rc != CT_OK)
        return ct_status_setf(st, CT_ENOMEM, "key %s: out of memory", key);
    if (count > s->total - s->current)
        return ct_status_setf(st, CT_ECORRUPT,
                              "Tensor parts are bigger than target size for "
                              "tensor: %s",
                              key);
    if (src.mode == SRC_STRING) {
        const ProtobufCBinaryData *v = src.p;
        int64_t k;
        for (k = 0; k < count; k++) {
            rc = ct_tensor_set_string(s->tensor, begin + k,
                                      (const char *)v[k].data, v[k].len, &tmp);
            if (rc != CT_OK)
                return ct_status_setf(st, rc, "key %s: %s", key, tmp.msg);
        }
    } else if (count > 0) {
        fill(s->tensor, begin, &src, count);
    }
    s->current += count;
    return CT_OK;
}

int ct__blob_state_merge(struct ct__blob_state *s, ct_engine_t *eng,
                         const char *key, const void *val, size_t len,
                         uint64_t bytes_bound, ct_status_t *st)
{
    ProtobufCMessage *msg;
    Caffe2__BlobProto *bp;
    ct_status_t tmp;
    const char *type;
    int rc;

    rc = ct_proto_unpack(&caffe2__blob_proto__descriptor, val, len, &msg, &tmp);
    if (rc != CT_OK)
        return ct_status_setf(st, rc == CT_ENOMEM ? rc : CT_ECORRUPT,
                              "key %s: Couldn't parse Proto: %s", key, tmp.msg);
    bp = (Caffe2__BlobProto *)msg;
    type = bp->type != NULL ? bp->type : "";
    if (bp->has_content_num_chunks) {
        rc = ct_status_setf(st, CT_ENOTSUP,
                            "key %s: chunked content (content_num_chunks) "
                            "of type \"%s\" is not supported",
                            key, type);
    } else if (strcmp(type, "Tensor") == 0) {
        if (bp->tensor == NULL)
            rc = ct_status_setf(st, CT_ECORRUPT,
                                "key %s: BlobProto of type Tensor has no "
                                "tensor",
                                key);
        else
            rc = merge_tensor(s, eng, key, bp->tensor, bytes_bound, st);
    } else if (strcmp(type, "std::string") == 0) {
        if (s->kind != 0) {
            rc = ct_status_setf(st, CT_ECORRUPT, "Blob duplicated: %s", key);
        } else {
            s->str = ct__str_new(bp->content.data, bp->content.len);
            if (s->str == NULL) {
                rc =
                    ct_status_setf(st, CT_ENOMEM, "key %s: out of memory", key);
            } else {
                s->kind = CT_BLOB_KIND_STRING;
                s->total = s->current = 1;
            }
        }
    } else {
        rc = ct_status_setf(st, CT_ENOTSUP,
                            "key %s: No registered deserializer for type "
                            "\"%s\"",
                            key, type);
    }
    ct_proto_free(msg);
    return rc;
}

int ct__tensor_from_proto(ct_engine_t *eng, const Caffe2__TensorProto *tp,
                          const char *what, uint64_t bytes_bound,
                          ct_tensor_t **out, ct_status_t *st)
{
    struct ct__blob_state s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = merge_tensor(&s, eng, what, tp, bytes_bound, st);
    if (rc == CT_OK)
        rc = ct__blob_state_check(&s, what, st);
    if (rc == CT_OK) {
        *out = s.tensor;
        s.tensor = NULL;
    }
    ct__blob_state_destroy(&s);
    return rc;
}
