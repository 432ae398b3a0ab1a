/* Tests for observers/histogram.c (Caffe2's HistogramNetObserver with
 * dnnlowp's DynamicHistogram, spec §2.5): the 7 + nbins column line, the
 * counts on known inputs (range growth and remapping included; expected
 * values from a float32 model of dnnlowp's algorithm), interval vs total,
 * dump_freq, delimiter, op_filter, integer outputs and the 2048-bin
 * default. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "obs_test_util.h"

/* X (fed) -> Copy -> Y, with a histogram observer of spec_opts. */
static ct_observer_t *copy_net(struct ofx *f, const char *opts)
{
    char spec[400];

    f->def = tu_net("hnet", "X", "Y");
    ofx_op(f->def, "Copy", "copy", "X", "Y");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "histogram=%s%s", ofx_path(f, "h.hist"), opts);
    return ofx_attach(f, spec);
}

static void feed(struct ofx *f, const float *x, int64_t n)
{
    tu_feed_f32(f->env.ws, "X", 1, &n, x);
}

static void dump_is(struct ofx *f, ct_observer_t *obs, bool total,
                    const char *want)
{
    const char *p = ofx_path(f, total ? "total.hist" : "interval.hist");

    assert_int_equal(ct_histogram_observer_dump(obs, p, total, &f->st), CT_OK);
    ofx_assert_file(p, want);
}

static void test_histogram_known_input_counts(void **state)
{
    static const float a[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const float b[] = {-5, 20, 0.5f, 7.25f};
    struct ofx *f = *state;
    ct_observer_t *obs = copy_net(f, ",nbins=4");

    /* Never updated: Caffe2's FLT_MAX / lowest and empty bins. */
    dump_is(f, obs, false, "0 Copy 0 Y 3.40282e+38 -3.40282e+38 4 0 0 0 0\n");
    feed(f, a, 10);
    ofx_run_ok(f);
    /* 16 inner bins of 0.5625 over [0, 9], remapped into 4 of 2.25. */
    dump_is(f, obs, false, "0 Copy 0 Y 0 9 4 3 2 2 3\n");
    /* The interval histogram was reset by that dump. */
    dump_is(f, obs, false, "0 Copy 0 Y 3.40282e+38 -3.40282e+38 4 0 0 0 0\n");
    feed(f, b, 4);
    ofx_run_ok(f);
    dump_is(f, obs, false, "0 Copy 0 Y -5 20 4 2 1 0 1\n");
    /* The total grew from [0, 9] to [-9, 27] and was remapped. */
    dump_is(f, obs, true, "0 Copy 0 Y -5 20 4 3 7 3 1\n");
    /* Dumping totals resets nothing. */
    dump_is(f, obs, true, "0 Copy 0 Y -5 20 4 3 7 3 1\n");
}

static void test_histogram_constant_data_goes_to_bin_0(void **state)
{
    static const float c[] = {1.5f, 1.5f, 1.5f};
    struct ofx *f = *state;
    ct_observer_t *obs = copy_net(f, ",nbins=8");

    feed(f, c, 3);
    ofx_run_ok(f);
    dump_is(f, obs, false, "0 Copy 0 Y 1.5 1.5 8 3 0 0 0 0 0 0 0\n");
}

static void test_histogram_default_nbins_2048_columns(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs = copy_net(f, "");
    float x[1000];
    char *text, *tok, *save = NULL;
    int words = 0, nonzero = 0, k;
    unsigned long long sum = 0;

    for (k = 0; k < 1000; k++)
        x[k] = (float)k * 0.37f - 3;
    feed(f, x, 1000);
    ofx_run_ok(f);
    assert_int_equal(
        ct_histogram_observer_dump(obs, ofx_path(f, "d.hist"), false, NULL),
        CT_OK);
    text = ofx_read(ofx_path(f, "d.hist"));
    assert_non_null(text);
    for (tok = strtok_r(text, " \n", &save); tok != NULL;
         tok = strtok_r(NULL, " \n", &save), words++) {
        if (words == 4)
            assert_string_equal(tok, "-3");
        if (words == 5)
            assert_string_equal(tok, "366.63");
        if (words == 6)
            assert_string_equal(tok, "2048");
        if (words >= 7) {
            unsigned long long c = strtoull(tok, NULL, 10);
            sum += c;
            nonzero += c != 0;
        }
    }
    free(text);
    assert_int_equal(words, 7 + 2048);
    assert_int_equal(sum, 1000);
    assert_int_equal(nonzero, 1000); /* one value per other bin */
}

static void test_histogram_integer_outputs(void **state)
{
    static const int64_t vals[] = {3, -1, 4, 1, -5, 9}, shape[] = {6};
    struct ofx *f = *state;
    Caffe2__OperatorDef *op;
    char spec[300];

    f->def = tu_net("ints", "", "");
    op = ofx_op(f->def, "GivenTensorIntFill", "i", "", "I");
    tu_arg_ints(op, "shape", 1, shape);
    tu_arg_ints(op, "values", 6, vals);
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec), "histogram=%s,nbins=4", ofx_path(f, "i.hist"));
    ofx_attach(f, spec);
    ofx_run_ok(f);
    ct_net_free(f->net); /* flush: the interval histograms */
    f->net = NULL;
    ofx_assert_file(ofx_path(f, "i.hist"),
                    "0 GivenTensorIntFill 0 I -5 9 4 1 2 2 1\n");
}

static void test_histogram_dump_freq_delimiter_filter(void **state)
{
    static const float a[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const float b[] = {-5, 20, 0.5f, 7.25f};
    struct ofx *f = *state;
    char spec[300];

    feed(f, a, 10);
    f->def = tu_net("two", "X", "");
    ofx_op(f->def, "Copy", "copy", "X", "Y");
    ofx_op(f->def, "Relu", "relu", "Y", "Z");
    ofx_compile_ok(f, CT_EXECUTOR_SIMPLE);
    snprintf(spec, sizeof(spec),
             "histogram=%s,nbins=4,dump_freq=1,delimiter=,,op_filter=Relu",
             ofx_path(f, "r.hist"));
    ofx_attach(f, spec);
    ofx_run_ok(f);
    feed(f, b, 4);
    ofx_run_ok(f);
    /* op_idx is the Relu's position in the net */
    ofx_assert_file(ofx_path(f, "r_1.hist"), "1,Relu,0,Z,0,9,4,3,2,2,3\n");
    /* Relu(b) = [0, 20, 0.5, 7.25] */
    ofx_assert_file(ofx_path(f, "r_2.hist"), "1,Relu,0,Z,0,20,4,2,1,0,1\n");
    ct_net_free(f->net);
    f->net = NULL;
    /* The final flush writes the interval (empty since the last dump), as
     * Caffe2's destructor does, not the totals. */
    ofx_assert_file(ofx_path(f, "r.hist"),
                    "1,Relu,0,Z,3.40282e+38,-3.40282e+38,4,0,0,0,0\n");
}

static void test_histogram_filter_matching_nothing_writes_empty(void **state)
{
    struct ofx *f = *state;
    ct_observer_t *obs = copy_net(f, ",op_filter=Conv");
    char *text;

    ofx_run_ok(f);
    assert_int_equal(ct_observer_flush(obs, NULL), CT_OK);
    ofx_assert_file(ofx_path(f, "h.hist"), "");
    assert_int_equal(ct_observer_describe(obs, &text, NULL), CT_OK);
    assert_non_null(strstr(text, "histogram: 0 outputs of 1 ops, 2048 bins"));
    ct_free(text);
}

static int setup_fed(void **state)
{
    static const float one[] = {1};
    struct ofx *f;
    int64_t n = 1;

    if (ofx_setup(state) != 0)
        return -1;
    f = *state;
    tu_feed_f32(f->env.ws, "X", 1, &n, one);
    return 0;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_fed, ofx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_histogram_known_input_counts),
        T(test_histogram_constant_data_goes_to_bin_0),
        T(test_histogram_default_nbins_2048_columns),
        T(test_histogram_integer_outputs),
        T(test_histogram_dump_freq_delimiter_filter),
        T(test_histogram_filter_matching_nothing_writes_empty),
    };
#undef T
    return cmocka_run_group_tests_name("observers.histogram", tests, NULL,
                                       NULL);
}
