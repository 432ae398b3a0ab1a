/* bench_sched: scheduling overhead per task, against baselines measured in
 * the same run.
 *
 * For each DAG shape and thread count it builds the graph once and times
 * re-runs of it, printing ns per task for
 *   dag   cortado's dag executor on a compiled net of NoOp operators (so
 *         the time is the executor's: chains, join counters, stealing,
 *         observers' no-op hooks, the op call),
 *   pool  cortado's pool directly: one intrusive task per node with join
 *         counters and continuation passing (scheduler/pool.h),
 *   seq   a sequential dependency-counting loop (the single-thread floor),
 *   omp   OpenMP tasks with `depend` clauses (libgomp),
 *   tbb   oneTBB's flow graph of continue_nodes (perf/baseline_tbb.cpp,
 *         built when Debian's libtbb-dev is installed; null otherwise),
 * and the ratios dag_vs_tbb and pool_vs_seq. Shapes: chain, fan-out/fan-in,
 * binary tree, 2-D wavefront, independent tasks, random layered DAG.
 * --work-ns K gives every task K ns of busy work instead, to show the
 * speedup over one thread (fields *_speedup, relative to the 1-thread
 * run of the same shape in the same process).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef CT_HAVE_OPENMP
#include <omp.h>
#endif

#include "cortado/cortado.h"
#include "perf_util.h"
#include "proto/caffe2.pb-c.h"
#include "scheduler/pool.h"

/* ---- graphs ---- */

/* Nodes are numbered in a topological order: every parent < child. */
struct graph {
    const char *shape;
    int n;
    int *n_par;      /* n */
    int *poff, *par; /* parents CSR */
    int *coff, *chi; /* children CSR */
};

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (p == NULL) {
        fprintf(stderr, "bench_sched: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Builds CSR from an edge list (parent, child). */
static void graph_from_edges(struct graph *g, int n, const int *ep,
                             const int *ec, int m)
{
    int i, e, *fill;

    g->n = n;
    g->n_par = xcalloc((size_t)n, sizeof(int));
    g->poff = xcalloc((size_t)n + 1, sizeof(int));
    g->coff = xcalloc((size_t)n + 1, sizeof(int));
    g->par = xcalloc((size_t)m, sizeof(int));
    g->chi = xcalloc((size_t)m, sizeof(int));
    for (e = 0; e < m; e++) {
        g->poff[ec[e] + 1]++;
        g->coff[ep[e] + 1]++;
    }
    for (i = 0; i < n; i++) {
        g->poff[i + 1] += g->poff[i];
        g->coff[i + 1] += g->coff[i];
        g->n_par[i] = g->poff[i + 1] - g->poff[i];
    }
    fill = xcalloc((size_t)n * 2, sizeof(int));
    for (e = 0; e < m; e++) {
        g->par[g->poff[ec[e]] + fill[ec[e]]++] = ep[e];
        g->chi[g->coff[ep[e]] + fill[n + ep[e]]++] = ec[e];
    }
    free(fill);
}

static void graph_build(struct graph *g, const char *shape, int n)
{
    int *ep, *ec, m = 0, i;
    size_t cap = (size_t)n * 3 + 8;

    ep = xcalloc(cap, sizeof(int));
    ec = xcalloc(cap, sizeof(int));
    g->shape = shape;
    if (strcmp(shape, "chain") == 0) {
        for (i = 1; i < n; i++, m++) {
            ep[m] = i - 1;
            ec[m] = i;
        }
    } else if (strcmp(shape, "fanout") == 0) {
        /* One root, n - 2 independent, one sink. */
        for (i = 1; i < n - 1; i++) {
            ep[m] = 0;
            ec[m++] = i;
            ep[m] = i;
            ec[m++] = n - 1;
        }
    } else if (strcmp(shape, "bintree") == 0) {
        for (i = 1; i < n; i++, m++) {
            ep[m] = (i - 1) / 2;
            ec[m] = i;
        }
    } else if (strcmp(shape, "wavefront") == 0) {
        int side = 1, r, c;
        while ((side + 1) * (side + 1) <= n)
            side++;
        n = side * side;
        for (r = 0; r < side; r++)
            for (c = 0; c < side; c++) {
                if (c > 0) {
                    ep[m] = r * side + c - 1;
                    ec[m++] = r * side + c;
                }
                if (r > 0) {
                    ep[m] = (r - 1) * side + c;
                    ec[m++] = r * side + c;
                }
            }
    } else if (strcmp(shape, "independent") == 0) {
        /* no edges */
    } else { /* random layered: width 32, 1-3 parents in the layer above */
        const int width = 32;
        uint64_t s = 0x9E3779B97F4A7C15ull;
        for (i = width; i < n; i++) {
            int layer_start = (i / width - 1) * width, k, np;
            np = 1 + (int)(rng(&s) % 3);
            for (k = 0; k < np; k++) {
                int p = layer_start + (int)(rng(&s) % (uint64_t)width);
                int dup = 0, q;
                for (q = m - k; q < m; q++)
                    dup |= ep[q] == p;
                if (dup)
                    continue;
                ep[m] = p;
                ec[m++] = i;
            }
        }
    }
    graph_from_edges(g, n, ep, ec, m);
    free(ep);
    free(ec);
}

static void graph_free(struct graph *g)
{
    free(g->n_par);
    free(g->poff);
    free(g->par);
    free(g->coff);
    free(g->chi);
}

/* ---- task body ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void body(int64_t work_ns)
{
    if (work_ns > 0) {
        int64_t end = now_ns() + work_ns;
        while (now_ns() < end)
            ;
    }
}

/* ---- (c) sequential dependency counting ---- */

static double run_seq(const struct graph *g, const struct bench_opts *o,
                      int64_t work_ns)
{
    int *pending = xcalloc((size_t)g->n, sizeof(int));
    int *stack = xcalloc((size_t)g->n, sizeof(int));
    double *v = xcalloc((size_t)o->iters, sizeof(double));
    int it, i, sp, k;
    double med;

    memcpy(pending, g->n_par, (size_t)g->n * sizeof(int));
    for (it = 0; it < o->warmup + o->iters; it++) {
        int64_t t0 = now_ns();
        sp = 0;
        for (i = g->n - 1; i >= 0; i--)
            if (g->n_par[i] == 0)
                stack[sp++] = i;
        while (sp > 0) {
            i = stack[--sp];
            body(work_ns);
            for (k = g->coff[i]; k < g->coff[i + 1]; k++) {
                int c = g->chi[k];
                if (--pending[c] == 0) {
                    pending[c] = g->n_par[c];
                    stack[sp++] = c;
                }
            }
        }
        if (it >= o->warmup)
            v[it - o->warmup] = (double)(now_ns() - t0) / g->n;
    }
    med = bench_median(v, o->iters);
    free(v);
    free(stack);
    free(pending);
    return med;
}

/* ---- (b) the pool API directly ---- */

struct ptask {
    struct ct__task task;
    struct pgraph *pg;
    int i;
    _Atomic int pending;
} __attribute__((aligned(64)));

struct pgraph {
    const struct graph *g;
    struct ct__pool *pool;
    struct ptask *t;
    struct ct__latch sinks;
    int64_t work_ns;
};

static struct ct__task *ptask_run(struct ct__task *task, struct ct__worker *w)
{
    struct ptask *t = (struct ptask *)task;
    struct pgraph *pg = t->pg;
    const struct graph *g = pg->g;
    struct ct__pool *pool = pg->pool;
    struct ct__task *hold = NULL, *batch[16];
    int k, nb = 0, first = g->coff[t->i], last = g->coff[t->i + 1];

    body(pg->work_ns);
    if (first == last) {
        ct__latch_count_down(pool, &pg->sinks, 1);
        return NULL;
    }
    for (k = first; k < last; k++) {
        struct ptask *d = &pg->t[g->chi[k]];
        int np = g->n_par[d->i];
        if (np > 1) {
            if (atomic_fetch_sub_explicit(&d->pending, 1,
                                          memory_order_acq_rel) != 1)
                continue;
            atomic_store_explicit(&d->pending, np, memory_order_relaxed);
        }
        if (hold == NULL) {
            hold = &d->task;
        } else {
            batch[nb++] = &d->task;
            if (nb == 16) {
                ct__worker_push_n(w, batch, 16);
                nb = 0;
            }
        }
    }
    if (nb > 0)
        ct__worker_push_n(w, batch, (size_t)nb);
    return hold;
}

static double run_pool(const struct graph *g, int threads,
                       const struct bench_opts *o, int64_t work_ns)
{
    struct ct__pool_config cfg;
    struct pgraph pg;
    struct ct__task **roots;
    double *v = xcalloc((size_t)o->iters, sizeof(double));
    int i, it, n_roots = 0, n_sinks = 0;
    ct_status_t st;
    double med;

    ct__pool_config_init(&cfg);
    cfg.n_threads = threads;
    if (ct__pool_new(&cfg, &pg.pool, &st) != CT_OK) {
        fprintf(stderr, "bench_sched: pool: %s\n", st.msg);
        exit(1);
    }
    pg.g = g;
    pg.work_ns = work_ns;
    if (posix_memalign((void **)&pg.t, 64,
                       sizeof(struct ptask) * (size_t)g->n) != 0)
        exit(1);
    roots = xcalloc((size_t)g->n, sizeof(*roots));
    for (i = 0; i < g->n; i++) {
        pg.t[i].task.run_cb = ptask_run;
        pg.t[i].pg = &pg;
        pg.t[i].i = i;
        atomic_init(&pg.t[i].pending, g->n_par[i]);
        if (g->n_par[i] == 0)
            roots[n_roots++] = &pg.t[i].task;
        n_sinks += g->coff[i] == g->coff[i + 1];
    }
    for (it = 0; it < o->warmup + o->iters; it++) {
        int64_t t0 = now_ns();
        struct ct__worker *w = ct__pool_attach(pg.pool);
        ct__latch_init(&pg.sinks, n_sinks);
        ct__worker_push_n(w, roots, (size_t)n_roots);
        ct__pool_wait_latch(pg.pool, &pg.sinks);
        ct__pool_detach(w);
        if (it >= o->warmup)
            v[it - o->warmup] = (double)(now_ns() - t0) / g->n;
    }
    med = bench_median(v, o->iters);
    ct__pool_free(pg.pool);
    free(pg.t);
    free(roots);
    free(v);
    return med;
}

/* ---- (a) the dag executor on NoOp nets ---- */

static Caffe2__NetDef *noop_net(const struct graph *g, int64_t work_ns)
{
    Caffe2__NetDef *def = xcalloc(1, sizeof(*def));
    Caffe2__Argument *busy = NULL;
    int i, k;

    caffe2__net_def__init(def);
    def->name = "bench";
    def->type = "dag";
    def->n_op = (size_t)g->n;
    def->op = xcalloc((size_t)g->n, sizeof(*def->op));
    if (work_ns > 0) {
        busy = xcalloc(1, sizeof(*busy));
        caffe2__argument__init(busy);
        busy->name = "busy_ns";
        busy->has_i = 1;
        busy->i = work_ns;
    }
    for (i = 0; i < g->n; i++) {
        Caffe2__OperatorDef *op = xcalloc(1, sizeof(*op));
        caffe2__operator_def__init(op);
        op->type = "NoOp";
        op->n_output = 1;
        op->output = xcalloc(1, sizeof(char *));
        op->output[0] = xcalloc(16, 1);
        snprintf(op->output[0], 16, "t%d", i);
        op->n_input = (size_t)g->n_par[i];
        op->input = xcalloc((size_t)g->n_par[i], sizeof(char *));
        for (k = 0; k < g->n_par[i]; k++)
            op->input[k] = def->op[g->par[g->poff[i] + k]]->output[0];
        if (busy != NULL) {
            op->n_arg = 1;
            op->arg = xcalloc(1, sizeof(*op->arg));
            op->arg[0] = busy;
        }
        def->op[i] = op;
    }
    return def;
}

static void noop_net_free(Caffe2__NetDef *def)
{
    size_t i;
    Caffe2__Argument *busy = NULL;
    for (i = 0; i < def->n_op; i++) {
        free(def->op[i]->output[0]);
        free(def->op[i]->output);
        free(def->op[i]->input);
        if (def->op[i]->n_arg)
            busy = def->op[i]->arg[0];
        free(def->op[i]->arg);
        free(def->op[i]);
    }
    free(busy);
    free(def->op);
    free(def);
}

static double run_dag(const struct graph *g, int threads,
                      const struct bench_opts *o, int64_t work_ns,
                      double *build_ns)
{
    struct ct_engine_config ecfg;
    struct ct_net_config ncfg;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_status_t st;
    Caffe2__NetDef *def = noop_net(g, work_ns);
    double *v = xcalloc((size_t)o->iters, sizeof(double));
    int it;
    int64_t t0;
    double med;

    ct_engine_config_init(&ecfg);
    ecfg.n_threads = threads;
    memset(&ncfg, 0, sizeof(ncfg));
    ncfg.num_workers = threads;
    if (ct_engine_new(&ecfg, &eng, &st) != CT_OK ||
        ct_workspace_new(eng, NULL, &ws, &st) != CT_OK)
        goto fail;
    t0 = now_ns();
    if (ct_net_new(ws, def, &ncfg, &net, &st) != CT_OK)
        goto fail;
    *build_ns = (double)(now_ns() - t0) / g->n;
    for (it = 0; it < o->warmup + o->iters; it++) {
        t0 = now_ns();
        if (ct_net_run(net, &st) != CT_OK)
            goto fail;
        if (it >= o->warmup)
            v[it - o->warmup] = (double)(now_ns() - t0) / g->n;
    }
    med = bench_median(v, o->iters);
    ct_net_free(net);
    ct_workspace_free(ws);
    ct_engine_free(eng);
    noop_net_free(def);
    free(v);
    return med;
fail:
    fprintf(stderr, "bench_sched: dag: %s\n", st.msg);
    exit(1);
}

/* ---- (d) OpenMP tasks with depend ---- */

static double run_omp(const struct graph *g, int threads,
                      const struct bench_opts *o, int64_t work_ns)
{
#ifdef CT_HAVE_OPENMP
    char *deps = xcalloc((size_t)g->n, 1);
    double *v = xcalloc((size_t)o->iters, sizeof(double));
    int it;
    double med;

    for (it = 0; it < o->warmup + o->iters; it++) {
        int64_t t0 = now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
        {
            int i;
            for (i = 0; i < g->n; i++) {
                const int *p = g->par + g->poff[i];
                int np = g->n_par[i];
                (void)np; /* used by the depend iterator only */
#pragma omp task firstprivate(i) depend(iterator(j = 0                         \
                                                 : np),                        \
                                        in                                     \
                                        : deps[p[j]]) depend(out               \
                                                             : deps[i])
                body(work_ns);
            }
        }
        if (it >= o->warmup)
            v[it - o->warmup] = (double)(now_ns() - t0) / g->n;
    }
    med = bench_median(v, o->iters);
    free(v);
    free(deps);
    return med;
#else
    (void)g;
    (void)threads;
    (void)o;
    (void)work_ns;
    return -1;
#endif
}

/* ---- (e) oneTBB flow graph (perf/baseline_tbb.cpp) ---- */

#ifdef CT_HAVE_TBB
double ct_bench_tbb_ns_per_task(const int *coff, const int *chi,
                                const int *n_par, int n, int threads,
                                int warmup, int iters, long long work_ns);
#endif

static double run_tbb(const struct graph *g, int threads,
                      const struct bench_opts *o, int64_t work_ns)
{
#ifdef CT_HAVE_TBB
    return ct_bench_tbb_ns_per_task(g->coff, g->chi, g->n_par, g->n, threads,
                                    o->warmup, o->iters, work_ns);
#else
    (void)g;
    (void)threads;
    (void)o;
    (void)work_ns;
    return -1;
#endif
}

/* ---- driver ---- */

static void print_num(const char *key, double v, int last)
{
    if (v < 0)
        printf("\"%s\":null%s", key, last ? "" : ",");
    else
        printf("\"%s\":%.2f%s", key, v, last ? "" : ",");
}

int main(int argc, char **argv)
{
    static const char *const shapes[] = {"chain",     "fanout",      "bintree",
                                         "wavefront", "independent", "random"};
    struct bench_opts o;
    int n_tasks = 100000, max_threads = 2, t, s, a;
    int64_t work_ns = 0;
    double base_dag[6], base_pool[6];

    /* Our own flags first; the rest go to bench_parse. */
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--tasks") == 0 && a + 1 < argc) {
            n_tasks = atoi(argv[a + 1]);
            memmove(&argv[a], &argv[a + 2],
                    (size_t)(argc - a - 1) * sizeof(char *));
            argc -= 2;
            a--;
        } else if (strcmp(argv[a], "--work-ns") == 0 && a + 1 < argc) {
            work_ns = atoll(argv[a + 1]);
            memmove(&argv[a], &argv[a + 2],
                    (size_t)(argc - a - 1) * sizeof(char *));
            argc -= 2;
            a--;
        }
    }
    bench_parse(argc, argv, &o, " [--tasks N] [--work-ns K]");
    if (o.threads > 0)
        max_threads = o.threads;
    if (o.smoke)
        n_tasks = n_tasks > 2000 ? 2000 : n_tasks;
    if (work_ns > 0 && !o.smoke && n_tasks > 20000)
        n_tasks = 20000;
    if (n_tasks < 4) {
        fprintf(stderr, "bench_sched: --tasks must be >= 4\n");
        return 2;
    }
    bench_print_env(&o);
    for (t = 1; t <= max_threads;
         t = t < max_threads && t * 2 > max_threads ? max_threads : t * 2) {
        for (s = 0; s < 6; s++) {
            struct graph g;
            double dag, pool, seq, omp = -1, tbb, build = 0;
            graph_build(&g, shapes[s], n_tasks);
            dag = run_dag(&g, t, &o, work_ns, &build);
            pool = run_pool(&g, t, &o, work_ns);
            seq = run_seq(&g, &o, work_ns);
            /* libgomp's fan-in is quadratic: skip the big fan-out. */
            if (strcmp(shapes[s], "fanout") != 0 || g.n <= 20000)
                omp = run_omp(&g, t, &o, work_ns);
            tbb = run_tbb(&g, t, &o, work_ns);
            if (t == 1) {
                base_dag[s] = dag;
                base_pool[s] = pool;
            }
            if (o.json) {
                printf("{\"shape\":\"%s\",\"threads\":%d,\"tasks\":%d,"
                       "\"work_ns\":%lld,",
                       shapes[s], t, g.n, (long long)work_ns);
                print_num("dag_ns_per_task", dag, 0);
                print_num("pool_ns_per_task", pool, 0);
                print_num("seq_ns_per_task", seq, 0);
                print_num("omp_ns_per_task", omp, 0);
                print_num("tbb_ns_per_task", tbb, 0);
                print_num("dag_vs_tbb", tbb > 0 ? dag / tbb : -1, 0);
                print_num("pool_vs_seq", pool / seq, 0);
                print_num("dag_speedup", base_dag[s] / dag, 0);
                print_num("pool_speedup", base_pool[s] / pool, 0);
                print_num("dag_build_ns_per_task", build, 1);
                printf("}\n");
            } else {
                printf("%-11s thr=%d n=%-7d dag %7.1f  pool %7.1f  seq %7.1f"
                       "  omp %8.1f  tbb %7.1f ns/task  dag/tbb %5.2f"
                       "  pool/seq %5.2f  speedup dag %4.2f pool %4.2f"
                       "  build %5.0f ns/op\n",
                       shapes[s], t, g.n, dag, pool, seq, omp, tbb,
                       tbb > 0 ? dag / tbb : -1, pool / seq, base_dag[s] / dag,
                       base_pool[s] / pool, build);
            }
            fflush(stdout);
            graph_free(&g);
        }
        if (t == max_threads)
            break;
    }
    return 0;
}
