/* cortado: nets, compiled Caffe2 NetDefs.
 *
 * Design note. ct_net_new does, in order (each step fails cleanly, the
 * ones before it are undone in reverse):
 *   1. configuration checks, then the executor from the NetDef type
 *      string (spec §6.1's aliases; unknown types are an error here, not
 *      Caffe2's silent NULL) unless cfg overrides it;
 *   2. the validation walk of spec §6.1 (engine/graph.c), before any op
 *      or blob is touched;
 *   3. the worker count: cfg, the NetDef field, an Argument "num_workers"
 *      (Caffe2 ignores the argument, spec §9.13; DESIGN §4 asks for it),
 *      or the engine's n_threads;
 *   4. a deep copy of the NetDef (ops borrow their OperatorDefs from it,
 *      so the caller may free its def right away);
 *   5. one op per OperatorDef, in order, with the net's DeviceOption
 *      merged in (errors prefixed `op <i> "<name>" (<Type>): `);
 *   6. the dependency graph and chains (engine/graph.c), per-node status
 *      slots, and the executor's own preparation;
 *   7. the net's id and the observers of the engine's creators
 *      (observers/observer.c), so subnets get them too;
 *   8. op fusion (engine/fuse.c: Conv + inference SpatialBN) unless
 *      cfg->no_fuse or CT_NO_FUSE=1.
 * A run claims the net's `running` flag (CT_EBUSY for a second concurrent
 * run of the same net), calls the observers' net start hook, hands the
 * net to the executor (which calls the op hooks, observers/observer_impl.h)
 * and calls net end before releasing the flag. Op failures come back as
 * `node <i> "<name>" (<Type>): <message>`.
 * Caffe2's `simple_refcount` (free intermediate blobs after their last
 * reader) maps to the plain simple executor: blobs are kept.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/fuse.h"
#include "engine/graph.h"
#include "engine/net_impl.h"
#include "scheduler/profile.h"
#include "engine/op_internal.h"
#include "observers/observer_impl.h"
#include "scheduler/executor.h"

/* Largest worker count accepted from any source (the engine's own
 * n_threads limit). */
#define MAX_WORKERS 4096

/* ---- executors and net types ---- */

static const struct {
    const char *type;
    enum ct_executor executor;
} net_types[] = {
    /* Registered in the final Caffe2 tree. */
    {"simple", CT_EXECUTOR_SIMPLE},
    {"simple_refcount", CT_EXECUTOR_SIMPLE},
    {"async_scheduling", CT_EXECUTOR_DAG},
    {"parallel", CT_EXECUTOR_DAG},
    /* Historical types, aliased by Caffe2's override table. */
    {"dag", CT_EXECUTOR_DAG},
    {"prof_dag", CT_EXECUTOR_DAG},
    {"async_dag", CT_EXECUTOR_DAG},
    {"async_polling", CT_EXECUTOR_DAG},
    {"async_simple", CT_EXECUTOR_SIMPLE},
    {"rnn", CT_EXECUTOR_SIMPLE},
};

static const struct ct__executor *const executors[CT_EXECUTOR_COUNT] = {
    [CT_EXECUTOR_SIMPLE] = &ct__exec_simple,
    [CT_EXECUTOR_DAG] = &ct__exec_dag,
};

int ct_executor_from_net_type(const char *type, enum ct_executor *out,
                              ct_status_t *st)
{
    size_t k;

    if (type == NULL || type[0] == '\0') {
        *out = CT_EXECUTOR_SIMPLE;
        return CT_OK;
    }
    for (k = 0; k < sizeof(net_types) / sizeof(net_types[0]); k++) {
        if (strcmp(type, net_types[k].type) == 0) {
            *out = net_types[k].executor;
            return CT_OK;
        }
    }
    return ct_status_setf(st, CT_EINVAL, "unknown net type \"%s\"", type);
}

const char *ct_executor_name(enum ct_executor e)
{
    switch (e) {
    case CT_EXECUTOR_SIMPLE:
        return "simple";
    case CT_EXECUTOR_DAG:
        return "dag";
    case CT_EXECUTOR_COUNT:
        break;
    }
    return "unknown";
}

/* ---- helpers ---- */

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void set_node(ct_status_t *st, int i, const char *type)
{
    if (st == NULL)
        return;
    st->node = i;
    snprintf(st->op, sizeof(st->op), "%s", type);
}

/* Worker count from cfg, the NetDef field, the "num_workers" argument,
 * else the engine's n_threads. 0 from any source means "not set". */
static int resolve_workers(const Caffe2__NetDef *def, int cfg_workers,
                           ct_engine_t *eng, int *out, ct_status_t *st)
{
    const char *name = str_or_empty(def->name);
    int64_t v = 0;
    int rc;

    if (cfg_workers > 0) {
        *out = cfg_workers;
        return CT_OK;
    }
    if (def->has_num_workers && def->num_workers != 0) {
        if (def->num_workers < 0 || def->num_workers > MAX_WORKERS)
            return ct_status_setf(st, CT_EINVAL,
                                  "net %s: num_workers %d outside [0, %d]",
                                  name, (int)def->num_workers, MAX_WORKERS);
        *out = def->num_workers;
        return CT_OK;
    }
    rc = ct__argv_int(def->arg, def->n_arg, "num_workers", 0, &v, st);
    if (rc != CT_OK) {
        ct_status_prefix(st, "net %s: ", name);
        return rc;
    }
    if (v < 0 || v > MAX_WORKERS)
        return ct_status_setf(st, CT_EINVAL,
                              "net %s: argument num_workers %lld outside "
                              "[0, %d]",
                              name, (long long)v, MAX_WORKERS);
    if (v > 0) {
        *out = (int)v;
        return CT_OK;
    }
    *out = ct_engine_get_config(eng)->n_threads;
    if (*out < 1)
        *out = 1;
    return CT_OK;
}

void ct__net_op_ctx(ct_net_t *net, int i, ct_op_ctx_t *ctx)
{
    ct_op_t *op = net->ops[i];

    ctx->op = op;
    ctx->eng = net->eng;
    ctx->ith = 0;
    ctx->nth = 1;
    ctx->numa_node = op->numa_node;
    ctx->status = &net->node_status[i];
    ctx->sched = NULL;
    ctx->pf_times = NULL;
}

int ct__net_fail_node(const ct_net_t *net, int i, const ct_status_t *node_st,
                      ct_status_t *st)
{
    const Caffe2__OperatorDef *d = net->def->op[i];
    int code = node_st->code != CT_OK ? node_st->code : CT_EINTERNAL;

    if (st == NULL)
        return code;
    ct_status_setf(st, code, "node %d \"%s\" (%s): %s", i,
                   str_or_empty(d->name), str_or_empty(d->type),
                   node_st->code != CT_OK ? node_st->msg
                                          : "failed without a status");
    set_node(st, i, str_or_empty(d->type));
    return code;
}

static void destroy_ops(ct_net_t *net, int n)
{
    while (n-- > 0)
        ct__op_destroy(net->ops[n]);
    ct__free(net->ops);
    net->ops = NULL;
}

/* ---- lifecycle ---- */

int ct_net_new(ct_workspace_t *ws, const ct_netdef_t *def,
               const struct ct_net_config *cfg, ct_net_t **out, ct_status_t *st)
{
    static const struct ct_net_config no_cfg = {
        CT_NET_EXECUTOR_FROM_DEF, 0, NULL, 0, false, NULL, 0};
    ct_engine_t *eng;
    ct_net_t *net;
    enum ct_executor exec = CT_EXECUTOR_SIMPLE;
    int rc, i, n_created = 0, workers = 0;

    CT_ASSERT(ws != NULL && def != NULL && out != NULL,
              "ct_net_new: NULL argument");
    *out = NULL;
    if (cfg == NULL)
        cfg = &no_cfg;
    eng = ct_workspace_engine(ws);
    if (cfg->executor < CT_NET_EXECUTOR_FROM_DEF ||
        cfg->executor >= CT_EXECUTOR_COUNT)
        return ct_status_setf(st, CT_EINVAL,
                              "net %s: executor override %d is not an "
                              "enum ct_executor value",
                              str_or_empty(def->name), cfg->executor);
    if (cfg->num_workers < 0 || cfg->num_workers > MAX_WORKERS)
        return ct_status_setf(
            st, CT_EINVAL, "net %s: num_workers %d outside [0, %d]",
            str_or_empty(def->name), cfg->num_workers, MAX_WORKERS);
    CT_ASSERT(cfg->n_extra_inputs == 0 || cfg->extra_inputs != NULL,
              "ct_net_new: n_extra_inputs without extra_inputs");
    if (def->n_op > (size_t)INT32_MAX / 8)
        return ct_status_setf(st, CT_EINVAL, "net %s: %zu ops are too many",
                              str_or_empty(def->name), def->n_op);

    if (cfg->executor != CT_NET_EXECUTOR_FROM_DEF) {
        exec = (enum ct_executor)cfg->executor;
    } else {
        rc = ct_executor_from_net_type(def->type, &exec, st);
        if (rc != CT_OK)
            return rc;
    }
    rc = ct__netdef_validate(def, cfg->extra_inputs, cfg->n_extra_inputs, eng,
                             st);
    if (rc != CT_OK)
        return rc;
    rc = resolve_workers(def, cfg->num_workers, eng, &workers, st);
    if (rc != CT_OK)
        return rc;

    net = ct__calloc(1, sizeof(*net));
    if (net == NULL)
        return ct_status_setf(st, CT_ENOMEM, "net %s: out of memory",
                              str_or_empty(def->name));
    net->eng = eng;
    net->ws = ws;
    net->executor = exec;
    net->exec = executors[exec];
    net->num_workers = workers;
    net->n_ops = (int)def->n_op;
    atomic_init(&net->running, false);
    rc = ct_proto_copy(&def->base, (ProtobufCMessage **)&net->def, st);
    if (rc != CT_OK)
        goto fail_copy;
    net->name = str_or_empty(net->def->name);

    net->ops = ct__calloc((size_t)net->n_ops, sizeof(*net->ops));
    if (net->ops == NULL)
        goto fail_ops_array;
    for (i = 0; i < net->n_ops; i++) {
        const Caffe2__OperatorDef *d = net->def->op[i];
        rc = ct__op_create_ex(ws, d, net->def->device_option, i, &net->ops[i],
                              st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "op %d \"%s\" (%s): ", i,
                             str_or_empty(d->name), str_or_empty(d->type));
            set_node(st, i, str_or_empty(d->type));
            goto fail_ops;
        }
        n_created++;
    }
    rc = ct__graph_init(&net->graph, net->def, st);
    if (rc != CT_OK) {
        ct_status_prefix(st, "net %s: ", net->name);
        goto fail_graph;
    }
    net->node_status =
        ct__calloc((size_t)net->n_ops + 1, sizeof(*net->node_status));
    if (net->node_status == NULL)
        goto fail_status;
    for (i = 0; i < net->n_ops; i++)
        ct_status_clear(&net->node_status[i]);
    rc = ct__net_stats_init(net, st);
    if (rc != CT_OK)
        goto fail_prepare;
    if (net->exec->prepare_cb != NULL) {
        rc = net->exec->prepare_cb(net, &net->exec_state, st);
        if (rc != CT_OK)
            goto fail_prepare;
    }
    rc = ct__obs_net_init(net, st);
    if (rc != CT_OK)
        goto fail_observers;
    /* Conv + SpatialBN fusion (engine/fuse.h); never fails. */
    /* Not in subnets: a Do's child workspace or an If/While branch may
     * leave blobs for the parent net that its NetDef does not declare. */
    if (!cfg->no_fuse && !ct__workspace_has_parent(ws))
        (void)ct__net_fuse(net, cfg);
    *out = net;
    return CT_OK;

fail_observers:
    if (net->exec->release_cb != NULL)
        net->exec->release_cb(net, net->exec_state);
    goto fail_prepare;

fail_status:
    rc = ct_status_setf(st, CT_ENOMEM, "net %s: out of memory", net->name);
fail_prepare:
    ct__free(net->node_status);
    ct__graph_destroy(&net->graph);
fail_graph:
fail_ops:
    destroy_ops(net, n_created);
    goto fail_copied;
fail_ops_array:
    rc = ct_status_setf(st, CT_ENOMEM, "net %s: out of memory", net->name);
fail_copied:
    ct_proto_free(&net->def->base);
fail_copy:
    ct__free(net);
    return rc;
}

void ct_net_free(ct_net_t *net)
{
    if (net == NULL)
        return;
    CT_ASSERT(!atomic_load_explicit(&net->running, memory_order_acquire),
              "ct_net_free: net \"%s\" is running", net->name);
    ct__obs_net_destroy(net);
    ct__net_profile_free(net);
    if (net->exec->release_cb != NULL)
        net->exec->release_cb(net, net->exec_state);
    destroy_ops(net, net->n_ops);
    ct__graph_destroy(&net->graph);
    ct__free(net->node_status);
    ct_proto_free(&net->def->base);
    if (CT_DEBUG)
        memset(net, 0xdb, sizeof(*net));
    ct__free(net);
}

int ct_net_run(ct_net_t *net, ct_status_t *st)
{
    bool idle = false;
    int rc;

    CT_ASSERT(net != NULL, "ct_net_run: NULL net");
    if (!atomic_compare_exchange_strong_explicit(&net->running, &idle, true,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return ct_status_setf(st, CT_EBUSY,
                              "net %s is already running (one run at a "
                              "time per net)",
                              net->name);
    rc = ct__obs_net_start(net, st);
    if (rc == CT_OK) {
        if (CT_UNLIKELY(net->profile != NULL)) {
            struct ct__profile_totals before;
            uint64_t t0 = ct__profile_now();
            ct__profile_totals(net->profile, &before);
            rc = net->exec->run_cb(net, net->exec_state, st);
            net->profile->wall_ns += ct__profile_now() - t0;
            net->profile->runs++;
            ct__net_stats_profiled(net, &before);
        } else {
            rc = net->exec->run_cb(net, net->exec_state, st);
        }
        ct__net_stats_run(net, rc);
        rc = ct__obs_net_end(net, rc, st);
    }
    atomic_store_explicit(&net->running, false, memory_order_release);
    return rc;
}

/* ---- queries ---- */

#define CHECK_OP(net, i)                                                       \
    CT_ASSERT((i) >= 0 && (i) < (net)->n_ops, "op %d of a %d-op net", (i),     \
              (net)->n_ops)
#define CHECK_CHAIN(net, c)                                                    \
    CT_ASSERT((c) >= 0 && (c) < (net)->graph.n_chains,                         \
              "chain %d of a net with %d chains", (c), (net)->graph.n_chains)

const char *ct_net_name(const ct_net_t *net)
{
    return net->name;
}
enum ct_executor ct_net_executor(const ct_net_t *net)
{
    return net->executor;
}
int ct_net_num_workers(const ct_net_t *net)
{
    return net->num_workers;
}
int ct_net_n_ops(const ct_net_t *net)
{
    return net->n_ops;
}
const ct_netdef_t *ct_net_def(const ct_net_t *net)
{
    return net->def;
}
int ct_net_n_chains(const ct_net_t *net)
{
    return net->graph.n_chains;
}

const char *ct_net_op_type(const ct_net_t *net, int i)
{
    CHECK_OP(net, i);
    return str_or_empty(net->def->op[i]->type);
}

const char *ct_net_op_name(const ct_net_t *net, int i)
{
    CHECK_OP(net, i);
    return str_or_empty(net->def->op[i]->name);
}

static int csr(const int *off, const int *idx, int i, const int **out)
{
    *out = idx + off[i];
    return off[i + 1] - off[i];
}

int ct_net_op_parents(const ct_net_t *net, int i, const int **idx)
{
    CHECK_OP(net, i);
    return csr(net->graph.parent_off, net->graph.parents, i, idx);
}

int ct_net_op_children(const ct_net_t *net, int i, const int **idx)
{
    CHECK_OP(net, i);
    return csr(net->graph.child_off, net->graph.children, i, idx);
}

int ct_net_chain_ops(const ct_net_t *net, int c, const int **ops)
{
    CHECK_CHAIN(net, c);
    return csr(net->graph.chain_off, net->graph.chain_ops, c, ops);
}

int ct_net_chain_parents(const ct_net_t *net, int c, const int **idx)
{
    CHECK_CHAIN(net, c);
    return csr(net->graph.chain_parent_off, net->graph.chain_parents, c, idx);
}

int ct_net_chain_children(const ct_net_t *net, int c, const int **idx)
{
    CHECK_CHAIN(net, c);
    return csr(net->graph.chain_child_off, net->graph.chain_children, c, idx);
}

/* ---- describe ---- */

/* Growing text buffer; after an allocation failure every append is a
 * no-op and `oom` stays set. */
struct text {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void text_add(struct text *t, const char *fmt, ...) CT_PRINTF(2, 3);

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->oom)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ct__grow((void **)&t->buf, &t->cap, t->len + (size_t)n + 1,
                          1) != CT_OK) {
        t->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_list(struct text *t, const int *v, int n)
{
    int k;

    text_add(t, "[");
    for (k = 0; k < n; k++)
        text_add(t, "%s%d", k ? ", " : "", v[k]);
    text_add(t, "]");
}

static void add_names(struct text *t, const char *what, char *const *v,
                      size_t n)
{
    size_t k;

    text_add(t, "%s (%zu):", what, n);
    for (k = 0; k < n; k++)
        text_add(t, "%s%s", k ? ", " : " ", v[k]);
    text_add(t, "\n");
}

int ct_net_describe(const ct_net_t *net, char **out, ct_status_t *st)
{
    struct text t = {NULL, 0, 0, false};
    const char **types;
    const int *v;
    int i, j, c, n;

    CT_ASSERT(net != NULL && out != NULL, "ct_net_describe: NULL argument");
    *out = NULL;
    types = ct__calloc((size_t)net->n_ops + 1, sizeof(*types));
    if (types == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "net %s: out of memory describing the net",
                              net->name);
    for (i = 0; i < net->n_ops; i++)
        types[i] = ct_net_op_type(net, i);
    if (net->n_ops > 1)
        qsort((void *)types, (size_t)net->n_ops, sizeof(*types), cmp_str);

    text_add(&t, "net \"%s\": %d ops, executor %s (type \"%s\"), %d workers\n",
             net->name, net->n_ops, ct_executor_name(net->executor),
             str_or_empty(net->def->type), net->num_workers);
    text_add(&t, "ops by type:\n");
    for (i = 0; i < net->n_ops; i = j) {
        for (j = i + 1; j < net->n_ops && strcmp(types[i], types[j]) == 0;)
            j++;
        text_add(&t, "  %s: %d\n", types[i], j - i);
    }
    ct__free((void *)types);
    add_names(&t, "external inputs", net->def->external_input,
              net->def->n_external_input);
    add_names(&t, "external outputs", net->def->external_output,
              net->def->n_external_output);
    text_add(&t, "chains: %d\n", net->graph.n_chains);
    for (c = 0; c < net->graph.n_chains; c++) {
        text_add(&t, "  chain %d: ops ", c);
        n = ct_net_chain_ops(net, c, &v);
        add_list(&t, v, n);
        n = ct_net_chain_parents(net, c, &v);
        if (n > 0) {
            text_add(&t, ", after chains ");
            add_list(&t, v, n);
        }
        text_add(&t, "\n");
    }
    if (t.oom || t.buf == NULL) {
        ct__free(t.buf);
        return ct_status_setf(st, CT_ENOMEM,
                              "net %s: out of memory describing the net",
                              net->name);
    }
    *out = t.buf;
    return CT_OK;
}
