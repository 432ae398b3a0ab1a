/* FC split over the pool (ct_parallel_for, one GEMM per row chunk) must
 * give the same bits run after run (chunk boundaries are fixed), and agree
 * with the serial op (one GEMM for all rows) up to rounding: a different
 * blocking of the GEMM may round differently, a corrupted row does not
 * come close.
 * Regression test: Debian's single-threaded OpenBLAS corrupted rows when
 * two threads called it at once (its buffer pool is unlocked); cortado
 * links the pthread build, which is safe for concurrent calls. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cortado/cortado.h"
#include "test_util.h"

#define M 64
#define N 500
#define K 800

static ct_engine_t *engine_with(int n_threads, int intra_op)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;

    ct_engine_config_init(&cfg);
    cfg.n_threads = n_threads;
    cfg.intra_op = intra_op;
    assert_int_equal(ct_engine_new(&cfg, &eng, &st), CT_OK);
    return eng;
}

/* Runs FC `runs` times on an engine; *out receives the first result and
 * the function fails the test if a later run differs from it or from
 * `expect` (when not NULL). */
static void run_fc(ct_engine_t *eng, int runs, const float *expect, float *out)
{
    static float x[M * K], w[N * K], b[N];
    const int64_t xd[2] = {M, K}, wd[2] = {N, K}, bd[1] = {N};
    Caffe2__OperatorDef *op = tu_op("FC", "X,W,b", "Y");
    ct_workspace_t *ws;
    ct_status_t st;
    int r;

    tu_fill_uniform(x, M * K, -1, 1, 1);
    tu_fill_uniform(w, N * K, -1, 1, 2);
    tu_fill_uniform(b, N, -1, 1, 3);
    assert_int_equal(ct_workspace_new(eng, NULL, &ws, &st), CT_OK);
    tu_feed_f32(ws, "X", 2, xd, x);
    tu_feed_f32(ws, "W", 2, wd, w);
    tu_feed_f32(ws, "b", 1, bd, b);
    for (r = 0; r < runs; r++) {
        const float *y;
        if (tu_run_op(ws, op, &st) != CT_OK)
            fail_msg("%s", st.msg);
        y = ct_tensor_cdata(tu_fetch(ws, "Y"));
        if (r == 0)
            memcpy(out, y, sizeof(float) * M * N);
        else if (memcmp(out, y, sizeof(float) * M * N) != 0)
            fail_msg("run %d differs from run 0", r);
        if (expect != NULL)
            tu_assert_close_f32(y, expect, (size_t)M * N, 1e-5f, 1e-5f);
    }
    tu_op_free(op);
    ct_workspace_free(ws);
}

static void
test_fc_parallel_rows_deterministic_and_close_to_serial(void **state)
{
    float *serial = malloc(sizeof(float) * M * N);
    float *par = malloc(sizeof(float) * M * N);
    ct_engine_t *e1 = engine_with(2, CT_INTRA_OP_SERIAL);
    ct_engine_t *e2 = engine_with(2, CT_INTRA_OP_POOL);

    (void)state;
    assert_non_null(serial);
    assert_non_null(par);
    run_fc(e1, 1, NULL, serial);
    run_fc(e2, 60, serial, par);
    ct_engine_free(e1);
    ct_engine_free(e2);
    free(serial);
    free(par);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_fc_parallel_rows_deterministic_and_close_to_serial),
    };
    return cmocka_run_group_tests_name("ops.fc_parallel", tests, NULL, NULL);
}
