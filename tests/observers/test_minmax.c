/* Tests for observers/minmax.c (Caffe2's OutputMinMaxNetObserver, spec
 * §2.4 and §8.5): the FC example's `0 FC 0 Y 17 54`, dump_freq and the
 * `_<k>` file names, delimiters, get_info and dump_and_reset, integer and
 * unsupported dtypes, per-net files instead of Caffe2's global one, and
 * the same results under the dag executor as under simple. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "obs_test_util.h"
#include "observers/observer_impl.h"

/* FC of spec §8.5: X [[1,2],[3,4]], W [[5,6],[7,8]], b [0,1] gives
 * Y = [[17, 24], [39, 54]]. */
static void fc_net(struct ofx *f, enum ct_executor ex)
{
    static const int64_t d2[] = {2, 2}, d1[] = {2};
    static const float x[] = {1, 2, 3, 4}, w[] = {5, 6, 7, 8}, b[] = {0, 1};

    tu_feed_f32(f->env.ws, "X", 2, d2, x);
    tu_feed_f32(f->env.ws, "W", 2, d2, w);
    tu_feed_f32(f->env.ws, "b", 1, d1, b);
    f->def = tu_net("test_net", "X,W,b", "Y");
    ofx_op(f->def, "FC", NULL, "X,W,b", "Y");
    ofx_compile_ok(f, ex);
}

static void attachf(struct ofx *f, const char *fmt, ...) CT_PRINTF(2, 3);

static void attachf(struct ofx *f, const char *fmt, ...)
{
    char spec[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(spec, sizeof(spec), fmt, ap);
    va_end(ap);
    ofx_attach(f, spec);
}

static void free_net(struct ofx *f)
{
    ct_net_free(f->net);
    f->net = NULL;
}

static void test_minmax_fc_example_writes_caffe2_line(void **state)
{
    struct ofx *f = *state;

    fc_net(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s,dump_freq=1", ofx_path(f, "test_net.minmax"));
    ofx_run_ok(f);
    ofx_assert_file(ofx_path(f, "test_net_1.minmax"), "0 FC 0 Y 17 54\n");
    /* The lifetime totals go to the unsuffixed name at the end. */
    free_net(f);
    ofx_assert_file(ofx_path(f, "test_net.minmax"), "0 FC 0 Y 17 54\n");
}

static void test_minmax_dump_freq_names_files(void **state)
{
    struct ofx *f = *state;
    int k;

    fc_net(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s,dump_freq=2", ofx_path(f, "out.minmax"));
    for (k = 0; k < 5; k++)
        ofx_run_ok(f);
    ofx_assert_file(ofx_path(f, "out_1.minmax"), "0 FC 0 Y 17 54\n");
    ofx_assert_file(ofx_path(f, "out_2.minmax"), "0 FC 0 Y 17 54\n");
    assert_false(ofx_exists(ofx_path(f, "out_3.minmax")));
    /* Attaching created the base file; it holds the totals after free. */
    ofx_assert_file(ofx_path(f, "out.minmax"), "");
    free_net(f);
    ofx_assert_file(ofx_path(f, "out.minmax"), "0 FC 0 Y 17 54\n");
}

static void test_minmax_suffix_rule_without_extension(void **state)
{
    static const struct {
        const char *path;
        long long k;
        const char *want;
    } cases[] = {
        {"a/b.minmax", 1, "a/b_1.minmax"},
        {"a.d/b", 12, "a.d/b_12"},
        {"plain", 3, "plain_3"},
        {"x.y.z", 2, "x.y_2.z"},
    };
    struct ofx *f = *state;
    size_t k;

    /* The last '.' must come after the last '/' to count as an extension
     * (Caffe2's rule). */
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char *p = ct__obs_suffixed_path(cases[k].path, cases[k].k);
        assert_non_null(p);
        assert_string_equal(p, cases[k].want);
        ct_free(p);
    }
    assert_int_equal(mkdir(ofx_path(f, "a.d"), 0755), 0);
    fc_net(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s,dump_freq=1", ofx_path(f, "a.d/out"));
    ofx_run_ok(f);
    ofx_assert_file(ofx_path(f, "a.d/out_1"), "0 FC 0 Y 17 54\n");
}

static void test_minmax_delimiter_option(void **state)
{
    struct ofx *f = *state;

    fc_net(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s,delimiter=,", ofx_path(f, "comma.minmax"));
    attachf(f, "minmax=%s,delimiter=tab", ofx_path(f, "tab.minmax"));
    attachf(f, "minmax=%s,delimiter=::", ofx_path(f, "colons.minmax"));
    ofx_run_ok(f);
    free_net(f);
    ofx_assert_file(ofx_path(f, "comma.minmax"), "0,FC,0,Y,17,54\n");
    ofx_assert_file(ofx_path(f, "tab.minmax"), "0\tFC\t0\tY\t17\t54\n");
    ofx_assert_file(ofx_path(f, "colons.minmax"), "0::FC::0::Y::17::54\n");
}

static void test_minmax_get_info_and_dump_and_reset(void **state)
{
    static const int64_t d2[] = {2, 2};
    static const float x2[] = {-1, 0, 0, 0}; /* Y = [[-5, -6], [0, 1]] */
    struct ofx *f = *state;
    const struct ct_minmax_info *info;
    ct_observer_t *obs;
    size_t n;
    int rc;

    fc_net(f, CT_EXECUTOR_SIMPLE);
    obs = ofx_spec(f, "minmax=unused.minmax");
    rc = ct_minmax_observer_get_info(obs, &info, &n, &f->st);
    tu_assert_status(&f->st, rc, CT_ESTATE, "never attached");
    ct_observer_free(obs);
    attachf(f, "minmax=%s", ofx_path(f, "x.minmax"));
    obs = ct_net_get_observer(f->net, 0);
    assert_int_equal(ct_minmax_observer_get_info(obs, &info, &n, NULL), CT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(info[0].op_idx, 0);
    assert_string_equal(info[0].op_type, "FC");
    assert_int_equal(info[0].output_idx, 0);
    assert_string_equal(info[0].blob_name, "Y");
    assert_true(info[0].min == FLT_MAX && info[0].max == -FLT_MAX);
    assert_true(info[0].total_min == FLT_MAX && info[0].total_max == -FLT_MAX);

    ofx_run_ok(f);
    assert_true(info[0].min == 17 && info[0].max == 54);
    /* dump_and_reset: interval values written, then reset; totals kept */
    assert_int_equal(ct_minmax_observer_dump_and_reset(
                         obs, ofx_path(f, "d1.minmax"), false, NULL),
                     CT_OK);
    ofx_assert_file(ofx_path(f, "d1.minmax"), "0 FC 0 Y 17 54\n");
    assert_true(info[0].min == FLT_MAX && info[0].max == -FLT_MAX);
    assert_true(info[0].total_min == 17 && info[0].total_max == 54);
    assert_int_equal(ct_minmax_observer_dump_and_reset(
                         obs, ofx_path(f, "d2.minmax"), false, NULL),
                     CT_OK);
    ofx_assert_file(ofx_path(f, "d2.minmax"),
                    "0 FC 0 Y 3.40282e+38 -3.40282e+38\n");

    tu_feed_f32(f->env.ws, "X", 2, d2, x2);
    ofx_run_ok(f);
    assert_true(info[0].min == -6 && info[0].max == 1);
    assert_true(info[0].total_min == -6 && info[0].total_max == 54);
    assert_int_equal(ct_minmax_observer_dump_and_reset(
                         obs, ofx_path(f, "t.minmax"), true, NULL),
                     CT_OK);
    ofx_assert_file(ofx_path(f, "t.minmax"), "0 FC 0 Y -6 54\n");
    /* NULL file: the observer's own */
    assert_int_equal(ct_minmax_observer_dump_and_reset(obs, NULL, true, NULL),
                     CT_OK);
    ofx_assert_file(ofx_path(f, "x.minmax"), "0 FC 0 Y -6 54\n");
    rc = ct_minmax_observer_dump_and_reset(obs, "/nonexistent-ct/y", true,
                                           &f->st);
    tu_assert_status(&f->st, rc, CT_EIO,
                     "observer minmax: cannot write \"/nonexistent-ct/y\": "
                     "No such file or directory");
}

static void test_minmax_typed_getters_reject_other_kinds(void **state)
{
    struct ofx *f = *state;
    const struct ct_minmax_info *info;
    ct_observer_t *obs = ofx_spec(f, "time");
    size_t n;
    int rc;

    rc = ct_minmax_observer_get_info(obs, &info, &n, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL,
                     "ct_minmax_observer_get_info: observer \"time\" is not a "
                     "minmax observer");
    rc = ct_minmax_observer_dump_and_reset(obs, NULL, false, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "is not a minmax observer");
    rc = ct_histogram_observer_dump(obs, NULL, false, &f->st);
    tu_assert_status(&f->st, rc, CT_EINVAL, "is not a histogram observer");
    ct_observer_free(obs);
}

static void test_minmax_integer_and_unsupported_outputs(void **state)
{
    static const int64_t ints[] = {7, -2, 5}, longs[] = {-3, 40000000000};
    static const int64_t shape3[] = {3}, shape2[] = {2}, bools[] = {1, 0};
    struct ofx *f = *state;
    Caffe2__OperatorDef *op;

    f->def = tu_net("types", "", "");
    op = ofx_op(f->def, "GivenTensorIntFill", "i", "", "I");
    tu_arg_ints(op, "shape", 1, shape3);
    tu_arg_ints(op, "values", 3, ints);
    op = ofx_op(f->def, "GivenTensorInt64Fill", "l", "", "L");
    tu_arg_ints(op, "shape", 1, shape2);
    tu_arg_ints(op, "values", 2, longs);
    op = ofx_op(f->def, "GivenTensorBoolFill", "b", "", "B");
    tu_arg_ints(op, "shape", 1, shape2);
    tu_arg_ints(op, "values", 2, bools);
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s", ofx_path(f, "types.minmax"));
    ofx_run_ok(f);
    free_net(f);
    ofx_assert_file(ofx_path(f, "types.minmax"),
                    "0 GivenTensorIntFill 0 I -2 7\n"
                    "1 GivenTensorInt64Fill 0 L -3 4e+10\n"
                    "2 GivenTensorBoolFill 0 B 3.40282e+38 -3.40282e+38\n");
}

static void test_minmax_failed_run_updates_nothing(void **state)
{
    struct ofx *f = *state;
    const struct ct_minmax_info *info;
    ct_blob_t *e;
    size_t n;

    f->def = tu_net("fails", "", "");
    assert_int_equal(ct_workspace_create_blob(f->env.ws, "E", &e, NULL), CT_OK);
    ofx_fill(f->def, "a", "X", 3);
    ofx_op(f->def, "Relu", "b", "E", "Y");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s,dump_freq=1", ofx_path(f, "f.minmax"));
    assert_int_not_equal(ct_net_run(f->net, NULL), CT_OK);
    /* op 0 succeeded, but the run failed: nothing recorded or dumped */
    assert_int_equal(ct_minmax_observer_get_info(ct_net_get_observer(f->net, 0),
                                                 &info, &n, NULL),
                     CT_OK);
    assert_int_equal(n, 2);
    assert_true(info[0].max == -FLT_MAX && info[1].max == -FLT_MAX);
    assert_true(info[0].total_max == -FLT_MAX);
    assert_false(ofx_exists(ofx_path(f, "f_1.minmax")));
}

/* In-place and reused blobs: each op's values are the ones it wrote,
 * not what the blob holds at the end of the run. */
static void test_minmax_overwritten_blobs_use_op_values(void **state)
{
    struct ofx *f = *state;
    Caffe2__OperatorDef *op;

    f->def = tu_net("inplace", "", "");
    ofx_fill(f->def, "a", "X", -2);              /* X = -2 */
    ofx_op(f->def, "Relu", "b", "X", "X");       /* X = 0, in place */
    op = ofx_op(f->def, "Scale", "c", "X", "Y"); /* Y = 0 */
    tu_arg_f(op, "scale", 3);
    ofx_fill(f->def, "d", "Y", 5); /* Y = 5, same name again */
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s", ofx_path(f, "inplace.minmax"));
    ofx_run_ok(f);
    ofx_run_ok(f);
    free_net(f);
    ofx_assert_file(ofx_path(f, "inplace.minmax"), "0 ConstantFill 0 X -2 -2\n"
                                                   "1 Relu 0 X 0 0\n"
                                                   "2 Scale 0 Y 0 0\n"
                                                   "3 ConstantFill 0 Y 5 5\n");
}

/* Nothing overwritten: the observer takes no per-op hook at all. */
static void test_minmax_needs_no_op_hook_without_overwrites(void **state)
{
    struct ofx *f = *state;

    fc_net(f, CT_EXECUTOR_SIMPLE);
    attachf(f, "minmax=%s", ofx_path(f, "x.minmax"));
    assert_non_null(f->net->obs);
    assert_int_equal(f->net->obs->n_op_start, 0);
    assert_int_equal(f->net->obs->n_op_end, 0);
    ofx_run_ok(f);
    free_net(f);
    ofx_assert_file(ofx_path(f, "x.minmax"), "0 FC 0 Y 17 54\n");
}

static void test_minmax_engine_spec_writes_one_file_per_net(void **state)
{
    struct ofx *f = *state;
    char spec[300];
    Caffe2__NetDef *other;
    ct_net_t *n2;
    glob_t g;

    snprintf(spec, sizeof(spec), "minmax=%s", ofx_path(f, "out.minmax"));
    assert_int_equal(ct_engine_add_observer_spec(f->env.eng, spec, NULL),
                     CT_OK);
    fc_net(f, CT_EXECUTOR_SIMPLE);
    other = tu_net("other", "", "");
    ofx_fill(other, "fill", "F", 2);
    assert_int_equal(ct_net_new(f->env.ws, other, NULL, &n2, NULL), CT_OK);
    ofx_run_ok(f);
    assert_int_equal(ct_net_run(n2, NULL), CT_OK);
    ct_net_free(n2);
    tu_net_free(other);
    free_net(f);
    ofx_assert_file(ofx_path(f, "out.test_net.minmax"), "0 FC 0 Y 17 54\n");
    ofx_assert_file(ofx_path(f, "out.other.minmax"),
                    "0 ConstantFill 0 F 2 2\n");
    assert_false(ofx_exists(ofx_path(f, "out.minmax")));
    /* No Caffe2-style global_<timestamp>.minmax in the working folder. */
    assert_int_equal(glob("global_*.minmax", 0, NULL, &g), GLOB_NOMATCH);
}

/* ---- dag executor vs simple ---- */

/* A net with a fork: fill -> (Relu, Scale) -> Add -> Sum. */
static void fork_net(struct ofx *f, enum ct_executor ex)
{
    Caffe2__OperatorDef *op;

    f->def = tu_net("fork", "", "");
    ofx_fill(f->def, "a", "X", -2);
    ofx_op(f->def, "Relu", "b", "X", "R");
    op = ofx_op(f->def, "Scale", "c", "X", "S");
    tu_arg_f(op, "scale", 3);
    ofx_op(f->def, "Add", "d", "R,S", "T");
    ofx_op(f->def, "Sum", "e", "T,X,S", "U");
    ofx_compile_ok(f, ex);
}

static void observe_fork(struct ofx *f, enum ct_executor ex, const char *tag,
                         uint64_t *op_runs)
{
    uint64_t runs;
    int k;

    fork_net(f, ex);
    attachf(f, "minmax=%s/%s.minmax,dump_freq=2", f->dir, tag);
    attachf(f, "histogram=%s/%s.hist,nbins=8", f->dir, tag);
    attachf(f, "runcount");
    for (k = 0; k < 4; k++)
        ofx_run_ok(f);
    assert_int_equal(ct_runcount_observer_get(ct_net_get_observer(f->net, 2),
                                              &runs, op_runs, NULL),
                     CT_OK);
    assert_int_equal(runs, 4);
    free_net(f);
    tu_net_free(f->def);
    f->def = NULL;
}

static void assert_same_file(struct ofx *f, const char *a, const char *b)
{
    char *x = ofx_read(ofx_path(f, a)), *y = ofx_read(ofx_path(f, b));

    assert_non_null(x);
    assert_non_null(y);
    assert_true(x[0] != '\0');
    assert_string_equal(x, y);
    free(x);
    free(y);
}

static void test_observers_on_dag_match_simple(void **state)
{
    struct ofx *f = *state;
    uint64_t op_runs_simple, op_runs_dag;

    observe_fork(f, CT_EXECUTOR_SIMPLE, "simple", &op_runs_simple);
    assert_int_equal(op_runs_simple, 4 * 5);
    observe_fork(f, CT_EXECUTOR_DAG, "dag", &op_runs_dag);
    assert_int_equal(op_runs_dag, op_runs_simple);
    assert_same_file(f, "simple.minmax", "dag.minmax");
    assert_same_file(f, "simple_1.minmax", "dag_1.minmax");
    assert_same_file(f, "simple_2.minmax", "dag_2.minmax");
    assert_same_file(f, "simple.hist", "dag.hist");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ofx_setup, ofx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_minmax_fc_example_writes_caffe2_line),
        T(test_minmax_dump_freq_names_files),
        T(test_minmax_suffix_rule_without_extension),
        T(test_minmax_delimiter_option),
        T(test_minmax_get_info_and_dump_and_reset),
        T(test_minmax_typed_getters_reject_other_kinds),
        T(test_minmax_integer_and_unsupported_outputs),
        T(test_minmax_failed_run_updates_nothing),
        T(test_minmax_overwritten_blobs_use_op_values),
        T(test_minmax_needs_no_op_hook_without_overwrites),
        T(test_minmax_engine_spec_writes_one_file_per_net),
        T(test_observers_on_dag_match_simple),
    };
#undef T
    return cmocka_run_group_tests_name("observers.minmax", tests, NULL, NULL);
}
