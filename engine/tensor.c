/* cortado: tensors and their refcounted storage.
 *
 * Storage is immutable in size: a resize that changes the byte size, the
 * dtype, or that finds the storage shared swaps in a new storage and drops
 * the old reference. That keeps a snapshot (a second reference held by a
 * checkpoint) intact while the net keeps writing its own copy. String
 * elements are owned by the storage and freed with it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cortado/tensor.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/tensor_impl.h"

static const struct {
    const char *name;
    size_t size;
} dtype_info[CT_DTYPE_COUNT] = {
    [CT_DTYPE_UNDEFINED] = {"UNDEFINED", 0},
    [CT_DTYPE_F32] = {"FLOAT", 4},
    [CT_DTYPE_I32] = {"INT32", 4},
    [CT_DTYPE_BYTE] = {"BYTE", 1},
    [CT_DTYPE_STRING] = {"STRING", sizeof(ct_str_t)},
    [CT_DTYPE_BOOL] = {"BOOL", 1},
    [CT_DTYPE_U8] = {"UINT8", 1},
    [CT_DTYPE_I8] = {"INT8", 1},
    [CT_DTYPE_U16] = {"UINT16", 2},
    [CT_DTYPE_I16] = {"INT16", 2},
    [CT_DTYPE_I64] = {"INT64", 8},
    [11] = {"UNDEFINED", 0},
    [CT_DTYPE_F16] = {"FLOAT16", 2},
    [CT_DTYPE_F64] = {"DOUBLE", 8},
};

bool ct_dtype_valid(int dt)
{
    return dt > 0 && dt < CT_DTYPE_COUNT && dtype_info[dt].size != 0;
}

size_t ct_dtype_size(ct_dtype_t dt)
{
    return ct_dtype_valid((int)dt) ? dtype_info[dt].size : 0;
}

const char *ct_dtype_name(ct_dtype_t dt)
{
    return ct_dtype_valid((int)dt) ? dtype_info[dt].name : "UNDEFINED";
}

int ct_dtype_parse(const char *name, ct_dtype_t *out)
{
    static const struct {
        const char *alias;
        ct_dtype_t dt;
    } aliases[] = {
        {"float32", CT_DTYPE_F32}, {"f32", CT_DTYPE_F32},
        {"float", CT_DTYPE_F32},   {"int32", CT_DTYPE_I32},
        {"i32", CT_DTYPE_I32},     {"int", CT_DTYPE_I32},
        {"byte", CT_DTYPE_BYTE},   {"string", CT_DTYPE_STRING},
        {"str", CT_DTYPE_STRING},  {"bool", CT_DTYPE_BOOL},
        {"uint8", CT_DTYPE_U8},    {"u8", CT_DTYPE_U8},
        {"int8", CT_DTYPE_I8},     {"i8", CT_DTYPE_I8},
        {"uint16", CT_DTYPE_U16},  {"u16", CT_DTYPE_U16},
        {"int16", CT_DTYPE_I16},   {"i16", CT_DTYPE_I16},
        {"int64", CT_DTYPE_I64},   {"i64", CT_DTYPE_I64},
        {"long", CT_DTYPE_I64},    {"float16", CT_DTYPE_F16},
        {"f16", CT_DTYPE_F16},     {"half", CT_DTYPE_F16},
        {"double", CT_DTYPE_F64},  {"float64", CT_DTYPE_F64},
        {"f64", CT_DTYPE_F64},
    };
    int i;
    size_t k;

    for (i = 1; i < CT_DTYPE_COUNT; i++) {
        if (ct_dtype_valid(i) && strcasecmp(name, dtype_info[i].name) == 0) {
            *out = (ct_dtype_t)i;
            return CT_OK;
        }
    }
    for (k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++) {
        if (strcasecmp(name, aliases[k].alias) == 0) {
            *out = aliases[k].dt;
            return CT_OK;
        }
    }
    return CT_EINVAL;
}

const char *ct_dims_str(int ndim, const int64_t *dims, char *buf, size_t size)
{
    size_t off = 0;
    int i, n;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    n = snprintf(buf, size, "[");
    off = n > 0 ? (size_t)n : 0;
    for (i = 0; i < ndim && off < size; i++) {
        n = snprintf(buf + off, size - off, "%s%lld", i ? ", " : "",
                     (long long)dims[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
    return buf;
}

const char *ct_tensor_shape_str(const ct_tensor_t *t, char *buf, size_t size)
{
    return ct_dims_str(t->ndim, t->dims, buf, size);
}

int ct_dims_numel(int ndim, const int64_t *dims, int64_t *out, ct_status_t *st)
{
    int64_t n = 1;
    int i;

    if (ndim < 0 || ndim > CT_MAX_DIMS)
        return ct_status_setf(st, CT_ESHAPE, "rank %d outside [0, %d]", ndim,
                              CT_MAX_DIMS);
    for (i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return ct_status_setf(st, CT_ESHAPE, "dim %d is negative (%lld)", i,
                                  (long long)dims[i]);
    }
    for (i = 0; i < ndim; i++) {
        if (dims[i] != 0 && n > INT64_MAX / dims[i]) {
            char buf[160];
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "element count of shape %s overflows int64",
                                  ct_dims_str(ndim, dims, buf, sizeof(buf)));
        }
        n *= dims[i];
    }
    *out = n;
    return CT_OK;
}

/* ---- storage ---- */

static int storage_new(ct_engine_t *eng, ct_dtype_t dt, int64_t numel,
                       const char *what, struct ct__storage **out,
                       ct_status_t *st)
{
    struct ct__storage *s;
    size_t esz = ct_dtype_size(dt);
    size_t nbytes;
    int rc;

    *out = NULL;
    if ((uint64_t)numel > SIZE_MAX / esz)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "%s: %lld elements of %zu bytes overflow size_t",
                              what, (long long)numel, esz);
    nbytes = (size_t)numel * esz;
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM, "%s: out of memory", what);
    if (nbytes > 0) {
        rc = ct__engine_alloc(eng, nbytes, what, &s->data, st);
        if (rc != CT_OK) {
            ct__free(s);
            return rc;
        }
        memset(s->data, 0, nbytes);
    }
    atomic_init(&s->refs, 1);
    s->dtype = dt;
    s->nbytes = nbytes;
    s->numel = numel;
    s->eng = eng;
    *out = s;
    return CT_OK;
}

static void storage_unref(struct ct__storage *s)
{
    if (s == NULL)
        return;
    /* acq_rel: the release half publishes this holder's writes; the
     * acquire half, on the last drop, makes every holder's writes visible
     * before the data (and its strings) are freed. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->dtype == CT_DTYPE_STRING && s->data != NULL) {
        ct_str_t *e = s->data;
        int64_t i;
        for (i = 0; i < s->numel; i++)
            ct__free(e[i].data);
    }
    ct__engine_free(s->eng, s->data, s->nbytes);
    ct__free(s);
}

static void storage_ref(struct ct__storage *s)
{
    /* relaxed: a new reference is taken from an existing one, which
     * already keeps the storage alive. */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static int storage_clone(const struct ct__storage *src, ct_engine_t *eng,
                         const char *what, struct ct__storage **out,
                         ct_status_t *st);

/* ---- tensors ---- */

int ct_tensor_new(ct_engine_t *eng, ct_tensor_t **out, ct_status_t *st)
{
    ct_tensor_t *t = ct__calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL)
        return ct_status_setf(st, CT_ENOMEM, "tensor: out of memory");
    t->dtype = CT_DTYPE_UNDEFINED;
    t->ndim = 1;
    t->dims[0] = 0;
    t->numel = 0;
    t->eng = eng;
    *out = t;
    return CT_OK;
}

int ct_tensor_new_shape(ct_engine_t *eng, ct_dtype_t dt, int ndim,
                        const int64_t *dims, ct_tensor_t **out, ct_status_t *st)
{
    ct_tensor_t *t;
    int rc = ct_tensor_new(eng, &t, st);

    *out = NULL;
    if (rc != CT_OK)
        return rc;
    rc = ct_tensor_resize(t, dt, ndim, dims, st);
    if (rc != CT_OK) {
        ct_tensor_free(t);
        return rc;
    }
    *out = t;
    return CT_OK;
}

void ct_tensor_free(ct_tensor_t *t)
{
    if (t == NULL)
        return;
    storage_unref(t->storage);
    ct__free(t);
}

ct_dtype_t ct_tensor_dtype(const ct_tensor_t *t)
{
    return t->dtype;
}
int ct_tensor_ndim(const ct_tensor_t *t)
{
    return t->ndim;
}
const int64_t *ct_tensor_dims(const ct_tensor_t *t)
{
    return t->dims;
}
int64_t ct_tensor_numel(const ct_tensor_t *t)
{
    return t->numel;
}

int64_t ct_tensor_dim(const ct_tensor_t *t, int i)
{
    CT_ASSERT(i >= 0 && i < t->ndim, "dim %d of a %d-d tensor", i, t->ndim);
    return t->dims[i];
}

size_t ct_tensor_nbytes(const ct_tensor_t *t)
{
    return (size_t)t->numel * ct_dtype_size(t->dtype);
}

void *ct_tensor_data(ct_tensor_t *t)
{
    return (t->storage != NULL && t->numel > 0) ? t->storage->data : NULL;
}

const void *ct_tensor_cdata(const ct_tensor_t *t)
{
    return (t->storage != NULL && t->numel > 0) ? t->storage->data : NULL;
}

int ct_tensor_storage_refs(const ct_tensor_t *t)
{
    return t->storage == NULL
               ? 0
               : atomic_load_explicit(&t->storage->refs, memory_order_relaxed);
}

int ct_tensor_resize(ct_tensor_t *t, ct_dtype_t dt, int ndim,
                     const int64_t *dims, ct_status_t *st)
{
    struct ct__storage *s;
    int64_t numel;
    int rc;
    char what[200], shape[128];

    if (!ct_dtype_valid((int)dt))
        return ct_status_setf(st, CT_ETYPE, "invalid dtype %d", (int)dt);
    rc = ct_dims_numel(ndim, dims, &numel, st);
    if (rc != CT_OK)
        return rc;
    if (t->storage != NULL && t->storage->dtype == dt &&
        t->storage->numel == numel && ct_tensor_storage_refs(t) == 1) {
        /* Same bytes, sole owner: keep the storage (in-place ops and
         * repeated runs allocate nothing). */
    } else if (t->storage != NULL && t->storage->dtype == dt &&
               t->storage->numel == numel) {
        /* Same bytes but shared (e.g. a checkpoint snapshot holds it):
         * copy on write. The contents must survive, because an in-place
         * op reads its input through this very tensor after asking for
         * its output. */
        snprintf(what, sizeof(what), "copy-on-write of tensor %s %s",
                 ct_dims_str(ndim, dims, shape, sizeof(shape)),
                 ct_dtype_name(dt));
        rc = storage_clone(t->storage, t->eng, what, &s, st);
        if (rc != CT_OK)
            return rc;
        storage_unref(t->storage);
        t->storage = s;
    } else {
        snprintf(what, sizeof(what), "tensor %s %s",
                 ct_dims_str(ndim, dims, shape, sizeof(shape)),
                 ct_dtype_name(dt));
        rc = storage_new(t->eng, dt, numel, what, &s, st);
        if (rc != CT_OK)
            return rc;
        storage_unref(t->storage);
        t->storage = s;
    }
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
    t->numel = numel;
    return CT_OK;
}

int ct_tensor_reshape(ct_tensor_t *t, int ndim, const int64_t *dims,
                      ct_status_t *st)
{
    int64_t numel;
    int rc = ct_dims_numel(ndim, dims, &numel, st);
    char a[128], b[128];

    if (rc != CT_OK)
        return rc;
    if (numel != t->numel)
        return ct_status_setf(
            st, CT_ESHAPE,
            "cannot reshape %s (%lld elements) to %s "
            "(%lld elements)",
            ct_tensor_shape_str(t, a, sizeof(a)), (long long)t->numel,
            ct_dims_str(ndim, dims, b, sizeof(b)), (long long)numel);
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
    return CT_OK;
}

/* A new storage holding a deep copy of src's elements (strings
 * duplicated). */
static int storage_clone(const struct ct__storage *src, ct_engine_t *eng,
                         const char *what, struct ct__storage **out,
                         ct_status_t *st)
{
    struct ct__storage *s;
    int rc = storage_new(eng, src->dtype, src->numel, what, &s, st);

    *out = NULL;
    if (rc != CT_OK)
        return rc;
    if (src->dtype == CT_DTYPE_STRING) {
        const ct_str_t *a = src->data;
        ct_str_t *b = s->data;
        int64_t i;
        for (i = 0; i < src->numel; i++) {
            if (a[i].len == 0)
                continue;
            b[i].data = ct__malloc(a[i].len);
            if (b[i].data == NULL) {
                storage_unref(s);
                return ct_status_setf(st, CT_ENOMEM,
                                      "%s: out of memory for string %lld", what,
                                      (long long)i);
            }
            memcpy(b[i].data, a[i].data, a[i].len);
            b[i].len = a[i].len;
        }
    } else if (s->nbytes > 0) {
        memcpy(s->data, src->data, s->nbytes);
    }
    *out = s;
    return CT_OK;
}

int ct_tensor_copy(ct_tensor_t *dst, const ct_tensor_t *src, ct_status_t *st)
{
    struct ct__storage *s = NULL;
    char what[200], shape[128];
    int rc;

    CT_ASSERT(dst != src, "ct_tensor_copy onto itself");
    if (src->dtype == CT_DTYPE_UNDEFINED || src->storage == NULL) {
        storage_unref(dst->storage);
        dst->storage = NULL;
        dst->dtype = src->dtype;
        dst->ndim = src->ndim;
        memcpy(dst->dims, src->dims, sizeof(dst->dims));
        dst->numel = src->numel;
        return CT_OK;
    }
    snprintf(what, sizeof(what), "copy of tensor %s %s",
             ct_tensor_shape_str(src, shape, sizeof(shape)),
             ct_dtype_name(src->dtype));
    rc = storage_clone(src->storage, dst->eng, what, &s, st);
    if (rc != CT_OK)
        return rc;
    storage_unref(dst->storage);
    dst->storage = s;
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    memcpy(dst->dims, src->dims, sizeof(dst->dims));
    dst->numel = src->numel;
    return CT_OK;
}

void ct_tensor_share(ct_tensor_t *dst, const ct_tensor_t *src)
{
    if (dst == src)
        return;
    if (src->storage != NULL)
        storage_ref(src->storage);
    storage_unref(dst->storage);
    dst->storage = src->storage;
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    memcpy(dst->dims, src->dims, sizeof(dst->dims));
    dst->numel = src->numel;
}

int ct_tensor_set_string(ct_tensor_t *t, int64_t i, const char *s, size_t len,
                         ct_status_t *st)
{
    ct_str_t *e;
    char *copy = NULL;

    if (t->dtype != CT_DTYPE_STRING)
        return ct_status_setf(st, CT_ETYPE, "set_string on a %s tensor",
                              ct_dtype_name(t->dtype));
    if (i < 0 || i >= t->numel)
        return ct_status_setf(st, CT_EINVAL,
                              "string index %lld outside [0, %lld)",
                              (long long)i, (long long)t->numel);
    if (len > 0) {
        copy = ct__malloc(len);
        if (copy == NULL)
            return ct_status_setf(st, CT_ENOMEM,
                                  "out of memory for a %zu-byte string", len);
        memcpy(copy, s, len);
    }
    e = (ct_str_t *)t->storage->data + i;
    ct__free(e->data);
    e->data = copy;
    e->len = len;
    return CT_OK;
}

/* ---- float16 ---- */

float ct_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;

    if (exp == 0) {
        /* Zero or subnormal: value = man * 2^-24. */
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, sizeof(f));
    return f;
}

uint16_t ct_f32_to_f16(float f)
{
    uint32_t x, sign, man;
    int32_t exp;

    memcpy(&x, &f, sizeof(x));
    sign = (x >> 16) & 0x8000u;
    exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    man = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) /* inf or nan (keep nan quiet) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        uint32_t shift, half, rem;
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        shift = (uint32_t)(14 - exp);
        half = 1u << (shift - 1);
        rem = man & ((1u << shift) - 1);
        man >>= shift;
        if (rem > half || (rem == half && (man & 1)))
            man++;
        return (uint16_t)(sign | man);
    }
    {
        uint32_t rem = man & 0x1fffu;
        uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
            h++; /* may carry into the exponent: correct rounding */
        return (uint16_t)h;
    }
}
