/* Tests for engine/gradient.c (ct_netdef_add_gradient_ops) and the
 * gradient makers and gradient ops of ops/activation.c, fc.c,
 * elementwise.c, arith.c, softmax.c, reshape.c, copy.c and loss.c:
 * the op lists the builder emits (seeding, autosplit + Sum for blobs read
 * several times, rename-back, in-place chains, argument / device_option /
 * engine copying, is_gradient_op), every builder error with its message
 * (def unchanged), and numeric gradient checks (central differences) of
 * whole nets run with the simple executor: an MLP with SoftmaxWithLoss
 * (float), an elementwise net with broadcasting in double, and a float
 * net through Flatten, FCTransposed, Scale, Reshape, Copy, Softmax and
 * LabelCrossEntropy. */
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
#include "engine/gradient.h"
#include "net_spec.h"
#include "test_util.h"

/* ---- fixtures ---- */

struct fx {
    struct tu_env env;
    Caffe2__NetDef *def; /* library-owned (ct_netdef_free) */
    ct_net_t *net;
    ct_status_t st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    tu_env_init(&f->env);
    ct_status_clear(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ct_net_free(f->net);
    ct_netdef_free(f->def);
    tu_env_destroy(&f->env);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* A library-owned deep copy of a test-built net; frees tu (including the
 * device_option and engine the tests set by hand). */
static Caffe2__NetDef *lib_net(Caffe2__NetDef *tu)
{
    ProtobufCMessage *m = NULL;
    ct_status_t st;
    size_t i;

    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    for (i = 0; i < tu->n_op; i++) {
        Caffe2__OperatorDef *op = tu->op[i];
        free(op->device_option);
        op->device_option = NULL;
        free(op->engine);
        op->engine = NULL;
    }
    tu_net_free(tu);
    return (Caffe2__NetDef *)m;
}

static Caffe2__OperatorDef *add_op(Caffe2__NetDef *net, const char *type,
                                   const char *in, const char *out)
{
    Caffe2__OperatorDef *op = tu_op(type, in, out);

    tu_net_add_op(net, op);
    return op;
}

/* f->def: a library-owned copy of the net of the spec line `ops`
 * (net_spec.h). */
static void def_of(struct fx *f, const char *ext_in, const char *ext_out,
                   const char *ops)
{
    f->def = lib_net(tu_net_of("n", ext_in, ext_out, "", ops));
}

/* Index of the first op of `type` at or after `from`, or -1. */
static int find_op(const Caffe2__NetDef *def, const char *type, int from)
{
    int i;

    for (i = from; i < (int)def->n_op; i++)
        if (strcmp(def->op[i]->type, type) == 0)
            return i;
    return -1;
}

static void assert_io(const Caffe2__OperatorDef *op, const char *in,
                      const char *out)
{
    char buf[512], *tok, *save = NULL;
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", in);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        assert_string_equal(op->input[n++], tok);
    assert_int_equal(op->n_input, n);
    n = 0;
    snprintf(buf, sizeof(buf), "%s", out);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        assert_string_equal(op->output[n++], tok);
    assert_int_equal(op->n_output, n);
}

static bool any_name_contains(const Caffe2__NetDef *def, const char *needle)
{
    size_t i, j;

    for (i = 0; i < def->n_op; i++) {
        for (j = 0; j < def->op[i]->n_input; j++)
            if (strstr(def->op[i]->input[j], needle) != NULL)
                return true;
        for (j = 0; j < def->op[i]->n_output; j++)
            if (strstr(def->op[i]->output[j], needle) != NULL)
                return true;
    }
    return false;
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

static int add_grads(struct fx *f, const char *loss)
{
    const char *losses[1];

    losses[0] = loss;
    return ct_netdef_add_gradient_ops(f->def, losses, 1, &f->st);
}

/* add_grads(f, "L") fails with code and a message containing msg, and
 * leaves the def's n_op ops as they were. */
static void assert_grads_fail(struct fx *f, int code, const char *msg,
                              size_t n_op)
{
    tu_assert_status(&f->st, add_grads(f, "L"), code, msg);
    assert_int_equal(f->def->n_op, n_op);
}

/* A blob to feed with uniform values in [lo, hi) from seed. */
struct feed {
    const char *name;
    int ndim;
    int64_t dims[3];
    double lo, hi;
    uint64_t seed;
};

static void compile(struct fx *f)
{
    struct ct_net_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.executor = CT_EXECUTOR_SIMPLE;
    if (ct_net_new(f->env.ws, f->def, &cfg, &f->net, &f->st) != CT_OK)
        fail_msg("ct_net_new: %s", f->st.msg);
}

static void run(struct fx *f)
{
    if (ct_net_run(f->net, &f->st) != CT_OK)
        fail_msg("ct_net_run: %s", f->st.msg);
}

static double elem(const ct_tensor_t *t, int64_t i)
{
    return ct_tensor_dtype(t) == CT_DTYPE_F64
               ? ((const double *)ct_tensor_cdata(t))[i]
               : (double)((const float *)ct_tensor_cdata(t))[i];
}

static void set_elem(ct_tensor_t *t, int64_t i, double v)
{
    if (ct_tensor_dtype(t) == CT_DTYPE_F64)
        ((double *)ct_tensor_data(t))[i] = v;
    else
        ((float *)ct_tensor_data(t))[i] = (float)v;
}

static ct_tensor_t *feed_rand(ct_workspace_t *ws, const char *name,
                              ct_dtype_t dt, int nd, const int64_t *dims,
                              double lo, double hi, uint64_t seed)
{
    ct_tensor_t *t = tu_feed(ws, name, dt, nd, dims, NULL);
    int64_t i, n = ct_tensor_numel(t);
    float *tmp = calloc((size_t)n + 1, sizeof(float));

    tu_fill_uniform(tmp, (size_t)n, (float)lo, (float)hi, seed);
    for (i = 0; i < n; i++)
        set_elem(t, i, tmp[i]);
    free(tmp);
    return t;
}

static void feed_all(ct_workspace_t *ws, ct_dtype_t dt,
                     const struct feed *feeds, size_t n)
{
    size_t k;

    for (k = 0; k < n; k++)
        feed_rand(ws, feeds[k].name, dt, feeds[k].ndim, feeds[k].dims,
                  feeds[k].lo, feeds[k].hi, feeds[k].seed);
}

/* Central-difference check of d loss / d p for every element of every
 * blob in params, against the "<p>_grad" blobs the net computes. */
static void grad_check(struct fx *f, const char *loss,
                       const char *const *params, size_t n_params, double h,
                       double atol, double rtol)
{
    size_t k;
    int64_t i;

    for (k = 0; k < n_params; k++) {
        char gname[256];
        ct_tensor_t *p = tu_fetch(f->env.ws, params[k]);
        const int64_t n = ct_tensor_numel(p);
        double *ana = calloc((size_t)n + 1, sizeof(double));
        const ct_tensor_t *g;

        snprintf(gname, sizeof(gname), "%s_grad", params[k]);
        run(f);
        g = tu_fetch(f->env.ws, gname);
        assert_int_equal(ct_tensor_numel(g), n);
        for (i = 0; i < n; i++)
            ana[i] = elem(g, i);
        for (i = 0; i < n; i++) {
            const double v = elem(p, i);
            double lp, lm, num;
            set_elem(p, i, v + h);
            run(f);
            lp = elem(tu_fetch(f->env.ws, loss), 0);
            set_elem(p, i, v - h);
            run(f);
            lm = elem(tu_fetch(f->env.ws, loss), 0);
            set_elem(p, i, v);
            num = (lp - lm) / (2 * h);
            if (fabs(num - ana[i]) > atol + rtol * fabs(num))
                fail_msg("d%s/d%s[%lld]: numeric %.9g, analytic %.9g", loss,
                         params[k], (long long)i, num, ana[i]);
        }
        free(ana);
    }
}

/* ---- op lists ---- */

static void test_add_gradient_ops_fc_seeds_loss_and_copies_context(void **state)
{
    struct fx *f = *state;
    Caffe2__NetDef *tu = tu_net("n", "X,W,b", "L");
    Caffe2__OperatorDef *fc = add_op(tu, "FC", "X,W,b", "Y");
    Caffe2__DeviceOption *d = calloc(1, sizeof(*d));
    const Caffe2__OperatorDef *g;
    const Caffe2__Argument *a;
    int i;

    caffe2__device_option__init(d);
    d->has_random_seed = 1;
    d->random_seed = 7;
    fc->device_option = d;
    fc->engine = strdup("MYENGINE");
    tu_op_set_name(fc, "fc1");
    tu_arg_i(fc, "axis", 1);
    tu_arg_i(fc, "axis_w", 1);
    add_op(tu, "AveragedLoss", "Y", "L");
    f->def = lib_net(tu);
    assert_int_equal(add_grads(f, "L"), CT_OK);
    assert_int_equal(f->def->n_op, 5);
    /* The seed: ConstantFill(L) -> L_grad, value 1.0, no context. */
    g = f->def->op[2];
    assert_string_equal(g->type, "ConstantFill");
    assert_io(g, "L", "L_grad");
    a = find_arg(g, "value");
    assert_non_null(a);
    assert_true(a->has_f && a->f == 1.0f);
    assert_true(g->is_gradient_op);
    assert_io(f->def->op[3], "Y,L_grad", "Y_grad");
    assert_string_equal(f->def->op[3]->type, "AveragedLossGradient");
    g = f->def->op[4];
    assert_string_equal(g->type, "FCGradient");
    assert_io(g, "X,W,Y_grad", "W_grad,b_grad,X_grad");
    assert_true(g->has_is_gradient_op && g->is_gradient_op);
    assert_non_null(g->engine);
    assert_string_equal(g->engine, "MYENGINE");
    assert_non_null(g->device_option);
    assert_true(g->device_option->has_random_seed);
    assert_int_equal(g->device_option->random_seed, 7);
    assert_int_equal(g->n_arg, 2);
    assert_non_null(a = find_arg(g, "axis"));
    assert_int_equal(a->i, 1);
    assert_non_null(find_arg(g, "axis_w"));
    for (i = 2; i < 5; i++)
        assert_true(f->def->op[i]->is_gradient_op);
    /* The forward ops are untouched. */
    assert_false(f->def->op[0]->is_gradient_op);
    assert_string_equal(f->def->op[0]->name, "fc1");
}

static void test_add_gradient_ops_two_consumers_autosplit_and_sum(void **state)
{
    struct fx *f = *state;
    int fcg, sum, rg, tg;

    def_of(f, "X,W,b", "L",
           "FC:X,W,b>H Relu:H>A Tanh:H>B Add:A,B>C AveragedLoss:C>L");
    assert_int_equal(add_grads(f, "L"), CT_OK);
    tg = find_op(f->def, "TanhGradient", 5);
    rg = find_op(f->def, "ReluGradient", 5);
    sum = find_op(f->def, "Sum", 5);
    fcg = find_op(f->def, "FCGradient", 5);
    assert_true(tg > 0 && rg > tg && sum > rg && fcg > sum);
    /* Contributions in the order they are made (Tanh is visited first). */
    assert_io(f->def->op[tg], "B,B_grad", "H_grad_autosplit_0");
    assert_io(f->def->op[rg], "A,A_grad", "H_grad_autosplit_1");
    assert_io(f->def->op[sum], "H_grad_autosplit_0,H_grad_autosplit_1",
              "H_grad");
    assert_true(f->def->op[sum]->is_gradient_op);
    assert_int_equal(f->def->op[sum]->n_arg, 0);
    assert_io(f->def->op[fcg], "X,W,H_grad", "W_grad,b_grad,X_grad");
}

static void test_add_gradient_ops_same_blob_twice_in_one_op_sums(void **state)
{
    struct fx *f = *state;
    int mg, sum;

    def_of(f, "X", "L", "Mul:X,X>Y AveragedLoss:Y>L");
    assert_int_equal(add_grads(f, "L"), CT_OK);
    mg = find_op(f->def, "MulGradient", 0);
    sum = find_op(f->def, "Sum", 0);
    assert_true(mg > 0 && sum > mg);
    assert_io(f->def->op[mg], "Y_grad,X,X",
              "X_grad_autosplit_0,X_grad_autosplit_1");
    assert_io(f->def->op[sum], "X_grad_autosplit_0,X_grad_autosplit_1",
              "X_grad");
}

static void
test_add_gradient_ops_one_actual_contribution_renamed_back(void **state)
{
    struct fx *f = *state;

    /* X is read twice, but nothing flows back through StopGradient, and
     * the loss is read by a later op that is off the gradient path. */
    def_of(f, "X,W,b", "L",
           "FC:X,W,b>Y StopGradient:X>S AveragedLoss:Y>L Scale:L>L2");
    assert_int_equal(add_grads(f, "L"), CT_OK);
    assert_false(any_name_contains(f->def, "autosplit"));
    assert_int_equal(find_op(f->def, "Sum", 0), -1);
    assert_io(f->def->op[find_op(f->def, "ConstantFill", 0)], "L", "L_grad");
    assert_io(f->def->op[find_op(f->def, "FCGradient", 0)], "X,W,Y_grad",
              "W_grad,b_grad,X_grad");
    assert_int_equal(f->def->n_op, 7);
}

static void test_add_gradient_ops_in_place_chain_reuses_names(void **state)
{
    struct fx *f = *state;

    /* Scale's gradient reads no forward value, so Relu may overwrite Y. */
    def_of(f, "X,W,b", "L", "FC:X,W,b>Y Scale:Y>Y Relu:Y>Y AveragedLoss:Y>L");
    assert_int_equal(add_grads(f, "L"), CT_OK);
    assert_io(f->def->op[find_op(f->def, "Scale", 4)], "Y_grad", "Y_grad");
    assert_io(f->def->op[find_op(f->def, "ReluGradient", 0)], "Y,Y_grad",
              "Y_grad");
    assert_io(f->def->op[find_op(f->def, "FCGradient", 0)], "X,W,Y_grad",
              "W_grad,b_grad,X_grad");
}

static void
test_add_gradient_ops_in_place_overwrite_of_output_enotsup(void **state)
{
    struct fx *f = *state;

    /* ReluGradient needs Relu's output, which Sigmoid overwrites. */
    def_of(f, "X", "L", "Relu:X>Y Sigmoid:Y>Y AveragedLoss:Y>L");
    assert_grads_fail(f, CT_ENOTSUP,
                      "op 0 \"\" (Relu): its gradient reads \"Y\" as this "
                      "op saw it, but op 1 \"\" (Sigmoid) overwrites that "
                      "blob later",
                      3);
}

static void test_add_gradient_ops_skips_ops_off_the_path(void **state)
{
    struct fx *f = *state;

    /* An unknown type and an op without gradient, neither on the path. */
    def_of(f, "X", "L",
           "NoSuchOp:X>Z MomentumSGDUpdate:X,X,X,X>A,B,C Relu:X>Y "
           "AveragedLoss:Y>L");
    assert_int_equal(add_grads(f, "L"), CT_OK);
    assert_int_equal(f->def->n_op, 4 + 3);
}

static void test_grad_op_set_args_replace_or_append(void **state)
{
    Caffe2__NetDef *tu = tu_net("n", "X", "Y");
    Caffe2__OperatorDef *op = tu_op("Transpose", "X", "Y");
    const int64_t axes[3] = {2, 0, 1};
    const Caffe2__Argument *a;
    ProtobufCMessage *m;
    Caffe2__NetDef *def;
    ct_status_t st;

    (void)state;
    /* Through a library-owned copy: the setters use the library
     * allocator, as on the ops the builder emits. */
    tu_arg_i(op, "axis", 1);
    tu_net_add_op(tu, op);
    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    tu_net_free(tu);
    def = (Caffe2__NetDef *)m;
    op = def->op[0];
    assert_int_equal(ct__grad_op_set_int(op, "axis", 3, &st), CT_OK);
    assert_int_equal(ct__grad_op_set_float(op, "scale", 0.5f, &st), CT_OK);
    assert_int_equal(ct__grad_op_set_ints(op, "axes", axes, 3, &st), CT_OK);
    assert_int_equal(op->n_arg, 3);
    assert_non_null(a = find_arg(op, "axis"));
    assert_true(a->has_i && a->i == 3);
    assert_non_null(a = find_arg(op, "scale"));
    assert_true(a->has_f && a->f == 0.5f);
    assert_non_null(a = find_arg(op, "axes"));
    assert_int_equal(a->n_ints, 3);
    assert_int_equal(a->ints[0], 2);
    assert_int_equal(a->ints[2], 1);
    ct_netdef_free(def);
}

/* ---- errors (def unchanged) ---- */

static void test_add_gradient_ops_no_gradient_returns_enotsup(void **state)
{
    struct fx *f = *state;
    Caffe2__NetDef *tu = tu_net_of(
        "n", "g,m,lr,p,X,b", "L", "",
        "MomentumSGDUpdate:g,m,lr,p>g,m,p FC:X,p,b>Y AveragedLoss:Y>L");

    tu_op_set_name(tu->op[0], "sgd");
    f->def = lib_net(tu);
    assert_grads_fail(f, CT_ENOTSUP,
                      "op 0 \"sgd\" (MomentumSGDUpdate): MomentumSGDUpdate "
                      "has no gradient, but a gradient flows into its output "
                      "2 \"p\"",
                      3);
    assert_int_equal(f->st.node, 0);
    assert_string_equal(f->st.op, "MomentumSGDUpdate");
}

static void test_add_gradient_ops_unknown_type_returns_enotsup(void **state)
{
    struct fx *f = *state;

    def_of(f, "X", "L", "NoSuchOp:X>Y AveragedLoss:Y>L");
    assert_grads_fail(f, CT_ENOTSUP,
                      "op 0 \"\" (NoSuchOp): unknown operator type "
                      "\"NoSuchOp\" has no gradient, but a gradient flows "
                      "into its output 0 \"Y\"",
                      2);
}

static void test_add_gradient_ops_bad_losses_return_errors(void **state)
{
    struct fx *f = *state;
    const char *two[2] = {"L", "L"}, *none[1] = {"X"};

    def_of(f, "X", "L", "AveragedLoss:X>L");
    tu_assert_status(&f->st, ct_netdef_add_gradient_ops(f->def, two, 0, &f->st),
                     CT_EINVAL, "no loss blob given");
    tu_assert_status(&f->st, ct_netdef_add_gradient_ops(f->def, two, 2, &f->st),
                     CT_EINVAL, "loss blob \"L\" is given twice");
    tu_assert_status(
        &f->st, ct_netdef_add_gradient_ops(f->def, none, 1, &f->st),
        CT_ENOTFOUND, "loss blob \"X\" is not written by any op of net \"n\"");
    none[0] = "nope";
    tu_assert_status(&f->st,
                     ct_netdef_add_gradient_ops(f->def, none, 1, &f->st),
                     CT_ENOTFOUND, "loss blob \"nope\" is not written");
    assert_int_equal(f->def->n_op, 1);
}

static void
test_add_gradient_ops_overwritten_input_returns_enotsup(void **state)
{
    struct fx *f = *state;
    /* Relu (op 1) destroys what FCGradient needs. */
    Caffe2__NetDef *tu = tu_net_of("n", "X,W,b", "L", "",
                                   "FC:X,W,b>Y Relu:X>X Add:Y,X>Z "
                                   "AveragedLoss:Z>L");

    tu_op_set_name(tu->op[1], "r");
    f->def = lib_net(tu);
    assert_grads_fail(f, CT_ENOTSUP,
                      "op 0 \"\" (FC): its gradient reads \"X\" as this op "
                      "saw it, but op 1 \"r\" (Relu) overwrites that blob "
                      "later",
                      4);
}

static void test_add_gradient_ops_name_collision_returns_eexist(void **state)
{
    struct fx *f = *state;

    def_of(f, "X", "L",
           "Relu:X>Y Relu:X>Y_grad Add:Y,Y_grad>Z AveragedLoss:Z>L");
    assert_grads_fail(f, CT_EEXIST,
                      "gradient blob \"Y_grad\" (output of the gradient op "
                      "AddGradient) is already a blob of the forward net",
                      4);
}

static void
test_add_gradient_ops_gradient_into_softmax_output_enotsup(void **state)
{
    struct fx *f = *state;

    def_of(f, "X,T", "L", "SoftmaxWithLoss:X,T>P,L0 AveragedLoss:P>L");
    assert_grads_fail(f, CT_ENOTSUP,
                      "(SoftmaxWithLoss): a gradient flows into its softmax "
                      "output 0 \"P\"",
                      2);
}

/* ---- numeric gradient checks ---- */

static void test_gradient_mlp_softmax_with_loss_matches_numeric(void **state)
{
    struct fx *f = *state;
    static const struct feed feeds[] = {
        {"X", 2, {4, 5}, -1, 1, 1},   {"W1", 2, {6, 5}, -1, 1, 2},
        {"b1", 1, {6}, -0.5, 0.5, 3}, {"W2", 2, {3, 6}, -1, 1, 4},
        {"b2", 1, {3}, -0.5, 0.5, 5},
    };
    const int64_t dl[1] = {4};
    const int32_t labels[4] = {0, 2, 1, 2};
    const char *params[] = {"W1", "b1", "W2", "b2", "X"};

    f->def = lib_net(tu_net_of("mlp", "X,W1,b1,W2,b2,label", "L", "",
                               "FC:X,W1,b1>h Relu:h>h FC:h,W2,b2>logits "
                               "SoftmaxWithLoss:logits,label>P,L"));
    assert_int_equal(add_grads(f, "L"), CT_OK);
    feed_all(f->env.ws, CT_DTYPE_F32, feeds, 5);
    tu_feed(f->env.ws, "label", CT_DTYPE_I32, 1, dl, labels);
    compile(f);
    grad_check(f, "L", params, 5, 2e-3, 1e-3, 2e-2);
}

static void test_gradient_elementwise_net_double_matches_numeric(void **state)
{
    struct fx *f = *state;
    Caffe2__NetDef *tu = tu_net("ew", "X,A,B,C,E,T", "L");
    static const struct feed feeds[] = {
        {"X", 2, {3, 4}, -1, 1, 11}, {"A", 2, {3, 4}, -1, 1, 12},
        {"B", 1, {4}, -1, 1, 13},    {"C", 2, {3, 1}, -2, 2, 14},
        {"E", 1, {4}, -1, 1, 15},    {"T", 2, {3, 4}, -1, 1, 16},
    };
    const char *params[] = {"X", "A", "B", "C", "E", "T"};
    Caffe2__OperatorDef *op;

    add_op(tu, "Mul", "X,A", "M");
    add_op(tu, "Sub", "M,B", "S"); /* B [4] broadcast over rows */
    add_op(tu, "Tanh", "S", "Th");
    add_op(tu, "Sigmoid", "X", "G"); /* X read twice */
    add_op(tu, "Relu", "S", "R");    /* S read twice */
    add_op(tu, "Add", "Th,G", "U");
    add_op(tu, "Sum", "U,R,Th", "V"); /* Th read twice */
    add_op(tu, "Mul", "V,C", "W");    /* C [3, 1] broadcast over columns */
    op = add_op(tu, "Add", "W,E", "W2");
    tu_arg_i(op, "broadcast", 1); /* legacy: E [4] matches the suffix */
    add_op(tu, "SquaredL2Distance", "W2,T", "D");
    add_op(tu, "AveragedLoss", "D", "L");
    f->def = lib_net(tu);
    assert_int_equal(add_grads(f, "L"), CT_OK);
    feed_all(f->env.ws, CT_DTYPE_F64, feeds, 6);
    compile(f);
    grad_check(f, "L", params, 6, 1e-6, 1e-8, 1e-6);
}

static void test_gradient_in_place_add_and_sub_match_numeric(void **state)
{
    struct fx *f = *state;
    static const struct feed feeds[] = {
        {"X", 2, {2, 4}, -1, 1, 31},
        {"Wm", 2, {2, 4}, -1, 1, 32},
        {"B", 1, {4}, -1, 1, 33},
        {"C", 2, {2, 4}, -1, 1, 34},
    };
    const char *params[] = {"X", "Wm", "B", "C"};
    int ag;

    /* AddGradient and SubGradient then write their dA into dC itself; Add
     * and Sub run in place, B broadcast. */
    f->def = lib_net(
        tu_net_of("ip", "X,Wm,B,C", "L", "",
                  "Mul:X,Wm>H Add:H,B>H Sub:H,C>H Tanh:H>T AveragedLoss:T>L"));
    assert_int_equal(add_grads(f, "L"), CT_OK);
    ag = find_op(f->def, "AddGradient", 0);
    assert_true(ag > 0);
    assert_io(f->def->op[ag], "H_grad,H,B", "H_grad,B_grad");
    feed_all(f->env.ws, CT_DTYPE_F64, feeds, 4);
    compile(f);
    grad_check(f, "L", params, 4, 1e-6, 1e-8, 1e-6);
}

static void test_gradient_shape_ops_float_net_matches_numeric(void **state)
{
    struct fx *f = *state;
    Caffe2__NetDef *tu = tu_net("shape", "X,Wt,b,lab", "L");
    static const struct feed feeds[] = {
        {"X", 3, {2, 3, 2}, -1, 1, 21},
        {"Wt", 2, {6, 4}, -1, 1, 22},
        {"b", 1, {4}, -0.5, 0.5, 23},
    };
    const int64_t dl[1] = {2}, s42[2] = {4, 2}, s24[2] = {2, 4};
    const int32_t labels[2] = {1, 3};
    const char *params[] = {"X", "Wt", "b"};
    Caffe2__OperatorDef *op;

    add_op(tu, "Flatten", "X", "F");
    add_op(tu, "FCTransposed", "F,Wt,b", "Z");
    op = add_op(tu, "Scale", "Z", "Zs");
    tu_arg_f(op, "scale", 0.5f);
    op = add_op(tu, "Reshape", "Zs", "R,old");
    tu_arg_ints(op, "shape", 2, s42);
    add_op(tu, "Copy", "R", "Rc");
    op = add_op(tu, "Reshape", "Rc", "R2,old2");
    tu_arg_ints(op, "shape", 2, s24);
    add_op(tu, "Softmax", "R2", "P");
    add_op(tu, "FlattenToVec", "P", "Pv");
    op = add_op(tu, "Reshape", "Pv", "P2,old3");
    tu_arg_ints(op, "shape", 2, s24);
    add_op(tu, "LabelCrossEntropy", "P2,lab", "CE");
    add_op(tu, "AveragedLoss", "CE", "L");
    f->def = lib_net(tu);
    assert_int_equal(add_grads(f, "L"), CT_OK);
    assert_io(f->def->op[find_op(f->def, "ResizeLike", 0)], "Pv_grad,P",
              "P_grad");
    assert_io(f->def->op[find_op(f->def, "Reshape", 11)], "P2_grad,old3",
              "Pv_grad,_Pv_grad_dims");
    assert_int_equal(f->def->op[find_op(f->def, "Reshape", 11)]->n_arg, 0);
    feed_all(f->env.ws, CT_DTYPE_F32, feeds, 3);
    tu_feed(f->env.ws, "lab", CT_DTYPE_I32, 1, dl, labels);
    compile(f);
    grad_check(f, "L", params, 3, 2e-3, 1e-3, 2e-2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_add_gradient_ops_fc_seeds_loss_and_copies_context),
        T(test_add_gradient_ops_two_consumers_autosplit_and_sum),
        T(test_add_gradient_ops_same_blob_twice_in_one_op_sums),
        T(test_add_gradient_ops_one_actual_contribution_renamed_back),
        T(test_add_gradient_ops_in_place_chain_reuses_names),
        T(test_add_gradient_ops_in_place_overwrite_of_output_enotsup),
        T(test_add_gradient_ops_skips_ops_off_the_path),
        cmocka_unit_test(test_grad_op_set_args_replace_or_append),
        T(test_add_gradient_ops_no_gradient_returns_enotsup),
        T(test_add_gradient_ops_unknown_type_returns_enotsup),
        T(test_add_gradient_ops_bad_losses_return_errors),
        T(test_add_gradient_ops_overwritten_input_returns_enotsup),
        T(test_add_gradient_ops_name_collision_returns_eexist),
        T(test_add_gradient_ops_gradient_into_softmax_output_enotsup),
        T(test_gradient_mlp_softmax_with_loss_matches_numeric),
        T(test_gradient_elementwise_net_double_matches_numeric),
        T(test_gradient_in_place_add_and_sub_match_numeric),
        T(test_gradient_shape_ops_float_net_matches_numeric),
    };
#undef T

    return cmocka_run_group_tests_name("engine.gradient", tests, NULL, NULL);
}
