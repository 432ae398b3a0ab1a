/* cortado: the time observer (Caffe2's TimeObserver, with percentiles).
 *
 * Spec: time[=FILE.json].
 * Per op: count, total, min, max, and a log-linear histogram of durations
 * (16 sub-buckets per power of two, so p50/p99 are within 1/32 of the
 * true value), all written only by that op's hooks: op start stores the
 * start tick, op end folds the duration in. Per net: the same for the
 * wall time of each run (net start to net end, on the calling thread).
 * Ticks come from ct__obs_ticks (the TSC when the kernel trusts it) and
 * become ns at report time through the clock's two anchors. Failed ops
 * and runs are timed too (Caffe2's Stop runs on exceptions as well).
 * ct_observer_describe prints a table; a flush with FILE writes JSON:
 * {"net", "runs", "clock", "wall": {stats}, "ops": [{"idx", "type",
 * "name", stats}...]} with stats count, total_ns, mean_ns, p50_ns,
 * p99_ns, min_ns, max_ns.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "observers/observer_impl.h"

#define SUB_BITS 4
#define SUB (1 << SUB_BITS)
#define MAX_EXP 44 /* durations up to 2^44 ticks; longer ones clamp */
#define N_BUCKETS (SUB + (MAX_EXP - SUB_BITS) * SUB + SUB)

struct dist {
    uint64_t count, total, min, max; /* ticks */
    uint32_t buckets[N_BUCKETS];
};

struct op_time {
    uint64_t t_start; /* tick at op start */
    struct dist d;
};

struct timeobs {
    struct ct__obs_base base;
    struct ct__obs_clock clock;
    char *net_name;
    int n_ops;
    char **types, **names; /* owned copies, n_ops each */
    struct op_time *ops;   /* op i: written by op i's hooks only */
    struct op_time net;    /* written by the net hooks */
};

static int bucket_of(uint64_t v)
{
    int e;

    if (v < SUB)
        return (int)v;
    e = 63 - __builtin_clzll(v);
    if (e >= MAX_EXP)
        return N_BUCKETS - 1;
    return SUB + (e - SUB_BITS) * SUB +
           (int)((v >> (e - SUB_BITS)) & (SUB - 1));
}

/* Midpoint of bucket b, in ticks. */
static double bucket_mid(int b)
{
    int e, sub;

    if (b < SUB)
        return b;
    e = (b - SUB) / SUB + SUB_BITS;
    sub = (b - SUB) % SUB;
    return ((double)(SUB + sub) + 0.5) * (double)(1ull << (e - SUB_BITS));
}

static void dist_add(struct dist *d, uint64_t v)
{
    if (d->count == 0 || v < d->min)
        d->min = v;
    if (v > d->max)
        d->max = v;
    d->count++;
    d->total += v;
    d->buckets[bucket_of(v)]++;
}

/* The p-quantile (0 < p <= 1) in ticks: the bucket holding the
 * ceil(p * count)-th smallest value, clamped to [min, max]. */
static double dist_quantile(const struct dist *d, double p)
{
    uint64_t rank = (uint64_t)ceil(p * (double)d->count), seen = 0;
    double v;
    int b;

    if (d->count == 0)
        return 0;
    if (rank < 1)
        rank = 1;
    for (b = 0; b < N_BUCKETS; b++) {
        seen += d->buckets[b];
        if (seen >= rank)
            break;
    }
    v = bucket_mid(b < N_BUCKETS ? b : N_BUCKETS - 1);
    if (v < (double)d->min)
        v = (double)d->min;
    if (v > (double)d->max)
        v = (double)d->max;
    return v;
}

static void dist_stats(const struct timeobs *t, const struct dist *d,
                       struct ct_time_stats *out)
{
    double k = t->clock.ns_per_tick;

    memset(out, 0, sizeof(*out));
    out->count = d->count;
    if (d->count == 0)
        return;
    out->total_ns = (double)d->total * k;
    out->mean_ns = out->total_ns / (double)d->count;
    out->p50_ns = dist_quantile(d, 0.50) * k;
    out->p99_ns = dist_quantile(d, 0.99) * k;
    out->min_ns = (double)d->min * k;
    out->max_ns = (double)d->max * k;
}

/* ---- hooks ---- */

static void free_tables(struct timeobs *t)
{
    int i;

    for (i = 0; i < t->n_ops; i++) {
        if (t->types != NULL)
            ct__free(t->types[i]);
        if (t->names != NULL)
            ct__free(t->names[i]);
    }
    ct__free(t->types);
    ct__free(t->names);
    ct__free(t->ops);
    ct__free(t->net_name);
    t->types = t->names = NULL;
    t->ops = NULL;
    t->net_name = NULL;
    t->n_ops = 0;
}

static void time_free(void *ctx)
{
    if (ctx == NULL)
        return;
    free_tables(ctx);
    ct__free(ctx);
}

static int time_attach(void *ctx, const struct ct_observer_net *net,
                       ct_status_t *st)
{
    struct timeobs *t = ctx;
    int i;

    free_tables(t);
    t->types = ct__calloc((size_t)net->n_ops + 1, sizeof(char *));
    t->names = ct__calloc((size_t)net->n_ops + 1, sizeof(char *));
    t->ops = ct__calloc((size_t)net->n_ops + 1, sizeof(*t->ops));
    t->net_name = ct__strdup(net->name);
    if (t->types == NULL || t->names == NULL || t->ops == NULL ||
        t->net_name == NULL)
        goto oom;
    t->n_ops = net->n_ops;
    for (i = 0; i < net->n_ops; i++) {
        t->types[i] = ct__strdup(net->ops[i].type);
        t->names[i] = ct__strdup(net->ops[i].name);
        if (t->types[i] == NULL || t->names[i] == NULL)
            goto oom;
    }
    memset(&t->net, 0, sizeof(t->net));
    ct__obs_clock_init(&t->clock);
    return CT_OK;
oom:
    free_tables(t);
    return ct_status_setf(st, CT_ENOMEM, "out of memory");
}

static int time_net_start(void *ctx, const struct ct_observer_event *ev,
                          ct_status_t *st)
{
    struct timeobs *t = ctx;

    (void)ev;
    (void)st;
    t->net.t_start = ct__obs_ticks(&t->clock);
    return CT_OK;
}

static int time_net_end(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st)
{
    struct timeobs *t = ctx;

    (void)ev;
    (void)st;
    dist_add(&t->net.d, ct__obs_ticks(&t->clock) - t->net.t_start);
    return CT_OK;
}

static int time_op_start(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st)
{
    struct timeobs *t = ctx;

    (void)st;
    t->ops[ev->op->idx].t_start = ct__obs_ticks(&t->clock);
    return CT_OK;
}

static int time_op_end(void *ctx, const struct ct_observer_event *ev,
                       ct_status_t *st)
{
    struct timeobs *t = ctx;
    struct op_time *o = &t->ops[ev->op->idx];

    (void)st;
    dist_add(&o->d, ct__obs_ticks(&t->clock) - o->t_start);
    return CT_OK;
}

/* ---- output ---- */

static void json_stats(struct ct__obs_buf *b, const struct ct_time_stats *s)
{
    ct__obs_buf_printf(b,
                       "\"count\": %llu, \"total_ns\": %.1f, \"mean_ns\": "
                       "%.1f, \"p50_ns\": %.1f, \"p99_ns\": %.1f, \"min_ns\": "
                       "%.1f, \"max_ns\": %.1f",
                       (unsigned long long)s->count, s->total_ns, s->mean_ns,
                       s->p50_ns, s->p99_ns, s->min_ns, s->max_ns);
}

static int time_flush(void *ctx, ct_status_t *st)
{
    struct timeobs *t = ctx;
    struct ct__obs_buf b = {NULL, 0, 0, false};
    struct ct_time_stats s;
    int i, rc;

    if (t->base.obs->file == NULL)
        return CT_OK;
    ct__obs_clock_calibrate(&t->clock);
    dist_stats(t, &t->net.d, &s);
    ct__obs_buf_printf(&b, "{\"net\": ");
    ct__obs_buf_json_str(&b, t->net_name);
    ct__obs_buf_printf(&b, ", \"runs\": %llu, \"clock\": \"%s\",\n \"wall\": {",
                       (unsigned long long)s.count,
                       t->clock.tsc ? "tsc" : "monotonic");
    json_stats(&b, &s);
    ct__obs_buf_printf(&b, "},\n \"ops\": [");
    for (i = 0; i < t->n_ops; i++) {
        dist_stats(t, &t->ops[i].d, &s);
        ct__obs_buf_printf(&b, "%s\n  {\"idx\": %d, \"type\": ", i ? "," : "",
                           i);
        ct__obs_buf_json_str(&b, t->types[i]);
        ct__obs_buf_printf(&b, ", \"name\": ");
        ct__obs_buf_json_str(&b, t->names[i]);
        ct__obs_buf_printf(&b, ", ");
        json_stats(&b, &s);
        ct__obs_buf_printf(&b, "}");
    }
    ct__obs_buf_printf(&b, "\n ]}\n");
    rc = ct__obs_buf_write(&b, t->base.obs->file, st);
    ct__obs_buf_free(&b);
    return rc;
}

/* "812 ns", "12.4 us", "3.07 ms", "1.25 s". */
static const char *fmt_ns(double ns, char *buf, size_t size)
{
    if (ns < 1e3)
        snprintf(buf, size, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, size, "%.3g us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, size, "%.3g ms", ns / 1e6);
    else
        snprintf(buf, size, "%.3g s", ns / 1e9);
    return buf;
}

static void time_describe(const ct_observer_t *obs, struct ct__obs_buf *b)
{
    struct timeobs *t = obs->ctx;
    struct ct_time_stats s, w;
    char a[32], c[32], d[32];
    double sum = 0;
    int i;

    ct__obs_clock_calibrate(&t->clock);
    dist_stats(t, &t->net.d, &w);
    ct__obs_buf_printf(b,
                       "time: net %s, %llu runs, wall mean %s, p50 %s, "
                       "p99 %s\n",
                       t->net_name, (unsigned long long)w.count,
                       fmt_ns(w.mean_ns, a, sizeof(a)),
                       fmt_ns(w.p50_ns, c, sizeof(c)),
                       fmt_ns(w.p99_ns, d, sizeof(d)));
    for (i = 0; i < t->n_ops; i++)
        sum += (double)t->ops[i].d.total;
    ct__obs_buf_printf(b, "  %4s  %-16s %-16s %8s %10s %10s %10s %6s\n", "op",
                       "type", "name", "count", "mean", "p50", "p99", "share");
    for (i = 0; i < t->n_ops; i++) {
        dist_stats(t, &t->ops[i].d, &s);
        ct__obs_buf_printf(
            b, "  %4d  %-16.16s %-16.16s %8llu %10s %10s %10s %5.1f%%\n", i,
            t->types[i], t->names[i], (unsigned long long)s.count,
            fmt_ns(s.mean_ns, a, sizeof(a)), fmt_ns(s.p50_ns, c, sizeof(c)),
            fmt_ns(s.p99_ns, d, sizeof(d)),
            sum > 0 ? 100.0 * (double)t->ops[i].d.total / sum : 0.0);
    }
    if (obs->file != NULL)
        ct__obs_buf_printf(b, "  (JSON -> %s)\n", obs->file);
}

static int time_new(const struct ct__obs_spec *sp, void **out, ct_status_t *st)
{
    (void)sp;
    *out = ct__calloc(1, sizeof(struct timeobs));
    if (*out == NULL)
        return ct_status_setf(st, CT_ENOMEM, "observer time: out of memory");
    return CT_OK;
}

static const struct ct_observer_cbs time_cbs = {
    .name = "time",
    .attach_cb = time_attach,
    .net_start_cb = time_net_start,
    .op_start_cb = time_op_start,
    .op_end_cb = time_op_end,
    .net_end_cb = time_net_end,
    .flush_cb = time_flush,
    .free_cb = time_free,
};

const struct ct__obs_kind ct__obs_kind_time = {
    "time", NULL, 1, &time_cbs, time_new, time_describe,
};

int ct_time_observer_get(const ct_observer_t *obs, int i,
                         struct ct_time_stats *out, ct_status_t *st)
{
    struct timeobs *t =
        ct__obs_kind_ctx(obs, &ct__obs_kind_time, "ct_time_observer_get", st);

    CT_ASSERT(out != NULL, "ct_time_observer_get: NULL argument");
    memset(out, 0, sizeof(*out));
    if (t == NULL)
        return CT_EINVAL;
    if (!obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer time was never attached to a net");
    if (i < -1 || i >= t->n_ops)
        return ct_status_setf(st, CT_EINVAL,
                              "ct_time_observer_get: op %d of a %d-op net", i,
                              t->n_ops);
    ct__obs_clock_calibrate(&t->clock);
    dist_stats(t, i < 0 ? &t->net.d : &t->ops[i].d, out);
    return CT_OK;
}
