/* cortado internal: blob layout (engine/ and white-box tests only). */
#ifndef CT_ENGINE_BLOB_IMPL_H
#define CT_ENGINE_BLOB_IMPL_H

#include "cortado/blob.h"

struct ct_blob_s {
    char *name;                 /* owned */
    const ct_blob_type_t *type; /* NULL when empty */
    void *obj;                  /* owned; destroyed by type->destroy_cb */
};

/* Allocates an empty blob named `name` (copied). NULL on OOM. */
ct_blob_t *ct__blob_new(const char *name);
/* Destroys the content and frees the blob. NULL allowed. */
void ct__blob_free(ct_blob_t *b);
/* Renames (copies new_name). CT_ENOMEM leaves the old name. */
int ct__blob_set_name(ct_blob_t *b, const char *new_name);

#endif /* CT_ENGINE_BLOB_IMPL_H */
