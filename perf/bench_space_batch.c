/* bench_space_batch: bandwidth of SpaceToBatch and BatchToSpace.
 *
 * For each op (SpaceToBatch, BatchToSpace), layout (NCHW, NHWC), block
 * size (2, 4) and thread count (1, and 2 or --threads N), times the op's
 * kernel on a FLOAT tensor of 64 MiB (1 MiB with --smoke) and, in the same
 * process and on the same thread count, memcpy of the same bytes between
 * two buffers of that size (split over the pool like the op's tiles at
 * more than one thread), alternating the two every iteration so that a
 * busy machine slows both alike. Prints GB/s of both (bytes of the tensor
 * / median time) and their ratio; the target is >= 0.8x memcpy.
 *
 * The op runs as an executor would run it: created once from an
 * OperatorDef with ct__op_create on an engine of 1 or N threads, then
 * ct__op_run; its tiles reach the engine's pool through ct_parallel_for
 * (a one-thread engine runs them inline). Its output storage is allocated
 * by the warmup runs and reused.
 *
 * --json prints one object per case:
 *   {"op", "order", "block", "threads", "bytes", "gbps", "memcpy_gbps",
 *    "fraction_of_memcpy"}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/cortado.h"
#include "engine/op_internal.h"
#include "ops/op_impl.h"
#include "perf_util.h"
#include "proto/caffe2.pb-c.h"
#include "scheduler/parallel_for.h"
#include "scheduler/pool.h"
#include "scheduler/sched.h"

static CT_NORETURN void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_space_batch: %s: %s\n", what, st->msg);
    exit(1);
}

/* A SpaceToBatch / BatchToSpace def with block_size and order. */
struct op_def {
    Caffe2__OperatorDef op;
    Caffe2__Argument a_bs, a_order;
    Caffe2__Argument *args[2];
    char *in[1], *out[1];
};

static void op_def_init(struct op_def *d, const char *type, const char *in,
                        const char *out, int64_t bs, const char *order)
{
    memset(d, 0, sizeof(*d));
    caffe2__operator_def__init(&d->op);
    caffe2__argument__init(&d->a_bs);
    caffe2__argument__init(&d->a_order);
    d->a_bs.name = "block_size";
    d->a_bs.has_i = 1;
    d->a_bs.i = bs;
    d->a_order.name = "order";
    d->a_order.has_s = 1;
    d->a_order.s.data = (uint8_t *)order;
    d->a_order.s.len = strlen(order);
    d->args[0] = &d->a_bs;
    d->args[1] = &d->a_order;
    d->in[0] = (char *)in;
    d->out[0] = (char *)out;
    d->op.type = (char *)type;
    d->op.n_input = 1;
    d->op.input = d->in;
    d->op.n_output = 1;
    d->op.output = d->out;
    d->op.n_arg = 2;
    d->op.arg = d->args;
}

/* ---- memcpy baseline ---- */

struct copy_job {
    char *dst;
    const char *src;
    size_t bytes, chunk;
};

static void copy_chunks(void *arg, int64_t c0, int64_t c1, int ith)
{
    const struct copy_job *j = arg;
    int64_t c;

    (void)ith;
    for (c = c0; c < c1; c++) {
        size_t off = (size_t)c * j->chunk;
        size_t n = j->bytes - off < j->chunk ? j->bytes - off : j->chunk;
        memcpy(j->dst + off, j->src + off, n);
    }
}

/* memcpy of bytes, split into 1 MiB chunks over the pool when there is
 * one (as the op's tiles are). */
static double run_memcpy(struct ct__pool *pool, char *dst, const char *src,
                         size_t bytes)
{
    struct copy_job j = {dst, src, bytes, (size_t)1 << 20};
    const int64_t n_chunks = (int64_t)((bytes + j.chunk - 1) / j.chunk);
    uint64_t t0 = bench_now_ns();

    if (pool != NULL)
        ct__parallel_for(pool, n_chunks, 1, copy_chunks, &j);
    else
        copy_chunks(&j, 0, n_chunks, 0);
    return (double)(bench_now_ns() - t0);
}

/* ---- one case ---- */

/* Times the op and memcpy of the same bytes alternately, iteration by
 * iteration, so that both medians see the same machine load. */
static void time_case(ct_workspace_t *ws, struct ct__pool *pool,
                      const char *type, const char *in, const char *out,
                      int64_t bs, const char *order, char *dst, const char *src,
                      size_t bytes, const struct bench_opts *o, double *op_ns,
                      double *copy_ns)
{
    struct op_def d;
    ct_status_t st, node_st;
    ct_op_ctx_t ctx;
    ct_op_t *op;
    double *v = calloc((size_t)o->iters, sizeof(double));
    double *c = calloc((size_t)o->iters, sizeof(double));
    int i;

    op_def_init(&d, type, in, out, bs, order);
    if (ct__op_create(ws, &d.op, 0, &op, &st) != CT_OK)
        die("create", &st);
    memset(&ctx, 0, sizeof(ctx));
    ctx.op = op;
    ctx.eng = ct_workspace_engine(ws);
    ctx.nth = pool != NULL ? ct__pool_n_threads(pool) : 1;
    ctx.numa_node = -1;
    ctx.status = &node_st;
    ctx.sched = NULL; /* ct_parallel_for takes the engine's pool */
    for (i = 0; i < o->warmup + o->iters; i++) {
        const double tc = run_memcpy(pool, dst, src, bytes);
        uint64_t t0 = bench_now_ns();
        if (ct__op_run(&ctx) != CT_OK)
            die(type, &node_st);
        if (i >= o->warmup) {
            v[i - o->warmup] = (double)(bench_now_ns() - t0);
            c[i - o->warmup] = tc;
        }
    }
    bench_sink += dst[bytes / 2];
    ct__op_destroy(op);
    *op_ns = bench_median(v, o->iters);
    *copy_ns = bench_median(c, o->iters);
    free(v);
    free(c);
}

int main(int argc, char **argv)
{
    static const char *const ops[2] = {"SpaceToBatch", "BatchToSpace"};
    static const char *const orders[2] = {"NCHW", "NHWC"};
    static const int64_t blocks[2] = {2, 4};
    struct bench_opts o;
    ct_status_t st;
    int threads[2], n_threads, t, oi, ri, bi;
    int64_t side;
    char *src, *dst;
    size_t bytes;

    bench_parse(argc, argv, &o, "");
    bench_print_env(&o);
    threads[0] = 1;
    threads[1] = o.threads > 1 ? o.threads : 2;
    n_threads = o.threads == 1 ? 1 : 2;
    /* [4, 16, side, side] floats: 64 MiB at side 512, 1 MiB at 64. */
    side = o.smoke ? 64 : 512;
    bytes = (size_t)(4 * 16 * side * side) * sizeof(float);
    src = malloc(bytes);
    dst = malloc(bytes);
    if (src == NULL || dst == NULL) {
        fprintf(stderr, "bench_space_batch: out of memory\n");
        return 1;
    }
    memset(src, 1, bytes);
    memset(dst, 0, bytes);
    for (t = 0; t < n_threads; t++) {
        /* One engine per thread count: the op reaches the engine's pool
         * through ct_parallel_for, as under any executor. */
        struct ct_engine_config cfg;
        struct ct__pool *pool = NULL;
        ct_engine_t *eng;
        ct_workspace_t *ws;

        ct_engine_config_init(&cfg);
        cfg.n_threads = threads[t];
        if (ct_engine_new(&cfg, &eng, &st) != CT_OK ||
            ct_workspace_new(eng, NULL, &ws, &st) != CT_OK ||
            (threads[t] > 1 && ct__engine_pool(eng, &pool, &st) != CT_OK))
            die("setup", &st);
        for (ri = 0; ri < 2; ri++) {
            const int64_t dims[4] = {4, ri == 0 ? 16 : side, side,
                                     ri == 0 ? side : 16};
            ct_blob_t *b;
            ct_tensor_t *x;
            if (ct_workspace_create_blob(ws, "X", &b, &st) != CT_OK ||
                ct_blob_get_mutable_tensor(b, eng, &x, &st) != CT_OK ||
                ct_tensor_resize(x, CT_DTYPE_F32, 4, dims, &st) != CT_OK)
                die("input", &st);
            memset(ct_tensor_data(x), 1, ct_tensor_nbytes(x));
            for (bi = 0; bi < 2; bi++) {
                for (oi = 0; oi < 2; oi++) {
                    double ns, t_copy, gbps, cgbps;
                    /* BatchToSpace reads what SpaceToBatch wrote. */
                    time_case(ws, pool, ops[oi], oi == 0 ? "X" : "Y",
                              oi == 0 ? "Y" : "Z", blocks[bi], orders[ri], dst,
                              src, bytes, &o, &ns, &t_copy);
                    gbps = (double)bytes / ns;
                    cgbps = (double)bytes / t_copy;
                    if (o.json)
                        printf("{\"op\":\"%s\",\"order\":\"%s\",\"block\":%lld,"
                               "\"threads\":%d,\"bytes\":%zu,\"gbps\":%.3f,"
                               "\"memcpy_gbps\":%.3f,"
                               "\"fraction_of_memcpy\":%.3f}\n",
                               ops[oi], orders[ri], (long long)blocks[bi],
                               threads[t], bytes, gbps, cgbps, gbps / cgbps);
                    else
                        printf("%-12s %s bs=%lld threads=%d %zu MiB: %.2f "
                               "GB/s, memcpy %.2f GB/s, %.2fx memcpy\n",
                               ops[oi], orders[ri], (long long)blocks[bi],
                               threads[t], bytes >> 20, gbps, cgbps,
                               gbps / cgbps);
                    fflush(stdout);
                }
            }
        }
        ct_workspace_free(ws);
        ct_engine_free(eng);
    }
    free(src);
    free(dst);
    return 0;
}
