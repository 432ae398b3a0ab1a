/* cortado: blobs, typed slots owned by a workspace. */
#include <string.h>

#include "cortado/blob.h"
#include "engine/alloc.h"
#include "engine/blob_impl.h"

static void tensor_destroy(void *obj)
{
    ct_tensor_free(obj);
}

const ct_blob_type_t ct_blob_type_tensor = {"Tensor", tensor_destroy};

ct_blob_t *ct__blob_new(const char *name)
{
    ct_blob_t *b = ct__calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->name = ct__strdup(name);
    if (b->name == NULL) {
        ct__free(b);
        return NULL;
    }
    return b;
}

void ct__blob_free(ct_blob_t *b)
{
    if (b == NULL)
        return;
    ct_blob_reset(b, NULL, NULL);
    ct__free(b->name);
    ct__free(b);
}

int ct__blob_set_name(ct_blob_t *b, const char *new_name)
{
    char *n = ct__strdup(new_name);
    if (n == NULL)
        return CT_ENOMEM;
    ct__free(b->name);
    b->name = n;
    return CT_OK;
}

const ct_blob_type_t *ct_blob_type(const ct_blob_t *b)
{
    return b->type;
}
const char *ct_blob_name(const ct_blob_t *b)
{
    return b->name;
}
bool ct_blob_is_empty(const ct_blob_t *b)
{
    return b->type == NULL;
}

void *ct_blob_get(const ct_blob_t *b, const ct_blob_type_t *type)
{
    return b->type == type ? b->obj : NULL;
}

ct_tensor_t *ct_blob_get_tensor(const ct_blob_t *b)
{
    return ct_blob_get(b, &ct_blob_type_tensor);
}

int ct_blob_get_mutable_tensor(ct_blob_t *b, ct_engine_t *eng,
                               ct_tensor_t **out, ct_status_t *st)
{
    ct_tensor_t *t = ct_blob_get_tensor(b);
    int rc;

    if (t == NULL) {
        rc = ct_tensor_new(eng, &t, st);
        if (rc != CT_OK)
            return rc;
        ct_blob_reset(b, &ct_blob_type_tensor, t);
    }
    *out = t;
    return CT_OK;
}

void ct_blob_reset(ct_blob_t *b, const ct_blob_type_t *type, void *obj)
{
    CT_ASSERT((type == NULL) == (obj == NULL),
              "ct_blob_reset: type and obj must both be set or both NULL");
    /* Storing the object the blob already holds must not destroy it:
     * that would leave the blob pointing at freed memory. */
    if (b->type != NULL && b->obj != NULL && b->obj != obj)
        b->type->destroy_cb(b->obj);
    b->type = type;
    b->obj = obj;
}

void *ct_blob_take(ct_blob_t *b)
{
    void *obj = b->obj;
    b->type = NULL;
    b->obj = NULL;
    return obj;
}
