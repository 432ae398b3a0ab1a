/* cortado internal: the observer plumbing executors and built-ins see.
 *
 * EXECUTOR HOOK CONTRACT (every executor, present and future)
 * ------------------------------------------------------------
 * The net hooks are not the executors' business: ct_net_run (engine/
 * net.c) calls ct__obs_net_start before exec->run_cb and ct__obs_net_end
 * after it returns, on the calling thread. An executor calls exactly two
 * hooks per op it runs, on the thread that runs the op:
 *
 *     ct__net_op_ctx(net, i, &ctx);            (or its own ctx, ith set)
 *     rc = ct__obs_op_start(net, i, ctx.ith);  before the kernel
 *     if (rc == CT_OK)
 *         rc = ct__op_run(&ctx);                 skip the kernel on error
 *     rc = ct__obs_op_end(net, i, ctx.ith, rc); always, once op_start ran
 *     if (rc != CT_OK)
 *         ... ct__net_fail_node(net, i, &net->node_status[i], st) ...
 *
 * - An op that is skipped (a failure was seen before it started) gets no
 *   hook at all. An op that was started gets both hooks, even when its
 *   start hook or its kernel failed.
 * - ct__obs_op_end returns the op's rc when that is an error, else the
 *   first observer error; either way node_status[i] explains it, so the
 *   executor treats a non-zero return exactly like a failing kernel
 *   (first error wins, later ops skipped).
 * - ith is the worker index the kernel sees (ctx.ith); 0 for the caller.
 * - The hooks take no lock, allocate nothing when no observer is on the
 *   net and cost one predictable branch each in that case (an inline test
 *   of net->obs).
 *
 * Guarantees observers rely on (executors must keep them):
 *   1. the op hooks of op i run on the thread that runs op i, and the two
 *      hooks of one op never overlap with each other;
 *   2. net start happens-before every op hook of the run (the executor
 *      publishes op i's task after ct_net_run called net start);
 *   3. every op hook of a run happens-before net end (run_cb returns only
 *      after every started op has finished: join counters/latch with
 *      acquire-release);
 *   4. hooks of different ops may run concurrently; nothing is shared
 *      between them except what the observer itself shares.
 * net->obs does not change during a run: attach/remove claim the net's
 * `running` flag like a run does.
 */
#ifndef CT_OBSERVERS_OBSERVER_IMPL_H
#define CT_OBSERVERS_OBSERVER_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cortado/observer.h"
#include "engine/blob_impl.h"
#include "engine/net_impl.h"
#include "engine/tensor_impl.h"

/* ---- observer objects ---- */

struct ct__obs_spec;
struct ct__obs_buf;

/* Every built-in's ctx starts with this; ct_observer_create_from_spec
 * points it at the observer (its file, its name) once that exists. */
struct ct__obs_base {
    ct_observer_t *obs;
};

/* A built-in observer kind (minmax.c, histogram.c, time.c, runcount.c,
 * trace.c). */
struct ct__obs_kind {
    const char *name;
    const char *const *options; /* spec keys besides "file"; NULL-ended */
    int file;                   /* 0 none, 1 optional, 2 required */
    const struct ct_observer_cbs *cbs;
    /* Builds ctx from the parsed spec (options already validated by
     * name). */
    int (*new_cb)(const struct ct__obs_spec *sp, void **ctx, ct_status_t *st);
    /* One line or a table for ct_observer_describe. */
    void (*describe_cb)(const ct_observer_t *obs, struct ct__obs_buf *b);
};

extern const struct ct__obs_kind ct__obs_kind_minmax;
extern const struct ct__obs_kind ct__obs_kind_histogram;
extern const struct ct__obs_kind ct__obs_kind_time;
extern const struct ct__obs_kind ct__obs_kind_runcount;
extern const struct ct__obs_kind ct__obs_kind_trace;

struct ct_observer_s {
    struct ct_observer_cbs cbs; /* copied; cbs.name points at name[] */
    char name[32];
    void *ctx;
    const struct ct__obs_kind *kind; /* NULL for custom observers */
    ct_engine_t *eng;                /* NULL for custom observers */
    ct_net_t *net;                   /* attached net, else NULL */
    bool was_attached;
    /* Built-ins with a file: the spec's FILE, and the path it resolved to
     * at attach (claimed on eng until ct_observer_free). per_net_file:
     * made by an engine spec creator, so a FILE without a placeholder
     * gets ".%n" (see ct_engine_add_observer_spec). */
    char *file_template;
    char *file;
    bool per_net_file;
    /* The net's run number (set->run) at the last flush, UINT64_MAX when
     * never flushed; ct_net_free flushes when the net ran since. Written
     * by flush, which never races a run (see header). */
    uint64_t flushed_run;
};

/* Per-net observer state, net->obs. NULL when nothing is attached. */
struct ct__obs_set {
    int n;             /* attached observers, >= 1 */
    int cap;           /* capacity of v, op_start and op_end */
    ct_observer_t **v; /* attach order */
    /* The observers with an op start / op end callback, in attach order,
     * so the per-op paths skip the others without a call. */
    int n_op_start, n_op_end;
    ct_observer_t **op_start, **op_end;
    int n_net_start, n_net_end; /* observers with those callbacks */
    bool want_time;             /* some observer has CT_OBSERVER_F_TIME */
    uint64_t run; /* current run; written by ct__obs_net_start only */
    struct ct_observer_net info;
    struct ct_observer_op *ops; /* info.ops, n_ops entries */
};

/* The built-in ctx of obs when obs is of `kind`, else NULL with CT_EINVAL
 * `<fn>: observer "<name>" is not a <kind> observer` in st. */
void *ct__obs_kind_ctx(const ct_observer_t *obs,
                       const struct ct__obs_kind *kind, const char *fn,
                       ct_status_t *st);

/* ---- net and engine integration (observer.c, creator.c) ---- */

/* ct_net_new, once the net is compiled: gives it its id and runs the
 * engine's creators. On failure every observer attached so far is freed
 * without a flush and st names the creator. */
int ct__obs_net_init(ct_net_t *net, ct_status_t *st);
/* ct_net_free, before the ops go: flushes observers that ran since their
 * last flush (a failure is printed on stderr: there is no caller left to
 * tell) and frees them. */
void ct__obs_net_destroy(ct_net_t *net);

/* creator.c: runs the engine's creators for a new net, attaching what
 * they make through ct__obs_attach_new_net (observer.c: attach without
 * claiming the net, which nobody else can see yet). */
int ct__obs_run_creators(ct_net_t *net, ct_status_t *st);
int ct__obs_attach_new_net(ct_net_t *net, ct_observer_t *obs, ct_status_t *st);

/* Slow paths of the hooks below. */
int ct__obs_net_start_slow(ct_net_t *net, ct_status_t *st);
int ct__obs_net_end_slow(ct_net_t *net, int rc, ct_status_t *st);
int ct__obs_op_start_slow(ct_net_t *net, int i, int ith);
int ct__obs_op_end_slow(ct_net_t *net, int i, int ith, int rc);

/* Path claims on the engine (creator.c): a file written by one live
 * observer cannot be claimed by another. */
int ct__obs_claim_file(ct_observer_t *obs, const ct_net_t *net,
                       ct_status_t *st);
void ct__obs_release_file(ct_observer_t *obs);

/* ---- the hooks ---- */

/* Called by ct_net_run before run_cb. On error st reads `net <name>:
 * observer "<obs>" (net start): <message>` and the run must not start. */
static inline int ct__obs_net_start(ct_net_t *net, ct_status_t *st)
{
    struct ct__obs_set *s = net->obs;

    if (CT_LIKELY(s == NULL))
        return CT_OK;
    s->run++;
    if (s->n_net_start == 0)
        return CT_OK;
    return ct__obs_net_start_slow(net, st);
}

/* Called by ct_net_run after run_cb with its rc; returns rc, or the first
 * observer error when rc is CT_OK. */
static inline int ct__obs_net_end(ct_net_t *net, int rc, ct_status_t *st)
{
    if (CT_LIKELY(net->obs == NULL) || net->obs->n_net_end == 0)
        return rc;
    return ct__obs_net_end_slow(net, rc, st);
}

/* Before op i's kernel, on its thread. Non-zero: do not run the kernel;
 * node_status[i] holds `observer "<obs>" (op start): <message>`. */
static inline int ct__obs_op_start(ct_net_t *net, int i, int ith)
{
    if (CT_LIKELY(net->obs == NULL) || net->obs->n_op_start == 0)
        return CT_OK;
    return ct__obs_op_start_slow(net, i, ith);
}

/* After op i (kernel rc, or op start's error), on its thread. */
static inline int ct__obs_op_end(ct_net_t *net, int i, int ith, int rc)
{
    if (CT_LIKELY(net->obs == NULL) || net->obs->n_op_end == 0)
        return rc;
    return ct__obs_op_end_slow(net, i, ith, rc);
}

/* The tensor a blob holds, or NULL: ct_blob_get_tensor without the call,
 * for the per-op paths. */
static inline const ct_tensor_t *ct__obs_blob_tensor(const ct_blob_t *b)
{
    return b->type == &ct_blob_type_tensor ? (const ct_tensor_t *)b->obj : NULL;
}

/* ---- spec strings (spec.c) ---- */

#define CT__OBS_SPEC_MAX_KV 16

struct ct__obs_spec {
    char *buf;        /* owned copy of the spec, cut into pieces */
    const char *text; /* the spec as given, for messages */
    const struct ct__obs_kind *kind;
    const char *file; /* NULL when absent */
    int n_kv;
    const char *key[CT__OBS_SPEC_MAX_KV];
    const char *val[CT__OBS_SPEC_MAX_KV];
};

/* Parses `NAME[=FILE][,key=value...]`; see ct_observer_create_from_spec.
 * sp->buf is freed with ct__obs_spec_destroy (also after a failure). */
int ct__obs_spec_parse(const char *text, struct ct__obs_spec *sp,
                       ct_status_t *st);
void ct__obs_spec_destroy(struct ct__obs_spec *sp);
/* Option value, or NULL when absent. */
const char *ct__obs_spec_get(const struct ct__obs_spec *sp, const char *key);
/* Integer option in [lo, hi] (dflt when absent); CT_EINVAL naming the
 * spec, key and value otherwise. */
int ct__obs_spec_int(const struct ct__obs_spec *sp, const char *key,
                     long long dflt, long long lo, long long hi, long long *out,
                     ct_status_t *st);
/* dump_freq: -1 (never) or >= 1. */
int ct__obs_spec_dump_freq(const struct ct__obs_spec *sp, int *out,
                           ct_status_t *st);
/* delimiter: "space", "tab", "comma", "\t" or a literal string of at most
 * 15 bytes; default " ". Copied into out[16]. */
int ct__obs_spec_delimiter(const struct ct__obs_spec *sp, char out[16],
                           ct_status_t *st);
/* Checks a FILE template's placeholders (%n, %i, %%). */
int ct__obs_template_check(const char *spec, const char *tmpl, ct_status_t *st);
/* Expands a FILE template for net into a new string (ct__free). With
 * per_net set and no placeholder in tmpl, inserts ".<name>" (and
 * ".<name>.<id>" when with_id) before the extension. NULL on OOM. */
char *ct__obs_template_expand(const char *tmpl, const char *net_name,
                              uint64_t net_id, bool per_net, bool with_id);

/* ---- output helpers (output.c) ---- */

/* Growing text buffer; after an allocation failure appends are no-ops and
 * oom stays set. */
struct ct__obs_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void ct__obs_buf_printf(struct ct__obs_buf *b, const char *fmt, ...)
    CT_PRINTF(2, 3);
/* Appends s as a JSON string literal (quotes and escapes). */
void ct__obs_buf_json_str(struct ct__obs_buf *b, const char *s);
/* Writes the buffer to path (truncating) and empties it. CT_EIO
 * `cannot write "<path>": <reason>`, CT_ENOMEM when b->oom. Does not
 * free b. Callers (the hooks, ct_observer_flush) add who failed. */
int ct__obs_buf_write(struct ct__obs_buf *b, const char *path, ct_status_t *st);
/* Streaming writes for big outputs: open (truncating; CT_EIO as above),
 * drain the buffer into f (returns 0 or an errno value, ENOMEM when
 * b->oom; b is emptied), close (flushes; err is the first drain error, or
 * 0; returns the status for it). */
int ct__obs_file_open(const char *path, FILE **out, ct_status_t *st);
int ct__obs_buf_drain(struct ct__obs_buf *b, FILE *f);
int ct__obs_file_close(const char *path, FILE *f, int err, ct_status_t *st);
void ct__obs_buf_free(struct ct__obs_buf *b);
/* Caffe2's `_<k>` rule: "a/b.minmax" -> "a/b_3.minmax" when the last '.'
 * follows the last '/', else "<path>_3". New string (ct__free); NULL on
 * OOM. */
char *ct__obs_suffixed_path(const char *path, long long k);
/* Checks that path can be opened for writing (creating it if needed,
 * without truncating). CT_EIO as above. */
int ct__obs_probe_file(const char *path, ct_status_t *st);
/* min/max of a float, int32 or int64 tensor folded into *mn / *mx (NaN
 * elements are ignored, as Caffe2's std::min/max chain does past element
 * 0). Returns false for other dtypes or empty tensors. */
bool ct__obs_tensor_minmax(const ct_tensor_t *t, float *mn, float *mx);

/* ---- clock (output.c) ---- */

/* Cheap timestamps for built-ins: the TSC on x86 when the kernel uses it
 * as its clocksource (invariant and synchronised), else CLOCK_MONOTONIC.
 * Ticks become ns through two anchors (init and the latest calibration),
 * so no frequency guess is involved. */
struct ct__obs_clock {
    bool tsc;
    uint64_t tick0, ns0; /* anchor at init */
    double ns_per_tick;  /* 1 without TSC; set by calibrate */
};
void ct__obs_clock_init(struct ct__obs_clock *c);
/* Re-derives ns_per_tick from the anchors (spins until 2 ms passed since
 * init, so the ratio is exact to ~1e-5). Call before converting. */
void ct__obs_clock_calibrate(struct ct__obs_clock *c);
/* ns since the init anchor for a tick value. */
static inline double ct__obs_clock_ns(const struct ct__obs_clock *c,
                                      uint64_t ticks)
{
    return (double)(int64_t)(ticks - c->tick0) * c->ns_per_tick;
}
uint64_t ct__obs_now_ns(void);
static inline uint64_t ct__obs_ticks(const struct ct__obs_clock *c)
{
#if defined(__x86_64__) || defined(__i386__)
    if (CT_LIKELY(c->tsc))
        return __builtin_ia32_rdtsc();
#endif
    return ct__obs_now_ns();
}

#endif /* CT_OBSERVERS_OBSERVER_IMPL_H */
