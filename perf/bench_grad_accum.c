/* bench_grad_accum: throughput of asynchronous gradient accumulation.
 *
 * One training step of an MLP (784 -> 512 -> Relu -> 256 -> Relu -> 10,
 * SoftmaxWithLoss; 64 examples per micro-batch, ~200 MFLOP of forward and
 * backward GEMMs, a few ms on one core) over K micro-batches, for
 * K = 1, 2, 4 at 1 and 2 threads (or --threads N), in the same process:
 *
 *   accum     the step net of ct_netdef_build_grad_accum (K Do scopes on
 *             the dag executor, the fixed-order Sum and the SGD update) on
 *             an engine of `threads` workers;
 *   seq       the baseline: the same K micro-batches run one after the
 *             other in one workspace of a one-thread engine: K forward +
 *             backward nets (the gradient builder's, inputs and parameter
 *             gradients renamed per micro-batch), then the same Sum and
 *             update ops as one net;
 *   seq_thr   (--intra-op pool only) the same sequential nets on an engine
 *             of `threads` workers, whose ops split their work with
 *             ct_parallel_for: intra-op parallelism instead of scopes.
 *
 * --intra-op serial (the default) gives every engine CT_INTRA_OP_SERIAL:
 * the scopes are the only parallelism, which is what this measures.
 * --intra-op pool keeps the engine default (ct_parallel_for on the pool)
 * inside the scopes too; see docs/training.md for why that is slower and
 * not bit-equal to the one-thread run (FC's row split).
 *
 * The runs are timed alternately, step by step (rotating which goes
 * first), so that a busy machine slows them alike; the median step time
 * of each gives steps_per_s. speedup_vs_sequential = accum / seq (the
 * issue's target: >= 1.7 at K = 2, 2 threads). The fastest step of each
 * is printed too (speedup_fastest_steps): on a machine shared with other
 * work it approximates the figure without the other work.
 *
 * Every run starts from the same parameters and micro-batches and takes
 * the same steps. After every step the parameters and the summed
 * gradients of accum must equal, bit for bit, those of the sequential run
 * on the same engine configuration (seq, or seq_thr with --intra-op pool
 * at more than one thread); a difference stops the benchmark with exit
 * status 1. With --intra-op pool, same_bits_as_1_thread says whether accum
 * still equals the one-thread sequential run.
 *
 * --json prints one object per case:
 *   {"k", "threads", "intra_op", "batch", "steps_per_s", "ms_per_step",
 *    "seq_steps_per_s", "speedup_vs_sequential", "min_ms_per_step",
 *    "seq_min_ms_per_step", "speedup_fastest_steps"} and, with --intra-op
 *   pool at more than one thread, "seq_threads_steps_per_s",
 *   "speedup_vs_seq_threads", "same_bits_as_1_thread".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/cortado.h"
#include "cortado/grad_accum.h"
#include "perf_util.h"
#include "proto/caffe2.pb-c.h"

enum { BATCH = 64, IN = 784, H1 = 512, H2 = 256, OUT = 10, K_MAX = 4 };
enum { N_PARAMS = 6 };

static const char *const params[N_PARAMS] = {"W1", "b1", "W2",
                                             "b2", "W3", "b3"};
static const float lr = -0.01f;

static const char fwd_txt[] =
    "name: \"mlp\"\n"
    "op { input: \"data\" input: \"W1\" input: \"b1\" output: \"h1\" "
    "type: \"FC\" }\n"
    "op { input: \"h1\" output: \"h1\" type: \"Relu\" }\n"
    "op { input: \"h1\" input: \"W2\" input: \"b2\" output: \"h2\" "
    "type: \"FC\" }\n"
    "op { input: \"h2\" output: \"h2\" type: \"Relu\" }\n"
    "op { input: \"h2\" input: \"W3\" input: \"b3\" output: \"logits\" "
    "type: \"FC\" }\n"
    "op { input: \"logits\" input: \"label\" output: \"prob\" "
    "output: \"loss\" type: \"SoftmaxWithLoss\" }\n";

static CT_NORETURN void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_grad_accum: %s: %s\n", what, st->msg);
    exit(1);
}

static CT_NORETURN void die_oom(void)
{
    fprintf(stderr, "bench_grad_accum: out of memory\n");
    exit(1);
}

static ct_netdef_t *parse(const char *txt, size_t len)
{
    ct_netdef_t *def = NULL;
    ct_status_t st;

    if (ct_netdef_parse(txt, len, CT_PROTO_TEXT, &def, &st) != CT_OK)
        die("parse", &st);
    return def;
}

/* Text with every occurrence of `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    const size_t lf = strlen(from), lt = strlen(to);
    size_t n = 0, len;
    const char *p;
    char *out, *q;

    for (p = strstr(s, from); p != NULL; p = strstr(p + lf, from))
        n++;
    len = strlen(s) + n * lt + 1;
    out = malloc(len);
    if (out == NULL)
        die_oom();
    for (q = out; (p = strstr(s, from)) != NULL; s = p + lf) {
        memcpy(q, s, (size_t)(p - s));
        q += p - s;
        memcpy(q, to, lt);
        q += lt;
    }
    strcpy(q, s);
    return out;
}

/* Deterministic pseudo-random floats in [lo, hi). */
static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i;

    for (i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)(s >> 40) / (float)(1u << 24);
    }
}

static void feed(ct_workspace_t *ws, const char *name, ct_dtype_t dt, int ndim,
                 const int64_t *dims, const void *src)
{
    ct_status_t st;
    ct_blob_t *b = ct_workspace_get_blob(ws, name);
    ct_tensor_t *t;

    if ((b == NULL && ct_workspace_create_blob(ws, name, &b, &st) != CT_OK) ||
        ct_blob_get_mutable_tensor(b, ct_workspace_engine(ws), &t, &st) !=
            CT_OK ||
        ct_tensor_resize(t, dt, ndim, dims, &st) != CT_OK)
        die(name, &st);
    memcpy(ct_tensor_data(t), src, ct_tensor_nbytes(t));
}

/* The initial parameters and K_MAX micro-batches, the same in every
 * workspace. */
struct model_data {
    float *p[N_PARAMS];
    int64_t dims[N_PARAMS][2];
    int ndim[N_PARAMS];
    float *x[K_MAX];
    int32_t *y[K_MAX];
};

static void model_data_init(struct model_data *m)
{
    static const int64_t shapes[N_PARAMS][2] = {{H1, IN}, {H1, 0},   {H2, H1},
                                                {H2, 0},  {OUT, H2}, {OUT, 0}};
    int i, k, r;

    for (i = 0; i < N_PARAMS; i++) {
        const size_t n =
            (size_t)shapes[i][0] * (size_t)(shapes[i][1] ? shapes[i][1] : 1);
        const float a = shapes[i][1] ? 1.0f / (float)shapes[i][1] * 2.0f : 0.1f;
        m->ndim[i] = shapes[i][1] ? 2 : 1;
        m->dims[i][0] = shapes[i][0];
        m->dims[i][1] = shapes[i][1];
        m->p[i] = malloc(n * sizeof(float));
        if (m->p[i] == NULL)
            die_oom();
        fill_uniform(m->p[i], n, -a, a, 10 + (uint64_t)i);
    }
    for (k = 0; k < K_MAX; k++) {
        m->x[k] = malloc((size_t)BATCH * IN * sizeof(float));
        m->y[k] = malloc((size_t)BATCH * sizeof(int32_t));
        if (m->x[k] == NULL || m->y[k] == NULL)
            die_oom();
        fill_uniform(m->x[k], (size_t)BATCH * IN, 0, 1, 100 + (uint64_t)k);
        for (r = 0; r < BATCH; r++)
            m->y[k][r] = (r * 7 + k * 3) % OUT;
    }
}

static void model_data_destroy(struct model_data *m)
{
    int i;

    for (i = 0; i < N_PARAMS; i++)
        free(m->p[i]);
    for (i = 0; i < K_MAX; i++) {
        free(m->x[i]);
        free(m->y[i]);
    }
}

/* Parameters to their initial values; micro-batches as data_<k>. */
static void feed_all(ct_workspace_t *ws, const struct model_data *m, int k_n)
{
    const int64_t dx[2] = {BATCH, IN}, dy[1] = {BATCH};
    char name[32];
    int i, k;

    for (i = 0; i < N_PARAMS; i++)
        feed(ws, params[i], CT_DTYPE_F32, m->ndim[i], m->dims[i], m->p[i]);
    for (k = 0; k < k_n; k++) {
        snprintf(name, sizeof(name), "data_%d", k);
        feed(ws, name, CT_DTYPE_F32, 2, dx, m->x[k]);
        snprintf(name, sizeof(name), "label_%d", k);
        feed(ws, name, CT_DTYPE_I32, 1, dy, m->y[k]);
    }
}

/* One way of running a step: an engine, a workspace and its nets, run in
 * order. */
struct runner {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_net_t *nets[K_MAX + 1];
    int n_nets;
    double *ns; /* step times, --iters of them */
};

static void runner_init(struct runner *r, int threads, int intra_op, int iters)
{
    struct ct_engine_config cfg;
    ct_status_t st;

    memset(r, 0, sizeof(*r));
    ct_engine_config_init(&cfg);
    cfg.n_threads = threads;
    cfg.intra_op = intra_op;
    if (ct_engine_new(&cfg, &r->eng, &st) != CT_OK ||
        ct_workspace_new(r->eng, NULL, &r->ws, &st) != CT_OK)
        die("engine", &st);
    r->ns = calloc((size_t)iters, sizeof(double));
    if (r->ns == NULL)
        die_oom();
}

static void runner_add_net(struct runner *r, const ct_netdef_t *def)
{
    ct_status_t st;

    if (ct_net_new(r->ws, def, NULL, &r->nets[r->n_nets], &st) != CT_OK)
        die("net", &st);
    r->n_nets++;
}

static double runner_step(struct runner *r)
{
    const uint64_t t0 = bench_now_ns();
    ct_status_t st;
    int i;

    for (i = 0; i < r->n_nets; i++)
        if (ct_net_run(r->nets[i], &st) != CT_OK)
            die("step", &st);
    return (double)(bench_now_ns() - t0);
}

static void runner_destroy(struct runner *r)
{
    int i;

    for (i = 0; i < r->n_nets; i++)
        ct_net_free(r->nets[i]);
    ct_workspace_free(r->ws);
    ct_engine_free(r->eng);
    free(r->ns);
}

/* The sequential nets: K forward + backward nets reading data_<k>,
 * label_<k> and writing <param>_grad_<k>, then Sum and WeightedSum in the
 * order the step net uses. */
static void add_sequential_nets(struct runner *r, const ct_netdef_t *fwd,
                                int k_n)
{
    const char *loss = "loss";
    ct_netdef_t *fb = NULL, *def;
    ct_status_t st;
    char *txt = NULL, from[48], to[48];
    size_t len, cap = 8192, off = 0;
    int k, i;

    if (ct_proto_copy(&fwd->base, (ProtobufCMessage **)&fb, &st) != CT_OK ||
        ct_netdef_add_gradient_ops(fb, &loss, 1, &st) != CT_OK ||
        ct_pbtxt_format(&fb->base, &txt, &len, &st) != CT_OK)
        die("sequential net", &st);
    for (k = 0; k < k_n; k++) {
        char *a, *b;
        snprintf(to, sizeof(to), "\"data_%d\"", k);
        a = replace_all(txt, "\"data\"", to);
        snprintf(to, sizeof(to), "\"label_%d\"", k);
        b = replace_all(a, "\"label\"", to);
        free(a);
        for (i = 0; i < N_PARAMS; i++) {
            snprintf(from, sizeof(from), "\"%s_grad\"", params[i]);
            snprintf(to, sizeof(to), "\"%s_grad_%d\"", params[i], k);
            a = replace_all(b, from, to);
            free(b);
            b = a;
        }
        snprintf(to, sizeof(to), "name: \"mlp_fb_%d\"", k);
        a = replace_all(b, "name: \"mlp\"", to);
        free(b);
        def = parse(a, strlen(a));
        runner_add_net(r, def);
        ct_netdef_free(def);
        free(a);
    }
    ct_free(txt);
    ct_netdef_free(fb);

    txt = malloc(cap);
    if (txt == NULL)
        die_oom();
    off += (size_t)snprintf(txt + off, cap - off, "name: \"seq_update\"\n");
    for (i = 0; i < N_PARAMS; i++) {
        off += (size_t)snprintf(txt + off, cap - off, "op {");
        for (k = 0; k < k_n; k++)
            off += (size_t)snprintf(txt + off, cap - off,
                                    " input: \"%s_grad_%d\"", params[i], k);
        off += (size_t)snprintf(txt + off, cap - off,
                                " output: \"%s_grad\" type: \"Sum\" }\n",
                                params[i]);
    }
    off += (size_t)snprintf(
        txt + off, cap - off,
        "op { output: \"one\" type: \"ConstantFill\" arg { name: \"shape\" "
        "ints: 1 } arg { name: \"value\" f: 1 } }\n"
        "op { output: \"lr\" type: \"ConstantFill\" arg { name: \"shape\" "
        "ints: 1 } arg { name: \"value\" f: %.9g } }\n",
        (double)lr);
    for (i = 0; i < N_PARAMS; i++)
        off += (size_t)snprintf(
            txt + off, cap - off,
            "op { input: \"%s\" input: \"one\" input: \"%s_grad\" "
            "input: \"lr\" output: \"%s\" type: \"WeightedSum\" }\n",
            params[i], params[i], params[i]);
    if (off >= cap) {
        fprintf(stderr, "bench_grad_accum: update net text too long\n");
        exit(1);
    }
    def = parse(txt, off);
    runner_add_net(r, def);
    ct_netdef_free(def);
    free(txt);
}

/* Whether blob `name` holds the same bytes in a and b. */
static bool same_bits(const struct runner *a, const struct runner *b,
                      const char *name)
{
    const ct_blob_t *ba = ct_workspace_get_blob(a->ws, name);
    const ct_blob_t *bb = ct_workspace_get_blob(b->ws, name);
    const ct_tensor_t *x = ba != NULL ? ct_blob_get_tensor(ba) : NULL;
    const ct_tensor_t *y = bb != NULL ? ct_blob_get_tensor(bb) : NULL;

    return x != NULL && y != NULL &&
           ct_tensor_nbytes(x) == ct_tensor_nbytes(y) &&
           memcmp(ct_tensor_cdata(x), ct_tensor_cdata(y),
                  ct_tensor_nbytes(x)) == 0;
}

/* The first parameter or summed gradient that differs, or NULL. */
static const char *first_difference(const struct runner *a,
                                    const struct runner *b)
{
    static char g[N_PARAMS][16];
    int i;

    for (i = 0; i < N_PARAMS; i++) {
        snprintf(g[i], sizeof(g[i]), "%s_grad", params[i]);
        if (!same_bits(a, b, g[i]))
            return g[i];
        if (!same_bits(a, b, params[i]))
            return params[i];
    }
    return NULL;
}

struct result {
    double accum, seq, seq_thr; /* median ns per step; seq_thr 0: none */
    double accum_min, seq_min;  /* fastest step, ns */
    bool same_as_seq;           /* accum == seq, bit for bit, every step */
};

/* Runs (and times) one step of each runner of `rs`, rotating the order by
 * `i`, so that none always runs with warm or cold caches. */
static void step_all(struct runner *const *rs, int n, int i, double *t)
{
    int j;

    for (j = 0; j < n; j++) {
        const int r = (i + j) % n;
        t[r] = runner_step(rs[r]);
    }
}

/* --profile: where the accumulated step's time goes (the step net's
 * profile over the timed steps). */
static void print_profile(const struct bench_opts *o, const ct_net_t *net,
                          int k_n, int threads)
{
    static const char *const types[] = {"CreateScope", "Do", "Sum",
                                        "ConstantFill", "WeightedSum"};
    FILE *f = o->json ? stderr : stdout;
    struct ct_net_profile p;
    ct_status_t st;
    double per_type[5] = {0};
    size_t ti;
    int i;

    if (ct_net_get_profile(net, &p, &st) != CT_OK)
        die("profile", &st);
    for (i = 0; i < ct_net_n_ops(net); i++) {
        uint64_t ns = 0;
        if (ct_net_op_time_ns(net, i, &ns) != CT_OK)
            continue;
        for (ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
            if (strcmp(ct_net_op_type(net, i), types[ti]) == 0)
                per_type[ti] += (double)ns;
    }
    fprintf(f,
            "#   profile k=%d threads=%d: wall %.3f ms/step, kernels %.3f "
            "ms/step, critical path %.3f ms/step, overhead %.3f ms/step, "
            "parallel efficiency %.2f on %d threads; op time per step:",
            k_n, threads, (double)p.wall_ns / 1e6 / (double)p.runs,
            (double)p.kernel_ns / 1e6 / (double)p.runs,
            (double)p.critical_path_ns / 1e6 / (double)p.runs,
            (double)p.overhead_ns / 1e6 / (double)p.runs, p.parallel_efficiency,
            p.threads);
    for (ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
        fprintf(f, " %s %.3f ms", types[ti],
                per_type[ti] / 1e6 / (double)p.runs);
    fprintf(f, "\n");
}

static void run_case(const ct_netdef_t *fwd, const struct model_data *m,
                     int k_n, int threads, int intra_op, bool profile,
                     const struct bench_opts *o, struct result *res)
{
    static const char *const inputs[2] = {"data", "label"};
    struct ct_grad_accum_config cfg;
    struct runner acc, seq, thr;
    struct runner *rs[3] = {&acc, &seq, &thr};
    /* Intra-op parallelism changes FC's bits: compare with the sequential
     * run of the same engine configuration. */
    const bool with_thr = intra_op != CT_INTRA_OP_SERIAL && threads > 1;
    const int n_runs = with_thr ? 3 : 2;
    const struct runner *ref = with_thr ? &thr : &seq;
    ct_netdef_t *step = NULL;
    ct_status_t st;
    int i, j;

    memset(&cfg, 0, sizeof(cfg));
    cfg.k = k_n;
    cfg.params = params;
    cfg.n_params = N_PARAMS;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.loss = "loss";
    cfg.lr = lr;
    if (ct_netdef_build_grad_accum(fwd, &cfg, &step, &st) != CT_OK)
        die("ct_netdef_build_grad_accum", &st);
    runner_init(&acc, threads, intra_op, o->iters);
    feed_all(acc.ws, m, k_n);
    runner_add_net(&acc, step);
    ct_netdef_free(step);
    runner_init(&seq, 1, intra_op, o->iters);
    feed_all(seq.ws, m, k_n);
    add_sequential_nets(&seq, fwd, k_n);
    if (with_thr) {
        runner_init(&thr, threads, intra_op, o->iters);
        feed_all(thr.ws, m, k_n);
        add_sequential_nets(&thr, fwd, k_n);
    }

    res->same_as_seq = true;
    for (i = 0; i < o->warmup + o->iters; i++) {
        double t[3];
        const char *diff;
        if (profile && i == o->warmup &&
            ct_net_set_profiling(acc.nets[0], true, &st) != CT_OK)
            die("profile", &st);
        step_all(rs, n_runs, i, t);
        diff = first_difference(ref, &acc);
        if (diff != NULL) {
            fprintf(stderr,
                    "bench_grad_accum: FAILED: %s after step %d (k=%d, "
                    "threads=%d) differs between the accumulated and the "
                    "sequential run\n",
                    diff, i, k_n, threads);
            exit(1);
        }
        if (with_thr && first_difference(&seq, &acc) != NULL)
            res->same_as_seq = false;
        if (i >= o->warmup)
            for (j = 0; j < n_runs; j++)
                rs[j]->ns[i - o->warmup] = t[j];
    }
    if (profile)
        print_profile(o, acc.nets[0], k_n, threads);
    res->accum = bench_median(acc.ns, o->iters);
    res->seq = bench_median(seq.ns, o->iters);
    res->seq_thr = with_thr ? bench_median(thr.ns, o->iters) : 0;
    res->accum_min = acc.ns[0]; /* sorted by bench_median */
    res->seq_min = seq.ns[0];
    if (with_thr)
        runner_destroy(&thr);
    runner_destroy(&seq);
    runner_destroy(&acc);
}

/* Takes `--intra-op serial|pool` and `--profile` out of argv (bench_parse
 * knows only the common flags). */
static int parse_own_flags(int *argc, char **argv, bool *profile)
{
    int mode = CT_INTRA_OP_SERIAL, i, j;

    *profile = false;
    for (i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--profile") == 0) {
            *profile = true;
            for (j = i; j + 1 <= *argc; j++)
                argv[j] = argv[j + 1];
            *argc -= 1;
            i--;
            continue;
        }
        if (strcmp(argv[i], "--intra-op") != 0)
            continue;
        if (i + 1 < *argc && strcmp(argv[i + 1], "serial") == 0)
            mode = CT_INTRA_OP_SERIAL;
        else if (i + 1 < *argc && strcmp(argv[i + 1], "pool") == 0)
            mode = CT_INTRA_OP_POOL;
        else {
            fprintf(stderr, "%s: --intra-op takes serial or pool\n", argv[0]);
            exit(2);
        }
        for (j = i; j + 2 <= *argc; j++)
            argv[j] = argv[j + 2];
        *argc -= 2;
        i--;
    }
    return mode;
}

static void print_case(const struct bench_opts *o, int k_n, int threads,
                       int intra_op, const struct result *r)
{
    const double sps = 1e9 / r->accum, seq_sps = 1e9 / r->seq;
    const char *mode = intra_op == CT_INTRA_OP_SERIAL ? "serial" : "pool";

    bench_sink += sps;
    if (o->json) {
        printf("{\"k\":%d,\"threads\":%d,\"intra_op\":\"%s\","
               "\"batch\":%d,\"steps_per_s\":%.3f,\"ms_per_step\":%.3f,"
               "\"seq_steps_per_s\":%.3f,\"speedup_vs_sequential\":%.3f,"
               "\"min_ms_per_step\":%.3f,\"seq_min_ms_per_step\":%.3f,"
               "\"speedup_fastest_steps\":%.3f",
               k_n, threads, mode, BATCH, sps, r->accum / 1e6, seq_sps,
               sps / seq_sps, r->accum_min / 1e6, r->seq_min / 1e6,
               r->seq_min / r->accum_min);
        if (r->seq_thr > 0)
            printf(",\"seq_threads_steps_per_s\":%.3f,"
                   "\"speedup_vs_seq_threads\":%.3f,"
                   "\"same_bits_as_1_thread\":%s",
                   1e9 / r->seq_thr, r->seq_thr / r->accum,
                   r->same_as_seq ? "true" : "false");
        printf("}\n");
    } else {
        printf("k=%d threads=%d: accum %7.1f steps/s (%6.2f ms), sequential "
               "%7.1f steps/s (%6.2f ms), speedup %.2fx (fastest steps "
               "%.2f / %.2f ms: %.2fx)",
               k_n, threads, sps, r->accum / 1e6, seq_sps, r->seq / 1e6,
               sps / seq_sps, r->accum_min / 1e6, r->seq_min / 1e6,
               r->seq_min / r->accum_min);
        if (r->seq_thr > 0)
            printf("; sequential at %d threads %.1f steps/s (accum %.2fx), "
                   "%s bits as 1 thread",
                   threads, 1e9 / r->seq_thr, r->seq_thr / r->accum,
                   r->same_as_seq ? "same" : "different");
        printf("\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const int ks[3] = {1, 2, 4};
    struct bench_opts o;
    struct model_data m;
    ct_netdef_t *fwd;
    int threads[2], n_threads, t, ki, intra_op;
    bool profile;

    intra_op = parse_own_flags(&argc, argv, &profile);
    bench_parse(argc, argv, &o, " [--intra-op serial|pool] [--profile]");
    bench_print_env(&o);
    threads[0] = 1;
    threads[1] = o.threads > 1 ? o.threads : 2;
    n_threads = o.threads == 1 ? 1 : 2;
    model_data_init(&m);
    fwd = parse(fwd_txt, strlen(fwd_txt));
    if (!o.json)
        printf("# MLP %d-%d-%d-%d, micro-batch %d, intra-op %s; speedup = "
               "accum / sequential (K micro-batches one after the other, "
               "1 thread); medians of %d steps\n",
               IN, H1, H2, OUT, BATCH,
               intra_op == CT_INTRA_OP_SERIAL ? "serial" : "pool", o.iters);
    for (t = 0; t < n_threads; t++)
        for (ki = 0; ki < 3; ki++) {
            struct result r;
            run_case(fwd, &m, ks[ki], threads[t], intra_op, profile, &o, &r);
            print_case(&o, ks[ki], threads[t], intra_op, &r);
        }
    ct_netdef_free(fwd);
    model_data_destroy(&m);
    return 0;
}
