/* cortado: the stat registry (named int64 counters) and timers.
 *
 * A registry maps names to int64 counters. Every engine owns one
 * (ct_engine_stats(): Caffe2's global StatRegistry; engine counters live
 * under CT_STAT_ENGINE_PREFIX), and any number more can be created
 * (StatRegistryCreate). Updates are sharded: ct_stat_add() writes a slot
 * owned by the calling thread, with no lock and no shared cache line; an
 * export merges every live thread's shard with the folded totals of the
 * threads that have exited. No update is lost, a reader never sees a
 * counter that only received non-negative deltas go backwards, and an
 * export with reset is exact while writers run (each counted once).
 * Thread-safety: every call may be made from any thread at once, except
 * ct_stat_registry_free(), which must not race with calls on the same
 * registry. Threads that used a registry may still be alive, or exit at
 * any time, when it is freed.
 */
#ifndef CORTADO_STATS_H
#define CORTADO_STATS_H

#include <stdbool.h>

#include "cortado/blob.h"
#include "cortado/common.h"
#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_stat_registry_s ct_stat_registry_t;

/* A counter of one registry, resolved once by name
 * (ct_stat_registry_add) and valid for that registry's lifetime. Using it
 * with another registry is a contract violation. */
typedef uint32_t ct_stat_t;

/* Prefix of the counters the engine itself keeps in its registry. */
#define CT_STAT_ENGINE_PREFIX "cortado/"

/* How a counter is exposed. Both kinds add and set the same way; the kind
 * only chooses the Prometheus type. */
enum ct_stat_kind {
    CT_STAT_COUNTER = 0, /* only grows between resets: Prometheus counter */
    CT_STAT_GAUGE = 1,   /* may go down, or is set: Prometheus gauge */
    CT_STAT_KIND_COUNT
};

/* One exported counter (Caffe2's ExportedStatValue). */
struct ct_stat_value {
    const char *key; /* owned by the list */
    int64_t value;
    int64_t ts_ns; /* snapshot time, Unix epoch ns (CLOCK_REALTIME) */
    int kind;      /* enum ct_stat_kind */
};

/* An export (Caffe2's ExportedStatList): items in registration order.
 * Caller-owned; release with ct_stat_list_destroy. */
struct ct_stat_list {
    struct ct_stat_value *items; /* n entries */
    size_t n;
    int64_t ts_ns; /* snapshot time, Unix epoch ns (every item's ts_ns) */
    char *keys;    /* storage of every key */
};

/* Blob types: obj is a ct_stat_registry_t * (StatRegistryCreate's
 * output) or a ct_timer_t * (TimerBegin's output). The blob owns it. */
CT_API extern const ct_blob_type_t ct_blob_type_stat_registry;
CT_API extern const ct_blob_type_t ct_blob_type_timer;

/* ---- registry lifecycle ---- */

/* Creates an empty registry. Caller frees with ct_stat_registry_free.
 * Errors: CT_ENOMEM. */
CT_API int ct_stat_registry_new(ct_stat_registry_t **out, ct_status_t *st);
/* Frees reg and every shard of it, including those of threads still
 * alive (they are detached; such a thread frees its small shard header
 * when it next creates a shard or exits). No call on reg may run
 * concurrently or follow. NULL allowed. */
CT_API void ct_stat_registry_free(ct_stat_registry_t *reg);
/* The engine's registry (Caffe2's global one). Owned by the engine, valid
 * until ct_engine_free. Never NULL. */
CT_API ct_stat_registry_t *ct_engine_stats(const ct_engine_t *eng);

/* ---- queries ---- */

/* Number of counters (they are never removed). */
CT_API size_t ct_stat_registry_size(ct_stat_registry_t *reg);
/* The counter named `name`. CT_ENOTFOUND when there is none. */
CT_API int ct_stat_registry_find(ct_stat_registry_t *reg, const char *name,
                                 ct_stat_t *out, ct_status_t *st);
/* The name of counter h; owned by reg, valid until it is freed. */
CT_API const char *ct_stat_registry_name(ct_stat_registry_t *reg, ct_stat_t h);
/* The merged value of counter h (all shards, exited threads, minus what
 * resets exported). Takes the registry lock: not for hot paths. */
CT_API int64_t ct_stat_get(ct_stat_registry_t *reg, ct_stat_t h);

/* ---- mutation ---- */

/* Returns the counter named `name`, creating it at 0 with `kind` (enum
 * ct_stat_kind) if absent; an existing counter keeps its kind. Any byte
 * string without NUL is a valid name, "" included. Errors: CT_ENOMEM
 * (registry unchanged). */
CT_API int ct_stat_registry_add(ct_stat_registry_t *reg, const char *name,
                                int kind, ct_stat_t *out, ct_status_t *st);
/* Same with a counted name (e.g. a string tensor element). CT_EINVAL
 * "stat name contains a NUL byte at offset <k>" when it has one. */
CT_API int ct_stat_registry_add_n(ct_stat_registry_t *reg, const char *name,
                                  size_t len, int kind, ct_stat_t *out,
                                  ct_status_t *st);
/* Adds delta to counter h in the calling thread's shard: no lock, no
 * shared cache line, about a nanosecond. The first update of a thread (and
 * the first after new counters were registered) takes a slower path that
 * creates or grows its shard; if that allocation fails the delta goes to
 * the registry's totals under its lock instead, so no update is ever
 * lost. Sums wrap modulo 2^64 (two's complement). Negative deltas are
 * allowed (Caffe2 allows them); such a counter may then go down. */
CT_API void ct_stat_add(ct_stat_registry_t *reg, ct_stat_t h, int64_t delta);
/* Sets counter h to v and returns the value it had (Caffe2's StaticStat).
 * Exact against concurrent ct_stat_add calls (their deltas apply on top).
 * Takes the registry lock. */
CT_API int64_t ct_stat_set(ct_stat_registry_t *reg, ct_stat_t h, int64_t v);
/* Adds values[i] to the counter named keys[i] for i < n, creating
 * missing counters (Caffe2's StatRegistry::update, which adds although
 * its comment says it sets). Every key is checked first (CT_EINVAL for a
 * NUL byte, naming the key index) and nothing is added then. CT_ENOMEM
 * may leave some new counters created at 0 but adds no value. */
CT_API int ct_stat_registry_update(ct_stat_registry_t *reg,
                                   const ct_str_t *keys, const int64_t *values,
                                   size_t n, ct_status_t *st);
/* Adds every item of l to reg by key (e.g. an export of another
 * registry). Same rules as ct_stat_registry_update. */
CT_API int ct_stat_registry_update_list(ct_stat_registry_t *reg,
                                        const struct ct_stat_list *l,
                                        ct_status_t *st);

/* ---- exports ---- */

/* Snapshot of every counter into *out (registration order, one timestamp
 * for the snapshot). With reset, each counter restarts from 0: every
 * thread's shard records the value exported as its baseline instead of
 * being zeroed, so a concurrent update is either in this export or in
 * the next, never both, never neither. Errors: CT_ENOMEM (registry
 * unchanged, *out empty). */
CT_API int ct_stat_registry_export(ct_stat_registry_t *reg, bool reset,
                                   struct ct_stat_list *out, ct_status_t *st);
/* Releases what an export filled; leaves l empty. NULL allowed. */
CT_API void ct_stat_list_destroy(struct ct_stat_list *l);
/* The value of `key` in l, summing repeated keys (Caffe2's toMap).
 * CT_ENOTFOUND when absent. */
CT_API int ct_stat_list_get(const struct ct_stat_list *l, const char *key,
                            int64_t *out);
/* Mean and sample variance of a StdDev stat "<prefix>/sum", "/count",
 * "/sumoffset", "/sumsqoffset" in l: mean = sum / count, variance =
 * (sumsqoffset - sumoffset^2 / count) / (count - 1) (0 when count < 2).
 * CT_ENOTFOUND when a key is missing, CT_EINVAL when count <= 0. */
CT_API int ct_stat_list_stddev(const struct ct_stat_list *l, const char *prefix,
                               double *mean, double *variance);

/* The registry as JSON: {"ts_ns": <Unix ns>, "stats": {"<key>": <value>,
 * ...}} with keys sorted, 2-space indent, a final newline. Bytes that are
 * not valid UTF-8 become U+FFFD. *out (NUL-terminated, *len bytes; len
 * may be NULL) is freed by the caller with ct_free. With reset the
 * export resets, and a failure puts the exported values back. Errors:
 * CT_ENOMEM (registry unchanged). */
CT_API int ct_stat_registry_export_json(ct_stat_registry_t *reg, bool reset,
                                        char **out, size_t *len,
                                        ct_status_t *st);
/* The registry in the Prometheus text exposition format (0.0.4): one
 * family per sanitised name ([a-zA-Z_:][a-zA-Z0-9_:]*, every other byte
 * becomes '_', a leading digit gets a '_' prefix) with a `# TYPE <name>
 * counter|gauge` line (gauge when any member is a gauge); a key that
 * needed sanitising keeps its exact text in a `key` label, so "a/b" and
 * "a_b" stay distinct samples of family a_b. Same ownership, reset and
 * errors as ct_stat_registry_export_json. */
CT_API int ct_stat_registry_export_prom(ct_stat_registry_t *reg, bool reset,
                                        char **out, size_t *len,
                                        ct_status_t *st);
/* Write those texts to path, atomically: a temporary file in the same
 * directory, fsync, rename (a device or pipe such as /dev/stdout is
 * written in place). With reset, a failed write puts the values back.
 * Errors: CT_EIO "<path>: <what failed>: <strerror>", CT_ENOMEM. */
CT_API int ct_stat_registry_write_json_file(ct_stat_registry_t *reg,
                                            const char *path, bool reset,
                                            ct_status_t *st);
CT_API int ct_stat_registry_write_prom_file(ct_stat_registry_t *reg,
                                            const char *path, bool reset,
                                            ct_status_t *st);

/* ---- Caffe2's stat flavours (caffe2/core/stats.h) ----
 * Each registers its keys "<group>/<name>[/...]" when initialised, so
 * they export as 0 before the first event; instances with the same names
 * share counters. Updates are lock-free shard updates; an event that
 * touches several keys (avg, stddev, a detailed stat's detail and total)
 * is one update, so every export holds it whole or not at all (e.g.
 * count == the number of samples in sum, total == sum of details). Unlike
 * Caffe2, updates return nothing: with sharded counters the merged value
 * is not known to the writer. Plain structs need no destroy. */

/* CAFFE_EXPORTED_STAT: key G/N; add(v): G/N += v. */
struct ct_stat_exported {
    ct_stat_registry_t *reg;
    ct_stat_t value;
};
CT_API int ct_stat_exported_init(struct ct_stat_exported *s,
                                 ct_stat_registry_t *reg, const char *group,
                                 const char *name, ct_status_t *st);
CT_API void ct_stat_exported_add(const struct ct_stat_exported *s, int64_t v);

/* CAFFE_AVG_EXPORTED_STAT: keys G/N/sum, G/N/count; add(v): count += 1,
 * sum += v. */
struct ct_stat_avg {
    ct_stat_registry_t *reg;
    ct_stat_t sum, count;
};
CT_API int ct_stat_avg_init(struct ct_stat_avg *s, ct_stat_registry_t *reg,
                            const char *group, const char *name,
                            ct_status_t *st);
CT_API void ct_stat_avg_add(const struct ct_stat_avg *s, int64_t v);

/* CAFFE_STATIC_STAT: key G/N (a gauge); set(v) stores v, returns the old
 * value. */
struct ct_stat_static {
    ct_stat_registry_t *reg;
    ct_stat_t value;
};
CT_API int ct_stat_static_init(struct ct_stat_static *s,
                               ct_stat_registry_t *reg, const char *group,
                               const char *name, ct_status_t *st);
CT_API int64_t ct_stat_static_set(const struct ct_stat_static *s, int64_t v);

/* CAFFE_STDDEV_EXPORTED_STAT: keys G/N/sum, /count, /sumsqoffset,
 * /sumoffset (the last two gauges). add(v): d = v - offset; count += 1,
 * sumsqoffset += d*d, sumoffset += d, sum += v. The offset is the first
 * sample ever added under G/N in the registry, by any instance, and never
 * moves (Caffe2 re-bases it on every odd sample, and per instance, which
 * breaks its own variance formula), so ct_stat_list_stddev gives the true
 * sample variance. d and d*d wrap modulo 2^64 instead of overflowing.
 * Caller frees with ct_stat_stddev_free. Errors: CT_ENOMEM. */
typedef struct ct_stat_stddev_s ct_stat_stddev_t;
CT_API int ct_stat_stddev_new(ct_stat_registry_t *reg, const char *group,
                              const char *name, ct_stat_stddev_t **out,
                              ct_status_t *st);
CT_API void ct_stat_stddev_free(ct_stat_stddev_t *s);
CT_API void ct_stat_stddev_add(ct_stat_stddev_t *s, int64_t v);

/* CAFFE_DETAILED_EXPORTED_STAT: key G/N plus G/N/<detail> for each name
 * given to set_details; add(v, idx) adds to detail idx when idx is in
 * range and always to G/N. set_details must not race with add on the
 * same object. Caller frees with ct_stat_detailed_free. */
typedef struct ct_stat_detailed_s ct_stat_detailed_t;
CT_API int ct_stat_detailed_new(ct_stat_registry_t *reg, const char *group,
                                const char *name, ct_stat_detailed_t **out,
                                ct_status_t *st);
CT_API void ct_stat_detailed_free(ct_stat_detailed_t *s);
/* Replaces the detail list. CT_ENOMEM leaves the old list. */
CT_API int ct_stat_detailed_set_details(ct_stat_detailed_t *s,
                                        const char *const *names, size_t n,
                                        ct_status_t *st);
CT_API void ct_stat_detailed_add(const ct_stat_detailed_t *s, int64_t v,
                                 size_t idx);

/* ---- timers (caffe2/core/timer.h, TimerInstance) ----
 * A timer measures CLOCK_MONOTONIC nanoseconds between begin and end and
 * records each interval into an avg stat (count += 1, sum += ns). It is an
 * object of its own (a blob holds it), never a pointer into an operator.
 * Not synchronised: one thread at a time per timer. */
typedef struct ct_timer_s ct_timer_t;

/* Creates a stopped timer. Caller frees with ct_timer_free. CT_ENOMEM. */
CT_API int ct_timer_new(ct_timer_t **out, ct_status_t *st);
CT_API void ct_timer_free(ct_timer_t *t);
/* Starts t; the matching end records into stat (copied; NULL records
 * nothing; its registry must outlive that end). CT_ESTATE "Called
 * TimerBegin on an already running timer." when running (t unchanged). */
CT_API int ct_timer_begin(ct_timer_t *t, const struct ct_stat_avg *stat,
                          ct_status_t *st);
/* Stops t and records the elapsed ns; *ns (may be NULL) receives them.
 * CT_ESTATE "Called TimerEnd on a stopped timer." */
CT_API int ct_timer_end(ct_timer_t *t, int64_t *ns, ct_status_t *st);
/* Elapsed ns of a running timer, without stopping it. CT_ESTATE "Called
 * TimerGet on a stopped timer." */
CT_API int ct_timer_get_ns(const ct_timer_t *t, int64_t *ns, ct_status_t *st);
CT_API bool ct_timer_running(const ct_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_STATS_H */
