/* cortado: the backward builder (Caffe2's AddGradientOperators).
 *
 * Design note. The builder works in three steps, all on private state, so
 * the NetDef is touched only by the final append (unchanged on failure):
 *
 * 1. Forward play (Caffe2's IR.Play). Every blob gets versions: version 0
 *    is the value before the net runs, and each op output makes a new one.
 *    For every op input the version it reads is recorded, and for every
 *    version its writer, its number of reads (one per (op, input slot))
 *    and its first reader.
 * 2. Seeds: each loss blob's last version receives a ConstantFill of 1.0
 *    shaped like the loss.
 * 3. Backward walk, from the last op to the first. An op whose outputs
 *    (at the versions it wrote) have no finished gradient is skipped.
 *    Otherwise its schema's maker runs (engine/gradient.h) and emits
 *    gradient ops. The gradient of an input version goes to "X_grad"
 *    when that version has one possible contributor (one read, no seed),
 *    else to a unique "X_grad_autosplit_<k>". When the walk reaches the
 *    first reader of a version, every contribution exists (readers come
 *    after the writer and are visited in reverse), so the version is
 *    finished there: no contribution leaves it without gradient; one
 *    autosplit contribution is renamed back to "X_grad" in the ops that
 *    produced it; several are added by a Sum into "X_grad", emitted right
 *    after the first reader's gradient ops, i.e. before the writer's
 *    gradient ops (the only ones that read it).
 *
 * Reusing the name "X_grad" for every version of X is safe: the gradient
 * of version v is read only by the gradient ops of v's writer, and the
 * contributions to version v-1 are all made at or after that point of the
 * walk. Autosplit names are unique per contribution, so renaming one back
 * can never touch another value.
 *
 * Makers name the forward values their gradient ops read through
 * ct__grad_fwd_in / _out; the builder checks that each is still the
 * blob's last version, because the gradient ops run after the whole
 * forward net. A value overwritten in place later (FC reading X followed
 * by an in-place Relu on X) is an error rather than a silently wrong
 * gradient (Caffe2 does not check).
 */
#include <stdio.h>
#include <string.h>

#include "cortado/gradient.h"
#include "cortado/proto.h"
#include "engine/alloc.h"
#include "engine/gradient.h"
#include "engine/strmap.h"
#include "ops/op_impl.h"

#define AUTOSPLIT "_autosplit_"

/* One contribution to a version's gradient: the blob it was written to
 * and the emitted ops [op_lo, op_hi) that produced it. */
struct contrib {
    char *name; /* owned */
    size_t op_lo, op_hi;
};

/* One version of a blob. */
struct ver {
    int writer;    /* op index; -1 for version 0 */
    int n_uses;    /* reads, one per (op, input slot) */
    int first_use; /* lowest reading op, -1 when never read */
    bool seeded;   /* a loss seed contributes */
    bool split;    /* several possible contributions: autosplit names */
    bool finished;
    int next_k; /* next autosplit index */
    struct contrib *c;
    size_t n_c, cap_c;
    char *grad; /* finished gradient blob (owned), NULL: none */
};

struct gblob {
    const char *name; /* the strmap's key */
    int n_ver;        /* 1 + number of writes */
    int cur;          /* current version during the forward play */
    struct ver *v;
};

struct ct__grad_builder {
    const Caffe2__NetDef *def;
    struct ct__strmap ids; /* name -> blob index + 1 */
    struct gblob *blobs;
    size_t n_blobs, cap_blobs;
    int *in_blob, *in_ver;   /* per op input slot, flattened */
    int *out_blob, *out_ver; /* per op output slot, flattened */
    size_t *in_off, *out_off;
    Caffe2__OperatorDef **ops; /* emitted, in order; owned */
    size_t n_ops, cap_ops;
    /* Suffix of gradient names: CT_GRAD_SUFFIX for a whole net, longer
     * for the subnet builds of If and While (see ct__grad_subnet). */
    char *suffix; /* owned */
    /* Subnet builds: blobs whose value before the subnet ran is saved as
     * name + saved_suffix (a forward Do's read-modify-write blobs). */
    const char *const *saved;
    size_t n_saved;
    const char *saved_suffix;
    /* Forward blobs that emitted ops may write (scope blobs, whose stack
     * a gradient Do pops). */
    char **state;
    size_t n_state, cap_state;
};

/* ---- small helpers ---- */

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* "a" "b" "c" in a new string, or NULL. */
static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = ct__malloc(la + lb + lc + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static char *autosplit_name(const struct ct__grad_builder *b, const char *blob,
                            int k)
{
    char num[sizeof(AUTOSPLIT) + 16];

    snprintf(num, sizeof(num), "%s%d", AUTOSPLIT, k);
    return cat3(blob, b->suffix, num);
}

/* Sets st->node / st->op and prefixes `op <i> "<name>" (<Type>): `. */
static int op_fail(const Caffe2__OperatorDef *op, int i, int rc,
                   ct_status_t *st)
{
    if (st == NULL)
        return rc;
    if (st->code == CT_OK)
        ct_status_setf(st, rc, "%s", ct_strerror(rc));
    ct_status_prefix(st, "op %d \"%s\" (%s): ", i, str_or_empty(op->name),
                     str_or_empty(op->type));
    st->node = i;
    snprintf(st->op, sizeof(st->op), "%s", str_or_empty(op->type));
    st->code = rc;
    return rc;
}

static int oom(ct_status_t *st)
{
    return ct_status_setf(st, CT_ENOMEM,
                          "out of memory while building gradient ops");
}

static int blob_id(const struct ct__grad_builder *b, const char *name)
{
    void *v;

    if (!ct__strmap_find(&b->ids, name, &v))
        return -1;
    return (int)((intptr_t)v - 1);
}

static int blob_add(struct ct__grad_builder *b, const char *name, int *id)
{
    struct gblob *gb;
    int rc;

    *id = blob_id(b, name);
    if (*id >= 0)
        return CT_OK;
    if (ct__grow((void **)&b->blobs, &b->cap_blobs, b->n_blobs + 1,
                 sizeof(*b->blobs)) != CT_OK)
        return CT_ENOMEM;
    rc = ct__strmap_insert(&b->ids, name, (void *)(intptr_t)(b->n_blobs + 1));
    if (rc != CT_OK)
        return rc;
    gb = &b->blobs[b->n_blobs];
    memset(gb, 0, sizeof(*gb));
    gb->name = ct__strmap_key(&b->ids, name);
    gb->n_ver = 1;
    *id = (int)b->n_blobs++;
    return CT_OK;
}

static struct ver *in_version(const struct ct__grad_builder *b, int op, int j)
{
    size_t s = b->in_off[op] + (size_t)j;
    return &b->blobs[b->in_blob[s]].v[b->in_ver[s]];
}

static struct ver *out_version(const struct ct__grad_builder *b, int op, int j)
{
    size_t s = b->out_off[op] + (size_t)j;
    return &b->blobs[b->out_blob[s]].v[b->out_ver[s]];
}

static void builder_free(struct ct__grad_builder *b)
{
    size_t i, k;
    int v;

    for (i = 0; i < b->n_blobs; i++) {
        struct gblob *gb = &b->blobs[i];
        for (v = 0; gb->v != NULL && v < gb->n_ver; v++) {
            for (k = 0; k < gb->v[v].n_c; k++)
                ct__free(gb->v[v].c[k].name);
            ct__free(gb->v[v].c);
            ct__free(gb->v[v].grad);
        }
        ct__free(gb->v);
    }
    ct__free(b->blobs);
    ct__strmap_destroy(&b->ids, NULL);
    ct__free(b->in_blob);
    ct__free(b->in_ver);
    ct__free(b->out_blob);
    ct__free(b->out_ver);
    ct__free(b->in_off);
    ct__free(b->out_off);
    for (i = 0; i < b->n_ops; i++)
        ct_proto_free(&b->ops[i]->base);
    ct__free(b->ops);
    for (i = 0; i < b->n_state; i++)
        ct__free(b->state[i]);
    ct__free(b->state);
    ct__free(b->suffix);
}

/* ---- emitting ops ---- */

/* A new OperatorDef type(in) -> out marked is_gradient_op, appended to
 * b->ops. On failure nothing is appended. */
static int new_op(struct ct__grad_builder *b, const char *type,
                  const char *const *in, int n_in, const char *const *out,
                  int n_out, Caffe2__OperatorDef **res)
{
    Caffe2__OperatorDef *op;

    if (ct__grow((void **)&b->ops, &b->cap_ops, b->n_ops + 1,
                 sizeof(*b->ops)) != CT_OK)
        return CT_ENOMEM;
    op = ct__calloc(1, sizeof(*op));
    if (op == NULL)
        return CT_ENOMEM;
    caffe2__operator_def__init(op);
    op->has_is_gradient_op = 1;
    op->is_gradient_op = 1;
    if ((op->type = ct__strdup(type)) == NULL ||
        ct__grad_copy_strv(&op->input, &op->n_input, in, n_in) != CT_OK ||
        ct__grad_copy_strv(&op->output, &op->n_output, out, n_out) != CT_OK) {
        ct_proto_free(&op->base);
        return CT_ENOMEM;
    }
    b->ops[b->n_ops++] = op;
    *res = op;
    return CT_OK;
}

/* Deep copy of any message through the library allocator. */
static int copy_msg(const ProtobufCMessage *src, void **dst)
{
    ProtobufCMessage *m;
    int rc = ct_proto_copy(src, &m, NULL);

    if (rc != CT_OK)
        return rc;
    *dst = m;
    return CT_OK;
}

/* Copies device_option, engine and (unless no_args) the arguments of fwd
 * into op. */
static int copy_context(Caffe2__OperatorDef *op, const Caffe2__OperatorDef *fwd,
                        bool no_args)
{
    size_t i;
    int rc;

    if (fwd->device_option != NULL) {
        rc = copy_msg(&fwd->device_option->base, (void **)&op->device_option);
        if (rc != CT_OK)
            return rc;
    }
    if (fwd->engine != NULL && fwd->engine[0] != '\0' &&
        (op->engine = ct__strdup(fwd->engine)) == NULL)
        return CT_ENOMEM;
    if (no_args || fwd->n_arg == 0)
        return CT_OK;
    op->arg = ct__calloc(fwd->n_arg, sizeof(*op->arg));
    if (op->arg == NULL)
        return CT_ENOMEM;
    op->n_arg = fwd->n_arg;
    for (i = 0; i < fwd->n_arg; i++) {
        rc = copy_msg(&fwd->arg[i]->base, (void **)&op->arg[i]);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

int ct__grad_emit(struct ct__grad_ctx *g, const char *type,
                  const char *const *in, int n_in, const char *const *out,
                  int n_out, unsigned flags, Caffe2__OperatorDef **op,
                  ct_status_t *st)
{
    Caffe2__OperatorDef *o;
    int i;

    for (i = 0; i < n_in; i++)
        CT_ASSERT(in[i] != NULL, "%s: gradient op input %d is NULL", type, i);
    for (i = 0; i < n_out; i++)
        CT_ASSERT(out[i] != NULL, "%s: gradient op output %d is NULL", type, i);
    if (new_op(g->b, type, in, n_in, out, n_out, &o) != CT_OK ||
        copy_context(o, g->def, (flags & CT__GRAD_NO_ARGS) != 0) != CT_OK)
        return oom(st); /* a half-made op is freed with the others */
    if (op != NULL)
        *op = o;
    return CT_OK;
}

/* ---- the maker API ---- */

const char *ct__grad_out(const struct ct__grad_ctx *g, int i)
{
    CT_ASSERT(i >= 0 && (size_t)i < g->def->n_output,
              "gradient of output %d of an op with %zu outputs", i,
              g->def->n_output);
    return g->grad_out[i];
}

int ct__grad_need_out(const struct ct__grad_ctx *g, int i, const char **name,
                      ct_status_t *st)
{
    *name = ct__grad_out(g, i);
    if (*name != NULL)
        return CT_OK;
    return ct_status_setf(st, CT_ENOTSUP,
                          "the gradient of %s needs a gradient for output %d "
                          "\"%s\", but none flows into it",
                          str_or_empty(g->def->type), i, g->def->output[i]);
}

const char *ct__grad_in(struct ct__grad_ctx *g, int i)
{
    CT_ASSERT(i >= 0 && (size_t)i < g->def->n_input,
              "gradient of input %d of an op with %zu inputs", i,
              g->def->n_input);
    g->in_used[i] = true;
    return g->grad_in[i];
}

const char *ct__grad_fwd_in(struct ct__grad_ctx *g, int i)
{
    CT_ASSERT(i >= 0 && (size_t)i < g->def->n_input,
              "forward input %d of an op with %zu inputs", i, g->def->n_input);
    g->need_in[i] = true;
    return g->def->input[i];
}

const char *ct__grad_fwd_out(struct ct__grad_ctx *g, int i)
{
    CT_ASSERT(i >= 0 && (size_t)i < g->def->n_output,
              "forward output %d of an op with %zu outputs", i,
              g->def->n_output);
    g->need_out[i] = true;
    return g->def->output[i];
}

int ct__grad_none(struct ct__grad_ctx *g, ct_status_t *st)
{
    (void)g;
    (void)st;
    return CT_OK;
}

/* ---- step 1: forward play ---- */

static int play_forward(struct ct__grad_builder *b)
{
    const Caffe2__NetDef *def = b->def;
    size_t i, j, n_in = 0, n_out = 0;
    int id, rc;

    for (i = 0; i < def->n_op; i++) {
        n_in += def->op[i]->n_input;
        n_out += def->op[i]->n_output;
    }
    b->in_off = ct__calloc(def->n_op + 1, sizeof(size_t));
    b->out_off = ct__calloc(def->n_op + 1, sizeof(size_t));
    b->in_blob = ct__calloc(n_in + 1, sizeof(int));
    b->in_ver = ct__calloc(n_in + 1, sizeof(int));
    b->out_blob = ct__calloc(n_out + 1, sizeof(int));
    b->out_ver = ct__calloc(n_out + 1, sizeof(int));
    if (b->in_off == NULL || b->out_off == NULL || b->in_blob == NULL ||
        b->in_ver == NULL || b->out_blob == NULL || b->out_ver == NULL)
        return CT_ENOMEM;
    /* Blob ids and the number of versions of each. */
    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        b->in_off[i + 1] = b->in_off[i] + op->n_input;
        b->out_off[i + 1] = b->out_off[i] + op->n_output;
        for (j = 0; j < op->n_input; j++) {
            if ((rc = blob_add(b, op->input[j], &id)) != CT_OK)
                return rc;
            b->in_blob[b->in_off[i] + j] = id;
        }
        for (j = 0; j < op->n_output; j++) {
            if ((rc = blob_add(b, op->output[j], &id)) != CT_OK)
                return rc;
            b->out_blob[b->out_off[i] + j] = id;
            if (b->blobs[id].n_ver == INT32_MAX)
                return CT_ENOMEM;
            b->blobs[id].n_ver++;
        }
    }
    for (i = 0; i < b->n_blobs; i++) {
        struct gblob *gb = &b->blobs[i];
        gb->v = ct__calloc((size_t)gb->n_ver, sizeof(*gb->v));
        if (gb->v == NULL)
            return CT_ENOMEM;
        for (id = 0; id < gb->n_ver; id++) {
            gb->v[id].writer = -1;
            gb->v[id].first_use = -1;
        }
    }
    /* The play: reads see the current version, writes make a new one. */
    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        for (j = 0; j < op->n_input; j++) {
            size_t s = b->in_off[i] + j;
            struct gblob *gb = &b->blobs[b->in_blob[s]];
            struct ver *v = &gb->v[gb->cur];
            b->in_ver[s] = gb->cur;
            v->n_uses++;
            if (v->first_use < 0)
                v->first_use = (int)i;
        }
        for (j = 0; j < op->n_output; j++) {
            size_t s = b->out_off[i] + j;
            struct gblob *gb = &b->blobs[b->out_blob[s]];
            gb->cur++;
            gb->v[gb->cur].writer = (int)i;
            b->out_ver[s] = gb->cur;
        }
    }
    for (i = 0; i < b->n_blobs; i++) {
        for (id = 0; id < b->blobs[i].n_ver; id++) {
            struct ver *v = &b->blobs[i].v[id];
            v->split = v->n_uses + (v->seeded ? 1 : 0) >= 2;
        }
    }
    return CT_OK;
}

/* ---- contributions and finishing ---- */

static int add_contrib(struct ver *v, char *name, size_t lo, size_t hi)
{
    if (ct__grow((void **)&v->c, &v->cap_c, v->n_c + 1, sizeof(*v->c)) != CT_OK)
        return CT_ENOMEM;
    v->c[v->n_c].name = name;
    v->c[v->n_c].op_lo = lo;
    v->c[v->n_c].op_hi = hi;
    v->n_c++;
    return CT_OK;
}

static int rename_in(char **names, size_t n, const char *from, const char *to)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(names[i], from) == 0) {
            char *s = ct__strdup(to);
            if (s == NULL)
                return CT_ENOMEM;
            ct__free(names[i]);
            names[i] = s;
        }
    }
    return CT_OK;
}

/* Makes v's gradient final (see the file note). fwd is the op whose
 * device_option a Sum gets (the version's first reader, or NULL). */
static int finish_version(struct ct__grad_builder *b, struct gblob *gb,
                          struct ver *v, const Caffe2__OperatorDef *fwd)
{
    Caffe2__OperatorDef *sum;
    const char **in;
    char *name;
    size_t i, k;
    int rc;

    v->finished = true;
    if (v->n_c == 0)
        return CT_OK;
    if (v->n_c == 1 && v->c[0].op_lo == v->c[0].op_hi) {
        /* A given gradient (subnet seed) that nothing else adds to: the
         * version's gradient is that blob itself. */
        if ((v->grad = ct__strdup(v->c[0].name)) == NULL)
            return CT_ENOMEM;
        return CT_OK;
    }
    name = cat3(gb->name, b->suffix, "");
    if (name == NULL)
        return CT_ENOMEM;
    if (v->n_c == 1) {
        struct contrib *c = &v->c[0];
        for (i = c->op_lo; i < c->op_hi && strcmp(c->name, name) != 0; i++) {
            Caffe2__OperatorDef *op = b->ops[i];
            if (rename_in(op->input, op->n_input, c->name, name) != CT_OK ||
                rename_in(op->output, op->n_output, c->name, name) != CT_OK) {
                ct__free(name);
                return CT_ENOMEM;
            }
        }
        v->grad = name;
        return CT_OK;
    }
    in = ct__calloc(v->n_c, sizeof(*in));
    if (in == NULL) {
        ct__free(name);
        return CT_ENOMEM;
    }
    for (k = 0; k < v->n_c; k++)
        in[k] = v->c[k].name;
    rc = new_op(b, "Sum", in, (int)v->n_c, (const char *const *)&name, 1, &sum);
    ct__free(in);
    if (rc == CT_OK && fwd != NULL && fwd->device_option != NULL)
        rc = copy_msg(&fwd->device_option->base, (void **)&sum->device_option);
    if (rc != CT_OK) {
        ct__free(name);
        return rc;
    }
    v->grad = name;
    return CT_OK;
}

/* ---- step 2: seeds ---- */

static int seed_losses(struct ct__grad_builder *b, const char *const *losses,
                       size_t n, ct_status_t *st)
{
    size_t i, k;
    int id;

    for (i = 0; i < n; i++) {
        if (losses[i] == NULL)
            return ct_status_setf(st, CT_EINVAL, "loss blob %zu is NULL", i);
        for (k = 0; k < i; k++)
            if (strcmp(losses[k], losses[i]) == 0)
                return ct_status_setf(st, CT_EINVAL,
                                      "loss blob \"%s\" is given twice",
                                      losses[i]);
        id = blob_id(b, losses[i]);
        if (id < 0 || b->blobs[id].n_ver == 1)
            return ct_status_setf(st, CT_ENOTFOUND,
                                  "loss blob \"%s\" is not written by any op "
                                  "of net \"%s\"",
                                  losses[i], str_or_empty(b->def->name));
        b->blobs[id].v[b->blobs[id].n_ver - 1].seeded = true;
    }
    for (i = 0; i < n; i++) {
        struct gblob *gb = &b->blobs[blob_id(b, losses[i])];
        struct ver *v = &gb->v[gb->n_ver - 1];
        Caffe2__OperatorDef *op;
        char *name;
        size_t lo = b->n_ops;

        v->split = v->n_uses + 1 >= 2;
        name = v->split ? autosplit_name(b, gb->name, v->next_k++)
                        : cat3(gb->name, b->suffix, "");
        if (name == NULL)
            return oom(st);
        if (new_op(b, "ConstantFill", &gb->name, 1, (const char *const *)&name,
                   1, &op) != CT_OK ||
            ct__grad_op_set_float(op, "value", 1.0f, NULL) != CT_OK ||
            add_contrib(v, name, lo, b->n_ops) != CT_OK) {
            ct__free(name);
            return oom(st);
        }
        if (v->n_uses == 0 && finish_version(b, gb, v, NULL) != CT_OK)
            return oom(st);
    }
    return CT_OK;
}

/* ---- step 3: one op of the backward walk ---- */

static int check_fresh(const struct ct__grad_builder *b, int blob, int ver,
                       ct_status_t *st)
{
    const struct gblob *gb = &b->blobs[blob];
    const Caffe2__OperatorDef *w;

    if (ver == gb->n_ver - 1)
        return CT_OK;
    w = b->def->op[gb->v[ver + 1].writer];
    return ct_status_setf(st, CT_ENOTSUP,
                          "its gradient reads \"%s\" as this op saw it, but "
                          "op %d \"%s\" (%s) overwrites that blob later, so "
                          "the value is gone when the gradient ops run",
                          gb->name, gb->v[ver + 1].writer,
                          str_or_empty(w->name), str_or_empty(w->type));
}

static bool is_saved(const struct ct__grad_builder *b, const char *name)
{
    size_t k;

    for (k = 0; k < b->n_saved; k++)
        if (strcmp(b->saved[k], name) == 0)
            return true;
    return false;
}

/* Makes the ops [first, n_ops) read the saved copy of `name` (its value
 * before the subnet ran) instead of the blob itself. */
static int read_saved(struct ct__grad_builder *b, size_t first,
                      const char *name, ct_status_t *st)
{
    char *to = cat3(name, b->saved_suffix, "");
    size_t k;
    int rc = CT_OK;

    if (to == NULL)
        return oom(st);
    for (k = first; rc == CT_OK && k < b->n_ops; k++)
        rc = rename_in(b->ops[k]->input, b->ops[k]->n_input, name, to);
    ct__free(to);
    return rc == CT_OK ? CT_OK : oom(st);
}

/* Checks that the forward values the maker of op i named are still
 * there when the gradient ops run. In a subnet build, a read of the
 * value a saved blob had before the subnet ran (version 0) is redirected
 * to the saved copy, unless the same ops also need a later version of
 * that blob under the same name. */
static int check_reads(struct ct__grad_builder *b, const struct ct__grad_ctx *g,
                       size_t first, ct_status_t *st)
{
    const Caffe2__OperatorDef *op = g->def;
    size_t j, k;
    int i = g->idx, rc;

    for (j = 0; j < op->n_input; j++) {
        size_t s = b->in_off[i] + j;
        const struct gblob *gb = &b->blobs[b->in_blob[s]];
        bool fresh_too = false;
        if (!g->need_in[j])
            continue;
        if (b->in_ver[s] != 0 || gb->n_ver == 1 || !is_saved(b, gb->name)) {
            if ((rc = check_fresh(b, b->in_blob[s], b->in_ver[s], st)) != CT_OK)
                return rc;
            continue;
        }
        for (k = 0; k < op->n_output; k++)
            if (g->need_out[k] &&
                b->out_blob[b->out_off[i] + k] == b->in_blob[s])
                fresh_too = true;
        if (fresh_too)
            return ct_status_setf(st, CT_ENOTSUP,
                                  "its gradient reads \"%s\" both before and "
                                  "after this op overwrote it",
                                  gb->name);
        if ((rc = read_saved(b, first, gb->name, st)) != CT_OK)
            return rc;
    }
    for (j = 0; j < op->n_output; j++) {
        size_t s = b->out_off[i] + j;
        if (g->need_out[j] &&
            (rc = check_fresh(b, b->out_blob[s], b->out_ver[s], st)) != CT_OK)
            return rc;
    }
    return CT_OK;
}

static bool is_state(const struct ct__grad_builder *b, const char *name)
{
    size_t k;

    for (k = 0; k < b->n_state; k++)
        if (strcmp(b->state[k], name) == 0)
            return true;
    return false;
}

/* No emitted op may write a blob of the forward net, except the scope
 * blobs makers declared with ct__grad_mark_state. */
static int check_outputs(const struct ct__grad_builder *b, ct_status_t *st)
{
    size_t j, k;

    for (k = 0; k < b->n_ops; k++) {
        const Caffe2__OperatorDef *e = b->ops[k];
        for (j = 0; j < e->n_output; j++) {
            if (blob_id(b, e->output[j]) >= 0 && !is_state(b, e->output[j]))
                return ct_status_setf(st, CT_EEXIST,
                                      "gradient blob \"%s\" (output of the "
                                      "gradient op %s) is already a blob of "
                                      "the forward net",
                                      e->output[j], e->type);
        }
    }
    return CT_OK;
}

static int grad_op(struct ct__grad_builder *b, int i, ct_status_t *st)
{
    const Caffe2__OperatorDef *op = b->def->op[i];
    const struct ct_op_schema *s;
    struct ct__grad_ctx g;
    const char **gout = NULL;
    char **gin = NULL;
    bool *flags = NULL;
    size_t j, first = b->n_ops;
    int any = -1, rc = CT_ENOMEM;

    gout = ct__calloc(op->n_output + 1, sizeof(*gout));
    gin = ct__calloc(op->n_input + 1, sizeof(*gin));
    flags = ct__calloc(2 * op->n_input + op->n_output + 1, sizeof(*flags));
    if (gout == NULL || gin == NULL || flags == NULL) {
        oom(st);
        goto done;
    }
    for (j = 0; j < op->n_output; j++) {
        gout[j] = out_version(b, i, (int)j)->grad;
        if (gout[j] != NULL && any < 0)
            any = (int)j;
    }
    rc = CT_OK;
    if (any < 0)
        goto done; /* no gradient flows through this op */
    s = ct__op_schema_find(str_or_empty(op->type));
    if (s == NULL || s->grad_cb == NULL) {
        rc = ct_status_setf(st, CT_ENOTSUP,
                            "%s%s%s has no gradient, but a gradient flows "
                            "into its output %d \"%s\"",
                            s == NULL ? "unknown operator type \"" : "",
                            str_or_empty(op->type), s == NULL ? "\"" : "", any,
                            op->output[any]);
        goto done;
    }
    for (j = 0; j < op->n_input; j++) {
        struct ver *v = in_version(b, i, (int)j);
        const char *x = op->input[j];
        gin[j] = v->split ? autosplit_name(b, x, v->next_k++)
                          : cat3(x, b->suffix, "");
        if (gin[j] == NULL) {
            rc = oom(st);
            goto done;
        }
    }
    memset(&g, 0, sizeof(g));
    g.def = op;
    g.idx = i;
    g.b = b;
    g.grad_out = gout;
    g.grad_in = (const char *const *)gin;
    g.in_used = flags;
    g.need_in = flags + op->n_input;
    g.need_out = flags + 2 * op->n_input;
    rc = s->grad_cb(&g, st);
    if (rc == CT_OK)
        rc = check_reads(b, &g, first, st);
    for (j = 0; rc == CT_OK && j < op->n_input; j++) {
        if (!g.in_used[j])
            continue;
        if (add_contrib(in_version(b, i, (int)j), gin[j], first, b->n_ops) !=
            CT_OK)
            rc = oom(st);
        else
            gin[j] = NULL; /* owned by the contribution now */
    }
done:
    for (j = 0; gin != NULL && j < op->n_input; j++)
        ct__free(gin[j]);
    ct__free(gin);
    ct__free(gout);
    ct__free(flags);
    return rc;
}

/* Step 3 for every op, then the output check. */
static int walk_backward(struct ct__grad_builder *b, ct_status_t *st)
{
    const Caffe2__NetDef *def = b->def;
    size_t j;
    int i, rc;

    for (i = (int)def->n_op - 1; i >= 0; i--) {
        const Caffe2__OperatorDef *op = def->op[i];
        rc = grad_op(b, i, st);
        if (rc != CT_OK)
            return op_fail(op, i, rc, st);
        /* Versions first read here have every contribution now. */
        for (j = 0; j < op->n_input; j++) {
            struct ver *v = in_version(b, i, (int)j);
            if (v->first_use != i || v->finished)
                continue;
            if (finish_version(b, &b->blobs[b->in_blob[b->in_off[i] + j]], v,
                               op) != CT_OK)
                return oom(st);
        }
    }
    return check_outputs(b, st);
}

static int builder_init(struct ct__grad_builder *b, const Caffe2__NetDef *def,
                        const char *suffix)
{
    memset(b, 0, sizeof(*b));
    b->def = def;
    ct__strmap_init(&b->ids);
    b->suffix = ct__strdup(suffix);
    return b->suffix != NULL ? CT_OK : CT_ENOMEM;
}

int ct_netdef_add_gradient_ops(ct_netdef_t *def, const char *const *loss_blobs,
                               size_t n_loss, ct_status_t *st)
{
    struct ct__grad_builder b;
    Caffe2__OperatorDef **arr;
    size_t j;
    int rc;

    CT_ASSERT(def != NULL && (loss_blobs != NULL || n_loss == 0),
              "ct_netdef_add_gradient_ops: NULL argument");
    if (n_loss == 0)
        return ct_status_setf(st, CT_EINVAL,
                              "no loss blob given; the gradient needs at "
                              "least one");
    if (def->n_op > (size_t)INT32_MAX)
        return ct_status_setf(st, CT_EINVAL, "net \"%s\" has too many ops",
                              str_or_empty(def->name));
    ct_status_clear(st);
    if (builder_init(&b, def, CT_GRAD_SUFFIX) != CT_OK ||
        play_forward(&b) != CT_OK) {
        rc = oom(st);
        goto done;
    }
    if ((rc = seed_losses(&b, loss_blobs, n_loss, st)) != CT_OK)
        goto done;
    if ((rc = walk_backward(&b, st)) != CT_OK)
        goto done;
    arr = ct__realloc(def->op, (def->n_op + b.n_ops) * sizeof(*arr));
    if (arr == NULL && def->n_op + b.n_ops > 0) {
        rc = oom(st);
        goto done;
    }
    def->op = arr;
    for (j = 0; j < b.n_ops; j++)
        def->op[def->n_op++] = b.ops[j];
    b.n_ops = 0; /* owned by def now */
    rc = CT_OK;
done:
    builder_free(&b);
    return rc;
}

/* ---- subnet builds (If, While, Do) ---- */

/* Seeds of a subnet build: the last version of each blob gets the given
 * gradient blob as a contribution made by no op. Blobs the subnet never
 * mentions are added with a single version, so their gradient passes
 * straight through. Runs before play_forward. */
static int add_seed_blobs(struct ct__grad_builder *b,
                          const struct ct__grad_sub_cfg *cfg, ct_status_t *st)
{
    size_t i, k;
    int id;

    for (i = 0; i < cfg->n_seeds; i++) {
        CT_ASSERT(cfg->seeds[i].blob != NULL && cfg->seeds[i].grad != NULL,
                  "subnet gradient seed %zu is NULL", i);
        for (k = 0; k < i; k++)
            if (strcmp(cfg->seeds[k].blob, cfg->seeds[i].blob) == 0)
                return ct_status_setf(st, CT_EINVAL,
                                      "blob \"%s\" is seeded twice",
                                      cfg->seeds[i].blob);
        if (blob_add(b, cfg->seeds[i].blob, &id) != CT_OK)
            return oom(st);
    }
    return CT_OK;
}

static int seed_given(struct ct__grad_builder *b,
                      const struct ct__grad_sub_cfg *cfg, ct_status_t *st)
{
    size_t i;

    for (i = 0; i < cfg->n_seeds; i++) {
        struct gblob *gb = &b->blobs[blob_id(b, cfg->seeds[i].blob)];
        struct ver *v = &gb->v[gb->n_ver - 1];
        char *name = ct__strdup(cfg->seeds[i].grad);

        v->seeded = true;
        v->split = v->n_uses + 1 >= 2;
        if (name == NULL || add_contrib(v, name, b->n_ops, b->n_ops) != CT_OK) {
            ct__free(name);
            return oom(st);
        }
        if (v->n_uses == 0 && finish_version(b, gb, v, NULL) != CT_OK)
            return oom(st);
    }
    return CT_OK;
}

static int push_str(char ***arr, size_t *n, size_t *cap, const char *s)
{
    char *c = ct__strdup(s);

    if (c == NULL ||
        ct__grow((void **)arr, cap, *n + 1, sizeof(**arr)) != CT_OK) {
        ct__free(c);
        return CT_ENOMEM;
    }
    (*arr)[(*n)++] = c;
    return CT_OK;
}

void ct__grad_sub_release(struct ct__grad_sub *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_ops; i++)
        ct_proto_free(&r->ops[i]->base);
    ct__free(r->ops);
    for (i = 0; i < r->n_grad; i++) {
        ct__free(r->blob[i]);
        ct__free(r->grad[i]);
    }
    ct__free(r->blob);
    ct__free(r->grad);
    for (i = 0; i < r->n_state; i++)
        ct__free(r->state[i]);
    ct__free(r->state);
    memset(r, 0, sizeof(*r));
}

const char *ct__grad_sub_find(const struct ct__grad_sub *r, const char *blob)
{
    size_t i;

    for (i = 0; i < r->n_grad; i++)
        if (strcmp(r->blob[i], blob) == 0)
            return r->grad[i];
    return NULL;
}

int ct__grad_subnet(struct ct__grad_ctx *g, const Caffe2__NetDef *net,
                    const struct ct__grad_sub_cfg *cfg,
                    struct ct__grad_sub *out, ct_status_t *st)
{
    struct ct__grad_builder b;
    size_t i, cap = 0, cap_s = 0;
    char *suffix;
    int rc;

    CT_ASSERT(net != NULL && cfg != NULL && out != NULL,
              "ct__grad_subnet: NULL argument");
    memset(out, 0, sizeof(*out));
    if (net->n_op > (size_t)INT32_MAX)
        return ct_status_setf(st, CT_EINVAL, "subnet \"%s\" has too many ops",
                              str_or_empty(net->name));
    suffix = cfg->tag == NULL ? ct__strdup(CT_GRAD_SUFFIX)
                              : cat3(g != NULL ? g->b->suffix : CT_GRAD_SUFFIX,
                                     cfg->tag, "");
    if (suffix == NULL)
        return oom(st);
    rc = builder_init(&b, net, suffix);
    ct__free(suffix);
    if (rc != CT_OK) {
        rc = oom(st);
        goto done;
    }
    b.saved = cfg->saved;
    b.n_saved = cfg->n_saved;
    b.saved_suffix = cfg->saved_suffix != NULL ? cfg->saved_suffix : "";
    if ((rc = add_seed_blobs(&b, cfg, st)) != CT_OK)
        goto done;
    if (play_forward(&b) != CT_OK) {
        rc = oom(st);
        goto done;
    }
    if ((rc = seed_given(&b, cfg, st)) != CT_OK)
        goto done;
    if ((rc = walk_backward(&b, st)) != CT_OK) {
        ct_status_prefix(st, "subnet \"%s\": ", str_or_empty(net->name));
        goto done;
    }
    rc = oom(st);
    for (i = 0; i < b.n_blobs; i++) {
        const struct ver *v = &b.blobs[i].v[0];
        if (v->grad == NULL)
            continue;
        if (ct__grow((void **)&out->blob, &cap, out->n_grad + 1,
                     sizeof(*out->blob)) != CT_OK ||
            ct__grow((void **)&out->grad, &cap_s, out->n_grad + 1,
                     sizeof(*out->grad)) != CT_OK)
            goto done;
        out->blob[out->n_grad] = ct__strdup(b.blobs[i].name);
        out->grad[out->n_grad] = ct__strdup(v->grad);
        out->n_grad++;
        if (out->blob[out->n_grad - 1] == NULL ||
            out->grad[out->n_grad - 1] == NULL)
            goto done;
    }
    cap = 0;
    for (i = 0; i < b.n_state; i++)
        if (push_str(&out->state, &out->n_state, &cap, b.state[i]) != CT_OK)
            goto done;
    out->ops = b.ops;
    out->n_ops = b.n_ops;
    b.ops = NULL;
    b.n_ops = 0;
    rc = CT_OK;
done:
    builder_free(&b);
    if (rc != CT_OK)
        ct__grad_sub_release(out);
    return rc;
}

int ct__grad_mark_state(struct ct__grad_ctx *g, const char *blob,
                        ct_status_t *st)
{
    struct ct__grad_builder *b = g->b;

    if (is_state(b, blob))
        return CT_OK;
    if (push_str(&b->state, &b->n_state, &b->cap_state, blob) != CT_OK)
        return oom(st);
    return CT_OK;
}

const char *ct__grad_suffix(const struct ct__grad_ctx *g)
{
    return g->b->suffix;
}
