/* CreateScope and HasScope (Caffe2's create_scope_op.cc, spec §3.3).
 *
 * CreateScope: no inputs, one output; puts a WorkspaceStack in the output
 * blob (replacing anything else there) or reuses the one there, then
 * clears it: the workspaces are kept for reuse by the next Do pushes.
 * HasScope: one input holding a WorkspaceStack (else CT_ETYPE), one
 * output, a BOOL tensor of shape [1] = the stack is not empty (the
 * condition of a backward While loop). Neither has a gradient.
 */
#include "cortado/scope.h"
#include "ops/op_impl.h"

static int create_scope_run(ct_op_ctx_t *ctx)
{
    ct_workspace_stack_t *stack;
    int rc = ct_blob_get_mutable_workspace_stack(ctx->op->out[0], &stack,
                                                 ctx->status);

    if (rc != CT_OK)
        return rc;
    ct_workspace_stack_clear(stack);
    return CT_OK;
}

static int has_scope_run(ct_op_ctx_t *ctx)
{
    const ct_workspace_stack_t *stack;
    const ct_blob_type_t *type = ct_blob_type(ctx->op->in[0]);
    static const int64_t dims[1] = {1};
    ct_tensor_t *y;
    int rc;

    stack = ct_blob_get(ctx->op->in[0], &ct_blob_type_workspace_stack);
    if (stack == NULL)
        return ct_op_fail(ctx, CT_ETYPE,
                          "input 0 \"%s\" holds %s, not a WorkspaceStack",
                          ct_op_input_name(ctx->op, 0),
                          type != NULL ? type->name : "nothing");
    rc = ct_op_output(ctx, 0, CT_DTYPE_BOOL, 1, dims, &y);
    if (rc != CT_OK)
        return rc;
    *(bool *)ct_tensor_data(y) = !ct_workspace_stack_empty(stack);
    return CT_OK;
}

static double scope_cost(const ct_op_t *op, const ct_shape_t *in)
{
    (void)op;
    (void)in;
    return 1.0;
}

const struct ct_op_schema ct__op_create_scope = {
    .name = "CreateScope",
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .run_cb = create_scope_run,
    .cost_cb = scope_cost,
    .doc = "creates or clears the WorkspaceStack of a scope blob",
};

const struct ct_op_schema ct__op_has_scope = {
    .name = "HasScope",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .run_cb = has_scope_run,
    .cost_cb = scope_cost,
    .doc = "bool [1]: whether the scope's WorkspaceStack is not empty",
};
