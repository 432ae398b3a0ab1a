/* Do: runs a subnet in a child workspace taken from a scope blob's
 * WorkspaceStack (Caffe2's do_op.{h,cc}, spec §3.4).
 *
 * Inputs and outputs: the outer blobs, then the scope blob, which must be
 * the last input and the last output. Arguments: `net` (NetDef, required),
 * `inner_blobs` (strings) and `outer_blobs_idx` (ints): inner_blobs[i] in
 * the child is bound to outer[outer_blobs_idx[i]], where outer = inputs
 * without the scope ++ outputs without the scope; `copy_external_blobs`,
 * `reuse_workspace` (bools as ints), `saved_fwd_blobs` (accepted, unused,
 * as in Caffe2). The OperatorDef's is_gradient_op makes it the backward
 * Do: it pops the forward workspace instead of pushing one.
 *
 * The subnet is compiled once per child workspace and cached there by net
 * name (Caffe2's workspace net map): a later run reusing that workspace
 * runs the cached net. cortado rebuilds it only when the push had to
 * re-bind names left as local copies by copy_external_blobs, since the
 * compiled ops hold blob pointers (Caffe2 would keep dangling ones).
 *
 * Concurrency: the op reads the parent workspace only (the child has its
 * own maps), so Do ops with different scope blobs run at the same time
 * under the dag executor without a lock. A dag subnet run from a pool
 * worker runs nested on that worker's slot, which helps while it waits.
 */
#include <string.h>

#include "cortado/net.h"
#include "cortado/scope.h"
#include "ops/op_impl.h"

struct do_state {
    const Caffe2__NetDef *net; /* borrowed from the def */
    size_t n_bind;
    char **inner;       /* owned copies */
    const char **outer; /* borrowed from the def */
    bool is_gradient, copy_external, reuse;
};

static const struct ct_arg_spec do_args[] = {
    {"net", CT_ARG_NET, false},
    {"inner_blobs", CT_ARG_STRINGS, false},
    {"outer_blobs_idx", CT_ARG_INTS, false},
    {"copy_external_blobs", CT_ARG_INT, false},
    {"reuse_workspace", CT_ARG_INT, false},
    {"saved_fwd_blobs", CT_ARG_STRINGS, false},
    {NULL, CT_ARG_ANY, false},
};

static void do_fini(ct_op_t *op)
{
    struct do_state *s = op->state;
    size_t i;

    if (s->inner != NULL)
        for (i = 0; i < s->n_bind; i++)
            ct__free(s->inner[i]);
    ct__free(s->inner);
    ct__free((void *)s->outer);
    s->inner = NULL;
    s->outer = NULL;
}

static bool dup_among(const ct_op_t *op, bool inputs, int n)
{
    int i, j;
    const char *(*name)(const ct_op_t *, int) =
        inputs ? ct_op_input_name : ct_op_output_name;

    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (strcmp(name(op, i), name(op, j)) == 0)
                return true;
    return false;
}

/* Checks 10 and 11 of spec §3.4 on the parsed bindings. */
static int check_bindings(ct_op_t *op, const int64_t *idx, ct_status_t *st)
{
    struct do_state *s = op->state;
    int n_in = op->n_in - 1, n_out = op->n_out - 1, n_outer = n_in + n_out;
    size_t i, j;
    int k;

    for (i = 0; i < s->n_bind; i++) {
        for (j = 0; j < i; j++)
            if (strcmp(s->inner[i], s->inner[j]) == 0)
                return ct_status_setf(
                    st, CT_EARG, "redefinition of inner blob %s", s->inner[i]);
        if (idx[i] < 0 || idx[i] >= n_outer)
            return ct_status_setf(st, CT_EARG,
                                  "outer blob index (%lld, inner name: %s) "
                                  "is out of bounds [0, %d]",
                                  (long long)idx[i], s->inner[i], n_outer - 1);
        s->outer[i] = idx[i] < n_in ? ct_op_input_name(op, (int)idx[i])
                                    : ct_op_output_name(op, (int)idx[i] - n_in);
        for (j = 0; j < i; j++)
            if (strcmp(s->outer[i], s->outer[j]) == 0)
                return ct_status_setf(st, CT_EARG, "Reusage of outer name: %s",
                                      s->outer[i]);
    }
    /* Every outer name (an in-place pair counts once) must be bound. */
    for (k = 0; k < n_outer; k++) {
        const char *name = k < n_in ? ct_op_input_name(op, k)
                                    : ct_op_output_name(op, k - n_in);
        for (i = 0; i < s->n_bind; i++)
            if (strcmp(name, s->outer[i]) == 0)
                break;
        if (i == s->n_bind)
            return ct_status_setf(st, CT_EARG,
                                  "Not all outer names are used in blob "
                                  "bindings: %s is not bound",
                                  name);
    }
    return CT_OK;
}

static int do_init(ct_op_t *op, ct_status_t *st)
{
    struct do_state *s = op->state;
    const Caffe2__Argument *a = ct__arg_find(op, "net");
    const ProtobufCBinaryData *inner = NULL;
    const int64_t *idx = NULL;
    size_t n_inner = 0, n_idx = 0, i;
    int64_t copy_ext = 0, reuse = 0;
    int rc;

    if (a == NULL || a->n == NULL)
        return ct_status_setf(st, CT_EARG,
                              "net must be specified in Do operator");
    s->net = a->n;
    s->is_gradient = op->def->has_is_gradient_op && op->def->is_gradient_op;
    rc = ct__arg_int(op, "copy_external_blobs", 0, &copy_ext, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "reuse_workspace", 0, &reuse, st);
    if (rc == CT_OK)
        rc = ct__arg_strings(op, "inner_blobs", &inner, &n_inner, st);
    if (rc == CT_OK)
        rc = ct__arg_ints(op, "outer_blobs_idx", &idx, &n_idx, st);
    if (rc != CT_OK)
        return rc;
    s->copy_external = copy_ext != 0;
    s->reuse = reuse != 0;
    if (s->is_gradient && s->reuse)
        return ct_status_setf(st, CT_EARG,
                              "Gradient Do op requires use of stacked "
                              "workspaces");
    if (s->copy_external && s->reuse)
        return ct_status_setf(st, CT_EARG,
                              "Reuse workspace and copy external blobs "
                              "simultaneously in Do op");
    if (n_inner != n_idx)
        return ct_status_setf(st, CT_EARG,
                              "Invalid blob bindings: different inner/outer "
                              "blobs lengths (%zu inner_blobs, %zu "
                              "outer_blobs_idx)",
                              n_inner, n_idx);
    if (op->n_in < 1)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected at least one input blob");
    if (dup_among(op, true, op->n_in - 1))
        return ct_status_setf(st, CT_ESCHEMA, "Duplicate input blobs");
    if (op->n_out < 1)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected at least one output blob");
    if (strcmp(ct_op_input_name(op, op->n_in - 1),
               ct_op_output_name(op, op->n_out - 1)) != 0)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected same input/output workspace blob "
                              "(last input %s, last output %s)",
                              ct_op_input_name(op, op->n_in - 1),
                              ct_op_output_name(op, op->n_out - 1));
    if (dup_among(op, false, op->n_out - 1))
        return ct_status_setf(st, CT_ESCHEMA, "Duplicate output blobs");

    s->inner = ct__calloc(n_inner ? n_inner : 1, sizeof(char *));
    s->outer = ct__calloc(n_inner ? n_inner : 1, sizeof(char *));
    if (s->inner == NULL || s->outer == NULL)
        goto fail_alloc;
    for (i = 0; i < n_inner; i++) {
        s->inner[i] = ct__malloc(inner[i].len + 1);
        if (s->inner[i] == NULL)
            goto fail_alloc;
        memcpy(s->inner[i], inner[i].data, inner[i].len);
        s->inner[i][inner[i].len] = '\0';
        s->n_bind = i + 1;
    }
    s->n_bind = n_inner;
    rc = check_bindings(op, idx, st);
    if (rc != CT_OK)
        do_fini(op);
    return rc;
fail_alloc:
    do_fini(op);
    return ct_status_setf(st, CT_ENOMEM, "out of memory for Do bindings");
}

static int do_run(ct_op_ctx_t *ctx)
{
    ct_op_t *op = ctx->op;
    struct do_state *s = op->state;
    const char *const *inner = (const char *const *)s->inner;
    ct_workspace_stack_t *stack;
    ct_workspace_t *child = NULL;
    ct_net_t *net;
    ct_status_t sub = {0};
    bool rebound = false;
    int rc;

    rc = ct_blob_get_mutable_workspace_stack(op->out[op->n_out - 1], &stack,
                                             ctx->status);
    if (rc != CT_OK)
        return rc;
    if (s->is_gradient)
        rc = ct_workspace_stack_pop_gradient(stack, op->ws, inner, s->outer,
                                             s->n_bind, &child, ctx->status);
    else if (s->reuse && !ct_workspace_stack_empty(stack))
        rc = ct_workspace_stack_reuse_last_forward(
            stack, op->ws, inner, s->outer, s->n_bind, &child, ctx->status);
    else
        rc = ct_workspace_stack_push_forward(stack, op->ws, inner, s->outer,
                                             s->n_bind, &child, &rebound,
                                             ctx->status);
    if (rc != CT_OK)
        return rc;
    if (child == NULL)
        return ct_op_fail(ctx, CT_ESTATE,
                          "Failed to initialize Do op workspace (scope %s "
                          "is empty)",
                          ct_op_output_name(op, op->n_out - 1));
    if (s->net->name == NULL || s->net->name[0] == '\0')
        return ct_op_fail(ctx, CT_EARG, "Net definition should have a name.");
    net = rebound ? NULL : ct_workspace_get_net(child, s->net->name);
    if (net == NULL) {
        rc = ct_workspace_create_net(child, s->net, true, &net, &sub);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "creating subnet %s: %s", s->net->name,
                              sub.msg);
    }
    rc = ct_net_run(net, &sub);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "subnet %s: %s", s->net->name, sub.msg);
    if (!s->is_gradient && s->copy_external) {
        rc = ct_workspace_copy_forwarded_tensors(child, inner, s->n_bind, &sub);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "%s", sub.msg);
    }
    return CT_OK;
}

static double do_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct do_state *s = op->state;

    (void)in;
    /* Unknown until run; weigh by the subnet's size. */
    return s->net != NULL ? 1000.0 * (double)(s->net->n_op + 1) : 1000.0;
}

const struct ct_op_schema ct__op_do = {
    .name = "Do",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 1,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = do_args,
    .state_size = sizeof(struct do_state),
    .init_cb = do_init,
    .fini_cb = do_fini,
    .run_cb = do_run,
    .cost_cb = do_cost,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs a subnet in a child workspace of a scope blob's stack",
};
