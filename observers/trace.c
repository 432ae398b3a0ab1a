/* cortado: the trace observer, Chrome trace-event JSON.
 *
 * Spec: trace=FILE.json[,max_events=N] (N default 1000000).
 * One complete event ("ph": "X") per op run, on track tid = the worker
 * index (ith) that ran it, with args {type, op, run, inputs, input_shapes}
 * (names and shapes of the inputs at op start), plus one event per net
 * run on its own track. The file opens in Perfetto (ui.perfetto.dev) and
 * chrome://tracing; it is written when the observer is flushed (at
 * ct_net_free at the latest).
 * Memory is bounded: op i keeps at most max_events / (n_ops + 1) events
 * (the net track as much), growing its array by doubling; events past the
 * cap, or whose array could not grow, are counted as dropped and the
 * count is written into the file's otherData. Each op remembers up to 16
 * distinct input shape sets and events point at one of them, so a run
 * costs two clock reads, a shape comparison and a 24-byte store.
 * Threading: op i's events, shapes and start tick are written only by op
 * i's hooks; the net track only by the net hooks; the flush reads
 * everything after the run (observer_impl.h guarantees).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "observers/observer_impl.h"

#define MAX_SHAPE_SETS 16
#define NO_SHAPE 0xff
#define NET_TID 1000000 /* the net track */

struct event {
    uint64_t t0, dur; /* ticks */
    uint32_t run;
    uint16_t ith;
    uint8_t shape; /* index into the op's shape sets, or NO_SHAPE */
};

/* The input shapes of one run: ndim[k] (-1: not a tensor) and the dims of
 * every input one after the other, plus their JSON text. */
struct shape_set {
    int n_dims; /* entries in dims */
    int *ndim;  /* n_inputs */
    int64_t *dims;
    char *json;
};

/* One op's (or the net's) events. The fields every run touches come
 * first and fit one cache line; the shape sets live apart. */
struct track {
    uint64_t t_start;
    struct event *ev;
    uint32_t n, cap;
    uint8_t cur_shape;
    int n_shapes;
    uint64_t dropped;
    struct shape_set *shapes; /* MAX_SHAPE_SETS, allocated at first use */
};

struct trace {
    struct ct__obs_base base;
    struct ct__obs_clock clock;
    uint64_t max_events;
    uint32_t cap_per_track;
    char *net_name;
    int n_ops;
    char **types, **names, **inputs_json; /* owned, n_ops each */
    struct track *ops;                    /* op i: op i's hooks only */
    struct track net_track;               /* net hooks only */
};

static void free_track(struct track *t)
{
    int k;

    for (k = 0; k < t->n_shapes; k++) {
        ct__free(t->shapes[k].ndim);
        ct__free(t->shapes[k].dims);
        ct__free(t->shapes[k].json);
    }
    ct__free(t->shapes);
    ct__free(t->ev);
    memset(t, 0, sizeof(*t));
}

static void free_tables(struct trace *tr)
{
    int i;

    for (i = 0; i < tr->n_ops; i++) {
        ct__free(tr->types[i]);
        ct__free(tr->names[i]);
        ct__free(tr->inputs_json[i]);
        free_track(&tr->ops[i]);
    }
    free_track(&tr->net_track);
    ct__free(tr->types);
    ct__free(tr->names);
    ct__free(tr->inputs_json);
    ct__free(tr->ops);
    ct__free(tr->net_name);
    tr->types = tr->names = tr->inputs_json = NULL;
    tr->ops = NULL;
    tr->net_name = NULL;
    tr->n_ops = 0;
}

static void trace_free(void *ctx)
{
    if (ctx == NULL)
        return;
    free_tables(ctx);
    ct__free(ctx);
}

/* ["a", "b"] for the input names of op. */
static char *names_json(const struct ct_observer_op *op)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};
    int k;

    ct__obs_buf_printf(&b, "[");
    for (k = 0; k < op->n_inputs; k++) {
        ct__obs_buf_printf(&b, "%s", k ? ", " : "");
        ct__obs_buf_json_str(&b, op->input_names[k]);
    }
    ct__obs_buf_printf(&b, "]");
    if (b.oom) {
        ct__obs_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int trace_attach(void *ctx, const struct ct_observer_net *net,
                        ct_status_t *st)
{
    struct trace *tr = ctx;
    size_t n = (size_t)net->n_ops + 1;
    int i;

    free_tables(tr);
    tr->types = ct__calloc(n, sizeof(char *));
    tr->names = ct__calloc(n, sizeof(char *));
    tr->inputs_json = ct__calloc(n, sizeof(char *));
    tr->ops = ct__calloc(n, sizeof(*tr->ops));
    tr->net_name = ct__strdup(net->name);
    if (tr->types == NULL || tr->names == NULL || tr->inputs_json == NULL ||
        tr->ops == NULL || tr->net_name == NULL)
        goto oom;
    tr->n_ops = net->n_ops;
    for (i = 0; i < net->n_ops; i++) {
        const struct ct_observer_op *op = &net->ops[i];
        tr->types[i] = ct__strdup(op->type);
        tr->names[i] = ct__strdup(op->name[0] != '\0' ? op->name : op->type);
        tr->inputs_json[i] = names_json(op);
        if (tr->types[i] == NULL || tr->names[i] == NULL ||
            tr->inputs_json[i] == NULL)
            goto oom;
    }
    tr->cap_per_track =
        (uint32_t)(tr->max_events / n > UINT32_MAX
                       ? UINT32_MAX
                       : (tr->max_events / n > 0 ? tr->max_events / n : 1));
    ct__obs_clock_init(&tr->clock);
    return CT_OK;
oom:
    free_tables(tr);
    return ct_status_setf(st, CT_ENOMEM, "out of memory");
}

/* ---- recording ---- */

static bool shape_matches(const struct shape_set *s,
                          const struct ct_observer_op *op)
{
    int k, j, off = 0;

    for (k = 0; k < op->n_inputs; k++) {
        const ct_tensor_t *t = ct__obs_blob_tensor(op->inputs[k]);
        int nd = t != NULL ? t->ndim : -1;
        if (nd != s->ndim[k])
            return false;
        for (j = 0; j < nd; j++)
            if (t->dims[j] != s->dims[off + j])
                return false;
        off += nd > 0 ? nd : 0;
    }
    return true;
}

/* Records the current input shapes as a new set; false on OOM. */
static bool shape_add(struct shape_set *s, const struct ct_observer_op *op)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};
    int k, j, n = 0;

    for (k = 0; k < op->n_inputs; k++) {
        const ct_tensor_t *t = ct__obs_blob_tensor(op->inputs[k]);
        n += t != NULL ? t->ndim : 0;
    }
    s->ndim = ct__calloc((size_t)op->n_inputs + 1, sizeof(int));
    s->dims = ct__calloc((size_t)n + 1, sizeof(int64_t));
    if (s->ndim == NULL || s->dims == NULL)
        goto oom;
    ct__obs_buf_printf(&b, "[");
    for (k = 0, n = 0; k < op->n_inputs; k++) {
        const ct_tensor_t *t = ct__obs_blob_tensor(op->inputs[k]);
        s->ndim[k] = t != NULL ? ct_tensor_ndim(t) : -1;
        ct__obs_buf_printf(&b, "%s%s", k ? ", " : "", t != NULL ? "[" : "null");
        for (j = 0; t != NULL && j < s->ndim[k]; j++, n++) {
            s->dims[n] = ct_tensor_dim(t, j);
            ct__obs_buf_printf(&b, "%s%lld", j ? ", " : "",
                               (long long)s->dims[n]);
        }
        ct__obs_buf_printf(&b, "%s", t != NULL ? "]" : "");
    }
    ct__obs_buf_printf(&b, "]");
    if (b.oom)
        goto oom;
    s->n_dims = n;
    s->json = b.p;
    return true;
oom:
    ct__obs_buf_free(&b);
    ct__free(s->ndim);
    ct__free(s->dims);
    memset(s, 0, sizeof(*s));
    return false;
}

static uint8_t shape_of(struct track *t, const struct ct_observer_op *op)
{
    int k;

    if (t->cur_shape != NO_SHAPE && t->n_shapes > 0 &&
        shape_matches(&t->shapes[t->cur_shape], op))
        return t->cur_shape;
    for (k = 0; k < t->n_shapes; k++)
        if (shape_matches(&t->shapes[k], op))
            return (uint8_t)k;
    if (t->shapes == NULL &&
        (t->shapes = ct__calloc(MAX_SHAPE_SETS, sizeof(*t->shapes))) == NULL)
        return NO_SHAPE;
    if (t->n_shapes == MAX_SHAPE_SETS || !shape_add(&t->shapes[k], op))
        return NO_SHAPE;
    t->n_shapes++;
    return (uint8_t)k;
}

/* Appends an event, growing up to the cap; counts a drop otherwise. */
static void record(struct trace *tr, struct track *t, uint64_t t0, uint64_t t1,
                   uint64_t run, int ith, uint8_t shape)
{
    struct event *e;

    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 16;
        struct event *ev;
        if (cap > tr->cap_per_track || cap < t->cap)
            cap = tr->cap_per_track;
        ev =
            cap > t->cap ? ct__realloc(t->ev, (size_t)cap * sizeof(*ev)) : NULL;
        if (ev == NULL) {
            t->dropped++;
            return;
        }
        t->ev = ev;
        t->cap = cap;
    }
    e = &t->ev[t->n++];
    e->t0 = t0;
    e->dur = t1 - t0;
    e->run = (uint32_t)run;
    e->ith = (uint16_t)(ith >= 0 && ith < UINT16_MAX ? ith : UINT16_MAX);
    e->shape = shape;
}

static int trace_net_start(void *ctx, const struct ct_observer_event *ev,
                           ct_status_t *st)
{
    struct trace *tr = ctx;

    (void)ev;
    (void)st;
    tr->net_track.t_start = ct__obs_ticks(&tr->clock);
    return CT_OK;
}

static int trace_net_end(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st)
{
    struct trace *tr = ctx;

    (void)st;
    record(tr, &tr->net_track, tr->net_track.t_start, ct__obs_ticks(&tr->clock),
           ev->run, NET_TID, NO_SHAPE);
    return CT_OK;
}

static int trace_op_start(void *ctx, const struct ct_observer_event *ev,
                          ct_status_t *st)
{
    struct trace *tr = ctx;
    struct track *t = &tr->ops[ev->op->idx];

    (void)st;
    t->cur_shape = shape_of(t, ev->op);
    t->t_start = ct__obs_ticks(&tr->clock);
    return CT_OK;
}

static int trace_op_end(void *ctx, const struct ct_observer_event *ev,
                        ct_status_t *st)
{
    struct trace *tr = ctx;
    struct track *t = &tr->ops[ev->op->idx];
    uint64_t t1 = ct__obs_ticks(&tr->clock);

    (void)st;
    record(tr, t, t->t_start, t1, ev->run, ev->ith, t->cur_shape);
    return CT_OK;
}

/* ---- output ---- */

static void counts(const struct trace *tr, uint64_t *events, uint64_t *dropped)
{
    int i;

    *events = tr->net_track.n;
    *dropped = tr->net_track.dropped;
    for (i = 0; i < tr->n_ops; i++) {
        *events += tr->ops[i].n;
        *dropped += tr->ops[i].dropped;
    }
}

static void put_event(struct trace *tr, struct ct__obs_buf *b, long pid, int i,
                      const struct event *e)
{
    double ts = ct__obs_clock_ns(&tr->clock, e->t0) / 1e3;
    double dur = (double)e->dur * tr->clock.ns_per_tick / 1e3;

    if (i < 0) {
        ct__obs_buf_printf(b, ",\n{\"name\": ");
        ct__obs_buf_json_str(b, tr->net_name[0] ? tr->net_name : "net");
        ct__obs_buf_printf(b,
                           ", \"cat\": \"net\", \"ph\": \"X\", \"ts\": %.3f, "
                           "\"dur\": %.3f, \"pid\": %ld, \"tid\": %d, "
                           "\"args\": {\"run\": %u}}",
                           ts, dur, pid, NET_TID, (unsigned)e->run);
        return;
    }
    ct__obs_buf_printf(b, ",\n{\"name\": ");
    ct__obs_buf_json_str(b, tr->names[i]);
    ct__obs_buf_printf(b,
                       ", \"cat\": \"op\", \"ph\": \"X\", \"ts\": %.3f, "
                       "\"dur\": %.3f, \"pid\": %ld, \"tid\": %u, \"args\": "
                       "{\"type\": ",
                       ts, dur, pid, (unsigned)e->ith);
    ct__obs_buf_json_str(b, tr->types[i]);
    ct__obs_buf_printf(b, ", \"op\": %d, \"run\": %u, \"inputs\": %s", i,
                       (unsigned)e->run, tr->inputs_json[i]);
    if (e->shape != NO_SHAPE)
        ct__obs_buf_printf(b, ", \"input_shapes\": %s}}",
                           tr->ops[i].shapes[e->shape].json);
    else
        ct__obs_buf_printf(b, ", \"input_shapes\": null}}");
}

static int trace_flush(void *ctx, ct_status_t *st)
{
    struct trace *tr = ctx;
    struct ct__obs_buf b = {NULL, 0, 0, false};
    const char *path = tr->base.obs->file;
    bool tid_named[256] = {false};
    uint64_t events, dropped;
    long pid = (long)getpid();
    FILE *f;
    int i, err = 0, rc;
    uint32_t k;

    ct__obs_clock_calibrate(&tr->clock);
    counts(tr, &events, &dropped);
    rc = ct__obs_file_open(path, &f, st);
    if (rc != CT_OK)
        return rc;
    ct__obs_buf_printf(&b, "{\"displayTimeUnit\": \"ns\", \"otherData\": "
                           "{\"net\": ");
    ct__obs_buf_json_str(&b, tr->net_name);
    ct__obs_buf_printf(&b,
                       ", \"events\": %llu, \"dropped\": %llu, \"clock\": "
                       "\"%s\"},\n\"traceEvents\": [\n",
                       (unsigned long long)events, (unsigned long long)dropped,
                       tr->clock.tsc ? "tsc" : "monotonic");
    ct__obs_buf_printf(&b,
                       "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": "
                       "%ld, \"tid\": %d, \"args\": {\"name\": \"net runs\"}}",
                       pid, NET_TID);
    for (k = 0; k < tr->net_track.n; k++)
        put_event(tr, &b, pid, -1, &tr->net_track.ev[k]);
    for (i = 0; i < tr->n_ops && err == 0; i++) {
        for (k = 0; k < tr->ops[i].n; k++) {
            const struct event *e = &tr->ops[i].ev[k];
            if (e->ith < 256 && !tid_named[e->ith]) {
                tid_named[e->ith] = true;
                ct__obs_buf_printf(&b,
                                   ",\n{\"name\": \"thread_name\", \"ph\": "
                                   "\"M\", \"pid\": %ld, \"tid\": %u, "
                                   "\"args\": {\"name\": \"worker %u\"}}",
                                   pid, (unsigned)e->ith, (unsigned)e->ith);
            }
            put_event(tr, &b, pid, i, e);
            if (b.len > 65536 && (err = ct__obs_buf_drain(&b, f)) != 0)
                break;
        }
    }
    ct__obs_buf_printf(&b, "\n]}\n");
    if (err == 0)
        err = ct__obs_buf_drain(&b, f);
    ct__obs_buf_free(&b);
    return ct__obs_file_close(path, f, err, st);
}

static void trace_describe(const ct_observer_t *obs, struct ct__obs_buf *b)
{
    const struct trace *tr = obs->ctx;
    uint64_t events, dropped;

    counts(tr, &events, &dropped);
    ct__obs_buf_printf(b,
                       "trace: net %s: %llu events (%llu dropped, cap %llu) "
                       "-> %s\n",
                       tr->net_name, (unsigned long long)events,
                       (unsigned long long)dropped,
                       (unsigned long long)tr->max_events, obs->file);
}

static const char *const trace_options[] = {"max_events", NULL};

static int trace_new(const struct ct__obs_spec *sp, void **out, ct_status_t *st)
{
    struct trace *tr;
    long long max_events;
    int rc;

    *out = NULL;
    rc = ct__obs_spec_int(sp, "max_events", 1000000, 1, (long long)1 << 40,
                          &max_events, st);
    if (rc != CT_OK)
        return rc;
    tr = ct__calloc(1, sizeof(*tr));
    if (tr == NULL)
        return ct_status_setf(st, CT_ENOMEM, "observer trace: out of memory");
    tr->max_events = (uint64_t)max_events;
    *out = tr;
    return CT_OK;
}

static const struct ct_observer_cbs trace_cbs = {
    .name = "trace",
    .attach_cb = trace_attach,
    .net_start_cb = trace_net_start,
    .op_start_cb = trace_op_start,
    .op_end_cb = trace_op_end,
    .net_end_cb = trace_net_end,
    .flush_cb = trace_flush,
    .free_cb = trace_free,
};

const struct ct__obs_kind ct__obs_kind_trace = {
    "trace", trace_options, 2, &trace_cbs, trace_new, trace_describe,
};

int ct_trace_observer_get(const ct_observer_t *obs, uint64_t *events,
                          uint64_t *dropped, ct_status_t *st)
{
    const struct trace *tr =
        ct__obs_kind_ctx(obs, &ct__obs_kind_trace, "ct_trace_observer_get", st);

    CT_ASSERT(events != NULL && dropped != NULL,
              "ct_trace_observer_get: NULL argument");
    *events = *dropped = 0;
    if (tr == NULL)
        return CT_EINVAL;
    counts(tr, events, dropped);
    return CT_OK;
}
