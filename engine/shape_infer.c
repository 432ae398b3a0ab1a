/* cortado: static shape inference and parameter shapes (see
 * engine/shape_infer.h for the rules and the free widths).
 *
 * Design note. The ops are created once, in a scratch workspace on the
 * caller's engine (so their init_cb parses the arguments exactly as at
 * compile time, and argument errors read the same), and kept for every
 * walk. A walk visits the ops in order with one current shape per blob:
 * a blob is "had" once it is given, written by an earlier op, or shaped
 * as a parameter by an earlier consumer; an input that is not had is
 * missing, and the op's parameter rule shapes it.
 * Free widths live in a union-find over op indices (an op has at most
 * one). A probe walk gives each unresolved width its sentinel; the final
 * walk, run once no probe walk needs a restart, gives it its value. The
 * results (shapes, parameters, flops) are those of the last walk.
 */
#include <stdio.h>
#include <string.h>

#include "cortado/blob.h"
#include "engine/alloc.h"
#include "engine/op_internal.h"
#include "engine/shape_infer.h"
#include "engine/strmap.h"

#define DEFAULT_WIDTH 64
/* Sentinels lie in [SENT_LO, 2 * SENT_LO): any sum of two is larger than
 * every sentinel, a product of two fits in int64 easily, and a filter's
 * C * kernel size (checked against the BLAS int range by Conv's infer_cb)
 * stays below 2^31 for kernels up to 16 x 16. Real dims above SENT_LO are
 * never taken for a width. */
#define SENT_LO ((int64_t)1 << 22)

enum walk_rc { WALK_DONE = 0, WALK_RESTART = 1 };

struct width {
    int parent;    /* union-find over op indices; self for a root */
    bool used;     /* the op has a free width */
    bool resolved; /* root only: value is fixed */
    int64_t mult;  /* root only: value must be a multiple of this */
    int64_t value; /* root only, when resolved */
    int64_t sent;  /* root only: the sentinel of a probe walk */
};

struct si {
    const struct ct__shape_infer_cfg *cfg;
    const Caffe2__NetDef *def;
    struct ct__strmap names; /* name -> blob index + 1 */
    size_t n_blobs;
    struct ct__shape_blob *blobs;
    ct_shape_t *given;     /* ndim < 0: not given */
    int *in_idx, *out_idx; /* per op: blob indices, CSR by in_off/out_off */
    size_t *in_off, *out_off;
    ct__param_rule_fn *rules;
    ct_op_t **ops;
    int n_ops_created;
    ct_workspace_t *scratch;
    struct width *w;
    /* per walk */
    ct_shape_t *cur;
    bool *had;
    int *writer;
    /* per op scratch (max inputs / outputs of any op) */
    ct_shape_t *sh, *osh;
    bool *missing;
    enum ct__param_kind *kind;
    size_t max_in, max_out;
    size_t n_walks;
};

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void unknown_shape(ct_shape_t *s)
{
    memset(s, 0, sizeof(*s));
    s->ndim = -1;
}

/* ---- setup ---- */

static int intern(struct si *s, const char *name, int *idx, ct_status_t *st)
{
    void *v;

    if (ct__strmap_find(&s->names, name, &v)) {
        *idx = (int)((uintptr_t)v - 1);
        return CT_OK;
    }
    if (ct__strmap_insert(&s->names, name,
                          (void *)(uintptr_t)(s->n_blobs + 1)) != CT_OK)
        return ct_status_setf(st, CT_ENOMEM, "out of memory indexing blobs");
    s->blobs[s->n_blobs].name = name;
    *idx = (int)s->n_blobs++;
    return CT_OK;
}

static int setup_arrays(struct si *s, ct_status_t *st)
{
    const Caffe2__NetDef *def = s->def;
    size_t total = def->n_external_input + def->n_external_output, n_in = 0,
           n_out = 0, i;

    for (i = 0; i < def->n_op; i++) {
        n_in += def->op[i]->n_input;
        n_out += def->op[i]->n_output;
        if (def->op[i]->n_input > s->max_in)
            s->max_in = def->op[i]->n_input;
        if (def->op[i]->n_output > s->max_out)
            s->max_out = def->op[i]->n_output;
    }
    total += n_in + n_out;
    s->blobs = ct__calloc(total + 1, sizeof(*s->blobs));
    s->given = ct__calloc(total + 1, sizeof(*s->given));
    s->cur = ct__calloc(total + 1, sizeof(*s->cur));
    s->had = ct__calloc(total + 1, sizeof(*s->had));
    s->writer = ct__calloc(total + 1, sizeof(*s->writer));
    s->in_idx = ct__calloc(n_in + 1, sizeof(int));
    s->out_idx = ct__calloc(n_out + 1, sizeof(int));
    s->in_off = ct__calloc(def->n_op + 1, sizeof(size_t));
    s->out_off = ct__calloc(def->n_op + 1, sizeof(size_t));
    s->rules = ct__calloc(def->n_op + 1, sizeof(*s->rules));
    s->ops = ct__calloc(def->n_op + 1, sizeof(*s->ops));
    s->w = ct__calloc(def->n_op + 1, sizeof(*s->w));
    s->sh = ct__calloc(s->max_in + 1, sizeof(*s->sh));
    s->osh = ct__calloc(s->max_out + 1, sizeof(*s->osh));
    s->missing = ct__calloc(s->max_in + 1, sizeof(*s->missing));
    s->kind = ct__calloc(s->max_in + 1, sizeof(*s->kind));
    if (s->blobs == NULL || s->given == NULL || s->cur == NULL ||
        s->had == NULL || s->writer == NULL || s->in_idx == NULL ||
        s->out_idx == NULL || s->in_off == NULL || s->out_off == NULL ||
        s->rules == NULL || s->ops == NULL || s->w == NULL || s->sh == NULL ||
        s->osh == NULL || s->missing == NULL || s->kind == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory for shape inference of %zu ops",
                              def->n_op);
    return CT_OK;
}

static int setup_blobs(struct si *s, ct_status_t *st)
{
    const Caffe2__NetDef *def = s->def;
    size_t i, k, ni = 0, no = 0;
    int idx, rc;

    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        s->in_off[i] = ni;
        s->out_off[i] = no;
        for (k = 0; k < op->n_input; k++)
            if ((rc = intern(s, op->input[k], &s->in_idx[ni++], st)) != CT_OK)
                return rc;
        for (k = 0; k < op->n_output; k++)
            if ((rc = intern(s, op->output[k], &s->out_idx[no++], st)) != CT_OK)
                return rc;
        s->rules[i] =
            s->cfg->infer_params ? ct__param_rule_find(op->type) : NULL;
        s->w[i].parent = (int)i;
    }
    s->in_off[def->n_op] = ni;
    s->out_off[def->n_op] = no;
    for (k = 0; k < def->n_external_input; k++)
        if ((rc = intern(s, def->external_input[k], &idx, st)) != CT_OK)
            return rc;
    for (k = 0; k < def->n_external_output; k++)
        if ((rc = intern(s, def->external_output[k], &idx, st)) != CT_OK)
            return rc;
    return CT_OK;
}

/* Shapes given by the workspace and the hints. */
static int setup_given(struct si *s, ct_status_t *st)
{
    size_t b, h;
    void *v;

    for (b = 0; b < s->n_blobs; b++) {
        const ct_blob_t *blob =
            s->cfg->ws != NULL
                ? ct_workspace_get_blob(s->cfg->ws, s->blobs[b].name)
                : NULL;
        const ct_tensor_t *t = blob != NULL ? ct_blob_get_tensor(blob) : NULL;
        unknown_shape(&s->given[b]);
        s->blobs[b].consumer = -1;
        if (t != NULL) {
            s->given[b].dtype = ct_tensor_dtype(t);
            s->given[b].ndim = ct_tensor_ndim(t);
            memcpy(s->given[b].dims, ct_tensor_dims(t),
                   (size_t)ct_tensor_ndim(t) * sizeof(int64_t));
            s->blobs[b].known = true;
        }
    }
    for (h = 0; h < s->cfg->n_hints; h++) {
        const struct ct__shape_hint *hint = &s->cfg->hints[h];
        if (!ct__strmap_find(&s->names, hint->name, &v))
            return ct_status_setf(st, CT_ENOTFOUND,
                                  "a shape is given for \"%s\", which net "
                                  "\"%s\" never uses",
                                  hint->name, str_or_empty(s->def->name));
        b = (size_t)((uintptr_t)v - 1);
        /* A hint replaces a tensor the workspace holds (the caller feeds
         * a new one). */
        s->given[b] = hint->shape;
        s->blobs[b].known = true;
        s->blobs[b].hinted = true;
    }
    return CT_OK;
}

static int setup_ops(struct si *s, ct_status_t *st)
{
    const Caffe2__NetDef *def = s->def;
    size_t i, k;
    int rc;

    rc = ct_workspace_new(s->cfg->eng, NULL, &s->scratch, st);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *d = def->op[i];
        for (k = 0; k < d->n_input; k++) {
            ct_blob_t *b;
            if (ct_workspace_has_blob(s->scratch, d->input[k]))
                continue;
            if ((rc = ct_workspace_create_blob(s->scratch, d->input[k], &b,
                                               st)) != CT_OK)
                return rc;
        }
        rc = ct__op_create_ex(s->scratch, d, def->device_option, (int)i,
                              &s->ops[i], st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "op %zu \"%s\" (%s): ", i,
                             str_or_empty(d->name), str_or_empty(d->type));
            if (st != NULL)
                st->node = (int)i;
            return rc;
        }
        s->n_ops_created++;
    }
    return CT_OK;
}

/* ---- free widths ---- */

static int find(struct si *s, int i)
{
    while (s->w[i].parent != i) {
        s->w[i].parent = s->w[s->w[i].parent].parent;
        i = s->w[i].parent;
    }
    return i;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* The root whose sentinel is v, or -1. */
static int sentinel_root(const struct si *s, int64_t v)
{
    size_t i;

    if (v < SENT_LO || v >= 2 * SENT_LO)
        return -1;
    for (i = 0; i < s->def->n_op; i++)
        if (s->w[i].used && s->w[i].parent == (int)i && !s->w[i].resolved &&
            s->w[i].sent == v)
            return (int)i;
    return -1;
}

/* Gives root r a sentinel: a multiple of its mult near SENT_LO + r * step
 * that no other root holds. */
static void assign_sentinel(struct si *s, int r)
{
    const int64_t step = SENT_LO / (int64_t)(s->def->n_op + 1) / 2;
    int64_t v = round_up(SENT_LO + (int64_t)r * step, s->w[r].mult);

    s->w[r].sent = 0;
    while (sentinel_root(s, v) >= 0)
        v += s->w[r].mult;
    s->w[r].sent = v;
}

/* The width op i uses in this walk. */
static int64_t width_value(struct si *s, int i, bool probe)
{
    const int r = find(s, i);
    const struct width *w = &s->w[r];

    if (w->resolved)
        return w->value;
    if (probe)
        return w->sent;
    return round_up(s->cfg->default_width > 0 ? s->cfg->default_width
                                              : DEFAULT_WIDTH,
                    w->mult);
}

/* Records that a and b must be equal. Returns true when it fixed or
 * merged a width (the walk must restart). */
static bool unify(struct si *s, int64_t a, int64_t b)
{
    int ra = sentinel_root(s, a), rb = sentinel_root(s, b);

    if (a == b || (ra < 0 && rb < 0))
        return false;
    if (ra >= 0 && rb >= 0) {
        struct width *wa = &s->w[ra], *wb = &s->w[rb];
        wb->parent = ra;
        wa->mult = wa->mult / gcd64(wa->mult, wb->mult) * wb->mult;
        assign_sentinel(s, ra);
        return true;
    }
    if (ra < 0) {
        ra = rb;
        b = a;
    }
    /* b is a plain dim (sums of sentinels are not). */
    if (b <= 0 || b >= SENT_LO || b % s->w[ra].mult != 0)
        return false;
    s->w[ra].resolved = true;
    s->w[ra].value = b;
    return true;
}

/* Op types whose inputs must have equal shapes (or broadcast), so that a
 * rejected pair of dims at the same position must be one width. */
static bool elementwise_type(const char *type)
{
    static const char *const types[] = {"Sum", "Add", "Sub", "Mul",
                                        "Div", "Max", "Min", "Mean"};
    size_t k;

    for (k = 0; type != NULL && k < sizeof(types) / sizeof(types[0]); k++)
        if (strcmp(type, types[k]) == 0)
            return true;
    return false;
}

/* After an elementwise op rejected its inputs: unify every pair of
 * differing dims at the same position of same-rank inputs. */
static bool unify_inputs(struct si *s, size_t i, int n_in)
{
    bool changed = false;
    int p, q, d;

    if (!elementwise_type(s->def->op[i]->type))
        return false;
    for (p = 0; p < n_in; p++)
        for (q = p + 1; q < n_in; q++) {
            if (s->sh[p].ndim < 0 || s->sh[p].ndim != s->sh[q].ndim)
                continue;
            for (d = 0; d < s->sh[p].ndim; d++)
                changed |= unify(s, s->sh[p].dims[d], s->sh[q].dims[d]);
        }
    return changed;
}

/* ---- one walk ---- */

static void op_fail_prefix(const struct si *s, size_t i, ct_status_t *st)
{
    const Caffe2__OperatorDef *d = s->def->op[i];

    ct_status_prefix(st, "op %zu \"%s\" (%s): ", i, str_or_empty(d->name),
                     str_or_empty(d->type));
    if (st != NULL) {
        st->node = (int)i;
        snprintf(st->op, sizeof(st->op), "%s", str_or_empty(d->type));
    }
}

/* An input that no rule shapes: name the blob and what to do. */
static int no_shape(const struct si *s, size_t i, int k, ct_status_t *st)
{
    const char *name = s->def->op[i]->input[k];

    ct_status_setf(
        st, CT_ENOTFOUND,
        "input %d \"%s\" has no known shape: feed it or give its "
        "shape%s",
        k, name, s->cfg->infer_params ? "" : " (parameters are not inferred)");
    op_fail_prefix(s, i, st);
    return CT_ENOTFOUND;
}

/* Appends why an input shape is unknown (its producer cannot infer it). */
static void explain_unknown(const struct si *s, size_t i, ct_status_t *st)
{
    const size_t n = s->def->op[i]->n_input;
    size_t k;

    for (k = 0; k < n && st != NULL; k++) {
        const int b = s->in_idx[s->in_off[i] + k];
        const int wr = s->writer[b];
        size_t len = strlen(st->msg);
        if (s->sh[k].ndim >= 0 || wr < 0)
            continue;
        snprintf(st->msg + len, sizeof(st->msg) - len,
                 " (op %d %s writes \"%s\" and cannot infer its shape)", wr,
                 str_or_empty(s->def->op[wr]->type), s->blobs[b].name);
        return;
    }
}

/* Runs op i's parameter rule; returns CT_OK, WALK_RESTART (as a positive
 * value) or an error. */
static int apply_rule(struct si *s, size_t i, bool probe, ct_status_t *st)
{
    const ct_op_t *op = s->ops[i];
    struct ct__param_ctx c;
    ct_status_t lst;
    int k, e, rc, attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        memset(&c, 0, sizeof(c));
        c.op = op;
        c.in = s->sh;
        c.missing = s->missing;
        c.kind = s->kind;
        c.width = s->w[i].used ? width_value(s, (int)i, probe) : SENT_LO;
        for (k = 0; k < op->n_in; k++) {
            s->kind[k] = CT__PARAM_NONE;
            if (s->missing[k])
                unknown_shape(&s->sh[k]);
        }
        ct_status_clear(&lst);
        rc = s->rules[i](&c, &lst);
        for (k = 0; k < op->n_in; k++)
            if (s->missing[k] && s->kind[k] == CT__PARAM_NONE)
                return no_shape(s, i, k, st);
        if (rc != CT_OK) {
            ct_status_setf(st, rc, "%s", lst.msg);
            explain_unknown(s, i, st);
            op_fail_prefix(s, i, st);
            return rc;
        }
        if (c.width_mult <= 0 || s->w[i].used)
            break;
        /* First sight of this op's free width: register it, then shape
         * again with a width of the right multiple. */
        s->w[i].used = true;
        s->w[i].mult = c.width_mult;
        assign_sentinel(s, (int)i);
    }
    for (k = 0; k < op->n_in; k++)
        if (s->missing[k] && s->sh[k].ndim < 0) {
            ct_status_setf(st, CT_ESHAPE,
                           "cannot shape parameter %d \"%s\" from the other "
                           "inputs",
                           k, ct_op_input_name(op, k));
            op_fail_prefix(s, i, st);
            return CT_ESHAPE;
        }
    if (probe)
        for (e = 0; e < c.n_eq; e++)
            if (unify(s, c.eq[e][0], c.eq[e][1]))
                return WALK_RESTART;
    return CT_OK;
}

static double shape_numel(const ct_shape_t *sh)
{
    double n = 1;
    int d;

    if (sh->ndim < 0)
        return 0;
    for (d = 0; d < sh->ndim; d++)
        n *= (double)sh->dims[d];
    return n;
}

/* Records blob b as read by op i at input k (first consumer wins). */
static void note_read(struct si *s, int b, size_t i, int k, bool missing)
{
    struct ct__shape_blob *bl = &s->blobs[b];

    if (bl->consumer >= 0)
        return;
    bl->consumer = (int)i;
    bl->kind = s->kind[k];
    if (missing) {
        bl->param = true;
        bl->shape = s->sh[k];
    }
}

static int walk(struct si *s, bool probe, double *flops, ct_status_t *st)
{
    const Caffe2__NetDef *def = s->def;
    ct_status_t lst;
    size_t i, b;
    int k, rc;

    *flops = 0;
    for (b = 0; b < s->n_blobs; b++) {
        s->cur[b] = s->given[b];
        s->had[b] = s->blobs[b].known;
        s->writer[b] = -1;
        s->blobs[b].consumer = -1;
        s->blobs[b].param = false;
        s->blobs[b].kind = CT__PARAM_NONE;
    }
    for (i = 0; i < def->n_op; i++) {
        const ct_op_t *op = s->ops[i];
        const int *in = s->in_idx + s->in_off[i];
        const int *out = s->out_idx + s->out_off[i];
        bool any_missing = false, any_hinted = false;

        for (k = 0; k < op->n_in; k++) {
            s->sh[k] = s->cur[in[k]];
            s->missing[k] = !s->had[in[k]];
            s->kind[k] = CT__PARAM_NONE;
            any_missing |= s->missing[k];
            any_hinted |= s->blobs[in[k]].hinted && s->writer[in[k]] < 0;
        }
        if (s->rules[i] != NULL && (any_missing || any_hinted)) {
            rc = apply_rule(s, i, probe, st);
            if (rc != CT_OK)
                return rc;
        } else if (any_missing) {
            for (k = 0; !s->missing[k]; k++)
                ;
            return no_shape(s, i, k, st);
        }
        for (k = 0; k < op->n_in; k++) {
            note_read(s, in[k], i, k, s->missing[k]);
            if (s->missing[k]) {
                s->cur[in[k]] = s->sh[k];
                s->had[in[k]] = true;
            }
        }
        for (k = 0; k < op->n_out; k++)
            unknown_shape(&s->osh[k]);
        if (op->schema->infer_cb != NULL) {
            ct_status_clear(&lst);
            rc = op->schema->infer_cb(op, s->sh, s->osh, &lst);
            if (rc != CT_OK) {
                if (probe && unify_inputs(s, i, op->n_in))
                    return WALK_RESTART;
                ct_status_setf(st, rc, "%s", lst.msg);
                op_fail_prefix(s, i, st);
                return rc;
            }
        }
        if (op->schema->cost_cb != NULL)
            *flops += op->schema->cost_cb(op, s->sh);
        else if (op->n_out > 0)
            *flops += shape_numel(&s->osh[0]);
        for (k = 0; k < op->n_out; k++) {
            s->cur[out[k]] = s->osh[k];
            s->had[out[k]] = true;
            s->writer[out[k]] = (int)i;
        }
    }
    return WALK_DONE;
}

/* ---- driver ---- */

static bool any_unresolved(const struct si *s)
{
    size_t i;

    for (i = 0; i < s->def->n_op; i++)
        if (s->w[i].used && s->w[i].parent == (int)i && !s->w[i].resolved)
            return true;
    return false;
}

static void collect(struct si *s, struct ct__shape_infer_result *res,
                    double flops)
{
    size_t b, i;

    res->flops = flops;
    for (b = 0; b < s->n_blobs; b++) {
        struct ct__shape_blob *bl = &s->blobs[b];
        if (bl->param) {
            int64_t n = 1;
            int d;
            for (d = 0; d < bl->shape.ndim; d++)
                n *= bl->shape.dims[d];
            res->n_params++;
            res->n_param_elements += n;
        } else {
            /* The given shape of a hinted blob, else the last writer's,
             * else the given one. */
            bl->shape = bl->hinted ? s->given[b] : s->cur[b];
        }
    }
    for (i = 0; i < s->def->n_op; i++) {
        const struct width *w = &s->w[find(s, (int)i)];
        if (!s->w[i].used)
            continue;
        res->n_widths++;
        res->n_widths_default += !w->resolved;
    }
    res->n_blobs = s->n_blobs;
    res->blobs = s->blobs;
    s->blobs = NULL;
    res->n_walks = s->n_walks;
}

static void si_destroy(struct si *s)
{
    int i;

    for (i = s->n_ops_created - 1; i >= 0; i--)
        ct__op_destroy(s->ops[i]);
    ct_workspace_free(s->scratch);
    ct__strmap_destroy(&s->names, NULL);
    ct__free(s->blobs);
    ct__free(s->given);
    ct__free(s->cur);
    ct__free(s->had);
    ct__free(s->writer);
    ct__free(s->in_idx);
    ct__free(s->out_idx);
    ct__free(s->in_off);
    ct__free(s->out_off);
    ct__free(s->rules);
    ct__free(s->ops);
    ct__free(s->w);
    ct__free(s->sh);
    ct__free(s->osh);
    ct__free(s->missing);
    ct__free(s->kind);
}

int ct__shape_infer(const struct ct__shape_infer_cfg *cfg,
                    struct ct__shape_infer_result *res, ct_status_t *st)
{
    struct si s;
    double flops = 0;
    size_t max_walks;
    int rc;

    CT_ASSERT(cfg != NULL && cfg->eng != NULL && cfg->def != NULL &&
                  res != NULL,
              "ct__shape_infer: NULL argument");
    memset(res, 0, sizeof(*res));
    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.def = cfg->def;
    ct__strmap_init(&s.names);
    if (s.def->n_op > (size_t)(SENT_LO / 256))
        return ct_status_setf(st, CT_EINVAL,
                              "net \"%s\": %zu ops are too many for shape "
                              "inference",
                              str_or_empty(s.def->name), s.def->n_op);
    if ((rc = setup_arrays(&s, st)) != CT_OK ||
        (rc = setup_blobs(&s, st)) != CT_OK ||
        (rc = setup_given(&s, st)) != CT_OK ||
        (rc = setup_ops(&s, st)) != CT_OK)
        goto done;
    /* Each restart resolves or merges a width, and widths are registered
     * once, so the walks are bounded. */
    max_walks = 2 * s.def->n_op + 4;
    for (;;) {
        if (++s.n_walks > max_walks) {
            rc = ct_status_setf(st, CT_EINTERNAL,
                                "net \"%s\": shape inference did not settle "
                                "after %zu walks",
                                str_or_empty(s.def->name), max_walks);
            goto done;
        }
        rc = walk(&s, true, &flops, st);
        if (rc == WALK_RESTART)
            continue;
        break;
    }
    /* The final walk also runs after a failed probe walk, so that the
     * error names real dims instead of sentinels (or, when only a
     * sentinel's size upset an op, the widths' values pass). */
    if (rc != CT_OK && !any_unresolved(&s))
        goto done;
    if (any_unresolved(&s)) {
        s.n_walks++;
        rc = walk(&s, false, &flops, st);
        if (rc == WALK_RESTART) /* cannot happen: no unification */
            rc = ct_status_setf(st, CT_EINTERNAL,
                                "shape inference restarted its final walk");
        if (rc != CT_OK)
            goto done;
    }
    collect(&s, res, flops);
done:
    si_destroy(&s);
    return rc;
}

void ct__shape_infer_result_destroy(struct ct__shape_infer_result *res)
{
    if (res == NULL)
        return;
    ct__free(res->blobs);
    memset(res, 0, sizeof(*res));
}
