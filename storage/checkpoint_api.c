/* cortado: the public asynchronous checkpoint call
 * (ct_engine_checkpoint_async): checks its arguments, looks the blobs up
 * and hands them to the engine's checkpoint writer (storage/checkpoint.c,
 * which holds the design note) as one ct__ckpt_request.
 */
#include <string.h>

#include "engine/alloc.h"
#include "storage/checkpoint.h"
#include "storage/storage_impl.h"

void ct_checkpoint_options_init(struct ct_checkpoint_options *o)
{
    memset(o, 0, sizeof(*o));
    o->db_type = "minidb";
    o->max_in_flight = 1;
    o->keep_last = 0;
    o->snapshot = CT_CHECKPOINT_SNAPSHOT_COPY;
}

int ct_engine_checkpoint_async(ct_engine_t *eng, const ct_workspace_t *ws,
                               const char *const *names, size_t n,
                               const char *pattern, int64_t iter,
                               const struct ct_checkpoint_options *opts,
                               ct_status_t *st)
{
    struct ct_checkpoint_options o;
    struct ct__ckpt_request req;
    struct ct_save_item *items = NULL;
    struct ct__pattern pat;
    char *path = NULL;
    size_t i, k;
    int rc;

    CT_ASSERT(eng != NULL && ws != NULL && pattern != NULL &&
                  (names != NULL || n == 0),
              "ct_engine_checkpoint_async: NULL argument");
    CT_ASSERT(ct_workspace_engine(ws) == eng,
              "ct_engine_checkpoint_async: workspace of another engine");
    if (opts == NULL)
        ct_checkpoint_options_init(&o);
    else
        o = *opts;
    if (o.db_type == NULL)
        o.db_type = "minidb";
    if (n == 0)
        return ct_status_setf(st, CT_EINVAL, "checkpoint %s: no blobs to save",
                              pattern);
    if (o.max_in_flight < 1 || o.keep_last < 0 || o.snapshot < 0 ||
        o.snapshot >= CT_CHECKPOINT_SNAPSHOT_COUNT)
        return ct_status_setf(st, CT_EINVAL,
                              "checkpoint %s: max_in_flight %d (want >= 1), "
                              "keep_last %d (want >= 0), snapshot %d",
                              pattern, o.max_in_flight, o.keep_last,
                              o.snapshot);
    if (!ct_db_type_registered(o.db_type))
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Cannot find db implementation of type %s "
                              "(while trying to open %s); registered types: "
                              "%s",
                              o.db_type, pattern, ct_db_type_list());
    rc = ct__pattern_parse(pattern, &pat, st);
    if (rc != CT_OK)
        return rc;
    items = ct__calloc(n, sizeof(*items));
    if (items == NULL)
        return ct_status_setf(st, CT_ENOMEM, "checkpoint %s: out of memory",
                              pattern);
    for (i = 0; i < n; i++) {
        const ct_blob_t *b = ct_workspace_get_blob(ws, names[i]);
        const ct_str_t *s;
        if (names[i][0] == '\0' || strstr(names[i], "#%") != NULL) {
            rc = ct_status_setf(st, CT_EINVAL,
                                "checkpoint %s: blob name \"%s\" is empty or "
                                "holds the chunk separator \"#%%\"",
                                pattern, names[i]);
            goto done;
        }
        for (k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0) {
                rc = ct_status_setf(st, CT_EINVAL,
                                    "checkpoint %s: Duplicated input: %s",
                                    pattern, names[i]);
                goto done;
            }
        if (b == NULL) {
            rc = ct_status_setf(st, CT_ENOTFOUND,
                                "checkpoint %s: no blob \"%s\" in the "
                                "workspace",
                                pattern, names[i]);
            goto done;
        }
        items[i].name = names[i];
        items[i].opts = o.serialize;
        items[i].tensor = ct_blob_get_tensor(b);
        if (items[i].tensor != NULL)
            continue;
        s = ct_blob_get_string(b);
        if (s == NULL) {
            const ct_blob_type_t *t = ct_blob_type(b);
            rc = ct_status_setf(st, CT_ETYPE,
                                "checkpoint %s: blob \"%s\": No known "
                                "serializer for %s",
                                pattern, names[i],
                                t != NULL ? t->name : "an empty blob");
            goto done;
        }
        items[i].str = s->data != NULL ? s->data : "";
        items[i].str_len = s->len;
    }
    rc = ct__pattern_format(pattern, &pat, iter, &path, st);
    if (rc != CT_OK)
        goto done;
    memset(&req, 0, sizeof(req));
    req.stream = pattern;
    req.path = path;
    req.iter = iter;
    req.items = items;
    req.n = n;
    req.db_type = o.db_type;
    req.db_options = o.db_options;
    req.db_options_len = o.db_options != NULL ? o.db_options_len : 0;
    req.max_in_flight = o.max_in_flight;
    req.keep_last = o.keep_last;
    req.snapshot = o.snapshot;
    rc = ct__ckpt_submit(eng, &req, st);
done:
    ct__free(path);
    ct__free(items);
    return rc;
}
