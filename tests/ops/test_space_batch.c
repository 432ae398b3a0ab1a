/* Tests for ops/space_batch.c: SpaceToBatch and BatchToSpace against a
 * naive reference of the spec §5 index maps for random shapes, pads (each
 * of pad_t, pad_l, pad_b, pad_r independent), block sizes (fused 2-4 and
 * generic), both layouts and several dtypes; BatchToSpace(SpaceToBatch(x))
 * == x; tiled runs on a 2-thread pool equal serial runs; every validation
 * error of the reliability checklist (D1-D7) with its message; empty
 * tensors; shape inference; the gradients (each op's is the other, with
 * the arguments copied) by a numeric check in double. */
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
#include "engine/op_internal.h"
#include "ops/op_impl.h"
#include "scheduler/pool.h"
#include "op_test.h"
#include "test_util.h"

/* ---- the reference ---- */

struct sb_args {
    int64_t bs, pt, pl, pb, pr;
    bool nhwc;
};

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Linear index of (b, c, h, w) in a tensor of NCHW sizes (n, c, h, w). */
static size_t at(const struct sb_args *a, int64_t C, int64_t H, int64_t W,
                 int64_t b, int64_t c, int64_t h, int64_t w)
{
    if (a->nhwc)
        return (size_t)(((b * H + h) * W + w) * C + c);
    return (size_t)(((b * C + c) * H + h) * W + w);
}

/* Spec §5.1, per output element. */
static void s2b_ref(const struct sb_args *a, const char *x, int64_t n,
                    int64_t c, int64_t h, int64_t w, size_t esz, char *y)
{
    const int64_t bs = a->bs, oh_n = (h + a->pt + a->pb) / bs,
                  ow_n = (w + a->pl + a->pr) / bs, ob_n = n * bs * bs;
    int64_t ob, d, oh, ow;

    for (ob = 0; ob < ob_n; ob++)
        for (d = 0; d < c; d++)
            for (oh = 0; oh < oh_n; oh++)
                for (ow = 0; ow < ow_n; ow++) {
                    const int64_t ib = ob % n, k = ob / n;
                    const int64_t off_w = k % bs, off_h = k / bs;
                    const int64_t ih = oh * bs + off_h - a->pt;
                    const int64_t iw = ow * bs + off_w - a->pl;
                    char *dst = y + at(a, c, oh_n, ow_n, ob, d, oh, ow) * esz;
                    if (ih >= 0 && ih < h && iw >= 0 && iw < w)
                        memcpy(dst, x + at(a, c, h, w, ib, d, ih, iw) * esz,
                               esz);
                    else
                        memset(dst, 0, esz);
                }
}

/* Spec §5.2, per input element. */
static void b2s_ref(const struct sb_args *a, const char *x, int64_t nb,
                    int64_t c, int64_t hb, int64_t wb, size_t esz, char *y)
{
    const int64_t bs = a->bs, ob_n = nb / (bs * bs);
    const int64_t oh_n = hb * bs - a->pt - a->pb,
                  ow_n = wb * bs - a->pl - a->pr;
    int64_t ib, d, ih, iw;

    for (ib = 0; ib < nb; ib++)
        for (d = 0; d < c; d++)
            for (ih = 0; ih < hb; ih++)
                for (iw = 0; iw < wb; iw++) {
                    const int64_t ob = ib % ob_n, k = ib / ob_n;
                    const int64_t off_w = k % bs, off_h = k / bs;
                    const int64_t oh = ih * bs + off_h - a->pt;
                    const int64_t ow = iw * bs + off_w - a->pl;
                    if (oh >= 0 && oh < oh_n && ow >= 0 && ow < ow_n)
                        memcpy(y + at(a, c, oh_n, ow_n, ob, d, oh, ow) * esz,
                               x + at(a, c, hb, wb, ib, d, ih, iw) * esz, esz);
                }
}

/* ---- helpers ---- */

static Caffe2__OperatorDef *sb_op(const char *type, const char *in,
                                  const char *out, const struct sb_args *a)
{
    Caffe2__OperatorDef *op = tu_op(type, in, out);

    tu_arg_i(op, "block_size", a->bs);
    tu_arg_i(op, "pad_t", a->pt);
    tu_arg_i(op, "pad_l", a->pl);
    tu_arg_i(op, "pad_b", a->pb);
    tu_arg_i(op, "pad_r", a->pr);
    tu_arg_s(op, "order", a->nhwc ? "NHWC" : "NCHW");
    return op;
}

static void dims4(const struct sb_args *a, int64_t n, int64_t c, int64_t h,
                  int64_t w, int64_t *d)
{
    d[0] = n;
    if (a->nhwc) {
        d[1] = h, d[2] = w, d[3] = c;
    } else {
        d[1] = c, d[2] = h, d[3] = w;
    }
}

static void fill_bytes(char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (char)(rnd() >> 24);
}

static int run1(ct_workspace_t *ws, const char *type, const struct sb_args *a,
                const char *in, const char *out, ct_status_t *st)
{
    Caffe2__OperatorDef *op = sb_op(type, in, out, a);
    int rc = tu_run_op(ws, op, st);

    tu_op_free(op);
    return rc;
}

static void assert_bytes(const ct_tensor_t *t, const char *want, size_t n,
                         const char *what)
{
    assert_int_equal(ct_tensor_nbytes(t), n);
    if (n > 0 && memcmp(ct_tensor_cdata(t), want, n) != 0)
        fail_msg("%s: output differs from the reference", what);
}

static const ct_dtype_t dtypes[] = {CT_DTYPE_F32,  CT_DTYPE_F64, CT_DTYPE_U8,
                                    CT_DTYPE_I16,  CT_DTYPE_F16, CT_DTYPE_I64,
                                    CT_DTYPE_BOOL, CT_DTYPE_I32};

/* One random case of both ops against the reference, and the round
 * trip. */
static void check_case(struct tu_env *e, const struct sb_args *a, int64_t n,
                       int64_t c, int64_t h, int64_t w, ct_dtype_t dt)
{
    const size_t esz = ct_dtype_size(dt);
    const int64_t bs = a->bs, oh = (h + a->pt + a->pb) / bs,
                  ow = (w + a->pl + a->pr) / bs;
    int64_t dx[4], dy[4];
    size_t nx = (size_t)(n * c * h * w) * esz,
           ny = (size_t)(n * bs * bs * c * oh * ow) * esz;
    char *x = malloc(nx + 1), *y = malloc(ny + 1), *z = malloc(ny + 1),
         *back = malloc(nx + 1);
    char what[200];
    ct_status_t st;
    int64_t i;

    snprintf(what, sizeof(what),
             "%s %s [%lld,%lld,%lld,%lld] bs %lld pads t%lld l%lld b%lld r%lld",
             a->nhwc ? "NHWC" : "NCHW", ct_dtype_name(dt), (long long)n,
             (long long)c, (long long)h, (long long)w, (long long)bs,
             (long long)a->pt, (long long)a->pl, (long long)a->pb,
             (long long)a->pr);
    fill_bytes(x, nx);
    dims4(a, n, c, h, w, dx);
    tu_feed(e->ws, "X", dt, 4, dx, x);
    if (run1(e->ws, "SpaceToBatch", a, "X", "Y", &st) != CT_OK)
        fail_msg("%s: SpaceToBatch: %s", what, st.msg);
    s2b_ref(a, x, n, c, h, w, esz, y);
    dims4(a, n * bs * bs, c, oh, ow, dy);
    for (i = 0; i < 4; i++)
        assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "Y"), (int)i), dy[i]);
    assert_bytes(tu_fetch(e->ws, "Y"), y, ny, what);
    /* Round trip: the padding is cropped away again. */
    if (run1(e->ws, "BatchToSpace", a, "Y", "Xb", &st) != CT_OK)
        fail_msg("%s: BatchToSpace: %s", what, st.msg);
    assert_bytes(tu_fetch(e->ws, "Xb"), x, nx, what);
    /* BatchToSpace of random data (padding positions not zero). */
    fill_bytes(z, ny);
    tu_feed(e->ws, "B", dt, 4, dy, z);
    if (run1(e->ws, "BatchToSpace", a, "B", "S", &st) != CT_OK)
        fail_msg("%s: BatchToSpace: %s", what, st.msg);
    memset(back, 0x5a, nx);
    b2s_ref(a, z, n * bs * bs, c, oh, ow, esz, back);
    assert_bytes(tu_fetch(e->ws, "S"), back, nx, what);
    free(x);
    free(y);
    free(z);
    free(back);
}

/* Pads with (size + lo + hi) % bs == 0: hi adjusted upwards. */
static void random_pads(int64_t size, int64_t bs, int64_t *lo, int64_t *hi)
{
    *lo = rnd_in(0, 3);
    *hi = rnd_in(0, 3);
    *hi += (bs - (size + *lo + *hi) % bs) % bs;
}

/* ---- against the reference ---- */

static void test_space_batch_random_cases_match_reference(void **state)
{
    struct tu_env *e = *state;
    int it;

    for (it = 0; it < 400; it++) {
        struct sb_args a;
        const int64_t n = rnd_in(1, 3), c = rnd_in(1, 4), h = rnd_in(1, 9),
                      w = rnd_in(1, 11);
        a.bs = rnd_in(1, 6);
        a.nhwc = rnd() & 1;
        random_pads(h, a.bs, &a.pt, &a.pb);
        random_pads(w, a.bs, &a.pl, &a.pr);
        check_case(e, &a, n, c, h, w,
                   dtypes[rnd() % (sizeof(dtypes) / sizeof(dtypes[0]))]);
    }
}

static void
test_space_batch_unit_sizes_and_wide_rows_match_reference(void **state)
{
    struct tu_env *e = *state;
    /* NHWC units of 4, 8, 12, 16, 24, 32, 40 and 64 bytes; rows wide
     * enough for the fused interior and several tiles. */
    static const int64_t cs[] = {1, 2, 3, 4, 6, 8, 10, 16};
    struct sb_args a = {2, 1, 3, 1, 1, true};
    size_t i;

    for (i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
        check_case(e, &a, 2, cs[i], 6, 36, CT_DTYPE_F32);
    a.nhwc = false;
    a.bs = 4, a.pt = 2, a.pb = 2, a.pl = 5, a.pr = 3;
    check_case(e, &a, 2, 3, 132, 260, CT_DTYPE_F32);
    a.bs = 3, a.pt = 0, a.pb = 0, a.pl = 0, a.pr = 0;
    check_case(e, &a, 1, 2, 9, 300, CT_DTYPE_U8);
    a.bs = 2, a.pt = 7, a.pb = 5, a.pl = 9, a.pr = 7; /* pads > block */
    check_case(e, &a, 1, 1, 4, 4, CT_DTYPE_F64);
    a.bs = 5, a.pt = 1, a.pb = 0, a.pl = 2, a.pr = 1; /* generic bs */
    check_case(e, &a, 2, 2, 9, 12, CT_DTYPE_I16);
}

/* The SSE2 row kernels (bs 2 and 4, units of 1, 2, 4 and 8 bytes) and
 * their tails: fused widths 1..17 groups around the vector widths (16,
 * 8, 4 and 2 groups), rows that start off the 16-byte grid (odd widths,
 * left pads shifting the fused interior), several rows per tile (the
 * next-row prefetch) and NHWC units of two elements. */
static void test_space_batch_simd_rows_and_tails_match_reference(void **state)
{
    static const ct_dtype_t dts[] = {CT_DTYPE_U8,  CT_DTYPE_I16, CT_DTYPE_F16,
                                     CT_DTYPE_F32, CT_DTYPE_I32, CT_DTYPE_F64,
                                     CT_DTYPE_I64};
    static const int64_t bss[] = {2, 4};
    struct tu_env *e = *state;
    size_t bi, di;
    int64_t wb, pi;

    for (bi = 0; bi < 2; bi++) {
        const int64_t bs = bss[bi];
        for (wb = 1; wb <= 17; wb++) {
            for (pi = 0; pi < 3; pi++) {
                /* pads (left, right): none, a partial block on both
                 * sides, a full block and one more on the left. */
                const int64_t pl = pi == 0 ? 0 : pi == 1 ? 1 : bs + 1;
                const int64_t pr = pi == 0 ? 0 : pi == 1 ? bs - 1 : bs - 1;
                const int64_t w = wb * bs - pl - pr;
                struct sb_args a;
                if (w < 1)
                    continue;
                a.bs = bs;
                a.pt = pi, a.pb = (bs - (3 * bs + pi) % bs) % bs;
                a.pl = pl, a.pr = pr;
                for (di = 0; di < sizeof(dts) / sizeof(dts[0]); di++) {
                    a.nhwc = false;
                    check_case(e, &a, 1, 2, 3 * bs, w, dts[di]);
                    a.nhwc = true;
                    check_case(e, &a, 1, (int64_t)(di % 2) + 1, 3 * bs, w,
                               dts[di]);
                }
            }
        }
    }
}

static void test_space_to_batch_caffe2_example_shape(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 3, 5, 5};
    Caffe2__OperatorDef *op = tu_op("SpaceToBatch", "X", "Y");
    const ct_tensor_t *y;
    ct_status_t st;

    tu_arg_i(op, "pad", 2);
    tu_arg_i(op, "block_size", 3);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dx, NULL);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dim(y, 0), 9);
    assert_int_equal(ct_tensor_dim(y, 1), 3);
    assert_int_equal(ct_tensor_dim(y, 2), 3);
    assert_int_equal(ct_tensor_dim(y, 3), 3);
    tu_op_free(op);
}

static void test_space_to_batch_block_size_default_is_2(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 1, 2, 2};
    const float x[4] = {1, 2, 3, 4};
    Caffe2__OperatorDef *op = tu_op("SpaceToBatch", "X", "Y");
    const ct_tensor_t *y;
    ct_status_t st;

    tu_feed_f32(e->ws, "X", 4, dx, x);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_dim(y, 0), 4);
    /* ob = (off_h * 2 + off_w) * N + b */
    tu_assert_close_f32(ct_tensor_cdata(y), x, 4, 0, 0);
    tu_op_free(op);
}

/* ---- tiles on a pool ---- */

static void run_on_pool(struct tu_env *e, struct ct__pool *pool,
                        const char *type, const struct sb_args *a,
                        const char *in, const char *out)
{
    Caffe2__OperatorDef *def = sb_op(type, in, out, a);
    ct_status_t st, node_st;
    ct_op_ctx_t ctx;
    ct_op_t *op;

    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    memset(&ctx, 0, sizeof(ctx));
    ctx.op = op;
    ctx.eng = e->eng;
    ctx.nth = ct__pool_n_threads(pool);
    ctx.numa_node = -1;
    ctx.status = &node_st;
    ctx.sched = pool;
    if (ct__op_run(&ctx) != CT_OK)
        fail_msg("%s on the pool: %s", type, node_st.msg);
    ct__op_destroy(op);
    tu_op_free(def);
}

static void test_space_batch_pool_tiles_equal_serial(void **state)
{
    struct tu_env *e = *state, par;
    struct ct_engine_config cfg;
    struct ct__pool_config pcfg;
    struct ct__pool *pool;
    const int64_t dx[4] = {3, 5, 67, 130};
    struct sb_args a = {2, 1, 2, 0, 0, false};
    const size_t nx = 3 * 5 * 67 * 130 * sizeof(float);
    char *x = malloc(nx);
    ct_status_t st;
    int order;

    /* The fixture's engine may have one thread: a 2-thread engine runs the
     * tiles on its own pool (ct_parallel_for), and on an explicit pool
     * handed in as ctx->sched. */
    ct_engine_config_init(&cfg);
    cfg.n_threads = 2;
    assert_int_equal(ct_engine_new(&cfg, &par.eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(par.eng, NULL, &par.ws, &st), CT_OK);
    ct__pool_config_init(&pcfg);
    pcfg.n_threads = 2;
    pcfg.bind = false;
    assert_int_equal(ct__pool_new(&pcfg, &pool, &st), CT_OK);
    fill_bytes(x, nx);
    for (order = 0; order < 2; order++) {
        const ct_tensor_t *ys, *yp, *ye;
        a.nhwc = order == 1;
        /* Even padded sizes: NCHW H 67, W 130; NHWC H 5, W 67. */
        a.pb = 0;
        a.pr = a.nhwc ? 1 : 0;
        tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dx, x);
        tu_feed(par.ws, "X", CT_DTYPE_F32, 4, dx, x);
        assert_int_equal(run1(e->ws, "SpaceToBatch", &a, "X", "Ys", &st),
                         CT_OK);
        assert_int_equal(run1(par.ws, "SpaceToBatch", &a, "X", "Ye", &st),
                         CT_OK);
        run_on_pool(&par, pool, "SpaceToBatch", &a, "X", "Yp");
        ys = tu_fetch(e->ws, "Ys");
        yp = tu_fetch(par.ws, "Yp");
        ye = tu_fetch(par.ws, "Ye");
        assert_int_equal(ct_tensor_nbytes(ys), ct_tensor_nbytes(yp));
        assert_memory_equal(ct_tensor_cdata(ys), ct_tensor_cdata(yp),
                            ct_tensor_nbytes(ys));
        assert_memory_equal(ct_tensor_cdata(ys), ct_tensor_cdata(ye),
                            ct_tensor_nbytes(ys));
        run_on_pool(&par, pool, "BatchToSpace", &a, "Yp", "Xp");
        assert_memory_equal(ct_tensor_cdata(tu_fetch(par.ws, "Xp")), x, nx);
        assert_int_equal(run1(par.ws, "BatchToSpace", &a, "Ye", "Xe", &st),
                         CT_OK);
        assert_memory_equal(ct_tensor_cdata(tu_fetch(par.ws, "Xe")), x, nx);
    }
    ct__pool_free(pool);
    tu_env_destroy(&par);
    free(x);
}

/* ---- validation (D1-D7) ---- */

static void expect_error(struct tu_env *e, const char *type, const char *arg,
                         int64_t v, const int64_t *dx, int code,
                         const char *needle)
{
    Caffe2__OperatorDef *op = tu_op(type, "X", "Y");
    ct_status_t st;

    if (arg != NULL)
        tu_arg_i(op, arg, v);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dx, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), code, needle);
    tu_op_free(op);
}

static void test_space_batch_bad_block_size_returns_earg(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 1, 2, 2};
    static const int64_t bad[] = {0, -1, INT32_MIN, -1879048192};
    char needle[64];
    size_t i;
    int k;

    for (k = 0; k < 2; k++) {
        const char *type = k == 0 ? "SpaceToBatch" : "BatchToSpace";
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(needle, sizeof(needle), "block_size=%lld must be >= 1",
                     (long long)bad[i]);
            expect_error(e, type, "block_size", bad[i], dx, CT_EARG, needle);
        }
        expect_error(e, type, "block_size", INT64_MAX, dx, CT_EARG,
                     "block_size=9223372036854775807 is too large: "
                     "block_size^2 overflows int64");
        expect_error(e, type, "block_size", INT64_C(3037000500), dx, CT_EARG,
                     "block_size=3037000500 is too large");
    }
}

static void test_space_batch_bad_pads_and_order_return_earg(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 1, 2, 2};
    static const char *const pads[] = {"pad_t", "pad_l", "pad_b", "pad_r"};
    Caffe2__OperatorDef *op;
    ct_status_t st;
    char needle[64];
    size_t i;

    expect_error(e, "SpaceToBatch", "pad", -2, dx, CT_EARG,
                 "pad=-2 must be >= 0");
    for (i = 0; i < 4; i++) {
        snprintf(needle, sizeof(needle), "%s=-1 must be >= 0", pads[i]);
        expect_error(e, "SpaceToBatch", pads[i], -1, dx, CT_EARG, needle);
        snprintf(needle, sizeof(needle), "%s=%d must be >= 0", pads[i],
                 INT32_MIN);
        expect_error(e, "BatchToSpace", pads[i], INT32_MIN, dx, CT_EARG,
                     needle);
    }
    op = tu_op("SpaceToBatch", "X", "Y");
    tu_arg_s(op, "order", "NCWH");
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EARG,
                     "order \"NCWH\" must be \"NCHW\" or \"NHWC\"");
    tu_op_free(op);
    op = tu_op("SpaceToBatch", "X", "Y");
    tu_arg_f(op, "block_size", 2.0f);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EARG, "block_size");
    tu_op_free(op);
}

static void test_space_batch_bad_shapes_return_eshape(void **state)
{
    struct tu_env *e = *state;
    const int64_t d3[3] = {1, 2, 2}, odd_h[4] = {1, 1, 3, 2},
                  odd_w[4] = {1, 1, 2, 5}, b10[4] = {10, 3, 32, 32},
                  small[4] = {4, 1, 2, 2};
    Caffe2__OperatorDef *op;
    ct_status_t st;

    op = tu_op("SpaceToBatch", "X", "Y");
    tu_feed(e->ws, "X", CT_DTYPE_F32, 3, d3, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESHAPE,
                     "SpaceToBatch: input must be 4-D (N, C, H, W), got 3-D "
                     "[1, 2, 2]");
    tu_op_free(op);
    expect_error(e, "SpaceToBatch", "pad_t", 0, odd_h, CT_ESHAPE,
                 "padded height H + pad_t + pad_b = 3 + 0 + 0 = 3 is not "
                 "divisible by block_size=2");
    expect_error(e, "SpaceToBatch", "pad_l", 2, odd_w, CT_ESHAPE,
                 "padded width W + pad_l + pad_r = 5 + 2 + 0 = 7 is not "
                 "divisible by block_size=2");
    /* Caffe2's documented example (10, 3, 32, 32), pad 3, bs 2 gives
     * (2, 3, 58, 58) there: 10 is not a multiple of 4. */
    expect_error(e, "BatchToSpace", "pad", 3, b10, CT_ESHAPE,
                 "BatchToSpace: input batch 10 is not divisible by "
                 "block_size^2 = 4");
    expect_error(e, "BatchToSpace", "pad_t", 5, small, CT_ESHAPE,
                 "output height Hb * block_size - pad_t - pad_b = 4 - 5 - 0 "
                 "is negative");
    expect_error(e, "BatchToSpace", "pad_r", 7, small, CT_ESHAPE,
                 "output width Wb * block_size - pad_l - pad_r = 4 - 0 - 7 "
                 "is negative");
    expect_error(e, "BatchToSpace", "pad_l", INT64_MAX, small, CT_ESHAPE,
                 "is negative");
}

static void test_space_batch_overflows_return_eoverflow(void **state)
{
    struct tu_env *e = *state;
    const int64_t d2[4] = {2, 1, 0, 0},
                  dhuge[4] = {0, 1, INT64_C(4000000000), 1};

    /* N * bs^2 with bs^2 just below INT64_MAX. */
    expect_error(e, "SpaceToBatch", "block_size", INT64_C(3037000499), d2,
                 CT_EOVERFLOW,
                 "output batch N * block_size^2 = 2 * 9223372030926249001 "
                 "overflows int64");
    expect_error(e, "SpaceToBatch", "pad", INT64_MAX, d2, CT_EOVERFLOW,
                 "padded size of input [2, 1, 0, 0] with "
                 "pad_t=9223372036854775807");
    {
        Caffe2__OperatorDef *op = tu_op("BatchToSpace", "X", "Y");
        ct_status_t st;
        tu_arg_i(op, "block_size", INT64_C(3037000499));
        tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dhuge, NULL);
        tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_EOVERFLOW,
                         "times block_size=3037000499 overflows int64");
        tu_op_free(op);
    }
}

static void test_space_batch_string_dtype_returns_enotsup(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 1, 2, 2};
    const char *s[4] = {"a", "b", "c", "d"};
    Caffe2__OperatorDef *op = tu_op("SpaceToBatch", "X", "Y");
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_STRING, 4, dx, s);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ENOTSUP,
                     "unsupported dtype STRING");
    tu_op_free(op);
}

static void test_space_batch_in_place_returns_eschema(void **state)
{
    struct tu_env *e = *state;
    const int64_t dx[4] = {1, 1, 2, 2};
    Caffe2__OperatorDef *op = tu_op("SpaceToBatch", "X", "X");
    ct_status_t st;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dx, NULL);
    tu_assert_status(&st, tu_run_op(e->ws, op, &st), CT_ESCHEMA, "in-place");
    tu_op_free(op);
}

static void test_space_batch_empty_tensors_give_valid_outputs(void **state)
{
    struct tu_env *e = *state;
    const int64_t n0[4] = {0, 2, 4, 4}, c0[4] = {1, 0, 4, 4},
                  h0[4] = {1, 1, 0, 2};
    struct sb_args a = {2, 0, 0, 0, 0, false};
    const ct_tensor_t *y;
    ct_status_t st;
    int64_t i;

    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, n0, NULL);
    assert_int_equal(run1(e->ws, "SpaceToBatch", &a, "X", "Y", &st), CT_OK);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "Y")), 0);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "Y"), 2), 2);
    assert_int_equal(run1(e->ws, "BatchToSpace", &a, "X", "Z", &st), CT_OK);
    assert_int_equal(ct_tensor_dim(tu_fetch(e->ws, "Z"), 2), 8);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, c0, NULL);
    assert_int_equal(run1(e->ws, "SpaceToBatch", &a, "X", "Y", &st), CT_OK);
    assert_int_equal(ct_tensor_numel(tu_fetch(e->ws, "Y")), 0);
    /* H = 0 with pads: an all-zero output read from no input at all. */
    a.pt = 1, a.pb = 1;
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, h0, NULL);
    assert_int_equal(run1(e->ws, "SpaceToBatch", &a, "X", "Y", &st), CT_OK);
    y = tu_fetch(e->ws, "Y");
    assert_int_equal(ct_tensor_numel(y), 4);
    for (i = 0; i < 4; i++)
        assert_true(((const float *)ct_tensor_cdata(y))[i] == 0.0f);
}

static void test_space_batch_infer_gives_shape_and_errors(void **state)
{
    struct tu_env *e = *state;
    const struct ct_op_schema *s = ct__op_schema_find("SpaceToBatch");
    Caffe2__OperatorDef *def = tu_op("SpaceToBatch", "X", "Y");
    const int64_t dx[4] = {2, 3, 5, 6};
    ct_shape_t in, out;
    ct_status_t st;
    ct_op_t *op;

    tu_arg_i(def, "pad_t", 1);
    tu_arg_i(def, "pad_l", 2);
    tu_arg_i(def, "pad_r", 0);
    tu_arg_i(def, "pad_b", 0);
    tu_feed(e->ws, "X", CT_DTYPE_F32, 4, dx, NULL);
    assert_int_equal(ct__op_create(e->ws, def, 0, &op, &st), CT_OK);
    in.dtype = CT_DTYPE_F32;
    in.ndim = 4;
    memcpy(in.dims, dx, sizeof(dx));
    out.ndim = -1;
    assert_int_equal(s->infer_cb(op, &in, &out, &st), CT_OK);
    assert_int_equal(out.ndim, 4);
    assert_int_equal(out.dims[0], 8);
    assert_int_equal(out.dims[1], 3);
    assert_int_equal(out.dims[2], 3);
    assert_int_equal(out.dims[3], 4);
    in.dims[2] = 6;
    ct_status_clear(&st);
    tu_assert_status(&st, s->infer_cb(op, &in, &out, &st), CT_ESHAPE,
                     "padded height");
    ct__op_destroy(op);
    tu_op_free(def);
}

/* ---- gradients ---- */

static double elem64(const ct_tensor_t *t, int64_t i)
{
    return ((const double *)ct_tensor_cdata(t))[i];
}

/* L = mean(op(X) * R): dL/dX = other_op(R) / numel, checked against
 * central differences for every element of X. */
static void grad_check_op(struct tu_env *e, const char *type,
                          const struct sb_args *a, const int64_t *dx)
{
    Caffe2__NetDef *tu = tu_net("g", "X,R", "L"), *def;
    const char *loss[1] = {"L"};
    ProtobufCMessage *m;
    ct_tensor_t *x, *r;
    ct_net_t *net;
    ct_status_t st;
    double *ana;
    int64_t i, n;
    int k;

    tu_net_add_op(tu, sb_op(type, "X", "Y", a));
    tu_net_add_op(tu, tu_op("Mul", "Y,R", "P"));
    tu_net_add_op(tu, tu_op("AveragedLoss", "P", "L"));
    assert_int_equal(ct_proto_copy(&tu->base, &m, &st), CT_OK);
    tu_net_free(tu);
    def = (Caffe2__NetDef *)m;
    assert_int_equal(ct_netdef_add_gradient_ops(def, loss, 1, &st), CT_OK);
    /* The gradient is the other op, with every argument copied. */
    k = (int)def->n_op - 1;
    assert_string_equal(def->op[k]->type, strcmp(type, "SpaceToBatch") == 0
                                              ? "BatchToSpace"
                                              : "SpaceToBatch");
    assert_int_equal(def->op[k]->n_arg, 6);
    assert_string_equal(def->op[k]->output[0], "X_grad");
    x = tu_feed(e->ws, "X", CT_DTYPE_F64, 4, dx, NULL);
    n = ct_tensor_numel(x);
    for (i = 0; i < n; i++)
        ((double *)ct_tensor_data(x))[i] = (double)(rnd() % 1000) / 500 - 1;
    /* R has Y's shape: run the forward op once to learn it. */
    assert_int_equal(run1(e->ws, type, a, "X", "Y", &st), CT_OK);
    r = tu_feed(e->ws, "R", CT_DTYPE_F64, 4,
                ct_tensor_dims(tu_fetch(e->ws, "Y")), NULL);
    for (i = 0; i < ct_tensor_numel(r); i++)
        ((double *)ct_tensor_data(r))[i] = (double)(rnd() % 1000) / 500 - 1;
    if (ct_net_new(e->ws, def, NULL, &net, &st) != CT_OK)
        fail_msg("ct_net_new: %s", st.msg);
    assert_int_equal(ct_net_run(net, &st), CT_OK);
    ana = calloc((size_t)n + 1, sizeof(double));
    for (i = 0; i < n; i++)
        ana[i] = elem64(tu_fetch(e->ws, "X_grad"), i);
    for (i = 0; i < n; i++) {
        double *xi = (double *)ct_tensor_data(x) + i, v = *xi, lp, lm, num;
        *xi = v + 1e-6;
        assert_int_equal(ct_net_run(net, &st), CT_OK);
        lp = elem64(tu_fetch(e->ws, "L"), 0);
        *xi = v - 1e-6;
        assert_int_equal(ct_net_run(net, &st), CT_OK);
        lm = elem64(tu_fetch(e->ws, "L"), 0);
        *xi = v;
        num = (lp - lm) / 2e-6;
        if (fabs(num - ana[i]) > 1e-8 + 1e-6 * fabs(num))
            fail_msg("%s: dL/dX[%lld] numeric %.12g analytic %.12g", type,
                     (long long)i, num, ana[i]);
    }
    free(ana);
    ct_net_free(net);
    ct_netdef_free(def);
}

static void test_space_batch_gradients_match_numeric(void **state)
{
    struct tu_env *e = *state;
    struct sb_args a = {2, 1, 0, 2, 1, false};
    const int64_t dx[4] = {2, 3, 3, 3}, db[4] = {8, 2, 3, 2};

    grad_check_op(e, "SpaceToBatch", &a, dx);
    a.nhwc = true;
    grad_check_op(e, "SpaceToBatch", &a, dx);
    a.bs = 2, a.pt = 1, a.pb = 0, a.pl = 1, a.pr = 2;
    grad_check_op(e, "BatchToSpace", &a, db);
    a.nhwc = false;
    a.bs = 3, a.pt = 0, a.pb = 0, a.pl = 0, a.pr = 0;
    {
        const int64_t d9[4] = {9, 1, 2, 2};
        grad_check_op(e, "BatchToSpace", &a, d9);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_batch_random_cases_match_reference),
        cmocka_unit_test(
            test_space_batch_unit_sizes_and_wide_rows_match_reference),
        cmocka_unit_test(test_space_batch_simd_rows_and_tails_match_reference),
        cmocka_unit_test(test_space_to_batch_caffe2_example_shape),
        cmocka_unit_test(test_space_to_batch_block_size_default_is_2),
        cmocka_unit_test(test_space_batch_pool_tiles_equal_serial),
        cmocka_unit_test(test_space_batch_bad_block_size_returns_earg),
        cmocka_unit_test(test_space_batch_bad_pads_and_order_return_earg),
        cmocka_unit_test(test_space_batch_bad_shapes_return_eshape),
        cmocka_unit_test(test_space_batch_overflows_return_eoverflow),
        cmocka_unit_test(test_space_batch_string_dtype_returns_enotsup),
        cmocka_unit_test(test_space_batch_in_place_returns_eschema),
        cmocka_unit_test(test_space_batch_empty_tensors_give_valid_outputs),
        cmocka_unit_test(test_space_batch_infer_gives_shape_and_errors),
        cmocka_unit_test(test_space_batch_gradients_match_numeric),
    };

    return cmocka_run_group_tests_name("ops.space_batch", tests, tu_env_setup,
                                       tu_env_teardown);
}
