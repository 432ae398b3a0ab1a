/* cortado: per-net run profiling (see profile.h) and its public API. */
#include <stddef.h>
#include <string.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/net_impl.h"
#include "scheduler/profile.h"

int ct__profile_reserve(struct ct__profile *p, int n_slots)
{
    size_t bytes;
    struct ct__profile_slot *s;

    if (n_slots <= p->n_slots)
        return CT_OK;
    bytes = (size_t)n_slots * sizeof(*s);
    s = ct__aligned_alloc(bytes);
    if (s == NULL)
        return CT_ENOMEM;
    memset(s, 0, bytes);
    if (p->n_slots > 0)
        memcpy(s, p->slots, (size_t)p->n_slots * sizeof(*s));
    ct__aligned_free(p->slots, p->slots_bytes);
    p->slots = s;
    p->slots_bytes = bytes;
    p->n_slots = n_slots;
    return CT_OK;
}

static void profile_free(struct ct__profile *p)
{
    if (p == NULL)
        return;
    ct__aligned_free(p->slots, p->slots_bytes);
    ct__free(p->op_ns);
    ct__free(p);
}

void ct__net_profile_free(ct_net_t *net)
{
    profile_free(net->profile);
    net->profile = NULL;
}

int ct_net_set_profiling(ct_net_t *net, bool on, ct_status_t *st)
{
    struct ct__profile *p;
    bool expected = false;

    /* Claim the net like a run does, so the profile never changes under
     * a running executor. */
    if (!atomic_compare_exchange_strong_explicit(&net->running, &expected, true,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return ct_status_setf(st, CT_EBUSY,
                              "net %s: cannot change profiling while it "
                              "runs",
                              net->name);
    if (!on) {
        ct__net_profile_free(net);
    } else if (net->profile == NULL) {
        p = ct__calloc(1, sizeof(*p));
        if (p != NULL && net->n_ops > 0) {
            p->op_ns = ct__calloc((size_t)net->n_ops, sizeof(uint64_t));
            if (p->op_ns == NULL) {
                ct__free(p);
                p = NULL;
            }
        }
        if (p == NULL || ct__profile_reserve(p, 1) != CT_OK) {
            profile_free(p);
            atomic_store_explicit(&net->running, false, memory_order_release);
            return ct_status_setf(st, CT_ENOMEM,
                                  "net %s: out of memory for profiling",
                                  net->name);
        }
        p->n_ops = net->n_ops;
        net->profile = p;
    }
    atomic_store_explicit(&net->running, false, memory_order_release);
    return CT_OK;
}

int ct_net_get_profile(const ct_net_t *net, struct ct_net_profile *out,
                       ct_status_t *st)
{
    const struct ct__profile *p = net->profile;
    const struct ct__graph *g = &net->graph;
    uint64_t *finish;
    int i, k, s;

    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return ct_status_setf(st, CT_ESTATE,
                              "net %s: profiling is off "
                              "(ct_net_set_profiling)",
                              net->name);
    out->runs = p->runs;
    out->wall_ns = p->wall_ns;
    out->threads = p->threads;
    for (s = 0; s < p->n_slots; s++) {
        out->n_tasks += p->slots[s].n_tasks;
        out->ready_latency_ns += p->slots[s].ready_ns;
        out->kernel_ns += p->slots[s].kernel_ns;
        out->overhead_ns += p->slots[s].task_ns - p->slots[s].kernel_ns;
        out->intra_op_ns += p->slots[s].intra_ns;
        out->intra_op_wait_ns += p->slots[s].intra_wait_ns;
    }
    /* Critical path: longest path of summed op times through the op
     * graph. Op indices are a topological order (edges go from lower to
     * higher index), so one forward pass suffices. */
    if (net->n_ops > 0) {
        finish = ct__calloc((size_t)net->n_ops, sizeof(uint64_t));
        if (finish == NULL)
            return ct_status_setf(st, CT_ENOMEM,
                                  "net %s: out of memory for the profile",
                                  net->name);
        for (i = 0; i < net->n_ops; i++) {
            uint64_t start = 0;
            for (k = g->parent_off[i]; k < g->parent_off[i + 1]; k++)
                if (finish[g->parents[k]] > start)
                    start = finish[g->parents[k]];
            finish[i] = start + p->op_ns[i];
            if (finish[i] > out->critical_path_ns)
                out->critical_path_ns = finish[i];
        }
        ct__free(finish);
    }
    /* Work = kernel time on the running threads, less their waits for
     * ct_parallel_for helpers, plus the helpers' time. */
    if (out->wall_ns > 0 && out->threads > 0)
        out->parallel_efficiency =
            ((double)out->kernel_ns - (double)out->intra_op_wait_ns +
             (double)out->intra_op_ns) /
            ((double)out->wall_ns * out->threads);
    return CT_OK;
}

int ct__profile_threads(const ct_net_t *net, int participants)
{
    const ct_engine_t *eng = net->eng;
    int n = eng->cfg.n_threads;

    if (eng->cfg.intra_op == CT_INTRA_OP_SERIAL || n < participants)
        return participants;
    return n;
}

int ct_net_op_time_ns(const ct_net_t *net, int i, uint64_t *total_ns)
{
    if (net->profile == NULL || i < 0 || i >= net->n_ops)
        return CT_EINVAL;
    *total_ns = net->profile->op_ns[i];
    return CT_OK;
}

void ct__profile_totals(const struct ct__profile *p,
                        struct ct__profile_totals *out)
{
    int s;

    memset(out, 0, sizeof(*out));
    for (s = 0; s < p->n_slots; s++) {
        out->n_tasks += p->slots[s].n_tasks;
        out->ready_ns += p->slots[s].ready_ns;
        out->task_ns += p->slots[s].task_ns;
        out->kernel_ns += p->slots[s].kernel_ns;
    }
}

int ct__engine_stats_init(ct_engine_t *eng, ct_status_t *st)
{
    /* Same order as the net's stat_* fields (see net_impl.h). */
    static const char *const names[6] = {
        "cortado/net/runs",        "cortado/net/failures",
        "cortado/sched/tasks",     "cortado/sched/ready_latency_ns",
        "cortado/sched/kernel_ns", "cortado/sched/overhead_ns",
    };
    ct_stat_registry_t *reg = ct_engine_stats(eng);
    int k, rc;

    for (k = 0; k < 6; k++) {
        ct_stat_t h;
        rc = ct_stat_registry_add(reg, names[k], CT_STAT_COUNTER, &h, st);
        if (rc != CT_OK)
            return rc;
        eng->stat_handles[k] = h;
    }
    return CT_OK;
}

int ct__net_stats_init(ct_net_t *net, ct_status_t *st)
{
    const uint32_t *h = net->eng->stat_handles;

    (void)st;
    net->stat_runs = h[0];
    net->stat_failures = h[1];
    net->stat_tasks = h[2];
    net->stat_ready_ns = h[3];
    net->stat_kernel_ns = h[4];
    net->stat_overhead_ns = h[5];
    return CT_OK;
}

void ct__net_stats_run(ct_net_t *net, int rc)
{
    ct_stat_registry_t *reg = ct_engine_stats(net->eng);

    ct_stat_add(reg, net->stat_runs, 1);
    if (rc != CT_OK)
        ct_stat_add(reg, net->stat_failures, 1);
    else
        ct_stat_add(reg, net->stat_tasks,
                    net->executor == CT_EXECUTOR_SIMPLE ? net->n_ops
                                                        : net->graph.n_chains);
}

void ct__net_stats_profiled(ct_net_t *net,
                            const struct ct__profile_totals *before)
{
    ct_stat_registry_t *reg = ct_engine_stats(net->eng);
    struct ct__profile_totals after;

    ct__profile_totals(net->profile, &after);
    ct_stat_add(reg, net->stat_ready_ns,
                (int64_t)(after.ready_ns - before->ready_ns));
    ct_stat_add(reg, net->stat_kernel_ns,
                (int64_t)(after.kernel_ns - before->kernel_ns));
    ct_stat_add(reg, net->stat_overhead_ns,
                (int64_t)((after.task_ns - after.kernel_ns) -
                          (before->task_ns - before->kernel_ns)));
}
