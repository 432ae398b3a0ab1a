/* cortado: workspaces (Caffe2's Workspace, spec §3.1).
 *
 * Design note.
 *
 * State. A workspace owns three string maps (engine/strmap.h): `blobs`
 * (name -> ct_blob_t, owned), `forwards` (inner name -> struct forward,
 * owned; the parent workspace and the parent's name) and `nets` (name ->
 * ct_net_t, owned). `shared` is an optional read-through parent, borrowed.
 *
 * Lookup. Local map first, then the forwards, then the shared parent. A
 * forward is resolved on every access by looking the parent name up in
 * the parent, which may itself forward or share, so chains of scopes
 * resolve recursively and always see the parent's current blob (a blob
 * the parent removed or renamed simply disappears from the child). A
 * forwarded name whose target is gone is not looked up in `shared`,
 * exactly as in Caffe2.
 *
 * Failure atomicity. Every mutating call either completes or returns with
 * the maps as they were: the fallible steps (allocations, validation of
 * every entry of a batch) come first, and the commit steps that follow
 * cannot fail, or are undone by removals, which never allocate. The one
 * documented exception is create_net with overwrite: the old net is freed
 * before the new one is built (Caffe2 does this on purpose, so resources
 * held by the old net, such as an open DB, are released first), so a
 * failed overwrite leaves no net under that name.
 *
 * Thread safety (the contract in cortado/workspace.h). There is no lock
 * in a workspace, by design: the maps are mutated only by the calls that
 * create, remove or rename blobs, add forwards, or create or delete nets,
 * and the contract forbids those while a net runs in the workspace or
 * while children resolve names through it. Under that contract the only
 * concurrent accesses are lookups, and lookups (get_blob, has_blob,
 * get_net, the list functions) never write: the map probes are read-only
 * and forwards are resolved without caching. During a run ops touch only
 * the blobs bound to them when the net was compiled, never the maps. A
 * child workspace has its own maps, so sibling scopes running at the same
 * time never share a mutable structure. The engine's workspace counter is
 * the only shared field written here; it is atomic (relaxed: it is only
 * read by the assertion in ct_engine_free, which runs after every
 * workspace was freed on the thread that frees the engine, or is ordered
 * by the caller's own synchronisation).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/workspace.h"
#include "engine/alloc.h"
#include "engine/blob_impl.h"
#include "engine/engine_impl.h"
#include "engine/fuse.h"
#include "engine/strmap.h"
#include "ops/op_impl.h"

/* A forwarded name: resolved as `outer` in `parent` on every access. */
struct forward {
    ct_workspace_t *parent; /* borrowed; must outlive the child */
    char outer[];           /* the parent's name, NUL-terminated */
};

struct ct_workspace_s {
    ct_engine_t *eng;
    char *root_folder;            /* owned */
    const ct_workspace_t *shared; /* borrowed read-through parent, or NULL */
    struct ct__strmap blobs;      /* name -> ct_blob_t *, owned */
    struct ct__strmap forwards;   /* inner name -> struct forward *, owned */
    struct ct__strmap nets;       /* name -> ct_net_t *, owned */
};

bool ct__workspace_has_parent(const ct_workspace_t *ws)
{
    return ws->shared != NULL || ct__strmap_size(&ws->forwards) > 0;
}

static void blob_free_cb(void *p)
{
    ct__blob_free(p);
}

static void forward_free_cb(void *p)
{
    ct__free(p);
}

static void net_free_cb(void *p)
{
    ct_net_free(p);
}

/* ---- lifecycle ---- */

int ct_workspace_new(ct_engine_t *eng, const struct ct_workspace_config *cfg,
                     ct_workspace_t **out, ct_status_t *st)
{
    const char *root = ".";
    ct_workspace_t *ws;

    CT_ASSERT(eng != NULL && out != NULL, "ct_workspace_new: NULL argument");
    *out = NULL;
    if (cfg != NULL && cfg->root_folder != NULL)
        root = cfg->root_folder;
    ws = ct__calloc(1, sizeof(*ws));
    if (ws == NULL)
        goto fail_ws;
    ws->root_folder = ct__strdup(root);
    if (ws->root_folder == NULL)
        goto fail_root;
    ws->eng = eng;
    ws->shared = cfg != NULL ? cfg->shared : NULL;
    ct__strmap_init(&ws->blobs);
    ct__strmap_init(&ws->forwards);
    ct__strmap_init(&ws->nets);
    /* relaxed: a counter read only by ct_engine_free's assertion. */
    atomic_fetch_add_explicit(&eng->n_workspaces, 1, memory_order_relaxed);
    *out = ws;
    return CT_OK;

fail_root:
    ct__free(ws);
fail_ws:
    return ct_status_setf(st, CT_ENOMEM, "workspace: out of memory");
}

void ct_workspace_free(ct_workspace_t *ws)
{
    if (ws == NULL)
        return;
    /* Nets first: their ops hold pointers to blobs of this workspace. */
    ct__strmap_destroy(&ws->nets, net_free_cb);
    ct__strmap_destroy(&ws->blobs, blob_free_cb);
    ct__strmap_destroy(&ws->forwards, forward_free_cb);
    atomic_fetch_sub_explicit(&ws->eng->n_workspaces, 1, memory_order_relaxed);
    ct__free(ws->root_folder);
    ct__free(ws);
}

ct_engine_t *ct_workspace_engine(const ct_workspace_t *ws)
{
    return ws->eng;
}

const char *ct_workspace_root_folder(const ct_workspace_t *ws)
{
    return ws->root_folder;
}

/* ---- lookup ---- */

ct_blob_t *ct_workspace_get_blob(const ct_workspace_t *ws, const char *name)
{
    const struct forward *fw;
    ct_blob_t *b;

    CT_ASSERT(ws != NULL && name != NULL, "ct_workspace_get_blob: NULL");
    b = ct__strmap_get(&ws->blobs, name);
    if (b != NULL)
        return b;
    fw = ct__strmap_get(&ws->forwards, name);
    if (fw != NULL)
        return ct_workspace_get_blob(fw->parent, fw->outer);
    if (ws->shared != NULL)
        return ct_workspace_get_blob(ws->shared, name);
    return NULL;
}

bool ct_workspace_has_blob(const ct_workspace_t *ws, const char *name)
{
    return ct_workspace_get_blob(ws, name) != NULL;
}

/* Adds an empty local blob; the caller checked that name is not local. */
static int add_local_blob(ct_workspace_t *ws, const char *name, ct_blob_t **out,
                          ct_status_t *st)
{
    ct_blob_t *b = ct__blob_new(name);

    if (b == NULL)
        goto fail_blob;
    if (ct__strmap_insert(&ws->blobs, name, b) != CT_OK)
        goto fail_insert;
    *out = b;
    return CT_OK;

fail_insert:
    ct__blob_free(b);
fail_blob:
    return ct_status_setf(st, CT_ENOMEM, "out of memory creating blob \"%s\"",
                          name);
}

/* ---- blob mutation ---- */

int ct_workspace_create_blob(ct_workspace_t *ws, const char *name,
                             ct_blob_t **out, ct_status_t *st)
{
    const struct forward *fw;
    ct_blob_t *b;

    CT_ASSERT(ws != NULL && name != NULL && out != NULL,
              "ct_workspace_create_blob: NULL argument");
    *out = NULL;
    b = ct_workspace_get_blob(ws, name);
    if (b != NULL) {
        /* Visible somewhere (local, forwarded or shared): Caffe2 returns
         * that blob, so a parent-only name yields the parent's blob. */
        *out = b;
        return CT_OK;
    }
    fw = ct__strmap_get(&ws->forwards, name);
    if (fw != NULL)
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Blob %s is forwarded to blob %s of the parent "
                              "workspace, which no longer has it",
                              name, fw->outer);
    return add_local_blob(ws, name, out, st);
}

int ct_workspace_create_local_blob(ct_workspace_t *ws, const char *name,
                                   ct_blob_t **out, ct_status_t *st)
{
    ct_blob_t *b;

    CT_ASSERT(ws != NULL && name != NULL && out != NULL,
              "ct_workspace_create_local_blob: NULL argument");
    *out = NULL;
    b = ct__strmap_get(&ws->blobs, name);
    if (b != NULL) {
        *out = b;
        return CT_OK;
    }
    return add_local_blob(ws, name, out, st);
}

int ct_workspace_remove_blob(ct_workspace_t *ws, const char *name,
                             ct_status_t *st)
{
    void *b;

    CT_ASSERT(ws != NULL && name != NULL, "ct_workspace_remove_blob: NULL");
    if (!ct__strmap_remove(&ws->blobs, name, &b))
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Blob %s is not in the local blob list", name);
    ct__blob_free(b);
    return CT_OK;
}

int ct_workspace_rename_blob(ct_workspace_t *ws, const char *old_name,
                             const char *new_name, ct_status_t *st)
{
    ct_blob_t *b;
    char *bname;

    CT_ASSERT(ws != NULL && old_name != NULL && new_name != NULL,
              "ct_workspace_rename_blob: NULL argument");
    b = ct__strmap_get(&ws->blobs, old_name);
    if (b == NULL)
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Blob %s is not in the local blob list",
                              old_name);
    if (ct_workspace_has_blob(ws, new_name))
        return ct_status_setf(st, CT_EEXIST,
                              "Blob %s is already in the workspace", new_name);
    /* Both allocations happen before anything changes. The blob's own
     * name is swapped in directly rather than through ct__blob_set_name,
     * whose allocation could fail after the map had been updated. */
    bname = ct__strdup(new_name);
    if (bname == NULL)
        goto fail_name;
    if (ct__strmap_rename(&ws->blobs, old_name, new_name) != CT_OK)
        goto fail_rename;
    ct__free(b->name);
    b->name = bname;
    return CT_OK;

fail_rename:
    ct__free(bname);
fail_name:
    return ct_status_setf(st, CT_ENOMEM, "out of memory renaming blob %s to %s",
                          old_name, new_name);
}

/* ---- forwarding ---- */

/* The forward that entry i of a batch would find for inner[i]: one
 * already recorded, or one an earlier entry of the same batch will add.
 * Sets *parent and *outer; false when inner[i] is not forwarded. */
static bool batch_forward(const ct_workspace_t *ws, ct_workspace_t *parent,
                          const char *const *inner, const char *const *outer,
                          const bool *take, size_t i,
                          const ct_workspace_t **fw_parent,
                          const char **fw_outer)
{
    const struct forward *fw = ct__strmap_get(&ws->forwards, inner[i]);
    size_t j;

    if (fw != NULL) {
        *fw_parent = fw->parent;
        *fw_outer = fw->outer;
        return true;
    }
    for (j = 0; j < i; j++) {
        if (take[j] && strcmp(inner[j], inner[i]) == 0) {
            *fw_parent = parent;
            *fw_outer = outer[j];
            return true;
        }
    }
    return false;
}

/* Caffe2's AddBlobMapping, made atomic: every entry is validated (in
 * order, seeing the effect of the entries before it) before the first
 * forward is recorded, and a failed insert removes the ones already made.
 * `invalid_fmt` is the message for a missing parent blob (the constructor
 * and AddBlobMapping word it differently in Caffe2). */
static int add_mapping(ct_workspace_t *ws, ct_workspace_t *parent,
                       const char *const *inner, const char *const *outer,
                       size_t n, bool skip_defined, const char *invalid_fmt,
                       ct_status_t *st)
{
    struct forward **fws = NULL;
    bool *take = NULL;
    size_t i, k, n_done = 0;
    int rc = CT_OK;

    CT_ASSERT(n == 0 || (inner != NULL && outer != NULL),
              "ct_workspace_add_blob_mapping: NULL name array");
    if (parent == NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "Parent workspace must be specified");
    CT_ASSERT(parent != ws, "a workspace cannot forward to itself");
    if (n == 0)
        return CT_OK;
    take = ct__calloc(n, sizeof(*take));
    fws = ct__calloc(n, sizeof(*fws));
    if (take == NULL || fws == NULL)
        goto fail_nomem;

    /* Validation, entry by entry, as Caffe2's loop does. */
    for (i = 0; i < n; i++) {
        const ct_workspace_t *fw_parent;
        const char *fw_outer;

        CT_ASSERT(inner[i] != NULL && outer[i] != NULL,
                  "ct_workspace_add_blob_mapping: NULL name %zu", i);
        if (!ct_workspace_has_blob(parent, outer[i])) {
            rc = ct_status_setf(st, CT_ENOTFOUND, invalid_fmt, outer[i]);
            goto out;
        }
        if (batch_forward(ws, parent, inner, outer, take, i, &fw_parent,
                          &fw_outer)) {
            /* Already forwarded: only the very same binding is allowed;
             * it changes nothing. */
            if (fw_parent != parent || strcmp(fw_outer, outer[i]) != 0) {
                rc = ct_status_setf(st, CT_EEXIST, "Redefinition of blob %s",
                                    inner[i]);
                goto out;
            }
            continue;
        }
        if (ct_workspace_has_blob(ws, inner[i])) {
            if (skip_defined)
                continue;
            rc = ct_status_setf(st, CT_EEXIST, "Redefinition of blob %s",
                                inner[i]);
            goto out;
        }
        take[i] = true;
    }

    /* Allocation of the records, then the inserts; a failed insert is
     * undone by removing the entries already inserted (no allocation). */
    for (i = 0; i < n; i++) {
        size_t len;

        if (!take[i])
            continue;
        len = strlen(outer[i]);
        fws[i] = ct__malloc(sizeof(struct forward) + len + 1);
        if (fws[i] == NULL)
            goto fail_nomem;
        fws[i]->parent = parent;
        memcpy(fws[i]->outer, outer[i], len + 1);
    }
    for (i = 0; i < n; i++) {
        if (!take[i])
            continue;
        if (ct__strmap_insert(&ws->forwards, inner[i], fws[i]) != CT_OK)
            goto fail_insert;
        n_done = i + 1;
    }
    ct__free(fws);
    ct__free(take);
    return CT_OK;

fail_insert:
    for (k = 0; k < n_done; k++) {
        if (take[k])
            ct__strmap_remove(&ws->forwards, inner[k], NULL);
    }
fail_nomem:
    rc = ct_status_setf(st, CT_ENOMEM, "out of memory adding %zu blob forwards",
                        n);
out:
    if (fws != NULL) {
        for (i = 0; i < n; i++)
            ct__free(fws[i]);
    }
    ct__free(fws);
    ct__free(take);
    return rc;
}

int ct_workspace_add_blob_mapping(ct_workspace_t *ws, ct_workspace_t *parent,
                                  const char *const *inner,
                                  const char *const *outer, size_t n,
                                  bool skip_defined, ct_status_t *st)
{
    CT_ASSERT(ws != NULL, "ct_workspace_add_blob_mapping: NULL workspace");
    return add_mapping(ws, parent, inner, outer, n, skip_defined,
                       "Invalid parent workspace blob %s", st);
}

int ct_workspace_new_forwarded(ct_workspace_t *parent, const char *const *inner,
                               const char *const *outer, size_t n,
                               ct_workspace_t **out, ct_status_t *st)
{
    ct_workspace_t *ws;
    int rc;

    CT_ASSERT(parent != NULL && out != NULL,
              "ct_workspace_new_forwarded: NULL argument");
    *out = NULL;
    rc = ct_workspace_new(parent->eng, NULL, &ws, st);
    if (rc != CT_OK)
        return rc;
    rc = add_mapping(ws, parent, inner, outer, n, false,
                     "Invalid parent workspace blob: %s", st);
    if (rc != CT_OK) {
        ct_workspace_free(ws);
        return rc;
    }
    *out = ws;
    return CT_OK;
}

/* Index of the first occurrence of names[i] in names[0..i]. */
static size_t first_index(const char *const *names, size_t i)
{
    size_t j;

    for (j = 0; j < i; j++) {
        if (strcmp(names[j], names[i]) == 0)
            return j;
    }
    return i;
}

int ct_workspace_copy_forwarded_tensors(ct_workspace_t *ws,
                                        const char *const *names, size_t n,
                                        ct_status_t *st)
{
    /* Per name: the copy of the parent's tensor, and the new local blob
     * when the name has no local blob yet (a name can have both a local
     * blob and a forward after create_local_blob shadowed the forward). */
    ct_tensor_t **copies = NULL;
    ct_blob_t **fresh = NULL;
    size_t i;
    int rc = CT_OK;

    CT_ASSERT(ws != NULL && (n == 0 || names != NULL),
              "ct_workspace_copy_forwarded_tensors: NULL argument");
    if (n == 0)
        return CT_OK;
    copies = ct__calloc(n, sizeof(*copies));
    fresh = ct__calloc(n, sizeof(*fresh));
    if (copies == NULL || fresh == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM,
                            "out of memory copying forwarded tensors");
        goto out;
    }

    /* Validate and copy; nothing in ws changes in this pass. */
    for (i = 0; i < n; i++) {
        const struct forward *fw;
        const ct_blob_t *from;
        const ct_tensor_t *src;

        CT_ASSERT(names[i] != NULL, "copy_forwarded_tensors: NULL name");
        fw = ct__strmap_get(&ws->forwards, names[i]);
        if (fw == NULL || first_index(names, i) != i)
            continue; /* not forwarded, or a repeat: ignored */
        from = ct_workspace_get_blob(fw->parent, fw->outer);
        if (from == NULL) {
            rc = ct_status_setf(st, CT_ENOTFOUND,
                                "Blob %s is forwarded to blob %s of the "
                                "parent workspace, which no longer has it",
                                names[i], fw->outer);
            goto out;
        }
        src = ct_blob_get_tensor(from);
        if (src == NULL) {
            const ct_blob_type_t *t = ct_blob_type(from);
            rc = ct_status_setf(st, CT_ETYPE,
                                "Expected blob with tensor value: parent "
                                "blob %s holds %s",
                                fw->outer, t != NULL ? t->name : "nothing");
            goto out;
        }
        rc = ct_tensor_new(ws->eng, &copies[i], st);
        if (rc == CT_OK)
            rc = ct_tensor_copy(copies[i], src, st);
        if (rc == CT_OK && ct__strmap_get(&ws->blobs, names[i]) == NULL) {
            fresh[i] = ct__blob_new(names[i]);
            if (fresh[i] == NULL)
                rc = ct_status_setf(st, CT_ENOMEM,
                                    "out of memory creating blob \"%s\"",
                                    names[i]);
        }
        if (rc != CT_OK) {
            ct_status_prefix(st, "copying forwarded blob %s: ", names[i]);
            goto out;
        }
    }

    /* Insert the new local blobs (the only step of the commit that can
     * fail); undo by removal. */
    for (i = 0; i < n; i++) {
        if (fresh[i] == NULL)
            continue;
        if (ct__strmap_insert(&ws->blobs, names[i], fresh[i]) != CT_OK) {
            size_t k;
            for (k = 0; k < i; k++) {
                if (fresh[k] != NULL)
                    ct__strmap_remove(&ws->blobs, names[k], NULL);
            }
            rc = ct_status_setf(st, CT_ENOMEM,
                                "out of memory creating blob \"%s\"", names[i]);
            goto out;
        }
    }

    /* Commit: nothing below can fail. */
    for (i = 0; i < n; i++) {
        ct_blob_t *b;
        void *fw;

        if (copies[i] == NULL)
            continue;
        b = ct__strmap_get(&ws->blobs, names[i]);
        ct_blob_reset(b, &ct_blob_type_tensor, copies[i]);
        copies[i] = NULL;
        fresh[i] = NULL;
        ct__strmap_remove(&ws->forwards, names[i], &fw);
        ct__free(fw);
    }
out:
    if (copies != NULL) {
        for (i = 0; i < n; i++)
            ct_tensor_free(copies[i]);
    }
    if (fresh != NULL) {
        for (i = 0; i < n; i++)
            ct__blob_free(fresh[i]);
    }
    ct__free(copies);
    ct__free(fresh);
    return rc;
}

/* ---- listing ---- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct name_list {
    const char **v;
    size_t n, cap;
};

static int list_push(struct name_list *l, const char *name)
{
    void *v = (void *)l->v;
    int rc = ct__grow(&v, &l->cap, l->n + 1, sizeof(*l->v));

    l->v = v;
    if (rc != CT_OK)
        return rc;
    l->v[l->n++] = name;
    return CT_OK;
}

static int collect_local(const ct_workspace_t *ws, struct name_list *l)
{
    const char *key;
    size_t it = 0;

    while (ct__strmap_next(&ws->blobs, &it, &key, NULL)) {
        if (list_push(l, key) != CT_OK)
            return CT_ENOMEM;
    }
    return CT_OK;
}

/* Caffe2's Blobs(): local names, forwarded names whose target exists,
 * then the shared parent's names (recursively). */
static int collect_all(const ct_workspace_t *ws, struct name_list *l)
{
    const char *key;
    void *val;
    size_t it = 0;

    if (collect_local(ws, l) != CT_OK)
        return CT_ENOMEM;
    while (ct__strmap_next(&ws->forwards, &it, &key, &val)) {
        const struct forward *fw = val;
        if (ct_workspace_has_blob(fw->parent, fw->outer) &&
            list_push(l, key) != CT_OK)
            return CT_ENOMEM;
    }
    if (ws->shared != NULL)
        return collect_all(ws->shared, l);
    return CT_OK;
}

static int finish_list(struct name_list *l, int rc, const char ***names,
                       size_t *n, ct_status_t *st)
{
    if (rc != CT_OK) {
        ct__free(l->v);
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory listing blob names");
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), name_cmp);
    *names = l->v;
    *n = l->n;
    return CT_OK;
}

int ct_workspace_list_local_blobs(const ct_workspace_t *ws, const char ***names,
                                  size_t *n, ct_status_t *st)
{
    struct name_list l = {NULL, 0, 0};

    CT_ASSERT(ws != NULL && names != NULL && n != NULL,
              "ct_workspace_list_local_blobs: NULL argument");
    *names = NULL;
    *n = 0;
    return finish_list(&l, collect_local(ws, &l), names, n, st);
}

int ct_workspace_list_blobs(const ct_workspace_t *ws, const char ***names,
                            size_t *n, ct_status_t *st)
{
    struct name_list l = {NULL, 0, 0};

    CT_ASSERT(ws != NULL && names != NULL && n != NULL,
              "ct_workspace_list_blobs: NULL argument");
    *names = NULL;
    *n = 0;
    return finish_list(&l, collect_all(ws, &l), names, n, st);
}

/* ---- nets ---- */

int ct_workspace_create_net(ct_workspace_t *ws, const ct_netdef_t *def,
                            bool overwrite, ct_net_t **out, ct_status_t *st)
{
    ct_net_t *net;
    void *old;
    int rc;

    CT_ASSERT(ws != NULL && def != NULL,
              "ct_workspace_create_net: NULL argument");
    if (out != NULL)
        *out = NULL;
    /* proto2 leaves an absent string NULL; an empty name is rejected too,
     * since no later call could address the net by it. */
    if (def->name == NULL || def->name[0] == '\0')
        return ct_status_setf(st, CT_EINVAL,
                              "Net definition should have a name.");
    if (ct__strmap_find(&ws->nets, def->name, NULL)) {
        if (!overwrite)
            return ct_status_setf(st, CT_EEXIST,
                                  "I respectfully refuse to overwrite an "
                                  "existing net of the same name \"%s\", "
                                  "unless you pass overwrite=true",
                                  def->name);
        /* Caffe2 frees the old net before building the new one, so that
         * what the old one holds cannot block the new one. */
        ct__strmap_remove(&ws->nets, def->name, &old);
        ct_net_free(old);
    }
    rc = ct_net_new(ws, def, NULL, &net, st);
    if (rc != CT_OK)
        return rc;
    if (ct__strmap_insert(&ws->nets, def->name, net) != CT_OK) {
        ct_net_free(net);
        return ct_status_setf(
            st, CT_ENOMEM, "out of memory registering net \"%s\"", def->name);
    }
    if (out != NULL)
        *out = net;
    return CT_OK;
}

ct_net_t *ct_workspace_get_net(const ct_workspace_t *ws, const char *name)
{
    CT_ASSERT(ws != NULL && name != NULL, "ct_workspace_get_net: NULL");
    return ct__strmap_get(&ws->nets, name);
}

int ct_workspace_delete_net(ct_workspace_t *ws, const char *name,
                            ct_status_t *st)
{
    void *net;

    CT_ASSERT(ws != NULL && name != NULL, "ct_workspace_delete_net: NULL");
    if (!ct__strmap_remove(&ws->nets, name, &net))
        return ct_status_setf(st, CT_ENOTFOUND, "Network %s does not exist",
                              name);
    ct_net_free(net);
    return CT_OK;
}

int ct_workspace_run_net(ct_workspace_t *ws, const char *name, ct_status_t *st)
{
    ct_net_t *net;

    CT_ASSERT(ws != NULL && name != NULL, "ct_workspace_run_net: NULL");
    net = ct__strmap_get(&ws->nets, name);
    if (net == NULL)
        return ct_status_setf(st, CT_ENOTFOUND, "Network %s does not exist",
                              name);
    return ct_net_run(net, st);
}

int ct_workspace_run_net_once(ct_workspace_t *ws, const ct_netdef_t *def,
                              ct_status_t *st)
{
    ct_net_t *net;
    int rc;

    CT_ASSERT(ws != NULL && def != NULL,
              "ct_workspace_run_net_once: NULL argument");
    rc = ct_net_new(ws, def, NULL, &net, st);
    if (rc != CT_OK)
        return rc;
    rc = ct_net_run(net, st);
    ct_net_free(net);
    return rc;
}

/* Prefixes st with `op "<name>" (<Type>): ` and records the type. */
static int op_fail(ct_status_t *st, int rc, const ct_opdef_t *def)
{
    const char *name = def->name != NULL ? def->name : "";
    const char *type = def->type != NULL ? def->type : "";

    if (st == NULL)
        return rc;
    ct_status_prefix(st, "op \"%s\" (%s): ", name, type);
    snprintf(st->op, sizeof(st->op), "%s", type);
    return rc;
}

int ct_workspace_run_operator_once(ct_workspace_t *ws, const ct_opdef_t *def,
                                   ct_status_t *st)
{
    ct_op_t *op;
    int rc;

    CT_ASSERT(ws != NULL && def != NULL,
              "ct_workspace_run_operator_once: NULL argument");
    rc = ct__op_create(ws, def, 0, &op, st);
    if (rc != CT_OK)
        return op_fail(st, rc, def);
    rc = ct__op_run_serial(op, st);
    ct__op_destroy(op);
    if (rc != CT_OK)
        return op_fail(st, rc, def);
    return CT_OK;
}
