/* cortado internal: the WorkspaceStack layout (white-box tests only). */
#ifndef CT_ENGINE_SCOPE_IMPL_H
#define CT_ENGINE_SCOPE_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "cortado/scope.h"

/* Saved bindings, for the debug checks. */
struct ct__scope_bindings {
    bool set;
    size_t n;
    char **inner, **outer; /* owned */
};

struct ct_workspace_stack_s {
    ct_workspace_t **ws; /* owned; n_ws entries, cap_ws allocated */
    size_t n_ws, cap_ws;
    long top; /* -1: empty; invariant (checkStack): top < n_ws */
    bool debug;
    const ct_workspace_t *parent; /* first parent seen (debug) */
    struct ct__scope_bindings fwd, grad;
};

#endif /* CT_ENGINE_SCOPE_IMPL_H */
