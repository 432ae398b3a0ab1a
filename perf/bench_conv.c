/* bench_conv: Conv throughput on ResNet-50-like layers against a plain
 * GEMM of the same flops.
 *
 * For each layer (batch 1) it times
 *   conv - the Conv op run directly (ct__op_run_serial: no executor),
 *          im2col + GEMM tiles, or the direct 1x1 / depthwise paths;
 *   gemm - one cblas_sgemm of M = output channels, N = output pixels,
 *          K = input channels x kernel size on contiguous matrices: the
 *          same 2 * M * N * K flops without any data rearrangement,
 * alternately in the same process (so both see the same machine load),
 * and prints GFLOP/s of each (from the median times) and their ratio
 * (vs_gemm = conv GFLOP/s / gemm GFLOP/s, the median of the
 * per-iteration ratios; 1.0 means im2col costs nothing).
 *
 * The layers are ResNet-50's (the Caffe2 zoo's v1: stride 2 on the first
 * 1x1 of a stage) plus NHWC and depthwise cases. --threads N (default 1)
 * sets the engine's threads, so the conv op splits its items over N
 * lanes through ct_parallel_for; the reference GEMM always runs on one
 * thread (OpenBLAS is single-threaded in cortado), so at N > 1 vs_gemm
 * is the parallel speed-up over one ideal GEMM call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf_util.h"
#include "cortado/cortado.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

/* OpenBLAS's cblas_sgemm, linked through the library's link line; the
 * perf targets do not get cblas.h on their include path, so it is
 * declared here with CBLAS's enum values (blasint is int: the serial
 * Debian build uses 32-bit indices). */
enum bench_cblas {
    BENCH_ROW_MAJOR = 101,
    BENCH_NO_TRANS = 111,
};
void cblas_sgemm(enum bench_cblas order, enum bench_cblas ta,
                 enum bench_cblas tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);

struct layer {
    const char *name;
    bool nhwc;
    int64_t c, h, w; /* input */
    int64_t m;       /* output channels */
    int k, s, p, group;
};

static const struct layer layers[] = {
    {"r50_conv1_7x7s2_3to64_224", false, 3, 224, 224, 64, 7, 2, 3, 1},
    {"r50_res2_1x1_64to64_56", false, 64, 56, 56, 64, 1, 1, 0, 1},
    {"r50_res2_3x3_64to64_56", false, 64, 56, 56, 64, 3, 1, 1, 1},
    {"r50_res2_1x1_64to256_56", false, 64, 56, 56, 256, 1, 1, 0, 1},
    {"r50_res2_1x1_256to64_56", false, 256, 56, 56, 64, 1, 1, 0, 1},
    {"r50_res3_1x1s2_256to128_56", false, 256, 56, 56, 128, 1, 2, 0, 1},
    {"r50_res3_1x1s2_256to512_56", false, 256, 56, 56, 512, 1, 2, 0, 1},
    {"r50_res3_3x3_128to128_28", false, 128, 28, 28, 128, 3, 1, 1, 1},
    {"r50_res3_1x1_128to512_28", false, 128, 28, 28, 512, 1, 1, 0, 1},
    {"r50_res3_1x1_512to128_28", false, 512, 28, 28, 128, 1, 1, 0, 1},
    {"r50_res4_3x3_256to256_14", false, 256, 14, 14, 256, 3, 1, 1, 1},
    {"r50_res4_1x1_256to1024_14", false, 256, 14, 14, 1024, 1, 1, 0, 1},
    {"r50_res4_1x1_1024to256_14", false, 1024, 14, 14, 256, 1, 1, 0, 1},
    {"r50_res5_3x3_512to512_7", false, 512, 7, 7, 512, 3, 1, 1, 1},
    {"r50_res5_1x1_512to2048_7", false, 512, 7, 7, 2048, 1, 1, 0, 1},
    {"r50_res5_1x1_2048to512_7", false, 2048, 7, 7, 512, 1, 1, 0, 1},
    {"conv3x3_64to64_56_nhwc", true, 64, 56, 56, 64, 3, 1, 1, 1},
    {"conv1x1_256to64_56_nhwc", true, 256, 56, 56, 64, 1, 1, 0, 1},
    {"dwconv3x3_128_56", false, 128, 56, 56, 128, 3, 1, 1, 128},
};

static CT_NORETURN void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_conv: %s: %s\n", what, st->msg);
    exit(1);
}

static Caffe2__OperatorDef *conv_def(const struct layer *l)
{
    static char *ins[] = {"X", "W", "b"}, *outs[] = {"Y"};
    Caffe2__OperatorDef *op = calloc(1, sizeof(*op));
    Caffe2__Argument **args = calloc(5, sizeof(*args));
    static const char *names[5] = {"kernel", "stride", "pad", "group", "order"};
    const int vals[4] = {l->k, l->s, l->p, l->group};
    int i;

    caffe2__operator_def__init(op);
    op->type = "Conv";
    op->n_input = 3;
    op->input = ins;
    op->n_output = 1;
    op->output = outs;
    for (i = 0; i < 5; i++) {
        args[i] = calloc(1, sizeof(**args));
        caffe2__argument__init(args[i]);
        args[i]->name = (char *)names[i];
        if (i < 4) {
            args[i]->has_i = 1;
            args[i]->i = vals[i];
        } else {
            args[i]->has_s = 1;
            args[i]->s.data = (uint8_t *)(l->nhwc ? "NHWC" : "NCHW");
            args[i]->s.len = 4;
        }
    }
    op->n_arg = 5;
    op->arg = args;
    return op;
}

static void free_def(Caffe2__OperatorDef *op)
{
    size_t i;
    for (i = 0; i < op->n_arg; i++)
        free(op->arg[i]);
    free(op->arg);
    free(op);
}

/* Feeds a float tensor of the given dims filled with small values. */
static void feed(ct_workspace_t *ws, const char *name, int nd,
                 const int64_t *dims)
{
    ct_blob_t *b;
    ct_tensor_t *t;
    ct_status_t st;
    float *v;
    int64_t i, n;

    if (ct_workspace_create_blob(ws, name, &b, &st) != CT_OK &&
        (b = ct_workspace_get_blob(ws, name)) == NULL)
        die("blob", &st);
    if (ct_blob_get_mutable_tensor(b, ct_workspace_engine(ws), &t, &st) !=
            CT_OK ||
        ct_tensor_resize(t, CT_DTYPE_F32, nd, dims, &st) != CT_OK)
        die("feed", &st);
    v = ct_tensor_data(t);
    n = ct_tensor_numel(t);
    for (i = 0; i < n; i++)
        v[i] = (float)((i * 7) % 13 - 6) * 0.01f;
}

/* A GEMM of the same flops: A [m, k], B [k, n], C [m, n], contiguous. */
struct gemm {
    int m, n, k;
    float *a, *b, *c;
};

static void gemm_init(struct gemm *g, int m, int n, int k)
{
    int64_t i;

    g->m = m;
    g->n = n;
    g->k = k;
    g->a = calloc((size_t)m * (size_t)k, sizeof(float));
    g->b = calloc((size_t)k * (size_t)n, sizeof(float));
    g->c = calloc((size_t)m * (size_t)n, sizeof(float));
    if (g->a == NULL || g->b == NULL || g->c == NULL) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (i = 0; i < (int64_t)m * k; i++)
        g->a[i] = (float)(i % 7) * 0.01f;
    for (i = 0; i < (int64_t)k * n; i++)
        g->b[i] = (float)(i % 5) * 0.01f;
}

static void gemm_run(struct gemm *g)
{
    cblas_sgemm(BENCH_ROW_MAJOR, BENCH_NO_TRANS, BENCH_NO_TRANS, g->m, g->n,
                g->k, 1.0f, g->a, g->k, g->b, g->n, 0.0f, g->c, g->n);
    bench_sink += g->c[0];
}

static void gemm_free(struct gemm *g)
{
    free(g->a);
    free(g->b);
    free(g->c);
}

/* Times the conv op and `reps` GEMMs alternately, iteration by
 * iteration, so both see the same machine load: medians in ns, and the
 * median of the per-iteration ratios gemm time / conv time (robust to
 * load that changes between iterations). */
static void time_both(ct_op_t *op, struct gemm *g, int reps,
                      const struct bench_opts *o, double *t_conv,
                      double *t_gemm, double *ratio)
{
    double *vc = calloc((size_t)o->iters, sizeof(double));
    double *vg = calloc((size_t)o->iters, sizeof(double));
    double *vr = calloc((size_t)o->iters, sizeof(double));
    ct_status_t st;
    int i, r;

    if (vc == NULL || vg == NULL || vr == NULL) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (i = 0; i < o->warmup + o->iters; i++) {
        uint64_t t0 = bench_now_ns(), t1;
        if (ct__op_run_serial(op, &st) != CT_OK)
            die("Conv", &st);
        t1 = bench_now_ns();
        for (r = 0; r < reps; r++)
            gemm_run(g);
        if (i >= o->warmup) {
            vc[i - o->warmup] = (double)(t1 - t0);
            vg[i - o->warmup] = (double)(bench_now_ns() - t1);
            vr[i - o->warmup] = vg[i - o->warmup] / vc[i - o->warmup];
        }
    }
    *t_conv = bench_median(vc, o->iters);
    *t_gemm = bench_median(vg, o->iters);
    *ratio = bench_median(vr, o->iters);
    free(vc);
    free(vg);
    free(vr);
}

int main(int argc, char **argv)
{
    struct ct_engine_config ecfg;
    struct bench_opts o;
    double tot_flops = 0, tot_conv = 0, tot_gemm = 0;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_status_t st;
    size_t li;

    bench_parse(argc, argv, &o, "");
    bench_print_env(&o);
    ct_engine_config_init(&ecfg);
    ecfg.n_threads = o.threads > 0 ? o.threads : 1;
    if (ct_engine_new(&ecfg, &eng, &st) != CT_OK ||
        ct_workspace_new(eng, NULL, &ws, &st) != CT_OK)
        die("setup", &st);
    for (li = 0; li < sizeof(layers) / sizeof(layers[0]); li++) {
        const struct layer *l = &layers[li];
        const int64_t oh = (l->h + 2 * l->p - l->k) / l->s + 1;
        const int64_t ow = (l->w + 2 * l->p - l->k) / l->s + 1;
        const int64_t cg = l->c / l->group;
        int64_t xd[4], wd[4];
        Caffe2__OperatorDef *def = conv_def(l);
        double flops, t_conv, t_gemm, g_conv, g_gemm, ratio;
        struct gemm gm;
        ct_op_t *op;

        if (l->nhwc) {
            const int64_t x[4] = {1, l->h, l->w, l->c};
            const int64_t w[4] = {l->m, l->k, l->k, cg};
            memcpy(xd, x, sizeof(x));
            memcpy(wd, w, sizeof(w));
        } else {
            const int64_t x[4] = {1, l->c, l->h, l->w};
            const int64_t w[4] = {l->m, cg, l->k, l->k};
            memcpy(xd, x, sizeof(x));
            memcpy(wd, w, sizeof(w));
        }
        feed(ws, "X", 4, xd);
        feed(ws, "W", 4, wd);
        feed(ws, "b", 1, &l->m);
        if (ct__op_create(ws, def, 0, &op, &st) != CT_OK)
            die("create", &st);
        flops =
            2.0 * (double)l->m * (double)(oh * ow) * (double)(cg * l->k * l->k);
        /* The same flops: one GEMM per group. */
        gemm_init(&gm, (int)(l->m / l->group), (int)(oh * ow),
                  (int)(cg * l->k * l->k));
        time_both(op, &gm, l->group, &o, &t_conv, &t_gemm, &ratio);
        gemm_free(&gm);
        g_conv = flops / t_conv;
        g_gemm = flops / t_gemm;
        if (o.json)
            printf("{\"case\":\"%s\",\"order\":\"%s\",\"batch\":1,"
                   "\"threads\":%d,\"flops\":%.0f,\"conv_ns\":%.0f,"
                   "\"conv_gflops\":%.2f,\"gemm_ns\":%.0f,"
                   "\"gemm_gflops\":%.2f,\"vs_gemm\":%.3f}\n",
                   l->name, l->nhwc ? "NHWC" : "NCHW", ecfg.n_threads, flops,
                   t_conv, g_conv, t_gemm, g_gemm, ratio);
        else
            printf("%-28s threads=%d median %9.0f ns  conv %6.2f GFLOP/s  "
                   "gemm %6.2f GFLOP/s  vs_gemm %.3f\n",
                   l->name, ecfg.n_threads, t_conv, g_conv, g_gemm, ratio);
        if (strncmp(l->name, "r50_", 4) == 0) {
            tot_flops += flops;
            tot_conv += t_conv;
            tot_gemm += t_gemm;
        }
        bench_sink += t_conv;
        ct__op_destroy(op);
        free_def(def);
    }
    if (!o.json && tot_conv > 0)
        printf("%-28s threads=%d sum %11.0f ns  conv %6.2f GFLOP/s  "
               "gemm %6.2f GFLOP/s (one of each ResNet-50 shape)\n",
               "r50_all", ecfg.n_threads, tot_conv, tot_flops / tot_conv,
               tot_flops / tot_gemm);
    ct_workspace_free(ws);
    ct_engine_free(eng);
    return 0;
}
