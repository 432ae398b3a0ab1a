/* bench_observers: what each built-in observer costs a run.
 *
 * Two nets, each compiled once per configuration (no observer, minmax,
 * histogram, time, runcount, trace) in one workspace:
 *   relu1000 - 1,000 in-place Relu ops on 16 floats (simple executor): a
 *              net of tiny ops, where the per-op hook cost shows;
 *   mlp      - the bundled example (examples/mlp_*.pbtxt, input
 *              examples/mlp_input.npy): FC -> Relu -> FC -> Softmax.
 * Samples of `reps` runs are taken round-robin over the configurations
 * (so drift hits all of them alike). Each sample is timed twice: by the
 * thread's CPU clock (CLOCK_THREAD_CPUTIME_ID: the time this thread was
 * on a CPU, which other processes on a busy machine inflate much less)
 * and by the wall clock. Each configuration reports the median ns per run
 * of both and their ratios to the no-observer net of the same process;
 * the CPU-time ratio is the headline figure (ns_per_run, ratio in JSON).
 * Observer files go to a temporary folder that is removed at the end. The
 * trace's max_events is sized so that no event is dropped (the
 * "trace_dropped" field says so). Run from the repository root.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cortado/cortado.h"
#include "cortado/observer.h"
#include "perf_util.h"
#include "proto/caffe2.pb-c.h"

#define N_CFG 6

static const char *const cfg_names[N_CFG] = {"none", "minmax",   "histogram",
                                             "time", "runcount", "trace"};

struct bench_case {
    const char *name;
    ct_netdef_t *def;
    int n_ops, reps;
    const char *histogram_opts; /* nbins for this case */
};

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static CT_NORETURN void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_observers: %s: %s\n", what, st->msg);
    exit(1);
}

/* A NetDef of n in-place Relu ops on blob "x". */
static Caffe2__NetDef *relu_chain(int n)
{
    static char *x[] = {"x"};
    Caffe2__NetDef *def = calloc(1, sizeof(*def));
    int i;

    caffe2__net_def__init(def);
    def->name = "relu1000";
    def->n_external_input = 1;
    def->external_input = x;
    def->n_op = (size_t)n;
    def->op = calloc((size_t)n, sizeof(*def->op));
    for (i = 0; i < n; i++) {
        Caffe2__OperatorDef *op = calloc(1, sizeof(*op));
        caffe2__operator_def__init(op);
        op->type = "Relu";
        op->n_input = op->n_output = 1;
        op->input = op->output = x;
        def->op[i] = op;
    }
    return def;
}

static void free_relu_chain(Caffe2__NetDef *def)
{
    size_t i;

    for (i = 0; i < def->n_op; i++)
        free(def->op[i]);
    free(def->op);
    free(def);
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' &&
            (size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) < sizeof(p))
            unlink(p);
    closedir(d);
    rmdir(dir);
}

static void spec_for(int k, const struct bench_case *bc, const char *dir,
                     long long max_events, char *buf, size_t size)
{
    switch (k) {
    case 1:
        snprintf(buf, size, "minmax=%s/%s.minmax", dir, bc->name);
        break;
    case 2:
        snprintf(buf, size, "histogram=%s/%s.hist%s", dir, bc->name,
                 bc->histogram_opts);
        break;
    case 3:
        snprintf(buf, size, "time");
        break;
    case 4:
        snprintf(buf, size, "runcount");
        break;
    default:
        snprintf(buf, size, "trace=%s/%s.json,max_events=%lld", dir, bc->name,
                 max_events);
        break;
    }
}

/* Samples of one configuration: CPU and wall ns per run. */
struct series {
    double *cpu, *wall;
    double cpu_med, wall_med;
};

static void report(const struct bench_case *bc, const struct bench_opts *o,
                   const struct series *sr, uint64_t events, uint64_t dropped)
{
    int k;

    if (!o->json)
        printf("%-9s %-10s %12s %9s %7s %9s %12s %7s\n", "case", "observer",
               "cpu ns/run", "ns/op", "ratio", "overhead", "wall ns/run",
               "ratio");
    for (k = 0; k < N_CFG; k++) {
        double ratio = sr[k].cpu_med / sr[0].cpu_med;
        double wratio = sr[k].wall_med / sr[0].wall_med;
        if (!o->json) {
            printf("%-9s %-10s %12.1f %9.2f %7.3f %+8.1f%% %12.1f %7.3f\n",
                   bc->name, cfg_names[k], sr[k].cpu_med,
                   sr[k].cpu_med / bc->n_ops, ratio, 100 * (ratio - 1),
                   sr[k].wall_med, wratio);
            continue;
        }
        printf("{\"case\":\"%s\",\"observer\":\"%s\",\"threads\":1,\"ops\":%d,"
               "\"reps\":%d,\"iters\":%d,\"ns_per_run\":%.1f,"
               "\"ns_per_op\":%.2f,\"ops_per_s\":%.0f,\"base_ns_per_run\":%.1f,"
               "\"ratio\":%.4f,\"overhead_pct\":%.2f,\"wall_ns_per_run\":%.1f,"
               "\"wall_ratio\":%.4f",
               bc->name, cfg_names[k], bc->n_ops, bc->reps, o->iters,
               sr[k].cpu_med, sr[k].cpu_med / bc->n_ops,
               1e9 * bc->n_ops / sr[k].cpu_med, sr[0].cpu_med, ratio,
               100 * (ratio - 1), sr[k].wall_med, wratio);
        if (k == N_CFG - 1)
            printf(",\"trace_events\":%llu,\"trace_dropped\":%llu",
                   (unsigned long long)events, (unsigned long long)dropped);
        printf("}\n");
    }
    if (!o->json)
        printf("# trace: %llu events recorded, %llu dropped\n",
               (unsigned long long)events, (unsigned long long)dropped);
}

static void run_case(ct_workspace_t *ws, const struct bench_case *bc,
                     const struct bench_opts *o, const char *dir)
{
    ct_engine_t *eng = ct_workspace_engine(ws);
    ct_net_t *nets[N_CFG];
    struct series sr[N_CFG];
    long long runs = (long long)(o->warmup + o->iters) * bc->reps + 8;
    uint64_t events = 0, dropped = 0;
    ct_status_t st;
    char spec[512];
    int k, i, r;

    for (k = 0; k < N_CFG; k++) {
        ct_observer_t *obs;
        if (ct_net_new(ws, bc->def, NULL, &nets[k], &st) != CT_OK)
            die(bc->name, &st);
        sr[k].cpu = calloc((size_t)o->iters, sizeof(double));
        sr[k].wall = calloc((size_t)o->iters, sizeof(double));
        if (k == 0)
            continue;
        spec_for(k, bc, dir, runs * (bc->n_ops + 1), spec, sizeof(spec));
        if (ct_observer_create_from_spec(eng, spec, &obs, &st) != CT_OK ||
            ct_net_add_observer(nets[k], obs, &st) != CT_OK)
            die(spec, &st);
    }
    for (i = 0; i < o->warmup + o->iters; i++)
        for (k = 0; k < N_CFG; k++) {
            uint64_t t0 = bench_now_ns(), c0 = cpu_now_ns();
            for (r = 0; r < bc->reps; r++)
                if (ct_net_run(nets[k], &st) != CT_OK)
                    die(cfg_names[k], &st);
            if (i < o->warmup)
                continue;
            sr[k].cpu[i - o->warmup] = (double)(cpu_now_ns() - c0) / bc->reps;
            sr[k].wall[i - o->warmup] =
                (double)(bench_now_ns() - t0) / bc->reps;
        }
    if (ct_trace_observer_get(ct_net_get_observer(nets[N_CFG - 1], 0), &events,
                              &dropped, &st) != CT_OK)
        die("trace", &st);
    for (k = 0; k < N_CFG; k++) {
        sr[k].cpu_med = bench_median(sr[k].cpu, o->iters);
        sr[k].wall_med = bench_median(sr[k].wall, o->iters);
    }
    report(bc, o, sr, events, dropped);
    for (k = 0; k < N_CFG; k++) {
        ct_net_free(nets[k]); /* flushes: writes the observers' files */
        free(sr[k].cpu);
        free(sr[k].wall);
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_netdef_t *init = NULL, *mlp = NULL;
    Caffe2__NetDef *relu;
    ct_tensor_t *data = NULL;
    ct_blob_t *b;
    ct_tensor_t *x;
    ct_status_t st;
    char dir[] = "/tmp/bench_observers_XXXXXX";
    static const int64_t n16 = 16;
    struct bench_case cases[2];
    int c;

    bench_parse(argc, argv, &o, "");
    bench_print_env(&o);
    if (mkdtemp(dir) == NULL) {
        perror("bench_observers: mkdtemp");
        return 1;
    }
    ct_engine_config_init(&cfg);
    cfg.n_threads = o.threads;
    if (ct_engine_new(&cfg, &eng, &st) != CT_OK ||
        ct_workspace_new(eng, NULL, &ws, &st) != CT_OK)
        die("setup", &st);
    /* relu1000: x = 16 floats in [-1, 1) */
    if (ct_workspace_create_blob(ws, "x", &b, &st) != CT_OK ||
        ct_blob_get_mutable_tensor(b, eng, &x, &st) != CT_OK ||
        ct_tensor_resize(x, CT_DTYPE_F32, 1, &n16, &st) != CT_OK)
        die("relu1000 input", &st);
    for (c = 0; c < 16; c++)
        ((float *)ct_tensor_data(x))[c] = (float)(c - 8) / 8;
    relu = relu_chain(1000);
    /* mlp: the README's example */
    if (ct_netdef_read_file("examples/mlp_init.pbtxt", &init, &st) != CT_OK ||
        ct_netdef_read_file("examples/mlp_predict.pbtxt", &mlp, &st) != CT_OK ||
        ct_workspace_run_net_once(ws, init, &st) != CT_OK ||
        ct_npy_read_file(eng, "examples/mlp_input.npy", &data, &st) != CT_OK ||
        ct_workspace_create_blob(ws, "data", &b, &st) != CT_OK)
        die("mlp example (run from the repository root)", &st);
    ct_blob_reset(b, &ct_blob_type_tensor, data);

    cases[0] = (struct bench_case){"relu1000", relu, 1000, o.smoke ? 2 : 10,
                                   ",nbins=64"};
    cases[1] =
        (struct bench_case){"mlp", mlp, (int)mlp->n_op, o.smoke ? 10 : 500, ""};
    if (!o.json)
        printf("# median of %d samples per configuration, samples taken "
               "round-robin; simple executor\n",
               o.iters);
    for (c = 0; c < 2; c++)
        run_case(ws, &cases[c], &o, dir);

    free_relu_chain(relu);
    ct_netdef_free(init);
    ct_netdef_free(mlp);
    ct_workspace_free(ws);
    ct_engine_free(eng);
    rmtree(dir);
    return 0;
}
