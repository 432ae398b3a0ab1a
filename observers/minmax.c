/* cortado: the min/max observer, Caffe2's OutputMinMaxObserver and
 * OutputMinMaxNetObserver (spec §2.4).
 *
 * Spec: minmax=FILE[,dump_freq=N][,delimiter=D].
 * Per (op, output) it keeps the interval min/max (since the last dump)
 * and the lifetime min/max, starting at (FLT_MAX, -FLT_MAX). Every output
 * that is a float, int32 or int64 tensor with elements, as the op left
 * it, widens both (integers as floats; other dtypes and empty tensors are
 * skipped, NaN elements ignored). With dump_freq N, every N-th successful
 * run writes the interval values to FILE with Caffe2's `_<k>` suffix (k =
 * runs / N) and resets them; flushing (ct_net_free, ct_observer_flush)
 * writes the lifetime totals to FILE itself. Lines are
 * `op_idx<d>op_type<d>output_idx<d>blob_name<d>min<d>max`, floats as %g.
 *
 * When the values are taken. An output blob that no later op of the net
 * writes still holds the op's result when the run ends, so it is scanned
 * at net end, with no per-op hook at all; only ops whose output blob is
 * written again later (in-place chains, reused names) are scanned at op
 * end, into a pending slot. If no op needs that, the observer drops its
 * op end callback at attach, and an inference net like the MLP pays
 * nothing per op. Either way the run's values are folded in at net end,
 * and only when the run succeeded: a failed run records nothing.
 *
 * Differences from Caffe2: no process-wide global_<timestamp>.minmax
 * (each net has its own file, see creator.c); a failed run records
 * nothing (Caffe2's Stop also ran on exceptions and read whatever the
 * outputs held); a failed write is an error, and the interval values are
 * only reset once written.
 * Threading: op i's pending entries are written only by op i's end hook;
 * net end reads them after every op hook of the run (observer_impl.h).
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "observers/observer_impl.h"

struct minmax {
    struct ct__obs_base base;
    int dump_freq; /* -1 or >= 1 */
    char delim[16];
    uint64_t n_runs; /* successful runs, for dump_freq */
    int n_ops;
    int *off; /* op i's entries: info[off[i], off[i + 1]) */
    size_t n_info;
    struct ct_minmax_info *info;
    /* This run's values per entry, folded into info at net end, then
     * reset to (FLT_MAX, -FLT_MAX). */
    float *pmin, *pmax;
    unsigned char *at_op_end; /* op i: scanned at op end (see above) */
    char **strings;           /* owned copies of types and names */
    size_t n_strings;
};

static void free_tables(struct minmax *m)
{
    size_t k;

    for (k = 0; k < m->n_strings; k++)
        ct__free(m->strings[k]);
    ct__free(m->strings);
    ct__free(m->info);
    ct__free(m->off);
    ct__free(m->pmin);
    ct__free(m->pmax);
    ct__free(m->at_op_end);
    m->strings = NULL;
    m->info = NULL;
    m->off = NULL;
    m->pmin = m->pmax = NULL;
    m->at_op_end = NULL;
    m->n_strings = m->n_info = 0;
}

static void minmax_free(void *ctx)
{
    if (ctx == NULL)
        return;
    free_tables(ctx);
    ct__free(ctx);
}

static const char *keep(struct minmax *m, const char *s)
{
    char *c = ct__strdup(s);

    if (c != NULL)
        m->strings[m->n_strings++] = c;
    return c;
}

static int minmax_op_end(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st);

struct writer {
    const ct_blob_t *blob;
    int op;
};

static int cmp_writer(const void *a, const void *b)
{
    const struct writer *x = a, *y = b;

    if (x->blob != y->blob)
        return (uintptr_t)x->blob < (uintptr_t)y->blob ? -1 : 1;
    return (x->op > y->op) - (x->op < y->op);
}

/* Marks the ops that write a blob some later op writes again: their
 * values must be taken at op end. Sorts (blob, op) pairs, so O(n log n)
 * in the number of outputs. */
static int mark_overwritten(struct minmax *m, const struct ct_observer_net *net,
                            size_t n)
{
    struct writer *w = ct__calloc(n + 1, sizeof(*w));
    size_t k = 0, j;
    int i, o;

    if (w == NULL)
        return CT_ENOMEM;
    for (i = 0; i < net->n_ops; i++)
        for (o = 0; o < net->ops[i].n_outputs; o++, k++) {
            w[k].blob = net->ops[i].outputs[o];
            w[k].op = i;
        }
    qsort(w, n, sizeof(*w), cmp_writer);
    for (j = 0; j + 1 < n; j++)
        if (w[j].blob == w[j + 1].blob && w[j].op != w[j + 1].op)
            m->at_op_end[w[j].op] = 1;
    ct__free(w);
    return CT_OK;
}

static int minmax_attach(void *ctx, const struct ct_observer_net *net,
                         ct_status_t *st)
{
    struct minmax *m = ctx;
    size_t n = 0, k = 0;
    int i, j;

    free_tables(m);
    for (i = 0; i < net->n_ops; i++)
        n += (size_t)net->ops[i].n_outputs;
    m->n_ops = net->n_ops;
    m->off = ct__calloc((size_t)net->n_ops + 1, sizeof(*m->off));
    m->info = ct__calloc(n + 1, sizeof(*m->info));
    m->strings = ct__calloc(2 * n + 1, sizeof(*m->strings));
    m->pmin = ct__calloc(n + 1, sizeof(float));
    m->pmax = ct__calloc(n + 1, sizeof(float));
    m->at_op_end = ct__calloc((size_t)net->n_ops + 1, 1);
    if (m->off == NULL || m->info == NULL || m->strings == NULL ||
        m->pmin == NULL || m->pmax == NULL || m->at_op_end == NULL ||
        mark_overwritten(m, net, n) != CT_OK)
        goto oom;
    for (i = 0; i < net->n_ops; i++) {
        const struct ct_observer_op *op = &net->ops[i];
        const char *type = op->n_outputs > 0 ? keep(m, op->type) : "";
        m->off[i] = (int)k;
        if (type == NULL)
            goto oom;
        for (j = 0; j < op->n_outputs; j++, k++) {
            struct ct_minmax_info *in = &m->info[k];
            in->op_idx = i;
            in->op_type = type;
            in->output_idx = j;
            in->blob_name = keep(m, op->output_names[j]);
            if (in->blob_name == NULL)
                goto oom;
            in->min = in->total_min = m->pmin[k] = FLT_MAX;
            in->max = in->total_max = m->pmax[k] = -FLT_MAX;
        }
    }
    m->off[net->n_ops] = (int)k;
    m->n_info = n;
    /* No op needs its values taken at op end: no per-op hook at all. */
    m->base.obs->cbs.op_end_cb = NULL;
    for (i = 0; i < net->n_ops; i++)
        if (m->at_op_end[i])
            m->base.obs->cbs.op_end_cb = minmax_op_end;
    return CT_OK;

oom:
    free_tables(m);
    return ct_status_setf(st, CT_ENOMEM, "out of memory for %zu outputs", n);
}

/* The values op left in its outputs, into pending entries k, k+1, ...
 * (each stays (FLT_MAX, -FLT_MAX) for an output that is skipped). */
static void scan_outputs(struct minmax *m, const struct ct_observer_op *op)
{
    int j, k = m->off[op->idx];

    for (j = 0; j < op->n_outputs; j++, k++) {
        const ct_tensor_t *t = ct__obs_blob_tensor(op->outputs[j]);
        m->pmin[k] = FLT_MAX;
        m->pmax[k] = -FLT_MAX;
        if (t != NULL)
            ct__obs_tensor_minmax(t, &m->pmin[k], &m->pmax[k]);
    }
}

static int minmax_op_end(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st)
{
    struct minmax *m = ctx;

    (void)st;
    if (ev->rc == CT_OK && m->at_op_end[ev->op->idx])
        scan_outputs(m, ev->op);
    return CT_OK;
}

/* Net end of a successful run: scans the outputs nobody overwrote, then
 * folds every pending value into the interval and total values. */
static void fold_run(struct minmax *m, const struct ct_observer_net *net)
{
    size_t k;
    int i;

    for (i = 0; i < m->n_ops; i++)
        if (!m->at_op_end[i])
            scan_outputs(m, &net->ops[i]);
    for (k = 0; k < m->n_info; k++) {
        struct ct_minmax_info *in = &m->info[k];
        float mn = m->pmin[k], mx = m->pmax[k];
        in->min = mn < in->min ? mn : in->min;
        in->max = mx > in->max ? mx : in->max;
        in->total_min = mn < in->total_min ? mn : in->total_min;
        in->total_max = mx > in->total_max ? mx : in->total_max;
        m->pmin[k] = FLT_MAX;
        m->pmax[k] = -FLT_MAX;
    }
}

/* DumpAndReset_: writes every line, then resets the interval values. */
static int dump(struct minmax *m, const char *path, bool print_total,
                ct_status_t *st)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};
    const char *d = m->delim;
    size_t k;
    int rc;

    for (k = 0; k < m->n_info; k++) {
        const struct ct_minmax_info *in = &m->info[k];
        ct__obs_buf_printf(&b, "%d%s%s%s%d%s%s%s%g%s%g\n", in->op_idx, d,
                           in->op_type, d, in->output_idx, d, in->blob_name, d,
                           (double)(print_total ? in->total_min : in->min), d,
                           (double)(print_total ? in->total_max : in->max));
    }
    rc = ct__obs_buf_write(&b, path, st);
    ct__obs_buf_free(&b);
    if (rc != CT_OK)
        return rc;
    for (k = 0; k < m->n_info; k++) {
        m->info[k].min = FLT_MAX;
        m->info[k].max = -FLT_MAX;
    }
    return CT_OK;
}

static int minmax_net_end(void *ctx, const struct ct_observer_event *ev,
                          ct_status_t *st)
{
    struct minmax *m = ctx;
    char *path;
    size_t k;
    int rc;

    if (ev->rc != CT_OK) {
        /* Drop what the ops that ran stored. */
        for (k = 0; k < m->n_info; k++) {
            m->pmin[k] = FLT_MAX;
            m->pmax[k] = -FLT_MAX;
        }
        return CT_OK;
    }
    fold_run(m, ev->net);
    m->n_runs++;
    if (m->dump_freq == -1 || m->n_runs % (uint64_t)m->dump_freq != 0)
        return CT_OK;
    path = ct__obs_suffixed_path(
        m->base.obs->file, (long long)(m->n_runs / (uint64_t)m->dump_freq));
    if (path == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    rc = dump(m, path, false, st);
    ct__free(path);
    return rc;
}

static int minmax_flush(void *ctx, ct_status_t *st)
{
    struct minmax *m = ctx;

    return dump(m, m->base.obs->file, true, st);
}

static const char *const minmax_options[] = {"dump_freq", "delimiter", NULL};

static int minmax_new(const struct ct__obs_spec *sp, void **out,
                      ct_status_t *st)
{
    struct minmax *m = ct__calloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    if (m == NULL)
        return ct_status_setf(st, CT_ENOMEM, "observer minmax: out of memory");
    rc = ct__obs_spec_dump_freq(sp, &m->dump_freq, st);
    if (rc == CT_OK)
        rc = ct__obs_spec_delimiter(sp, m->delim, st);
    if (rc != CT_OK) {
        ct__free(m);
        return rc;
    }
    *out = m;
    return CT_OK;
}

static void minmax_describe(const ct_observer_t *obs, struct ct__obs_buf *b)
{
    const struct minmax *m = obs->ctx;

    ct__obs_buf_printf(b,
                       "minmax: %zu outputs of %d ops, %llu runs -> %s "
                       "(lifetime totals",
                       m->n_info, m->n_ops, (unsigned long long)m->n_runs,
                       obs->file != NULL ? obs->file : "(no file)");
    if (m->dump_freq > 0)
        ct__obs_buf_printf(b, "; every %d runs to _<k> files", m->dump_freq);
    ct__obs_buf_printf(b, ")\n");
}

static const struct ct_observer_cbs minmax_cbs = {
    .name = "minmax",
    .attach_cb = minmax_attach,
    .op_end_cb = minmax_op_end,
    .net_end_cb = minmax_net_end,
    .flush_cb = minmax_flush,
    .free_cb = minmax_free,
};

const struct ct__obs_kind ct__obs_kind_minmax = {
    "minmax", minmax_options, 2, &minmax_cbs, minmax_new, minmax_describe,
};

/* ---- public API ---- */

int ct_minmax_observer_get_info(const ct_observer_t *obs,
                                const struct ct_minmax_info **info, size_t *n,
                                ct_status_t *st)
{
    const struct minmax *m = ct__obs_kind_ctx(
        obs, &ct__obs_kind_minmax, "ct_minmax_observer_get_info", st);

    CT_ASSERT(info != NULL && n != NULL,
              "ct_minmax_observer_get_info: NULL argument");
    *info = NULL;
    *n = 0;
    if (m == NULL)
        return CT_EINVAL;
    if (!obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer minmax was never attached to a net");
    *info = m->info;
    *n = m->n_info;
    return CT_OK;
}

int ct_minmax_observer_dump_and_reset(ct_observer_t *obs, const char *file,
                                      bool print_total, ct_status_t *st)
{
    int rc;
    struct minmax *m = ct__obs_kind_ctx(
        obs, &ct__obs_kind_minmax, "ct_minmax_observer_dump_and_reset", st);

    if (m == NULL)
        return CT_EINVAL;
    if (!obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer minmax was never attached to a net");
    rc = dump(m, file != NULL ? file : obs->file, print_total, st);
    ct_status_prefix(st, "observer minmax: ");
    return rc;
}
