/* cortado: scopes, Caffe2's WorkspaceStack (create_scope_op.h).
 *
 * A workspace stack is what a scope blob holds: the child workspaces a Do
 * op runs its subnet in. pushForwardWorkspace reuses a previously created
 * workspace when there is one above the top (with the blobs it had), so a
 * net run in a loop does not create workspaces again and again; the
 * backward pass pops them in LIFO order. See docs/scopes.md.
 *
 * Thread safety: a stack is not thread safe (as in Caffe2). Different
 * stacks (different scope blobs) may be used concurrently, also with the
 * same parent workspace, since pushing only reads the parent.
 */
#ifndef CORTADO_SCOPE_H
#define CORTADO_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "cortado/blob.h"
#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_workspace_stack_s ct_workspace_stack_t;

/* The blob type of a WorkspaceStack (name "WorkspaceStack"). */
CT_API extern const ct_blob_type_t ct_blob_type_workspace_stack;

/* Creates an empty stack. Caller frees with ct_workspace_stack_free
 * (or hands it to a blob with ct_blob_reset). Errors: CT_ENOMEM. */
CT_API int ct_workspace_stack_new(ct_workspace_stack_t **out, ct_status_t *st);
/* Frees the stack and every workspace it created. NULL allowed. */
CT_API void ct_workspace_stack_free(ct_workspace_stack_t *stack);

/* Caffe2's GetMutable<WorkspaceStack>: the stack the blob holds, or a
 * new empty one replacing whatever the blob held. Errors: CT_ENOMEM. */
CT_API int ct_blob_get_mutable_workspace_stack(ct_blob_t *b,
                                               ct_workspace_stack_t **out,
                                               ct_status_t *st);

/* Bindings: inner[i] (name in the child) -> outer[i] (name in parent). */

/* pushForwardWorkspace: when top is the last workspace, appends a new
 * forwarded child of parent (ct_workspace_new_forwarded); otherwise
 * reuses the one above top: inner names that are local blobs there (left
 * by copy_external_blobs) are removed and the bindings added again; its
 * other blobs survive. *rebound (may be NULL) is set when blobs were
 * removed, so nets compiled in that workspace must be rebuilt. Returns the
 * workspace (owned by the stack) in *out. Errors: CT_ESTATE "Corrupted
 * workspaces stack", CT_EINVAL "Parent workspace mismatch" / "Blob
 * bindings mismatch" (debug mode only), the workspace's own errors. */
CT_API int ct_workspace_stack_push_forward(ct_workspace_stack_t *stack,
                                           ct_workspace_t *parent,
                                           const char *const *inner,
                                           const char *const *outer, size_t n,
                                           ct_workspace_t **out, bool *rebound,
                                           ct_status_t *st);
/* popGradientWorkspace: *out = NULL when the stack is empty (not an
 * error); else adds the gradient bindings to the top workspace with
 * skip_defined, decrements top and returns that workspace. */
CT_API int ct_workspace_stack_pop_gradient(ct_workspace_stack_t *stack,
                                           ct_workspace_t *parent,
                                           const char *const *inner,
                                           const char *const *outer, size_t n,
                                           ct_workspace_t **out,
                                           ct_status_t *st);
/* reuseLastForwardWorkspace: *out = NULL when empty; else adds the
 * bindings to the top workspace (a conflicting name is CT_EEXIST
 * "Redefinition of blob X") and returns it, top unchanged. */
CT_API int ct_workspace_stack_reuse_last_forward(ct_workspace_stack_t *stack,
                                                 ct_workspace_t *parent,
                                                 const char *const *inner,
                                                 const char *const *outer,
                                                 size_t n, ct_workspace_t **out,
                                                 ct_status_t *st);
/* top := -1; the workspaces and their blobs are kept for reuse. */
CT_API void ct_workspace_stack_clear(ct_workspace_stack_t *stack);
CT_API bool ct_workspace_stack_empty(const ct_workspace_stack_t *stack);
/* top + 1 (workspaces in use) and the number created. */
CT_API size_t ct_workspace_stack_depth(const ct_workspace_stack_t *stack);
CT_API size_t
ct_workspace_stack_n_workspaces(const ct_workspace_stack_t *stack);
/* Caffe2's --caffe2_workspace_stack_debug for this stack: check that the
 * parent and the bindings match the first ones seen. Default off. */
CT_API void ct_workspace_stack_set_debug(ct_workspace_stack_t *stack, bool on);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_SCOPE_H */
