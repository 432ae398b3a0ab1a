/* cortado: std::string blobs, Caffe2's other common blob content.
 *
 * A std::string blob holds a byte string (NULs allowed): what Caffe2's
 * StringSerializer writes as BlobProto{type "std::string", content} and
 * what Load makes of such a record (e.g. the predictor's
 * "!!META_NET_DEF"). The object is one allocation: the ct_str_t header
 * followed by the bytes and a NUL, so C callers can print it.
 */
#include <string.h>

#include "engine/alloc.h"
#include "storage/storage_impl.h"

ct_str_t *ct__str_new(const void *bytes, size_t len)
{
    ct_str_t *s;

    if (len > SIZE_MAX - sizeof(*s) - 1)
        return NULL;
    s = ct__malloc(sizeof(*s) + len + 1);
    if (s == NULL)
        return NULL;
    s->len = len;
    s->data = (char *)(s + 1);
    if (len > 0)
        memcpy(s->data, bytes, len);
    s->data[len] = '\0';
    return s;
}

void ct__str_free(void *s)
{
    ct__free(s);
}

const ct_blob_type_t ct_blob_type_string = {"std::string", ct__str_free};

int ct_blob_set_string(ct_blob_t *b, const void *bytes, size_t len,
                       ct_status_t *st)
{
    ct_str_t *s;

    CT_ASSERT(b != NULL && (bytes != NULL || len == 0),
              "ct_blob_set_string: NULL argument");
    s = ct__str_new(bytes, len);
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory storing a %zu-byte string in "
                              "blob %s",
                              len, ct_blob_name(b));
    ct_blob_reset(b, &ct_blob_type_string, s);
    return CT_OK;
}

const ct_str_t *ct_blob_get_string(const ct_blob_t *b)
{
    return ct_blob_get(b, &ct_blob_type_string);
}
