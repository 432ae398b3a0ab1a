/* bench_stats: the sharded stat registry against Caffe2's design.
 *
 * Caffe2's StatRegistry (spec §1.2) is one mutex over a hash map from name
 * to a heap-allocated atomic int64. Two update paths exist there, and both
 * are written here in the same binary:
 *   mutex   - StatRegistry::update / add(name)->increment(v): lock, hash
 *             lookup, unlock, atomic add (what StatRegistryUpdate and any
 *             by-name update costs),
 *   atomic  - an ExportedStat resolved once: one atomic fetch_add on the
 *             counter shared by every thread.
 * The sharded registry (engine/stats.c) resolves a handle once and adds to
 * a slot owned by the calling thread.
 *
 * Cases, each at 1 and 2 threads (or --threads N):
 *   update_same_name      every thread updates the same counter,
 *   update_distinct_names each thread its own counter,
 *   update_avg            every thread adds to the same avg stat
 *                         (ct_stat_avg_add: count and sum in one
 *                         consistent update; sharded only),
 * reporting ns per update as seen by one thread and the speedups. Each
 * thread times its updates in chunks far shorter than a scheduler time
 * slice (65536 sharded updates, 4096 of the slower kinds), the threads
 * meet at a spinning barrier before every chunk so their chunks overlap,
 * and a run's figure is the median chunk over all its threads; the
 * result is the median of --iters runs. On a shared, loaded machine a whole-run
 * wall time mostly measures preemption; the median chunk measures the update.
 * And
 *   export_10k            export of 10^4 counters with 1 or 2 live writer
 *                         shards (ct_stat_registry_export) against Caffe2's
 *                         publish (copy every key, one clock read per
 *                         entry, under the lock), plus the JSON text.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cortado/stats.h"
#include "perf_util.h"

static CT_NORETURN void die(const char *what)
{
    fprintf(stderr, "bench_stats: %s\n", what);
    exit(1);
}

/* ---- Caffe2's registry: one mutex, a hash map of shared atomics ---- */

struct mstat {
    char *name;
    _Atomic int64_t *value; /* heap-allocated, as make_unique<StatValue> */
};

struct mreg {
    pthread_mutex_t mu;
    struct mstat *slots; /* open addressing, cap a power of two */
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void mreg_init(struct mreg *r, size_t cap)
{
    pthread_mutex_init(&r->mu, NULL);
    r->cap = cap;
    r->n = 0;
    r->slots = calloc(cap, sizeof(*r->slots));
    if (r->slots == NULL)
        die("out of memory");
}

static void mreg_destroy(struct mreg *r)
{
    size_t i;
    for (i = 0; i < r->cap; i++) {
        free(r->slots[i].name);
        free((void *)r->slots[i].value);
    }
    free(r->slots);
    pthread_mutex_destroy(&r->mu);
}

/* StatRegistry::add: the counter for name, created at 0. */
static _Atomic int64_t *mreg_add(struct mreg *r, const char *name)
{
    _Atomic int64_t *v;
    size_t i;

    pthread_mutex_lock(&r->mu);
    i = hash_str(name) & (r->cap - 1);
    while (r->slots[i].name != NULL && strcmp(r->slots[i].name, name) != 0)
        i = (i + 1) & (r->cap - 1);
    if (r->slots[i].name == NULL) {
        if (r->n + 1 > r->cap / 2)
            die("mutex registry full");
        r->slots[i].name = strdup(name);
        r->slots[i].value = malloc(sizeof(*r->slots[i].value));
        if (r->slots[i].name == NULL || r->slots[i].value == NULL)
            die("out of memory");
        atomic_init(r->slots[i].value, 0);
        r->n++;
    }
    v = r->slots[i].value;
    pthread_mutex_unlock(&r->mu);
    return v;
}

struct mexport {
    char *key;
    int64_t value;
    int64_t ts;
};

/* StatRegistry::publish(reset = false). */
static size_t mreg_publish(struct mreg *r, struct mexport *out)
{
    size_t i, n = 0;

    pthread_mutex_lock(&r->mu);
    for (i = 0; i < r->cap; i++) {
        struct timespec ts;
        if (r->slots[i].name == NULL)
            continue;
        out[n].key = strdup(r->slots[i].name);
        if (out[n].key == NULL)
            die("out of memory");
        out[n].value =
            atomic_load_explicit(r->slots[i].value, memory_order_relaxed);
        clock_gettime(CLOCK_REALTIME, &ts);
        out[n].ts = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- threaded update loops ---- */

/* A spinning barrier run before every chunk, so the threads' timed chunks
 * overlap (contention is measured while they really run together, even
 * on a loaded machine); it yields while it waits for a preempted peer. */
struct spin_bar {
    _Atomic int count;
    _Atomic int gen;
    int n;
};

static void spin_wait(struct spin_bar *b)
{
    int g = atomic_load_explicit(&b->gen, memory_order_acquire);
    int spins = 0;

    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) ==
        b->n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&b->gen, memory_order_acquire) == g)
        if (++spins > 1000)
            sched_yield();
}

enum impl { IMPL_SHARDED, IMPL_MUTEX, IMPL_ATOMIC, IMPL_AVG };

struct upd_ctx {
    enum impl impl;
    ct_stat_registry_t *reg;
    struct mreg *mreg;
    const char *name; /* this thread's counter name */
    long chunk;       /* updates per timed chunk */
    int n_chunks;
    pthread_barrier_t *bar;
    struct spin_bar *chunk_bar;
    double *chunk_ns; /* n_chunks wall times, out */
};

static void *upd_thread(void *arg)
{
    struct upd_ctx *c = arg;
    ct_stat_t h = 0;
    _Atomic int64_t *v = NULL;
    struct ct_stat_avg avg;
    long i;
    int k;

    /* Resolution (once) and the first update are outside the timing. */
    if (c->impl == IMPL_AVG) {
        if (ct_stat_avg_init(&avg, c->reg, "avg", c->name, NULL) != CT_OK)
            die("avg init");
        ct_stat_avg_add(&avg, 1);
    } else if (c->impl == IMPL_SHARDED) {
        if (ct_stat_registry_add(c->reg, c->name, CT_STAT_COUNTER, &h, NULL) !=
            CT_OK)
            die("add");
        ct_stat_add(c->reg, h, 1);
    } else {
        v = mreg_add(c->mreg, c->name);
        atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
    }
    pthread_barrier_wait(c->bar);
    for (k = 0; k < c->n_chunks; k++) {
        uint64_t t0;

        spin_wait(c->chunk_bar);
        t0 = bench_now_ns();
        switch (c->impl) {
        case IMPL_SHARDED:
            for (i = 0; i < c->chunk; i++)
                ct_stat_add(c->reg, h, 1);
            break;
        case IMPL_AVG:
            for (i = 0; i < c->chunk; i++)
                ct_stat_avg_add(&avg, 1);
            break;
        case IMPL_MUTEX:
            for (i = 0; i < c->chunk; i++)
                atomic_fetch_add_explicit(mreg_add(c->mreg, c->name), 1,
                                          memory_order_relaxed);
            break;
        default:
            for (i = 0; i < c->chunk; i++)
                atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
            break;
        }
        c->chunk_ns[k] = (double)(bench_now_ns() - t0);
    }
    return NULL;
}

/* ns per update seen by one thread in one run of `threads` threads: the
 * median over every thread's chunks (see the note at the top). */
static double run_updates(enum impl impl, int threads, bool same, long chunk,
                          int n_chunks)
{
    struct upd_ctx c[64];
    pthread_t tid[64];
    pthread_barrier_t bar;
    struct spin_bar chunk_bar;
    ct_stat_registry_t *reg = NULL;
    struct mreg mreg;
    char names[64][16];
    double *all, med;
    int t;

    all = malloc((size_t)threads * (size_t)n_chunks * sizeof(double));
    if (all == NULL || ct_stat_registry_new(&reg, NULL) != CT_OK)
        die("registry");
    mreg_init(&mreg, 1024);
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    atomic_init(&chunk_bar.count, 0);
    atomic_init(&chunk_bar.gen, 0);
    chunk_bar.n = threads;
    for (t = 0; t < threads; t++) {
        snprintf(names[t], sizeof(names[t]), "c%d", same ? 0 : t);
        c[t].chunk_bar = &chunk_bar;
        c[t].impl = impl;
        c[t].reg = reg;
        c[t].mreg = &mreg;
        c[t].name = names[t];
        c[t].chunk = chunk;
        c[t].n_chunks = n_chunks;
        c[t].bar = &bar;
        c[t].chunk_ns = all + (size_t)t * (size_t)n_chunks;
        /* The calling thread is worker 0. */
        if (t > 0 && pthread_create(&tid[t], NULL, upd_thread, &c[t]) != 0)
            die("pthread_create");
    }
    upd_thread(&c[0]);
    for (t = 1; t < threads; t++)
        pthread_join(tid[t], NULL);
    med = bench_median(all, threads * n_chunks) / (double)chunk;
    /* Every update counted (checks the benchmark, not only times it). */
    bench_sink += (double)mreg.n;
    if (impl == IMPL_SHARDED) {
        ct_stat_t h;
        int64_t want = (int64_t)(same ? threads : 1) * (chunk * n_chunks + 1);
        if (ct_stat_registry_find(reg, "c0", &h, NULL) != CT_OK ||
            ct_stat_get(reg, h) != want)
            die("sharded registry lost updates");
    } else if (impl == IMPL_AVG) {
        ct_stat_t hc, hs;
        int64_t want = (int64_t)(same ? threads : 1) * (chunk * n_chunks + 1);
        if (ct_stat_registry_find(reg, "avg/c0/count", &hc, NULL) != CT_OK ||
            ct_stat_registry_find(reg, "avg/c0/sum", &hs, NULL) != CT_OK ||
            ct_stat_get(reg, hc) != want || ct_stat_get(reg, hs) != want)
            die("avg stat lost updates");
    }
    pthread_barrier_destroy(&bar);
    mreg_destroy(&mreg);
    ct_stat_registry_free(reg);
    free(all);
    return med;
}

static double median_updates(const struct bench_opts *o, enum impl impl,
                             int threads, bool same, long chunk, int n_chunks)
{
    double v[256];
    int i, iters = o->iters < 256 ? o->iters : 256;

    for (i = 0; i < o->warmup; i++)
        run_updates(impl, threads, same, chunk, 4);
    for (i = 0; i < iters; i++)
        v[i] = run_updates(impl, threads, same, chunk, n_chunks);
    return bench_median(v, iters);
}

static void bench_update(const struct bench_opts *o, int threads, bool same)
{
    int n_chunks = o->smoke ? 4 : 200;
    long chunk = o->smoke ? 1024 : 65536, chunk_slow = o->smoke ? 256 : 4096;
    double s = median_updates(o, IMPL_SHARDED, threads, same, chunk, n_chunks);
    double m =
        median_updates(o, IMPL_MUTEX, threads, same, chunk_slow, n_chunks);
    double a =
        median_updates(o, IMPL_ATOMIC, threads, same, chunk_slow, n_chunks);
    const char *name = same ? "update_same_name" : "update_distinct_names";

    bench_sink += s + m + a;
    if (o->json)
        printf("{\"case\":\"%s\",\"threads\":%d,\"ns_per_update\":%.3f,"
               "\"mutex_ns_per_update\":%.3f,\"speedup_vs_mutex\":%.1f,"
               "\"atomic_ns_per_update\":%.3f,\"speedup_vs_atomic\":%.1f,"
               "\"items_per_s\":%.4g}\n",
               name, threads, s, m, m / s, a, a / s, threads * 1e9 / s);
    else
        printf("%-22s threads=%d  sharded %7.3f ns/update (%.3g items/s)  "
               "mutex %7.2f ns (%.1fx)  atomic %7.2f ns (%.1fx)\n",
               name, threads, s, threads * 1e9 / s, m, m / s, a, a / s);
}

/* An avg stat (ct_stat_avg_add: count += 1, sum += v, one consistent
 * multi-counter update), every thread on the same stat. */
static void bench_update_avg(const struct bench_opts *o, int threads)
{
    int n_chunks = o->smoke ? 4 : 200;
    long chunk = o->smoke ? 1024 : 65536;
    double s = median_updates(o, IMPL_AVG, threads, true, chunk, n_chunks);

    bench_sink += s;
    if (o->json)
        printf("{\"case\":\"update_avg\",\"threads\":%d,"
               "\"ns_per_update\":%.3f,\"items_per_s\":%.4g}\n",
               threads, s, threads * 1e9 / s);
    else
        printf("%-22s threads=%d  sharded %7.3f ns/update (%.3g items/s)\n",
               "update_avg", threads, s, threads * 1e9 / s);
}

/* ---- export of 10^4 counters ---- */

struct pop_ctx {
    ct_stat_registry_t *reg;
    const ct_stat_t *h;
    int n;
    pthread_barrier_t *bar; /* populated / may exit */
};

/* Gives the thread a shard covering every counter, then stays alive
 * while the exports run (a live shard is what an export merges). */
static void *pop_thread(void *arg)
{
    struct pop_ctx *c = arg;
    int i;

    for (i = 0; i < c->n; i++)
        ct_stat_add(c->reg, c->h[i], i);
    pthread_barrier_wait(c->bar);
    pthread_barrier_wait(c->bar);
    return NULL;
}

static void bench_export(const struct bench_opts *o, int shards)
{
    const int n = 10000;
    int reps = o->smoke ? 2 : 50, iters = o->iters < 64 ? o->iters : 64;
    double ts[64], tm[64], tj[64];
    ct_stat_registry_t *reg;
    ct_stat_t *h = malloc((size_t)n * sizeof(*h));
    struct mexport *mx = malloc((size_t)n * sizeof(*mx));
    pthread_t tid[64];
    pthread_barrier_t bar;
    struct pop_ctx pc;
    struct mreg mreg;
    char name[32];
    int i, r, t;

    if (h == NULL || mx == NULL || ct_stat_registry_new(&reg, NULL) != CT_OK)
        die("setup");
    mreg_init(&mreg, 32768);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "bench/stat_%d/sum", i);
        if (ct_stat_registry_add(reg, name, CT_STAT_COUNTER, &h[i], NULL) !=
            CT_OK)
            die("add");
        atomic_fetch_add_explicit(mreg_add(&mreg, name), i,
                                  memory_order_relaxed);
    }
    pc.reg = reg;
    pc.h = h;
    pc.n = n;
    pc.bar = &bar;
    pthread_barrier_init(&bar, NULL, (unsigned)shards + 1);
    for (t = 0; t < shards; t++)
        if (pthread_create(&tid[t], NULL, pop_thread, &pc) != 0)
            die("pthread_create");
    pthread_barrier_wait(&bar);
    for (i = 0; i < o->warmup + iters; i++) {
        uint64_t t0, t1, t2, t3;

        t0 = bench_now_ns();
        for (r = 0; r < reps; r++) {
            struct ct_stat_list l;
            if (ct_stat_registry_export(reg, false, &l, NULL) != CT_OK)
                die("export");
            bench_sink += (double)l.items[n - 1].value;
            ct_stat_list_destroy(&l);
        }
        t1 = bench_now_ns();
        for (r = 0; r < reps; r++) {
            size_t k, m = mreg_publish(&mreg, mx);
            for (k = 0; k < m; k++)
                free(mx[k].key);
            bench_sink += (double)m;
        }
        t2 = bench_now_ns();
        for (r = 0; r < reps; r++) {
            char *text;
            size_t len;
            if (ct_stat_registry_export_json(reg, false, &text, &len, NULL) !=
                CT_OK)
                die("json");
            bench_sink += (double)len;
            ct_free(text);
        }
        t3 = bench_now_ns();
        if (i >= o->warmup) {
            ts[i - o->warmup] = (double)(t1 - t0) / reps;
            tm[i - o->warmup] = (double)(t2 - t1) / reps;
            tj[i - o->warmup] = (double)(t3 - t2) / reps;
        }
    }
    pthread_barrier_wait(&bar);
    for (t = 0; t < shards; t++)
        pthread_join(tid[t], NULL);
    {
        double s = bench_median(ts, iters), m = bench_median(tm, iters);
        double j = bench_median(tj, iters);
        if (o->json)
            printf("{\"case\":\"export_10k\",\"threads\":%d,\"counters\":%d,"
                   "\"ns_per_export\":%.0f,\"ns_per_counter\":%.2f,"
                   "\"mutex_ns_per_export\":%.0f,\"speedup_vs_mutex\":%.2f,"
                   "\"json_ns_per_export\":%.0f}\n",
                   shards, n, s, s / n, m, m / s, j);
        else
            printf("%-22s threads=%d  sharded %8.1f us/export (%.2f "
                   "ns/counter)  mutex publish %8.1f us (%.2fx)  JSON text "
                   "%8.1f us\n",
                   "export_10k", shards, s / 1e3, s / n, m / 1e3, m / s,
                   j / 1e3);
    }
    pthread_barrier_destroy(&bar);
    mreg_destroy(&mreg);
    ct_stat_registry_free(reg);
    free(mx);
    free(h);
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    int counts[2] = {1, 2}, n_counts = 2, k;

    bench_parse(argc, argv, &o, "");
    bench_print_env(&o);
    if (o.threads > 0) {
        counts[0] = o.threads > 64 ? 64 : o.threads;
        n_counts = 1;
    }
    for (k = 0; k < n_counts; k++)
        bench_update(&o, counts[k], true);
    for (k = 0; k < n_counts; k++)
        bench_update(&o, counts[k], false);
    for (k = 0; k < n_counts; k++)
        bench_update_avg(&o, counts[k]);
    for (k = 0; k < n_counts; k++)
        bench_export(&o, counts[k]);
    return 0;
}
