/* cortado: the histogram observer, Caffe2's HistogramObserver /
 * HistogramNetObserver with dnnlowp's DynamicHistogram (spec §2.5).
 *
 * Spec: histogram=FILE[,nbins=2048][,dump_freq=N][,delimiter=D]
 *       [,op_filter=TYPE].
 * Per (op, output): an interval and a lifetime DynamicHistogram of nbins
 * bins. At op end every float / int32 / int64 output with elements is
 * added whole to both (integers as floats, NaN elements ignored). With
 * dump_freq N every N-th successful run writes the interval histograms to
 * FILE with the `_<k>` suffix and resets them; a flush (ct_net_free,
 * ct_observer_flush) writes the interval histograms to FILE, as Caffe2's
 * destructor does, and resets them too. Lines are
 * `op_idx<d>op_type<d>output_idx<d>blob_name<d>min<d>max<d>nbins<d>c0...`
 * (7 + nbins words). op_filter keeps only ops of that type.
 * DynamicHistogram: min/max of everything added; counts live in a
 * histogram of 4 * nbins bins over a range that starts at the first
 * data's [min, max] and grows by whole multiples of its width when data
 * falls outside (the old counts are remapped, each old bin split between
 * at most two new bins in proportion, rounded with rint); finalizing
 * remaps into nbins bins over exactly [min, max]. All arithmetic is in
 * float, as in dnnlowp, so the counts match Caffe2's.
 * Differences from Caffe2: Finalize is not cached (Caffe2 returned a stale
 * result once data was added after a first dump); op_idx is the op's
 * position in the net even with op_filter (Caffe2 numbered the filtered
 * ops); a quotient outside the int range (inf data) clamps to the last
 * bin instead of undefined behaviour; no `.<address>` suffix (mul_nets):
 * files are per net already.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "observers/observer_impl.h"

#define OVER_BINNING 4

/* Fixed bins over [min, max]; bin width (max - min) / n. */
struct hist {
    float min, max;
    int n;
    uint64_t *bins; /* NULL until the first data */
};

struct dynhist {
    float min, max; /* of the data; FLT_MAX / -FLT_MAX when empty */
    struct hist h;  /* n = nbins * OVER_BINNING */
};

struct hist_out {
    int op_idx, output_idx;
    const char *type, *blob; /* owned copies */
    struct dynhist interval, total;
};

struct histobs {
    struct ct__obs_base base;
    int nbins, dump_freq;
    char delim[16];
    char *op_filter; /* NULL: every op */
    uint64_t n_runs;
    int n_ops;
    int *off; /* op i's outputs: outs[off[i], off[i + 1]) */
    int n_outs;
    struct hist_out *outs;
    uint64_t *final; /* nbins scratch counts for dumps */
};

/* ---- DynamicHistogram ---- */

/* Bin of f for a bin width computed as dnnlowp does, (max - min) / n:
 * the quotient is a float division too, so bins match bit for bit. */
static int bin_of(const struct hist *h, float width, float f)
{
    float q;

    if (width == 0)
        return 0;
    q = (f - h->min) / width;
    if (!(q >= 0)) /* negative or NaN */
        return 0;
    return q >= (float)(h->n - 1) ? h->n - 1 : (int)q;
}

static float width_of(const struct hist *h)
{
    return (h->max - h->min) / (float)h->n;
}

static void hist_add(struct hist *h, float f, uint64_t cnt)
{
    h->bins[bin_of(h, width_of(h), f)] += cnt;
}

static void hist_add_many(struct hist *h, const float *f, int64_t len)
{
    float width = width_of(h);
    uint64_t nan = 0;
    int64_t i;

    if (!(width > 0)) {
        for (i = 0; i < len; i++)
            nan += f[i] != f[i];
        h->bins[0] += (uint64_t)len - nan;
        return;
    }
    for (i = 0; i < len; i++)
        if (f[i] == f[i]) /* NaN was left out of min/max: leave it out */
            h->bins[bin_of(h, width, f[i])]++;
}

/* dnnlowp's RemapHistograms: each source bin's count goes to the
 * destination bin holding its start, the part beyond that bin's end to
 * the next one. */
static void hist_remap(const struct hist *src, struct hist *dst)
{
    float sw = (src->max - src->min) / (float)src->n;
    float dw = (dst->max - dst->min) / (float)dst->n;
    int i;

    for (i = 0; i < src->n; i++) {
        uint64_t c = src->bins[i], first;
        float sb, db_begin, db_end, q;
        int db;
        if (c == 0)
            continue;
        sb = src->min + sw * (float)i;
        q = dw == 0 ? 0 : (sb - dst->min) / dw;
        db = q >= 0 && q < (float)dst->n ? (int)q : (q < 0 ? 0 : dst->n - 1);
        db_begin = dst->min + dw * (float)db;
        db_end = db_begin + dw;
        if (sw == 0 || dw == 0) {
            first = c;
        } else {
            float r = rintf((db_end - sb) / sw * (float)c);
            first = r <= 0 ? 0 : (r >= (float)c ? c : (uint64_t)r);
        }
        hist_add(dst, db_begin + dw / 2, first);
        if (first < c)
            hist_add(dst, db_end + dw / 2, c - first);
    }
}

static void dynhist_reset(struct dynhist *d)
{
    ct__free(d->h.bins);
    memset(d, 0, sizeof(*d));
    d->min = FLT_MAX;
    d->max = -FLT_MAX;
}

static int dynhist_add(struct dynhist *d, int nbins, const float *f,
                       int64_t len)
{
    float mn = d->min, mx = d->max, new_min, new_max, spread;
    struct hist nh;
    int64_t i;

    /* std::min(f, m) and std::max(f, m) as dnnlowp calls them (ties keep
     * f), skipping NaN. */
    for (i = 0; i < len; i++) {
        if (f[i] != f[i])
            continue;
        mn = mn < f[i] ? mn : f[i];
        mx = f[i] < mx ? mx : f[i];
    }
    d->min = mn < -FLT_MAX ? -FLT_MAX : mn;
    d->max = mx > FLT_MAX ? FLT_MAX : mx;
    if (d->h.bins == NULL) {
        d->h.n = nbins * OVER_BINNING;
        d->h.bins = ct__calloc((size_t)d->h.n, sizeof(uint64_t));
        if (d->h.bins == NULL)
            return CT_ENOMEM;
        d->h.min = d->min;
        d->h.max = d->max;
        hist_add_many(&d->h, f, len);
        return CT_OK;
    }
    if (d->min < d->h.min || d->max > d->h.max) {
        new_min = d->h.min;
        new_max = d->h.max;
        spread = d->h.max - d->h.min;
        if (d->min < d->h.min)
            new_min =
                spread == 0
                    ? d->min
                    : d->h.min - ceilf((d->h.min - d->min) / spread) * spread;
        if (d->max > d->h.max) {
            spread = d->h.max - new_min;
            new_max =
                spread == 0
                    ? d->max
                    : d->h.max + ceilf((d->max - d->h.max) / spread) * spread;
        }
        nh.min = new_min < -FLT_MAX ? -FLT_MAX : new_min;
        nh.max = new_max > FLT_MAX ? FLT_MAX : new_max;
        nh.n = d->h.n;
        nh.bins = ct__calloc((size_t)nh.n, sizeof(uint64_t));
        if (nh.bins == NULL)
            return CT_ENOMEM;
        hist_remap(&d->h, &nh);
        ct__free(d->h.bins);
        d->h = nh;
    }
    hist_add_many(&d->h, f, len);
    return CT_OK;
}

/* Finalize: nbins counts over [d->min, d->max] into out. */
static void dynhist_finalize(const struct dynhist *d, int nbins, uint64_t *out)
{
    struct hist fin = {d->min, d->max, nbins, out};

    memset(out, 0, (size_t)nbins * sizeof(*out));
    if (d->h.bins != NULL)
        hist_remap(&d->h, &fin);
}

/* ---- hooks ---- */

static void free_tables(struct histobs *h)
{
    int k;

    for (k = 0; k < h->n_outs; k++) {
        ct__free((char *)h->outs[k].type);
        ct__free((char *)h->outs[k].blob);
        dynhist_reset(&h->outs[k].interval);
        dynhist_reset(&h->outs[k].total);
    }
    ct__free(h->outs);
    ct__free(h->off);
    ct__free(h->final);
    h->outs = NULL;
    h->off = NULL;
    h->final = NULL;
    h->n_outs = 0;
}

static void histogram_free(void *ctx)
{
    struct histobs *h = ctx;

    if (h == NULL)
        return;
    free_tables(h);
    ct__free(h->op_filter);
    ct__free(h);
}

static bool wanted(const struct histobs *h, const struct ct_observer_op *op)
{
    return h->op_filter == NULL || strcmp(op->type, h->op_filter) == 0;
}

static int histogram_attach(void *ctx, const struct ct_observer_net *net,
                            ct_status_t *st)
{
    struct histobs *h = ctx;
    int i, j, n = 0;

    free_tables(h);
    for (i = 0; i < net->n_ops; i++)
        if (wanted(h, &net->ops[i]))
            n += net->ops[i].n_outputs;
    h->off = ct__calloc((size_t)net->n_ops + 1, sizeof(*h->off));
    h->outs = ct__calloc((size_t)n + 1, sizeof(*h->outs));
    h->final = ct__calloc((size_t)h->nbins, sizeof(*h->final));
    if (h->off == NULL || h->outs == NULL || h->final == NULL)
        goto oom;
    h->n_ops = net->n_ops;
    for (i = 0; i < net->n_ops; i++) {
        const struct ct_observer_op *op = &net->ops[i];
        h->off[i] = h->n_outs;
        if (!wanted(h, op))
            continue;
        for (j = 0; j < op->n_outputs; j++) {
            struct hist_out *o = &h->outs[h->n_outs++];
            o->op_idx = i;
            o->output_idx = j;
            dynhist_reset(&o->interval);
            dynhist_reset(&o->total);
            o->type = ct__strdup(op->type);
            o->blob = ct__strdup(op->output_names[j]);
            if (o->type == NULL || o->blob == NULL)
                goto oom;
        }
    }
    h->off[net->n_ops] = h->n_outs;
    return CT_OK;
oom:
    free_tables(h);
    return ct_status_setf(st, CT_ENOMEM, "out of memory for %d outputs", n);
}

/* The tensor's elements as floats: the data itself for float tensors,
 * else a converted copy in *tmp (ct__free it). NULL when not observed. */
static const float *as_floats(const ct_tensor_t *t, float **tmp, int *rc)
{
    int64_t n = ct_tensor_numel(t), i;
    const void *p = ct_tensor_cdata(t);
    ct_dtype_t dt = ct_tensor_dtype(t);

    *tmp = NULL;
    *rc = CT_OK;
    if (n <= 0 || p == NULL)
        return NULL;
    if (dt == CT_DTYPE_F32)
        return p;
    if (dt != CT_DTYPE_I32 && dt != CT_DTYPE_I64)
        return NULL;
    *tmp = ct__malloc((size_t)n * sizeof(float));
    if (*tmp == NULL) {
        *rc = CT_ENOMEM;
        return NULL;
    }
    for (i = 0; i < n; i++)
        (*tmp)[i] = dt == CT_DTYPE_I32 ? (float)((const int32_t *)p)[i]
                                       : (float)((const int64_t *)p)[i];
    return *tmp;
}

static int histogram_op_end(void *ctx, const struct ct_observer_event *ev,
                            ct_status_t *st)
{
    struct histobs *h = ctx;
    const struct ct_observer_op *op = ev->op;
    int k, rc = CT_OK;

    if (ev->rc != CT_OK)
        return CT_OK;
    for (k = h->off[op->idx]; k < h->off[op->idx + 1] && rc == CT_OK; k++) {
        struct hist_out *o = &h->outs[k];
        const ct_tensor_t *t = ct__obs_blob_tensor(op->outputs[o->output_idx]);
        float *tmp = NULL;
        const float *f = t != NULL ? as_floats(t, &tmp, &rc) : NULL;
        if (f != NULL) {
            int64_t n = ct_tensor_numel(t);
            rc = dynhist_add(&o->interval, h->nbins, f, n);
            if (rc == CT_OK)
                rc = dynhist_add(&o->total, h->nbins, f, n);
        }
        ct__free(tmp);
        if (rc != CT_OK)
            return ct_status_setf(st, rc,
                                  "out of memory for the histogram of "
                                  "output %d \"%s\"",
                                  o->output_idx, o->blob);
    }
    return CT_OK;
}

static int dump(struct histobs *h, const char *path, bool print_total,
                ct_status_t *st)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};
    const char *d = h->delim;
    int k, j, rc;

    for (k = 0; k < h->n_outs; k++) {
        struct hist_out *o = &h->outs[k];
        const struct dynhist *dh = print_total ? &o->total : &o->interval;
        dynhist_finalize(dh, h->nbins, h->final);
        ct__obs_buf_printf(&b, "%d%s%s%s%d%s%s%s%g%s%g%s%d", o->op_idx, d,
                           o->type, d, o->output_idx, d, o->blob, d,
                           (double)dh->min, d, (double)dh->max, d, h->nbins);
        for (j = 0; j < h->nbins; j++)
            ct__obs_buf_printf(&b, "%s%llu", d,
                               (unsigned long long)h->final[j]);
        ct__obs_buf_printf(&b, "\n");
    }
    rc = ct__obs_buf_write(&b, path, st);
    ct__obs_buf_free(&b);
    if (rc != CT_OK || print_total)
        return rc;
    for (k = 0; k < h->n_outs; k++)
        dynhist_reset(&h->outs[k].interval);
    return CT_OK;
}

static int histogram_net_end(void *ctx, const struct ct_observer_event *ev,
                             ct_status_t *st)
{
    struct histobs *h = ctx;
    char *path;
    int rc;

    if (ev->rc != CT_OK)
        return CT_OK;
    h->n_runs++;
    if (h->dump_freq == -1 || h->n_runs % (uint64_t)h->dump_freq != 0)
        return CT_OK;
    path = ct__obs_suffixed_path(
        h->base.obs->file, (long long)(h->n_runs / (uint64_t)h->dump_freq));
    if (path == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    rc = dump(h, path, false, st);
    ct__free(path);
    return rc;
}

static int histogram_flush(void *ctx, ct_status_t *st)
{
    struct histobs *h = ctx;

    return dump(h, h->base.obs->file, false, st);
}

static const char *const histogram_options[] = {"nbins", "dump_freq",
                                                "delimiter", "op_filter", NULL};

static int histogram_new(const struct ct__obs_spec *sp, void **out,
                         ct_status_t *st)
{
    struct histobs *h = ct__calloc(1, sizeof(*h));
    const char *filter = ct__obs_spec_get(sp, "op_filter");
    long long nbins;
    int rc;

    *out = NULL;
    if (h == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "observer histogram: out of memory");
    rc = ct__obs_spec_int(sp, "nbins", 2048, 1, 1 << 20, &nbins, st);
    if (rc == CT_OK)
        rc = ct__obs_spec_dump_freq(sp, &h->dump_freq, st);
    if (rc == CT_OK)
        rc = ct__obs_spec_delimiter(sp, h->delim, st);
    if (rc == CT_OK && filter != NULL &&
        (h->op_filter = ct__strdup(filter)) == NULL)
        rc = ct_status_setf(st, CT_ENOMEM, "observer histogram: out of memory");
    if (rc != CT_OK) {
        histogram_free(h);
        return rc;
    }
    h->nbins = (int)nbins;
    *out = h;
    return CT_OK;
}

static void histogram_describe(const ct_observer_t *obs, struct ct__obs_buf *b)
{
    const struct histobs *h = obs->ctx;

    ct__obs_buf_printf(b,
                       "histogram: %d outputs of %d ops, %d bins, %llu runs "
                       "-> %s\n",
                       h->n_outs, h->n_ops, h->nbins,
                       (unsigned long long)h->n_runs, obs->file);
}

static const struct ct_observer_cbs histogram_cbs = {
    .name = "histogram",
    .attach_cb = histogram_attach,
    .op_end_cb = histogram_op_end,
    .net_end_cb = histogram_net_end,
    .flush_cb = histogram_flush,
    .free_cb = histogram_free,
};

const struct ct__obs_kind ct__obs_kind_histogram = {
    "histogram",    histogram_options, 2,
    &histogram_cbs, histogram_new,     histogram_describe,
};

int ct_histogram_observer_dump(ct_observer_t *obs, const char *file,
                               bool print_total, ct_status_t *st)
{
    int rc;
    struct histobs *h = ct__obs_kind_ctx(obs, &ct__obs_kind_histogram,
                                         "ct_histogram_observer_dump", st);

    if (h == NULL)
        return CT_EINVAL;
    if (!obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer histogram was never attached to a "
                              "net");
    rc = dump(h, file != NULL ? file : obs->file, print_total, st);
    ct_status_prefix(st, "observer histogram: ");
    return rc;
}
