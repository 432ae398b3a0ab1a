/* Do: runs a subnet in a child workspace taken from a scope blob's
 * WorkspaceStack (Caffe2's do_op.{h,cc}, spec §3.4).
 *
 * Inputs and outputs: the outer blobs, then the scope blob, which must be
 * the last input and the last output. Arguments: `net` (NetDef, required),
 * `inner_blobs` (strings) and `outer_blobs_idx` (ints): inner_blobs[i] in
 * the child is bound to outer[outer_blobs_idx[i]], where outer = inputs
 * without the scope ++ outputs without the scope; `copy_external_blobs`,
 * `reuse_workspace` (bools as ints), `saved_fwd_blobs` (accepted, unused,
 * as in Caffe2). The OperatorDef's is_gradient_op makes it the backward
 * Do: it pops the forward workspace instead of pushing one.
 *
 * The subnet is compiled once per child workspace and cached there by net
 * name (Caffe2's workspace net map): a later run reusing that workspace
 * runs the cached net. cortado rebuilds it only when the push had to
 * re-bind names left as local copies by copy_external_blobs, since the
 * compiled ops hold blob pointers (Caffe2 would keep dangling ones).
 *
 * Concurrency: the op reads the parent workspace only (the child has its
 * own maps), so Do ops with different scope blobs run at the same time
 * under the dag executor without a lock. A dag subnet run from a pool
 * worker runs nested on that worker's slot, which helps while it waits.
 *
 * Gradients (cortado's design of Caffe2's gen_do_gradient, see
 * docs/scopes.md). A forward Do keeps, in its child workspace, a copy of
 * every bound blob its subnet reads and then overwrites (x in
 * `x = x * x`), named "<inner>" DO_SAVED_SUFFIX and taken before the
 * subnet runs: the gradient needs that value, and the bound blob holds
 * the new one by then (Caffe2 keeps only the value after the run, so the
 * gradient of such a body is wrong there). The gradient maker builds the
 * gradient of the subnet with the outer gradients as seeds and emits one
 * gradient Do that pops the forward workspace and runs it:
 *   - the gradient of inner output I arrives bound as I DO_GRAD_OUT;
 *   - the gradient of inner input I is copied to I DO_GRAD_IN, bound to
 *     the outer gradient blob of that input;
 *   - forward values the gradient reads are bound to the same outer
 *     blobs as in the forward op (a local copy left by
 *     copy_external_blobs or a blob local to the subnet wins, as the
 *     bindings are added with skip_defined); the builder checks that
 *     those outer values are not overwritten later, unless
 *     copy_external_blobs made them local copies;
 *   - when one outer gradient blob is both an incoming gradient and an
 *     outgoing one (a Do writing x in place), it is bound once, to the
 *     outgoing name, and copied to the incoming one before the gradient
 *     ops run.
 * The gradient Do compiles its net on every run: the forward pushes may
 * have replaced the blobs its ops would point at.
 */
#include <string.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "cortado/scope.h"
#include "engine/gradient.h"
#include "ops/op_impl.h"

#define DO_SAVED_SUFFIX "/_do_saved_input"
#define DO_GRAD_OUT "/_do_grad_out"
#define DO_GRAD_IN "/_do_grad_in"

struct do_state {
    const Caffe2__NetDef *net; /* borrowed from the def */
    size_t n_bind;
    char **inner;       /* owned copies */
    const char **outer; /* borrowed from the def */
    bool is_gradient, copy_external, reuse;
    /* Read-modify-write bound blobs: saved[k] is the index of the binding,
     * saved_name[k] (owned) the name of its copy in the child. */
    size_t n_saved;
    size_t *saved;
    char **saved_name;
};

/* Marks rmw[i] when the subnet reads inner name i before any of its ops
 * writes it and also writes it: the value the gradient needs is then
 * gone once the subnet has run. Nested nets count through the op's
 * declared inputs and outputs (If and While list what they touch). */
static void find_rmw(const Caffe2__NetDef *net, const char *const *inner,
                     size_t n, bool *rmw)
{
    size_t i, j, k;

    for (k = 0; k < n; k++) {
        bool written = false, read_first = false;
        for (i = 0; i < net->n_op && !(written && read_first); i++) {
            const Caffe2__OperatorDef *op = net->op[i];
            for (j = 0; !written && j < op->n_input; j++)
                if (strcmp(op->input[j], inner[k]) == 0)
                    read_first = true;
            for (j = 0; j < op->n_output; j++)
                if (strcmp(op->output[j], inner[k]) == 0)
                    written = true;
        }
        rmw[k] = written && read_first;
    }
}

static const struct ct_arg_spec do_args[] = {
    {"net", CT_ARG_NET, false},
    {"inner_blobs", CT_ARG_STRINGS, false},
    {"outer_blobs_idx", CT_ARG_INTS, false},
    {"copy_external_blobs", CT_ARG_INT, false},
    {"reuse_workspace", CT_ARG_INT, false},
    {"saved_fwd_blobs", CT_ARG_STRINGS, false},
    {NULL, CT_ARG_ANY, false},
};

static void do_fini(ct_op_t *op)
{
    struct do_state *s = op->state;
    size_t i;

    if (s->inner != NULL)
        for (i = 0; i < s->n_bind; i++)
            ct__free(s->inner[i]);
    ct__free(s->inner);
    ct__free((void *)s->outer);
    s->inner = NULL;
    s->outer = NULL;
    for (i = 0; s->saved_name != NULL && i < s->n_saved; i++)
        ct__free(s->saved_name[i]);
    ct__free(s->saved_name);
    ct__free(s->saved);
    s->saved_name = NULL;
    s->saved = NULL;
    s->n_saved = 0;
}

/* The saved copies of a forward Do (see the file note). */
static int init_saved(struct do_state *s)
{
    bool *rmw = ct__calloc(s->n_bind + 1, sizeof(bool));
    size_t i, n = 0;

    if (rmw == NULL)
        return CT_ENOMEM;
    find_rmw(s->net, (const char *const *)s->inner, s->n_bind, rmw);
    for (i = 0; i < s->n_bind; i++)
        n += rmw[i];
    s->saved = ct__calloc(n + 1, sizeof(*s->saved));
    s->saved_name = ct__calloc(n + 1, sizeof(*s->saved_name));
    if (s->saved == NULL || s->saved_name == NULL)
        goto fail;
    for (i = 0; i < s->n_bind; i++) {
        size_t len = strlen(s->inner[i]);
        char *name;
        if (!rmw[i])
            continue;
        name = ct__malloc(len + sizeof(DO_SAVED_SUFFIX));
        if (name == NULL)
            goto fail;
        memcpy(name, s->inner[i], len);
        memcpy(name + len, DO_SAVED_SUFFIX, sizeof(DO_SAVED_SUFFIX));
        s->saved[s->n_saved] = i;
        s->saved_name[s->n_saved++] = name;
    }
    ct__free(rmw);
    return CT_OK;
fail:
    ct__free(rmw);
    return CT_ENOMEM;
}

/* Copies the current value of each read-modify-write blob into the
 * child before the subnet overwrites it. Bound blobs that hold no tensor
 * (not yet written) are skipped. */
static int save_inputs(ct_op_ctx_t *ctx, ct_workspace_t *child)
{
    const struct do_state *s = ctx->op->state;
    ct_status_t sub = {0};
    size_t k;
    int rc;

    for (k = 0; k < s->n_saved; k++) {
        const char *name = s->inner[s->saved[k]];
        const ct_tensor_t *src =
            ct_blob_get_tensor(ct_workspace_get_blob(child, name));
        ct_blob_t *b;
        ct_tensor_t *dst;
        if (src == NULL)
            continue;
        if ((rc = ct_workspace_create_local_blob(child, s->saved_name[k], &b,
                                                 &sub)) != CT_OK ||
            (rc = ct_blob_get_mutable_tensor(b, ctx->eng, &dst, &sub)) !=
                CT_OK ||
            (rc = ct_tensor_copy(dst, src, &sub)) != CT_OK)
            return ct_op_fail(ctx, rc, "saving %s for the gradient: %s", name,
                              sub.msg);
    }
    return CT_OK;
}

static bool dup_among(const ct_op_t *op, bool inputs, int n)
{
    int i, j;
    const char *(*name)(const ct_op_t *, int) =
        inputs ? ct_op_input_name : ct_op_output_name;

    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (strcmp(name(op, i), name(op, j)) == 0)
                return true;
    return false;
}

/* Checks 10 and 11 of spec §3.4 on the parsed bindings. */
static int check_bindings(ct_op_t *op, const int64_t *idx, ct_status_t *st)
{
    struct do_state *s = op->state;
    int n_in = op->n_in - 1, n_out = op->n_out - 1, n_outer = n_in + n_out;
    size_t i, j;
    int k;

    for (i = 0; i < s->n_bind; i++) {
        for (j = 0; j < i; j++)
            if (strcmp(s->inner[i], s->inner[j]) == 0)
                return ct_status_setf(
                    st, CT_EARG, "redefinition of inner blob %s", s->inner[i]);
        if (idx[i] < 0 || idx[i] >= n_outer)
            return ct_status_setf(st, CT_EARG,
                                  "outer blob index (%lld, inner name: %s) "
                                  "is out of bounds [0, %d]",
                                  (long long)idx[i], s->inner[i], n_outer - 1);
        s->outer[i] = idx[i] < n_in ? ct_op_input_name(op, (int)idx[i])
                                    : ct_op_output_name(op, (int)idx[i] - n_in);
        for (j = 0; j < i; j++)
            if (strcmp(s->outer[i], s->outer[j]) == 0)
                return ct_status_setf(st, CT_EARG, "Reusage of outer name: %s",
                                      s->outer[i]);
    }
    /* Every outer name (an in-place pair counts once) must be bound. */
    for (k = 0; k < n_outer; k++) {
        const char *name = k < n_in ? ct_op_input_name(op, k)
                                    : ct_op_output_name(op, k - n_in);
        for (i = 0; i < s->n_bind; i++)
            if (strcmp(name, s->outer[i]) == 0)
                break;
        if (i == s->n_bind)
            return ct_status_setf(st, CT_EARG,
                                  "Not all outer names are used in blob "
                                  "bindings: %s is not bound",
                                  name);
    }
    return CT_OK;
}

static int do_init(ct_op_t *op, ct_status_t *st)
{
    struct do_state *s = op->state;
    const Caffe2__Argument *a = ct__arg_find(op, "net");
    const ProtobufCBinaryData *inner = NULL;
    const int64_t *idx = NULL;
    size_t n_inner = 0, n_idx = 0, i;
    int64_t copy_ext = 0, reuse = 0;
    int rc;

    if (a == NULL || a->n == NULL)
        return ct_status_setf(st, CT_EARG,
                              "net must be specified in Do operator");
    s->net = a->n;
    s->is_gradient = op->def->has_is_gradient_op && op->def->is_gradient_op;
    rc = ct__arg_int(op, "copy_external_blobs", 0, &copy_ext, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "reuse_workspace", 0, &reuse, st);
    if (rc == CT_OK)
        rc = ct__arg_strings(op, "inner_blobs", &inner, &n_inner, st);
    if (rc == CT_OK)
        rc = ct__arg_ints(op, "outer_blobs_idx", &idx, &n_idx, st);
    if (rc != CT_OK)
        return rc;
    s->copy_external = copy_ext != 0;
    s->reuse = reuse != 0;
    if (s->is_gradient && s->reuse)
        return ct_status_setf(st, CT_EARG,
                              "Gradient Do op requires use of stacked "
                              "workspaces");
    if (s->copy_external && s->reuse)
        return ct_status_setf(st, CT_EARG,
                              "Reuse workspace and copy external blobs "
                              "simultaneously in Do op");
    if (n_inner != n_idx)
        return ct_status_setf(st, CT_EARG,
                              "Invalid blob bindings: different inner/outer "
                              "blobs lengths (%zu inner_blobs, %zu "
                              "outer_blobs_idx)",
                              n_inner, n_idx);
    if (op->n_in < 1)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected at least one input blob");
    if (dup_among(op, true, op->n_in - 1))
        return ct_status_setf(st, CT_ESCHEMA, "Duplicate input blobs");
    if (op->n_out < 1)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected at least one output blob");
    if (strcmp(ct_op_input_name(op, op->n_in - 1),
               ct_op_output_name(op, op->n_out - 1)) != 0)
        return ct_status_setf(st, CT_ESCHEMA,
                              "Expected same input/output workspace blob "
                              "(last input %s, last output %s)",
                              ct_op_input_name(op, op->n_in - 1),
                              ct_op_output_name(op, op->n_out - 1));
    if (dup_among(op, false, op->n_out - 1))
        return ct_status_setf(st, CT_ESCHEMA, "Duplicate output blobs");

    s->inner = ct__calloc(n_inner ? n_inner : 1, sizeof(char *));
    s->outer = ct__calloc(n_inner ? n_inner : 1, sizeof(char *));
    if (s->inner == NULL || s->outer == NULL)
        goto fail_alloc;
    for (i = 0; i < n_inner; i++) {
        s->inner[i] = ct__malloc(inner[i].len + 1);
        if (s->inner[i] == NULL)
            goto fail_alloc;
        memcpy(s->inner[i], inner[i].data, inner[i].len);
        s->inner[i][inner[i].len] = '\0';
        s->n_bind = i + 1;
    }
    s->n_bind = n_inner;
    rc = check_bindings(op, idx, st);
    if (rc == CT_OK && !s->is_gradient && init_saved(s) != CT_OK)
        goto fail_alloc;
    if (rc != CT_OK)
        do_fini(op);
    return rc;
fail_alloc:
    do_fini(op);
    return ct_status_setf(st, CT_ENOMEM, "out of memory for Do bindings");
}

static int do_run(ct_op_ctx_t *ctx)
{
    ct_op_t *op = ctx->op;
    struct do_state *s = op->state;
    const char *const *inner = (const char *const *)s->inner;
    ct_workspace_stack_t *stack;
    ct_workspace_t *child = NULL;
    ct_net_t *net;
    ct_status_t sub = {0};
    bool rebound = false;
    int rc;

    rc = ct_blob_get_mutable_workspace_stack(op->out[op->n_out - 1], &stack,
                                             ctx->status);
    if (rc != CT_OK)
        return rc;
    if (s->is_gradient)
        rc = ct_workspace_stack_pop_gradient(stack, op->ws, inner, s->outer,
                                             s->n_bind, &child, ctx->status);
    else if (s->reuse && !ct_workspace_stack_empty(stack))
        rc = ct_workspace_stack_reuse_last_forward(
            stack, op->ws, inner, s->outer, s->n_bind, &child, ctx->status);
    else
        rc = ct_workspace_stack_push_forward(stack, op->ws, inner, s->outer,
                                             s->n_bind, &child, &rebound,
                                             ctx->status);
    if (rc != CT_OK)
        return rc;
    if (child == NULL)
        return ct_op_fail(ctx, CT_ESTATE,
                          "Failed to initialize Do op workspace (scope %s "
                          "is empty)",
                          ct_op_output_name(op, op->n_out - 1));
    if (s->net->name == NULL || s->net->name[0] == '\0')
        return ct_op_fail(ctx, CT_EARG, "Net definition should have a name.");
    /* A gradient net is compiled afresh: the forward pushes may have
     * replaced the local copies its ops would point at. */
    net = rebound || s->is_gradient ? NULL
                                    : ct_workspace_get_net(child, s->net->name);
    if (net == NULL) {
        rc = ct_workspace_create_net(child, s->net, true, &net, &sub);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "creating subnet %s: %s", s->net->name,
                              sub.msg);
    }
    if (!s->is_gradient && (rc = save_inputs(ctx, child)) != CT_OK)
        return rc;
    rc = ct_net_run(net, &sub);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "subnet %s: %s", s->net->name, sub.msg);
    if (!s->is_gradient && s->copy_external) {
        rc = ct_workspace_copy_forwarded_tensors(child, inner, s->n_bind, &sub);
        if (rc != CT_OK)
            return ct_op_fail(ctx, rc, "%s", sub.msg);
    }
    return CT_OK;
}

/* ---- gradient maker ---- */

static const Caffe2__Argument *def_arg(const Caffe2__OperatorDef *def,
                                       const char *name)
{
    size_t i;

    for (i = 0; i < def->n_arg; i++)
        if (def->arg[i]->name != NULL && strcmp(def->arg[i]->name, name) == 0)
            return def->arg[i];
    return NULL;
}

/* A list of owned strings. */
struct strs {
    char **v;
    size_t n, cap;
};

static void strs_free(struct strs *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        ct__free(l->v[i]);
    ct__free(l->v);
    memset(l, 0, sizeof(*l));
}

static int strs_find(const struct strs *l, const char *s)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return (int)i;
    return -1;
}

/* Appends a copy of a[0..la) followed by b (may be NULL). */
static int strs_push_n(struct strs *l, const char *a, size_t la, const char *b)
{
    size_t lb = b != NULL ? strlen(b) : 0;
    char *c = ct__malloc(la + lb + 1);

    if (c == NULL ||
        ct__grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) != CT_OK) {
        ct__free(c);
        return CT_ENOMEM;
    }
    memcpy(c, a, la);
    if (lb > 0)
        memcpy(c + la, b, lb);
    c[la + lb] = '\0';
    l->v[l->n++] = c;
    return CT_OK;
}

static int strs_push(struct strs *l, const char *a, const char *b)
{
    return strs_push_n(l, a, strlen(a), b);
}

struct do_grad {
    const Caffe2__OperatorDef *def;
    const Caffe2__NetDef *net;
    bool copy_ext;
    int n_in, n_out;   /* outer slots, scope excluded */
    struct strs inner; /* forward inner names (NUL-terminated copies) */
    int *slot_bind;    /* per outer slot: index into inner */
    struct strs bind_in, bind_out; /* bindings of the gradient Do */
    struct strs g_in, g_out;       /* its outer inputs / outputs */
    struct strs pre_from, pre_to;  /* copies run before the gradient ops */
    struct strs saved;             /* saved_fwd_blobs */
};

static void do_grad_free(struct do_grad *d)
{
    ct__free(d->slot_bind);
    strs_free(&d->inner);
    strs_free(&d->bind_in);
    strs_free(&d->bind_out);
    strs_free(&d->g_in);
    strs_free(&d->g_out);
    strs_free(&d->pre_from);
    strs_free(&d->pre_to);
    strs_free(&d->saved);
}

static const char *slot_name(const struct do_grad *d, int j)
{
    return j < d->n_in ? d->def->input[j] : d->def->output[j - d->n_in];
}

/* Parses the forward op. A malformed Do is CT_EINVAL (the op itself would
 * not compile either). */
static int parse_fwd(struct do_grad *d, ct_status_t *st)
{
    const Caffe2__OperatorDef *def = d->def;
    const Caffe2__Argument *a = def_arg(def, "net"), *in, *idx, *r, *c;
    size_t i, n_bind;
    int j;

    if (a == NULL || a->n == NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "net must be specified in Do operator");
    d->net = a->n;
    r = def_arg(def, "reuse_workspace");
    if (r != NULL && r->has_i && r->i != 0)
        return ct_status_setf(st, CT_EINVAL,
                              "the gradient of a Do with reuse_workspace is "
                              "not supported (the gradient Do pops the "
                              "workspace a forward Do pushed)");
    c = def_arg(def, "copy_external_blobs");
    d->copy_ext = c != NULL && c->has_i && c->i != 0;
    if (def->n_input < 1 || def->n_output < 1 ||
        strcmp(def->input[def->n_input - 1], def->output[def->n_output - 1]) !=
            0)
        return ct_status_setf(st, CT_EINVAL,
                              "Expected same input/output workspace blob");
    d->n_in = (int)def->n_input - 1;
    d->n_out = (int)def->n_output - 1;
    in = def_arg(def, "inner_blobs");
    idx = def_arg(def, "outer_blobs_idx");
    n_bind = in != NULL ? in->n_strings : 0;
    if (n_bind != (idx != NULL ? idx->n_ints : 0))
        return ct_status_setf(st, CT_EINVAL,
                              "Invalid blob bindings: different inner/outer "
                              "blobs lengths");
    d->slot_bind = ct__calloc((size_t)(d->n_in + d->n_out) + 1, sizeof(int));
    if (d->slot_bind == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (j = 0; j < d->n_in + d->n_out; j++)
        d->slot_bind[j] = -1;
    for (i = 0; i < n_bind; i++) {
        int64_t k = idx->ints[i];
        if (k < 0 || k >= d->n_in + d->n_out)
            return ct_status_setf(st, CT_EINVAL,
                                  "outer blob index (%lld, binding %zu) is "
                                  "out of bounds [0, %d]",
                                  (long long)k, i, d->n_in + d->n_out - 1);
        if (strs_push_n(&d->inner, (const char *)in->strings[i].data,
                        in->strings[i].len, NULL) != CT_OK)
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        /* Every slot naming that outer blob (in-place pairs) maps to it. */
        for (j = 0; j < d->n_in + d->n_out; j++)
            if (strcmp(slot_name(d, j), slot_name(d, (int)k)) == 0)
                d->slot_bind[j] = (int)i;
    }
    for (j = 0; j < d->n_in + d->n_out; j++)
        if (d->slot_bind[j] < 0)
            return ct_status_setf(st, CT_EINVAL,
                                  "Not all outer names are used in blob "
                                  "bindings: %s is not bound",
                                  slot_name(d, j));
    return CT_OK;
}

static int bind(struct do_grad *d, const char *inner, const char *outer,
                bool output)
{
    struct strs *side = output ? &d->g_out : &d->g_in;

    if (strs_push(&d->bind_in, inner, NULL) != CT_OK ||
        strs_push(&d->bind_out, outer, NULL) != CT_OK)
        return CT_ENOMEM;
    if (strs_find(side, outer) < 0 && strs_push(side, outer, NULL) != CT_OK)
        return CT_ENOMEM;
    return CT_OK;
}

/* Seeds: the outer gradient of each output slot, bound as
 * <inner> DO_GRAD_OUT (once per outer gradient blob). */
static int make_seeds(struct ct__grad_ctx *g, struct do_grad *d,
                      struct ct__grad_seed *seeds, size_t *n_seeds,
                      struct strs *seed_names)
{
    int j, k;

    *n_seeds = 0;
    for (j = 0; j < d->n_out; j++) {
        const char *gy = ct__grad_out(g, j);
        const char *inner = d->inner.v[d->slot_bind[d->n_in + j]];
        if (gy == NULL)
            continue;
        k = strs_find(&d->bind_out, gy);
        if (k < 0) {
            if (strs_push(seed_names, inner, DO_GRAD_OUT) != CT_OK ||
                bind(d, seed_names->v[seed_names->n - 1], gy, false) != CT_OK)
                return CT_ENOMEM;
            k = (int)d->bind_in.n - 1;
        } else if (strs_push(seed_names, d->bind_in.v[k], NULL) != CT_OK) {
            return CT_ENOMEM;
        }
        seeds[*n_seeds].blob = inner;
        seeds[*n_seeds].grad = seed_names->v[seed_names->n - 1];
        (*n_seeds)++;
    }
    return CT_OK;
}

/* Exports: the gradient of each input slot's inner blob is copied to
 * <inner> DO_GRAD_IN, bound to the outer gradient blob of that input. */
static int make_exports(struct ct__grad_ctx *g, struct do_grad *d,
                        const struct ct__grad_sub *sub, Caffe2__NetDef *net,
                        ct_status_t *st)
{
    Caffe2__OperatorDef *op;
    struct strs tmp = {0};
    int i, k, rc = CT_OK;

    for (i = 0; rc == CT_OK && i < d->n_in; i++) {
        const char *inner = d->inner.v[d->slot_bind[i]];
        const char *gx = ct__grad_sub_find(sub, inner), *dst, *src;
        if (gx == NULL || strs_find(&tmp, inner) >= 0)
            continue;
        dst = ct__grad_in(g, i);
        if (strs_push(&tmp, inner, NULL) != CT_OK ||
            strs_push(&tmp, inner, DO_GRAD_IN) != CT_OK) {
            rc = CT_ENOMEM;
            break;
        }
        src = tmp.v[tmp.n - 1];
        k = strs_find(&d->bind_out, dst);
        if (k >= 0) {
            /* dst also brings a gradient in: read it through a copy made
             * before the gradient ops, and bind dst to the export. */
            if (strs_push(&d->pre_from, src, NULL) != CT_OK ||
                strs_push(&d->pre_to, d->bind_in.v[k], NULL) != CT_OK) {
                rc = CT_ENOMEM;
                break;
            }
            ct__free(d->bind_in.v[k]);
            d->bind_in.v[k] = NULL;
            if ((d->bind_in.v[k] = ct__strdup(src)) == NULL) {
                rc = CT_ENOMEM;
                break;
            }
            if (strs_find(&d->g_out, dst) < 0 &&
                strs_push(&d->g_out, dst, NULL) != CT_OK) {
                rc = CT_ENOMEM;
                break;
            }
        } else if (bind(d, src, dst, true) != CT_OK) {
            rc = CT_ENOMEM;
            break;
        }
        if ((rc = ct__grad_opdef_new("Copy", &gx, 1, &src, 1, &op, st)) !=
                CT_OK ||
            (rc = ct__grad_netdef_append(net, op, st)) != CT_OK)
            break;
    }
    strs_free(&tmp);
    return rc == CT_ENOMEM ? ct_status_setf(st, rc, "out of memory") : rc;
}

/* Forward values the gradient ops read: bound inner names get the
 * forward op's binding (and a freshness check of the outer value unless
 * copy_external_blobs keeps a local copy); others are the child's own. */
static int bind_reads(struct ct__grad_ctx *g, struct do_grad *d,
                      const Caffe2__NetDef *net)
{
    struct strs made = {0};
    size_t i, j;
    int rc = CT_OK;

    for (i = 0; rc == CT_OK && i < net->n_op; i++) {
        const Caffe2__OperatorDef *op = net->op[i];
        for (j = 0; rc == CT_OK && j < op->n_input; j++) {
            const char *n = op->input[j];
            int b = strs_find(&d->inner, n), slot;
            if (strs_find(&made, n) >= 0 || strs_find(&d->bind_in, n) >= 0 ||
                strs_find(&d->saved, n) >= 0 || strs_find(&d->pre_to, n) >= 0)
                continue;
            if (b < 0) {
                rc = strs_push(&d->saved, n, NULL);
                continue;
            }
            for (slot = d->n_in + d->n_out - 1; slot >= 0; slot--)
                if (d->slot_bind[slot] == b)
                    break;
            rc = bind(d, n, slot_name(d, slot), false);
            if (rc == CT_OK && !d->copy_ext) {
                if (slot >= d->n_in)
                    ct__grad_fwd_out(g, slot - d->n_in);
                else
                    ct__grad_fwd_in(g, slot);
            }
        }
        for (j = 0; rc == CT_OK && j < op->n_output; j++)
            if (strs_find(&made, op->output[j]) < 0)
                rc = strs_push(&made, op->output[j], NULL);
    }
    strs_free(&made);
    return rc;
}

static int emit_grad_do(struct ct__grad_ctx *g, struct do_grad *d,
                        Caffe2__NetDef *net, ct_status_t *st)
{
    const char *scope = d->def->output[d->def->n_output - 1];
    const char **in = NULL, **out = NULL;
    int64_t *idx = NULL;
    Caffe2__OperatorDef *op;
    size_t i;
    int rc = CT_ENOMEM, k;

    in = ct__calloc(d->g_in.n + 1, sizeof(*in));
    out = ct__calloc(d->g_out.n + 1, sizeof(*out));
    idx = ct__calloc(d->bind_in.n + 1, sizeof(*idx));
    if (in == NULL || out == NULL || idx == NULL) {
        ct_proto_free(&net->base);
        rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < d->g_in.n; i++)
        in[i] = d->g_in.v[i];
    in[d->g_in.n] = scope;
    for (i = 0; i < d->g_out.n; i++)
        out[i] = d->g_out.v[i];
    out[d->g_out.n] = scope;
    for (i = 0; i < d->bind_in.n; i++) {
        k = strs_find(&d->g_in, d->bind_out.v[i]);
        idx[i] = k >= 0 ? k
                        : (int64_t)d->g_in.n +
                              strs_find(&d->g_out, d->bind_out.v[i]);
    }
    rc = ct__grad_emit(g, "Do", in, (int)d->g_in.n + 1, out,
                       (int)d->g_out.n + 1, CT__GRAD_NO_ARGS, &op, st);
    if (rc != CT_OK) {
        ct_proto_free(&net->base);
        goto done;
    }
    if ((rc = ct__grad_op_set_net(op, "net", net, st)) != CT_OK ||
        (rc = ct__grad_op_set_strings(op, "inner_blobs",
                                      (const char *const *)d->bind_in.v,
                                      d->bind_in.n, st)) != CT_OK ||
        (rc = ct__grad_op_set_ints(op, "outer_blobs_idx", idx, d->bind_in.n,
                                   st)) != CT_OK ||
        (rc = ct__grad_op_set_strings(op, "saved_fwd_blobs",
                                      (const char *const *)d->saved.v,
                                      d->saved.n, st)) != CT_OK)
        goto done;
    rc = ct__grad_mark_state(g, scope, st);
done:
    ct__free(in);
    ct__free(out);
    ct__free(idx);
    return rc;
}

static int do_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    struct do_grad d;
    struct ct__grad_sub sub = {0};
    struct ct__grad_sub_cfg cfg;
    struct ct__grad_seed *seeds = NULL;
    struct strs seed_names = {0}, rmw = {0};
    Caffe2__NetDef *net = NULL;
    Caffe2__OperatorDef *op;
    bool *is_rmw = NULL;
    size_t n_seeds = 0, i;
    int rc;

    memset(&d, 0, sizeof(d));
    d.def = g->def;
    if ((rc = parse_fwd(&d, st)) != CT_OK)
        goto done;
    rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
    seeds = ct__calloc((size_t)d.n_out + 1, sizeof(*seeds));
    is_rmw = ct__calloc(d.inner.n + 1, sizeof(bool));
    if (seeds == NULL || is_rmw == NULL ||
        make_seeds(g, &d, seeds, &n_seeds, &seed_names) != CT_OK)
        goto done;
    find_rmw(d.net, (const char *const *)d.inner.v, d.inner.n, is_rmw);
    for (i = 0; i < d.inner.n; i++)
        if (is_rmw[i] && strs_push(&rmw, d.inner.v[i], NULL) != CT_OK)
            goto done;
    memset(&cfg, 0, sizeof(cfg));
    cfg.seeds = seeds;
    cfg.n_seeds = n_seeds;
    cfg.saved = (const char *const *)rmw.v;
    cfg.n_saved = rmw.n;
    cfg.saved_suffix = DO_SAVED_SUFFIX;
    if ((rc = ct__grad_subnet(NULL, d.net, &cfg, &sub, st)) != CT_OK)
        goto done;
    if (sub.n_ops == 0 && sub.n_grad == 0) {
        rc = CT_OK; /* nothing flows through the subnet */
        goto done;
    }
    {
        size_t len = strlen(d.net->name != NULL ? d.net->name : "do");
        char *name = ct__malloc(len + sizeof("_grad"));
        if (name == NULL)
            goto done;
        memcpy(name, d.net->name != NULL ? d.net->name : "do", len);
        memcpy(name + len, "_grad", sizeof("_grad"));
        rc = ct__grad_netdef_new(name, &net, st);
        ct__free(name);
        if (rc != CT_OK)
            goto done;
    }
    rc = make_exports(g, &d, &sub, net, st);
    /* Order: the copies of incoming gradients, the gradient ops, the
     * exports (appended above, moved to the end below). */
    if (rc == CT_OK) {
        Caffe2__OperatorDef **all;
        size_t n_exp = net->n_op, n_pre = d.pre_from.n, k = 0;
        all = ct__calloc(n_pre + sub.n_ops + n_exp + 1, sizeof(*all));
        if (all == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            goto done;
        }
        for (i = 0; i < n_pre; i++) {
            const char *f = d.pre_from.v[i], *t = d.pre_to.v[i];
            if ((rc = ct__grad_opdef_new("Copy", &f, 1, &t, 1, &op, st)) !=
                CT_OK) {
                while (k > 0)
                    ct_proto_free(&all[--k]->base);
                ct__free(all);
                goto done;
            }
            all[k++] = op;
        }
        for (i = 0; i < sub.n_ops; i++)
            all[k++] = sub.ops[i];
        for (i = 0; i < n_exp; i++)
            all[k++] = net->op[i];
        sub.n_ops = 0;
        ct__free(net->op);
        net->op = all;
        net->n_op = k;
    }
    if (rc == CT_OK && bind_reads(g, &d, net) != CT_OK)
        rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
    if (rc == CT_OK) {
        rc = emit_grad_do(g, &d, net, st);
        net = NULL; /* owned by the emitted op, or freed */
    }
done:
    if (net != NULL)
        ct_proto_free(&net->base);
    ct__grad_sub_release(&sub);
    strs_free(&seed_names);
    strs_free(&rmw);
    ct__free(seeds);
    ct__free(is_rmw);
    do_grad_free(&d);
    return rc;
}

static double do_cost(const ct_op_t *op, const ct_shape_t *in)
{
    const struct do_state *s = op->state;

    (void)in;
    /* Unknown until run; weigh by the subnet's size. */
    return s->net != NULL ? 1000.0 * (double)(s->net->n_op + 1) : 1000.0;
}

const struct ct_op_schema ct__op_do = {
    .name = "Do",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 1,
    .max_outputs = CT_INF,
    .inplace_cb = ct__inplace_any,
    .args = do_args,
    .state_size = sizeof(struct do_state),
    .init_cb = do_init,
    .fini_cb = do_fini,
    .run_cb = do_run,
    .cost_cb = do_cost,
    .grad_cb = do_grad_make,
    .flags = CT_OP_F_HAS_SUBNET,
    .doc = "runs a subnet in a child workspace of a scope blob's stack",
};
