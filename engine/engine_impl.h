/* cortado internal: the engine object. */
#ifndef CT_ENGINE_ENGINE_IMPL_H
#define CT_ENGINE_ENGINE_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cortado/engine.h"

struct ct__obs_engine;
struct ct__sched_state;
struct ct__ckpt_writer;

struct ct_engine_s {
    struct ct_engine_config cfg; /* defaults resolved; immutable */
    char *topology;              /* owned copy of cfg.topology */
    /* Bytes of tensor storage live. atomic, relaxed: a budget check may
     * race with a concurrent free and see a slightly stale figure, which
     * only makes the check conservative for an instant. */
    _Atomic uint64_t mem_in_use;
    _Atomic uint64_t mem_peak;   /* atomic, relaxed: statistics only */
    _Atomic int n_workspaces;    /* atomic, relaxed: asserted at free */
    _Atomic int notices_printed; /* bit set of one-time notices */
    /* Observer creators, file claims and net ids (observers/creator.c). */
    struct ct__obs_engine *obs;
    /* The global stat registry (ct_engine_stats); owned, set once. */
    struct ct_stat_registry_s *stats;
    /* Topology and pool, created on first use (scheduler/sched.c). */
    struct ct__sched_state *sched;
    /* The asynchronous checkpoint writer (storage/checkpoint.c), created
     * on first use by a CAS from NULL (acq_rel), then never changed until
     * ct_engine_free; NULL while no checkpoint call was made. */
    _Atomic(struct ct__ckpt_writer *) ckpt;
    /* Handles of the cortado/net and cortado/sched counters, registered
     * once with the engine (scheduler/profile.c) so compiling a net
     * allocates nothing in the registry. */
    uint32_t stat_handles[6];
};

/* Made by ct_engine_new, freed by ct_engine_free (observers/creator.c).
 * ct__obs_engine_new returns CT_OK or CT_ENOMEM. */
int ct__obs_engine_new(struct ct__obs_engine **out);
void ct__obs_engine_free(struct ct__obs_engine *oe);

/* Charges nbytes to the budget and allocates 64-byte aligned storage. On
 * CT_ENOMEM st says "<what>: <nbytes> bytes exceed the memory budget
 * (<in use> of <budget> in use)" or that malloc failed. `what` names the
 * request (e.g. `output 0 "Y" [2, 3] FLOAT`). */
int ct__engine_alloc(ct_engine_t *eng, size_t nbytes, const char *what,
                     void **out, ct_status_t *st);
void ct__engine_free(ct_engine_t *eng, void *p, size_t nbytes);

/* Prints a notice to stderr once per engine for each notice id (0..31),
 * when cfg.verbose or always for id >= 16. */
void ct__engine_notice_once(ct_engine_t *eng, int id, const char *fmt, ...)
    CT_PRINTF(3, 4);

enum ct__notice {
    CT_NOTICE_ENGINE_IGNORED = 16, /* op.engine like CUDNN ignored on CPU */
    CT_NOTICE_UNDECLARED_INPUT = 17,
    CT_NOTICE_DAG_SERIAL = 18,
    CT_NOTICE_DEVICE_IGNORED = 19,
    CT_NOTICE_BIND_SKIPPED = 20, /* worker pinning skipped (synthetic) */
};

#endif /* CT_ENGINE_ENGINE_IMPL_H */
