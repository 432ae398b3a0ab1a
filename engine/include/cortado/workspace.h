/* cortado: workspaces, the name -> blob maps nets read and write.
 *
 * A workspace may have a parent it reads through ("shared", every parent
 * name visible) or forwarded bindings (only the listed inner names are
 * visible, each mapped to a parent name). Lookup order: local map, then
 * forwarded names (resolved in the parent on every access), then the
 * shared parent. The semantics follow Caffe2's Workspace.
 *
 * Thread-safety contract: the blob and net maps are mutated only while no
 * net is running in this workspace (create/remove/rename blobs, create or
 * delete nets). Concurrent lookups are fine. During a run ops touch only
 * the blobs bound to them when the net was compiled. A child workspace has
 * its own maps, so scopes running concurrently never contend; the parent
 * must not be mutated while children run.
 */
#ifndef CORTADO_WORKSPACE_H
#define CORTADO_WORKSPACE_H

#include <stdbool.h>

#include "cortado/blob.h"
#include "cortado/common.h"
#include "cortado/engine.h"
#include "cortado/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_workspace_s ct_workspace_t;
typedef struct ct_net_s ct_net_t;
typedef struct Caffe2__NetDef ct_netdef_t;
typedef struct Caffe2__OperatorDef ct_opdef_t;

/* Workspace parameters; zero-initialise. */
struct ct_workspace_config {
    const char *root_folder; /* base for relative paths; NULL = "." */
    /* Read-through parent (Caffe2's shared workspace), or NULL. Must
     * outlive the child. */
    const ct_workspace_t *shared;
};

/* Creates a workspace on eng. cfg may be NULL. Caller frees with
 * ct_workspace_free. Errors: CT_ENOMEM. */
CT_API int ct_workspace_new(ct_engine_t *eng,
                            const struct ct_workspace_config *cfg,
                            ct_workspace_t **out, ct_status_t *st);
/* Creates a child that sees only the forwarded names: inner[i] maps to
 * outer[i] in parent. Every outer name must exist in parent
 * ("Invalid parent workspace blob: <name>", CT_ENOTFOUND). */
CT_API int ct_workspace_new_forwarded(ct_workspace_t *parent,
                                      const char *const *inner,
                                      const char *const *outer, size_t n,
                                      ct_workspace_t **out, ct_status_t *st);
/* Frees the workspace, its nets and its local blobs. NULL allowed. */
CT_API void ct_workspace_free(ct_workspace_t *ws);

CT_API ct_engine_t *ct_workspace_engine(const ct_workspace_t *ws);
CT_API const char *ct_workspace_root_folder(const ct_workspace_t *ws);

/* Lookup in the order above. NULL when not found (not an error). */
CT_API ct_blob_t *ct_workspace_get_blob(const ct_workspace_t *ws,
                                        const char *name);
CT_API bool ct_workspace_has_blob(const ct_workspace_t *ws, const char *name);
/* Caffe2's CreateBlob: returns the visible blob if there is one (a
 * parent's blob for a name only the parent has), else creates an empty
 * local blob. A forwarded name whose parent blob is gone yields
 * CT_ENOTFOUND. The blob is owned by the workspace that holds it. */
CT_API int ct_workspace_create_blob(ct_workspace_t *ws, const char *name,
                                    ct_blob_t **out, ct_status_t *st);
/* Creates in the local map even when a parent has the name (shadowing);
 * returns the existing local blob if any. */
CT_API int ct_workspace_create_local_blob(ct_workspace_t *ws, const char *name,
                                          ct_blob_t **out, ct_status_t *st);
/* Removes a local blob (never the parent's or a forward). CT_ENOTFOUND
 * when the name is not local. */
CT_API int ct_workspace_remove_blob(ct_workspace_t *ws, const char *name,
                                    ct_status_t *st);
/* Renames a local blob. CT_ENOTFOUND "Blob X is not in the local blob
 * list"; CT_EEXIST "Blob Y is already in the workspace". */
CT_API int ct_workspace_rename_blob(ct_workspace_t *ws, const char *old_name,
                                    const char *new_name, ct_status_t *st);
/* Caffe2's AddBlobMapping: forwards inner[i] to outer[i] of parent. See
 * spec §3.1 for the redefinition rules. */
CT_API int ct_workspace_add_blob_mapping(ct_workspace_t *ws,
                                         ct_workspace_t *parent,
                                         const char *const *inner,
                                         const char *const *outer, size_t n,
                                         bool skip_defined, ct_status_t *st);
/* Replaces each forwarded name among `names` with a local deep copy of
 * the parent's tensor (Caffe2's CopyForwardedTensors). */
CT_API int ct_workspace_copy_forwarded_tensors(ct_workspace_t *ws,
                                               const char *const *names,
                                               size_t n, ct_status_t *st);

/* Names visible in the workspace, local only or all (local, live
 * forwards, then the shared parent's; duplicates possible when a local
 * name shadows a parent name, as in Caffe2). *names is an array of
 * borrowed strings valid until the maps change; the caller frees the
 * array (not the strings) with ct_free. Sorted by name. */
CT_API int ct_workspace_list_local_blobs(const ct_workspace_t *ws,
                                         const char ***names, size_t *n,
                                         ct_status_t *st);
CT_API int ct_workspace_list_blobs(const ct_workspace_t *ws,
                                   const char ***names, size_t *n,
                                   ct_status_t *st);

/* Nets owned by the workspace (Caffe2's CreateNet / RunNet ...). The def
 * must have a name (CT_EINVAL "Net definition should have a name."). An
 * existing name without overwrite is CT_EEXIST; with overwrite the old net
 * is freed first. The returned net is owned by the workspace. */
CT_API int ct_workspace_create_net(ct_workspace_t *ws, const ct_netdef_t *def,
                                   bool overwrite, ct_net_t **out,
                                   ct_status_t *st);
/* NULL when no net has that name. */
CT_API ct_net_t *ct_workspace_get_net(const ct_workspace_t *ws,
                                      const char *name);
CT_API int ct_workspace_delete_net(ct_workspace_t *ws, const char *name,
                                   ct_status_t *st);
CT_API int ct_workspace_run_net(ct_workspace_t *ws, const char *name,
                                ct_status_t *st);
/* Compiles def, runs it once, frees it. */
CT_API int ct_workspace_run_net_once(ct_workspace_t *ws, const ct_netdef_t *def,
                                     ct_status_t *st);
/* Creates one op from def, runs it once, frees it. */
CT_API int ct_workspace_run_operator_once(ct_workspace_t *ws,
                                          const ct_opdef_t *def,
                                          ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_WORKSPACE_H */
