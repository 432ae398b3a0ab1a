/* Stat registry and timer operators (Caffe2's caffe2/operators/
 * stats_ops.cc). None has a gradient; none allows in-place use; all run
 * on any worker (the registry is sharded per thread, a timer is used by
 * one op at a time through its blob).
 *
 * StatRegistryCreate  0 inputs; output 0 `handle` gets a new empty
 *                     registry (a blob of type StatRegistry) on every run.
 * StatRegistryUpdate  inputs `keys` (STRING tensor), `values` (INT64, same
 *                     numel), optional `handle`; no outputs. ADDS each
 *                     value to its key's counter (creating it) in handle,
 *                     or in the engine's registry without one (Caffe2's
 *                     global StatRegistry). Keys with a NUL byte are
 *                     rejected before anything is added.
 * StatRegistryExport  optional input `handle`; outputs `keys` STRING [N],
 *                     `values` INT64 [N], `timestamps` INT64 [N] (Unix
 *                     epoch ns, one snapshot time). Argument `reset` (int,
 *                     default 1): the counters restart from 0. Rows are in
 *                     registration order. If an output cannot be
 *                     allocated the exported values are put back.
 * TimerBegin          0 inputs; output 0 `timer` holds a Timer object
 *                     (kept in the blob, reused while it holds one).
 *                     Argument `counter_name` (string, default the output's
 *                     name): the op registers "<counter_name>/time_ns/sum"
 *                     and "/count" in the engine's registry when it is
 *                     created. Fails with "Called TimerBegin on an already
 *                     running timer." when the blob's timer runs.
 * TimerEnd            input `timer`; stops it and records the elapsed ns
 *                     (count += 1, sum += ns) into the counters of the
 *                     TimerBegin that started it.
 * TimerGetAndEnd      input `timer`; output `nanos` INT64 shape [1]: the
 *                     elapsed ns, then ends the timer (the recorded
 *                     interval is re-read, so it is >= the output).
 * TimerGet            input `timer`; output `nanos` INT64 0-d: elapsed ns
 *                     of a running timer, which keeps running.
 */
#include <string.h>

#include "cortado/stats.h"
#include "engine/stats_impl.h"
#include "ops/op_impl.h"

/* ---- helpers ---- */

/* "holds Tensor" / "is empty", for type errors on input i. */
static int wrong_type(ct_op_ctx_t *ctx, int i, const char *want)
{
    const ct_blob_type_t *type = ct_blob_type(ctx->op->in[i]);

    if (type == NULL)
        return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" is empty, not a %s",
                          i, ct_op_input_name(ctx->op, i), want);
    return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" holds %s, not a %s", i,
                      ct_op_input_name(ctx->op, i), type->name, want);
}

/* Input i as a registry, or the engine's when the op has no input i. */
static int registry_input(ct_op_ctx_t *ctx, int i, ct_stat_registry_t **out)
{
    if (i >= ctx->op->n_in) {
        *out = ct_engine_stats(ctx->eng);
        return CT_OK;
    }
    *out = ct_blob_get(ctx->op->in[i], &ct_blob_type_stat_registry);
    return *out != NULL ? CT_OK : wrong_type(ctx, i, "StatRegistry");
}

static int timer_input(ct_op_ctx_t *ctx, ct_timer_t **out)
{
    *out = ct_blob_get(ctx->op->in[0], &ct_blob_type_timer);
    return *out != NULL ? CT_OK : wrong_type(ctx, 0, "Timer");
}

/* Caffe2's data<T>() check: input i must have dtype want. */
static int want_dtype(ct_op_ctx_t *ctx, int i, const ct_tensor_t *t,
                      ct_dtype_t want, const char *cxx)
{
    if (ct_tensor_dtype(t) == want)
        return CT_OK;
    return ct_op_fail(ctx, CT_ETYPE,
                      "input %d \"%s\": Tensor type mismatch, caller expects "
                      "elements to be %s, while tensor contains %s",
                      i, ct_op_input_name(ctx->op, i), cxx,
                      ct_dtype_name(ct_tensor_dtype(t)));
}

/* ---- StatRegistryCreate ---- */

static int create_run(ct_op_ctx_t *ctx)
{
    ct_stat_registry_t *reg;
    int rc = ct_stat_registry_new(&reg, ctx->status);

    if (rc != CT_OK)
        return rc;
    ct_blob_reset(ctx->op->out[0], &ct_blob_type_stat_registry, reg);
    return CT_OK;
}

const struct ct_op_schema ct__op_stat_registry_create = {
    .name = "StatRegistryCreate",
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .run_cb = create_run,
    .doc = "Creates a new empty stat registry in the output blob.",
};

/* ---- StatRegistryUpdate ---- */

static int update_run(ct_op_ctx_t *ctx)
{
    const ct_tensor_t *keys, *values;
    ct_stat_registry_t *reg;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &keys)) != CT_OK ||
        (rc = ct_op_input(ctx, 1, &values)) != CT_OK ||
        (rc = want_dtype(ctx, 0, keys, CT_DTYPE_STRING, "std::string")) !=
            CT_OK ||
        (rc = want_dtype(ctx, 1, values, CT_DTYPE_I64, "int64_t")) != CT_OK ||
        (rc = registry_input(ctx, 2, &reg)) != CT_OK)
        return rc;
    if (ct_tensor_numel(keys) != ct_tensor_numel(values))
        return ct_op_fail(ctx, CT_ESHAPE,
                          "keys.numel() == values.numel() (%lld vs. %lld): "
                          "keys \"%s\" and values \"%s\" must have as many "
                          "elements",
                          (long long)ct_tensor_numel(keys),
                          (long long)ct_tensor_numel(values),
                          ct_op_input_name(ctx->op, 0),
                          ct_op_input_name(ctx->op, 1));
    return ct_stat_registry_update(reg, ct_tensor_cdata(keys),
                                   ct_tensor_cdata(values),
                                   (size_t)ct_tensor_numel(keys), ctx->status);
}

const struct ct_op_schema ct__op_stat_registry_update = {
    .name = "StatRegistryUpdate",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 0,
    .max_outputs = 0,
    .run_cb = update_run,
    .doc = "Adds values to the counters named by keys (creating them).",
};

/* ---- StatRegistryExport ---- */

struct export_state {
    bool reset;
};

static const struct ct_arg_spec export_args[] = {
    {"reset", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

static int export_init(ct_op_t *op, ct_status_t *st)
{
    struct export_state *s = op->state;
    int64_t reset;
    int rc = ct__arg_int(op, "reset", 1, &reset, st);

    s->reset = reset != 0;
    return rc;
}

/* Fills the three outputs from l. */
static int export_fill(ct_op_ctx_t *ctx, const struct ct_stat_list *l)
{
    int64_t n = (int64_t)l->n, i, *v, *ts;
    ct_tensor_t *tk, *tv, *tt;
    int rc;

    if ((rc = ct_op_output(ctx, 0, CT_DTYPE_STRING, 1, &n, &tk)) != CT_OK ||
        (rc = ct_op_output(ctx, 1, CT_DTYPE_I64, 1, &n, &tv)) != CT_OK ||
        (rc = ct_op_output(ctx, 2, CT_DTYPE_I64, 1, &n, &tt)) != CT_OK)
        return rc;
    v = ct_tensor_data(tv);
    ts = ct_tensor_data(tt);
    for (i = 0; i < n; i++) {
        const struct ct_stat_value *e = &l->items[i];
        rc = ct_tensor_set_string(tk, i, e->key, strlen(e->key), ctx->status);
        if (rc != CT_OK) {
            ct_status_prefix(ctx->status, "output 0 \"%s\": ",
                             ct_op_output_name(ctx->op, 0));
            return rc;
        }
        v[i] = e->value;
        ts[i] = e->ts_ns;
    }
    return CT_OK;
}

static int export_run(ct_op_ctx_t *ctx)
{
    const struct export_state *s = ctx->op->state;
    struct ct_stat_list l;
    ct_stat_registry_t *reg;
    int rc;

    if ((rc = registry_input(ctx, 0, &reg)) != CT_OK ||
        (rc = ct_stat_registry_export(reg, s->reset, &l, ctx->status)) != CT_OK)
        return rc;
    rc = export_fill(ctx, &l);
    /* A reset export that cannot be delivered is put back. */
    if (rc != CT_OK && s->reset)
        ct__stat_registry_restore(reg, &l);
    ct_stat_list_destroy(&l);
    return rc;
}

const struct ct_op_schema ct__op_stat_registry_export = {
    .name = "StatRegistryExport",
    .min_inputs = 0,
    .max_inputs = 1,
    .min_outputs = 3,
    .max_outputs = 3,
    .args = export_args,
    .state_size = sizeof(struct export_state),
    .init_cb = export_init,
    .run_cb = export_run,
    .doc = "Exports (and by default resets) a registry as keys, values, "
           "timestamps.",
};

/* ---- TimerBegin ---- */

struct timer_begin_state {
    struct ct_stat_avg stat; /* <counter_name>/time_ns/{sum,count} */
};

static const struct ct_arg_spec timer_begin_args[] = {
    {"counter_name", CT_ARG_STRING, false},
    {NULL, CT_ARG_ANY, false},
};

static int timer_begin_init(ct_op_t *op, ct_status_t *st)
{
    struct timer_begin_state *s = op->state;
    const char *name, *nul;
    size_t len;
    char *copy;
    int rc;

    rc = ct__arg_string(op, "counter_name", ct_op_output_name(op, 0), &name,
                        &len, st);
    if (rc != CT_OK)
        return rc;
    nul = memchr(name, '\0', len);
    if (nul != NULL)
        return ct_status_setf(st, CT_EARG,
                              "Argument counter_name contains a NUL byte at "
                              "offset %zu",
                              (size_t)(nul - name));
    copy = ct__strndup(name, len);
    if (copy == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory for counter_name");
    rc = ct_stat_avg_init(&s->stat, ct_engine_stats(op->eng), copy, "time_ns",
                          st);
    ct__free(copy);
    return rc;
}

static int timer_begin_run(ct_op_ctx_t *ctx)
{
    const struct timer_begin_state *s = ctx->op->state;
    ct_blob_t *b = ctx->op->out[0];
    ct_timer_t *t = ct_blob_get(b, &ct_blob_type_timer);
    int rc;

    if (t == NULL) {
        if ((rc = ct_timer_new(&t, ctx->status)) != CT_OK)
            return rc;
        ct_blob_reset(b, &ct_blob_type_timer, t);
    }
    return ct_timer_begin(t, &s->stat, ctx->status);
}

const struct ct_op_schema ct__op_timer_begin = {
    .name = "TimerBegin",
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = timer_begin_args,
    .state_size = sizeof(struct timer_begin_state),
    .init_cb = timer_begin_init,
    .run_cb = timer_begin_run,
    .doc = "Starts a timer held by the output blob.",
};

/* ---- TimerEnd, TimerGetAndEnd, TimerGet ---- */

static int timer_end_run(ct_op_ctx_t *ctx)
{
    ct_timer_t *t;
    int rc = timer_input(ctx, &t);

    return rc != CT_OK ? rc : ct_timer_end(t, NULL, ctx->status);
}

/* Elapsed ns into output 0 with rank ndim (0 or 1). */
static int timer_get_common(ct_op_ctx_t *ctx, int ndim, bool end)
{
    const int64_t one = 1;
    ct_tensor_t *out;
    ct_timer_t *t;
    int64_t ns;
    int rc;

    if ((rc = timer_input(ctx, &t)) != CT_OK ||
        (rc = ct_timer_get_ns(t, &ns, ctx->status)) != CT_OK ||
        (rc = ct_op_output(ctx, 0, CT_DTYPE_I64, ndim, &one, &out)) != CT_OK)
        return rc;
    *(int64_t *)ct_tensor_data(out) = ns;
    /* Running was checked above: ending cannot fail. */
    return end ? ct_timer_end(t, NULL, ctx->status) : CT_OK;
}

static int timer_get_and_end_run(ct_op_ctx_t *ctx)
{
    return timer_get_common(ctx, 1, true);
}

static int timer_get_run(ct_op_ctx_t *ctx)
{
    return timer_get_common(ctx, 0, false);
}

static int timer_get_and_end_infer(const ct_op_t *op, const ct_shape_t *in,
                                   ct_shape_t *out, ct_status_t *st)
{
    out[0].dtype = CT_DTYPE_I64;
    out[0].ndim = 1;
    out[0].dims[0] = 1;
    return CT_OK;
}

static int timer_get_infer(const ct_op_t *op, const ct_shape_t *in,
                           ct_shape_t *out, ct_status_t *st)
{
    out[0].dtype = CT_DTYPE_I64;
    out[0].ndim = 0;
    return CT_OK;
}

const struct ct_op_schema ct__op_timer_end = {
    .name = "TimerEnd",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 0,
    .max_outputs = 0,
    .run_cb = timer_end_run,
    .doc = "Stops a timer and records the elapsed ns.",
};

const struct ct_op_schema ct__op_timer_get_and_end = {
    .name = "TimerGetAndEnd",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = timer_get_and_end_infer,
    .run_cb = timer_get_and_end_run,
    .doc = "Outputs a timer's elapsed ns (shape [1]) and stops it.",
};

const struct ct_op_schema ct__op_timer_get = {
    .name = "TimerGet",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer_cb = timer_get_infer,
    .run_cb = timer_get_run,
    .doc = "Outputs a running timer's elapsed ns (0-d).",
};
