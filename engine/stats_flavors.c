/* cortado: Caffe2's stat flavours and the timer over the stat registry.
 *
 * Each flavour registers its keys "<group>/<name>[/<field>]" when it is
 * initialised (Caffe2 registers at stat construction, so the keys export
 * as 0 before the first event). A single-key event is one ct_stat_add; the
 * keys of a multi-key event (avg, stddev, a detailed stat's bucket and
 * total) are marked at init and updated together with ct__stat_add2 or
 * ct__stat_add_n, so every export holds whole events (count == the number
 * of samples in sum, total == the sum of the buckets): one lock-free shard
 * update, bracketed by the shard's sequence number (engine/stats.c,
 * "Consistent snapshots").
 *
 * StdDev. Caffe2 keeps an offset to reduce the magnitude of the squares
 * but re-bases it on every odd sample (a compare-exchange whose
 * `expected` is overwritten on failure), and each op instance has its own
 * while instances of the same name share the counters, so its own
 * variance formula (sumsqoffset - sumoffset^2 / count) / (count - 1) is
 * wrong after two samples. That formula holds for any offset that stays
 * constant for every sample in the sums, so the offset is pinned once per
 * counter set, in the registry (ct__stat_registry_pin on the sumoffset
 * counter: the first sample ever added under that name), and cached in
 * the object: a relaxed offset published by a release store of a flag,
 * read after an acquire load of it. Threads that race on the first
 * samples all get the registry's one pinned value, so no spinning.
 *
 * Timers record CLOCK_MONOTONIC nanoseconds (Caffe2's high_resolution_
 * clock is the wall clock on libstdc++, which can jump). The timer object
 * is owned by whoever created it (a blob for the operators), never by an
 * operator, so no pointer into a destroyed op can survive.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/stats_impl.h"

/* "<group>/<name>[/<field>]" registered with `kind`; multi: marked as
 * part of a multi-counter stat (updated with ct__stat_add2 / _add_n). */
static int add_key(ct_stat_registry_t *reg, const char *group, const char *name,
                   const char *field, int kind, bool multi, ct_stat_t *out,
                   ct_status_t *st)
{
    size_t lg = strlen(group), ln = strlen(name);
    size_t lf = field != NULL ? strlen(field) + 1 : 0;
    size_t len = lg + 1 + ln + lf;
    char stack[256], *key = stack;
    int rc;

    if (len + 1 > sizeof(stack)) {
        key = ct__malloc(len + 1);
        if (key == NULL)
            return ct_status_setf(st, CT_ENOMEM, "stat %s/%s: out of memory",
                                  group, name);
    }
    memcpy(key, group, lg);
    key[lg] = '/';
    memcpy(key + lg + 1, name, ln);
    if (field != NULL) {
        key[lg + 1 + ln] = '/';
        memcpy(key + lg + 2 + ln, field, lf - 1);
    }
    key[len] = '\0';
    rc = multi ? ct__stat_registry_add_multi(reg, key, kind, out, st)
               : ct_stat_registry_add(reg, key, kind, out, st);
    if (key != stack)
        ct__free(key);
    return rc;
}

/* ---- exported, avg, static ---- */

int ct_stat_exported_init(struct ct_stat_exported *s, ct_stat_registry_t *reg,
                          const char *group, const char *name, ct_status_t *st)
{
    s->reg = reg;
    return add_key(reg, group, name, NULL, CT_STAT_COUNTER, false, &s->value,
                   st);
}

void ct_stat_exported_add(const struct ct_stat_exported *s, int64_t v)
{
    ct_stat_add(s->reg, s->value, v);
}

int ct_stat_avg_init(struct ct_stat_avg *s, ct_stat_registry_t *reg,
                     const char *group, const char *name, ct_status_t *st)
{
    int rc;

    s->reg = reg;
    rc = add_key(reg, group, name, "sum", CT_STAT_COUNTER, true, &s->sum, st);
    if (rc == CT_OK)
        rc = add_key(reg, group, name, "count", CT_STAT_COUNTER, true,
                     &s->count, st);
    return rc;
}

void ct_stat_avg_add(const struct ct_stat_avg *s, int64_t v)
{
    ct__stat_add2(s->reg, s->count, 1, s->sum, v);
}

int ct_stat_static_init(struct ct_stat_static *s, ct_stat_registry_t *reg,
                        const char *group, const char *name, ct_status_t *st)
{
    s->reg = reg;
    return add_key(reg, group, name, NULL, CT_STAT_GAUGE, false, &s->value, st);
}

int64_t ct_stat_static_set(const struct ct_stat_static *s, int64_t v)
{
    return ct_stat_set(s->reg, s->value, v);
}

/* ---- stddev ---- */

struct ct_stat_stddev_s {
    ct_stat_registry_t *reg;
    ct_stat_t sum, count, sumsqoffset, sumoffset;
    _Atomic bool pinned;    /* offset holds the registry's pinned value */
    _Atomic int64_t offset; /* valid once pinned is true */
};

int ct_stat_stddev_new(ct_stat_registry_t *reg, const char *group,
                       const char *name, ct_stat_stddev_t **out,
                       ct_status_t *st)
{
    ct_stat_stddev_t *s;
    int rc;

    *out = NULL;
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        return ct_status_setf(st, CT_ENOMEM, "stat %s/%s: out of memory", group,
                              name);
    s->reg = reg;
    atomic_init(&s->pinned, false);
    atomic_init(&s->offset, 0);
    rc = add_key(reg, group, name, "sum", CT_STAT_COUNTER, true, &s->sum, st);
    if (rc == CT_OK)
        rc = add_key(reg, group, name, "count", CT_STAT_COUNTER, true,
                     &s->count, st);
    if (rc == CT_OK)
        rc = add_key(reg, group, name, "sumsqoffset", CT_STAT_GAUGE, true,
                     &s->sumsqoffset, st);
    if (rc == CT_OK)
        rc = add_key(reg, group, name, "sumoffset", CT_STAT_GAUGE, true,
                     &s->sumoffset, st);
    if (rc != CT_OK) {
        ct__free(s);
        return rc;
    }
    *out = s;
    return CT_OK;
}

void ct_stat_stddev_free(ct_stat_stddev_t *s)
{
    ct__free(s);
}

static int64_t stddev_offset(ct_stat_stddev_t *s, int64_t v)
{
    int64_t off;

    /* acquire: pairs with the release store below, so the offset stored
     * before it is visible. */
    if (CT_LIKELY(atomic_load_explicit(&s->pinned, memory_order_acquire)))
        return atomic_load_explicit(&s->offset, memory_order_relaxed);
    off = ct__stat_registry_pin(s->reg, s->sumoffset, v);
    /* Racing threads store the same value. */
    atomic_store_explicit(&s->offset, off, memory_order_relaxed);
    atomic_store_explicit(&s->pinned, true, memory_order_release);
    return off;
}

void ct_stat_stddev_add(ct_stat_stddev_t *s, int64_t v)
{
    /* Unsigned: d and d*d wrap instead of overflowing (UB in Caffe2). */
    uint64_t d = (uint64_t)v - (uint64_t)stddev_offset(s, v);
    const ct_stat_t h[4] = {s->count, s->sumsqoffset, s->sumoffset, s->sum};
    const int64_t dv[4] = {1, (int64_t)(d * d), (int64_t)d, v};

    ct__stat_add_n(s->reg, h, dv, 4);
}

int ct_stat_list_stddev(const struct ct_stat_list *l, const char *prefix,
                        double *mean, double *variance)
{
    static const char *const fields[4] = {"sum", "count", "sumoffset",
                                          "sumsqoffset"};
    int64_t v[4];
    char key[512];
    double n, so;
    int k;

    for (k = 0; k < 4; k++) {
        int w = snprintf(key, sizeof(key), "%s/%s", prefix, fields[k]);
        if (w < 0 || (size_t)w >= sizeof(key) ||
            ct_stat_list_get(l, key, &v[k]) != CT_OK)
            return CT_ENOTFOUND;
    }
    if (v[1] <= 0)
        return CT_EINVAL;
    n = (double)v[1];
    so = (double)v[2];
    *mean = (double)v[0] / n;
    *variance = v[1] < 2 ? 0.0 : ((double)v[3] - so * so / n) / (n - 1.0);
    return CT_OK;
}

/* ---- detailed ---- */

struct ct_stat_detailed_s {
    ct_stat_registry_t *reg;
    char *group, *name; /* owned copies, for the detail keys */
    ct_stat_t value;
    ct_stat_t *details; /* n_details entries */
    size_t n_details;
};

int ct_stat_detailed_new(ct_stat_registry_t *reg, const char *group,
                         const char *name, ct_stat_detailed_t **out,
                         ct_status_t *st)
{
    ct_stat_detailed_t *s;
    int rc;

    *out = NULL;
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail_alloc;
    s->reg = reg;
    s->group = ct__strdup(group);
    s->name = ct__strdup(name);
    if (s->group == NULL || s->name == NULL)
        goto fail_names;
    rc = add_key(reg, group, name, NULL, CT_STAT_COUNTER, true, &s->value, st);
    if (rc != CT_OK) {
        ct_stat_detailed_free(s);
        return rc;
    }
    *out = s;
    return CT_OK;

fail_names:
    ct_stat_detailed_free(s);
fail_alloc:
    return ct_status_setf(st, CT_ENOMEM, "stat %s/%s: out of memory", group,
                          name);
}

void ct_stat_detailed_free(ct_stat_detailed_t *s)
{
    if (s == NULL)
        return;
    ct__free(s->group);
    ct__free(s->name);
    ct__free(s->details);
    ct__free(s);
}

int ct_stat_detailed_set_details(ct_stat_detailed_t *s,
                                 const char *const *names, size_t n,
                                 ct_status_t *st)
{
    ct_stat_t *d = NULL;
    size_t i;
    int rc;

    if (n > 0) {
        d = ct__calloc(n, sizeof(*d));
        if (d == NULL)
            return ct_status_setf(st, CT_ENOMEM,
                                  "stat %s/%s: out of memory for %zu details",
                                  s->group, s->name, n);
    }
    for (i = 0; i < n; i++) {
        rc = add_key(s->reg, s->group, s->name, names[i], CT_STAT_COUNTER, true,
                     &d[i], st);
        if (rc != CT_OK) {
            ct__free(d);
            return rc;
        }
    }
    ct__free(s->details);
    s->details = d;
    s->n_details = n;
    return CT_OK;
}

void ct_stat_detailed_add(const ct_stat_detailed_t *s, int64_t v, size_t idx)
{
    if (idx < s->n_details) {
        /* The bucket and the total in one update: every export has the
         * total equal to the sum of the buckets (when every add names
         * one). */
        ct__stat_add2(s->reg, s->details[idx], v, s->value, v);
        return;
    }
    ct_stat_add(s->reg, s->value, v);
}

/* ---- timer ---- */

struct ct_timer_s {
    struct ct_stat_avg stat; /* where end records; stat.reg NULL: nowhere */
    uint64_t start_ns;       /* CLOCK_MONOTONIC at begin */
    bool running;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ct_timer_new(ct_timer_t **out, ct_status_t *st)
{
    *out = ct__calloc(1, sizeof(**out));
    if (*out == NULL)
        return ct_status_setf(st, CT_ENOMEM, "timer: out of memory");
    return CT_OK;
}

void ct_timer_free(ct_timer_t *t)
{
    ct__free(t);
}

static void timer_destroy_cb(void *obj)
{
    ct_timer_free(obj);
}

const ct_blob_type_t ct_blob_type_timer = {"Timer", timer_destroy_cb};

int ct_timer_begin(ct_timer_t *t, const struct ct_stat_avg *stat,
                   ct_status_t *st)
{
    if (t->running)
        return ct_status_setf(st, CT_ESTATE,
                              "Called TimerBegin on an already running "
                              "timer.");
    if (stat != NULL)
        t->stat = *stat;
    else
        memset(&t->stat, 0, sizeof(t->stat));
    t->running = true;
    t->start_ns = mono_ns();
    return CT_OK;
}

int ct_timer_end(ct_timer_t *t, int64_t *ns, ct_status_t *st)
{
    int64_t d;

    if (!t->running)
        return ct_status_setf(st, CT_ESTATE,
                              "Called TimerEnd on a stopped timer.");
    d = (int64_t)(mono_ns() - t->start_ns);
    t->running = false;
    if (t->stat.reg != NULL)
        ct_stat_avg_add(&t->stat, d);
    if (ns != NULL)
        *ns = d;
    return CT_OK;
}

int ct_timer_get_ns(const ct_timer_t *t, int64_t *ns, ct_status_t *st)
{
    if (!t->running)
        return ct_status_setf(st, CT_ESTATE,
                              "Called TimerGet on a stopped timer.");
    *ns = (int64_t)(mono_ns() - t->start_ns);
    return CT_OK;
}

bool ct_timer_running(const ct_timer_t *t)
{
    return t->running;
}
