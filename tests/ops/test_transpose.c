/* Tests for ops/transpose.c: Transpose against a naive multi-index
 * reference over one case table (2-d to 6-d, default reversed axes,
 * identity, dims of extent 1, mergeable dims, empty tensors), every
 * element size (1, 2, 4, 8 bytes), errors with their messages and shape
 * inference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/gradient.h"
#include "cortado/net.h"
#include "cortado/proto.h"
#include "ops/op_impl.h"
#include "op_test.h"
#include "test_util.h"

struct tr_case {
    const char *what;
    int nd;
    int64_t d[6];
    int n_axes; /* 0: default (reverse) */
    int64_t axes[6];
};

static const struct tr_case cases[] = {
    {"matrix default", 2, {3, 5}, 0, {0}},
    {"matrix explicit", 2, {4, 7}, 2, {1, 0}},
    {"identity", 3, {2, 3, 4}, 3, {0, 1, 2}},
    {"NCHW -> NHWC", 4, {2, 3, 4, 5}, 4, {0, 2, 3, 1}},
    {"NHWC -> NCHW", 4, {2, 4, 5, 3}, 4, {0, 3, 1, 2}},
    {"3-d default", 3, {2, 3, 4}, 0, {0}},
    {"mergeable", 4, {2, 3, 4, 5}, 4, {2, 3, 0, 1}},
    {"ones", 4, {1, 3, 1, 5}, 4, {2, 3, 0, 1}},
    {"6-d", 6, {2, 1, 3, 2, 2, 3}, 6, {5, 3, 0, 4, 1, 2}},
    {"empty", 3, {2, 0, 3}, 3, {2, 0, 1}},
    {"1-d", 1, {7}, 0, {0}},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static void ref_transpose(const struct tr_case *c, const int32_t *x, int32_t *y)
{
    int64_t yd[6], xs[6], idx[6] = {0}, n = 1, s = 1, i;
    int perm[6], k;

    for (k = 0; k < c->nd; k++)
        perm[k] = c->n_axes ? (int)c->axes[k] : c->nd - 1 - k;
    for (k = c->nd - 1; k >= 0; k--) {
        xs[k] = s;
        s *= c->d[k];
    }
    for (k = 0; k < c->nd; k++) {
        yd[k] = c->d[perm[k]];
        n *= yd[k];
    }
    for (i = 0; i < n; i++) {
        int64_t off = 0, r = i;
        for (k = c->nd - 1; k >= 0; k--) {
            idx[k] = r % yd[k];
            r /= yd[k];
        }
        for (k = 0; k < c->nd; k++)
            off += idx[k] * xs[perm[k]];
        y[i] = x[off];
    }
}

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;

    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static Caffe2__OperatorDef *tr_op(const struct tr_case *c)
{
    Caffe2__OperatorDef *op = tu_op("Transpose", "X", "Y");

    if (c->n_axes > 0)
        tu_arg_ints(op, "axes", (size_t)c->n_axes, c->axes);
    return op;
}

static void test_transpose_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct tr_case *c = &cases[ci];
        const int64_t n = numel(c->nd, c->d);
        int32_t *x = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        int32_t *want = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        Caffe2__OperatorDef *op = tr_op(c);
        const ct_tensor_t *y;
        ct_status_t st;
        int64_t i;
        int k;

        for (i = 0; i < n; i++)
            x[i] = (int32_t)(i * 7 + 3);
        ref_transpose(c, x, want);
        tu_feed(e->ws, "X", CT_DTYPE_I32, c->nd, c->d, x);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        y = tu_fetch(e->ws, "Y");
        assert_int_equal(ct_tensor_ndim(y), c->nd);
        for (k = 0; k < c->nd; k++)
            assert_int_equal(ct_tensor_dim(y, k),
                             c->d[c->n_axes ? c->axes[k] : c->nd - 1 - k]);
        if (n > 0)
            assert_memory_equal(ct_tensor_cdata(y), want,
                                (size_t)n * sizeof(int32_t));
        tu_op_free(op);
        free(x);
        free(want);
    }
}

static void test_transpose_every_element_size(void **state)
{
    struct tu_env *e = *state;
    static const ct_dtype_t dts[] = {CT_DTYPE_U8,  CT_DTYPE_F16, CT_DTYPE_F32,
                                     CT_DTYPE_F64, CT_DTYPE_I64, CT_DTYPE_BOOL};
    const struct tr_case *c = &cases[3];
    Caffe2__OperatorDef *op = tr_op(c);
    const int64_t n = numel(c->nd, c->d);
    int32_t x32[120], want32[120];
    size_t k;
    int64_t i;

    for (i = 0; i < n; i++)
        x32[i] = (int32_t)i;
    ref_transpose(c, x32, want32);
    for (k = 0; k < sizeof(dts) / sizeof(dts[0]); k++) {
        const size_t es = ct_dtype_size(dts[k]);
        unsigned char x[120 * 8], want[120 * 8];
        ct_status_t st;
        /* Element i holds bytes derived from i (bool: 0 / 1). */
        for (i = 0; i < n; i++) {
            size_t b;
            for (b = 0; b < es; b++) {
                x[i * (int64_t)es + (int64_t)b] =
                    dts[k] == CT_DTYPE_BOOL
                        ? (unsigned char)(i % 2)
                        : (unsigned char)(i * 3 + (int64_t)b);
                want[i * (int64_t)es + (int64_t)b] =
                    dts[k] == CT_DTYPE_BOOL
                        ? (unsigned char)(want32[i] % 2)
                        : (unsigned char)(want32[i] * 3 + (int64_t)b);
            }
        }
        tu_feed(e->ws, "X", dts[k], c->nd, c->d, x);
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
        assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "Y")), dts[k]);
        assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "Y")), want,
                            (size_t)n * es);
    }
    tu_op_free(op);
}

static void test_transpose_default_axes_follow_each_rank(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *op = tu_op("Transpose", "X", "Y");
    const int64_t d2[2] = {2, 3}, d3[3] = {2, 3, 4};
    ct_status_t st;

    /* Caffe2 freezes the reversed axes at the first run's rank. */
    tu_feed_f32(e->ws, "X", 2, d2, NULL);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    tu_feed_f32(e->ws, "X", 3, d3, NULL);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "Y"), 0), 4);
    tu_op_free(op);
}

static void test_transpose_errors(void **state)
{
    struct tu_env *e = *state;
    static const int64_t dup[3] = {0, 1, 1}, out[2] = {0, 2}, neg[2] = {-1, 0},
                         ok[3] = {2, 0, 1};
    Caffe2__OperatorDef *a = tu_op("Transpose", "X", "Y");
    Caffe2__OperatorDef *b = tu_op("Transpose", "X", "Y");
    Caffe2__OperatorDef *c = tu_op("Transpose", "X", "Y");
    Caffe2__OperatorDef *rank = tu_op("Transpose", "X", "Y");
    Caffe2__OperatorDef *str = tu_op("Transpose", "X", "Y");
    Caffe2__OperatorDef *inplace = tu_op("Transpose", "X", "X");
    const int64_t d2[2] = {2, 3};
    const char *s[6] = {"a", "b", "c", "d", "e", "f"};
    ct_status_t st;

    tu_arg_ints(a, "axes", 3, dup);
    tu_arg_ints(b, "axes", 2, out);
    tu_arg_ints(c, "axes", 2, neg);
    tu_arg_ints(rank, "axes", 3, ok);
    tu_feed_f32(e->ws, "X", 2, d2, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, a, &st), CT_EARG,
                     "Axes should be a permutation of 0 to ndim. (axes[2] = "
                     "1 with 3 axes)");
    tu_assert_status(&st, tu_run_op(e->ws, b, &st), CT_EARG,
                     "Axes should be a permutation");
    tu_assert_status(&st, tu_run_op(e->ws, c, &st), CT_EARG, "axes[0] = -1");
    tu_assert_status(&st, tu_run_op(e->ws, rank, &st), CT_ESHAPE,
                     "axes has 3 entries but X [2, 3] has 2 dims");
    tu_assert_status(&st, tu_run_op(e->ws, inplace, &st), CT_ESCHEMA,
                     "in-place");
    tu_feed(e->ws, "X", CT_DTYPE_STRING, 2, d2, s);
    tu_assert_status(&st, tu_run_op(e->ws, str, &st), CT_ENOTSUP,
                     "unsupported dtype STRING for X");
    tu_op_free(a);
    tu_op_free(b);
    tu_op_free(c);
    tu_op_free(rank);
    tu_op_free(str);
    tu_op_free(inplace);
}

static void test_transpose_infer(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *def = tr_op(&cases[3]);
    const int64_t d[4] = {2, 3, 4, 5}, want[4] = {2, 4, 5, 3};
    ct_shape_t in[1], out[1];
    ct_status_t st;
    ct_op_t *op;
    int rc;

    tu_feed_f32(e->ws, "X", 4, d, NULL);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    in[0].dtype = CT_DTYPE_F32;
    in[0].ndim = 4;
    memcpy(in[0].dims, d, sizeof(d));
    assert_int_equal(op->schema->infer_cb(op, in, out, &st), CT_OK);
    assert_memory_equal(out[0].dims, want, sizeof(want));
    in[0].ndim = 3;
    ct_status_clear(&st);
    rc = op->schema->infer_cb(op, in, out, &st);
    tu_assert_status(&st, rc, CT_ESHAPE, "axes has 4 entries");
    ct__op_destroy(op);
    tu_op_free(def);
}

/* A one-op net X -> op -> Y with the gradient of Y; the library copy of
 * it (ct_netdef_add_gradient_ops needs one) is returned. */
static ct_netdef_t *grad_net(Caffe2__OperatorDef *op, const char *loss)
{
    Caffe2__NetDef *net = tu_net("g", "X", "");
    ct_netdef_t *copy;
    ct_status_t st;

    tu_net_add_op(net, op);
    assert_int_equal(ct_proto_copy(&net->base, (ProtobufCMessage **)&copy, &st),
                     CT_OK);
    tu_net_free(net);
    if (ct_netdef_add_gradient_ops(copy, &loss, 1, &st) != CT_OK)
        fail_msg("gradient: %s", st.msg);
    return copy;
}

static void run_net(struct tu_env *e, const ct_netdef_t *def)
{
    ct_net_t *net;
    ct_status_t st;

    if (ct_net_new(e->ws, def, NULL, &net, &st) != CT_OK ||
        ct_net_run(net, &st) != CT_OK)
        fail_msg("%s", st.msg);
    ct_net_free(net);
}

static void test_transpose_gradient_uses_inverse_axes(void **state)
{
    struct tu_env *e = *state;
    static const int64_t axes[3] = {1, 2, 0}, d[3] = {2, 3, 4};
    Caffe2__OperatorDef *op = tu_op("Transpose", "X", "Y");
    ct_netdef_t *def;
    const ct_tensor_t *dx;
    const Caffe2__OperatorDef *g;

    tu_arg_ints(op, "axes", 3, axes);
    def = grad_net(op, "Y");
    g = def->op[def->n_op - 1];
    assert_string_equal(g->type, "Transpose");
    assert_string_equal(g->input[0], "Y_grad");
    assert_string_equal(g->output[0], "X_grad");
    assert_int_equal(g->arg[0]->ints[0], 2);
    assert_int_equal(g->arg[0]->ints[1], 0);
    assert_int_equal(g->arg[0]->ints[2], 1);
    tu_feed_f32(e->ws, "X", 3, d, NULL);
    run_net(e, def);
    dx = tu_fetch(e->ws, "X_grad");
    assert_int_equal(ct_tensor_ndim(dx), 3);
    assert_memory_equal(ct_tensor_dims(dx), d, sizeof(d));
    ct_netdef_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_transpose_case_table_matches_reference),
        T(test_transpose_every_element_size),
        T(test_transpose_default_axes_follow_each_rank),
        T(test_transpose_errors),
        T(test_transpose_infer),
        T(test_transpose_gradient_uses_inverse_axes),
#undef T
    };
    return cmocka_run_group_tests_name("ops.transpose", tests, NULL, NULL);
}
