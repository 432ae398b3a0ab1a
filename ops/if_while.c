/* If and While (Caffe2's if_op / while_op, spec §3.5).
 *
 * If: input 0 is the condition, then anything; outputs anything (in-place
 * allowed). Arguments `then_net` (required) and `else_net`. While:
 * `loop_net` (required) and `cond_net`. The subnets are compiled at op
 * creation in the op's own workspace and owned by the op (Caffe2 builds
 * them with the free CreateNet, not in the workspace net map).
 *
 * The condition must be a tensor with one element. Caffe2 reads it as
 * bool and requires a BOOL tensor; cortado also accepts any numeric dtype
 * (non-zero is true), a documented difference that lets a condition be
 * computed with arithmetic ops. While re-reads the condition blob before
 * each iteration, so cond_net may update it in place or replace it.
 * Neither op uses a WorkspaceStack; wrap a branch in a Do for a scope.
 *
 * Gradients (cortado's design after Caffe2's gen_if_gradient and
 * gen_while_gradient; docs/scopes.md has the full story):
 *   If: each branch's gradient is built with the If's output gradients as
 *     seeds; the gradient op is an If on the same condition (which must
 *     still hold its forward value, checked like any forward value a
 *     gradient reads) whose branches run those gradient nets and then
 *     copy each input's gradient into the blob the builder asked for. An
 *     input that gets a gradient in one branch only gets zeros (a
 *     ConstantFill shaped like it) in the other; an output the taken
 *     branch leaves alone passes its gradient straight through.
 *   While: loop_net must be one Do (no reuse_workspace, with
 *     copy_external_blobs), as NetBuilder emits; anything else is
 *     CT_EINVAL. Each forward iteration pushed one workspace onto the Do's
 *     scope; the gradient is a While whose cond_net is HasScope(scope),
 *     so it runs once per iteration, in reverse, each run popping that
 *     iteration's workspace. Loop-carried gradients live in "carry" blobs
 *     (the gradient blobs of the While's inputs): each backward iteration
 *     reads the carries as the gradients of the values the iteration
 *     left and replaces them by the gradients of the values it started
 *     from. Which outputs need a carry is found by a fixpoint (a value
 *     may need one because an earlier iteration feeds another output
 *     through it); a carry without an incoming gradient starts at zero.
 *     Inputs the loop only reads (weights) accumulate their gradient over
 *     the iterations in a fixed order from zero. cond_net is not
 *     differentiated (Caffe2 does the same).
 */
#include <stdio.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "engine/gradient.h"
#include "ops/op_impl.h"

struct ctl_state {
    ct_net_t *first;  /* then_net / loop_net */
    ct_net_t *second; /* else_net / cond_net, or NULL */
};

static const struct ct_arg_spec if_args[] = {
    {"then_net", CT_ARG_NET, false},
    {"else_net", CT_ARG_NET, false},
    {NULL, CT_ARG_ANY, false},
};

static const struct ct_arg_spec while_args[] = {
    {"loop_net", CT_ARG_NET, false},
    {"cond_net", CT_ARG_NET, false},
    {NULL, CT_ARG_ANY, false},
};

static void ctl_fini(ct_op_t *op)
{
    struct ctl_state *s = op->state;

    ct_net_free(s->second);
    ct_net_free(s->first);
    s->first = s->second = NULL;
}

static int compile(ct_op_t *op, const char *arg, const char *opname,
                   bool required, ct_net_t **out, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, arg);
    struct ct_net_config cfg;
    int rc;

    *out = NULL;
    if (a == NULL || a->n == NULL) {
        if (required)
            return ct_status_setf(st, CT_EARG,
                                  "%s must be specified in %s "
                                  "operator",
                                  arg, opname);
        return CT_OK;
    }
    /* No op fusion in branches and loop bodies: the parent may read any
     * blob they write, declared or not (engine/fuse.c). */
    memset(&cfg, 0, sizeof(cfg));
    cfg.no_fuse = true;
    rc = ct_net_new(op->ws, a->n, &cfg, out, st);
    if (rc != CT_OK)
        ct_status_prefix(st, "%s: ", arg);
    return rc;
}

static int ctl_init(ct_op_t *op, const char *first, const char *second,
                    const char *opname, ct_status_t *st)
{
    struct ctl_state *s = op->state;
    int rc = compile(op, first, opname, true, &s->first, st);

    if (rc == CT_OK)
        rc = compile(op, second, opname, false, &s->second, st);
    if (rc != CT_OK)
        ctl_fini(op);
    return rc;
}

static int if_init(ct_op_t *op, ct_status_t *st)
{
    return ctl_init(op, "then_net", "else_net", "If", st);
}

static int while_init(ct_op_t *op, ct_status_t *st)
{
    return ctl_init(op, "loop_net", "cond_net", "While", st);
}

static int read_cond(ct_op_ctx_t *ctx, const char *opname, bool *out)
{
    const ct_tensor_t *c = ct_blob_get_tensor(ctx->op->in[0]);
    const void *p;

    if (c == NULL)
        return ct_op_fail(ctx, CT_ETYPE,
                          "Invalid condition in %s operator: tensor "
                          "expected (blob %s)",
                          opname, ct_op_input_name(ctx->op, 0));
    if (ct_tensor_numel(c) != 1)
        return ct_op_fail(ctx, CT_ESHAPE,
                          "Invalid condition in %s operator: single value "
                          "expected, got %lld",
                          opname, (long long)ct_tensor_numel(c));
    p = ct_tensor_cdata(c);
    switch (ct_tensor_dtype(c)) {
    case CT_DTYPE_BOOL:
        *out = *(const bool *)p;
        break;
    case CT_DTYPE_F32:
        *out = *(const float *)p != 0.0f;
        break;
    case CT_DTYPE_F64:
        *out = *(const double *)p != 0.0;
        break;
    case CT_DTYPE_I32:
        *out = *(const int32_t *)p != 0;
        break;
    case CT_DTYPE_I64:
        *out = *(const int64_t *)p != 0;
        break;
    case CT_DTYPE_I16:
        *out = *(const int16_t *)p != 0;
        break;
    case CT_DTYPE_U16:
        *out = *(const uint16_t *)p != 0;
        break;
    case CT_DTYPE_BYTE:
    case CT_DTYPE_U8:
        *out = *(const uint8_t *)p != 0;
        break;
    case CT_DTYPE_I8:
        *out = *(const int8_t *)p != 0;
        break;
    default:
        return ct_op_fail(ctx, CT_ETYPE,
                          "Invalid condition in %s operator: %s tensor", opname,
                          ct_dtype_name(ct_tensor_dtype(c)));
    }
    return CT_OK;
}

static int run_sub(ct_op_ctx_t *ctx, ct_net_t *net)
{
    ct_status_t sub = {0};
    int rc = ct_net_run(net, &sub);

    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "subnet %s: %s", ct_net_name(net), sub.msg);
    return CT_OK;
}

static int if_run(ct_op_ctx_t *ctx)
{
    const struct ctl_state *s = ctx->op->state;
    bool cond;
    int rc = read_cond(ctx, "If", &cond);

    if (rc != CT_OK)
        return rc;
    if (cond)
        return run_sub(ctx, s->first);
    return s->second != NULL ? run_sub(ctx, s->second) : CT_OK;
}

static int while_run(ct_op_ctx_t *ctx)
{
    const struct ctl_state *s = ctx->op->state;
    bool cond;
    int rc;

    for (;;) {
        if (s->second != NULL) {
            rc = run_sub(ctx, s->second);
            if (rc != CT_OK)
                return rc;
        }
        rc = read_cond(ctx, "While", &cond);
        if (rc != CT_OK || !cond)
            return rc;
        rc = run_sub(ctx, s->first);
        if (rc != CT_OK)
            return rc;
    }
}

/* ---- gradient makers ---- */

static const Caffe2__NetDef *def_net(const Caffe2__OperatorDef *def,
                                     const char *name)
{
    size_t i;

    for (i = 0; i < def->n_arg; i++)
        if (def->arg[i]->name != NULL && strcmp(def->arg[i]->name, name) == 0)
            return def->arg[i]->n;
    return NULL;
}

static int64_t def_int(const Caffe2__OperatorDef *def, const char *name)
{
    size_t i;

    for (i = 0; i < def->n_arg; i++)
        if (def->arg[i]->name != NULL && strcmp(def->arg[i]->name, name) == 0 &&
            def->arg[i]->has_i)
            return def->arg[i]->i;
    return 0;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* A growable list of borrowed names. */
struct names {
    const char **v;
    size_t n, cap;
};

static int names_add(struct names *l, const char *s)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return CT_OK;
    if (ct__grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) != CT_OK)
        return CT_ENOMEM;
    l->v[l->n++] = s;
    return CT_OK;
}

/* The names net reads before it writes them (its external inputs) and
 * everything it writes, added to in / out. */
static int net_io(const Caffe2__NetDef *net, struct names *in,
                  struct names *out)
{
    struct names made = {0};
    size_t i, j;
    int rc = CT_OK;

    for (i = 0; net != NULL && rc == CT_OK && i < net->n_op; i++) {
        const Caffe2__OperatorDef *op = net->op[i];
        for (j = 0; rc == CT_OK && j < op->n_input; j++) {
            size_t k;
            bool seen = false;
            for (k = 0; k < made.n; k++)
                seen = seen || strcmp(made.v[k], op->input[j]) == 0;
            if (!seen)
                rc = names_add(in, op->input[j]);
        }
        for (j = 0; rc == CT_OK && j < op->n_output; j++)
            if ((rc = names_add(&made, op->output[j])) == CT_OK)
                rc = names_add(out, op->output[j]);
    }
    ct__free(made.v);
    return rc;
}

/* Appends type(in) -> out to net, with `value` 0.0 for ConstantFill. */
static int add_op(Caffe2__NetDef *net, const char *type, const char *const *in,
                  int n_in, const char *out, ct_status_t *st)
{
    Caffe2__OperatorDef *op;
    int rc = ct__grad_opdef_new(type, in, n_in, &out, 1, &op, st);

    if (rc == CT_OK && strcmp(type, "ConstantFill") == 0 &&
        (rc = ct__grad_op_set_float(op, "value", 0.0f, st)) != CT_OK)
        ct_proto_free(&op->base);
    if (rc == CT_OK)
        rc = ct__grad_netdef_append(net, op, st);
    return rc;
}

/* A NetDef "<base>_grad" holding sub's ops (taken from sub). */
static int grad_net(const Caffe2__NetDef *base, const char *fallback,
                    struct ct__grad_sub *sub, Caffe2__NetDef **out,
                    ct_status_t *st)
{
    const char *bn = base != NULL && base->name != NULL ? base->name : fallback;
    char name[256];
    size_t i;
    int rc;

    snprintf(name, sizeof(name), "%s_grad", bn);
    if ((rc = ct__grad_netdef_new(name, out, st)) != CT_OK)
        return rc;
    for (i = 0; sub != NULL && i < sub->n_ops; i++) {
        if ((rc = ct__grad_netdef_append(*out, sub->ops[i], st)) != CT_OK) {
            sub->ops[i] = NULL;
            for (i = i + 1; i < sub->n_ops; i++)
                ct_proto_free(&sub->ops[i]->base);
            sub->n_ops = 0;
            return rc;
        }
        sub->ops[i] = NULL;
    }
    if (sub != NULL)
        sub->n_ops = 0;
    return CT_OK;
}

/* Declares the forward values of the If that the gradient nets read, so
 * the builder checks they survive until the gradient runs. Scope blobs
 * (state) and gradient blobs are not forward values. */
static void if_declare_reads(struct ct__grad_ctx *g, const struct names *in,
                             const struct ct__grad_sub *t,
                             const struct ct__grad_sub *e)
{
    const Caffe2__OperatorDef *def = g->def;
    size_t i, j;

    for (i = 0; i < in->n; i++) {
        const char *n = in->v[i];
        bool done = false;
        if (in_list(t->state, t->n_state, n) ||
            in_list(e->state, e->n_state, n))
            continue;
        for (j = def->n_output; !done && j-- > 0;)
            if (strcmp(def->output[j], n) == 0) {
                ct__grad_fwd_out(g, (int)j);
                done = true;
            }
        for (j = 0; !done && j < def->n_input; j++)
            if (strcmp(def->input[j], n) == 0) {
                ct__grad_fwd_in(g, (int)j);
                done = true;
            }
    }
}

static int if_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const Caffe2__OperatorDef *def = g->def;
    const Caffe2__NetDef *then_net = def_net(def, "then_net");
    const Caffe2__NetDef *else_net = def_net(def, "else_net");
    struct ct__grad_seed *seeds = NULL;
    struct ct__grad_sub t = {0}, e = {0};
    struct ct__grad_sub_cfg cfg;
    Caffe2__NetDef *tn = NULL, *en = NULL;
    struct names in = {0}, out = {0};
    Caffe2__OperatorDef *op;
    char tag[48];
    size_t i, j, n_seeds = 0;
    int rc;

    if (then_net == NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "then_net must be specified in If operator");
    seeds = ct__calloc(def->n_output + 1, sizeof(*seeds));
    if (seeds == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (j = 0; j < def->n_output; j++) {
        const char *gy = ct__grad_out(g, (int)j);
        if (gy == NULL)
            continue;
        seeds[n_seeds].blob = def->output[j];
        seeds[n_seeds++].grad = gy;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.seeds = seeds;
    cfg.n_seeds = n_seeds;
    cfg.tag = tag;
    snprintf(tag, sizeof(tag), "_if%d_then", g->idx);
    if ((rc = ct__grad_subnet(g, then_net, &cfg, &t, st)) != CT_OK)
        goto done;
    snprintf(tag, sizeof(tag), "_if%d_else", g->idx);
    if (else_net != NULL &&
        (rc = ct__grad_subnet(g, else_net, &cfg, &e, st)) != CT_OK)
        goto done;
    if ((rc = grad_net(then_net, "then", &t, &tn, st)) != CT_OK ||
        (rc = grad_net(else_net, "else", &e, &en, st)) != CT_OK)
        goto done;
    /* Hand each input's gradient to the blob the builder named. */
    for (i = 1; i < def->n_input; i++) {
        const char *x = def->input[i], *gt, *ge, *dst;
        bool dup = false;
        for (j = 1; j < i; j++)
            dup = dup || strcmp(def->input[j], x) == 0;
        if (dup)
            continue;
        gt = ct__grad_sub_find(&t, x);
        ge = NULL;
        if (else_net != NULL)
            ge = ct__grad_sub_find(&e, x);
        else
            for (j = 0; j < n_seeds; j++)
                if (strcmp(seeds[j].blob, x) == 0)
                    ge = seeds[j].grad;
        if (gt == NULL && ge == NULL)
            continue;
        dst = ct__grad_in(g, (int)i);
        rc = CT_OK;
        if (gt == NULL)
            rc = add_op(tn, "ConstantFill", &x, 1, dst, st);
        else if (strcmp(gt, dst) != 0)
            rc = add_op(tn, "Copy", &gt, 1, dst, st);
        if (rc == CT_OK && ge == NULL)
            rc = add_op(en, "ConstantFill", &x, 1, dst, st);
        else if (rc == CT_OK && strcmp(ge, dst) != 0)
            rc = add_op(en, "Copy", &ge, 1, dst, st);
        if (rc != CT_OK)
            goto done;
    }
    rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
    if (names_add(&in, def->input[0]) != CT_OK ||
        net_io(tn, &in, &out) != CT_OK || net_io(en, &in, &out) != CT_OK)
        goto done;
    ct__grad_fwd_in(g, 0); /* the condition must keep its forward value */
    if_declare_reads(g, &in, &t, &e);
    for (i = 0; i < t.n_state; i++)
        if ((rc = ct__grad_mark_state(g, t.state[i], st)) != CT_OK)
            goto done;
    for (i = 0; i < e.n_state; i++)
        if ((rc = ct__grad_mark_state(g, e.state[i], st)) != CT_OK)
            goto done;
    rc = ct__grad_emit(g, "If", in.v, (int)in.n, out.v, (int)out.n,
                       CT__GRAD_NO_ARGS, &op, st);
    if (rc == CT_OK) {
        rc = ct__grad_op_set_net(op, "then_net", tn, st);
        tn = NULL;
    }
    if (rc == CT_OK && en->n_op > 0) {
        rc = ct__grad_op_set_net(op, "else_net", en, st);
        en = NULL;
    }
done:
    if (tn != NULL)
        ct_proto_free(&tn->base);
    if (en != NULL)
        ct_proto_free(&en->base);
    ct__grad_sub_release(&t);
    ct__grad_sub_release(&e);
    ct__free(in.v);
    ct__free(out.v);
    ct__free(seeds);
    return rc;
}

/* The loop body: one Do without reuse_workspace, with copy_external_blobs
 * (so each iteration's workspace keeps the values its gradient reads). */
static int while_body(const Caffe2__OperatorDef *def,
                      const Caffe2__NetDef **loop, const char **scope,
                      ct_status_t *st)
{
    const Caffe2__OperatorDef *d;

    *loop = def_net(def, "loop_net");
    if (*loop == NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "loop_net must be specified in While operator");
    if ((*loop)->n_op != 1 || (*loop)->op[0]->type == NULL ||
        strcmp((*loop)->op[0]->type, "Do") != 0)
        return ct_status_setf(st, CT_EINVAL,
                              "gradient While op requires a loop_net of a "
                              "single Do op (got %zu ops%s%s)",
                              (*loop)->n_op,
                              (*loop)->n_op > 0 ? ", first " : "",
                              (*loop)->n_op > 0 && (*loop)->op[0]->type != NULL
                                  ? (*loop)->op[0]->type
                                  : "");
    d = (*loop)->op[0];
    if (def_int(d, "reuse_workspace") != 0)
        return ct_status_setf(st, CT_EINVAL,
                              "gradient While op requires a loop body Do "
                              "without reuse_workspace");
    if (def_int(d, "copy_external_blobs") == 0)
        return ct_status_setf(st, CT_EINVAL,
                              "gradient While op requires a loop body Do "
                              "with copy_external_blobs (each iteration must "
                              "keep the values its gradient reads)");
    if (d->n_output < 1)
        return ct_status_setf(st, CT_EINVAL,
                              "loop body Do has no scope output");
    *scope = d->output[d->n_output - 1];
    return CT_OK;
}

/* Slot of blob among the While's inputs (from 1), or -1. */
static int input_slot(const Caffe2__OperatorDef *def, const char *blob)
{
    size_t i;

    for (i = 1; i < def->n_input; i++)
        if (strcmp(def->input[i], blob) == 0)
            return (int)i;
    return -1;
}

struct carry {
    const char *blob; /* a While output */
    const char *in;   /* incoming gradient, or NULL */
    char *name;       /* owned: the carry blob */
};

static int while_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    const Caffe2__OperatorDef *def = g->def;
    const Caffe2__NetDef *loop;
    const char *scope;
    struct carry *c = NULL;
    struct ct__grad_seed *seeds = NULL;
    struct ct__grad_sub sub = {0};
    struct ct__grad_sub_cfg cfg;
    Caffe2__NetDef *ln = NULL, *cn = NULL;
    struct names in = {0}, out = {0}, acc = {0};
    Caffe2__OperatorDef *op;
    char tag[48], cond[512];
    size_t n_c = 0, i, j, prev;
    int rc;

    if ((rc = while_body(def, &loop, &scope, st)) != CT_OK)
        return rc;
    c = ct__calloc(def->n_output + 1, sizeof(*c));
    seeds = ct__calloc(def->n_output + 1, sizeof(*seeds));
    if (c == NULL || seeds == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
        goto done;
    }
    for (j = 0; j < def->n_output; j++)
        if (ct__grad_out(g, (int)j) != NULL) {
            c[n_c].blob = def->output[j];
            c[n_c++].in = ct__grad_out(g, (int)j);
        }
    snprintf(tag, sizeof(tag), "_while%d", g->idx);
    /* Fixpoint: carry every output whose value before an iteration gets a
     * gradient from the iteration. */
    do {
        prev = n_c;
        for (i = 0; i < n_c; i++) {
            int k = input_slot(def, c[i].blob);
            const char *nm = k >= 0 ? g->grad_in[k] : c[i].in;
            char buf[512];
            if (c[i].name != NULL)
                continue;
            if (nm == NULL) {
                snprintf(buf, sizeof(buf), "%s%s_carry", c[i].blob,
                         ct__grad_suffix(g));
                nm = buf;
            }
            if ((c[i].name = ct__strdup(nm)) == NULL) {
                rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
                goto done;
            }
        }
        for (i = 0; i < n_c; i++) {
            seeds[i].blob = c[i].blob;
            seeds[i].grad = c[i].name;
        }
        memset(&cfg, 0, sizeof(cfg));
        cfg.seeds = seeds;
        cfg.n_seeds = n_c;
        cfg.tag = tag;
        ct__grad_sub_release(&sub);
        if ((rc = ct__grad_subnet(g, loop, &cfg, &sub, st)) != CT_OK)
            goto done;
        for (j = 0; j < def->n_output; j++) {
            bool have = false;
            if (strcmp(def->output[j], scope) == 0 ||
                ct__grad_sub_find(&sub, def->output[j]) == NULL)
                continue;
            for (i = 0; i < n_c; i++)
                have = have || strcmp(c[i].blob, def->output[j]) == 0;
            if (!have)
                c[n_c++].blob = def->output[j];
        }
    } while (n_c != prev);
    /* Before the loop: the carries start at the incoming gradients (or
     * zero), the accumulators at zero. */
    rc = CT_OK;
    for (i = 0; rc == CT_OK && i < n_c; i++) {
        int k = input_slot(def, c[i].blob);
        if (k >= 0)
            ct__grad_in(g, k);
        if (c[i].in == NULL)
            rc = ct__grad_emit(g, "ConstantFill", &c[i].blob, 1,
                               (const char *const *)&c[i].name, 1,
                               CT__GRAD_NO_ARGS, &op, st);
        else if (strcmp(c[i].in, c[i].name) != 0)
            rc = ct__grad_emit(g, "Copy", &c[i].in, 1,
                               (const char *const *)&c[i].name, 1,
                               CT__GRAD_NO_ARGS, NULL, st);
        if (rc == CT_OK && c[i].in == NULL)
            rc = ct__grad_op_set_float(op, "value", 0.0f, st);
    }
    for (i = 1; rc == CT_OK && i < def->n_input; i++) {
        const char *x = def->input[i];
        bool carried = false;
        for (j = 0; j < n_c; j++)
            carried = carried || strcmp(c[j].blob, x) == 0;
        if (carried || strcmp(x, scope) == 0 ||
            ct__grad_sub_find(&sub, x) == NULL || input_slot(def, x) != (int)i)
            continue;
        if (names_add(&acc, x) != CT_OK) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            break;
        }
        rc = ct__grad_emit(g, "ConstantFill", &x, 1,
                           (const char *const *)&g->grad_in[i], 1,
                           CT__GRAD_NO_ARGS, &op, st);
        if (rc == CT_OK)
            rc = ct__grad_op_set_float(op, "value", 0.0f, st);
        if (rc == CT_OK)
            ct__grad_in(g, (int)i);
    }
    if (rc != CT_OK)
        goto done;
    snprintf(cond, sizeof(cond), "%s%s%s_cond", scope, ct__grad_suffix(g), tag);
    {
        const char *cnd = cond;
        if ((rc = ct__grad_emit(g, "HasScope", &scope, 1, &cnd, 1,
                                CT__GRAD_NO_ARGS, NULL, st)) != CT_OK)
            goto done;
    }
    /* The loop: the body's gradient, then the carries and accumulators. */
    if ((rc = grad_net(loop, "loop", &sub, &ln, st)) != CT_OK ||
        (rc = ct__grad_netdef_new("while_grad_cond", &cn, st)) != CT_OK ||
        (rc = add_op(cn, "HasScope", &scope, 1, cond, st)) != CT_OK)
        goto done;
    for (i = 0; rc == CT_OK && i < n_c; i++) {
        const char *gx = ct__grad_sub_find(&sub, c[i].blob);
        if (gx != NULL && strcmp(gx, c[i].name) != 0)
            rc = add_op(ln, "Copy", &gx, 1, c[i].name, st);
    }
    for (i = 0; rc == CT_OK && i < acc.n; i++) {
        int k = input_slot(def, acc.v[i]);
        const char *sum_in[2];
        sum_in[0] = g->grad_in[k];
        sum_in[1] = ct__grad_sub_find(&sub, acc.v[i]);
        rc = add_op(ln, "Sum", sum_in, 2, g->grad_in[k], st);
    }
    if (rc != CT_OK)
        goto done;
    rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
    if (names_add(&in, cond) != CT_OK || net_io(ln, &in, &out) != CT_OK ||
        net_io(cn, &in, &out) != CT_OK)
        goto done;
    if ((rc = ct__grad_mark_state(g, scope, st)) != CT_OK)
        goto done;
    for (i = 0; i < sub.n_state; i++)
        if ((rc = ct__grad_mark_state(g, sub.state[i], st)) != CT_OK)
            goto done;
    rc = ct__grad_emit(g, "While", in.v, (int)in.n, out.v, (int)out.n,
                       CT__GRAD_NO_ARGS, &op, st);
    if (rc == CT_OK) {
        rc = ct__grad_op_set_net(op, "loop_net", ln, st);
        ln = NULL;
    }
    if (rc == CT_OK) {
        rc = ct__grad_op_set_net(op, "cond_net", cn, st);
        cn = NULL;
    }
done:
    if (ln != NULL)
        ct_proto_free(&ln->base);
    if (cn != NULL)
        ct_proto_free(&cn->base);
    ct__grad_sub_release(&sub);
    for (i = 0; c != NULL && i < def->n_output; i++)
        ct__free(c[i].name);
    ct__free(c);
    ct__free(seeds);
    ct__free(in.v);
    ct__free(out.v);
    ct__free(acc.v);
    return rc;
}

static double ctl_cost(const ct_op_t *op, const ct_shape_t *in)
{
    (void)op;
    (void)in;
    return 1000.0;
}

const struct ct_op_schema ct__op_if = {
    .name = "If",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = if_args,
    .state_size = sizeof(struct ctl_state),
    .init_cb = if_init,
    .fini_cb = ctl_fini,
    .run_cb = if_run,
    .cost_cb = ctl_cost,
    .grad_cb = if_grad_make,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs then_net or else_net on a one-element condition",
};

const struct ct_op_schema ct__op_while = {
    .name = "While",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = while_args,
    .state_size = sizeof(struct ctl_state),
    .init_cb = while_init,
    .fini_cb = ctl_fini,
    .run_cb = while_run,
    .cost_cb = ctl_cost,
    .grad_cb = while_grad_make,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs loop_net while the condition holds (cond_net first)",
};
