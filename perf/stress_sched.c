/* stress_sched: the dag executor under random DAGs, failures and
 * concurrency (spec/reliability-checklist.md §E), bounded in time.
 *
 * For each seed and each engine size (1, 2 and 8 threads):
 *   - a random DAG net (10 to --max-nodes nodes, random fan-in 1-4 from
 *     earlier nodes) where node i is a Sum of its parents' blobs, and
 *     about one node in ten is followed by an in-place NoOp that busy-
 *     waits 0-100 us (so the critical path has real latency);
 *   - its results must equal the simple executor's bit for bit;
 *   - an observer takes a ticket from one global counter at every op start
 *     and end; every edge p -> c must have end(p) < start(c);
 *   - an observer then fails a random op at its start: the run must
 *     return exactly that op's error, and the next run (no failure) must
 *     succeed with the same results: the pool stays usable.
 * Then 4 threads run different random nets at once on one engine.
 * A watchdog thread aborts with a report of the phase that hung instead
 * of letting a deadlock hang CI. Prints "N passed, N failed".
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cortado/cortado.h"
#include "cortado/observer.h"
#include "engine/net_impl.h"
#include "perf_util.h"
#include "proto/caffe2.pb-c.h"

/* ---- watchdog ---- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv = PTHREAD_COND_INITIALIZER;
static char wd_phase[160];
static uint64_t wd_deadline_ns; /* guarded by wd_mu; 0 = disarmed */
static int wd_stop;             /* guarded by wd_mu */

static void wd_arm(int seconds, const char *fmt, ...) CT_PRINTF(2, 3);

static void wd_arm(int seconds, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&wd_mu);
    va_start(ap, fmt);
    vsnprintf(wd_phase, sizeof(wd_phase), fmt, ap);
    va_end(ap);
    wd_deadline_ns = bench_now_ns() + (uint64_t)seconds * 1000000000ull;
    pthread_mutex_unlock(&wd_mu);
}

static void *wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_mu);
    while (!wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
        if (wd_deadline_ns != 0 && bench_now_ns() > wd_deadline_ns) {
            fprintf(stderr,
                    "stress_sched: watchdog: no progress in phase \"%s\"; "
                    "a run is hung (deadlock or lost wake-up)\n",
                    wd_phase);
            fprintf(stderr, "0 passed, 1 failed\n");
            abort();
        }
    }
    pthread_mutex_unlock(&wd_mu);
    return NULL;
}

/* ---- random nets ---- */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct rnet {
    Caffe2__NetDef *def;
    int n_nodes;
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

static Caffe2__OperatorDef *new_op(const char *type, int n_in, int n_out)
{
    Caffe2__OperatorDef *op = calloc(1, sizeof(*op));
    caffe2__operator_def__init(op);
    op->type = xstrdup(type);
    op->n_input = (size_t)n_in;
    op->input = calloc((size_t)n_in + 1, sizeof(char *));
    op->n_output = (size_t)n_out;
    op->output = calloc((size_t)n_out + 1, sizeof(char *));
    return op;
}

static void rnet_build(struct rnet *r, const char *type, int max_nodes,
                       uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
    Caffe2__NetDef *def = calloc(1, sizeof(*def));
    int n = 10 + (int)(rng(&s) % (uint64_t)(max_nodes - 9));
    int i, k, n_ops = 0;
    char name[24];

    caffe2__net_def__init(def);
    def->name = xstrdup("stress");
    def->type = xstrdup(type);
    def->n_external_input = 1;
    def->external_input = calloc(1, sizeof(char *));
    def->external_input[0] = xstrdup("x");
    def->op = calloc((size_t)n * 2, sizeof(*def->op));
    for (i = 0; i < n; i++) {
        int n_in = 1 + (int)(rng(&s) % 4);
        Caffe2__OperatorDef *op = new_op("Sum", n_in, 1);
        for (k = 0; k < n_in; k++) {
            int p = i == 0 ? -1 : (int)(rng(&s) % (uint64_t)(i + 1)) - 1;
            if (p < 0 || i - p > 64)
                p = i > 0 && rng(&s) % 2 ? i - 1 : -1;
            if (p < 0)
                snprintf(name, sizeof(name), "x");
            else
                snprintf(name, sizeof(name), "b%d", p);
            op->input[k] = xstrdup(name);
        }
        snprintf(name, sizeof(name), "b%d", i);
        op->output[0] = xstrdup(name);
        def->op[n_ops++] = op;
        if (rng(&s) % 10 == 0) {
            Caffe2__OperatorDef *w = new_op("NoOp", 1, 1);
            Caffe2__Argument *a = calloc(1, sizeof(*a));
            caffe2__argument__init(a);
            a->name = xstrdup("busy_ns");
            a->has_i = 1;
            a->i = (int64_t)(rng(&s) % 100000);
            w->n_arg = 1;
            w->arg = calloc(1, sizeof(*w->arg));
            w->arg[0] = a;
            w->input[0] = xstrdup(name);
            w->output[0] = xstrdup(name);
            def->op[n_ops++] = w;
        }
    }
    def->n_op = (size_t)n_ops;
    r->def = def;
    r->n_nodes = n;
}

static void rnet_free(struct rnet *r)
{
    /* The message was built with the C allocator in protobuf-c's layout;
     * free it field by field. */
    size_t i, k;
    Caffe2__NetDef *def = r->def;
    for (i = 0; i < def->n_op; i++) {
        Caffe2__OperatorDef *op = def->op[i];
        for (k = 0; k < op->n_input; k++)
            free(op->input[k]);
        for (k = 0; k < op->n_output; k++)
            free(op->output[k]);
        for (k = 0; k < op->n_arg; k++) {
            free(op->arg[k]->name);
            free(op->arg[k]);
        }
        free(op->input);
        free(op->output);
        free(op->arg);
        free(op->type);
        free(op);
    }
    free(def->op);
    free(def->external_input[0]);
    free(def->external_input);
    free(def->name);
    free(def->type);
    free(def);
}

/* ---- observers: order tickets and failure injection ---- */

static _Atomic uint64_t ticket;

struct order_obs {
    int n_ops;
    uint64_t *start, *end; /* per op; written by the op's thread */
    int fail_op;           /* -1: none */
};

static int order_op_start(void *ctx, const struct ct_observer_event *ev,
                          ct_status_t *st)
{
    struct order_obs *o = ctx;
    o->start[ev->op->idx] =
        atomic_fetch_add_explicit(&ticket, 1, memory_order_seq_cst);
    if (ev->op->idx == o->fail_op)
        return ct_status_setf(st, CT_ECANCELED, "injected failure");
    return CT_OK;
}

static int order_op_end(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st)
{
    struct order_obs *o = ctx;
    (void)st;
    o->end[ev->op->idx] =
        atomic_fetch_add_explicit(&ticket, 1, memory_order_seq_cst);
    return CT_OK;
}

static void order_free(void *ctx)
{
    (void)ctx; /* owned by the caller's stack frame */
}

/* ---- one case ---- */

struct result {
    int n;
    float *v;
};

static int n_failed, n_passed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "stress_sched: FAIL: " __VA_ARGS__);               \
            fputc('\n', stderr);                                               \
            return -1;                                                         \
        }                                                                      \
    } while (0)

static int fetch(ct_workspace_t *ws, int n, struct result *r)
{
    char name[24];
    int i;
    r->n = n;
    r->v = calloc((size_t)n * 2, sizeof(float));
    for (i = 0; i < n; i++) {
        const ct_tensor_t *t;
        snprintf(name, sizeof(name), "b%d", i);
        t = ct_blob_get_tensor(ct_workspace_get_blob(ws, name));
        if (t == NULL)
            return -1;
        memcpy(r->v + 2 * i, ct_tensor_cdata(t), 2 * sizeof(float));
    }
    return 0;
}

static int run_case(ct_engine_t *eng, struct rnet *rn, const char *type,
                    bool check_order, uint64_t seed, struct result *out)
{
    static const float x[2] = {0.5f, -1.0f};
    const int64_t dims[1] = {2};
    struct ct_observer_cbs cbs;
    struct order_obs oo;
    ct_observer_t *obs = NULL;
    ct_workspace_t *ws;
    ct_net_t *net;
    ct_blob_t *b;
    ct_tensor_t *t;
    ct_status_t st;
    int i, k, rc;

    free(rn->def->type);
    rn->def->type = xstrdup(type);
    if (ct_workspace_new(eng, NULL, &ws, &st) != CT_OK ||
        ct_workspace_create_blob(ws, "x", &b, &st) != CT_OK ||
        ct_blob_get_mutable_tensor(b, eng, &t, &st) != CT_OK ||
        ct_tensor_resize(t, CT_DTYPE_F32, 1, dims, &st) != CT_OK)
        CHECK(0, "setup: %s", st.msg);
    memcpy(ct_tensor_data(t), x, sizeof(x));
    rc = ct_net_new(ws, rn->def, NULL, &net, &st);
    CHECK(rc == CT_OK, "compile: %s", st.msg);
    memset(&oo, 0, sizeof(oo));
    oo.fail_op = -1;
    if (check_order) {
        oo.n_ops = ct_net_n_ops(net);
        oo.start = calloc((size_t)oo.n_ops, sizeof(uint64_t));
        oo.end = calloc((size_t)oo.n_ops, sizeof(uint64_t));
        memset(&cbs, 0, sizeof(cbs));
        cbs.name = "order";
        cbs.op_start_cb = order_op_start;
        cbs.op_end_cb = order_op_end;
        cbs.free_cb = order_free;
        CHECK(ct_observer_new(&cbs, &oo, &obs, &st) == CT_OK, "%s", st.msg);
        CHECK(ct_net_add_observer(net, obs, &st) == CT_OK, "%s", st.msg);
    }
    rc = ct_net_run(net, &st);
    CHECK(rc == CT_OK, "run: %s", st.msg);
    if (check_order) {
        const int *par;
        for (i = 0; i < oo.n_ops; i++) {
            int np = ct_net_op_parents(net, i, &par);
            for (k = 0; k < np; k++)
                CHECK(oo.end[par[k]] < oo.start[i],
                      "seed %llu: edge %d -> %d violated",
                      (unsigned long long)seed, par[k], i);
        }
        /* Inject a failure at a random op: exactly its error comes back. */
        oo.fail_op = (int)(seed * 7919 % (uint64_t)oo.n_ops);
        rc = ct_net_run(net, &st);
        CHECK(rc == CT_ECANCELED && st.node == oo.fail_op &&
                  strstr(st.msg, "injected failure") != NULL,
              "seed %llu: injected failure at op %d gave rc %d node %d: %s",
              (unsigned long long)seed, oo.fail_op, rc, st.node, st.msg);
        oo.fail_op = -1;
        rc = ct_net_run(net, &st);
        CHECK(rc == CT_OK, "run after failure: %s", st.msg);
    }
    CHECK(fetch(ws, rn->n_nodes, out) == 0, "missing output blob");
    ct_net_free(net); /* frees the attached observer */
    ct_workspace_free(ws);
    free(oo.start);
    free(oo.end);
    return 0;
}

struct conc_arg {
    ct_engine_t *eng;
    uint64_t seed;
    int max_nodes;
    int ok;
};

static void *conc_main(void *p)
{
    struct conc_arg *a = p;
    struct rnet rn;
    struct result r1 = {0}, r2 = {0};
    int it;

    a->ok = 1;
    rnet_build(&rn, "simple", a->max_nodes, a->seed);
    if (run_case(a->eng, &rn, "simple", false, a->seed, &r1) != 0)
        a->ok = 0;
    for (it = 0; it < 5 && a->ok; it++) {
        if (run_case(a->eng, &rn, "dag", false, a->seed, &r2) != 0 ||
            memcmp(r1.v, r2.v, (size_t)r1.n * 2 * sizeof(float)) != 0)
            a->ok = 0;
        free(r2.v);
        r2.v = NULL;
    }
    free(r1.v);
    rnet_free(&rn);
    return NULL;
}

int main(int argc, char **argv)
{
    static const int pools[] = {1, 2, 8};
    int seeds = 50, max_nodes = 10000, a, p;
    uint64_t seed;
    pthread_t wd;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--seeds") == 0 && a + 1 < argc)
            seeds = atoi(argv[++a]);
        else if (strcmp(argv[a], "--max-nodes") == 0 && a + 1 < argc)
            max_nodes = atoi(argv[++a]);
        else if (strcmp(argv[a], "--smoke") == 0) {
            seeds = 5;
            max_nodes = 500;
        } else {
            fprintf(stderr, "usage: stress_sched [--seeds N] [--max-nodes N] "
                            "[--smoke]\n");
            return 2;
        }
    }
    if (seeds < 1 || max_nodes < 20) {
        fprintf(stderr, "stress_sched: --seeds >= 1, --max-nodes >= 20\n");
        return 2;
    }
    pthread_create(&wd, NULL, wd_main, NULL);
    for (p = 0; p < 3; p++) {
        struct ct_engine_config cfg;
        ct_engine_t *eng;
        ct_status_t st;
        ct_engine_config_init(&cfg);
        cfg.n_threads = pools[p];
        if (ct_engine_new(&cfg, &eng, &st) != CT_OK) {
            fprintf(stderr, "stress_sched: engine: %s\n", st.msg);
            return 1;
        }
        for (seed = 1; seed <= (uint64_t)seeds; seed++) {
            struct rnet rn;
            struct result r1 = {0}, r2 = {0};
            int ok;
            wd_arm(60, "pool %d seed %llu", pools[p], (unsigned long long)seed);
            rnet_build(&rn, "simple", max_nodes, seed);
            ok = run_case(eng, &rn, "simple", false, seed, &r1) == 0 &&
                 run_case(eng, &rn, "dag", true, seed, &r2) == 0 &&
                 memcmp(r1.v, r2.v, (size_t)r1.n * 2 * sizeof(float)) == 0;
            if (ok) {
                n_passed++;
            } else {
                n_failed++;
                fprintf(stderr, "stress_sched: pool %d seed %llu failed\n",
                        pools[p], (unsigned long long)seed);
            }
            free(r1.v);
            free(r2.v);
            rnet_free(&rn);
        }
        ct_engine_free(eng);
    }
    {
        struct ct_engine_config cfg;
        ct_engine_t *eng;
        ct_status_t st;
        struct conc_arg args[4];
        pthread_t th[4];
        int i;
        ct_engine_config_init(&cfg);
        cfg.n_threads = 2;
        if (ct_engine_new(&cfg, &eng, &st) != CT_OK)
            return 1;
        wd_arm(120, "4 nets at once");
        for (i = 0; i < 4; i++) {
            args[i].eng = eng;
            args[i].seed = 1000 + (uint64_t)i;
            args[i].max_nodes = max_nodes / 4 > 20 ? max_nodes / 4 : 20;
            pthread_create(&th[i], NULL, conc_main, &args[i]);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            if (args[i].ok)
                n_passed++;
            else
                n_failed++;
        }
        ct_engine_free(eng);
    }
    pthread_mutex_lock(&wd_mu);
    wd_stop = 1;
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
    pthread_join(wd, NULL);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
