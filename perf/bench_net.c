/* bench_net: what running a compiled net costs on top of its kernels.
 *
 * For a chain of N in-place Relu ops on a small tensor, times
 *   direct  - the kernels called in a plain loop with prebuilt contexts
 *             (the floor: no executor at all),
 *   simple  - ct_net_run with the simple executor,
 *   dag     - ct_net_run with the dag executor,
 * and prints ns per op for each and the ratios to direct, measured in the
 * same process. The tensor size sets how much of the time is kernel work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf_util.h"
#include "cortado/cortado.h"
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "proto/caffe2.pb-c.h"

static Caffe2__NetDef *chain_def(int n_ops, const char *type)
{
    Caffe2__NetDef *def = calloc(1, sizeof(*def));
    static char *in_x[] = {"x"};
    int i;

    caffe2__net_def__init(def);
    def->name = "bench_chain";
    def->type = (char *)type;
    def->n_external_input = 1;
    def->external_input = in_x;
    def->n_op = (size_t)n_ops;
    def->op = calloc((size_t)n_ops, sizeof(*def->op));
    for (i = 0; i < n_ops; i++) {
        Caffe2__OperatorDef *op = calloc(1, sizeof(*op));
        caffe2__operator_def__init(op);
        op->type = "Relu";
        op->n_input = 1;
        op->input = in_x;
        op->n_output = 1;
        op->output = in_x;
        def->op[i] = op;
    }
    return def;
}

static void free_def(Caffe2__NetDef *def)
{
    size_t i;
    for (i = 0; i < def->n_op; i++)
        free(def->op[i]);
    free(def->op);
    free(def);
}

static CT_NORETURN void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_net: %s: %s\n", what, st->msg);
    exit(1);
}

static double time_net(ct_net_t *net, const struct bench_opts *o, int reps)
{
    double *v = calloc((size_t)o->iters, sizeof(double));
    ct_status_t st;
    int i, r;
    double med;

    for (i = 0; i < o->warmup; i++)
        if (ct_net_run(net, &st) != CT_OK)
            die("run", &st);
    for (i = 0; i < o->iters; i++) {
        uint64_t t0 = bench_now_ns();
        for (r = 0; r < reps; r++)
            if (ct_net_run(net, &st) != CT_OK)
                die("run", &st);
        v[i] = (double)(bench_now_ns() - t0) / reps;
    }
    med = bench_median(v, o->iters);
    free(v);
    return med;
}

static double time_direct(ct_net_t *net, const struct bench_opts *o, int reps)
{
    double *v = calloc((size_t)o->iters, sizeof(double));
    ct_op_ctx_t *ctx = calloc((size_t)net->n_ops, sizeof(*ctx));
    int i, r, k;
    double med;

    for (k = 0; k < net->n_ops; k++)
        ct__net_op_ctx(net, k, &ctx[k]);
    for (i = 0; i < o->warmup + o->iters; i++) {
        uint64_t t0 = bench_now_ns();
        for (r = 0; r < reps; r++)
            for (k = 0; k < net->n_ops; k++)
                if (ct__op_run(&ctx[k]) != CT_OK)
                    die("direct", ctx[k].status);
        if (i >= o->warmup)
            v[i - o->warmup] = (double)(bench_now_ns() - t0) / reps;
    }
    med = bench_median(v, o->iters);
    free(ctx);
    free(v);
    return med;
}

int main(int argc, char **argv)
{
    static const int64_t sizes[] = {1, 4096};
    struct bench_opts o;
    ct_engine_t *eng;
    struct ct_engine_config cfg;
    ct_status_t st;
    int n_ops, reps;
    size_t s;

    bench_parse(argc, argv, &o, "");
    bench_print_env(&o);
    n_ops = o.smoke ? 20 : 100;
    reps = o.smoke ? 10 : 2000;
    ct_engine_config_init(&cfg);
    cfg.n_threads = o.threads;
    if (ct_engine_new(&cfg, &eng, &st) != CT_OK)
        die("engine", &st);
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        ct_workspace_t *ws;
        ct_blob_t *b;
        ct_tensor_t *x;
        ct_net_t *simple, *dag;
        Caffe2__NetDef *d_simple = chain_def(n_ops, "simple");
        Caffe2__NetDef *d_dag = chain_def(n_ops, "dag");
        double t_direct, t_simple, t_dag;

        if (ct_workspace_new(eng, NULL, &ws, &st) != CT_OK ||
            ct_workspace_create_blob(ws, "x", &b, &st) != CT_OK ||
            ct_blob_get_mutable_tensor(b, eng, &x, &st) != CT_OK ||
            ct_tensor_resize(x, CT_DTYPE_F32, 1, &sizes[s], &st) != CT_OK ||
            ct_net_new(ws, d_simple, NULL, &simple, &st) != CT_OK ||
            ct_net_new(ws, d_dag, NULL, &dag, &st) != CT_OK)
            die("setup", &st);
        t_direct = time_direct(simple, &o, reps) / n_ops;
        t_simple = time_net(simple, &o, reps) / n_ops;
        t_dag = time_net(dag, &o, reps) / n_ops;
        if (o.json)
            printf("{\"case\":\"chain_relu\",\"ops\":%d,\"elems\":%lld,"
                   "\"threads\":%d,\"direct_ns_per_op\":%.2f,"
                   "\"simple_ns_per_op\":%.2f,\"dag_ns_per_op\":%.2f,"
                   "\"simple_vs_direct\":%.3f,\"dag_vs_direct\":%.3f}\n",
                   n_ops, (long long)sizes[s], ct_net_num_workers(dag),
                   t_direct, t_simple, t_dag, t_simple / t_direct,
                   t_dag / t_direct);
        else
            printf("chain_relu ops=%d elems=%lld: direct %.1f ns/op, "
                   "simple %.1f ns/op (%.2fx), dag %.1f ns/op (%.2fx)\n",
                   n_ops, (long long)sizes[s], t_direct, t_simple,
                   t_simple / t_direct, t_dag, t_dag / t_direct);
        bench_sink += t_direct;
        ct_net_free(simple);
        ct_net_free(dag);
        ct_workspace_free(ws);
        free_def(d_simple);
        free_def(d_dag);
    }
    ct_engine_free(eng);
    return 0;
}
