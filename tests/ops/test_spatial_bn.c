/* Tests for ops/spatial_bn.c: SpatialBN inference and training against a
 * naive double-precision reference over one case table (NCHW and NHWC,
 * 2-d to 5-d), the running-stat update, uninitialised running stats,
 * num_batches > 1, in-place use, SpatialBNGradient against the analytic
 * reference and against finite differences of the forward op, shape
 * inference and cost, and every error path with its message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/gradient.h"
#include "cortado/net.h"
#include "cortado/proto.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

/* ---- the case table ---- */

struct bn_case {
    const char *what;
    int nd;
    int64_t d[5];
    bool nhwc;
};

static const struct bn_case cases[] = {
    {"NCHW 4-d", 4, {2, 3, 4, 5}, false},
    {"NHWC 4-d", 4, {2, 4, 5, 3}, true},
    {"NCHW 3-d", 3, {3, 4, 7}, false},
    {"NHWC 3-d", 3, {3, 7, 4}, true},
    {"2-d", 2, {6, 5}, false},
    {"NCHW 5-d", 5, {2, 2, 3, 2, 2}, false},
    {"NHWC 5-d", 5, {2, 3, 2, 2, 2}, true},
    {"single channel", 4, {4, 1, 3, 3}, false},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* The [N, C, HxW] view of a case. */
struct view {
    int64_t n, c, hxw;
};

static struct view view_of(const struct bn_case *c)
{
    struct view v = {c->d[0], c->nhwc ? c->d[c->nd - 1] : c->d[1], 1};
    int i;

    for (i = c->nhwc ? 1 : 2; i < (c->nhwc ? c->nd - 1 : c->nd); i++)
        v.hxw *= c->d[i];
    return v;
}

static int64_t at(const struct view *v, bool nhwc, int64_t i, int64_t c,
                  int64_t j)
{
    return nhwc ? (i * v->hxw + j) * v->c + c : (i * v->c + c) * v->hxw + j;
}

/* ---- references (double) ---- */

static void ref_moments(const struct view *v, bool nhwc, const float *x,
                        double *mu, double *var)
{
    const double m = (double)(v->n * v->hxw);
    int64_t i, c, j;

    for (c = 0; c < v->c; c++) {
        double s = 0, q = 0;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++)
                s += x[at(v, nhwc, i, c, j)];
        mu[c] = s / m;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++) {
                const double d = x[at(v, nhwc, i, c, j)] - mu[c];
                q += d * d;
            }
        var[c] = q / m;
    }
}

static void ref_forward(const struct view *v, bool nhwc, const float *x,
                        const float *scale, const float *bias, const double *mu,
                        const double *var, double eps, float *y)
{
    int64_t i, c, j;

    for (i = 0; i < v->n; i++)
        for (c = 0; c < v->c; c++)
            for (j = 0; j < v->hxw; j++) {
                const int64_t k = at(v, nhwc, i, c, j);
                y[k] = (float)(scale[c] * (x[k] - mu[c]) / sqrt(var[c] + eps) +
                               bias[c]);
            }
}

/* Batch-statistics gradient. */
static void ref_backward(const struct view *v, bool nhwc, const float *x,
                         const float *dy, const float *scale, float *dx,
                         float *dscale, float *dbias)
{
    double mu[16], var[16];
    const double m = (double)(v->n * v->hxw);
    int64_t i, c, j;

    ref_moments(v, nhwc, x, mu, var);
    for (c = 0; c < v->c; c++) {
        const double r = 1 / sqrt(var[c] + 1e-5);
        double sdy = 0, sdyxh = 0;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++) {
                const int64_t k = at(v, nhwc, i, c, j);
                sdy += dy[k];
                sdyxh += dy[k] * (x[k] - mu[c]) * r;
            }
        dscale[c] = (float)sdyxh;
        dbias[c] = (float)sdy;
        for (i = 0; i < v->n; i++)
            for (j = 0; j < v->hxw; j++) {
                const int64_t k = at(v, nhwc, i, c, j);
                const double xh = (x[k] - mu[c]) * r;
                dx[k] =
                    (float)(scale[c] * r / m * (m * dy[k] - sdy - xh * sdyxh));
            }
    }
}

/* ---- helpers ---- */

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;

    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static Caffe2__OperatorDef *bn_op(bool is_test, bool nhwc)
{
    Caffe2__OperatorDef *op =
        is_test ? tu_op("SpatialBN", "X,scale,bias,mean,var", "Y")
                : tu_op("SpatialBN", "X,scale,bias,mean,var",
                        "Y,mean,var,saved_mean,saved_rstd");

    tu_arg_i(op, "is_test", is_test ? 1 : 0);
    if (nhwc)
        tu_arg_s(op, "order", "NHWC");
    return op;
}

static void feed_vec(struct tu_env *e, const char *name, int64_t c, float lo,
                     float hi, uint64_t seed, float *out)
{
    tu_fill_uniform(out, (size_t)c, lo, hi, seed);
    tu_feed_f32(e->ws, name, 1, &c, out);
}

static ct_shape_t shape(ct_dtype_t dt, int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

/* ---- forward ---- */

static void test_spatial_bn_inference_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct bn_case *c = &cases[ci];
        const struct view v = view_of(c);
        const int64_t n = numel(c->nd, c->d);
        float *x = malloc((size_t)n * sizeof(float));
        float *want = malloc((size_t)n * sizeof(float));
        float scale[16], bias[16], mean[16], var[16];
        double mu[16], vr[16];
        Caffe2__OperatorDef *op = bn_op(true, c->nhwc);
        ct_status_t st;
        int64_t k;

        tu_fill_uniform(x, (size_t)n, -3, 3, 100 + ci);
        tu_feed_f32(e->ws, "X", c->nd, c->d, x);
        feed_vec(e, "scale", v.c, 0.5f, 2, 1, scale);
        feed_vec(e, "bias", v.c, -1, 1, 2, bias);
        feed_vec(e, "mean", v.c, -1, 1, 3, mean);
        feed_vec(e, "var", v.c, 0.1f, 3, 4, var);
        for (k = 0; k < v.c; k++) {
            mu[k] = mean[k];
            vr[k] = var[k];
        }
        ref_forward(&v, c->nhwc, x, scale, bias, mu, vr, 1e-5, want);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        assert_int_equal(ct_tensor_ndim(tu_fetch(e->ws, "Y")), c->nd);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "Y")), want,
                            (size_t)n, 1e-5f, 1e-5f);
        tu_op_free(op);
        free(x);
        free(want);
    }
}

/* The affine pass splits over the engine's threads (planes in NCHW,
 * pixels in NHWC, several per chunk): shapes big enough for many chunks,
 * on 1- and 3-thread engines, in place and not, match the reference in
 * inference and training. */
static void test_spatial_bn_parallel_affine_matches_reference(void **state)
{
    static const struct bn_case big[] = {
        {"NCHW many planes", 4, {3, 7, 37, 41}, false},
        {"NCHW planes over grain", 4, {2, 3, 130, 131}, false},
        {"NHWC many pixels", 4, {2, 61, 67, 5}, true},
    };
    const int threads[2] = {1, 3};
    size_t ci, ti, ip, tr;

    (void)state;
    for (ti = 0; ti < 2; ti++) {
        struct ct_engine_config cfg;
        struct tu_env env;
        ct_status_t st;

        ct_engine_config_init(&cfg);
        cfg.n_threads = threads[ti];
        assert_int_equal(ct_engine_new(&cfg, &env.eng, &st), CT_OK);
        assert_int_equal(ct_workspace_new(env.eng, NULL, &env.ws, &st), CT_OK);
        for (ci = 0; ci < sizeof(big) / sizeof(big[0]); ci++)
            for (ip = 0; ip < 2; ip++)
                for (tr = 0; tr < 2; tr++) {
                    const struct bn_case *c = &big[ci];
                    const struct view v = view_of(c);
                    const int64_t n = numel(c->nd, c->d);
                    float *x, *want;
                    float scale[8], bias[8], mean[8], var[8];
                    double mu[8], vr[8];
                    Caffe2__OperatorDef *op;
                    const char *yname = ip ? "X" : "Y";
                    int64_t k;

                    if (ip && tr) /* in place: inference only */
                        continue;
                    x = malloc((size_t)n * sizeof(float));
                    want = malloc((size_t)n * sizeof(float));
                    assert_non_null(x);
                    assert_non_null(want);
                    if (ip) {
                        op = tu_op("SpatialBN", "X,scale,bias,mean,var", "X");
                        tu_arg_i(op, "is_test", 1);
                        if (c->nhwc)
                            tu_arg_s(op, "order", "NHWC");
                    } else {
                        op = bn_op(tr == 0, c->nhwc);
                    }
                    tu_fill_uniform(x, (size_t)n, -3, 3, 300 + ci);
                    tu_feed_f32(env.ws, "X", c->nd, c->d, x);
                    feed_vec(&env, "scale", v.c, 0.5f, 2, 1, scale);
                    feed_vec(&env, "bias", v.c, -1, 1, 2, bias);
                    feed_vec(&env, "mean", v.c, -1, 1, 3, mean);
                    feed_vec(&env, "var", v.c, 0.1f, 3, 4, var);
                    if (tr == 0) {
                        for (k = 0; k < v.c; k++) {
                            mu[k] = mean[k];
                            vr[k] = var[k];
                        }
                    } else {
                        ref_moments(&v, c->nhwc, x, mu, vr);
                    }
                    ref_forward(&v, c->nhwc, x, scale, bias, mu, vr, 1e-5,
                                want);
                    if (tu_run_op(env.ws, op, &st) != CT_OK)
                        fail_msg("%s: %s", c->what, st.msg);
                    tu_assert_close_f32(
                        ct_tensor_cdata(tu_fetch(env.ws, yname)), want,
                        (size_t)n, 1e-4f, 1e-4f);
                    tu_op_free(op);
                    free(x);
                    free(want);
                }
        ct_workspace_free(env.ws);
        ct_engine_free(env.eng);
    }
}

static void test_spatial_bn_epsilon_is_used(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = bn_op(true, false);
    const int64_t d[2] = {1, 1}, one = 1;
    const float x = 2, s = 1, b = 0, m = 0, var = 0;
    ct_status_t st;

    tu_arg_f(op, "epsilon", 0.25f);
    tu_feed_f32(e->ws, "X", 2, d, &x);
    tu_feed_f32(e->ws, "scale", 1, &one, &s);
    tu_feed_f32(e->ws, "bias", 1, &one, &b);
    tu_feed_f32(e->ws, "mean", 1, &one, &m);
    tu_feed_f32(e->ws, "var", 1, &one, &var);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    /* 2 / sqrt(0 + 0.25) = 4 */
    assert_true(fabsf(*(const float *)ct_tensor_cdata(tu_fetch(e->ws, "Y")) -
                      4) < 1e-6f);
    tu_op_free(op);
}

static void test_spatial_bn_training_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct bn_case *c = &cases[ci];
        const struct view v = view_of(c);
        const int64_t n = numel(c->nd, c->d);
        const double m = (double)(v.n * v.hxw), mom = 0.75;
        float *x = malloc((size_t)n * sizeof(float));
        float *want = malloc((size_t)n * sizeof(float));
        float scale[16], bias[16], rm[16], rv[16];
        float wrm[16], wrv[16], wmu[16], wrs[16];
        double mu[16], var[16];
        Caffe2__OperatorDef *op = bn_op(false, c->nhwc);
        ct_status_t st;
        int64_t k;

        tu_arg_f(op, "momentum", (float)mom);
        tu_fill_uniform(x, (size_t)n, -3, 5, 200 + ci);
        tu_feed_f32(e->ws, "X", c->nd, c->d, x);
        feed_vec(e, "scale", v.c, 0.5f, 2, 11, scale);
        feed_vec(e, "bias", v.c, -1, 1, 12, bias);
        feed_vec(e, "mean", v.c, -1, 1, 13, rm);
        feed_vec(e, "var", v.c, 0.1f, 3, 14, rv);
        ref_moments(&v, c->nhwc, x, mu, var);
        ref_forward(&v, c->nhwc, x, scale, bias, mu, var, 1e-5, want);
        for (k = 0; k < v.c; k++) {
            wrm[k] = (float)((1 - mom) * mu[k] + mom * rm[k]);
            wrv[k] = (float)((1 - mom) * var[k] * m / (m - 1) + mom * rv[k]);
            wmu[k] = (float)mu[k];
            wrs[k] = (float)(1 / sqrt(var[k] + 1e-5));
        }
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "Y")), want,
                            (size_t)n, 1e-4f, 1e-4f);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "mean")), wrm,
                            (size_t)v.c, 1e-5f, 1e-6f);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "var")), wrv,
                            (size_t)v.c, 1e-5f, 1e-6f);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "saved_mean")), wmu,
                            (size_t)v.c, 1e-5f, 1e-6f);
        tu_assert_close_f32(ct_tensor_cdata(tu_fetch(e->ws, "saved_rstd")), wrs,
                            (size_t)v.c, 1e-5f, 1e-6f);
        tu_op_free(op);
        free(x);
        free(want);
    }
}

static void test_spatial_bn_training_resets_uninitialised_stats(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = bn_op(false, false);
    const int64_t d[4] = {2, 2, 1, 2}, two = 2, one = 1;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, s[2] = {1, 1}, b[2] = {0, 0};
    const float stale = 7;
    const float *rm, *rv;
    ct_status_t st;

    tu_arg_f(op, "momentum", 0.5f);
    tu_feed_f32(e->ws, "X", 4, d, x);
    tu_feed_f32(e->ws, "scale", 1, &two, s);
    tu_feed_f32(e->ws, "bias", 1, &two, b);
    tu_feed_f32(e->ws, "mean", 1, &one, &stale); /* 1 element, C = 2 */
    tu_feed_f32(e->ws, "var", 1, &one, &stale);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    rm = ct_tensor_cdata(tu_fetch(e->ws, "mean"));
    rv = ct_tensor_cdata(tu_fetch(e->ws, "var"));
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "mean")), 2);
    /* channel 0: 1, 2, 5, 6 -> mean 3.5, var 4.25, unbiased 17/3 */
    assert_true(fabsf(rm[0] - 0.5f * 3.5f) < 1e-6f);
    assert_true(fabsf(rv[0] - 0.5f * 17.0f / 3) < 1e-5f);
    assert_true(fabsf(rm[1] - 0.5f * 5.5f) < 1e-6f);
    tu_op_free(op);
}

static void test_spatial_bn_num_batches_uses_given_sums(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op =
        tu_op("SpatialBN", "X,scale,bias,mean,var,msum,vsum",
              "Y,mean,var,saved_mean,saved_rstd");
    const int64_t d[2] = {2, 1}, one = 1;
    /* Over 2 batches of 2 values: sum 10, sum of squares 30 -> mean 2.5,
     * var 30 / 4 - 6.25 = 1.25. */
    const float x[2] = {1, 2}, s = 2, b = 1, m = 0, v = 1, msum = 10, vsum = 30;
    const float *y, *sm, *sr, *rv;
    ct_status_t st;

    tu_arg_i(op, "is_test", 0);
    tu_arg_i(op, "num_batches", 2);
    tu_arg_f(op, "momentum", 0);
    tu_feed_f32(e->ws, "X", 2, d, x);
    tu_feed_f32(e->ws, "scale", 1, &one, &s);
    tu_feed_f32(e->ws, "bias", 1, &one, &b);
    tu_feed_f32(e->ws, "mean", 1, &one, &m);
    tu_feed_f32(e->ws, "var", 1, &one, &v);
    tu_feed_f32(e->ws, "msum", 1, &one, &msum);
    tu_feed_f32(e->ws, "vsum", 1, &one, &vsum);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    sm = ct_tensor_cdata(tu_fetch(e->ws, "saved_mean"));
    sr = ct_tensor_cdata(tu_fetch(e->ws, "saved_rstd"));
    rv = ct_tensor_cdata(tu_fetch(e->ws, "var"));
    assert_true(fabsf(sm[0] - 2.5f) < 1e-6f);
    assert_true(fabsf(sr[0] - (float)(1 / sqrt(1.25 + 1e-5))) < 1e-6f);
    /* momentum 0: running var = unbiased var over n = 4: 1.25 * 4 / 3 */
    assert_true(fabsf(rv[0] - 1.25f * 4 / 3) < 1e-5f);
    assert_true(fabsf(y[0] - (float)(2 * (1 - 2.5) / sqrt(1.25 + 1e-5) + 1)) <
                1e-5f);
    tu_op_free(op);
}

static void test_spatial_bn_inplace_x_to_y(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("SpatialBN", "X,scale,bias,mean,var", "X");
    const int64_t d[2] = {2, 2}, two = 2;
    const float x[4] = {1, 2, 3, 4}, s[2] = {2, 3}, b[2] = {1, 0},
                m[2] = {1, 1}, v[2] = {1, 4};
    const float *y;
    ct_status_t st;

    tu_arg_i(op, "is_test", 1);
    tu_arg_f(op, "epsilon", 1e-30f);
    tu_feed_f32(e->ws, "X", 2, d, x);
    tu_feed_f32(e->ws, "scale", 1, &two, s);
    tu_feed_f32(e->ws, "bias", 1, &two, b);
    tu_feed_f32(e->ws, "mean", 1, &two, m);
    tu_feed_f32(e->ws, "var", 1, &two, v);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "X"));
    assert_true(fabsf(y[0] - 1) < 1e-6f && fabsf(y[1] - 1.5f) < 1e-6f);
    assert_true(fabsf(y[2] - 5) < 1e-6f && fabsf(y[3] - 4.5f) < 1e-6f);
    tu_op_free(op);
}

static void test_spatial_bn_empty_batch_gives_zero_saved_stats(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = bn_op(false, false);
    const int64_t d[4] = {0, 2, 3, 3}, two = 2;
    const float s[2] = {1, 1}, b[2] = {0, 0}, m[2] = {4, 5}, v[2] = {6, 7};
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 4, d, NULL);
    tu_feed_f32(e->ws, "scale", 1, &two, s);
    tu_feed_f32(e->ws, "bias", 1, &two, b);
    tu_feed_f32(e->ws, "mean", 1, &two, m);
    tu_feed_f32(e->ws, "var", 1, &two, v);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "Y")), 0);
    assert_true(((const float *)ct_tensor_cdata(
                    tu_fetch(e->ws, "saved_mean")))[1] == 0);
    /* Running stats are left as they were. */
    assert_true(((const float *)ct_tensor_cdata(tu_fetch(e->ws, "mean")))[1] ==
                5);
    tu_op_free(op);
}

/* ---- gradient ---- */

/* Runs SpatialBNGradient for the training forward of case c; dX, dscale
 * and dbias into the given arrays. */
static void run_grad(struct tu_env *e, const struct bn_case *c, const float *x,
                     const float *dy, const float *scale, float *dx,
                     float *dscale, float *dbias)
{
    const struct view v = view_of(c);
    const int64_t n = numel(c->nd, c->d);
    Caffe2__OperatorDef *fwd = bn_op(false, c->nhwc);
    Caffe2__OperatorDef *bwd =
        tu_op("SpatialBNGradient", "X,scale,dY,saved_mean,saved_rstd",
              "dX,dscale,dbias");
    float bias[16], rm[16], rv[16];
    ct_status_t st;

    if (c->nhwc)
        tu_arg_s(bwd, "order", "NHWC");
    tu_feed_f32(e->ws, "X", c->nd, c->d, x);
    tu_feed_f32(e->ws, "scale", 1, &v.c, scale);
    feed_vec(e, "bias", v.c, -1, 1, 22, bias);
    feed_vec(e, "mean", v.c, -1, 1, 23, rm);
    feed_vec(e, "var", v.c, 0.5f, 1, 24, rv);
    tu_feed_f32(e->ws, "dY", c->nd, c->d, dy);
    if (tu_run_op(e->ws, fwd, &st) != CT_OK ||
        tu_run_op(e->ws, bwd, &st) != CT_OK)
        fail_msg("%s: %s", c->what, st.msg);
    memcpy(dx, ct_tensor_cdata(tu_fetch(e->ws, "dX")),
           (size_t)n * sizeof(float));
    memcpy(dscale, ct_tensor_cdata(tu_fetch(e->ws, "dscale")),
           (size_t)v.c * sizeof(float));
    memcpy(dbias, ct_tensor_cdata(tu_fetch(e->ws, "dbias")),
           (size_t)v.c * sizeof(float));
    tu_op_free(fwd);
    tu_op_free(bwd);
}

static void test_spatial_bn_gradient_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct bn_case *c = &cases[ci];
        const struct view v = view_of(c);
        const int64_t n = numel(c->nd, c->d);
        float *x = malloc((size_t)n * sizeof(float));
        float *dy = malloc((size_t)n * sizeof(float));
        float *dx = malloc((size_t)n * sizeof(float));
        float *wdx = malloc((size_t)n * sizeof(float));
        float scale[16], ds[16], db[16], wds[16], wdb[16];

        tu_fill_uniform(x, (size_t)n, -2, 3, 300 + ci);
        tu_fill_uniform(dy, (size_t)n, -1, 1, 400 + ci);
        tu_fill_uniform(scale, (size_t)v.c, 0.5f, 2, 31);
        run_grad(e, c, x, dy, scale, dx, ds, db);
        ref_backward(&v, c->nhwc, x, dy, scale, wdx, wds, wdb);
        tu_assert_close_f32(dx, wdx, (size_t)n, 1e-3f, 1e-4f);
        tu_assert_close_f32(ds, wds, (size_t)v.c, 1e-4f, 1e-4f);
        tu_assert_close_f32(db, wdb, (size_t)v.c, 1e-5f, 1e-5f);
        free(x);
        free(dy);
        free(dx);
        free(wdx);
    }
}

/* L = sum(w * Y) of the training forward, in double from the op's Y. */
static double loss_of(struct tu_env *e, const struct bn_case *c, const float *x,
                      const float *scale, const float *bias, const float *w)
{
    const struct view v = view_of(c);
    const int64_t n = numel(c->nd, c->d);
    Caffe2__OperatorDef *op = bn_op(false, c->nhwc);
    const float *y;
    float rm[16], rv[16];
    double l = 0;
    ct_status_t st;
    int64_t k;

    tu_feed_f32(e->ws, "X", c->nd, c->d, x);
    tu_feed_f32(e->ws, "scale", 1, &v.c, scale);
    tu_feed_f32(e->ws, "bias", 1, &v.c, bias);
    feed_vec(e, "mean", v.c, -1, 1, 23, rm);
    feed_vec(e, "var", v.c, 0.5f, 1, 24, rv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    for (k = 0; k < n; k++)
        l += (double)w[k] * y[k];
    tu_op_free(op);
    return l;
}

static void test_spatial_bn_gradient_matches_finite_differences(void **state)
{
    struct tu_env *e = *state;
    const float h = 1e-2f;
    size_t ci;

    for (ci = 0; ci < 2; ci++) { /* one NCHW and one NHWC case */
        const struct bn_case *c = &cases[ci];
        const struct view v = view_of(c);
        const int64_t n = numel(c->nd, c->d);
        float *x = malloc((size_t)n * sizeof(float));
        float *w = malloc((size_t)n * sizeof(float));
        float *dx = malloc((size_t)n * sizeof(float));
        float *fd = malloc((size_t)n * sizeof(float));
        float scale[16], bias[16], ds[16], db[16], fds[16], fdb[16];
        int64_t k;

        tu_fill_uniform(x, (size_t)n, -2, 3, 500 + ci);
        tu_fill_uniform(w, (size_t)n, -1, 1, 600 + ci);
        tu_fill_uniform(scale, (size_t)v.c, 0.5f, 2, 41);
        tu_fill_uniform(bias, (size_t)v.c, -1, 1, 42);
        run_grad(e, c, x, w, scale, dx, ds, db);
        for (k = 0; k < n; k++) {
            const float x0 = x[k];
            double lp, lm;
            x[k] = x0 + h;
            lp = loss_of(e, c, x, scale, bias, w);
            x[k] = x0 - h;
            lm = loss_of(e, c, x, scale, bias, w);
            x[k] = x0;
            fd[k] = (float)((lp - lm) / (2 * h));
        }
        for (k = 0; k < v.c; k++) {
            const float s0 = scale[k], b0 = bias[k];
            double lp, lm;
            scale[k] = s0 + h;
            lp = loss_of(e, c, x, scale, bias, w);
            scale[k] = s0 - h;
            lm = loss_of(e, c, x, scale, bias, w);
            scale[k] = s0;
            fds[k] = (float)((lp - lm) / (2 * h));
            bias[k] = b0 + h;
            lp = loss_of(e, c, x, scale, bias, w);
            bias[k] = b0 - h;
            lm = loss_of(e, c, x, scale, bias, w);
            bias[k] = b0;
            fdb[k] = (float)((lp - lm) / (2 * h));
        }
        tu_assert_close_f32(dx, fd, (size_t)n, 2e-2f, 2e-3f);
        tu_assert_close_f32(ds, fds, (size_t)v.c, 2e-2f, 2e-3f);
        tu_assert_close_f32(db, fdb, (size_t)v.c, 2e-2f, 2e-3f);
        free(x);
        free(w);
        free(dx);
        free(fd);
    }
}

static void
test_spatial_bn_gradient_is_test_treats_stats_as_constants(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op =
        tu_op("SpatialBNGradient", "X,scale,dY,mean,var", "dX,dscale,dbias");
    const int64_t d[2] = {2, 2}, two = 2;
    const float x[4] = {1, 2, 3, 4}, s[2] = {2, 3}, m[2] = {1, 2},
                v[2] = {4, 9}, dy[4] = {1, -1, 0.5f, 2};
    const float *dx, *ds, *db;
    ct_status_t st;

    tu_arg_i(op, "is_test", 1);
    tu_arg_f(op, "epsilon", 1e-30f);
    tu_feed_f32(e->ws, "X", 2, d, x);
    tu_feed_f32(e->ws, "scale", 1, &two, s);
    tu_feed_f32(e->ws, "dY", 2, d, dy);
    tu_feed_f32(e->ws, "mean", 1, &two, m);
    tu_feed_f32(e->ws, "var", 1, &two, v);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    dx = ct_tensor_cdata(tu_fetch(e->ws, "dX"));
    ds = ct_tensor_cdata(tu_fetch(e->ws, "dscale"));
    db = ct_tensor_cdata(tu_fetch(e->ws, "dbias"));
    /* dX = scale / sqrt(var) * dY: channel 0 by 1, channel 1 by 1 */
    assert_true(fabsf(dx[0] - 1) < 1e-6f && fabsf(dx[1] + 1) < 1e-6f);
    assert_true(fabsf(dx[2] - 0.5f) < 1e-6f && fabsf(dx[3] - 2) < 1e-6f);
    /* dscale = sum dY (x - m) / sqrt(v): c0 (1*0 + 0.5*2) / 2 = 0.5 */
    assert_true(fabsf(ds[0] - 0.5f) < 1e-6f);
    assert_true(fabsf(ds[1] - (-1 * 0 + 2 * 2) / 3.0f) < 1e-6f);
    assert_true(fabsf(db[0] - 1.5f) < 1e-6f && fabsf(db[1] - 1) < 1e-6f);
    tu_op_free(op);
}

static void test_spatial_bn_gradient_num_batches_averages_sums(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op =
        tu_op("SpatialBNGradient", "X,scale,dY,smean,srstd,dssum,dbsum",
              "dX,dssum,dbsum");
    const int64_t d[2] = {2, 1}, one = 1;
    const float x[2] = {1, 3}, s = 1, dy[2] = {1, 1}, sm = 2, sr = 1, dss = 4,
                dbs = 6;
    ct_status_t st;

    tu_arg_i(op, "num_batches", 2);
    tu_feed_f32(e->ws, "X", 2, d, x);
    tu_feed_f32(e->ws, "scale", 1, &one, &s);
    tu_feed_f32(e->ws, "dY", 2, d, dy);
    tu_feed_f32(e->ws, "smean", 1, &one, &sm);
    tu_feed_f32(e->ws, "srstd", 1, &one, &sr);
    tu_feed_f32(e->ws, "dssum", 1, &one, &dss);
    tu_feed_f32(e->ws, "dbsum", 1, &one, &dbs);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_true(((const float *)ct_tensor_cdata(tu_fetch(e->ws, "dssum")))[0] ==
                2);
    assert_true(((const float *)ct_tensor_cdata(tu_fetch(e->ws, "dbsum")))[0] ==
                3);
    tu_op_free(op);
}

static void test_spatial_bn_gradient_maker(void **state)
{
    struct tu_env *e = *state;
    const char *loss = "Y";
    const int64_t d[4] = {2, 3, 2, 2}, c = 3;
    float x[24], s[3], b[3], m[3], v[3];
    const float *db;
    int train;

    tu_fill_uniform(x, 24, -1, 1, 1);
    for (train = 0; train < 2; train++) {
        Caffe2__NetDef *net = tu_net("g", "X,scale,bias,mean,var", "");
        const Caffe2__OperatorDef *g;
        ct_netdef_t *def;
        ct_net_t *compiled;
        ct_status_t st;
        tu_net_add_op(net, bn_op(!train, false));
        assert_int_equal(
            ct_proto_copy(&net->base, (ProtobufCMessage **)&def, &st), CT_OK);
        tu_net_free(net);
        if (ct_netdef_add_gradient_ops(def, &loss, 1, &st) != CT_OK)
            fail_msg("%s", st.msg);
        g = def->op[def->n_op - 1];
        assert_string_equal(g->type, "SpatialBNGradient");
        assert_string_equal(g->input[2], "Y_grad");
        assert_string_equal(g->input[3], train ? "saved_mean" : "mean");
        assert_string_equal(g->input[4], train ? "saved_rstd" : "var");
        assert_string_equal(g->output[1], "scale_grad");
        tu_feed_f32(e->ws, "X", 4, d, x);
        feed_vec(e, "scale", c, 0.5f, 2, 1, s);
        feed_vec(e, "bias", c, -1, 1, 2, b);
        feed_vec(e, "mean", c, -1, 1, 3, m);
        feed_vec(e, "var", c, 0.5f, 2, 4, v);
        assert_int_equal(ct_net_new(e->ws, def, NULL, &compiled, &st), CT_OK);
        assert_int_equal(ct_net_run(compiled, &st), CT_OK);
        /* dY = 1: dbias counts the values per channel. */
        db = ct_tensor_cdata(tu_fetch(e->ws, "bias_grad"));
        assert_true(db[0] == 8 && db[2] == 8);
        ct_net_free(compiled);
        ct_netdef_free(def);
    }
}

/* ---- errors ---- */

struct arg_err {
    const char *name;
    char kind; /* 'i', 'f', 's' */
    double v;
    const char *s;
    int code;
    const char *needle;
};

static void test_spatial_bn_bad_arguments_return_errors(void **state)
{
    struct tu_env *e = *state;
    static const struct arg_err errs[] = {
        {"order", 's', 0, "NCWH", CT_EARG,
         "order should be either \"NCHW\" or \"NHWC\", got \"NCWH\""},
        {"epsilon", 'f', 0, NULL, CT_EARG,
         "epsilon must be a finite value > 0"},
        {"epsilon", 'f', -1, NULL, CT_EARG, "got -1"},
        {"momentum", 'f', 1.5, NULL, CT_EARG,
         "momentum must be in [0, 1], got 1.5"},
        {"momentum", 'f', -0.1, NULL, CT_EARG, "momentum must be in [0, 1]"},
        {"num_batches", 'i', 0, NULL, CT_EARG,
         "num_batches must be >= 1, got 0"},
        {"num_batches", 'i', 2, NULL, CT_ESCHEMA,
         "num_batches 2 needs 7 inputs"},
        {"epsilon", 'i', 1, NULL, CT_EARG, "does not have the right field"},
    };
    const int64_t d[2] = {2, 2};
    size_t k;

    tu_feed_f32(e->ws, "X", 2, d, NULL);
    tu_feed_f32(e->ws, "scale", 1, d, NULL);
    tu_feed_f32(e->ws, "bias", 1, d, NULL);
    tu_feed_f32(e->ws, "mean", 1, d, NULL);
    tu_feed_f32(e->ws, "var", 1, d, NULL);
    for (k = 0; k < sizeof(errs) / sizeof(errs[0]); k++) {
        Caffe2__OperatorDef *op = bn_op(true, false);
        ct_status_t st;
        if (errs[k].kind == 'i')
            tu_arg_i(op, errs[k].name, (int64_t)errs[k].v);
        else if (errs[k].kind == 'f')
            tu_arg_f(op, errs[k].name, (float)errs[k].v);
        else
            tu_arg_s(op, errs[k].name, errs[k].s);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), errs[k].code,
                         errs[k].needle);
        tu_op_free(op);
    }
}

static void
test_spatial_bn_output_counts_and_aliases_return_eschema(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *a = tu_op("SpatialBN", "X,s,b,m,v", "Y,m,v,sm,sr");
    Caffe2__OperatorDef *b = tu_op("SpatialBN", "X,s,b,m,v", "Y");
    Caffe2__OperatorDef *c = tu_op("SpatialBN", "X,s,b,m,v", "Y,m2,v,sm,sr");
    Caffe2__OperatorDef *d = tu_op("SpatialBN", "X,s,b,m,v", "Y,X,v,sm,sr");
    const int64_t dims[2] = {2, 2};
    ct_status_t st;

    tu_arg_i(a, "is_test", 1);
    tu_feed_f32(e->ws, "X", 2, dims, NULL);
    tu_feed_f32(e->ws, "s", 1, dims, NULL);
    tu_feed_f32(e->ws, "b", 1, dims, NULL);
    tu_feed_f32(e->ws, "m", 1, dims, NULL);
    tu_feed_f32(e->ws, "v", 1, dims, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, a, &st), CT_ESCHEMA,
                     "SpatialBN with is_test=1 takes 1 output (Y), got 5");
    tu_assert_status(&st, tu_run_op(e->ws, b, &st), CT_ESCHEMA,
                     "training mode (is_test=0) takes 5 outputs");
    tu_assert_status(&st, tu_run_op(e->ws, c, &st), CT_ESCHEMA,
                     "Input 3 and Output 1 should be alias");
    /* X -> running_mean is not an allowed in-place pair. */
    tu_assert_status(&st, tu_run_op(e->ws, d, &st), CT_ESCHEMA,
                     "does not allow input 0 and output 1");
    tu_op_free(a);
    tu_op_free(b);
    tu_op_free(c);
    tu_op_free(d);
}

static void test_spatial_bn_bad_inputs_return_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = bn_op(true, false);
    Caffe2__OperatorDef *tr = bn_op(false, false);
    const int64_t d1[1] = {4}, d2[2] = {2, 3}, d0[2] = {2, 0}, three = 3,
                  two = 2, dd[4] = {1, 3, 1, 1};
    ct_status_t st;

    tu_feed_f32(e->ws, "scale", 1, &three, NULL);
    tu_feed_f32(e->ws, "bias", 1, &three, NULL);
    tu_feed_f32(e->ws, "mean", 1, &three, NULL);
    tu_feed_f32(e->ws, "var", 1, &three, NULL);
    tu_feed_f32(e->ws, "X", 1, d1, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "X [4] must have at least 2 dims (N, C, ...)");
    tu_feed_f32(e->ws, "X", 2, d0, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "X [2, 0] has 0 channels (C is dim 1, order NCHW)");
    tu_feed(e->ws, "X", CT_DTYPE_F64, 2, d2, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype DOUBLE for X (FLOAT)");
    tu_feed_f32(e->ws, "X", 2, d2, NULL);
    tu_feed_f32(e->ws, "var", 1, &two, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "var \"var\" [2] has 2 elements, want C=3");
    tu_feed(e->ws, "scale", CT_DTYPE_I32, 1, &three, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "scale \"scale\" is INT32, want FLOAT");
    tu_feed_f32(e->ws, "scale", 1, &three, NULL);
    tu_feed_f32(e->ws, "var", 1, &three, NULL);
    /* Training with one value per channel. */
    tu_feed_f32(e->ws, "X", 4, dd, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, tr, &st), CT_ESHAPE,
                     "training needs more than one value per channel");
    tu_op_free(op);
    tu_op_free(tr);
}

static void test_spatial_bn_gradient_bad_dy_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op =
        tu_op("SpatialBNGradient", "X,scale,dY,sm,sr", "dX,ds,db");
    const int64_t d[2] = {2, 3}, d2[2] = {3, 2}, three = 3;
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 2, d, NULL);
    tu_feed_f32(e->ws, "scale", 1, &three, NULL);
    tu_feed_f32(e->ws, "dY", 2, d2, NULL);
    tu_feed_f32(e->ws, "sm", 1, &three, NULL);
    tu_feed_f32(e->ws, "sr", 1, &three, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "dY FLOAT [3, 2] must match X [2, 3] FLOAT");
    tu_op_free(op);
}

/* ---- inference and cost ---- */

static void test_spatial_bn_infer_gives_shapes_and_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = bn_op(false, true);
    const int64_t d[4] = {2, 5, 6, 3}, c = 3, bad = 4;
    ct_shape_t in[5], out[5];
    ct_status_t st;
    ct_op_t *op;
    int i, rc;

    tu_feed_f32(e->ws, "X", 1, &c, NULL);
    tu_feed_f32(e->ws, "scale", 1, &c, NULL);
    tu_feed_f32(e->ws, "bias", 1, &c, NULL);
    tu_feed_f32(e->ws, "mean", 1, &c, NULL);
    tu_feed_f32(e->ws, "var", 1, &c, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    in[0] = shape(CT_DTYPE_F32, 4, d);
    for (i = 1; i < 5; i++)
        in[i] = shape(CT_DTYPE_F32, 1, &c);
    for (i = 0; i < 5; i++)
        out[i] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 4);
    assert_memory_equal(out[0].dims, d, sizeof(d));
    for (i = 1; i < 5; i++) {
        assert_int_equal(out[i].ndim, 1);
        assert_int_equal(out[i].dims[0], 3);
    }
    assert_true(op->schema->cost_cb(op, in) == 5.0 * 180);
    in[1] = shape(CT_DTYPE_F32, 1, &bad);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "scale [4] has 4 elements, want C=3");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_spatial_bn_inference_matches_reference),
        T(test_spatial_bn_parallel_affine_matches_reference),
        T(test_spatial_bn_epsilon_is_used),
        T(test_spatial_bn_training_matches_reference),
        T(test_spatial_bn_training_resets_uninitialised_stats),
        T(test_spatial_bn_num_batches_uses_given_sums),
        T(test_spatial_bn_inplace_x_to_y),
        T(test_spatial_bn_empty_batch_gives_zero_saved_stats),
        T(test_spatial_bn_gradient_matches_reference),
        T(test_spatial_bn_gradient_matches_finite_differences),
        T(test_spatial_bn_gradient_is_test_treats_stats_as_constants),
        T(test_spatial_bn_gradient_num_batches_averages_sums),
        T(test_spatial_bn_gradient_maker),
        T(test_spatial_bn_bad_arguments_return_errors),
        T(test_spatial_bn_output_counts_and_aliases_return_eschema),
        T(test_spatial_bn_bad_inputs_return_errors),
        T(test_spatial_bn_gradient_bad_dy_returns_eshape),
        T(test_spatial_bn_infer_gives_shapes_and_cost),
#undef T
    };
    return cmocka_run_group_tests_name("ops.spatial_bn", tests, NULL, NULL);
}
