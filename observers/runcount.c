/* cortado: the run-count observer, Caffe2's RunCountNetObserver.
 *
 * Spec: runcount[=FILE.json].
 * Counts runs of the net (at net end) and starts of its ops (at op start,
 * as Caffe2's RunCountOperatorObserver::Start does; the total is
 * cumulative over every op and run). Caffe2 kept one atomic counter that
 * every op incremented; here op i's counter is written only by op i's
 * start hook and the total is summed when read, so concurrent ops share
 * no cache line through this observer. With FILE, a flush writes
 * {"net": ..., "runs": R, "op_runs": N, "ops": [per-op counts]}.
 */
#include <stdio.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "observers/observer_impl.h"

struct runcount {
    struct ct__obs_base base;
    char *net_name; /* owned copy */
    int n_ops;
    uint64_t *op_runs; /* op i: written by op i's start hook only */
    uint64_t net_runs; /* written by net end */
};

static void runcount_free(void *ctx)
{
    struct runcount *r = ctx;

    if (r == NULL)
        return;
    ct__free(r->op_runs);
    ct__free(r->net_name);
    ct__free(r);
}

static int runcount_attach(void *ctx, const struct ct_observer_net *net,
                           ct_status_t *st)
{
    struct runcount *r = ctx;

    ct__free(r->op_runs);
    ct__free(r->net_name);
    r->n_ops = net->n_ops;
    r->op_runs = ct__calloc((size_t)net->n_ops + 1, sizeof(*r->op_runs));
    r->net_name = ct__strdup(net->name);
    if (r->op_runs == NULL || r->net_name == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    return CT_OK;
}

static int runcount_op_start(void *ctx, const struct ct_observer_event *ev,
                             ct_status_t *st)
{
    struct runcount *r = ctx;

    (void)st;
    r->op_runs[ev->op->idx]++;
    return CT_OK;
}

static int runcount_net_end(void *ctx, const struct ct_observer_event *ev,
                            ct_status_t *st)
{
    struct runcount *r = ctx;

    (void)ev;
    (void)st;
    r->net_runs++;
    return CT_OK;
}

static uint64_t total(const struct runcount *r)
{
    uint64_t n = 0;
    int i;

    for (i = 0; i < r->n_ops; i++)
        n += r->op_runs[i];
    return n;
}

static int runcount_flush(void *ctx, ct_status_t *st)
{
    struct runcount *r = ctx;
    struct ct__obs_buf b = {NULL, 0, 0, false};
    int i, rc;

    if (r->base.obs->file == NULL)
        return CT_OK;
    ct__obs_buf_printf(&b, "{\"net\": ");
    ct__obs_buf_json_str(&b, r->net_name);
    ct__obs_buf_printf(&b, ", \"runs\": %llu, \"op_runs\": %llu, \"ops\": [",
                       (unsigned long long)r->net_runs,
                       (unsigned long long)total(r));
    for (i = 0; i < r->n_ops; i++)
        ct__obs_buf_printf(&b, "%s%llu", i ? ", " : "",
                           (unsigned long long)r->op_runs[i]);
    ct__obs_buf_printf(&b, "]}\n");
    rc = ct__obs_buf_write(&b, r->base.obs->file, st);
    ct__obs_buf_free(&b);
    return rc;
}

static int runcount_new(const struct ct__obs_spec *sp, void **out,
                        ct_status_t *st)
{
    (void)sp;
    *out = ct__calloc(1, sizeof(struct runcount));
    if (*out == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "observer runcount: out of memory");
    return CT_OK;
}

static void runcount_describe(const ct_observer_t *obs, struct ct__obs_buf *b)
{
    const struct runcount *r = obs->ctx;

    /* Caffe2's debugInfo text, then the net runs. */
    ct__obs_buf_printf(b,
                       "runcount: net %s: This operator runs %llu times. "
                       "(%llu net runs)%s%s\n",
                       r->net_name, (unsigned long long)total(r),
                       (unsigned long long)r->net_runs,
                       obs->file != NULL ? " -> " : "",
                       obs->file != NULL ? obs->file : "");
}

static const struct ct_observer_cbs runcount_cbs = {
    .name = "runcount",
    .attach_cb = runcount_attach,
    .op_start_cb = runcount_op_start,
    .net_end_cb = runcount_net_end,
    .flush_cb = runcount_flush,
    .free_cb = runcount_free,
};

const struct ct__obs_kind ct__obs_kind_runcount = {
    "runcount", NULL, 1, &runcount_cbs, runcount_new, runcount_describe,
};

int ct_runcount_observer_get(const ct_observer_t *obs, uint64_t *net_runs,
                             uint64_t *op_runs, ct_status_t *st)
{
    const struct runcount *r = ct__obs_kind_ctx(obs, &ct__obs_kind_runcount,
                                                "ct_runcount_observer_get", st);

    CT_ASSERT(net_runs != NULL && op_runs != NULL,
              "ct_runcount_observer_get: NULL argument");
    *net_runs = *op_runs = 0;
    if (r == NULL)
        return CT_EINVAL;
    if (r->op_runs != NULL) {
        *net_runs = r->net_runs;
        *op_runs = total(r);
    }
    return CT_OK;
}
