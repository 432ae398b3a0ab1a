/* Tests for ops/fc.c: FC and FCTransposed compared with a naive
 * double-precision reference over one case table (axis, axis_w, empty
 * batch, K = 0); every shape error with its message, dtype errors,
 * in-place rejection, shape inference, overflow and cost (white-box
 * through ops/op_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

/* ---- the case table ---- */

#define NO_ARG (-100)

struct fc_case {
    const char *what;
    bool transposed;
    int nx;
    int64_t x[4];
    int nw;
    int64_t w[4];
    int axis, axis_w; /* NO_ARG: absent */
    int64_t m, n, k;
    int ny;
    int64_t y[4];
};

static const struct fc_case cases[] = {
    {"2-d", false, 2, {4, 5}, 2, {3, 5}, NO_ARG, NO_ARG, 4, 3, 5, 2, {4, 3}},
    {"axis 2",
     false,
     3,
     {2, 3, 4},
     2,
     {6, 4},
     2,
     NO_ARG,
     6,
     6,
     4,
     3,
     {2, 3, 6}},
    {"axis 1 of 3-d",
     false,
     3,
     {2, 3, 4},
     2,
     {6, 12},
     NO_ARG,
     NO_ARG,
     2,
     6,
     12,
     2,
     {2, 6}},
    {"axis -1",
     false,
     3,
     {2, 3, 4},
     2,
     {5, 4},
     -1,
     NO_ARG,
     6,
     5,
     4,
     3,
     {2, 3, 5}},
    {"axis_w 2", false, 2, {3, 4}, 3, {2, 3, 4}, NO_ARG, 2, 3, 6, 4, 2, {3, 6}},
    {"axis 0", false, 2, {3, 4}, 2, {5, 12}, 0, NO_ARG, 1, 5, 12, 1, {5}},
    {"1x1", false, 2, {1, 1}, 2, {1, 1}, NO_ARG, NO_ARG, 1, 1, 1, 2, {1, 1}},
    {"blas sized",
     false,
     2,
     {33, 65},
     2,
     {17, 65},
     NO_ARG,
     NO_ARG,
     33,
     17,
     65,
     2,
     {33, 17}},
    {"empty batch",
     false,
     2,
     {0, 5},
     2,
     {3, 5},
     NO_ARG,
     NO_ARG,
     0,
     3,
     5,
     2,
     {0, 3}},
    {"K = 0", false, 2, {3, 0}, 2, {2, 0}, NO_ARG, NO_ARG, 3, 2, 0, 2, {3, 2}},
    {"N = 0", false, 2, {3, 4}, 2, {0, 4}, NO_ARG, NO_ARG, 3, 0, 4, 2, {3, 0}},
    {"transposed",
     true,
     2,
     {4, 5},
     2,
     {5, 3},
     NO_ARG,
     NO_ARG,
     4,
     3,
     5,
     2,
     {4, 3}},
    {"transposed axis 2",
     true,
     3,
     {2, 3, 4},
     2,
     {4, 7},
     2,
     NO_ARG,
     6,
     7,
     4,
     3,
     {2, 3, 7}},
    {"transposed axis_w 2",
     true,
     2,
     {3, 6},
     3,
     {2, 3, 5},
     NO_ARG,
     2,
     3,
     5,
     6,
     2,
     {3, 5}},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* ---- helpers ---- */

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static Caffe2__OperatorDef *fc_op(bool transposed, int axis, int axis_w,
                                  const char *outs)
{
    Caffe2__OperatorDef *op =
        tu_op(transposed ? "FCTransposed" : "FC", "X,W,b", outs);

    if (axis != NO_ARG)
        tu_arg_i(op, "axis", axis);
    if (axis_w != NO_ARG)
        tu_arg_i(op, "axis_w", axis_w);
    return op;
}

/* Feeds zero-filled float X, W, b and runs op; returns rc. */
static int run_shapes(struct tu_env *e, Caffe2__OperatorDef *op, int nx,
                      const int64_t *x, int nw, const int64_t *w, int nb,
                      const int64_t *b, ct_status_t *st)
{
    tu_feed(e->ws, "X", CT_DTYPE_F32, nx, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, nw, w, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, nb, b, NULL);
    return tu_run_op(e->ws, op, st);
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

static ct_op_t *create_op(struct tu_env *e, Caffe2__OperatorDef *def)
{
    ct_status_t st;
    ct_op_t *op;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 0, NULL, NULL);
    if (ct__op_create(e->ws, def, 0, &op, &st) != CT_OK)
        fail_msg("create: %s", st.msg);
    return op;
}

/* ---- tests: case table ---- */

static void test_fc_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct fc_case *c = &cases[ci];
        int64_t nx = numel(c->nx, c->x), nw = numel(c->nw, c->w);
        float *x = malloc((size_t)(nx ? nx : 1) * sizeof(float));
        float *w = malloc((size_t)(nw ? nw : 1) * sizeof(float));
        float *b = malloc((size_t)(c->n ? c->n : 1) * sizeof(float));
        int64_t ny = c->m * c->n;
        float *want = calloc((size_t)(ny > 0 ? ny : 1), sizeof(float));
        Caffe2__OperatorDef *op = fc_op(c->transposed, c->axis, c->axis_w, "Y");
        const ct_tensor_t *y;
        ct_status_t st;
        int64_t i, j, l;
        int d;

        tu_fill_uniform(x, (size_t)nx, -1, 1, 1 + ci);
        tu_fill_uniform(w, (size_t)nw, -1, 1, 50 + ci);
        tu_fill_uniform(b, (size_t)c->n, -1, 1, 99 + ci);
        for (i = 0; i < c->m; i++)
            for (j = 0; j < c->n; j++) {
                double acc = b[j];
                for (l = 0; l < c->k; l++)
                    acc += (double)x[i * c->k + l] *
                           (c->transposed ? w[l * c->n + j] : w[j * c->k + l]);
                want[i * c->n + j] = (float)acc;
            }
        tu_feed(e->ws, "X", CT_DTYPE_F32, c->nx, c->x, x);
        tu_feed(e->ws, "W", CT_DTYPE_F32, c->nw, c->w, w);
        tu_feed(e->ws, "b", CT_DTYPE_F32, 1, &c->n, b);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        y = tu_fetch(e->ws, "Y");
        assert_int_equal(ct_tensor_dtype(y), CT_DTYPE_F32);
        assert_int_equal(ct_tensor_ndim(y), c->ny);
        for (d = 0; d < c->ny; d++)
            assert_int_equal(ct_tensor_dims(y)[d], c->y[d]);
        tu_assert_close_f32(ct_tensor_cdata(y), want, (size_t)(c->m * c->n),
                            1e-5f, 1e-5f);
        tu_op_free(op);
        free(x);
        free(w);
        free(b);
        free(want);
    }
}

static void test_fc_float16_compute_is_ignored(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {1, 2}, w[2] = {1, 2}, b[1] = {1};
    const float xv[2] = {1, 2}, wv[2] = {3, 4}, bv[1] = {0.5f};
    ct_status_t st;

    tu_arg_i(op, "float16_compute", 1);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, x, xv);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 2, w, wv);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 1, b, bv);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_true(*(const float *)ct_tensor_cdata(tu_fetch(e->ws, "Y")) == 11.5f);
    tu_op_free(op);
}

/* ---- tests: shape errors ---- */

static void test_fc_k_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 6}, b[1] = {3};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "input dims X [2, 5] give M=2, K=5 at axis 1, but W "
                     "[3, 6] has K=6 (N=3) at axis_w 1");
    tu_op_free(op);
}

static void test_fc_transposed_k_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(true, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {5};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "K=5 at axis 1, but W [3, 5] has K=3 (N=5)");
    tu_op_free(op);
}

static void test_fc_bias_size_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {4};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "b [4] must be 1-d of N=3 elements (W [3, 5], X [2, 5])");
    tu_op_free(op);
}

static void test_fc_bias_2d_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[2] = {3, 1};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 2, b, &st), CT_ESHAPE,
                     "b [3, 1] must be 1-d of N=3 elements");
    tu_op_free(op);
}

static void test_fc_axis_out_of_range_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, 2, NO_ARG, "Y");
    Caffe2__OperatorDef *op2 = fc_op(false, -3, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {3};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "axis 2 is out of range for X [2, 5] (2-d)");
    tu_assert_status(&st, run_shapes(e, op2, 2, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "axis -3 is out of range for X [2, 5] (2-d)");
    tu_op_free(op);
    tu_op_free(op2);
}

static void test_fc_axis_w_out_of_range_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, 1, "Y");
    const int64_t x[2] = {2, 5}, w[1] = {5}, b[1] = {1};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 1, w, 1, b, &st), CT_ESHAPE,
                     "axis_w 1 is out of range for W [5] (1-d)");
    tu_op_free(op);
}

static void test_fc_1d_input_default_axis_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[1] = {5}, w[2] = {3, 5}, b[1] = {3};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 1, x, 2, w, 1, b, &st), CT_ESHAPE,
                     "axis 1 is out of range for X [5] (1-d)");
    tu_op_free(op);
}

/* ---- tests: dtypes, arguments, in-place ---- */

static void test_fc_double_weight_returns_etype(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {3};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 2, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F64, 2, w, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_F32, 1, b, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "X is FLOAT but W is DOUBLE and b is FLOAT");
    tu_op_free(op);
}

static void test_fc_int_input_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {3};
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_I32, 2, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_I32, 2, w, NULL);
    tu_feed(e->ws, "b", CT_DTYPE_I32, 1, b, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype INT32 for X");
    tu_op_free(op);
}

static void test_fc_axis_as_float_returns_earg(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("FC", "X,W,b", "Y");
    const int64_t x[2] = {2, 5}, w[2] = {3, 5}, b[1] = {3};
    ct_status_t st;

    tu_arg_f(op, "axis", 1.0f);
    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_EARG,
                     "does not have the right field");
    tu_op_free(op);
}

static void test_fc_inplace_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = fc_op(false, NO_ARG, NO_ARG, "X");
    const int64_t x[2] = {2, 5}, w[2] = {5, 5}, b[1] = {5};
    ct_status_t st;

    tu_assert_status(&st, run_shapes(e, op, 2, x, 2, w, 1, b, &st), CT_ESCHEMA,
                     NULL);
    tu_op_free(op);
}

/* ---- tests: shape inference and cost ---- */

static void test_fc_infer_gives_output_shape_and_cost(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = fc_op(false, 2, NO_ARG, "Y");
    ct_op_t *op = create_op(e, def);
    const int64_t x[3] = {2, 3, 4}, w[2] = {6, 4}, b[1] = {6};
    const int64_t y[3] = {2, 3, 6};
    ct_shape_t in[3], out[1];
    ct_status_t st;

    in[0] = shape(CT_DTYPE_F32, 3, x);
    in[1] = shape(CT_DTYPE_F32, 2, w);
    in[2] = shape(CT_DTYPE_F32, 1, b);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dtype, CT_DTYPE_F32);
    assert_int_equal(out[0].ndim, 3);
    assert_memory_equal(out[0].dims, y, sizeof(y));
    /* M * N * (2K + 1) = 6 * 6 * 9. */
    assert_true(op->schema->cost_cb(op, in) == 324.0);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_fc_infer_k_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = fc_op(false, NO_ARG, NO_ARG, "Y");
    ct_op_t *op = create_op(e, def);
    const int64_t x[2] = {2, 4}, w[2] = {6, 5}, b[1] = {6};
    ct_shape_t in[3], out[1];
    ct_status_t st;
    int rc;

    in[0] = shape(CT_DTYPE_F32, 2, x);
    in[1] = shape(CT_DTYPE_F32, 2, w);
    in[2] = shape(CT_DTYPE_F32, 1, b);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "K=4 at axis 1, but W [6, 5] has K=5");
    assert_true(op->schema->cost_cb(op, in) == 0.0);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_fc_infer_overflow_returns_eoverflow(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = fc_op(false, NO_ARG, NO_ARG, "Y");
    ct_op_t *op = create_op(e, def);
    const int64_t big = (int64_t)1 << 40;
    const int64_t x[2] = {big, 2}, w[2] = {big, 2}, b[1] = {big};
    const int64_t x2[2] = {big, big}, w2[2] = {3, big}, b2[1] = {3};
    ct_shape_t in[3], out[1];
    ct_status_t st;
    int rc;

    /* M * N = 2^80. */
    in[0] = shape(CT_DTYPE_F32, 2, x);
    in[1] = shape(CT_DTYPE_F32, 2, w);
    in[2] = shape(CT_DTYPE_F32, 1, b);
    out[0] = shape(CT_DTYPE_UNDEFINED, -1, NULL);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW, "output [M=1099511627776, N=");
    /* M * K = 2^80. */
    in[0] = shape(CT_DTYPE_F32, 2, x2);
    in[1] = shape(CT_DTYPE_F32, 2, w2);
    in[2] = shape(CT_DTYPE_F32, 1, b2);
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_EOVERFLOW, "M, K or M*K at axis 1");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_fc_case_table_matches_reference),
        T(test_fc_float16_compute_is_ignored),
        T(test_fc_k_mismatch_returns_eshape),
        T(test_fc_transposed_k_mismatch_returns_eshape),
        T(test_fc_bias_size_mismatch_returns_eshape),
        T(test_fc_bias_2d_returns_eshape),
        T(test_fc_axis_out_of_range_returns_eshape),
        T(test_fc_axis_w_out_of_range_returns_eshape),
        T(test_fc_1d_input_default_axis_returns_eshape),
        T(test_fc_double_weight_returns_etype),
        T(test_fc_int_input_returns_enotsup),
        T(test_fc_axis_as_float_returns_earg),
        T(test_fc_inplace_returns_eschema),
        T(test_fc_infer_gives_output_shape_and_cost),
        T(test_fc_infer_k_mismatch_returns_eshape),
        T(test_fc_infer_overflow_returns_eoverflow),
#undef T
    };
    return cmocka_run_group_tests_name("ops.fc", tests, NULL, NULL);
}
