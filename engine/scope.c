/* WorkspaceStack: the stack of child workspaces a scope blob holds
 * (Caffe2's detail::WorkspaceStack, spec §3.2).
 *
 * Every method first checks the invariant top < number of workspaces
 * ("Corrupted workspaces stack"). Workspaces above top are kept, blobs and
 * nets included, and reused by the next push: this is how a While loop or
 * a training loop avoids recreating its scopes on every run. The stack has
 * no lock (Caffe2's is "non-thread safe" too): one Do op at a time uses a
 * given scope blob, which the net's dependency graph guarantees since the
 * scope blob is both an input and an output of the op.
 */
#include <string.h>

#include "cortado/scope.h"
#include "engine/alloc.h"
#include "engine/scope_impl.h"

static void stack_destroy_cb(void *obj)
{
    ct_workspace_stack_free(obj);
}

const ct_blob_type_t ct_blob_type_workspace_stack = {
    "WorkspaceStack",
    stack_destroy_cb,
};

static void bindings_reset(struct ct__scope_bindings *b)
{
    size_t i;

    for (i = 0; i < b->n; i++) {
        ct__free(b->inner[i]);
        ct__free(b->outer[i]);
    }
    ct__free(b->inner);
    ct__free(b->outer);
    memset(b, 0, sizeof(*b));
}

int ct_workspace_stack_new(ct_workspace_stack_t **out, ct_status_t *st)
{
    ct_workspace_stack_t *s;

    CT_ASSERT(out != NULL, "ct_workspace_stack_new: NULL out");
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory creating a WorkspaceStack");
    s->top = -1;
    *out = s;
    return CT_OK;
}

void ct_workspace_stack_free(ct_workspace_stack_t *stack)
{
    size_t i;

    if (stack == NULL)
        return;
    /* Children first, newest first: a later workspace never forwards to
     * an earlier one of the same stack, but free in reverse anyway. */
    for (i = stack->n_ws; i > 0; i--)
        ct_workspace_free(stack->ws[i - 1]);
    ct__free(stack->ws);
    bindings_reset(&stack->fwd);
    bindings_reset(&stack->grad);
    ct__free(stack);
}

int ct_blob_get_mutable_workspace_stack(ct_blob_t *b,
                                        ct_workspace_stack_t **out,
                                        ct_status_t *st)
{
    ct_workspace_stack_t *s;
    int rc;

    CT_ASSERT(b != NULL && out != NULL,
              "ct_blob_get_mutable_workspace_stack: NULL argument");
    s = ct_blob_get(b, &ct_blob_type_workspace_stack);
    if (s == NULL) {
        rc = ct_workspace_stack_new(&s, st);
        if (rc != CT_OK)
            return rc;
        ct_blob_reset(b, &ct_blob_type_workspace_stack, s);
    }
    *out = s;
    return CT_OK;
}

static int check_stack(const ct_workspace_stack_t *s, ct_status_t *st)
{
    if (s->top >= 0 && (size_t)s->top >= s->n_ws)
        return ct_status_setf(st, CT_ESTATE,
                              "Corrupted workspaces stack: top %ld, %zu "
                              "workspaces",
                              s->top, s->n_ws);
    if (s->top < -1)
        return ct_status_setf(st, CT_ESTATE,
                              "Corrupted workspaces stack: top %ld", s->top);
    return CT_OK;
}

/* Debug mode: the first bindings seen are saved; later ones must match
 * (same size, same keys, same values). */
static int check_bindings(struct ct__scope_bindings *b,
                          const char *const *inner, const char *const *outer,
                          size_t n, ct_status_t *st)
{
    size_t i, j;

    if (!b->set) {
        b->inner = ct__calloc(n ? n : 1, sizeof(char *));
        b->outer = ct__calloc(n ? n : 1, sizeof(char *));
        if (b->inner == NULL || b->outer == NULL)
            goto fail_alloc;
        for (i = 0; i < n; i++) {
            b->inner[i] = ct__strdup(inner[i]);
            b->outer[i] = ct__strdup(outer[i]);
            b->n = i + 1;
            if (b->inner[i] == NULL || b->outer[i] == NULL)
                goto fail_alloc;
        }
        b->set = true;
        return CT_OK;
    }
    if (b->n != n)
        return ct_status_setf(st, CT_EINVAL,
                              "Blob bindings mismatch: %zu bindings, first "
                              "seen %zu",
                              n, b->n);
    for (i = 0; i < n; i++) {
        for (j = 0; j < b->n; j++)
            if (strcmp(b->inner[j], inner[i]) == 0)
                break;
        if (j == b->n || strcmp(b->outer[j], outer[i]) != 0)
            return ct_status_setf(st, CT_EINVAL,
                                  "Blob bindings mismatch: %s -> %s", inner[i],
                                  outer[i]);
    }
    return CT_OK;
fail_alloc:
    bindings_reset(b);
    return ct_status_setf(st, CT_ENOMEM, "out of memory saving bindings");
}

static int debug_checks(ct_workspace_stack_t *s, struct ct__scope_bindings *b,
                        const ct_workspace_t *parent, const char *const *inner,
                        const char *const *outer, size_t n, ct_status_t *st)
{
    if (!s->debug)
        return CT_OK;
    if (s->parent == NULL)
        s->parent = parent;
    else if (s->parent != parent)
        return ct_status_setf(st, CT_EINVAL, "Parent workspace mismatch");
    return check_bindings(b, inner, outer, n, st);
}

int ct_workspace_stack_push_forward(ct_workspace_stack_t *s,
                                    ct_workspace_t *parent,
                                    const char *const *inner,
                                    const char *const *outer, size_t n,
                                    ct_workspace_t **out, bool *rebound,
                                    ct_status_t *st)
{
    ct_workspace_t *ws;
    bool removed = false;
    size_t i;
    int rc;

    CT_ASSERT(s != NULL && parent != NULL && out != NULL,
              "ct_workspace_stack_push_forward: NULL argument");
    if (rebound != NULL)
        *rebound = false;
    rc = check_stack(s, st);
    if (rc == CT_OK)
        rc = debug_checks(s, &s->fwd, parent, inner, outer, n, st);
    if (rc != CT_OK)
        return rc;
    if ((size_t)(s->top + 1) == s->n_ws) {
        if (s->n_ws == s->cap_ws) {
            size_t cap = s->cap_ws ? 2 * s->cap_ws : 4;
            ct_workspace_t **p = ct__realloc(s->ws, cap * sizeof(*p));
            if (p == NULL)
                return ct_status_setf(st, CT_ENOMEM,
                                      "out of memory growing a "
                                      "WorkspaceStack");
            s->ws = p;
            s->cap_ws = cap;
        }
        rc = ct_workspace_new_forwarded(parent, inner, outer, n, &ws, st);
        if (rc != CT_OK)
            return rc;
        s->ws[s->n_ws++] = ws;
    } else {
        ws = s->ws[s->top + 1];
        for (i = 0; i < n; i++)
            if (ct_workspace_remove_blob(ws, inner[i], NULL) == CT_OK)
                removed = true;
        if (removed) {
            rc = ct_workspace_add_blob_mapping(ws, parent, inner, outer, n,
                                               false, st);
            if (rc != CT_OK)
                return rc;
            if (rebound != NULL)
                *rebound = true;
        }
    }
    s->top++;
    *out = ws;
    return CT_OK;
}

int ct_workspace_stack_pop_gradient(ct_workspace_stack_t *s,
                                    ct_workspace_t *parent,
                                    const char *const *inner,
                                    const char *const *outer, size_t n,
                                    ct_workspace_t **out, ct_status_t *st)
{
    ct_workspace_t *ws;
    int rc;

    CT_ASSERT(s != NULL && parent != NULL && out != NULL,
              "ct_workspace_stack_pop_gradient: NULL argument");
    *out = NULL;
    rc = check_stack(s, st);
    if (rc == CT_OK)
        rc = debug_checks(s, &s->grad, parent, inner, outer, n, st);
    if (rc != CT_OK)
        return rc;
    if (s->top < 0)
        return CT_OK;
    ws = s->ws[s->top];
    rc = ct_workspace_add_blob_mapping(ws, parent, inner, outer, n, true, st);
    if (rc != CT_OK)
        return rc;
    s->top--;
    *out = ws;
    return CT_OK;
}

int ct_workspace_stack_reuse_last_forward(ct_workspace_stack_t *s,
                                          ct_workspace_t *parent,
                                          const char *const *inner,
                                          const char *const *outer, size_t n,
                                          ct_workspace_t **out, ct_status_t *st)
{
    ct_workspace_t *ws;
    int rc;

    CT_ASSERT(s != NULL && parent != NULL && out != NULL,
              "ct_workspace_stack_reuse_last_forward: NULL argument");
    *out = NULL;
    rc = check_stack(s, st);
    if (rc == CT_OK)
        rc = debug_checks(s, &s->fwd, parent, inner, outer, n, st);
    if (rc != CT_OK)
        return rc;
    if (s->top < 0)
        return CT_OK;
    ws = s->ws[s->top];
    rc = ct_workspace_add_blob_mapping(ws, parent, inner, outer, n, false, st);
    if (rc != CT_OK)
        return rc;
    *out = ws;
    return CT_OK;
}

void ct_workspace_stack_clear(ct_workspace_stack_t *s)
{
    CT_ASSERT(s != NULL, "ct_workspace_stack_clear: NULL stack");
    s->top = -1;
}

bool ct_workspace_stack_empty(const ct_workspace_stack_t *s)
{
    CT_ASSERT(s != NULL, "ct_workspace_stack_empty: NULL stack");
    return s->top < 0;
}

size_t ct_workspace_stack_depth(const ct_workspace_stack_t *s)
{
    CT_ASSERT(s != NULL, "ct_workspace_stack_depth: NULL stack");
    return s->top < 0 ? 0 : (size_t)s->top + 1;
}

size_t ct_workspace_stack_n_workspaces(const ct_workspace_stack_t *s)
{
    CT_ASSERT(s != NULL, "ct_workspace_stack_n_workspaces: NULL stack");
    return s->n_ws;
}

void ct_workspace_stack_set_debug(ct_workspace_stack_t *s, bool on)
{
    CT_ASSERT(s != NULL, "ct_workspace_stack_set_debug: NULL stack");
    s->debug = on;
}
