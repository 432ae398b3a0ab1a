/* Copy and its device-transfer relatives (Caffe2's CopyOp and friends in
 * caffe2/operators/copy_op.cc and utility_ops.cc).
 *
 * out = a deep copy of input 0: same dtype and shape, data copied, string
 * elements duplicated. Every dtype is supported, including STRING and a
 * never-filled (UNDEFINED) tensor. The output never shares storage with
 * the input, so a later in-place op on one cannot change the other.
 *
 * Copy              1 input, 1 output. In place (input 0 = output 0) is
 *                   allowed and does nothing.
 * CopyFromCPUInput, CopyCPUToGPU, CopyGPUToCPU, EnsureCPUOutput
 *                   1 input, 1 output. cortado is CPU-only, so these are
 *                   the same copy (they appear in real nets exported from
 *                   GPU or mixed-device training).
 * CopyOnDeviceLike  2 inputs (data, like), 1 output: copies data; `like`
 *                   only named the device in Caffe2.
 * StopGradient      1 input, 1 output, in place allowed: the same copy in
 *                   the forward direction, and no gradient flows back
 *                   through it (Caffe2's StopGradient).
 * No arguments. Shape inference: the output is input 0's dtype and shape.
 * Alias (share storage) is deliberately absent: a shared storage that a
 * later in-place op rewrites would silently change the other blob.
 * Gradient of every copy: dX = Copy(dY) (input 0 only).
 */
#include <string.h>

#include "engine/gradient.h"
#include "ops/copy.h"
#include "ops/op_impl.h"

int ct__op_copy_to_output(ct_op_ctx_t *ctx, int out_idx, const ct_tensor_t *src,
                          int ndim, const int64_t *dims)
{
    ct_dtype_t dt = ct_tensor_dtype(src);
    ct_tensor_t *dst;
    ct_status_t st;
    int rc;

    if (dt == CT_DTYPE_UNDEFINED || dt == CT_DTYPE_STRING) {
        /* Strings need their bytes duplicated; ct_tensor_copy does that
         * into fresh storage and leaves dst unchanged on failure. */
        rc = ct_op_output_tensor(ctx, out_idx, &dst);
        if (rc != CT_OK)
            return rc;
        CT_ASSERT(dst != src, "copy of output %d onto its own input", out_idx);
        ct_status_clear(&st);
        rc = ct_tensor_copy(dst, src, &st);
        if (rc == CT_OK)
            rc = ct_tensor_reshape(dst, ndim, dims, &st);
        return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
    }
    rc = ct_op_output(ctx, out_idx, dt, ndim, dims, &dst);
    if (rc != CT_OK)
        return rc;
    CT_ASSERT(ct_tensor_numel(dst) == ct_tensor_numel(src),
              "copy of %lld elements into %lld",
              (long long)ct_tensor_numel(src), (long long)ct_tensor_numel(dst));
    /* Identical storage only when the engine kept an aliasing output's
     * buffer: the bytes are already there. */
    if (ct_tensor_numel(dst) > 0 && ct_tensor_data(dst) != ct_tensor_cdata(src))
        memcpy(ct_tensor_data(dst), ct_tensor_cdata(src),
               ct_tensor_nbytes(src));
    return CT_OK;
}

static int copy_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *in;
    int rc = ct_op_input(ctx, 0, &in);

    if (rc != CT_OK)
        return rc;
    if (ctx->op->in[0] == ctx->op->out[0])
        return CT_OK; /* in place: the output already is the input */
    return ct__op_copy_to_output(ctx, 0, in, ct_tensor_ndim(in),
                                 ct_tensor_dims(in));
}

static int copy_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

/* dX = Copy(dY) for input 0. */
static int copy_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const char *dy = ct__grad_out(g, 0), *dx = ct__grad_in(g, 0);

    return ct__grad_emit(g, "Copy", &dy, 1, &dx, 1, CT__GRAD_NO_ARGS, NULL, st);
}

#define COPY_SCHEMA(sym, type, n_in, inplace, grad, what)                      \
    const struct ct_op_schema sym = {                                          \
        .name = type,                                                          \
        .min_inputs = n_in,                                                    \
        .max_inputs = n_in,                                                    \
        .min_outputs = 1,                                                      \
        .max_outputs = 1,                                                      \
        .inplace_cb = inplace,                                                 \
        .infer_cb = copy_infer,                                                \
        .run_cb = copy_run,                                                    \
        .grad_cb = grad,                                                       \
        .doc = what,                                                           \
    }

COPY_SCHEMA(ct__op_copy, "Copy", 1, ct__inplace_0_0, copy_grad_make,
            "Deep copy of the input (any dtype).");
COPY_SCHEMA(ct__op_copy_from_cpu_input, "CopyFromCPUInput", 1, NULL,
            copy_grad_make,
            "Deep copy of the input (CPU-only build: same as Copy).");
COPY_SCHEMA(ct__op_copy_cpu_to_gpu, "CopyCPUToGPU", 1, NULL, copy_grad_make,
            "Deep copy of the input (CPU-only build: same as Copy).");
COPY_SCHEMA(ct__op_copy_gpu_to_cpu, "CopyGPUToCPU", 1, NULL, copy_grad_make,
            "Deep copy of the input (CPU-only build: same as Copy).");
COPY_SCHEMA(ct__op_ensure_cpu_output, "EnsureCPUOutput", 1, NULL,
            copy_grad_make,
            "Deep copy of the input (CPU-only build: same as Copy).");
COPY_SCHEMA(ct__op_copy_on_device_like, "CopyOnDeviceLike", 2, NULL,
            copy_grad_make,
            "Deep copy of input 0; input 1 only names a device.");
COPY_SCHEMA(ct__op_stop_gradient, "StopGradient", 1, ct__inplace_0_0,
            ct__grad_none,
            "Copy of the input; gradients do not flow back through it.");
