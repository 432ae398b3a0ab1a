/* cortado internal: what the convolution and pooling ops share.
 *
 * Arguments (Caffe2's ConvPoolOpBase and ConvTransposeUnpoolBase rules,
 * parsed once at op creation by ct__conv_args_parse):
 *   kernels (ints) | kernel (int, 2-d) | kernel_h + kernel_w
 *   strides | stride | stride_h + stride_w              (default 1)
 *   pads (heads then tails: t, l, b, r in 2-d) | pad | pad_t, pad_l,
 *     pad_b, pad_r                                      (default 0)
 *   dilations | dilation | dilation_h + dilation_w      (default 1)
 *   adjs | adj | adj_h + adj_w (ConvTranspose only)     (default 0)
 *   group (1), order ("NCHW" | "NHWC"), legacy_pad (0 NOTSET, 1 VALID,
 *   2 SAME, 3 CAFFE_LEGACY_POOLING), global_pooling (0; pooling only).
 * The kernel fixes the number of spatial dims (1 to 3); global pooling
 * takes it, and the kernel, from the input. One form per family: giving
 * two (`kernel` and `kernels`) or half a pair (`kernel_h` alone) is an
 * error, where Caffe2 silently let one win or ignored the half.
 *
 * Geometry: every kernel works on 3 spatial dims (D, H, W); 1-d and 2-d
 * shapes get leading dims of extent 1 (kernel 1, stride 1, no padding),
 * so one loop nest serves all ranks. For a Conv, `in` is X's spatial
 * extent and `out` Y's; ConvTranspose is described as the convolution
 * whose input is its output (so its forward pass is a convolution's
 * backward-data pass).
 *
 * Parallelism: kernels are written over item ranges [i0, i1) with a lane
 * index for per-lane scratch, and run through ct__conv_for, the single
 * place where ct_parallel_for gets wired.
 */
#ifndef CT_OPS_CONV_POOL_H
#define CT_OPS_CONV_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/op_impl.h"

#define CT_CONV_MAX_SP 3

enum ct__conv_kind {
    CT_CONV_KIND_CONV,      /* Conv, ConvGradient */
    CT_CONV_KIND_TRANSPOSE, /* ConvTranspose */
    CT_CONV_KIND_POOL,      /* MaxPool, AveragePool and gradients */
};

/* Caffe2's LegacyPadding (caffe2_legacy.proto). */
enum ct__legacy_pad {
    CT_LEGACY_PAD_NOTSET = 0,
    CT_LEGACY_PAD_VALID = 1,
    CT_LEGACY_PAD_SAME = 2,
    CT_LEGACY_PAD_CAFFE = 3, /* CAFFE_LEGACY_POOLING: ceil output size */
};

/* Parsed arguments. Per spatial dim i < n_sp; pads[i] is the head and
 * pads[n_sp + i] the tail padding of dim i. */
struct ct__conv_args {
    int n_sp; /* 1..3; 0 for global pooling without kernel arguments */
    int32_t kernel[CT_CONV_MAX_SP], stride[CT_CONV_MAX_SP];
    int32_t dilation[CT_CONV_MAX_SP], adj[CT_CONV_MAX_SP];
    int32_t pads[2 * CT_CONV_MAX_SP];
    int32_t group;
    int legacy_pad; /* enum ct__legacy_pad */
    bool global_pooling;
    bool nhwc;
};

/* Run-time geometry, spatial dims normalised to (D, H, W). */
struct ct__conv_geom {
    int n_sp;      /* spatial dims of the tensors, 1..3 */
    bool nhwc;     /* channels last */
    int64_t n;     /* batch */
    int64_t c;     /* channels of the convolution input (X for Conv) */
    int64_t m;     /* channels of the convolution output (Y for Conv) */
    int64_t group; /* c and m are multiples of it */
    int64_t in[3], out[3];
    int64_t k[3], s[3], d[3], pad[3];  /* kernel, stride, dilation, head */
    int64_t in_size, out_size, k_size; /* products of in, out, k */
};

/* Parses and validates the arguments of an op of the given kind (CT_EARG
 * naming the argument and its value, CT_ENOTSUP beyond 3 spatial dims).
 * In ops/conv_args.c; everything else here is in ops/conv_pool.c. */
int ct__conv_args_parse(const ct_op_t *op, enum ct__conv_kind kind,
                        struct ct__conv_args *a, ct_status_t *st);

/* Spatial output extents of a Conv or pooling op (Caffe2's
 * ComputeSizeAndPad for each legacy_pad mode, global pooling included)
 * for an input X of ndim dims. Fills g's spatial fields (in, out, k, s, d,
 * pad and the sizes), n_sp and nhwc, and the channel count of X into g->c
 * (g->n too). Errors: CT_ESHAPE (rank, a zero channel count, an input
 * extent smaller than the kernel, an output extent <= 0), CT_EOVERFLOW. */
int ct__conv_geom_fwd(const struct ct__conv_args *a, int ndim,
                      const int64_t *dims, struct ct__conv_geom *g,
                      ct_status_t *st);

/* Conv: validates X, W and optional bias (b_ndim < 0: no bias) and gives
 * the geometry and Y's dims (ndim of X). CT_ESHAPE names expected and
 * actual shapes; CT_EOVERFLOW; CT_ENOTSUP when a GEMM dim exceeds the
 * BLAS int range. */
int ct__conv_plan(const struct ct__conv_args *a, int x_ndim,
                  const int64_t *x_dims, int w_ndim, const int64_t *w_dims,
                  int b_ndim, const int64_t *b_dims, struct ct__conv_geom *g,
                  int64_t *y_dims, ct_status_t *st);

/* ConvTranspose: the same for X, W ([M, C/group, k...] in NCHW, [M, k...,
 * C/group] in NHWC) and bias [C]; g describes the convolution from Y
 * (c = C) to X (m = M). */
int ct__conv_transpose_plan(const struct ct__conv_args *a, int x_ndim,
                            const int64_t *x_dims, int w_ndim,
                            const int64_t *w_dims, int b_ndim,
                            const int64_t *b_dims, struct ct__conv_geom *g,
                            int64_t *y_dims, ct_status_t *st);

/* ct__conv_plan or ct__conv_transpose_plan. */
typedef int (*ct__conv_plan_fn)(const struct ct__conv_args *a, int x_ndim,
                                const int64_t *x_dims, int w_ndim,
                                const int64_t *w_dims, int b_ndim,
                                const int64_t *b_dims, struct ct__conv_geom *g,
                                int64_t *y_dims, ct_status_t *st);

/* Shape inference of Conv and ConvTranspose (inputs X, W, optional b):
 * inputs of differing known dtypes are CT_ETYPE; with every input's rank
 * known, Y's dims come from plan. */
int ct__conv_infer(const ct_op_t *op, const struct ct__conv_args *a,
                   ct__conv_plan_fn plan, const ct_shape_t *in, ct_shape_t *out,
                   ct_status_t *st);

/* Pooling: geometry and Y's dims for X (m = c). */
int ct__pool_plan(const struct ct__conv_args *a, int x_ndim,
                  const int64_t *x_dims, struct ct__conv_geom *g,
                  int64_t *y_dims, ct_status_t *st);

/* Checks that a gradient input (`what`, e.g. "dY") has the dims `want`
 * (CT_ESHAPE "dY [..] must be [..] (...)" otherwise). */
int ct__conv_check_dims(const char *what, int ndim, const int64_t *dims,
                        int want_ndim, const int64_t *want, ct_status_t *st);

/* Output window of output index o along one dim: the input range
 * [*lo, *hi) clamped to [0, in), for pooling (dilation 1). */
static inline void ct__pool_window(int64_t o, int64_t s, int64_t pad, int64_t k,
                                   int64_t in, int64_t *lo, int64_t *hi)
{
    int64_t a = o * s - pad, b = a + k;

    *lo = a < 0 ? 0 : a;
    *hi = b > in ? in : b;
}

/* The argument specs every conv/pool op checks at creation (field kinds
 * only; values are checked by ct__conv_args_parse). Expands to array
 * elements: `{CT_CONV_ARG_SPECS, {"adjs", ...}, {NULL, ...}}`. */
/* clang-format off */
#define CT_CONV_ARG_SPECS                                                      \
    {"kernel", CT_ARG_INT, false},     {"kernel_h", CT_ARG_INT, false},        \
    {"kernel_w", CT_ARG_INT, false},   {"kernels", CT_ARG_INTS, false},        \
    {"stride", CT_ARG_INT, false},     {"stride_h", CT_ARG_INT, false},        \
    {"stride_w", CT_ARG_INT, false},   {"strides", CT_ARG_INTS, false},        \
    {"pad", CT_ARG_INT, false},        {"pad_t", CT_ARG_INT, false},           \
    {"pad_l", CT_ARG_INT, false},      {"pad_b", CT_ARG_INT, false},           \
    {"pad_r", CT_ARG_INT, false},      {"pads", CT_ARG_INTS, false},           \
    {"dilation", CT_ARG_INT, false},   {"dilation_h", CT_ARG_INT, false},      \
    {"dilation_w", CT_ARG_INT, false}, {"dilations", CT_ARG_INTS, false},      \
    {"group", CT_ARG_INT, false},      {"order", CT_ARG_STRING, false},        \
    {"legacy_pad", CT_ARG_INT, false}, {"global_pooling", CT_ARG_INT, false}
/* clang-format on */

/* Inputs t[0..n) named names[]: t[0] must be FLOAT (CT_ENOTSUP naming
 * its dtype), every other one the same dtype (CT_ETYPE naming all). NULL
 * entries are skipped. Fails through ctx. */
int ct__conv_check_dtypes(ct_op_ctx_t *ctx, int n, const ct_tensor_t *const *t,
                          const char *const *names);

/* ---- execution helpers ---- */

typedef void (*ct__conv_range_fn)(void *arg, int64_t begin, int64_t end,
                                  int ith);

/* Number of lanes (distinct `ith` values) ct__conv_for may use; per-lane
 * scratch is sized by it. */
int ct__conv_n_lanes(const ct_op_ctx_t *ctx);

/* Calls fn on ranges that cover [0, n) exactly once. grain: items per
 * range (<= 0: automatic). Serial today (one call, lane 0); see the
 * definition for where ct_parallel_for goes. fn must not fail. */
void ct__conv_for(ct_op_ctx_t *ctx, int64_t n, int64_t grain,
                  ct__conv_range_fn fn, void *arg);

/* Kernel scratch owned by an op: sized on first use and kept, grown only
 * when a later run needs more. Charged to the engine's memory budget. */
struct ct__conv_scratch {
    float *buf;
    size_t bytes;
};

/* Makes s hold at least `bytes`. CT_ENOMEM through ctx (naming `what`
 * and the bytes) when the budget or malloc refuses; s is then empty. */
int ct__conv_scratch_reserve(ct_op_ctx_t *ctx, struct ct__conv_scratch *s,
                             size_t bytes, const char *what);
void ct__conv_scratch_free(ct_engine_t *eng, struct ct__conv_scratch *s);

/* Output pixels per im2col tile for a column height of k_rows: the col
 * tile of k_rows x tile floats stays near a cache-sized budget, never
 * below a small minimum, never above out_size. */
int64_t ct__conv_tile(int64_t k_rows, int64_t out_size);

#endif /* CT_OPS_CONV_POOL_H */
