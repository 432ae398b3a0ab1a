/* Tests for ops/pooling.c and ops/pooling_grad.c: MaxPool, AveragePool
 * (count_include_pad both ways) and their gradients compared with naive
 * references over a case table and seeded random cases (1-3 spatial dims,
 * NCHW and NHWC, strides, asymmetric pads); Caffe's ceil output size
 * (legacy_pad 3); global pooling; gradients against central finite
 * differences and a naive backward pass, ties included; every error with
 * its message; shape inference and cost; and the pooling shapes of the
 * real SqueezeNet (../shared/data), walked through shape inference with
 * the net's own arguments and weights' shapes.
 * (Named test_pooling: tests/scheduler/test_pool.c owns the target name
 * test_pool.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/cortado.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

#include "conv_ref.h"

/* ---- the reference ---- */

enum kind { K_MAX, K_AVG, K_AVG_PAD };

struct pcase {
    struct cr_case c; /* m, group, d, adj unused */
    int legacy;       /* legacy_pad argument, -1 absent */
    bool global;
};

/* Output extent of dim i (NOTSET or Caffe's ceil), or 1 when global. */
static int64_t pool_out(const struct pcase *p, int i)
{
    const struct cr_case *c = &p->c;
    int64_t num, o;

    if (p->global)
        return 1;
    if (p->legacy != 3)
        return (c->in[i] + c->pads[i] + c->pads[c->n_sp + i] - c->k[i]) /
                   c->s[i] +
               1;
    num = c->in[i] + 2 * c->pads[i] - c->k[i];
    o = (num + c->s[i] - 1) / c->s[i] + 1;
    if (c->pads[i] > 0 && (o - 1) * c->s[i] >= c->in[i] + c->pads[i])
        o--;
    return o;
}

/* The window [lo, hi) of output o along dim i, clamped. */
static void pool_win(const struct pcase *p, int i, int64_t o, int64_t *lo,
                     int64_t *hi)
{
    const struct cr_case *c = &p->c;
    int64_t a, b;

    if (p->global) {
        *lo = 0;
        *hi = c->in[i];
        return;
    }
    a = o * c->s[i] - c->pads[i];
    b = a + c->k[i];
    *lo = a < 0 ? 0 : a;
    *hi = b > c->in[i] ? c->in[i] : b;
}

/* Visits every (input index, output index) pair of the pooling: calls
 * fn once per output with its inputs listed. */
struct visit {
    int64_t yi;
    int64_t xi[4096];
    int n;
    double div; /* AveragePool divisor for the output */
};

static void pool_visit(const struct pcase *p, enum kind kind,
                       void (*fn)(const struct visit *v, void *arg), void *arg)
{
    const struct cr_case *c = &p->c;
    int64_t in3[3], out3[3], out[3], kv = 1;
    int64_t n, ch, o0, o1, o2, i0, i1, i2;
    struct visit *v = malloc(sizeof(*v));
    int i;

    assert_non_null(v);
    for (i = 0; i < c->n_sp; i++) {
        out[i] = pool_out(p, i);
        kv *= p->global ? c->in[i] : c->k[i];
    }
    cr_sp3(c->n_sp, c->in, in3);
    cr_sp3(c->n_sp, out, out3);
    for (n = 0; n < c->n; n++)
        for (ch = 0; ch < c->c; ch++)
            for (o0 = 0; o0 < out3[0]; o0++)
                for (o1 = 0; o1 < out3[1]; o1++)
                    for (o2 = 0; o2 < out3[2]; o2++) {
                        const int64_t o[3] = {o0, o1, o2};
                        int64_t lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
                        for (i = 0; i < c->n_sp; i++)
                            pool_win(p, i, o[3 - c->n_sp + i],
                                     &lo[3 - c->n_sp + i],
                                     &hi[3 - c->n_sp + i]);
                        v->n = 0;
                        v->yi = cr_at(c->nhwc, c->c, out3, n, ch, o0, o1, o2);
                        for (i0 = lo[0]; i0 < hi[0]; i0++)
                            for (i1 = lo[1]; i1 < hi[1]; i1++)
                                for (i2 = lo[2]; i2 < hi[2]; i2++)
                                    v->xi[v->n++] = cr_at(c->nhwc, c->c, in3, n,
                                                          ch, i0, i1, i2);
                        v->div = kind == K_AVG_PAD ? (double)kv : v->n;
                        fn(v, arg);
                    }
    free(v);
}

struct fwd_arg {
    const float *x;
    double *y;
    enum kind kind;
};

static void fwd_visit(const struct visit *v, void *arg)
{
    struct fwd_arg *a = arg;
    double acc = a->kind == K_MAX ? -INFINITY : 0.0;
    int j;

    for (j = 0; j < v->n; j++) {
        if (a->kind == K_MAX)
            acc = a->x[v->xi[j]] > acc ? a->x[v->xi[j]] : acc;
        else
            acc += a->x[v->xi[j]];
    }
    if (a->kind != K_MAX)
        acc = v->div > 0 ? acc / v->div : 0.0;
    a->y[v->yi] = acc;
}

struct bwd_arg {
    const float *x, *y, *dy;
    double *dx;
    enum kind kind;
};

static void bwd_visit(const struct visit *v, void *arg)
{
    struct bwd_arg *a = arg;
    int j;

    for (j = 0; j < v->n; j++) {
        if (a->kind == K_MAX) {
            if (a->x[v->xi[j]] == a->y[v->yi])
                a->dx[v->xi[j]] += a->dy[v->yi];
        } else if (v->div > 0) {
            a->dx[v->xi[j]] += a->dy[v->yi] / v->div;
        }
    }
}

/* ---- running ---- */

static const char *const type_names[] = {"MaxPool", "AveragePool",
                                         "AveragePool"};

static Caffe2__OperatorDef *pool_def(const struct pcase *p, enum kind kind,
                                     bool grad, const char *out)
{
    char type[64];
    Caffe2__OperatorDef *op;

    snprintf(type, sizeof(type), "%s%s", type_names[kind],
             grad ? "Gradient" : "");
    op = tu_op(type, grad ? "X,Y,dY" : "X", out);
    if (p->global) {
        tu_arg_i(op, "global_pooling", 1);
        if (p->c.nhwc)
            tu_arg_s(op, "order", "NHWC");
    } else {
        cr_add_args(op, &p->c, false, false);
    }
    if (p->legacy >= 0)
        tu_arg_i(op, "legacy_pad", p->legacy);
    if (kind == K_AVG_PAD)
        tu_arg_i(op, "count_include_pad", 1);
    return op;
}

struct pdata {
    int nd;
    int64_t xd[5], yd[5], nx, ny;
    float *x;
};

static void pdata_init(struct pdata *d, const struct pcase *p, uint64_t seed)
{
    int64_t out[3];
    int i;

    d->nd = cr_dims(&p->c, p->c.c, p->c.in, d->xd);
    for (i = 0; i < p->c.n_sp; i++)
        out[i] = pool_out(p, i);
    cr_dims(&p->c, p->c.c, out, d->yd);
    d->nx = cr_numel(d->nd, d->xd);
    d->ny = cr_numel(d->nd, d->yd);
    d->x = cr_rand_floats(d->nx, seed);
}

/* Runs the forward op for kind on p and checks dims and values. */
static void check_pool(struct tu_env *e, const struct pcase *p, enum kind kind,
                       uint64_t seed)
{
    Caffe2__OperatorDef *op = pool_def(p, kind, false, "Y");
    struct fwd_arg a;
    struct pdata d;
    const ct_tensor_t *y;
    ct_status_t st;
    char what[160];
    int i;

    snprintf(what, sizeof(what), "%s %s", type_names[kind], p->c.what);
    pdata_init(&d, p, seed);
    a.x = d.x;
    a.kind = kind;
    a.y = calloc((size_t)(d.ny > 0 ? d.ny : 1), sizeof(double));
    assert_non_null(a.y);
    pool_visit(p, kind, fwd_visit, &a);
    tu_feed_f32(e->ws, "X", d.nd, d.xd, d.x);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", what, st.msg);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_ndim(y), d.nd);
    for (i = 0; i < d.nd; i++)
        if (ct_tensor_dims(y)[i] != d.yd[i])
            fail_msg("%s: Y dim %d is %lld, want %lld", what, i,
                     (long long)ct_tensor_dims(y)[i], (long long)d.yd[i]);
    cr_assert_close(what, ct_tensor_cdata(y), a.y, d.ny, 1e-5, 1e-6);
    tu_op_free(op);
    free(a.y);
    free(d.x);
}

/* Runs the gradient op for kind (Y from the forward op) and compares dX
 * with the naive backward pass. */
static void check_pool_grad(struct tu_env *e, const struct pcase *p,
                            enum kind kind, uint64_t seed)
{
    Caffe2__OperatorDef *fwd = pool_def(p, kind, false, "Y");
    Caffe2__OperatorDef *op = pool_def(p, kind, true, "dX");
    struct bwd_arg a;
    struct pdata d;
    float *dy;
    const ct_tensor_t *dx;
    ct_status_t st;
    char what[160];

    snprintf(what, sizeof(what), "%sGradient %s", type_names[kind], p->c.what);
    pdata_init(&d, p, seed);
    dy = cr_rand_floats(d.ny, seed + 1);
    tu_feed_f32(e->ws, "X", d.nd, d.xd, d.x);
    tu_feed_f32(e->ws, "dY", d.nd, d.yd, dy);
    if (tu_run_op(e->ws, fwd, &st) != CT_OK)
        fail_msg("%s: forward: %s", what, st.msg);
    a.x = d.x;
    a.y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    a.dy = dy;
    a.kind = kind;
    a.dx = calloc((size_t)(d.nx > 0 ? d.nx : 1), sizeof(double));
    assert_non_null(a.dx);
    pool_visit(p, kind, bwd_visit, &a);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", what, st.msg);
    dx = tu_fetch(e->ws, "dX");
    assert_int_equal(ct_tensor_ndim(dx), d.nd);
    assert_memory_equal(ct_tensor_dims(dx), d.xd, (size_t)d.nd * 8);
    cr_assert_close(what, ct_tensor_cdata(dx), a.dx, d.nx, 1e-5, 1e-6);
    tu_op_free(fwd);
    tu_op_free(op);
    free(a.dx);
    free(d.x);
    free(dy);
}

/* ---- the case table ---- */

/* clang-format off */
#define C2(what, nhwc, n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, form)       \
    {{what, 2, nhwc, n, c, 0, 1, {h, w}, {kh, kw}, {sh, sw}, {1, 1},           \
      {pt, pl, pb, pr}, {0}, false, form}, -1, false}

static const struct pcase cases[] = {
    C2("2x2 stride 2", false, 2, 3, 6, 8, 2, 2, 2, 2, 0, 0, 0, 0, CR_LISTS),
    C2("3x3 stride 2 pad 1", false, 1, 2, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1,
       CR_SCALAR),
    C2("3x3 stride 1 asymmetric pads", false, 2, 2, 5, 6, 3, 3, 1, 1, 0, 2, 1,
       0, CR_HW),
    C2("2x3 strides 3x1", false, 1, 3, 9, 7, 2, 3, 3, 1, 1, 0, 0, 2, CR_LISTS),
    C2("kernel 1 stride 2", false, 1, 2, 5, 5, 1, 1, 2, 2, 0, 0, 0, 0,
       CR_LISTS),
    C2("NHWC 3x3 stride 2 pad 1", true, 2, 5, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1,
       CR_LISTS),
    C2("NHWC asymmetric", true, 1, 3, 6, 5, 2, 3, 1, 2, 1, 0, 0, 2, CR_HW),
    C2("empty batch", false, 0, 3, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, CR_LISTS),
    {{"1-d", 1, false, 2, 3, 0, 1, {9}, {3}, {2}, {1}, {1, 1}, {0}, false,
      CR_LISTS}, -1, false},
    {{"1-d NHWC", 1, true, 1, 4, 0, 1, {8}, {2}, {1}, {1}, {1, 0}, {0}, false,
      CR_LISTS}, -1, false},
    {{"3-d", 3, false, 1, 2, 0, 1, {4, 5, 6}, {2, 3, 2}, {2, 1, 2}, {1, 1, 1},
      {1, 1, 0, 0, 1, 1}, {0}, false, CR_LISTS}, -1, false},
    {{"3-d NHWC", 3, true, 2, 3, 0, 1, {3, 4, 5}, {3, 2, 2}, {1, 2, 2},
      {1, 1, 1}, {1, 0, 1, 1, 1, 0}, {0}, false, CR_LISTS}, -1, false},
};
/* clang-format on */

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* Caffe's ceil pooling: SqueezeNet's three max pools, padded cases with
 * and without the clip of a window starting in the tail padding, and a
 * stride larger than the kernel (a window past the input). */
struct legacy_case {
    int64_t in;
    int k, s, p;
    int64_t want;
};

static const struct legacy_case legacy_cases[] = {
    {111, 3, 2, 0, 55}, {55, 3, 2, 0, 27},   {27, 3, 2, 0, 13},
    {6, 3, 2, 1, 4},    {5, 2, 2, 1, 3},     {7, 2, 2, 0, 4},
    {5, 1, 3, 0, 3},    {224, 3, 2, 1, 113},
};

static struct pcase legacy_pcase(const struct legacy_case *l, bool nhwc)
{
    struct pcase p;

    memset(&p, 0, sizeof(p));
    p.c.what = "legacy_pad 3";
    p.c.n_sp = 2;
    p.c.nhwc = nhwc;
    p.c.n = 1;
    p.c.c = 2;
    p.c.group = 1;
    p.c.in[0] = l->in;
    p.c.in[1] = 5;
    p.c.k[0] = l->k;
    p.c.k[1] = 2;
    p.c.s[0] = l->s;
    p.c.s[1] = 2;
    p.c.d[0] = p.c.d[1] = 1;
    p.c.pads[0] = p.c.pads[2] = l->p;
    p.c.form = CR_LISTS;
    p.legacy = 3;
    return p;
}

static void random_pcase(uint64_t *rng, struct pcase *p)
{
    struct cr_case *c = &p->c;
    int i;

    memset(p, 0, sizeof(*p));
    p->legacy = cr_rand(rng, 0, 3) == 0 ? 3 : -1;
    c->what = p->legacy == 3 ? "random legacy" : "random";
    c->n_sp = cr_rand(rng, 1, 3);
    c->nhwc = cr_rand(rng, 0, 1);
    c->n = cr_rand(rng, 1, 2);
    c->c = cr_rand(rng, 1, 4);
    c->group = 1;
    c->form = CR_LISTS;
    for (i = 0; i < c->n_sp; i++) {
        c->k[i] = cr_rand(rng, 1, 4);
        c->s[i] = cr_rand(rng, 1, 3);
        c->d[i] = 1;
        c->pads[i] = cr_rand(rng, 0, c->k[i] - 1);
        c->pads[c->n_sp + i] =
            p->legacy == 3 ? c->pads[i] : cr_rand(rng, 0, c->k[i] - 1);
        c->in[i] = cr_rand(rng, 1, c->n_sp == 3 ? 6 : 10);
        if (c->in[i] + c->pads[i] + c->pads[c->n_sp + i] < c->k[i])
            c->in[i] = c->k[i];
    }
}

/* ---- tests: forward values ---- */

static void test_pool_case_table_matches_reference(void **state)
{
    size_t ci;
    int k;

    for (ci = 0; ci < N_CASES; ci++)
        for (k = K_MAX; k <= K_AVG_PAD; k++)
            check_pool(*state, &cases[ci], (enum kind)k, 10 + ci);
}

static void test_pool_random_cases_match_reference(void **state)
{
    uint64_t rng = 99;
    struct pcase p;
    int i, k;

    for (i = 0; i < 120; i++) {
        random_pcase(&rng, &p);
        for (k = K_MAX; k <= K_AVG_PAD; k++)
            check_pool(*state, &p, (enum kind)k, 600 + (uint64_t)i);
    }
}

/* NCHW 2-d MaxPool runs separably (column maxima per output row, then row
 * maxima): ResNet's stem pool, a legacy ceil case, a row wider than the
 * separable path's stack row (the plane path then), a 3-d input with a
 * unit depth, and NaN inputs, which both paths skip. */
static void test_max_pool_separable_path_matches_reference(void **state)
{
    struct tu_env *e = *state;
    /* clang-format off */
    static const struct pcase sep[] = {
        C2("ResNet stem 3x3 s2 p1", false, 2, 3, 112, 112, 3, 3, 2, 2, 1, 1,
           1, 1, CR_LISTS),
        C2("wide row 2100 (plane path)", false, 1, 2, 3, 2100, 2, 3, 1, 2, 0,
           1, 0, 1, CR_LISTS),
        {{"legacy ceil 3x3 s2", 2, false, 1, 2, 0, 1, {13, 12}, {3, 3},
          {2, 2}, {1, 1}, {0, 0, 0, 0}, {0}, false, CR_LISTS}, 3, false},
        {{"3-d unit depth", 3, false, 1, 2, 0, 1, {1, 7, 9}, {1, 3, 2},
          {1, 2, 2}, {1, 1, 1}, {0, 1, 0, 0, 1, 1}, {0}, false, CR_LISTS},
         -1, false},
    };
    /* clang-format on */
    Caffe2__OperatorDef *op = tu_op("MaxPool", "X", "Y");
    const int64_t xd[4] = {1, 1, 3, 4}, k[2] = {2, 2};
    const float nan = NAN;
    const float x[12] = {nan, 1, nan, 5, 2, nan, 7, nan, nan, nan, nan, nan};
    const float *y;
    ct_status_t st;
    size_t ci;

    for (ci = 0; ci < sizeof(sep) / sizeof(sep[0]); ci++)
        check_pool(e, &sep[ci], K_MAX, 900 + ci);
    /* 2x2 stride 1 over [[N 1 N 5] [2 N 7 N] [N N N N]] (N = NaN): the
     * maxima of the numbers in each window, 2 7 7 / 2 7 7. */
    tu_arg_ints(op, "kernels", 2, k);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    assert_true(y[0] == 2 && y[1] == 7 && y[2] == 7);
    assert_true(y[3] == 2 && y[4] == 7 && y[5] == 7);
    tu_op_free(op);
}

static void test_pool_legacy_caffe_output_sizes(void **state)
{
    size_t li;
    int k;

    for (li = 0; li < sizeof(legacy_cases) / sizeof(legacy_cases[0]); li++) {
        const struct legacy_case *l = &legacy_cases[li];
        struct pcase p = legacy_pcase(l, li % 2 == 1);
        if (pool_out(&p, 0) != l->want)
            fail_msg("test reference: in %lld k %d s %d p %d gives %lld, "
                     "want %lld",
                     (long long)l->in, l->k, l->s, l->p,
                     (long long)pool_out(&p, 0), (long long)l->want);
        for (k = K_MAX; k <= K_AVG_PAD; k++)
            check_pool(*state, &p, (enum kind)k, 70 + li);
    }
}

static void test_pool_global_pooling_reduces_whole_input(void **state)
{
    struct tu_env *e = *state;
    struct pcase p;
    int n_sp, nhwc, k;

    for (n_sp = 1; n_sp <= 3; n_sp++) {
        for (nhwc = 0; nhwc <= 1; nhwc++) {
            memset(&p, 0, sizeof(p));
            p.c.what = "global";
            p.c.n_sp = n_sp;
            p.c.nhwc = nhwc;
            p.c.n = 2;
            p.c.c = 3;
            p.c.group = 1;
            p.c.in[0] = 5;
            p.c.in[1] = 4;
            p.c.in[2] = 3;
            p.global = true;
            p.legacy = -1;
            for (k = K_MAX; k <= K_AVG_PAD; k++) {
                check_pool(e, &p, (enum kind)k, 33 + (uint64_t)n_sp);
                check_pool_grad(e, &p, (enum kind)k, 44 + (uint64_t)n_sp);
            }
        }
    }
}

/* SqueezeNet's pool10: global AveragePool written with kernel 0, stride
 * 1, pad 0 and legacy_pad 3 (all allowed, all ignored). */
static void test_pool_global_with_squeezenet_arguments(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("AveragePool", "X", "Y");
    const int64_t xd[4] = {1, 3, 13, 13};
    float x[3 * 169];
    const ct_tensor_t *y;
    const float *yv;
    ct_status_t st;
    int i;

    for (i = 0; i < 3 * 169; i++)
        x[i] = (float)(i / 169 + 1);
    tu_arg_i(op, "stride", 1);
    tu_arg_i(op, "pad", 0);
    tu_arg_i(op, "kernel", 0);
    tu_arg_s(op, "order", "NCHW");
    tu_arg_i(op, "legacy_pad", 3);
    tu_arg_i(op, "global_pooling", 1);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_numel(y), 3);
    assert_int_equal(ct_tensor_dims(y)[2], 1);
    assert_int_equal(ct_tensor_dims(y)[3], 1);
    yv = ct_tensor_cdata(y);
    assert_true(fabsf(yv[0] - 1) < 1e-6f && fabsf(yv[1] - 2) < 1e-6f &&
                fabsf(yv[2] - 3) < 1e-6f);
    tu_op_free(op);
}

/* A 3x3 window of ones at a padded corner averages to 1 without
 * count_include_pad and to 4/9 with it. */
static void test_average_pool_count_include_pad_divides_by_kernel(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *a = tu_op("AveragePool", "X", "Y1");
    Caffe2__OperatorDef *b = tu_op("AveragePool", "X", "Y2");
    const int64_t xd[4] = {1, 1, 3, 3};
    const float x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const float *y1, *y2;
    ct_status_t st;

    tu_arg_i(a, "kernel", 3);
    tu_arg_i(a, "pad", 1);
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "pad", 1);
    tu_arg_i(b, "count_include_pad", 1);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    assert_int_equal(tu_run_op(e->ws, a, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, b, &st), CT_OK);
    y1 = ct_tensor_cdata(tu_fetch(e->ws, "Y1"));
    y2 = ct_tensor_cdata(tu_fetch(e->ws, "Y2"));
    assert_true(y1[0] == 1.0f && y1[4] == 1.0f);
    assert_true(fabsf(y2[0] - 4.0f / 9) < 1e-6f);
    assert_true(fabsf(y2[1] - 6.0f / 9) < 1e-6f);
    assert_true(y2[4] == 1.0f);
    tu_op_free(a);
    tu_op_free(b);
}

/* A window entirely past the input (stride > kernel with Caffe's ceil):
 * MaxPool gives -inf, AveragePool 0. */
static void test_pool_empty_window_gives_neg_inf_and_zero(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *a = tu_op("MaxPool", "X", "Y1");
    Caffe2__OperatorDef *b = tu_op("AveragePool", "X", "Y2");
    const int64_t xd[4] = {1, 1, 1, 5}, k[2] = {1, 1}, s[2] = {1, 3};
    const float x[5] = {1, 2, 3, 4, 5};
    const float *y1, *y2;
    ct_status_t st;

    tu_arg_ints(a, "kernels", 2, k);
    tu_arg_ints(a, "strides", 2, s);
    tu_arg_i(a, "legacy_pad", 3);
    tu_arg_ints(b, "kernels", 2, k);
    tu_arg_ints(b, "strides", 2, s);
    tu_arg_i(b, "legacy_pad", 3);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    assert_int_equal(tu_run_op(e->ws, a, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, b, &st), CT_OK);
    y1 = ct_tensor_cdata(tu_fetch(e->ws, "Y1"));
    y2 = ct_tensor_cdata(tu_fetch(e->ws, "Y2"));
    assert_int_equal(ct_tensor_dims(tu_fetch(e->ws, "Y1"))[3], 3);
    assert_true(y1[0] == 1.0f && y1[1] == 4.0f && isinf(y1[2]) && y1[2] < 0);
    assert_true(y2[0] == 1.0f && y2[1] == 4.0f && y2[2] == 0.0f);
    tu_op_free(a);
    tu_op_free(b);
}

/* ---- tests: gradients ---- */

static void test_pool_gradients_match_naive_backward(void **state)
{
    uint64_t rng = 5;
    struct pcase p;
    size_t ci;
    int i, k;

    for (ci = 0; ci < N_CASES; ci++)
        for (k = K_MAX; k <= K_AVG_PAD; k++)
            check_pool_grad(*state, &cases[ci], (enum kind)k, 200 + ci);
    for (i = 0; i < 60; i++) {
        random_pcase(&rng, &p);
        for (k = K_MAX; k <= K_AVG_PAD; k++)
            check_pool_grad(*state, &p, (enum kind)k, 800 + (uint64_t)i);
    }
}

/* L = sum(Y * R) through the forward op; X values distinct by >= 1e-2,
 * so a step of 1e-3 never changes which element is the maximum. */
static void test_pool_gradients_match_finite_differences(void **state)
{
    struct tu_env *e = *state;
    static const size_t pick[] = {1, 2, 5, 8, 11};
    size_t pi;
    int k;

    for (pi = 0; pi < sizeof(pick) / sizeof(pick[0]); pi++) {
        const struct pcase *p = &cases[pick[pi]];
        for (k = K_MAX; k <= K_AVG_PAD; k++) {
            Caffe2__OperatorDef *fdef = pool_def(p, (enum kind)k, false, "Y");
            Caffe2__OperatorDef *gdef = pool_def(p, (enum kind)k, true, "dX");
            const float eps = k == K_MAX ? 1e-3f : 0.05f;
            struct pdata d;
            float *r, *g, *xv;
            ct_op_t *fwd;
            ct_status_t st;
            int64_t i, j;

            pdata_init(&d, p, 3);
            /* A shuffled ramp: distinct values, 1e-2 apart. */
            for (i = 0; i < d.nx; i++)
                d.x[i] = (float)((i * 7919) % d.nx) * 0.01f - 1.0f;
            r = cr_rand_floats(d.ny, 4);
            tu_feed_f32(e->ws, "X", d.nd, d.xd, d.x);
            tu_feed_f32(e->ws, "dY", d.nd, d.yd, r);
            assert_int_equal(ct__op_create(e->ws, fdef, 0, &fwd, &st), CT_OK);
            assert_int_equal(ct__op_run_serial(fwd, &st), CT_OK);
            if (tu_run_op(e->ws, gdef, &st) != CT_OK)
                fail_msg("%s: %s", p->c.what, st.msg);
            g = malloc((size_t)(d.nx > 0 ? d.nx : 1) * sizeof(float));
            assert_non_null(g);
            memcpy(g, ct_tensor_cdata(tu_fetch(e->ws, "dX")),
                   (size_t)d.nx * sizeof(float));
            xv = ct_tensor_data(tu_fetch(e->ws, "X"));
            for (i = 0; i < d.nx; i++) {
                const float keep = xv[i];
                double lp = 0, lm = 0, num;
                const float *y;
                xv[i] = keep + eps;
                assert_int_equal(ct__op_run_serial(fwd, &st), CT_OK);
                y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
                for (j = 0; j < d.ny; j++)
                    lp += (double)y[j] * r[j];
                xv[i] = keep - eps;
                assert_int_equal(ct__op_run_serial(fwd, &st), CT_OK);
                y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
                for (j = 0; j < d.ny; j++)
                    lm += (double)y[j] * r[j];
                xv[i] = keep;
                num = (lp - lm) / (2.0 * eps);
                if (!(fabs(num - g[i]) <= 2e-3 + 1e-2 * fabs(num)))
                    fail_msg("%s %s: dX[%lld]: analytic %.6g, numeric %.6g",
                             type_names[k], p->c.what, (long long)i,
                             (double)g[i], num);
            }
            ct__op_destroy(fwd);
            tu_op_free(fdef);
            tu_op_free(gdef);
            free(d.x);
            free(r);
            free(g);
        }
    }
}

/* Every maximal element of a window receives the gradient, as Caffe2's
 * X == Y mask. */
static void test_max_pool_gradient_ties_all_receive_gradient(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *f = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *g = tu_op("MaxPoolGradient", "X,Y,dY", "dX");
    const int64_t xd[4] = {1, 1, 2, 2}, yd[4] = {1, 1, 1, 1};
    const float x[4] = {3, 1, 3, 2}, dy[1] = {5};
    const float *dx;
    ct_status_t st;

    tu_arg_i(f, "kernel", 2);
    tu_arg_i(g, "kernel", 2);
    tu_feed_f32(e->ws, "X", 4, xd, x);
    tu_feed_f32(e->ws, "dY", 4, yd, dy);
    assert_int_equal(tu_run_op(e->ws, f, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, g, &st), CT_OK);
    dx = ct_tensor_cdata(tu_fetch(e->ws, "dX"));
    assert_true(dx[0] == 5 && dx[1] == 0 && dx[2] == 5 && dx[3] == 0);
    tu_op_free(f);
    tu_op_free(g);
}

/* Every allocation of a pooling run may fail: CT_ENOMEM, no leak. */
static void test_pool_alloc_failures_return_enomem_no_leak(void **state)
{
    static const char *const types[2] = {"MaxPool", "AveragePoolGradient"};
    const int64_t xd[4] = {1, 2, 4, 4}, yd[4] = {1, 2, 2, 2};
    long k, base;
    int t;

    (void)state;
    base = tu_alloc_live();
    for (t = 0; t < 2; t++) {
        bool done = false;
        for (k = 1; !done && k < 1000; k++) {
            struct tu_env e;
            Caffe2__OperatorDef *op =
                tu_op(types[t], t == 0 ? "X" : "X,Y,dY", "Z");
            ct_status_t st;
            int rc;

            tu_arg_i(op, "kernel", 2);
            tu_arg_i(op, "stride", 2);
            tu_env_init(&e);
            tu_feed(e.ws, "X", CT_DTYPE_F32, 4, xd, NULL);
            tu_feed(e.ws, "Y", CT_DTYPE_F32, 4, yd, NULL);
            tu_feed(e.ws, "dY", CT_DTYPE_F32, 4, yd, NULL);
            tu_fail_alloc_after(k);
            rc = tu_run_op(e.ws, op, &st);
            tu_fail_alloc_off();
            if (rc == CT_OK)
                done = true;
            else
                tu_assert_status(&st, rc, CT_ENOMEM, NULL);
            tu_op_free(op);
            tu_env_destroy(&e);
            assert_int_equal(tu_alloc_live(), base);
        }
        assert_true(done);
    }
}

/* ---- tests: errors ---- */

static void expect_create_error(struct tu_env *e, Caffe2__OperatorDef *def,
                                int code, const char *needle)
{
    const int64_t xd[4] = {1, 2, 6, 6};
    ct_status_t st;
    ct_op_t *op = NULL;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(e->ws, "Y", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 4, xd, NULL);
    ct_status_clear(&st);
    tu_assert_status(&st, ct__op_create(e->ws, def, 0, &op, &st), code, needle);
    assert_null(op);
    tu_op_free(def);
}

static void test_pool_argument_errors_return_earg(void **state)
{
    const int64_t p[4] = {0, 3, 0, 0}, d[2] = {1, 2};
    Caffe2__OperatorDef *a = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *b = tu_op("AveragePool", "X", "Y");
    Caffe2__OperatorDef *c = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *f = tu_op("AveragePoolGradient", "X,Y,dY", "dX");
    Caffe2__OperatorDef *g = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *h = tu_op("AveragePool", "X", "Y");
    Caffe2__OperatorDef *i = tu_op("MaxPoolGradient", "X,Y,dY", "dX");

    tu_arg_i(a, "kernel", 3);
    tu_arg_ints(a, "pads", 4, p);
    expect_create_error(*state, a, CT_EARG,
                        "pads[1] = 3 must be smaller than the kernel (3)");
    tu_arg_i(b, "kernel", 3);
    tu_arg_ints(b, "dilations", 2, d);
    expect_create_error(*state, b, CT_EARG,
                        "dilations[1] = 2: pooling does not support "
                        "dilation");
    tu_arg_i(c, "global_pooling", 1);
    tu_arg_i(c, "stride", 2);
    expect_create_error(*state, c, CT_EARG,
                        "global_pooling is set, so stride = 2 is not allowed "
                        "(pads must be 0, strides and dilations 1)");
    tu_arg_i(f, "global_pooling", 1);
    tu_arg_i(f, "pad", 1);
    expect_create_error(*state, f, CT_EARG,
                        "global_pooling is set, so pad = 1 is not allowed");
    expect_create_error(*state, g, CT_EARG, "kernel not given");
    tu_arg_i(h, "kernel", 2);
    tu_arg_f(h, "count_include_pad", 1.0f);
    expect_create_error(*state, h, CT_EARG,
                        "Argument count_include_pad does not have the right "
                        "field: expected i, has f");
    tu_arg_i(i, "kernel", 2);
    tu_arg_i(i, "pad_t", 2);
    tu_arg_i(i, "pad_l", 0);
    tu_arg_i(i, "pad_b", 0);
    tu_arg_i(i, "pad_r", 0);
    expect_create_error(*state, i, CT_EARG,
                        "pad_t = 2 must be smaller than the kernel (2)");
}

static void test_pool_shape_and_dtype_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *gl = tu_op("AveragePool", "X", "Y");
    const int64_t x3[3] = {1, 2, 6}, xs[4] = {1, 2, 2, 6};
    const int64_t x0[4] = {1, 2, 0, 6}, x2[2] = {1, 2};
    ct_status_t st;

    tu_arg_i(op, "kernel", 3);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 3, x3, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "X [1, 2, 6] is 3-d, but the kernel has 2 spatial dims "
                     "(want 4-d)");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, xs, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "spatial dim 0: input extent 2 with pads 0 + 0 is "
                     "smaller than the kernel extent 3");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x0, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "X [1, 2, 0, 6]: channels and spatial extents must be "
                     "> 0");
    tu_feed(e->ws, "X", CT_DTYPE_I32, 4, xs, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype INT32 for X (FLOAT only)");
    tu_arg_i(gl, "global_pooling", 1);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, x2, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, gl, &st), CT_ESHAPE,
                     "X [1, 2]: global pooling needs 1 to 3 spatial dims "
                     "(3-d to 5-d input)");
    tu_op_free(op);
    tu_op_free(gl);
}

static void test_pool_gradient_shape_errors_return_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *m = tu_op("MaxPoolGradient", "X,Y,dY", "dX");
    Caffe2__OperatorDef *a = tu_op("AveragePoolGradient", "X,Y,dY", "dX");
    const int64_t xd[4] = {1, 2, 6, 6}, yd[4] = {1, 2, 3, 3};
    const int64_t bad[4] = {1, 2, 3, 2};
    ct_status_t st;

    tu_arg_i(m, "kernel", 2);
    tu_arg_i(m, "stride", 2);
    tu_arg_i(a, "kernel", 2);
    tu_arg_i(a, "stride", 2);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, xd, NULL);
    tu_feed(e->ws, "Y", CT_DTYPE_F32, 4, yd, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 4, bad, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, m, &st), CT_ESHAPE,
                     "dY [1, 2, 3, 2] must be [1, 2, 3, 3]");
    tu_assert_status(&st, tu_run_op(e->ws, a, &st), CT_ESHAPE,
                     "dY [1, 2, 3, 2] must be [1, 2, 3, 3]");
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 4, yd, NULL);
    tu_feed(e->ws, "Y", CT_DTYPE_F32, 4, bad, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, m, &st), CT_ESHAPE,
                     "Y [1, 2, 3, 2] must be [1, 2, 3, 3]");
    /* AveragePoolGradient never reads Y (Caffe2 neither). */
    assert_int_equal(tu_run_op(e->ws, a, &st), CT_OK);
    tu_feed(e->ws, "Y", CT_DTYPE_F32, 4, yd, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F64, 4, yd, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, m, &st), CT_ETYPE,
                     "X is FLOAT but Y is FLOAT and dY is DOUBLE; all must "
                     "be FLOAT");
    tu_op_free(m);
    tu_op_free(a);
}

/* ---- tests: shape inference and cost ---- */

static ct_shape_t shape(int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = CT_DTYPE_F32;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

static ct_op_t *create(struct tu_env *e, Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;
    size_t i;

    for (i = 0; i < def->n_input; i++)
        tu_feed(e->ws, def->input[i], CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create %s: %s", def->type, st.msg);
    return op;
}

static void test_pool_infer_gives_shapes_and_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *fdef = tu_op("MaxPool", "X", "Y");
    Caffe2__OperatorDef *gdef = tu_op("MaxPoolGradient", "X,Y,dY", "dX");
    const int64_t x[4] = {2, 112, 112, 64}, y[4] = {2, 56, 56, 64};
    const int64_t bad[4] = {2, 56, 57, 64};
    ct_shape_t in[3], out[1];
    ct_status_t st;
    ct_op_t *f, *g;

    /* ResNet-50's pool1, NHWC: 3x3 stride 2 pad 1, 112 -> 56. */
    tu_arg_i(fdef, "kernel", 3);
    tu_arg_i(fdef, "stride", 2);
    tu_arg_i(fdef, "pad", 1);
    tu_arg_s(fdef, "order", "NHWC");
    tu_arg_i(gdef, "kernel", 3);
    tu_arg_i(gdef, "stride", 2);
    tu_arg_i(gdef, "pad", 1);
    tu_arg_s(gdef, "order", "NHWC");
    f = create(e, fdef);
    g = create(e, gdef);
    in[0] = shape(4, x);
    out[0] = shape(-1, NULL);
    assert_int_equal(f->schema->infer_cb(f, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 4);
    assert_memory_equal(out[0].dims, y, sizeof(y));
    assert_true(f->schema->cost_cb(f, in) == 2.0 * 64 * 56 * 56 * 9);
    in[1] = shape(4, y);
    in[2] = shape(4, y);
    out[0] = shape(-1, NULL);
    assert_int_equal(g->schema->infer_cb(g, in, out, &st), CT_OK);
    assert_memory_equal(out[0].dims, x, sizeof(x));
    assert_true(g->schema->cost_cb(g, in) == 2.0 * 64 * 56 * 56 * 9);
    in[2] = shape(4, bad);
    ct_status_clear(&st);
    tu_assert_status(&st, g->schema->infer_cb(g, in, out, &st), CT_ESHAPE,
                     "dY [2, 56, 57, 64] must be [2, 56, 56, 64]");
    in[0] = shape(-1, NULL);
    out[0] = shape(-1, NULL);
    assert_int_equal(f->schema->infer_cb(f, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, -1);
    assert_true(f->schema->cost_cb(f, in) == 0.0);
    ct__op_destroy(f);
    ct__op_destroy(g);
    tu_op_free(fdef);
    tu_op_free(gdef);
}

/* ---- the real SqueezeNet: shapes through the net ---- */

#define MAX_BLOBS 256

struct blob_shape {
    const char *name;
    ct_shape_t s;
};

static ct_shape_t *find_shape(struct blob_shape *b, int n, const char *name)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(b[i].name, name) == 0)
            return &b[i].s;
    return NULL;
}

static void test_pool_squeezenet_shapes_follow_caffe_ceil(void **state)
{
    struct tu_env *e = *state;
    char init_path[512], pred_path[512];
    ct_netdef_t *init = NULL, *pred = NULL;
    struct blob_shape *b = calloc(MAX_BLOBS, sizeof(*b));
    const int64_t data[4] = {1, 3, 227, 227};
    int nb = 0, n_pools = 0;
    ct_status_t st;
    size_t i, j;

    assert_non_null(b);
    if (!tu_have_data()) {
        free(b);
        skip();
        return;
    }
    snprintf(init_path, sizeof(init_path), "%s",
             tu_data_path("caffe2/squeezenet_trafficlight_miyuan2018/"
                          "init_net.pb"));
    snprintf(pred_path, sizeof(pred_path), "%s",
             tu_data_path("caffe2/squeezenet_trafficlight_miyuan2018/"
                          "predict_net.pb"));
    if (ct_netdef_read_file(init_path, &init, &st) != CT_OK ||
        ct_netdef_read_file(pred_path, &pred, &st) != CT_OK)
        fail_msg("reading SqueezeNet: %s", st.msg);
    /* Parameter shapes from the init net's fill ops. */
    for (i = 0; i < init->n_op; i++) {
        const Caffe2__OperatorDef *op = init->op[i];
        for (j = 0; j < op->n_arg; j++) {
            const Caffe2__Argument *a = op->arg[j];
            if (strcmp(a->name, "shape") != 0)
                continue;
            assert_true(nb < MAX_BLOBS);
            b[nb].name = op->output[0];
            b[nb].s = shape((int)a->n_ints, a->ints);
            nb++;
        }
    }
    /* The init net fills a placeholder "data" of shape [1]; the net is
     * fed [1, 3, 227, 227]. */
    {
        ct_shape_t *ds = find_shape(b, nb, "data");
        if (ds == NULL) {
            b[nb].name = "data";
            ds = &b[nb++].s;
        }
        *ds = shape(4, data);
    }
    for (i = 0; i < pred->n_op; i++) {
        Caffe2__OperatorDef *def = pred->op[i];
        ct_shape_t in[4], out[1], *s;
        ct_op_t *op;

        for (j = 0; j < def->n_input && j < 4; j++) {
            s = find_shape(b, nb, def->input[j]);
            if (s == NULL)
                fail_msg("op %zu (%s): no shape for %s", i, def->type,
                         def->input[j]);
            in[j] = *s;
        }
        out[0] = shape(-1, NULL);
        if (strcmp(def->type, "Concat") == 0) {
            out[0] = in[0];
            for (j = 1; j < def->n_input; j++)
                out[0].dims[1] += in[j].dims[1];
        } else if (strcmp(def->type, "Conv") == 0 ||
                   strstr(def->type, "Pool") != NULL) {
            op = create(e, def);
            if (op->schema->infer_cb(op, in, out, &st) != CT_OK)
                fail_msg("op %zu (%s): %s", i, def->type, st.msg);
            ct__op_destroy(op);
        } else {
            out[0] = in[0]; /* Relu, Dropout, Softmax keep the shape */
        }
        if (strcmp(def->type, "MaxPool") == 0) {
            /* 111 -> 55, 55 -> 27, 27 -> 13: (n - 3) / 2 + 1 is even
             * here, so floor and ceil agree; the ceil rule is pinned by
             * test_pool_legacy_caffe_output_sizes. */
            static const int64_t want[3] = {55, 27, 13};
            assert_true(n_pools < 3);
            assert_int_equal(out[0].dims[2], want[n_pools]);
            assert_int_equal(out[0].dims[3], want[n_pools]);
            n_pools++;
        }
        if (strcmp(def->type, "AveragePool") == 0) {
            assert_int_equal(out[0].dims[2], 1);
            assert_int_equal(out[0].dims[3], 1);
        }
        s = find_shape(b, nb, def->output[0]);
        if (s == NULL) {
            assert_true(nb < MAX_BLOBS);
            b[nb].name = def->output[0];
            s = &b[nb++].s;
        }
        *s = out[0];
    }
    assert_int_equal(n_pools, 3);
    {
        /* The fine-tuned classifier: 3 classes, pooled to 1x1. */
        const int64_t want[4] = {1, 3, 1, 1};
        const ct_shape_t *p10 = find_shape(b, nb, "pool10");
        assert_non_null(p10);
        assert_int_equal(p10->ndim, 4);
        assert_memory_equal(p10->dims, want, sizeof(want));
    }
    ct_netdef_free(init);
    ct_netdef_free(pred);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_pool_case_table_matches_reference),
        T(test_max_pool_separable_path_matches_reference),
        T(test_pool_random_cases_match_reference),
        T(test_pool_legacy_caffe_output_sizes),
        T(test_pool_global_pooling_reduces_whole_input),
        T(test_pool_global_with_squeezenet_arguments),
        T(test_average_pool_count_include_pad_divides_by_kernel),
        T(test_pool_empty_window_gives_neg_inf_and_zero),
        T(test_pool_gradients_match_naive_backward),
        T(test_pool_gradients_match_finite_differences),
        T(test_max_pool_gradient_ties_all_receive_gradient),
        T(test_pool_alloc_failures_return_enomem_no_leak),
        T(test_pool_argument_errors_return_earg),
        T(test_pool_shape_and_dtype_errors),
        T(test_pool_gradient_shape_errors_return_eshape),
        T(test_pool_infer_gives_shapes_and_cost),
        T(test_pool_squeezenet_shapes_follow_caffe_ceil),
#undef T
    };
    return cmocka_run_group_tests_name("ops.pooling", tests, NULL, NULL);
}
