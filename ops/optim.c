/* Training-loop ops: WeightedSum, Iter, LearningRate, MomentumSGDUpdate
 * (Caffe2's utility_ops (WeightedSum), iter_op, learning_rate_op and
 * momentum_sgd_op, with Caffe2's argument names).
 *
 * WeightedSum: X0, w0, X1, w1, ... (an even count >= 2) -> Y = sum w_i X_i.
 *   Every X_i has X0's shape and dtype (FLOAT or DOUBLE), every w_i one
 *   element of that dtype. In-place: X0 -> Y (the SGD update
 *   WeightedSum(param, ONE, grad, LR) -> param with LR = -lr). No
 *   gradient (Caffe2's WeightedSumGradient is not provided).
 * Iter: [iter] -> iter, an INT64 tensor of one element incremented by 1.
 *   With an input it must run in place (Caffe2's EnforceInplace). Without
 *   one, an empty output blob starts at 0 (so the first run gives 1).
 *   Errors: not INT64 or not one element (CT_ETYPE / CT_ESHAPE), a
 *   negative count (CT_EINVAL), INT64_MAX (CT_EOVERFLOW). The counter is
 *   copied on write, so a checkpoint holding its storage keeps the value
 *   it saved. No gradient flows back (Caffe2's NO_GRADIENT).
 * LearningRate: iter -> lr = base_lr * f(iter), FLOAT of iter's shape
 *   (one element). Attrs: base_lr (float, required), policy (string,
 *   required):
 *     fixed  f = 1
 *     step   f = gamma ^ floor(iter / stepsize)   stepsize (int) > 0,
 *                                                 gamma (float) > 0
 *     exp    f = gamma ^ iter                     gamma > 0
 *     inv    f = (1 + gamma * iter) ^ (-power)    gamma > 0, power > 0
 *   computed in double and rounded once (Caffe2 computes in float). Other
 *   policies, missing or out-of-range policy arguments are CT_EARG at
 *   creation; a negative iter is CT_EINVAL. No gradient flows back.
 * MomentumSGDUpdate: grad, moment, lr, param -> grad', moment', param'
 *   (in place: 0 -> 0, 1 -> 1, 3 -> 2). Attrs momentum (float, 0),
 *   nesterov (int, 0). Per element, with g, m, p the inputs:
 *     plain:    m' = lr * g + momentum * m;  g' = m'
 *     nesterov: m' = momentum * m + lr * g;  g' = (1 + momentum) m' -
 *               momentum * m
 *     p' = p - g'
 *   grad, moment and param must have one element count (CT_ESHAPE), lr
 *   one element; FLOAT or DOUBLE. No gradient (Caffe2's
 *   SHOULD_NOT_DO_GRADIENT): the gradient builder refuses it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

#if defined(_OPENMP)
#define EW_SIMD _Pragma("omp simd")
#else
#define EW_SIMD
#endif

/* Elements per WeightedSum block (see Sum in ops/arith.c). */
#define WS_BLOCK 2048

static bool same_shape(const ct_tensor_t *a, const ct_tensor_t *b)
{
    return a->ndim == b->ndim &&
           (a->ndim == 0 ||
            memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof(int64_t)) == 0);
}

static double scalar_of(const ct_tensor_t *t)
{
    return t->dtype == CT_DTYPE_F64 ? CT_CDATA(t, double)[0]
                                    : (double)CT_CDATA(t, float)[0];
}

/* ---- WeightedSum ---- */

static int ws_init(ct_op_t *op, ct_status_t *st)
{
    if (op->n_in % 2 != 0)
        return ct_status_setf(st, CT_ESCHEMA,
                              "WeightedSum takes pairs (X, weight): got %d "
                              "inputs, an odd count",
                              op->n_in);
    return CT_OK;
}

#define WS_LOOPS(SFX, T)                                                       \
    static void ws_first_##SFX(int64_t n, T w0, const T *x0, T w1,             \
                               const T *x1, T *y)                              \
    {                                                                          \
        int64_t i;                                                             \
        EW_SIMD for (i = 0; i < n; i++) y[i] = w0 * x0[i] + w1 * x1[i];        \
    }                                                                          \
    static void ws_acc_##SFX(int64_t n, T w, const T *x, T *y)                 \
    {                                                                          \
        int64_t i;                                                             \
        EW_SIMD for (i = 0; i < n; i++) y[i] += w * x[i];                      \
    }                                                                          \
    static void ws_scale_##SFX(int64_t n, T w, const T *x, T *y)               \
    {                                                                          \
        int64_t i;                                                             \
        EW_SIMD for (i = 0; i < n; i++) y[i] = w * x[i];                       \
    }

WS_LOOPS(f32, float)
WS_LOOPS(f64, double)

static int ws_run(ct_op_ctx_t *ctx)
{
    const ct_op_t *op = ctx->op;
    const ct_tensor_t *x0, *t;
    const void *x0v;
    ct_tensor_t *y;
    char s1[128], s2[128];
    int64_t b0, n;
    size_t esz;
    bool f64;
    int rc, k;

    if ((rc = ct_op_input(ctx, 0, &x0)) != CT_OK)
        return rc;
    if (x0->dtype != CT_DTYPE_F32 && x0->dtype != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE)",
                          ct_dtype_name(x0->dtype));
    for (k = 1; k < op->n_in; k++) {
        if ((rc = ct_op_input(ctx, k, &t)) != CT_OK)
            return rc;
        if (t->dtype != x0->dtype)
            return ct_op_fail(ctx, CT_ETYPE,
                              "input %d \"%s\" is %s but X0 is %s", k,
                              ct_op_input_name(op, k), ct_dtype_name(t->dtype),
                              ct_dtype_name(x0->dtype));
        if (k % 2 == 1 && t->numel != 1)
            return ct_op_fail(ctx, CT_ESHAPE,
                              "weight %d \"%s\" has %lld elements; one "
                              "expected",
                              k / 2, ct_op_input_name(op, k),
                              (long long)t->numel);
        if (k % 2 == 0 && !same_shape(t, x0))
            return ct_op_fail(
                ctx, CT_ESHAPE, "input %d \"%s\" %s must have X0's shape %s", k,
                ct_op_input_name(op, k), ct_tensor_shape_str(t, s1, sizeof(s1)),
                ct_tensor_shape_str(x0, s2, sizeof(s2)));
    }
    x0v = ct_tensor_cdata(x0); /* before the output: copy on write */
    rc = ct_op_output(ctx, 0, x0->dtype, x0->ndim, x0->dims, &y);
    if (rc != CT_OK)
        return rc;
    f64 = x0->dtype == CT_DTYPE_F64;
    esz = ct_dtype_size(x0->dtype);
    /* Block by block: Y = w0 X0 (+ w1 X1), then Y += wk Xk. */
    for (b0 = 0; b0 < y->numel; b0 += n) {
        const size_t off = (size_t)b0 * esz;
        char *yb = (char *)ct_tensor_data(y) + off;
        const char *xb0 = (const char *)x0v + off;
        n = y->numel - b0 < WS_BLOCK ? y->numel - b0 : WS_BLOCK;
        for (k = 0; k < op->n_in; k += 2) {
            const double wk = scalar_of(ct_blob_get_tensor(op->in[k + 1]));
            const char *xb = k == 0 ? xb0
                                    : (const char *)ct_tensor_cdata(
                                          ct_blob_get_tensor(op->in[k])) +
                                          off;
            if (k == 0 && op->n_in == 2) {
                if (f64)
                    ws_scale_f64(n, wk, (const double *)xb, (double *)yb);
                else
                    ws_scale_f32(n, (float)wk, (const float *)xb, (float *)yb);
            } else if (k == 0) {
                continue; /* X0 joins X1 in the first pass */
            } else if (k == 2) {
                const double w0 = scalar_of(ct_blob_get_tensor(op->in[1]));
                if (f64)
                    ws_first_f64(n, w0, (const double *)xb0, wk,
                                 (const double *)xb, (double *)yb);
                else
                    ws_first_f32(n, (float)w0, (const float *)xb0, (float)wk,
                                 (const float *)xb, (float *)yb);
            } else if (f64) {
                ws_acc_f64(n, wk, (const double *)xb, (double *)yb);
            } else {
                ws_acc_f32(n, (float)wk, (const float *)xb, (float *)yb);
            }
        }
    }
    return CT_OK;
}

static int ws_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                    ct_status_t *st)
{
    out[0] = in[0];
    return CT_OK;
}

const struct ct_op_schema ct__op_weighted_sum = {
    .name = "WeightedSum",
    .min_inputs = 2,
    .max_inputs = CT_INF,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .init_cb = ws_init,
    .infer_cb = ws_infer,
    .run_cb = ws_run,
    .doc = "Y = sum w_i X_i over (X_i, w_i) pairs",
};

/* ---- Iter ---- */

static int iter_init(ct_op_t *op, ct_status_t *st)
{
    if (op->n_in == 1 && op->in[0] != op->out[0])
        return ct_status_setf(st, CT_ESCHEMA,
                              "Iter must run in place: input 0 \"%s\" and "
                              "output 0 \"%s\" differ",
                              ct_op_input_name(op, 0),
                              ct_op_output_name(op, 0));
    return CT_OK;
}

static int iter_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *cur;
    ct_tensor_t *t;
    int64_t v, one = 1;
    int rc;

    rc = ct_op_output_tensor(ctx, 0, &t);
    if (rc != CT_OK)
        return rc;
    cur = t;
    if (ctx->op->n_in == 0 && cur->dtype == CT_DTYPE_UNDEFINED) {
        /* First run of the old single-output form: start at 0. */
        rc = ct_op_output(ctx, 0, CT_DTYPE_I64, 1, &one, &t);
        if (rc != CT_OK)
            return rc;
        CT_DATA(t, int64_t)[0] = 1;
        return CT_OK;
    }
    if (cur->dtype != CT_DTYPE_I64)
        return ct_op_fail(
            ctx, CT_ETYPE, "iteration counter \"%s\" is %s; INT64 expected",
            ct_op_output_name(ctx->op, 0), ct_dtype_name(cur->dtype));
    if (cur->numel != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "iteration counter \"%s\" has %lld elements; one "
                          "expected",
                          ct_op_output_name(ctx->op, 0), (long long)cur->numel);
    v = CT_CDATA(cur, int64_t)[0];
    if (v < 0)
        return ct_op_fail(ctx, CT_EINVAL,
                          "previous iteration number %lld is negative",
                          (long long)v);
    if (v == INT64_MAX)
        return ct_op_fail(ctx, CT_EOVERFLOW,
                          "iteration counter is INT64_MAX; it would overflow");
    /* Same shape: copies the storage first when someone else holds it. */
    rc = ct_op_output(ctx, 0, CT_DTYPE_I64, t->ndim, t->dims, &t);
    if (rc != CT_OK)
        return rc;
    CT_DATA(t, int64_t)[0] = v + 1;
    return CT_OK;
}

static int iter_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    if (op->n_in == 1)
        out[0] = in[0];
    out[0].dtype = CT_DTYPE_I64;
    return CT_OK;
}

const struct ct_op_schema ct__op_iter = {
    .name = "Iter",
    .min_inputs = 0,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .inplace_cb = ct__inplace_0_0,
    .init_cb = iter_init,
    .infer_cb = iter_infer,
    .run_cb = iter_run,
    .grad_cb = ct__grad_none,
    .doc = "iter += 1 (INT64, in place)",
};

/* ---- LearningRate ---- */

enum lr_policy { LR_FIXED, LR_STEP, LR_EXP, LR_INV };

struct lr_state {
    enum lr_policy policy;
    double base_lr, gamma, power;
    int64_t stepsize;
};

static int lr_positive(const char *policy, const char *name, double v,
                       ct_status_t *st)
{
    if (isfinite(v) && v > 0)
        return CT_OK;
    return ct_status_setf(st, CT_EARG,
                          "policy \"%s\": argument %s=%g must be finite and "
                          "> 0",
                          policy, name, v);
}

static int lr_init(ct_op_t *op, ct_status_t *st)
{
    struct lr_state *s = op->state;
    const char *policy;
    char name[32];
    size_t len;
    float base_lr, gamma, power;
    int rc;

    if ((rc = ct__arg_float(op, "base_lr", 0, &base_lr, st)) != CT_OK ||
        (rc = ct__arg_string(op, "policy", "", &policy, &len, st)) != CT_OK ||
        (rc = ct__arg_float(op, "gamma", 0, &gamma, st)) != CT_OK ||
        (rc = ct__arg_float(op, "power", 0, &power, st)) != CT_OK ||
        (rc = ct__arg_int(op, "stepsize", 0, &s->stepsize, st)) != CT_OK)
        return rc;
    if (!isfinite(base_lr))
        return ct_status_setf(st, CT_EARG, "base_lr=%g must be finite",
                              (double)base_lr);
    snprintf(name, sizeof(name), "%.*s", (int)(len < 24 ? len : 24), policy);
    s->base_lr = base_lr;
    s->gamma = gamma;
    s->power = power;
    if (strcmp(name, "fixed") == 0 && len == 5) {
        s->policy = LR_FIXED;
    } else if (strcmp(name, "step") == 0 && len == 4) {
        s->policy = LR_STEP;
        if (s->stepsize <= 0)
            return ct_status_setf(st, CT_EARG,
                                  "policy \"step\": argument stepsize=%lld "
                                  "must be > 0",
                                  (long long)s->stepsize);
        rc = lr_positive(name, "gamma", gamma, st);
    } else if (strcmp(name, "exp") == 0 && len == 3) {
        s->policy = LR_EXP;
        rc = lr_positive(name, "gamma", gamma, st);
    } else if (strcmp(name, "inv") == 0 && len == 3) {
        s->policy = LR_INV;
        if ((rc = lr_positive(name, "gamma", gamma, st)) == CT_OK)
            rc = lr_positive(name, "power", power, st);
    } else {
        return ct_status_setf(st, CT_EARG,
                              "policy \"%s\" is not supported (fixed, step, "
                              "exp, inv)",
                              name);
    }
    return rc;
}

static int lr_run(ct_op_ctx_t *ctx)
{
    const struct lr_state *s = ctx->op->state;
    const ct_tensor_t *it;
    ct_tensor_t *out;
    double f = 1;
    int64_t iter;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &it)) != CT_OK)
        return rc;
    if (it->dtype != CT_DTYPE_I64 || it->numel != 1)
        return ct_op_fail(ctx, CT_ETYPE,
                          "iteration input \"%s\" must be one INT64, got %s "
                          "with %lld elements",
                          ct_op_input_name(ctx->op, 0),
                          ct_dtype_name(it->dtype), (long long)it->numel);
    iter = CT_CDATA(it, int64_t)[0];
    if (iter < 0)
        return ct_op_fail(ctx, CT_EINVAL, "iteration %lld is negative",
                          (long long)iter);
    switch (s->policy) {
    case LR_FIXED:
        break;
    case LR_STEP:
        f = pow(s->gamma, (double)(iter / s->stepsize));
        break;
    case LR_EXP:
        f = pow(s->gamma, (double)iter);
        break;
    case LR_INV:
        f = pow(1.0 + s->gamma * (double)iter, -s->power);
        break;
    }
    rc = ct_op_output(ctx, 0, CT_DTYPE_F32, it->ndim, it->dims, &out);
    if (rc != CT_OK)
        return rc;
    CT_DATA(out, float)[0] = (float)(s->base_lr * f);
    return CT_OK;
}

static int lr_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                    ct_status_t *st)
{
    out[0] = in[0];
    out[0].dtype = CT_DTYPE_F32;
    return CT_OK;
}

static const struct ct_arg_spec lr_args[] = {
    {"base_lr", CT_ARG_FLOAT, true}, {"policy", CT_ARG_STRING, true},
    {"gamma", CT_ARG_FLOAT, false},  {"power", CT_ARG_FLOAT, false},
    {"stepsize", CT_ARG_INT, false}, {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_learning_rate = {
    .name = "LearningRate",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = lr_args,
    .state_size = sizeof(struct lr_state),
    .init_cb = lr_init,
    .infer_cb = lr_infer,
    .run_cb = lr_run,
    .grad_cb = ct__grad_none,
    .doc = "lr = base_lr * policy(iter): fixed, step, exp, inv",
};

/* ---- MomentumSGDUpdate ---- */

struct msgd_state {
    float momentum;
    bool nesterov;
};

static int msgd_init(ct_op_t *op, ct_status_t *st)
{
    struct msgd_state *s = op->state;
    int64_t nesterov;
    int rc;

    if ((rc = ct__arg_float(op, "momentum", 0, &s->momentum, st)) != CT_OK ||
        (rc = ct__arg_int(op, "nesterov", 0, &nesterov, st)) != CT_OK)
        return rc;
    if (!isfinite(s->momentum))
        return ct_status_setf(st, CT_EARG, "momentum=%g must be finite",
                              (double)s->momentum);
    if (nesterov != 0 && nesterov != 1)
        return ct_status_setf(st, CT_EARG, "nesterov=%lld must be 0 or 1",
                              (long long)nesterov);
    s->nesterov = nesterov == 1;
    return CT_OK;
}

/* Reads every input element before writing it: outputs may alias. */
#define MSGD_LOOP(SFX, T)                                                      \
    static void msgd_##SFX(int64_t n, const T *g, const T *m, const T *p,      \
                           T lr, T mu, bool nesterov, T *ng, T *nm, T *np)     \
    {                                                                          \
        int64_t i;                                                             \
        for (i = 0; i < n; i++) {                                              \
            const T gi = g[i], mi = m[i], pi = p[i];                           \
            T a, b;                                                            \
            if (!nesterov) {                                                   \
                a = lr * gi + mu * mi;                                         \
                b = a;                                                         \
            } else {                                                           \
                a = mu * mi + lr * gi;                                         \
                b = (1 + mu) * a - mu * mi;                                    \
            }                                                                  \
            nm[i] = a;                                                         \
            ng[i] = b;                                                         \
            np[i] = pi - b;                                                    \
        }                                                                      \
    }

MSGD_LOOP(f32, float)
MSGD_LOOP(f64, double)

static int msgd_run(ct_op_ctx_t *ctx)
{
    const struct msgd_state *s = ctx->op->state;
    const ct_tensor_t *g, *m, *lr, *p;
    const void *gv, *mv, *pv;
    ct_tensor_t *ng, *nm, *np;
    double lrv;
    int rc, k;

    if ((rc = ct_op_input(ctx, 0, &g)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &m)) != CT_OK ||
        (rc = ct_op_input(ctx, 2, &lr)) != CT_OK ||
        (rc = ct_op_input(ctx, 3, &p)) != CT_OK)
        return rc;
    if (g->dtype != CT_DTYPE_F32 && g->dtype != CT_DTYPE_F64)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (FLOAT, DOUBLE)",
                          ct_dtype_name(g->dtype));
    for (k = 1; k < 4; k++) {
        const ct_tensor_t *t = k == 1 ? m : k == 2 ? lr : p;
        if (t->dtype != g->dtype)
            return ct_op_fail(ctx, CT_ETYPE,
                              "input %d \"%s\" is %s but grad is %s", k,
                              ct_op_input_name(ctx->op, k),
                              ct_dtype_name(t->dtype), ct_dtype_name(g->dtype));
    }
    if (m->numel != g->numel || p->numel != g->numel)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "grad, moment and param must have one element "
                          "count: %lld, %lld, %lld",
                          (long long)g->numel, (long long)m->numel,
                          (long long)p->numel);
    if (lr->numel != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "lr \"%s\" has %lld elements; one expected",
                          ct_op_input_name(ctx->op, 2), (long long)lr->numel);
    lrv = scalar_of(lr);
    gv = ct_tensor_cdata(g);
    mv = ct_tensor_cdata(m);
    pv = ct_tensor_cdata(p);
    if ((rc = ct_op_output(ctx, 0, g->dtype, g->ndim, g->dims, &ng)) != CT_OK ||
        (rc = ct_op_output(ctx, 1, m->dtype, m->ndim, m->dims, &nm)) != CT_OK ||
        (rc = ct_op_output(ctx, 2, p->dtype, p->ndim, p->dims, &np)) != CT_OK)
        return rc;
    if (g->numel == 0)
        return CT_OK;
    if (g->dtype == CT_DTYPE_F32)
        msgd_f32(g->numel, gv, mv, pv, (float)lrv, s->momentum, s->nesterov,
                 CT_DATA(ng, float), CT_DATA(nm, float), CT_DATA(np, float));
    else
        msgd_f64(g->numel, gv, mv, pv, lrv, s->momentum, s->nesterov,
                 CT_DATA(ng, double), CT_DATA(nm, double), CT_DATA(np, double));
    return CT_OK;
}

static int msgd_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    out[0] = in[0];
    out[1] = in[1];
    out[2] = in[3];
    return CT_OK;
}

static bool msgd_inplace(int in, int out)
{
    return (in == 0 && out == 0) || (in == 1 && out == 1) ||
           (in == 3 && out == 2);
}

static const struct ct_arg_spec msgd_args[] = {
    {"momentum", CT_ARG_FLOAT, false},
    {"nesterov", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_momentum_sgd_update = {
    .name = "MomentumSGDUpdate",
    .min_inputs = 4,
    .max_inputs = 4,
    .min_outputs = 3,
    .max_outputs = 3,
    .inplace_cb = msgd_inplace,
    .args = msgd_args,
    .state_size = sizeof(struct msgd_state),
    .init_cb = msgd_init,
    .infer_cb = msgd_infer,
    .run_cb = msgd_run,
    .doc = "momentum SGD: moment, adjusted grad and param updated",
};
