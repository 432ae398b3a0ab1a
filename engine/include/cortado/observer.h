/* cortado: observers, callbacks around net runs and op runs.
 *
 * An observer watches one net: it gets a hook when a run of the net
 * starts and ends, and when each op of the run starts and ends, with the
 * op's index, type, name, input and output blobs (readable at op end), the
 * worker that runs it and, on request, a CLOCK_MONOTONIC timestamp.
 * Built-in observers (minmax, histogram, time, runcount, trace) are made
 * from a spec string, "minmax=out.minmax,dump_freq=10", the syntax of the
 * CLI's --observe; custom ones from a struct ct_observer_cbs. They are
 * attached to a net directly (ct_net_add_observer) or by creators
 * registered on the engine, which run for every net the engine creates
 * afterwards, subnets included (Caffe2's global net observers).
 * Thread-safety: attaching, removing, flushing and querying an observer
 * must not race a run of its net (attach/remove return CT_EBUSY when the
 * net runs). During a run the op hooks of different ops may run at the
 * same time on different threads; the hooks of one op never overlap, so
 * per-op state indexed by the op's idx needs no lock. Net start
 * happens-before every op hook of that run, and every op hook
 * happens-before net end. Engine creator registration is thread-safe.
 */
#ifndef CORTADO_OBSERVER_H
#define CORTADO_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/blob.h"
#include "cortado/common.h"
#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_observer_s ct_observer_t;

/* One op of an observed net, as hooks see it. Owned by the net; valid
 * while the observer is attached. */
struct ct_observer_op {
    int idx;          /* position in the net (execution index) */
    const char *type; /* OperatorDef.type, e.g. "FC" */
    const char *name; /* OperatorDef.name, "" when unset */
    int n_inputs, n_outputs;
    const char *const *input_names; /* as the OperatorDef writes them */
    const char *const *output_names;
    /* The blobs bound at compile time. Read their tensors with
     * ct_blob_get_tensor(): inputs from op start, outputs at op end. */
    ct_blob_t *const *inputs;
    ct_blob_t *const *outputs;
};

/* The observed net. Owned by the net; valid while the observer is
 * attached. */
struct ct_observer_net {
    const ct_net_t *net;
    const char *name; /* NetDef.name, "" when unset */
    uint64_t id;      /* unique on its engine: 1, 2, ... in creation order */
    int n_ops;
    const struct ct_observer_op *ops; /* n_ops entries */
};

/* What a hook receives. Valid only during the callback. */
struct ct_observer_event {
    const struct ct_observer_net *net;
    const struct ct_observer_op *op; /* NULL for net start / end */
    uint64_t run;                    /* 1 for the net's first run */
    /* CLOCK_MONOTONIC in ns when some observer of the net asked for time
     * (CT_OBSERVER_F_TIME), else 0. */
    uint64_t t_ns;
    int ith; /* worker running the op; 0 for net events (the caller) */
    int rc;  /* end hooks: CT_OK or the op's / run's error; 0 at start */
};

enum ct_observer_flags {
    CT_OBSERVER_F_TIME = 1u << 0, /* fill ev->t_ns (costs a clock read) */
};

/* A custom observer. Every callback may be NULL. A callback that returns
 * an error (with a message in st) fails the run: the run's status reads
 * `observer "<name>" (<hook>): <message>`, prefixed by `node <i> "<op>"
 * (<Type>): ` for op hooks; the first error of a run wins. An op whose
 * start hook fails does not run, but its end hooks still run (with rc
 * set). A failing net start hook skips the run; the observers whose start
 * hook ran still get net end. */
struct ct_observer_cbs {
    const char *name; /* for messages; copied (at most 31 bytes) */
    unsigned flags;   /* enum ct_observer_flags */
    /* Called once when attached; net describes the ops. */
    int (*attach_cb)(void *ctx, const struct ct_observer_net *net,
                     ct_status_t *st);
    int (*net_start_cb)(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st);
    int (*op_start_cb)(void *ctx, const struct ct_observer_event *ev,
                       ct_status_t *st);
    int (*op_end_cb)(void *ctx, const struct ct_observer_event *ev,
                     ct_status_t *st);
    int (*net_end_cb)(void *ctx, const struct ct_observer_event *ev,
                      ct_status_t *st);
    /* Writes what the observer reports at the end (its files). Called by
     * ct_observer_flush, ct_net_remove_observer and ct_net_free. */
    int (*flush_cb)(void *ctx, ct_status_t *st);
    /* Frees ctx; called by ct_observer_free (or the net that owns it). */
    void (*free_cb)(void *ctx);
};

/* ---- lifecycle ---- */

/* Makes an observer from callbacks; cbs is copied, ctx is owned by the
 * observer from now on (free_cb releases it, also when this call fails
 * with CT_ENOMEM). Caller frees with ct_observer_free unless attached. */
CT_API int ct_observer_new(const struct ct_observer_cbs *cbs, void *ctx,
                           ct_observer_t **out, ct_status_t *st);

/* Makes a built-in observer from `NAME[=FILE][,key=value...]`:
 *   minmax=FILE[,dump_freq=N][,delimiter=D]    Caffe2's 6-column min/max
 *   histogram=FILE[,nbins=2048][,dump_freq=N][,delimiter=D][,op_filter=T]
 *   time[=FILE.json]       per-op mean / p50 / p99 / count, net wall time
 *   runcount[=FILE.json]   runs of the net and of its ops
 *   trace=FILE.json[,max_events=N]   Chrome trace-event JSON
 * FILE may also be given as file=FILE. In FILE, %n is the net's name (
 * characters other than [A-Za-z0-9._-] become '_', "" becomes "net"), %i
 * the net's id and %% a '%'. D is one character or string, or space,
 * tab, comma; "delimiter=," at the end of the spec or before another
 * ",key=" means a comma. Files are checked for writability when the
 * observer is attached. Errors: CT_EINVAL naming the spec and the bad
 * part (unknown observer, unknown or repeated option, bad value, missing
 * FILE), CT_ENOMEM. Caller frees with ct_observer_free unless attached. */
CT_API int ct_observer_create_from_spec(ct_engine_t *eng, const char *spec,
                                        ct_observer_t **out, ct_status_t *st);

/* Frees an observer that is not attached (asserted: an attached one is
 * owned by its net). Does not flush. NULL allowed. */
CT_API void ct_observer_free(ct_observer_t *obs);

/* ---- attach / detach ---- */

/* Attaches obs to net, after the observers already attached (hooks run in
 * attach order); the net owns obs from now on and frees it with itself.
 * Attaching an observer that is already on this net does nothing
 * (CT_OK). Errors, with obs unchanged and still the caller's: CT_EBUSY
 * (net running, or obs attached to another net), CT_ESTATE (obs was
 * attached before and removed: make a new one), CT_EINVAL (net of another
 * engine), CT_EEXIST (obs's file is already written by a live observer of
 * this engine), CT_EIO (file not writable), CT_ENOMEM, or the error of
 * the observer's attach_cb. */
CT_API int ct_net_add_observer(ct_net_t *net, ct_observer_t *obs,
                               ct_status_t *st);
/* Detaches obs from net and flushes it; obs is the caller's again (free
 * with ct_observer_free). Its results (get_info, counts) stay readable.
 * Errors: CT_EBUSY (net running; nothing changes), CT_ENOTFOUND (obs not
 * on net), or the flush's error (obs is detached all the same). */
CT_API int ct_net_remove_observer(ct_net_t *net, ct_observer_t *obs,
                                  ct_status_t *st);
/* Number of observers on net, and observer i in attach order (owned by
 * the net). */
CT_API int ct_net_n_observers(const ct_net_t *net);
CT_API ct_observer_t *ct_net_get_observer(const ct_net_t *net, int i);

/* ---- engine-wide creators ---- */

/* Called by ct_net_new for every net the engine creates after this call
 * (subnets included), in registration order, once the net is compiled.
 * Sets *out to a new observer to attach, or NULL to leave this net
 * alone. An error fails ct_net_new with `net <name>: observer creator
 * <k>: <message>`. May run on several threads at once. */
typedef int (*ct_observer_create_cb)(void *ctx, ct_net_t *net,
                                     ct_observer_t **out, ct_status_t *st);

/* Registers a creator. ctx must stay valid until the engine is freed,
 * which calls ctx_free_cb(ctx) (may be NULL). Errors: CT_ENOMEM (nothing
 * registered; ctx_free_cb is not called). Thread-safe. */
CT_API int ct_engine_add_observer_creator(ct_engine_t *eng,
                                          ct_observer_create_cb create_cb,
                                          void *ctx,
                                          void (*ctx_free_cb)(void *ctx),
                                          ct_status_t *st);
/* Registers a creator that makes the built-in observer of `spec` (as
 * ct_observer_create_from_spec) for every new net. A FILE without %n or
 * %i gets ".%n" before its extension, so every net writes its own file
 * ("out.minmax" -> "out.mlp_predict.minmax"), and ".%n.%i" when a live
 * observer already writes that name. The spec is checked now (CT_EINVAL).
 * Thread-safe. */
CT_API int ct_engine_add_observer_spec(ct_engine_t *eng, const char *spec,
                                       ct_status_t *st);
/* Stops every registered creator from running for nets created after
 * this call (Caffe2's ClearGlobalNetObservers). Nets keep their
 * observers. Thread-safe. */
CT_API void ct_engine_clear_observer_creators(ct_engine_t *eng);

/* ---- queries and output ---- */

/* Kind name: "minmax", "histogram", "time", "runcount", "trace", or the
 * name given in ct_observer_cbs. Owned by obs. */
CT_API const char *ct_observer_name(const ct_observer_t *obs);
/* The resolved output file (placeholders expanded) once attached; NULL
 * before attach or for an observer without a file. Owned by obs. */
CT_API const char *ct_observer_file(const ct_observer_t *obs);
/* Writes the observer's final output now: minmax lifetime totals to FILE,
 * histogram interval histograms to FILE, time JSON, runcount JSON, trace
 * JSON. ct_net_free flushes again only if the net ran since. Errors:
 * CT_EIO `observer <name>: cannot write "<file>": <reason>`, CT_ESTATE
 * (never attached), CT_ENOMEM. */
CT_API int ct_observer_flush(ct_observer_t *obs, ct_status_t *st);
/* A human-readable summary (time: a per-op table; others: one line)
 * into a buffer the caller frees with ct_free. Errors: CT_ENOMEM. */
CT_API int ct_observer_describe(const ct_observer_t *obs, char **out,
                                ct_status_t *st);

/* ---- minmax (OutputMinMaxNetObserver) ---- */

/* One output of one op. min/max cover the runs since the last dump;
 * total_min/total_max the whole life. A never-updated output holds
 * FLT_MAX / -FLT_MAX, as in Caffe2. */
struct ct_minmax_info {
    int op_idx;
    const char *op_type; /* "" for an op with no outputs is never listed */
    int output_idx;
    const char *blob_name;
    float min, max;
    float total_min, total_max;
};
/* Caffe2's GetInfo: every (op, output) in dump order, owned by obs and
 * valid until it is freed; not while its net runs. CT_EINVAL when obs is
 * not a minmax observer, CT_ESTATE before attach. */
CT_API int ct_minmax_observer_get_info(const ct_observer_t *obs,
                                       const struct ct_minmax_info **info,
                                       size_t *n, ct_status_t *st);
/* Caffe2's DumpAndReset: writes one line per (op, output),
 * `op_idx<d>op_type<d>output_idx<d>blob_name<d>min<d>max`, with the
 * totals when print_total is set, else the interval values, which are
 * then reset. file NULL: the observer's file. Errors: CT_EINVAL (not a
 * minmax observer), CT_ESTATE (never attached), CT_EIO, CT_ENOMEM. */
CT_API int ct_minmax_observer_dump_and_reset(ct_observer_t *obs,
                                             const char *file, bool print_total,
                                             ct_status_t *st);

/* ---- histogram (HistogramNetObserver) ---- */

/* Caffe2's DumpHistogramFile / DumpAndReset: one line per (op, output),
 * `op_idx<d>op_type<d>output_idx<d>blob_name<d>min<d>max<d>nbins<d>c0...`,
 * from the lifetime histograms when print_total is set, else from the
 * interval ones, which are then reset. file NULL: the observer's file.
 * Errors as ct_minmax_observer_dump_and_reset. */
CT_API int ct_histogram_observer_dump(ct_observer_t *obs, const char *file,
                                      bool print_total, ct_status_t *st);

/* ---- time ---- */

/* Durations in ns. p50 and p99 come from a log-linear histogram with
 * 1/32 relative resolution; mean and total are exact. */
struct ct_time_stats {
    uint64_t count;
    double total_ns, mean_ns, p50_ns, p99_ns, min_ns, max_ns;
};
/* Op i's statistics (i in [0, n_ops)), or the net's wall time per run
 * when i is -1. Errors: CT_EINVAL (not a time observer, i out of range),
 * CT_ESTATE (never attached). */
CT_API int ct_time_observer_get(const ct_observer_t *obs, int i,
                                struct ct_time_stats *out, ct_status_t *st);

/* ---- runcount ---- */

/* Runs of the net and op runs summed over every op and run (Caffe2's
 * RunCountNetObserver counts the latter). CT_EINVAL when obs is not a
 * runcount observer. */
CT_API int ct_runcount_observer_get(const ct_observer_t *obs,
                                    uint64_t *net_runs, uint64_t *op_runs,
                                    ct_status_t *st);

/* ---- trace ---- */

/* Events recorded and events dropped because the max_events cap was
 * reached. CT_EINVAL when obs is not a trace observer. */
CT_API int ct_trace_observer_get(const ct_observer_t *obs, uint64_t *events,
                                 uint64_t *dropped, ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_OBSERVER_H */
