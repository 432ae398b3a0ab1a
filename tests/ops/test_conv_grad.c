/* Tests for ops/conv_grad.c (ConvGradient): dW, db and dX compared with a
 * naive double-precision backward pass (tests/ops/conv_ref.h) over a case
 * table and seeded random cases, and with central finite differences of
 * the Conv op itself; the output-count variants (no_bias, no dX); the
 * adjoint identity with ConvTranspose; every error with its message;
 * shape inference and cost.
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
#include "cortado/gradient.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

#include "conv_ref.h"

/* ---- cases ---- */

/* clang-format off */
static const struct cr_case cases[] = {
    {"3x3 pad 1", 2, false, 2, 3, 4, 1, {5, 6}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"stride 2, dilation 2, asymmetric pads", 2, false, 2, 2, 3, 1, {9, 8},
     {3, 2}, {2, 2}, {2, 1}, {1, 0, 2, 1}, {0}, true, CR_HW},
    {"grouped", 2, false, 1, 4, 6, 2, {5, 5}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"depthwise", 2, false, 2, 3, 3, 3, {6, 5}, {3, 3}, {2, 1}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"1x1", 2, false, 2, 5, 3, 1, {4, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0},
     {0}, true, CR_LISTS},
    {"1x1 grouped", 2, false, 1, 4, 6, 2, {3, 3}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"NHWC 3x3 stride 2", 2, true, 2, 3, 4, 1, {7, 6}, {3, 3}, {2, 2}, {1, 1},
     {1, 1, 1, 1}, {0}, true, CR_LISTS},
    {"NHWC grouped dilated", 2, true, 1, 4, 6, 2, {7, 7}, {3, 3}, {1, 1},
     {2, 2}, {2, 2, 1, 1}, {0}, true, CR_LISTS},
    {"NHWC 1x1 grouped", 2, true, 2, 6, 4, 2, {3, 2}, {1, 1}, {1, 1}, {1, 1},
     {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"1-d", 1, false, 2, 3, 2, 1, {9}, {3}, {2}, {1}, {1, 1}, {0}, true,
     CR_LISTS},
    {"3-d NHWC", 3, true, 1, 2, 3, 1, {3, 4, 4}, {2, 3, 2}, {1, 2, 1},
     {1, 1, 2}, {0, 1, 1, 1, 0, 0}, {0}, true, CR_LISTS},
    {"several tiles (K = 1600)", 2, false, 2, 64, 2, 1, {20, 20}, {5, 5},
     {1, 1}, {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
    {"NHWC several tiles", 2, true, 1, 64, 2, 1, {20, 20}, {5, 5}, {1, 1},
     {1, 1}, {0, 0, 0, 0}, {0}, true, CR_LISTS},
};
/* clang-format on */

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* Data of one case: X, W, b, dY and their dims. */
struct data {
    int nd;
    int64_t xd[5], wd[5], yd[5];
    int64_t nx, nw, ny;
    float *x, *w, *b, *dy;
};

static void data_init(struct data *d, const struct cr_case *c, uint64_t seed)
{
    int64_t out[3];
    int i;

    d->nd = cr_dims(c, c->c, c->in, d->xd);
    cr_wdims(c, c->m, c->c / c->group, d->wd);
    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_conv_out(c, i);
    cr_dims(c, c->m, out, d->yd);
    d->nx = cr_numel(d->nd, d->xd);
    d->nw = cr_numel(d->nd, d->wd);
    d->ny = cr_numel(d->nd, d->yd);
    d->x = cr_rand_floats(d->nx, seed);
    d->w = cr_rand_floats(d->nw, seed + 1);
    d->b = cr_rand_floats(c->m, seed + 2);
    d->dy = cr_rand_floats(d->ny, seed + 3);
}

static void data_free(struct data *d)
{
    free(d->x);
    free(d->w);
    free(d->b);
    free(d->dy);
}

static void data_feed(struct tu_env *e, const struct cr_case *c,
                      const struct data *d)
{
    tu_feed_f32(e->ws, "X", d->nd, d->xd, d->x);
    tu_feed_f32(e->ws, "W", d->nd, d->wd, d->w);
    tu_feed_f32(e->ws, "b", 1, &c->m, d->b);
    tu_feed_f32(e->ws, "dY", d->nd, d->yd, d->dy);
}

static Caffe2__OperatorDef *grad_def(const struct cr_case *c, const char *outs,
                                     bool no_bias)
{
    Caffe2__OperatorDef *op = tu_op("ConvGradient", "X,W,dY", outs);

    cr_add_args(op, c, true, true);
    if (no_bias)
        tu_arg_i(op, "no_bias", 1);
    return op;
}

/* Runs ConvGradient (dW, db, dX) on c and compares with the reference. */
static void check_grad_case(struct tu_env *e, const struct cr_case *c,
                            uint64_t seed)
{
    Caffe2__OperatorDef *op = grad_def(c, "dW,db,dX", false);
    struct data d;
    double *dx, *dw, *db;
    const ct_tensor_t *t;
    ct_status_t st;

    data_init(&d, c, seed);
    dx = calloc((size_t)(d.nx > 0 ? d.nx : 1), sizeof(double));
    dw = calloc((size_t)(d.nw > 0 ? d.nw : 1), sizeof(double));
    db = calloc((size_t)c->m, sizeof(double));
    assert_true(dx != NULL && dw != NULL && db != NULL);
    cr_conv_bwd_ref(c, d.x, d.w, d.dy, dx, dw, db);
    data_feed(e, c, &d);
    if (tu_run_op(e->ws, op, &st) != CT_OK)
        fail_msg("%s: %s", c->what, st.msg);
    t = tu_fetch(e->ws, "dW");
    assert_int_equal(ct_tensor_ndim(t), d.nd);
    assert_memory_equal(ct_tensor_dims(t), d.wd, (size_t)d.nd * 8);
    cr_assert_close(c->what, ct_tensor_cdata(t), dw, d.nw, 1e-4, 1e-3);
    t = tu_fetch(e->ws, "db");
    assert_int_equal(ct_tensor_ndim(t), 1);
    assert_int_equal(ct_tensor_dims(t)[0], c->m);
    cr_assert_close(c->what, ct_tensor_cdata(t), db, c->m, 1e-4, 1e-3);
    t = tu_fetch(e->ws, "dX");
    assert_memory_equal(ct_tensor_dims(t), d.xd, (size_t)d.nd * 8);
    cr_assert_close(c->what, ct_tensor_cdata(t), dx, d.nx, 1e-4, 1e-3);
    tu_op_free(op);
    data_free(&d);
    free(dx);
    free(dw);
    free(db);
}

/* ---- tests: values ---- */

static void test_conv_gradient_case_table_matches_naive_backward(void **state)
{
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++)
        check_grad_case(*state, &cases[ci], 40 + 5 * ci);
}

static void test_conv_gradient_random_cases_match_naive_backward(void **state)
{
    uint64_t rng = 4242;
    struct cr_case c;
    int i, j;

    for (i = 0; i < 80; i++) {
        memset(&c, 0, sizeof(c));
        c.what = "random gradient";
        c.n_sp = cr_rand(&rng, 1, 3);
        c.nhwc = cr_rand(&rng, 0, 1);
        c.n = cr_rand(&rng, 1, 2);
        c.group = cr_rand(&rng, 1, 3);
        c.c = c.group * cr_rand(&rng, 1, 3);
        c.m = c.group * cr_rand(&rng, 1, 3);
        c.bias = true;
        c.form = CR_LISTS;
        for (j = 0; j < c.n_sp; j++) {
            int dk;
            c.k[j] = cr_rand(&rng, 1, 3);
            c.s[j] = cr_rand(&rng, 1, 3);
            c.d[j] = cr_rand(&rng, 1, 2);
            c.pads[j] = cr_rand(&rng, 0, 2);
            c.pads[c.n_sp + j] = cr_rand(&rng, 0, 2);
            dk = c.d[j] * (c.k[j] - 1) + 1;
            c.in[j] = cr_rand(&rng, 1, c.n_sp == 3 ? 5 : 8);
            if (c.in[j] + c.pads[j] + c.pads[c.n_sp + j] < dk)
                c.in[j] = dk;
        }
        check_grad_case(*state, &c, 9000 + (uint64_t)i);
    }
}

/* L = sum(Y * R) for Conv on the current blobs X, W, b. */
static double loss(ct_op_t *conv, struct tu_env *e, const float *r, int64_t ny)
{
    const float *y;
    ct_status_t st;
    double l = 0;
    int64_t i;

    if (ct__op_run_serial(conv, &st) != CT_OK)
        fail_msg("Conv: %s", st.msg);
    y = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    for (i = 0; i < ny; i++)
        l += (double)y[i] * r[i];
    return l;
}

/* Central differences of L with respect to every element of blob `name`
 * (n elements) against the analytic gradient g (float). */
static void check_numeric(struct tu_env *e, ct_op_t *conv, const char *what,
                          const char *name, int64_t n, const float *g,
                          const float *r, int64_t ny)
{
    const float eps = 0.05f;
    float *v = ct_tensor_data(tu_fetch(e->ws, name));
    int64_t i;

    for (i = 0; i < n; i++) {
        const float keep = v[i];
        double lp, lm, num;
        v[i] = keep + eps;
        lp = loss(conv, e, r, ny);
        v[i] = keep - eps;
        lm = loss(conv, e, r, ny);
        v[i] = keep;
        num = (lp - lm) / (2.0 * eps);
        if (!(fabs(num - g[i]) <= 1e-3 + 1e-2 * fabs(num)))
            fail_msg("%s: d%s[%lld]: analytic %.6g, numeric %.6g", what, name,
                     (long long)i, (double)g[i], num);
    }
}

static void test_conv_gradient_matches_finite_differences(void **state)
{
    struct tu_env *e = *state;
    static const size_t pick[] = {0, 1, 2, 3, 4, 6, 7, 9, 10};
    size_t pi;

    for (pi = 0; pi < sizeof(pick) / sizeof(pick[0]); pi++) {
        const struct cr_case *c = &cases[pick[pi]];
        Caffe2__OperatorDef *gdef = grad_def(c, "dW,db,dX", false);
        Caffe2__OperatorDef *cdef = tu_op("Conv", "X,W,b", "Y");
        struct data d;
        float *gw, *gb, *gx;
        ct_op_t *conv;
        ct_status_t st;

        cr_add_args(cdef, c, true, true);
        data_init(&d, c, 77 + pi);
        data_feed(e, c, &d);
        if (tu_run_op(e->ws, gdef, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        gw = malloc((size_t)d.nw * sizeof(float));
        gb = malloc((size_t)c->m * sizeof(float));
        gx = malloc((size_t)d.nx * sizeof(float));
        assert_true(gw != NULL && gb != NULL && gx != NULL);
        memcpy(gw, ct_tensor_cdata(tu_fetch(e->ws, "dW")),
               (size_t)d.nw * sizeof(float));
        memcpy(gb, ct_tensor_cdata(tu_fetch(e->ws, "db")),
               (size_t)c->m * sizeof(float));
        memcpy(gx, ct_tensor_cdata(tu_fetch(e->ws, "dX")),
               (size_t)d.nx * sizeof(float));
        assert_int_equal(ct__op_create(e->ws, cdef, 0, &conv, &st), CT_OK);
        /* dY plays R: dL/dY = R. */
        check_numeric(e, conv, c->what, "W", d.nw, gw, d.dy, d.ny);
        check_numeric(e, conv, c->what, "b", c->m, gb, d.dy, d.ny);
        check_numeric(e, conv, c->what, "X", d.nx, gx, d.dy, d.ny);
        ct__op_destroy(conv);
        tu_op_free(gdef);
        tu_op_free(cdef);
        data_free(&d);
        free(gw);
        free(gb);
        free(gx);
    }
}

/* no_bias = 1 gives dW, dX; a single output gives dW only; without
 * no_bias two outputs give dW, db and no dX. The values are the same as
 * with every output. */
static void test_conv_gradient_output_variants(void **state)
{
    struct tu_env *e = *state;
    const struct cr_case *c = &cases[2];
    Caffe2__OperatorDef *all = grad_def(c, "dW,db,dX", false);
    Caffe2__OperatorDef *nb = grad_def(c, "dW2,dX2", true);
    Caffe2__OperatorDef *only = grad_def(c, "dW3", true);
    Caffe2__OperatorDef *nodx = grad_def(c, "dW4,db4", false);
    const ct_tensor_t *t;
    struct data d;
    ct_status_t st;

    data_init(&d, c, 5);
    data_feed(e, c, &d);
    assert_int_equal(tu_run_op(e->ws, all, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, nb, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, only, &st), CT_OK);
    assert_int_equal(tu_run_op(e->ws, nodx, &st), CT_OK);
    t = tu_fetch(e->ws, "dW");
    assert_memory_equal(ct_tensor_cdata(t),
                        ct_tensor_cdata(tu_fetch(e->ws, "dW2")),
                        ct_tensor_nbytes(t));
    assert_memory_equal(ct_tensor_cdata(t),
                        ct_tensor_cdata(tu_fetch(e->ws, "dW3")),
                        ct_tensor_nbytes(t));
    assert_memory_equal(ct_tensor_cdata(t),
                        ct_tensor_cdata(tu_fetch(e->ws, "dW4")),
                        ct_tensor_nbytes(t));
    t = tu_fetch(e->ws, "dX");
    assert_memory_equal(ct_tensor_cdata(t),
                        ct_tensor_cdata(tu_fetch(e->ws, "dX2")),
                        ct_tensor_nbytes(t));
    t = tu_fetch(e->ws, "db");
    assert_memory_equal(ct_tensor_cdata(t),
                        ct_tensor_cdata(tu_fetch(e->ws, "db4")),
                        ct_tensor_nbytes(t));
    tu_op_free(all);
    tu_op_free(nb);
    tu_op_free(only);
    tu_op_free(nodx);
    data_free(&d);
}

/* An empty batch gives zero dW and db and an empty dX. */
static void test_conv_gradient_empty_batch_gives_zeros(void **state)
{
    struct tu_env *e = *state;
    struct cr_case c = cases[0];
    Caffe2__OperatorDef *op;
    const float *v;
    struct data d;
    ct_status_t st;
    int64_t i;

    c.n = 0;
    op = grad_def(&c, "dW,db,dX", false);
    data_init(&d, &c, 9);
    data_feed(e, &c, &d);
    /* Stale values from an earlier run must not survive. */
    tu_feed_f32(e->ws, "dW", d.nd, d.wd, d.w);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    v = ct_tensor_cdata(tu_fetch(e->ws, "dW"));
    for (i = 0; i < d.nw; i++)
        assert_true(v[i] == 0.0f);
    v = ct_tensor_cdata(tu_fetch(e->ws, "db"));
    for (i = 0; i < c.m; i++)
        assert_true(v[i] == 0.0f);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "dX")), 0);
    tu_op_free(op);
    data_free(&d);
}

/* ConvTranspose is the adjoint of Conv: with the same W and arguments it
 * equals ConvGradient's dX for dY = its input. */
static void test_conv_transpose_equals_conv_gradient_dx(void **state)
{
    struct tu_env *e = *state;
    const struct cr_case *c = &cases[1]; /* stride 2, dilation 2 */
    struct cr_case ct = *c;
    Caffe2__OperatorDef *g, *t;
    struct data d;
    const ct_tensor_t *a, *b;
    ct_status_t st;

    /* ConvTranspose has no dilation. */
    ct.d[0] = ct.d[1] = 1;
    g = grad_def(&ct, "dW,dX", true);
    t = tu_op("ConvTranspose", "dY,W", "Yt");
    cr_add_args(t, &ct, false, true);
    data_init(&d, &ct, 21);
    data_feed(e, &ct, &d);
    assert_int_equal(tu_run_op(e->ws, g, &st), CT_OK);
    /* Conv out extents of (9, 8) are (5, 4); ConvTranspose of (5, 4) with
     * these pads gives (8, 7) + adj: (9, 8) needs adj (1, 1). */
    {
        const int64_t adj[2] = {1, 1};
        tu_arg_ints(t, "adjs", 2, adj);
    }
    if (tu_run_op(e->ws, t, &st) != CT_OK)
        fail_msg("ConvTranspose: %s", st.msg);
    a = tu_fetch(e->ws, "dX");
    b = tu_fetch(e->ws, "Yt");
    assert_int_equal(ct_tensor_numel(a), ct_tensor_numel(b));
    assert_memory_equal(ct_tensor_dims(a), ct_tensor_dims(b), 4 * 8);
    tu_assert_close_f32(ct_tensor_cdata(b), ct_tensor_cdata(a),
                        (size_t)ct_tensor_numel(a), 1e-5f, 1e-5f);
    tu_op_free(g);
    tu_op_free(t);
    data_free(&d);
}

/* Every allocation of a ConvGradient run may fail: CT_ENOMEM, no leak. */
static void
test_conv_gradient_alloc_failures_return_enomem_no_leak(void **state)
{
    const int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3};
    const int64_t yd[4] = {1, 3, 5, 5};
    long k, base;
    bool done = false;

    (void)state;
    base = tu_alloc_live();
    for (k = 1; !done && k < 1000; k++) {
        struct tu_env e;
        Caffe2__OperatorDef *op = tu_op("ConvGradient", "X,W,dY", "dW,db,dX");
        ct_status_t st;
        int rc;

        tu_arg_i(op, "kernel", 3);
        tu_arg_i(op, "pad", 1);
        tu_env_init(&e);
        tu_feed(e.ws, "X", CT_DTYPE_F32, 4, xd, NULL);
        tu_feed(e.ws, "W", CT_DTYPE_F32, 4, wd, NULL);
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

/* ---- gradient makers (ct_netdef_add_gradient_ops) ---- */

static ct_netdef_t *parse_net(const char *txt)
{
    ct_netdef_t *def = NULL;
    ct_status_t st;

    if (ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, &def, &st) != CT_OK)
        fail_msg("parse: %s", st.msg);
    return def;
}

static void assert_op_io(const Caffe2__OperatorDef *op, const char *type,
                         const char *ins, const char *outs)
{
    char buf[256];
    size_t i, off;

    assert_string_equal(op->type, type);
    for (i = 0, off = 0, buf[0] = '\0'; i < op->n_input; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
                                i ? "," : "", op->input[i]);
    assert_string_equal(buf, ins);
    for (i = 0, off = 0, buf[0] = '\0'; i < op->n_output; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
                                i ? "," : "", op->output[i]);
    assert_string_equal(buf, outs);
    assert_true(op->is_gradient_op);
}

static const Caffe2__Argument *find_arg(const Caffe2__OperatorDef *op,
                                        const char *name)
{
    size_t i;

    for (i = 0; i < op->n_arg; i++)
        if (strcmp(op->arg[i]->name, name) == 0)
            return op->arg[i];
    return NULL;
}

/* Conv -> MaxPool -> global AveragePool: the makers emit Caffe2's
 * gradient ops, and the backward net runs, giving the dW that the
 * reference computes from the dY it propagated. */
static void test_conv_and_pool_gradient_makers_build_runnable_net(void **state)
{
    struct tu_env *e = *state;
    ct_netdef_t *def = parse_net(
        "name: \"g\" external_input: \"X\" external_input: \"W\" "
        "external_input: \"b\" "
        "op { input: \"X\" input: \"W\" input: \"b\" output: \"Y\" "
        "type: \"Conv\" arg { name: \"kernel\" i: 3 } "
        "arg { name: \"pad\" i: 1 } } "
        "op { input: \"Y\" output: \"Z\" type: \"MaxPool\" "
        "arg { name: \"kernel\" i: 2 } arg { name: \"stride\" i: 2 } } "
        "op { input: \"Z\" output: \"L\" type: \"AveragePool\" "
        "arg { name: \"global_pooling\" i: 1 } }");
    const char *loss = "L";
    const struct cr_case c = {
        "net",  2,      false,        2,   3,    4,       1, {6, 6}, {3, 3},
        {1, 1}, {1, 1}, {1, 1, 1, 1}, {0}, true, CR_LISTS};
    struct data d;
    double *dw;
    ct_net_t *net = NULL;
    ct_status_t st;

    if (ct_netdef_add_gradient_ops(def, &loss, 1, &st) != CT_OK)
        fail_msg("add_gradient_ops: %s", st.msg);
    assert_int_equal(def->n_op, 7);
    assert_op_io(def->op[3], "ConstantFill", "L", "L_grad");
    assert_op_io(def->op[4], "AveragePoolGradient", "Z,L,L_grad", "Z_grad");
    assert_op_io(def->op[5], "MaxPoolGradient", "Y,Z,Z_grad", "Y_grad");
    assert_op_io(def->op[6], "ConvGradient", "X,W,Y_grad",
                 "W_grad,b_grad,X_grad");
    assert_null(find_arg(def->op[6], "no_bias"));
    assert_non_null(find_arg(def->op[6], "pad"));
    data_init(&d, &c, 31);
    data_feed(e, &c, &d);
    if (ct_net_new(e->ws, def, NULL, &net, &st) != CT_OK ||
        ct_net_run(net, &st) != CT_OK)
        fail_msg("backward net: %s", st.msg);
    /* dW from the Y_grad the net propagated. */
    dw = calloc((size_t)d.nw, sizeof(double));
    assert_non_null(dw);
    cr_conv_bwd_ref(&c, d.x, d.w, ct_tensor_cdata(tu_fetch(e->ws, "Y_grad")),
                    NULL, dw, NULL);
    cr_assert_close("net dW", ct_tensor_cdata(tu_fetch(e->ws, "W_grad")), dw,
                    d.nw, 1e-4, 1e-5);
    /* Each of the N * M pooled maps averages 3 x 3 maxima: Y_grad holds
     * 9 entries of 1/9 per map. */
    {
        const float *yg = ct_tensor_cdata(tu_fetch(e->ws, "Y_grad"));
        double sum = 0;
        int64_t i;
        for (i = 0; i < d.ny; i++)
            sum += yg[i];
        assert_true(fabs(sum - (double)(c.n * c.m)) < 1e-4);
    }
    ct_net_free(net);
    ct_netdef_free(def);
    data_free(&d);
    free(dw);
}

/* Without a bias the maker sets no_bias = 1; no_gradient_to_input = 1
 * leaves dX out (Caffe2's GetConvGradient). */
static void test_conv_gradient_maker_no_bias_no_input_gradient(void **state)
{
    ct_netdef_t *def = parse_net(
        "name: \"g\" external_input: \"X\" external_input: \"W\" "
        "op { input: \"X\" input: \"W\" output: \"Y\" type: \"Conv\" "
        "arg { name: \"kernel\" i: 1 } "
        "arg { name: \"no_gradient_to_input\" i: 1 } } "
        "op { input: \"X\" input: \"W\" output: \"Y2\" type: \"Conv\" "
        "arg { name: \"kernel\" i: 1 } }");
    const char *losses[2] = {"Y", "Y2"};
    const Caffe2__Argument *a;
    ct_status_t st;

    (void)state;
    if (ct_netdef_add_gradient_ops(def, losses, 2, &st) != CT_OK)
        fail_msg("add_gradient_ops: %s", st.msg);
    /* Two seeds, then Y2's ConvGradient, then Y's; W gets two
     * contributions, summed. */
    assert_op_io(def->op[4], "ConvGradient", "X,W,Y2_grad",
                 "W_grad_autosplit_0,X_grad");
    assert_non_null(a = find_arg(def->op[4], "no_bias"));
    assert_true(a->has_i && a->i == 1);
    assert_op_io(def->op[5], "ConvGradient", "X,W,Y_grad",
                 "W_grad_autosplit_1");
    assert_non_null(a = find_arg(def->op[5], "no_bias"));
    assert_true(a->i == 1);
    ct_netdef_free(def);
}

/* ---- tests: errors ---- */

static void test_conv_gradient_dy_shape_mismatch_returns_eshape(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 3, 5, 5}, w[4] = {4, 3, 3, 3},
                  dy[4] = {1, 4, 5, 4};
    Caffe2__OperatorDef *op = tu_op("ConvGradient", "X,W,dY", "dW,db,dX");
    ct_status_t st;

    tu_arg_i(op, "kernel", 3);
    tu_arg_i(op, "pad", 1);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, w, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 4, dy, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "dY [1, 4, 5, 4] must be [1, 4, 5, 5], the shape of "
                     "Conv(X [1, 3, 5, 5], W [4, 3, 3, 3])");
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, dy, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "W [1, 4, 5, 4] does not match");
    tu_feed(e->ws, "W", CT_DTYPE_F64, 4, w, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ETYPE,
                     "X is FLOAT but W is DOUBLE and dY is FLOAT; all must "
                     "be FLOAT");
    tu_op_free(op);
}

static void test_conv_gradient_output_count_errors(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {1, 1, 3, 3};
    Caffe2__OperatorDef *a = tu_op("ConvGradient", "X,W,dY", "dW");
    Caffe2__OperatorDef *b = tu_op("ConvGradient", "X,W,dY", "dW,dX,z");
    Caffe2__OperatorDef *c = tu_op("ConvGradient", "X,W", "dW,db");
    ct_status_t st;
    ct_op_t *op = NULL;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, x, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 4, x, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 4, x, NULL);
    tu_arg_i(a, "kernel", 3);
    tu_assert_status(&st, ct__op_create(e->ws, a, 0, &op, &st), CT_EARG,
                     "no_bias = 0: outputs are dW, db and optionally dX, got "
                     "1 output");
    tu_arg_i(b, "kernel", 3);
    tu_arg_i(b, "no_bias", 1);
    tu_assert_status(&st, ct__op_create(e->ws, b, 0, &op, &st), CT_EARG,
                     "no_bias = 1: outputs are dW and optionally dX, got 3 "
                     "outputs");
    tu_arg_i(c, "kernel", 3);
    tu_assert_status(&st, ct__op_create(e->ws, c, 0, &op, &st), CT_ESCHEMA,
                     NULL);
    assert_null(op);
    tu_op_free(a);
    tu_op_free(b);
    tu_op_free(c);
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

static void test_conv_gradient_infer_gives_shapes_and_cost(void **state)
{
    struct tu_env *e = *state;
    const int64_t x[4] = {2, 4, 6, 6}, w[4] = {6, 2, 3, 3};
    const int64_t dy[4] = {2, 6, 6, 6}, bad[4] = {2, 6, 5, 6};
    Caffe2__OperatorDef *def = tu_op("ConvGradient", "X,W,dY", "dW,db,dX");
    ct_shape_t in[3], out[3];
    ct_status_t st;
    ct_op_t *op;
    int i;

    tu_arg_i(def, "kernel", 3);
    tu_arg_i(def, "pad", 1);
    tu_arg_i(def, "group", 2);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "W", CT_DTYPE_F32, 0, NULL, NULL);
    tu_feed(e->ws, "dY", CT_DTYPE_F32, 0, NULL, NULL);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    in[0] = shape(4, x);
    in[1] = shape(4, w);
    in[2] = shape(4, dy);
    for (i = 0; i < 3; i++)
        out[i] = shape(-1, NULL);
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, 4);
    assert_memory_equal(out[0].dims, w, sizeof(w));
    assert_int_equal(out[1].ndim, 1);
    assert_int_equal(out[1].dims[0], 6);
    assert_int_equal(out[2].ndim, 4);
    assert_memory_equal(out[2].dims, x, sizeof(x));
    /* Two GEMMs of 2 * N * M * out * (C/group) * k plus N * M * out. */
    assert_true(op->schema->cost_cb(op, in) ==
                2 * (2.0 * 2 * 6 * 36 * 2 * 9) + 2.0 * 6 * 36);
    in[2] = shape(4, bad);
    ct_status_clear(&st);
    tu_assert_status(&st, op->schema->infer_cb(op, in, out, &st), CT_ESHAPE,
                     "dY [2, 6, 5, 6] must be [2, 6, 6, 6]");
    ct__op_destroy(op);
    tu_op_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_conv_gradient_case_table_matches_naive_backward),
        T(test_conv_gradient_random_cases_match_naive_backward),
        T(test_conv_gradient_matches_finite_differences),
        T(test_conv_gradient_output_variants),
        T(test_conv_gradient_empty_batch_gives_zeros),
        T(test_conv_transpose_equals_conv_gradient_dx),
        T(test_conv_gradient_alloc_failures_return_enomem_no_leak),
        T(test_conv_and_pool_gradient_makers_build_runnable_net),
        T(test_conv_gradient_maker_no_bias_no_input_gradient),
        T(test_conv_gradient_dy_shape_mismatch_returns_eshape),
        T(test_conv_gradient_output_count_errors),
        T(test_conv_gradient_infer_gives_shapes_and_cost),
#undef T
    };
    return cmocka_run_group_tests_name("ops.conv_grad", tests, NULL, NULL);
}
