/* cortado: a growable byte buffer and protobuf wire-format encoders.
 *
 * The serializer writes BlobProto / TensorProto bytes by hand (rather
 * than through protobuf-c's packer) so that large float and double
 * payloads go from the tensor to the file without a copy; these are its
 * primitives. Encoding follows the protobuf wire rules: varints are
 * little-endian base-128, a negative int32/int64 is sign-extended to 64
 * bits (10 bytes), length-delimited fields are tag, varint length, bytes.
 */
#include <string.h>

#include "engine/alloc.h"
#include "storage/storage_impl.h"

void ct__buf_init(struct ct__buf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
}

void ct__buf_destroy(struct ct__buf *b)
{
    ct__free(b->p);
    ct__buf_init(b);
}

int ct__buf_reserve(struct ct__buf *b, size_t n)
{
    size_t cap;
    unsigned char *p;

    if (n <= b->cap - b->len)
        return CT_OK;
    if (n > SIZE_MAX / 2 - b->len)
        return CT_ENOMEM;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap - b->len < n)
        cap *= 2;
    p = ct__realloc(b->p, cap);
    if (p == NULL)
        return CT_ENOMEM;
    b->p = p;
    b->cap = cap;
    return CT_OK;
}

int ct__buf_reserve_exact(struct ct__buf *b, size_t n)
{
    unsigned char *p;

    if (n <= b->cap - b->len)
        return CT_OK;
    if (n > SIZE_MAX - b->len)
        return CT_ENOMEM;
    p = ct__realloc(b->p, b->len + n);
    if (p == NULL)
        return CT_ENOMEM;
    b->p = p;
    b->cap = b->len + n;
    return CT_OK;
}

int ct__buf_append(struct ct__buf *b, const void *p, size_t n)
{
    int rc = ct__buf_reserve(b, n);

    if (rc == CT_OK)
        ct__buf_put(b, p, n);
    return rc;
}

void ct__buf_put(struct ct__buf *b, const void *p, size_t n)
{
    CT_ASSERT(b->cap - b->len >= n, "buffer overrun (%zu > %zu)", n,
              b->cap - b->len);
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void ct__buf_put_u32le(struct ct__buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    ct__buf_put(b, x, 4);
}

void ct__buf_put_u64le(struct ct__buf *b, uint64_t v)
{
    ct__buf_put_u32le(b, (uint32_t)v);
    ct__buf_put_u32le(b, (uint32_t)(v >> 32));
}

void ct__buf_put_varint(struct ct__buf *b, uint64_t v)
{
    unsigned char x[10];
    size_t n = 0;

    while (v >= 0x80) {
        x[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    x[n++] = (unsigned char)v;
    ct__buf_put(b, x, n);
}

void ct__buf_put_tag(struct ct__buf *b, unsigned field, unsigned wt)
{
    ct__buf_put_varint(b, (uint64_t)field << 3 | wt);
}

size_t ct__varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
