/* Concurrency tests for engine/stats.c (reliability checklist §F): exact
 * totals for T threads x M updates in 20 runs, with the threads alive
 * (shards merged) and after they exit (shards folded); a concurrent reader
 * never sees a counter go backwards; short-lived threads lose nothing;
 * exports with reset, and sets, under concurrent writers count every
 * update exactly once; a registry freed while threads that hold shards of
 * it are alive or exiting; the StdDev offset pinned once under a race;
 * exports of multi-counter stats (a histogram's total and buckets, a
 * StdDev's sums) are whole events under concurrent observers (F4).
 * Plain pthreads (the pool is not needed). Counts shrink under
 * ThreadSanitizer so every test stays well under 20 s on 2 cores. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/stats.h"
#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
#define CT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CT_TSAN 1
#endif
#endif
#ifdef CT_TSAN
#define SCALE 5 /* TSan makes every atomic access far slower */
#else
#define SCALE 1
#endif

#define RUNS 20
#define M_UPDATES (100000 / SCALE)

/* ---- helpers ---- */

/* cmocka's failures longjmp into the test, so worker threads use this
 * instead: print and abort (the test executable then fails). */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Safe on any thread. */
static ct_stat_t add_counter(ct_stat_registry_t *reg, const char *name)
{
    ct_stat_t h = 0;

    CHECK(ct_stat_registry_add(reg, name, CT_STAT_COUNTER, &h, NULL) == CT_OK);
    return h;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg) != 0)
        fail_msg("pthread_create failed");
}

static void join(pthread_t t)
{
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Sum of every value in a (reset) export. Safe on any thread. */
static int64_t export_sum(ct_stat_registry_t *reg, bool reset)
{
    struct ct_stat_list l;
    uint64_t sum = 0;
    size_t i;

    CHECK(ct_stat_registry_export(reg, reset, &l, NULL) == CT_OK);
    for (i = 0; i < l.n; i++)
        sum += (uint64_t)l.items[i].value;
    ct_stat_list_destroy(&l);
    return (int64_t)sum;
}

/* ---- F1: T x M is exact, live and after exit ---- */

struct f1_ctx {
    ct_stat_registry_t *reg;
    ct_stat_t h;
    long m;
    pthread_barrier_t *done; /* all adds made; main checks live shards */
    pthread_barrier_t *go;   /* main checked; threads may exit */
};

static void *f1_writer(void *arg)
{
    struct f1_ctx *c = arg;
    long i;

    for (i = 0; i < c->m; i++)
        ct_stat_add(c->reg, c->h, 1);
    pthread_barrier_wait(c->done);
    pthread_barrier_wait(c->go);
    return NULL;
}

static void test_stat_add_t_threads_m_updates_exact_in_20_runs(void **state)
{
    static const int threads[] = {1, 2, 8, 64};
    size_t ti;
    int run, k;

    (void)state;
    for (ti = 0; ti < sizeof(threads) / sizeof(threads[0]); ti++) {
        int t = threads[ti];
        /* 64 threads x 1e5 x 20 runs is 1.3e8 updates: fine natively, a
         * tenth under the sanitizers' slower atomics. */
        long m = t == 64 ? M_UPDATES / 4 : M_UPDATES;
        for (run = 0; run < RUNS; run++) {
            pthread_t tid[64];
            pthread_barrier_t done, go;
            struct f1_ctx c;
            ct_status_t st;

            assert_int_equal(ct_stat_registry_new(&c.reg, &st), CT_OK);
            c.h = add_counter(c.reg, "hits");
            c.m = m;
            c.done = &done;
            c.go = &go;
            pthread_barrier_init(&done, NULL, (unsigned)t + 1);
            pthread_barrier_init(&go, NULL, (unsigned)t + 1);
            for (k = 0; k < t; k++)
                start(&tid[k], f1_writer, &c);
            pthread_barrier_wait(&done);
            /* Every writer is alive: their shards are merged. */
            if (ct_stat_get(c.reg, c.h) != (int64_t)t * m)
                fail_msg("T=%d run %d live: %lld != %lld", t, run,
                         (long long)ct_stat_get(c.reg, c.h), (long long)t * m);
            pthread_barrier_wait(&go);
            for (k = 0; k < t; k++)
                join(tid[k]);
            /* Every writer exited: their shards were folded. */
            if (ct_stat_get(c.reg, c.h) != (int64_t)t * m)
                fail_msg("T=%d run %d exited: %lld != %lld", t, run,
                         (long long)ct_stat_get(c.reg, c.h), (long long)t * m);
            pthread_barrier_destroy(&done);
            pthread_barrier_destroy(&go);
            ct_stat_registry_free(c.reg);
        }
    }
}

/* ---- F2: a concurrent reader never sees a decrease ---- */

struct f2_ctx {
    ct_stat_registry_t *reg;
    ct_stat_t h[2];
    long m;
    atomic_int writers_left;
    atomic_long polls;
};

static void *f2_writer(void *arg)
{
    struct f2_ctx *c = arg;
    long i;

    for (i = 0; i < c->m; i++) {
        ct_stat_add(c->reg, c->h[0], 1);
        ct_stat_add(c->reg, c->h[1], 3);
    }
    atomic_fetch_sub(&c->writers_left, 1);
    return NULL;
}

static void *f2_reader(void *arg)
{
    struct f2_ctx *c = arg;
    int64_t last[2] = {0, 0}, last_export = 0;
    bool more = true;

    while (more) {
        int64_t v0, v1, e;
        /* Read the flag first: the reads after it see every update. */
        more = atomic_load(&c->writers_left) > 0;
        v0 = ct_stat_get(c->reg, c->h[0]);
        v1 = ct_stat_get(c->reg, c->h[1]);
        e = export_sum(c->reg, false);
        CHECK(v0 >= last[0] && v1 >= last[1] && e >= last_export);
        last[0] = v0;
        last[1] = v1;
        last_export = e;
        atomic_fetch_add(&c->polls, 1);
    }
    return NULL;
}

static void test_stat_get_concurrent_reader_never_decreases(void **state)
{
    pthread_t w[4], r;
    struct f2_ctx c;
    ct_status_t st;
    int k;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&c.reg, &st), CT_OK);
    c.h[0] = add_counter(c.reg, "a");
    c.h[1] = add_counter(c.reg, "b");
    c.m = 5 * M_UPDATES;
    atomic_init(&c.writers_left, 4);
    atomic_init(&c.polls, 0);
    start(&r, f2_reader, &c);
    for (k = 0; k < 4; k++)
        start(&w[k], f2_writer, &c);
    for (k = 0; k < 4; k++)
        join(w[k]);
    join(r);
    assert_true(atomic_load(&c.polls) > 0);
    assert_int_equal(ct_stat_get(c.reg, c.h[0]), 4 * c.m);
    assert_int_equal(ct_stat_get(c.reg, c.h[1]), 12 * c.m);
    ct_stat_registry_free(c.reg);
}

/* ---- F3 + F7: short-lived threads, reset exports while writing ---- */

struct f3_ctx {
    ct_stat_registry_t *reg;
    ct_stat_t h[3];
    long m;
    atomic_bool stop;
    int64_t exported; /* written by the exporter, read after join */
};

static void *f3_short_writer(void *arg)
{
    struct f3_ctx *c = arg;
    long i;

    for (i = 0; i < c->m; i++)
        ct_stat_add(c->reg, c->h[i % 3], 1);
    return NULL;
}

static void *f3_exporter(void *arg)
{
    struct f3_ctx *c = arg;

    while (!atomic_load(&c->stop))
        c->exported += export_sum(c->reg, true);
    return NULL;
}

static void test_stat_add_short_lived_threads_with_reset_exports(void **state)
{
    const int waves = 60 / (SCALE > 1 ? 4 : 1), per_wave = 4;
    pthread_t ex, w[4];
    struct f3_ctx c;
    ct_status_t st;
    int wave, k;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&c.reg, &st), CT_OK);
    c.h[0] = add_counter(c.reg, "x");
    c.h[1] = add_counter(c.reg, "y");
    c.h[2] = add_counter(c.reg, "z");
    c.m = 20000 / SCALE;
    c.exported = 0;
    atomic_init(&c.stop, false);
    start(&ex, f3_exporter, &c);
    for (wave = 0; wave < waves; wave++) {
        for (k = 0; k < per_wave; k++)
            start(&w[k], f3_short_writer, &c);
        for (k = 0; k < per_wave; k++)
            join(w[k]);
    }
    atomic_store(&c.stop, true);
    join(ex);
    /* Whatever the reset exports took plus what is left: all of it. */
    assert_int_equal(c.exported + export_sum(c.reg, true),
                     (int64_t)waves * per_wave * c.m);
    assert_int_equal(export_sum(c.reg, false), 0);
    ct_stat_registry_free(c.reg);
}

struct f7_ctx {
    ct_stat_registry_t *reg;
    ct_stat_t h;
    long m;
    int id;
    atomic_bool *stop;
    int64_t got; /* the exporter's or setter's take */
};

/* Adds to a shared counter, and halfway registers a counter of its own
 * (its shard must grow while exports run). */
static void *f7_writer(void *arg)
{
    struct f7_ctx *c = arg;
    char name[32];
    ct_stat_t own = 0;
    long i;

    for (i = 0; i < c->m; i++) {
        if (i == c->m / 2) {
            snprintf(name, sizeof(name), "own%d", c->id);
            own = add_counter(c->reg, name);
        }
        ct_stat_add(c->reg, i < c->m / 2 ? c->h : own, 1);
    }
    return NULL;
}

static void *f7_exporter(void *arg)
{
    struct f7_ctx *c = arg;

    while (!atomic_load(c->stop))
        c->got += export_sum(c->reg, true);
    return NULL;
}

static void *f7_setter(void *arg)
{
    struct f7_ctx *c = arg;

    while (!atomic_load(c->stop))
        c->got += ct_stat_set(c->reg, c->h, 0);
    return NULL;
}

static void run_f7(bool use_set)
{
    pthread_t w[4], r;
    struct f7_ctx wc[4], rc;
    atomic_bool stop;
    ct_stat_registry_t *reg;
    ct_status_t st;
    int k;

    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    atomic_init(&stop, false);
    memset(&rc, 0, sizeof(rc));
    rc.reg = reg;
    rc.h = add_counter(reg, "shared");
    rc.stop = &stop;
    for (k = 0; k < 4; k++) {
        wc[k] = rc; /* before the reader starts writing rc.got */
        wc[k].m = 5 * M_UPDATES;
        wc[k].id = k;
    }
    start(&r, use_set ? f7_setter : f7_exporter, &rc);
    for (k = 0; k < 4; k++)
        start(&w[k], f7_writer, &wc[k]);
    for (k = 0; k < 4; k++)
        join(w[k]);
    atomic_store(&stop, true);
    join(r);
    if (use_set)
        /* Sets only touch the shared counter (the first halves). */
        assert_int_equal(rc.got + ct_stat_set(reg, rc.h, 0), 4 * (wc[0].m / 2));
    else
        assert_int_equal(rc.got + export_sum(reg, true), 4 * wc[0].m);
    ct_stat_registry_free(reg);
}

static void
test_stat_registry_export_reset_concurrent_writers_exact(void **state)
{
    (void)state;
    run_f7(false);
}

static void test_stat_set_concurrent_writers_exact(void **state)
{
    (void)state;
    run_f7(true);
}

/* ---- registry free while threads hold shards ---- */

struct free_ctx {
    ct_stat_registry_t *reg; /* set by main before the first barrier */
    long m;
    pthread_barrier_t *bar;
};

static void *free_worker(void *arg)
{
    struct free_ctx *c = arg;
    long i;
    int round;

    for (round = 0; round < 3; round++) {
        ct_stat_registry_t *reg;
        ct_stat_t h;
        pthread_barrier_wait(c->bar); /* main made a registry */
        reg = c->reg;
        h = add_counter(reg, "n");
        for (i = 0; i < c->m; i++)
            ct_stat_add(reg, h, 1);
        pthread_barrier_wait(c->bar); /* main checks and frees it */
    }
    return NULL;
}

static void test_stat_registry_free_with_live_threads_is_safe(void **state)
{
    pthread_t tid[4];
    pthread_barrier_t bar;
    struct free_ctx c;
    ct_status_t st;
    int round, k;

    (void)state;
    c.m = M_UPDATES;
    c.bar = &bar;
    pthread_barrier_init(&bar, NULL, 5);
    for (k = 0; k < 4; k++)
        start(&tid[k], free_worker, &c);
    for (round = 0; round < 3; round++) {
        ct_stat_registry_t *reg;
        ct_stat_t h;
        /* Usually the same address as the registry freed last round: the
         * workers' caches must not mistake it for the old one. */
        assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
        c.reg = reg;
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        assert_int_equal(ct_stat_registry_find(reg, "n", &h, &st), CT_OK);
        assert_int_equal(ct_stat_get(reg, h), 4 * c.m);
        ct_stat_registry_free(reg); /* four live threads hold shards */
    }
    for (k = 0; k < 4; k++)
        join(tid[k]);
    pthread_barrier_destroy(&bar);
}

struct race_ctx {
    ct_stat_registry_t *reg;
    ct_stat_t h;
    atomic_int *added;
};

static void *race_worker(void *arg)
{
    struct race_ctx *c = arg;
    int i;

    for (i = 0; i < 100; i++)
        ct_stat_add(c->reg, c->h, 1);
    atomic_fetch_add(c->added, 1);
    return NULL; /* exits while main may be freeing the registry */
}

static void test_stat_registry_free_races_thread_exit(void **state)
{
    const int iters = 200 / SCALE + 10;
    int it, k;

    (void)state;
    for (it = 0; it < iters; it++) {
        pthread_t tid[3];
        struct race_ctx c;
        atomic_int added;
        ct_status_t st;

        atomic_init(&added, 0);
        assert_int_equal(ct_stat_registry_new(&c.reg, &st), CT_OK);
        c.h = add_counter(c.reg, "r");
        c.added = &added;
        for (k = 0; k < 3; k++)
            start(&tid[k], race_worker, &c);
        while (atomic_load(&added) < 3)
            ;
        assert_int_equal(ct_stat_get(c.reg, c.h), 300);
        ct_stat_registry_free(c.reg);
        for (k = 0; k < 3; k++)
            join(tid[k]);
    }
}

/* ---- StdDev offset pinned once under a race ---- */

struct sd_ctx {
    ct_stat_stddev_t *sd;
    pthread_barrier_t *bar;
    int id;
};

static void *sd_worker(void *arg)
{
    struct sd_ctx *c = arg;
    int i;

    pthread_barrier_wait(c->bar);
    /* Every thread starts with a different first sample. */
    for (i = 0; i < 1000; i++)
        ct_stat_stddev_add(c->sd, 1000 * c->id + (i % 10));
    return NULL;
}

static void test_stat_stddev_concurrent_first_samples_exact(void **state)
{
    pthread_t tid[4];
    pthread_barrier_t bar;
    struct sd_ctx c[4];
    struct ct_stat_list l;
    ct_stat_registry_t *reg;
    ct_stat_stddev_t *sd;
    ct_status_t st;
    double mean = 0, m2 = 0, got_mean, got_var;
    int k, i;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    assert_int_equal(ct_stat_stddev_new(reg, "sd", "v", &sd, &st), CT_OK);
    pthread_barrier_init(&bar, NULL, 4);
    for (k = 0; k < 4; k++) {
        c[k].sd = sd;
        c[k].bar = &bar;
        c[k].id = k + 1;
        start(&tid[k], sd_worker, &c[k]);
    }
    for (k = 0; k < 4; k++)
        join(tid[k]);
    for (k = 1; k <= 4; k++)
        for (i = 0; i < 1000; i++)
            mean += 1000.0 * k + (i % 10);
    mean /= 4000.0;
    for (k = 1; k <= 4; k++)
        for (i = 0; i < 1000; i++)
            m2 +=
                (1000.0 * k + (i % 10) - mean) * (1000.0 * k + (i % 10) - mean);
    assert_int_equal(ct_stat_registry_export(reg, false, &l, &st), CT_OK);
    assert_int_equal(ct_stat_list_stddev(&l, "sd/v", &got_mean, &got_var),
                     CT_OK);
    assert_true(fabs(got_mean - mean) < 1e-9 * mean);
    assert_true(fabs(got_var - m2 / 3999.0) < 1e-9 * got_var);
    ct_stat_list_destroy(&l);
    pthread_barrier_destroy(&bar);
    ct_stat_stddev_free(sd);
    ct_stat_registry_free(reg);
}

/* ---- F4: multi-counter stats export whole events ---- */

#define HIST_BUCKETS 4
#define HIST_WRITERS 2

struct hist_ctx {
    ct_stat_registry_t *reg;
    ct_stat_detailed_t *hist; /* "h/lat": total plus buckets b0..b3 */
    ct_stat_stddev_t *sd;     /* "h/sd": every sample 3 */
    long m, n;                /* at least m samples; n: how many were written */
    int id;
    atomic_bool *enough; /* main has exported enough times meanwhile */
    atomic_int *done;    /* observers finished */
    int64_t written[HIST_BUCKETS]; /* per bucket, by this thread */
};

/* Observes samples into the histogram (bucket by a per-thread pattern,
 * weight 1 or 2) and the stddev stat, at least m and until main has
 * exported enough times meanwhile; at m / 2 it registers a counter of its
 * own, so its shard grows while exports run. */
static void *hist_observer(void *arg)
{
    struct hist_ctx *c = arg;
    char name[32];
    ct_stat_t own = 0;
    long i;

    for (i = 0; i < c->m || !atomic_load(c->enough); i++) {
        size_t b = (size_t)((i * 7 + c->id) % HIST_BUCKETS);
        int64_t w = 1 + (int64_t)(b & 1);
        if (i == c->m / 2) {
            snprintf(name, sizeof(name), "h/own%d", c->id);
            own = add_counter(c->reg, name);
        }
        ct_stat_detailed_add(c->hist, w, b);
        ct_stat_stddev_add(c->sd, 3);
        c->written[b] += w;
        if (i >= c->m / 2)
            ct_stat_add(c->reg, own, 1);
    }
    c->n = i;
    atomic_fetch_add(c->done, 1);
    return NULL;
}

struct hist_snap {
    int64_t total, bucket[HIST_BUCKETS];
    int64_t sd_sum, sd_count, sd_sumoffset, sd_sumsqoffset;
};

/* One export; fails the test when it is not a whole number of events. */
static void hist_export(ct_stat_registry_t *reg, bool reset,
                        struct hist_snap *out)
{
    struct ct_stat_list l;
    char key[32];
    int64_t sum = 0;
    int k;

    assert_int_equal(ct_stat_registry_export(reg, reset, &l, NULL), CT_OK);
    assert_int_equal(ct_stat_list_get(&l, "h/lat", &out->total), CT_OK);
    for (k = 0; k < HIST_BUCKETS; k++) {
        snprintf(key, sizeof(key), "h/lat/b%d", k);
        assert_int_equal(ct_stat_list_get(&l, key, &out->bucket[k]), CT_OK);
        sum += out->bucket[k];
    }
    assert_int_equal(ct_stat_list_get(&l, "h/sd/sum", &out->sd_sum), CT_OK);
    assert_int_equal(ct_stat_list_get(&l, "h/sd/count", &out->sd_count), CT_OK);
    assert_int_equal(ct_stat_list_get(&l, "h/sd/sumoffset", &out->sd_sumoffset),
                     CT_OK);
    assert_int_equal(
        ct_stat_list_get(&l, "h/sd/sumsqoffset", &out->sd_sumsqoffset), CT_OK);
    ct_stat_list_destroy(&l);
    /* The total is the sum of the buckets, every time. */
    assert_int_equal(out->total, sum);
    /* Every sample is 3 and so is the pinned offset. */
    assert_int_equal(out->sd_sum, 3 * out->sd_count);
    assert_int_equal(out->sd_sumoffset, 0);
    assert_int_equal(out->sd_sumsqoffset, 0);
}

/* Checklist F4: a detailed stat used as a histogram (one total plus a
 * bucket per add) and a StdDev stat, observed by two threads in two waves
 * (so shards are created, grow and are folded at exit meanwhile), while
 * the main thread exports in a loop, every other export with reset: each
 * export has total == the sum of the buckets (and sum == 3 * count), and
 * what the reset exports took plus the rest is exactly what was written. */
static void test_stat_histogram_export_consistent_under_observers(void **state)
{
    const int waves = 2;
    struct hist_ctx c[HIST_WRITERS];
    const char *const buckets[HIST_BUCKETS] = {"b0", "b1", "b2", "b3"};
    int64_t written[HIST_BUCKETS] = {0}, took[HIST_BUCKETS] = {0};
    int64_t took_total = 0, took_count = 0, want_total = 0, want_count = 0;
    long exports = 0, mid = 0;
    ct_stat_registry_t *reg;
    ct_stat_detailed_t *hist;
    ct_stat_stddev_t *sd;
    struct hist_snap snap;
    pthread_t tid[HIST_WRITERS];
    ct_status_t st;
    int wave, k, b;

    (void)state;
    assert_int_equal(ct_stat_registry_new(&reg, &st), CT_OK);
    assert_int_equal(ct_stat_detailed_new(reg, "h", "lat", &hist, &st), CT_OK);
    assert_int_equal(
        ct_stat_detailed_set_details(hist, buckets, HIST_BUCKETS, &st), CT_OK);
    assert_int_equal(ct_stat_stddev_new(reg, "h", "sd", &sd, &st), CT_OK);
    for (wave = 0; wave < waves; wave++) {
        atomic_int done;
        atomic_bool enough;
        long n = 0, live = 0;
        atomic_init(&done, 0);
        atomic_init(&enough, false);
        for (k = 0; k < HIST_WRITERS; k++) {
            memset(&c[k], 0, sizeof(c[k]));
            c[k].reg = reg;
            c[k].hist = hist;
            c[k].sd = sd;
            c[k].m = 2 * M_UPDATES;
            c[k].id = wave * HIST_WRITERS + k;
            c[k].done = &done;
            c[k].enough = &enough;
            start(&tid[k], hist_observer, &c[k]);
        }
        /* Export while the observers run, and a few times more. */
        while (atomic_load(&done) < HIST_WRITERS || n < 8) {
            bool reset = (exports & 1) != 0;
            hist_export(reg, reset, &snap);
            if (snap.total != 0 && atomic_load(&done) < HIST_WRITERS) {
                mid++;
                /* 100 non-empty exports with observers running. */
                if (++live == 100)
                    atomic_store(&enough, true);
            }
            if (reset) {
                took_total += snap.total;
                took_count += snap.sd_count;
                for (b = 0; b < HIST_BUCKETS; b++)
                    took[b] += snap.bucket[b];
            }
            exports++;
            n++;
        }
        for (k = 0; k < HIST_WRITERS; k++) {
            join(tid[k]);
            for (b = 0; b < HIST_BUCKETS; b++)
                written[b] += c[k].written[b];
            want_count += c[k].n;
        }
    }
    hist_export(reg, true, &snap);
    took_total += snap.total;
    took_count += snap.sd_count;
    for (b = 0; b < HIST_BUCKETS; b++) {
        took[b] += snap.bucket[b];
        want_total += written[b];
        assert_int_equal(took[b], written[b]);
    }
    assert_int_equal(took_total, want_total);
    assert_int_equal(took_count, want_count);
    /* Nothing left after the last reset. */
    hist_export(reg, false, &snap);
    assert_int_equal(snap.total, 0);
    assert_int_equal(snap.sd_count, 0);
    print_message("%ld exports, %ld non-empty while observers ran\n", exports,
                  mid);
    ct_stat_stddev_free(sd);
    ct_stat_detailed_free(hist);
    ct_stat_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_add_t_threads_m_updates_exact_in_20_runs),
        cmocka_unit_test(test_stat_get_concurrent_reader_never_decreases),
        cmocka_unit_test(test_stat_add_short_lived_threads_with_reset_exports),
        cmocka_unit_test(
            test_stat_registry_export_reset_concurrent_writers_exact),
        cmocka_unit_test(test_stat_set_concurrent_writers_exact),
        cmocka_unit_test(test_stat_registry_free_with_live_threads_is_safe),
        cmocka_unit_test(test_stat_registry_free_races_thread_exit),
        cmocka_unit_test(test_stat_stddev_concurrent_first_samples_exact),
        cmocka_unit_test(test_stat_histogram_export_consistent_under_observers),
    };

    return cmocka_run_group_tests_name("engine.stats_concurrency", tests, NULL,
                                       NULL);
}
