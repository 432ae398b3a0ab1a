/* cortado: the engine object and its memory budget.
 *
 * The budget is a single atomic counter of live tensor bytes. A request is
 * charged with a CAS loop before malloc is called, so an absurd shape
 * fails with CT_ENOMEM without the process ever asking the OS for it.
 * The counter is shared by every thread allocating outputs; tensor
 * allocations happen once per op output per shape change, not per element,
 * so one contended cache line is an acceptable cost here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cortado/engine.h"
#include "cortado/stats.h"
#include "scheduler/profile.h"
#include "scheduler/sched.h"
#include "storage/checkpoint.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0)
        return (uint64_t)8 << 30;
    return (uint64_t)pages * (uint64_t)page;
}

void ct_engine_config_init(struct ct_engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem_budget_bytes = physical_memory() / 4 * 3;
    cfg->n_threads = 0;
    cfg->topology = NULL;
    cfg->intra_op = CT_INTRA_OP_POOL;
    cfg->verbose = 0;
}

int ct_engine_new(const struct ct_engine_config *cfg, ct_engine_t **out,
                  ct_status_t *st)
{
    ct_engine_t *eng;
    struct ct_engine_config c;

    *out = NULL;
    ct_engine_config_init(&c);
    if (cfg != NULL) {
        if (cfg->n_threads < 0 || cfg->n_threads > 4096)
            return ct_status_setf(st, CT_EINVAL,
                                  "engine: n_threads %d out of range "
                                  "[0, 4096]",
                                  cfg->n_threads);
        if (cfg->intra_op < 0 || cfg->intra_op >= CT_INTRA_OP_COUNT)
            return ct_status_setf(st, CT_EINVAL,
                                  "engine: unknown intra_op mode %d",
                                  cfg->intra_op);
        c = *cfg;
        if (c.mem_budget_bytes == 0)
            c.mem_budget_bytes = physical_memory() / 4 * 3;
    }
    if (c.n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.n_threads = n > 0 ? (int)n : 1;
    }
    eng = ct__calloc(1, sizeof(*eng));
    if (eng == NULL)
        goto fail_engine;
    if (c.topology == NULL)
        c.topology = getenv("CT_TOPOLOGY");
    if (c.topology != NULL) {
        eng->topology = ct__strdup(c.topology);
        if (eng->topology == NULL)
            goto fail_topology;
        c.topology = eng->topology;
    }
    if (ct_stat_registry_new(&eng->stats, NULL) != CT_OK)
        goto fail_stats;
    eng->cfg = c;
    atomic_init(&eng->mem_in_use, 0);
    atomic_init(&eng->mem_peak, 0);
    atomic_init(&eng->n_workspaces, 0);
    atomic_init(&eng->notices_printed, 0);
    atomic_init(&eng->ckpt, NULL);
    if (ct__obs_engine_new(&eng->obs) != CT_OK)
        goto fail_observers;
    if (ct__engine_sched_init(eng) != CT_OK)
        goto fail_sched;
    if (ct__engine_stats_init(eng, NULL) != CT_OK)
        goto fail_counters;
    *out = eng;
    return CT_OK;

fail_counters:
    ct__engine_sched_free(eng);
fail_sched:
    ct__obs_engine_free(eng->obs);
fail_observers:
    ct_stat_registry_free(eng->stats);
fail_stats:
    ct__free(eng->topology);
fail_topology:
    ct__free(eng);
fail_engine:
    return ct_status_setf(st, CT_ENOMEM, "engine: out of memory");
}

void ct_engine_free(ct_engine_t *eng)
{
    if (eng == NULL)
        return;
    CT_ASSERT(atomic_load_explicit(&eng->n_workspaces, memory_order_relaxed) ==
                  0,
              "ct_engine_free: %d workspaces still alive",
              atomic_load_explicit(&eng->n_workspaces, memory_order_relaxed));
    /* The checkpoint writer first: it waits for the saves still queued,
     * which read staged tensors charged to this engine and update its
     * stats. */
    ct__ckpt_writer_free(eng);
    /* Then the pool, before the other services: its workers may still be
     * parked, and nothing may run after the services they could touch
     * are gone. */
    ct__engine_sched_free(eng);
    ct__obs_engine_free(eng->obs);
    ct_stat_registry_free(eng->stats);
    ct__free(eng->topology);
    ct__free(eng);
}

uint64_t ct_engine_mem_in_use(const ct_engine_t *eng)
{
    return atomic_load_explicit(&((ct_engine_t *)eng)->mem_in_use,
                                memory_order_relaxed);
}

uint64_t ct_engine_mem_peak(const ct_engine_t *eng)
{
    return atomic_load_explicit(&((ct_engine_t *)eng)->mem_peak,
                                memory_order_relaxed);
}

uint64_t ct_engine_mem_budget(const ct_engine_t *eng)
{
    return eng->cfg.mem_budget_bytes;
}

const struct ct_engine_config *ct_engine_get_config(const ct_engine_t *eng)
{
    return &eng->cfg;
}

int ct__engine_alloc(ct_engine_t *eng, size_t nbytes, const char *what,
                     void **out, ct_status_t *st)
{
    uint64_t cur, next, peak;
    void *p;

    *out = NULL;
    /* relaxed: the counter guards no other memory; it only has to be
     * exact, which the CAS guarantees. */
    cur = atomic_load_explicit(&eng->mem_in_use, memory_order_relaxed);
    do {
        if ((uint64_t)nbytes > eng->cfg.mem_budget_bytes - cur ||
            cur > eng->cfg.mem_budget_bytes)
            return ct_status_setf(
                st, CT_ENOMEM,
                "%s: %zu bytes exceed the memory budget (%llu of %llu "
                "bytes in use)",
                what ? what : "allocation", nbytes, (unsigned long long)cur,
                (unsigned long long)eng->cfg.mem_budget_bytes);
        next = cur + nbytes;
    } while (!atomic_compare_exchange_weak_explicit(&eng->mem_in_use, &cur,
                                                    next, memory_order_relaxed,
                                                    memory_order_relaxed));

    p = ct__aligned_alloc(nbytes);
    if (p == NULL) {
        atomic_fetch_sub_explicit(&eng->mem_in_use, nbytes,
                                  memory_order_relaxed);
        return ct_status_setf(st, CT_ENOMEM, "%s: malloc of %zu bytes failed",
                              what ? what : "allocation", nbytes);
    }
    /* relaxed: the peak is a statistic. */
    peak = atomic_load_explicit(&eng->mem_peak, memory_order_relaxed);
    while (next > peak && !atomic_compare_exchange_weak_explicit(
                              &eng->mem_peak, &peak, next, memory_order_relaxed,
                              memory_order_relaxed))
        ;
    *out = p;
    return CT_OK;
}

void ct__engine_free(ct_engine_t *eng, void *p, size_t nbytes)
{
    if (p == NULL)
        return;
    ct__aligned_free(p, nbytes);
    atomic_fetch_sub_explicit(&eng->mem_in_use, nbytes, memory_order_relaxed);
}

void ct__engine_notice_once(ct_engine_t *eng, int id, const char *fmt, ...)
{
    int bit = 1 << (id & 31);
    va_list ap;

    if (id < 16 && !eng->cfg.verbose)
        return;
    /* relaxed: only decides which caller prints; no data is published. */
    if (atomic_fetch_or_explicit(&eng->notices_printed, bit,
                                 memory_order_relaxed) &
        bit)
        return;
    fputs("cortado: notice: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
