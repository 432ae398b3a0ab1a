/* cortado: parameter shapes from the consuming op (engine/shape_infer.h).
 *
 * One rule per op type that reads parameters, kept in one table. A rule
 * gets the op (its arguments), the known input shapes and which inputs
 * are missing, and fills the missing ones:
 *   Conv (Conv1D/2D/3D)  W NCHW [M, C / group, k...], NHWC [M, k..., C /
 *                        group]; b [M]. M is the free width (a multiple
 *                        of group) unless W is given. The kernel comes
 *                        from `kernels`, `kernel_h` + `kernel_w` or
 *                        `kernel` (repeated over the spatial dims).
 *   ConvTranspose        W NCHW [C, M / group, k...], NHWC [C, k..., M /
 *                        group]; b [M].
 *   FC                   W [N, K] (for axis_w = a >= 1: [N, 1 x (a - 1),
 *                        K]), b [N]; K = X's dims from `axis` on, N free.
 *   FCTransposed         W [K, N], b [N].
 *   SpatialBN            scale, bias, mean, var (and the two batch sums)
 *                        [C].
 *   Add, Sub, Mul, Div   B with broadcast = 1: [A's dim at axis] (the
 *                        last dim for axis -1); otherwise A's shape (and
 *                        A from B when A is the missing one).
 *   Sum                  the shape of the first known input.
 * Kinds: filters and FC weights are WEIGHT, biases and means BIAS, BN
 * scales and the B of Mul / Div SCALE, variances VARIANCE.
 * A rule also reports the dims that must agree when a parameter is given
 * (X's C and a given filter's C * group, ...), so that the driver can fix
 * a free width from them.
 * Rules read arguments with the ct__arg_* getters, whose errors were
 * already reported when the op was created, so they cannot fail here.
 */
#include <string.h>

#include "engine/shape_infer.h"

/* ---- helpers ---- */

static void set_shape(ct_shape_t *s, int nd, const int64_t *d)
{
    s->dtype = CT_DTYPE_F32;
    s->ndim = nd;
    if (nd > 0)
        memcpy(s->dims, d, (size_t)nd * sizeof(int64_t));
}

static void set_vec(ct_shape_t *s, int64_t n)
{
    set_shape(s, 1, &n);
}

static void add_eq(struct ct__param_ctx *c, int64_t a, int64_t b)
{
    if (a != b && c->n_eq < CT__PARAM_MAX_EQ) {
        c->eq[c->n_eq][0] = a;
        c->eq[c->n_eq][1] = b;
        c->n_eq++;
    }
}

static int64_t numel(const ct_shape_t *s)
{
    int64_t n = 1;
    int i;

    for (i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

/* CT_ESHAPE when input i's shape is needed but unknown. */
static int need(const struct ct__param_ctx *c, int i, int min_nd,
                ct_status_t *st)
{
    char buf[128];

    if (c->missing[i] || c->in[i].ndim < 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "cannot shape the parameters: the shape of "
                              "input %d \"%s\" is unknown",
                              i, ct_op_input_name(c->op, i));
    if (c->in[i].ndim < min_nd)
        return ct_status_setf(
            st, CT_ESHAPE,
            "cannot shape the parameters: input %d \"%s\" "
            "%s has fewer than %d dims",
            i, ct_op_input_name(c->op, i),
            ct_dims_str(c->in[i].ndim, c->in[i].dims, buf, sizeof(buf)),
            min_nd);
    return CT_OK;
}

static bool is_nhwc(const ct_op_t *op)
{
    const char *order;
    size_t len;

    return ct__arg_string(op, "order", "NCHW", &order, &len, NULL) == CT_OK &&
           len == 4 && memcmp(order, "NHWC", 4) == 0;
}

/* ---- Conv / ConvTranspose ---- */

/* The kernel dims for n_sp spatial dims. */
static int conv_kernel(const ct_op_t *op, int n_sp, int64_t *k, ct_status_t *st)
{
    const int64_t *ks;
    size_t n;
    int64_t v;
    int i;

    if (ct__arg_ints(op, "kernels", &ks, &n, NULL) == CT_OK && n > 0) {
        if ((int)n != n_sp)
            return ct_status_setf(st, CT_EARG,
                                  "cannot shape the filter: kernels has %zu "
                                  "values for %d spatial dims",
                                  n, n_sp);
        memcpy(k, ks, n * sizeof(int64_t));
        return CT_OK;
    }
    if (ct__arg_has(op, "kernel_h") && ct__arg_has(op, "kernel_w")) {
        if (n_sp != 2)
            return ct_status_setf(st, CT_EARG,
                                  "cannot shape the filter: kernel_h / "
                                  "kernel_w need 2 spatial dims, X has %d",
                                  n_sp);
        ct__arg_int(op, "kernel_h", 0, &k[0], NULL);
        ct__arg_int(op, "kernel_w", 0, &k[1], NULL);
        return CT_OK;
    }
    if (ct__arg_has(op, "kernel")) {
        ct__arg_int(op, "kernel", 0, &v, NULL);
        for (i = 0; i < n_sp; i++)
            k[i] = v;
        return CT_OK;
    }
    return ct_status_setf(st, CT_EARG,
                          "cannot shape the filter without a kernel, "
                          "kernel_h / kernel_w or kernels argument");
}

static int conv_common(struct ct__param_ctx *c, bool transposed,
                       ct_status_t *st)
{
    const bool nhwc = is_nhwc(c->op);
    int64_t k[CT_MAX_DIMS], wd[CT_MAX_DIMS], ch, m, g = 1;
    int nd, n_sp, i, rc;

    c->kind[1] = CT__PARAM_WEIGHT;
    if (c->op->n_in > 2)
        c->kind[2] = CT__PARAM_BIAS;
    if ((rc = need(c, 0, 3, st)) != CT_OK)
        return rc;
    nd = c->in[0].ndim;
    n_sp = nd - 2;
    ch = nhwc ? c->in[0].dims[nd - 1] : c->in[0].dims[1];
    ct__arg_int(c->op, "group", 1, &g, NULL);
    if (g < 1 || ch % g != 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "cannot shape the filter: C=%lld is not a "
                              "multiple of group %lld",
                              (long long)ch, (long long)g);
    if (!c->missing[1]) {
        const ct_shape_t *w = &c->in[1];
        if (w->ndim != nd)
            return CT_OK; /* the op's own check reports it */
        m = transposed ? (nhwc ? w->dims[nd - 1] : w->dims[1]) * g : w->dims[0];
        if (transposed)
            add_eq(c, ch, w->dims[0]);
        else
            add_eq(c, ch, (nhwc ? w->dims[nd - 1] : w->dims[1]) * g);
    } else {
        if ((rc = conv_kernel(c->op, n_sp, k, st)) != CT_OK)
            return rc;
        m = c->width;
        c->width_mult = g;
        wd[0] = transposed ? ch : m;
        for (i = 0; i < n_sp; i++)
            wd[nhwc ? 1 + i : 2 + i] = k[i];
        wd[nhwc ? nd - 1 : 1] = transposed ? m / g : ch / g;
        set_shape(&c->in[1], nd, wd);
    }
    if (c->op->n_in > 2 && c->missing[2])
        set_vec(&c->in[2], m);
    else if (c->op->n_in > 2 && c->in[2].ndim == 1)
        add_eq(c, m, c->in[2].dims[0]);
    return CT_OK;
}

static int rule_conv(struct ct__param_ctx *c, ct_status_t *st)
{
    return conv_common(c, false, st);
}

static int rule_conv_transpose(struct ct__param_ctx *c, ct_status_t *st)
{
    return conv_common(c, true, st);
}

/* ---- FC ---- */

static int fc_common(struct ct__param_ctx *c, bool transposed, ct_status_t *st)
{
    const ct_shape_t *x = &c->in[0];
    int64_t axis = 1, axis_w = 1, kx = 1, n, wd[CT_MAX_DIMS];
    int i, rc;

    c->kind[1] = CT__PARAM_WEIGHT;
    c->kind[2] = CT__PARAM_BIAS;
    if ((rc = need(c, 0, 1, st)) != CT_OK)
        return rc;
    ct__arg_int(c->op, "axis", 1, &axis, NULL);
    ct__arg_int(c->op, "axis_w", 1, &axis_w, NULL);
    if (axis < 0)
        axis += x->ndim;
    if (axis < 0 || axis >= x->ndim)
        return CT_OK; /* the op's own check reports it */
    for (i = (int)axis; i < x->ndim; i++)
        kx *= x->dims[i];
    if (!c->missing[1]) {
        const ct_shape_t *w = &c->in[1];
        int64_t pre = 1, post = 1, aw = axis_w < 0 ? axis_w + w->ndim : axis_w;
        if (aw < 0 || aw > w->ndim)
            return CT_OK;
        for (i = 0; i < w->ndim; i++)
            *(i < aw ? &pre : &post) *= w->dims[i];
        n = transposed ? post : pre;
        /* K = kx must equal the filter's K; when exactly one of X's dims
         * from axis on is unknown to the caller it is pinned by it. */
        for (i = (int)axis; i < x->ndim; i++) {
            const int64_t rest = kx / (x->dims[i] ? x->dims[i] : 1);
            const int64_t kw = transposed ? pre : post;
            if (rest > 0 && kw % rest == 0 && x->dims[i] != kw / rest)
                add_eq(c, x->dims[i], kw / rest);
        }
    } else {
        int nd;
        n = c->width;
        c->width_mult = 1;
        if (transposed || axis_w == 1 || axis_w == -1) {
            wd[0] = transposed ? kx : n;
            wd[1] = transposed ? n : kx;
            nd = 2;
        } else if (axis_w > 1 && axis_w < CT_MAX_DIMS) {
            nd = (int)axis_w + 1;
            wd[0] = n;
            for (i = 1; i < nd - 1; i++)
                wd[i] = 1;
            wd[nd - 1] = kx;
        } else {
            return ct_status_setf(st, CT_EARG, "cannot shape W for axis_w %lld",
                                  (long long)axis_w);
        }
        set_shape(&c->in[1], nd, wd);
    }
    if (c->missing[2])
        set_vec(&c->in[2], n);
    return CT_OK;
}

static int rule_fc(struct ct__param_ctx *c, ct_status_t *st)
{
    return fc_common(c, false, st);
}

static int rule_fc_transposed(struct ct__param_ctx *c, ct_status_t *st)
{
    return fc_common(c, true, st);
}

/* ---- SpatialBN ---- */

static int rule_spatial_bn(struct ct__param_ctx *c, ct_status_t *st)
{
    static const enum ct__param_kind kinds[] = {
        CT__PARAM_NONE,     CT__PARAM_SCALE, CT__PARAM_BIAS,     CT__PARAM_BIAS,
        CT__PARAM_VARIANCE, CT__PARAM_BIAS,  CT__PARAM_VARIANCE,
    };
    int64_t ch;
    int i, nd, rc;

    for (i = 1; i < c->op->n_in && i < 7; i++)
        c->kind[i] = kinds[i];
    if ((rc = need(c, 0, 2, st)) != CT_OK)
        return rc;
    nd = c->in[0].ndim;
    ch = is_nhwc(c->op) ? c->in[0].dims[nd - 1] : c->in[0].dims[1];
    for (i = 1; i < c->op->n_in && i < 7; i++) {
        if (c->missing[i])
            set_vec(&c->in[i], ch);
        else if (c->in[i].ndim >= 0)
            add_eq(c, ch, numel(&c->in[i]));
    }
    return CT_OK;
}

/* ---- elementwise ---- */

/* B's shape for legacy broadcasting (broadcast = 1): the dim of A at
 * axis (axis_str through order), the last one for axis -1. */
static int64_t legacy_dim(const ct_op_t *op, const ct_shape_t *a)
{
    const char *axis_str, *order;
    size_t alen, olen, k;
    int64_t axis = -1;

    ct__arg_int(op, "axis", -1, &axis, NULL);
    if (axis == -1 &&
        ct__arg_string(op, "axis_str", "", &axis_str, &alen, NULL) == CT_OK &&
        alen == 1 &&
        ct__arg_string(op, "order", "NCHW", &order, &olen, NULL) == CT_OK) {
        for (k = 0; k < olen && order[k] != axis_str[0]; k++)
            ;
        axis = k < olen ? (int64_t)k : -1;
    }
    if (axis < 0 || axis >= a->ndim)
        axis = a->ndim - 1;
    return a->dims[axis];
}

static int binary_common(struct ct__param_ctx *c, enum ct__param_kind bk,
                         ct_status_t *st)
{
    int64_t bcast = 0;
    int rc;

    ct__arg_int(c->op, "broadcast", 0, &bcast, NULL);
    if (c->missing[0] && !c->missing[1] && bcast != 1) {
        /* A parameter as the first operand: same shape as B. */
        c->kind[0] = CT__PARAM_BIAS;
        c->in[0] = c->in[1];
        c->in[0].dtype = CT_DTYPE_F32;
        return CT_OK;
    }
    c->kind[1] = bk;
    if ((rc = need(c, 0, 1, st)) != CT_OK)
        return rc;
    if (bcast == 1) {
        const int64_t d = legacy_dim(c->op, &c->in[0]);
        if (c->missing[1])
            set_vec(&c->in[1], d);
        else if (c->in[1].ndim == 1)
            add_eq(c, d, c->in[1].dims[0]);
    } else if (c->missing[1]) {
        set_shape(&c->in[1], c->in[0].ndim, c->in[0].dims);
    }
    return CT_OK;
}

static int rule_add(struct ct__param_ctx *c, ct_status_t *st)
{
    return binary_common(c, CT__PARAM_BIAS, st);
}

static int rule_mul(struct ct__param_ctx *c, ct_status_t *st)
{
    return binary_common(c, CT__PARAM_SCALE, st);
}

static int rule_sum(struct ct__param_ctx *c, ct_status_t *st)
{
    int i, known = -1;

    for (i = 0; i < c->op->n_in && known < 0; i++)
        if (!c->missing[i] && c->in[i].ndim >= 0)
            known = i;
    if (known < 0)
        return ct_status_setf(st, CT_ESHAPE,
                              "cannot shape the parameters: no input of Sum "
                              "has a known shape");
    for (i = 0; i < c->op->n_in; i++)
        if (c->missing[i]) {
            c->kind[i] = CT__PARAM_BIAS;
            set_shape(&c->in[i], c->in[known].ndim, c->in[known].dims);
        }
    return CT_OK;
}

/* ---- the table ---- */

static const struct {
    const char *type;
    ct__param_rule_fn fn;
} rules[] = {
    {"Conv", rule_conv},
    {"Conv1D", rule_conv},
    {"Conv2D", rule_conv},
    {"Conv3D", rule_conv},
    {"ConvTranspose", rule_conv_transpose},
    {"FC", rule_fc},
    {"FCTransposed", rule_fc_transposed},
    {"SpatialBN", rule_spatial_bn},
    {"Add", rule_add},
    {"Sub", rule_add},
    {"Mul", rule_mul},
    {"Div", rule_mul},
    {"Sum", rule_sum},
};

ct__param_rule_fn ct__param_rule_find(const char *type)
{
    size_t k;

    if (type == NULL)
        return NULL;
    for (k = 0; k < sizeof(rules) / sizeof(rules[0]); k++)
        if (strcmp(rules[k].type, type) == 0)
            return rules[k].fn;
    return NULL;
}
