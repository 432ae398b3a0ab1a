/* Tests for ops/concat_split.c: Concat and Split against a naive
 * reference over one case table (axis, negative axis, order NCHW / NHWC,
 * add_axis, unequal extents, empty pieces), split_info, Split from the
 * argument, the input tensor and equal parts, Concat -> Split round trips,
 * other dtypes (strings included), errors with their messages and shape
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

#define NO_AXIS (-100)

struct cs_case {
    const char *what;
    int nd;
    int64_t d[3][4]; /* three inputs */
    int axis;        /* NO_AXIS: from order */
    const char *order;
    bool add_axis;
    int canon; /* canonical axis of the output */
};

static const struct cs_case cases[] = {
    {"default order (axis 1)",
     3,
     {{2, 1, 3}, {2, 4, 3}, {2, 2, 3}},
     NO_AXIS,
     NULL,
     false,
     1},
    {"axis 0", 2, {{1, 3}, {2, 3}, {3, 3}}, 0, NULL, false, 0},
    {"axis -1", 3, {{2, 2, 1}, {2, 2, 3}, {2, 2, 2}}, -1, NULL, false, 2},
    {"order NHWC",
     4,
     {{1, 2, 2, 3}, {1, 2, 2, 1}, {1, 2, 2, 2}},
     NO_AXIS,
     "NHWC",
     false,
     3},
    {"empty piece", 2, {{2, 0}, {2, 3}, {2, 1}}, 1, NULL, false, 1},
    {"add_axis 0", 2, {{2, 3}, {2, 3}, {2, 3}}, 0, NULL, true, 0},
    {"add_axis at the end", 2, {{2, 3}, {2, 3}, {2, 3}}, 2, NULL, true, 2},
    {"add_axis middle", 2, {{2, 3}, {2, 3}, {2, 3}}, 1, NULL, true, 1},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static int64_t numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;

    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

/* Naive concat by multi-index: output element (before, a, after) takes
 * input i's element at (before, a - offset_i, after). */
static void ref_concat(const struct cs_case *c, float *const *x, float *y,
                       int64_t *yd, int *ynd)
{
    const int ax = c->canon;
    int64_t before = 1, after = 1, ext[3], total = 0, off = 0;
    int i, k, j;

    for (k = 0; k < c->nd; k++) {
        if (k < ax)
            before *= c->d[0][k];
        else if (c->add_axis || k > ax)
            after *= c->d[0][k];
    }
    for (i = 0; i < 3; i++) {
        ext[i] = c->add_axis ? 1 : c->d[i][ax];
        total += ext[i];
    }
    *ynd = c->nd + (c->add_axis ? 1 : 0);
    /* Input dims with the axis replaced (or inserted). */
    for (k = 0, j = 0; k < *ynd; k++) {
        if (k == ax) {
            yd[k] = total;
            if (!c->add_axis)
                j++;
        } else {
            yd[k] = c->d[0][j++];
        }
    }
    for (i = 0; i < 3; i++) {
        int64_t b, a, t;
        for (b = 0; b < before; b++)
            for (a = 0; a < ext[i]; a++)
                for (t = 0; t < after; t++)
                    y[(b * total + off + a) * after + t] =
                        x[i][(b * ext[i] + a) * after + t];
        off += ext[i];
    }
}

static void add_axis_args(Caffe2__OperatorDef *op, const struct cs_case *c)
{
    if (c->axis != NO_AXIS)
        tu_arg_i(op, "axis", c->axis);
    if (c->order != NULL)
        tu_arg_s(op, "order", c->order);
    if (c->add_axis)
        tu_arg_i(op, "add_axis", 1);
}

static void test_concat_case_table_matches_reference(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct cs_case *c = &cases[ci];
        Caffe2__OperatorDef *op = tu_op("Concat", "A,B,C", "Y,info");
        float *x[3], *want;
        int64_t yd[5], total = 0;
        const char *names[3] = {"A", "B", "C"};
        const int32_t *info;
        const ct_tensor_t *y;
        ct_status_t st;
        int i, ynd;

        for (i = 0; i < 3; i++) {
            const int64_t n = numel(c->nd, c->d[i]);
            x[i] = malloc((size_t)(n ? n : 1) * sizeof(float));
            tu_fill_uniform(x[i], (size_t)n, -5, 5, 10 * ci + (size_t)i);
            tu_feed_f32(e->ws, names[i], c->nd, c->d[i], x[i]);
            total += n;
        }
        want = malloc((size_t)(total ? total : 1) * sizeof(float));
        ref_concat(c, x, want, yd, &ynd);
        add_axis_args(op, c);
        if (tu_run_op(e->ws, op, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        y = tu_fetch(e->ws, "Y");
        assert_int_equal(ct_tensor_ndim(y), ynd);
        assert_memory_equal(ct_tensor_dims(y), yd,
                            (size_t)ynd * sizeof(int64_t));
        tu_assert_close_f32(ct_tensor_cdata(y), want, (size_t)total, 0, 0);
        info = ct_tensor_cdata(tu_fetch(e->ws, "info"));
        assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "info")),
                         CT_DTYPE_I32);
        for (i = 0; i < 3; i++)
            assert_int_equal(info[i], c->add_axis ? 1 : c->d[i][c->canon]);
        tu_op_free(op);
        for (i = 0; i < 3; i++)
            free(x[i]);
        free(want);
    }
}

static void test_split_inverts_concat_for_every_case(void **state)
{
    struct tu_env *e = *state;
    size_t ci;

    for (ci = 0; ci < N_CASES; ci++) {
        const struct cs_case *c = &cases[ci];
        Caffe2__OperatorDef *cat = tu_op("Concat", "A,B,C", "Y,info");
        Caffe2__OperatorDef *by_input = tu_op("Split", "Y,info", "P,Q,R");
        const char *in[3] = {"A", "B", "C"}, *out[3] = {"P", "Q", "R"};
        ct_status_t st;
        int i;

        for (i = 0; i < 3; i++) {
            const int64_t n = numel(c->nd, c->d[i]);
            float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
            tu_fill_uniform(x, (size_t)n, -5, 5, 77 + (size_t)i);
            tu_feed_f32(e->ws, in[i], c->nd, c->d[i], x);
            free(x);
        }
        add_axis_args(cat, c);
        add_axis_args(by_input, c);
        if (tu_run_op(e->ws, cat, &st) != CT_OK ||
            tu_run_op(e->ws, by_input, &st) != CT_OK)
            fail_msg("%s: %s", c->what, st.msg);
        for (i = 0; i < 3; i++) {
            const ct_tensor_t *a = tu_fetch(e->ws, in[i]);
            const ct_tensor_t *p = tu_fetch(e->ws, out[i]);
            assert_int_equal(ct_tensor_ndim(p), c->nd);
            assert_memory_equal(ct_tensor_dims(p), c->d[i],
                                (size_t)c->nd * sizeof(int64_t));
            if (ct_tensor_numel(a) > 0)
                assert_memory_equal(ct_tensor_cdata(p), ct_tensor_cdata(a),
                                    ct_tensor_nbytes(a));
        }
        tu_op_free(cat);
        tu_op_free(by_input);
    }
}

static void test_split_from_argument_and_equal_parts(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *arg = tu_op("Split", "X", "P,Q");
    Caffe2__OperatorDef *eq = tu_op("Split", "X", "P,Q,R");
    const int64_t d[2] = {2, 6}, split[2] = {4, 2};
    const float x[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const float p[8] = {0, 1, 2, 3, 6, 7, 8, 9}, q[4] = {4, 5, 10, 11};
    const float r[4] = {4, 5, 10, 11};
    ct_status_t st;

    tu_arg_i(arg, "axis", 1);
    tu_arg_ints(arg, "split", 2, split);
    tu_arg_i(eq, "axis", -1);
    tu_feed_f32(e->ws, "X", 2, d, x);
    assert_int_equal(tu_run_op(e->ws, arg, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "P")), p, sizeof(p));
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "Q")), q, sizeof(q));
    assert_int_equal(tu_run_op(e->ws, eq, &st), CT_OK);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "R"), 1), 2);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "R")), r, sizeof(r));
    tu_op_free(arg);
    tu_op_free(eq);
}

static void test_concat_split_other_dtypes(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *cat = tu_op("Concat", "A,B", "Y");
    Caffe2__OperatorDef *split = tu_op("Split", "Y", "P,Q");
    const int64_t da[2] = {2, 1}, db[2] = {2, 2};
    const char *sa[2] = {"a", "bb"}, *sb[4] = {"c", "", "dd", "e"};
    const int64_t ia[2] = {1, 2}, ib[4] = {3, 4, 5, 6};
    const int64_t iw[6] = {1, 3, 4, 2, 5, 6};
    const char *sw[6] = {"a", "c", "", "bb", "dd", "e"};
    const ct_str_t *ys;
    ct_status_t st;
    int i;

    tu_feed(e->ws, "A", CT_DTYPE_I64, 2, da, ia);
    tu_feed(e->ws, "B", CT_DTYPE_I64, 2, db, ib);
    assert_int_equal(tu_run_op(e->ws, cat, &st), CT_OK);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "Y")), iw, sizeof(iw));
    tu_feed(e->ws, "A", CT_DTYPE_STRING, 2, da, sa);
    tu_feed(e->ws, "B", CT_DTYPE_STRING, 2, db, sb);
    assert_int_equal(tu_run_op(e->ws, cat, &st), CT_OK);
    ys = ct_tensor_cdata(tu_fetch(e->ws, "Y"));
    for (i = 0; i < 6; i++) {
        assert_int_equal(ys[i].len, strlen(sw[i]));
        if (ys[i].len > 0)
            assert_memory_equal(ys[i].data, sw[i], ys[i].len);
    }
    /* Split of strings: equal halves along axis 1 needs an even extent. */
    tu_feed(e->ws, "Y", CT_DTYPE_STRING, 2, db, sb);
    assert_int_equal(tu_run_op(e->ws, split, &st), CT_OK);
    ys = ct_tensor_cdata(tu_fetch(e->ws, "Q"));
    assert_int_equal(ys[0].len, 0);
    assert_int_equal(ys[1].len, 1);
    assert_memory_equal(ys[1].data, "e", 1);
    tu_op_free(cat);
    tu_op_free(split);
}

static void test_concat_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *both = tu_op("Concat", "A,B", "Y");
    Caffe2__OperatorDef *order = tu_op("Concat", "A,B", "Y");
    Caffe2__OperatorDef *ax = tu_op("Concat", "A,B", "Y");
    Caffe2__OperatorDef *plain = tu_op("Concat", "A,B", "Y,info");
    Caffe2__OperatorDef *added = tu_op("Concat", "A,B", "Y");
    const int64_t d23[2] = {2, 3}, d33[2] = {3, 3}, d2[1] = {2};
    ct_status_t st;

    tu_arg_i(both, "axis", 1);
    tu_arg_s(both, "order", "NCHW");
    tu_arg_s(order, "order", "NWHC");
    tu_arg_i(ax, "axis", 2);
    tu_arg_i(added, "axis", 0);
    tu_arg_i(added, "add_axis", 1);
    tu_feed_f32(e->ws, "A", 2, d23, NULL);
    tu_feed_f32(e->ws, "B", 2, d33, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, both, &st), CT_EARG,
                     "You shouldn't specify both the dim to concat");
    tu_assert_status(&st, tu_run_op(e->ws, order, &st), CT_EARG,
                     "Unsupported storage order: NWHC");
    tu_assert_status(&st, tu_run_op(e->ws, ax, &st), CT_ESHAPE,
                     "axis 2 is out of range for input 0 [2, 3] (2 dims)");
    tu_assert_status(&st, tu_run_op(e->ws, plain, &st), CT_ESHAPE,
                     "input 1 [3, 3] does not match input 0 [2, 3]: inputs "
                     "may differ only along axis 1");
    tu_feed_f32(e->ws, "B", 2, d23, NULL);
    tu_feed_f32(e->ws, "A", 2, d23, NULL);
    tu_feed(e->ws, "B", CT_DTYPE_I32, 2, d23, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, plain, &st), CT_ETYPE,
                     "All inputs must have the same type, expected: FLOAT "
                     "but got: INT32 for input: 1");
    tu_feed_f32(e->ws, "B", 1, d2, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, plain, &st), CT_ESHAPE,
                     "input 1 [2] does not match input 0 [2, 3]");
    tu_feed_f32(e->ws, "B", 2, d33, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, added, &st), CT_ESHAPE,
                     "(and not at all with add_axis)");
    tu_op_free(both);
    tu_op_free(order);
    tu_op_free(ax);
    tu_op_free(plain);
    tu_op_free(added);
}

static void test_split_errors(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *both = tu_op("Split", "X,S", "P,Q");
    Caffe2__OperatorDef *count = tu_op("Split", "X", "P,Q");
    Caffe2__OperatorDef *uneven = tu_op("Split", "X", "P,Q,R,T");
    Caffe2__OperatorDef *sum = tu_op("Split", "X", "P,Q");
    Caffe2__OperatorDef *neg = tu_op("Split", "X", "P,Q");
    Caffe2__OperatorDef *by_input = tu_op("Split", "X,S", "P,Q");
    Caffe2__OperatorDef *ax = tu_op("Split", "X", "P,Q");
    Caffe2__OperatorDef *adder = tu_op("Split", "X", "P,Q");
    const int64_t d[2] = {2, 6}, two = 2, three = 3, s1[1] = {6},
                  s3[3] = {1, 2, 3}, s2[2] = {2, 3}, sn[2] = {-2, 8};
    const int32_t si[3] = {1, 2, 3};
    ct_status_t st;

    tu_arg_ints(both, "split", 2, s2);
    tu_arg_ints(count, "split", 3, s3);
    tu_arg_ints(sum, "split", 2, s2);
    tu_arg_ints(neg, "split", 2, sn);
    tu_arg_i(ax, "axis", -3);
    tu_arg_i(adder, "axis", 1);
    tu_arg_i(adder, "add_axis", 1);
    (void)s1;
    tu_feed_f32(e->ws, "X", 2, d, NULL);
    tu_feed(e->ws, "S", CT_DTYPE_I32, 1, &two, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, both, &st), CT_EARG,
                     "If you set split with an input blob, do not pass in "
                     "split in the argument.");
    tu_assert_status(&st, tu_run_op(e->ws, count, &st), CT_EARG,
                     "split has 3 values, 2 outputs");
    tu_assert_status(&st, tu_run_op(e->ws, uneven, &st), CT_ESHAPE,
                     "should be divisible by the output size (6 along the "
                     "axis, 4 outputs)");
    tu_assert_status(&st, tu_run_op(e->ws, sum, &st), CT_ESHAPE,
                     "Sum of split dimensions do not match: should be 6, "
                     "got 5");
    tu_assert_status(&st, tu_run_op(e->ws, neg, &st), CT_EARG,
                     "split extent 0 is negative (-2)");
    tu_feed(e->ws, "S", CT_DTYPE_I32, 1, &three, si);
    tu_assert_status(&st, tu_run_op(e->ws, by_input, &st), CT_ESHAPE,
                     "the split input has 3 values for 2 outputs");
    tu_feed(e->ws, "S", CT_DTYPE_I64, 1, &two, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, by_input, &st), CT_ETYPE,
                     "the split input \"S\" is INT64, want INT32");
    tu_assert_status(&st, tu_run_op(e->ws, ax, &st), CT_ESHAPE,
                     "axis -3 is out of range for X [2, 6]");
    tu_assert_status(&st, tu_run_op(e->ws, adder, &st), CT_ESHAPE,
                     "should be 6, got 2 (add_axis: one output per slice)");
    tu_op_free(both);
    tu_op_free(count);
    tu_op_free(uneven);
    tu_op_free(sum);
    tu_op_free(neg);
    tu_op_free(by_input);
    tu_op_free(ax);
    tu_op_free(adder);
}

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

static void test_concat_split_infer(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *cdef = tu_op("Concat", "A,B", "Y,info");
    Caffe2__OperatorDef *sdef = tu_op("Split", "Y", "P,Q");
    Caffe2__OperatorDef *tdef = tu_op("Split", "Y,S", "P,Q");
    const int64_t da[3] = {2, 3, 4}, db[3] = {2, 5, 4}, split[2] = {6, 2};
    ct_shape_t in[2], out[2];
    ct_status_t st;
    ct_op_t *cat, *split_op, *tsplit;

    tu_feed_f32(e->ws, "A", 3, da, NULL);
    tu_feed_f32(e->ws, "B", 3, db, NULL);
    tu_feed_f32(e->ws, "Y", 3, db, NULL);
    tu_feed(e->ws, "S", CT_DTYPE_I32, 1, &da[0], NULL);
    tu_arg_ints(sdef, "split", 2, split);
    assert_int_equal(ct__op_create(e->ws, cdef, 0, &cat, &st), CT_OK);
    assert_int_equal(ct__op_create(e->ws, sdef, 1, &split_op, &st), CT_OK);
    assert_int_equal(ct__op_create(e->ws, tdef, 2, &tsplit, &st), CT_OK);
    in[0] = shape(3, da);
    in[1] = shape(3, db);
    out[0] = shape(-1, NULL);
    out[1] = shape(-1, NULL);
    assert_int_equal(cat->schema->infer_cb(cat, in, out, &st), CT_OK);
    assert_int_equal(out[0].dims[1], 8);
    assert_int_equal(out[1].dtype, CT_DTYPE_I32);
    assert_int_equal(out[1].dims[0], 2);
    assert_true(cat->schema->cost_cb(cat, in) == 64);
    in[0] = out[0];
    out[0] = shape(-1, NULL);
    out[1] = shape(-1, NULL);
    assert_int_equal(split_op->schema->infer_cb(split_op, in, out, &st), CT_OK);
    assert_int_equal(out[0].dims[1], 6);
    assert_int_equal(out[1].dims[1], 2);
    /* A split given as a tensor: extents unknown until run time. */
    out[0] = shape(-1, NULL);
    assert_int_equal(tsplit->schema->infer_cb(tsplit, in, out, &st), CT_OK);
    assert_int_equal(out[0].ndim, -1);
    ct__op_destroy(cat);
    ct__op_destroy(split_op);
    ct__op_destroy(tsplit);
    tu_op_free(cdef);
    tu_op_free(sdef);
    tu_op_free(tdef);
}

static ct_netdef_t *grad_net(Caffe2__OperatorDef *op, const char *ext,
                             const char *loss)
{
    Caffe2__NetDef *net = tu_net("g", ext, "");
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

static void test_concat_split_gradients(void **state)
{
    struct tu_env *e = *state;
    Caffe2__OperatorDef *cat = tu_op("Concat", "A,B", "Y,info");
    Caffe2__OperatorDef *split = tu_op("Split", "Y", "P,Q");
    const int64_t da[2] = {2, 3}, db[2] = {2, 5}, dy[2] = {2, 8};
    const int64_t sp[2] = {6, 2};
    const Caffe2__OperatorDef *g;
    ct_netdef_t *def;

    tu_arg_i(cat, "axis", 1);
    def = grad_net(cat, "A,B", "Y");
    g = def->op[def->n_op - 1];
    assert_string_equal(g->type, "Split");
    assert_int_equal(g->n_input, 2);
    assert_string_equal(g->input[1], "info");
    assert_string_equal(g->output[1], "B_grad");
    tu_feed_f32(e->ws, "A", 2, da, NULL);
    tu_feed_f32(e->ws, "B", 2, db, NULL);
    run_net(e, def);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "B_grad"), 1), 5);
    ct_netdef_free(def);

    tu_arg_ints(split, "split", 2, sp);
    /* Both outputs need a gradient: make the loss a Sum of them. */
    {
        Caffe2__NetDef *net = tu_net("g", "Y", "");
        ct_status_t st;
        const char *loss = "L";
        tu_net_add_op(net, split);
        tu_net_add_op(net, tu_op("Concat", "P,Q", "L,L_info"));
        assert_int_equal(
            ct_proto_copy(&net->base, (ProtobufCMessage **)&def, &st), CT_OK);
        tu_net_free(net);
        if (ct_netdef_add_gradient_ops(def, &loss, 1, &st) != CT_OK)
            fail_msg("gradient: %s", st.msg);
    }
    g = def->op[def->n_op - 1];
    assert_string_equal(g->type, "Concat");
    assert_string_equal(g->output[0], "Y_grad");
    assert_string_equal(g->output[1], "_Y_grad_dims");
    tu_feed_f32(e->ws, "Y", 2, dy, NULL);
    run_net(e, def);
    assert_memory_equal(ct_tensor_dims(tu_fetch(e->ws, "Y_grad")), dy,
                        sizeof(dy));
    ct_netdef_free(def);
}

static void test_concat_gradient_without_split_info_fails(void **state)
{
    Caffe2__NetDef *net = tu_net("g", "A,B", "");
    ct_netdef_t *def;
    ct_status_t st;
    const char *loss = "Y";

    (void)state;
    tu_net_add_op(net, tu_op("Concat", "A,B", "Y"));
    assert_int_equal(ct_proto_copy(&net->base, (ProtobufCMessage **)&def, &st),
                     CT_OK);
    tu_net_free(net);
    tu_assert_status(&st, ct_netdef_add_gradient_ops(def, &loss, 1, &st),
                     CT_ENOTSUP, "needs its split_info output");
    ct_netdef_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_env_setup, tu_env_teardown)
        T(test_concat_case_table_matches_reference),
        T(test_split_inverts_concat_for_every_case),
        T(test_split_from_argument_and_equal_parts),
        T(test_concat_split_other_dtypes),
        T(test_concat_errors),
        T(test_split_errors),
        T(test_concat_split_infer),
        T(test_concat_split_gradients),
        T(test_concat_gradient_without_split_info_fails),
#undef T
    };
    return cmocka_run_group_tests_name("ops.concat_split", tests, NULL, NULL);
}
