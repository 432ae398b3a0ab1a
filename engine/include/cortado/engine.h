/* cortado: the engine, the process-level context a user creates first.
 *
 * The engine owns every service the rest of the library uses: the tensor
 * allocator and its memory budget, and (in later modules) the thread pools,
 * the global stat registry and the checkpoint writer. There is no hidden
 * global state besides the allocator hooks of ct_set_allocator().
 * Thread-safety: an engine may be used from any number of threads at once;
 * ct_engine_free must not race with any other call on it.
 */
#ifndef CORTADO_ENGINE_H
#define CORTADO_ENGINE_H

#include "cortado/common.h"
#include "cortado/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_engine_s ct_engine_t;

/* How ops parallelise inside one kernel (see scheduler). */
enum ct_intra_op {
    CT_INTRA_OP_POOL = 0,   /* sub-tasks on the engine's pool (default) */
    CT_INTRA_OP_OPENMP = 1, /* OpenMP under the simple executor */
    CT_INTRA_OP_SERIAL = 2, /* no intra-op parallelism */
    CT_INTRA_OP_COUNT
};

/* Engine parameters. Zero-initialise, then set what you need;
 * ct_engine_config_init() fills the defaults. */
struct ct_engine_config {
    /* Largest number of bytes of tensor storage live at once, across every
     * workspace of this engine. An allocation that would pass it fails with
     * CT_ENOMEM before touching malloc. 0 = 3/4 of physical memory. */
    uint64_t mem_budget_bytes;
    /* Worker threads for parallel executors; 0 = one per core. */
    int n_threads;
    /* hwloc synthetic topology string, or NULL for the real machine. The
     * CT_TOPOLOGY environment variable is used when this is NULL. */
    const char *topology;
    /* enum ct_intra_op */
    int intra_op;
    /* Print notices (e.g. "engine CUDNN ignored on CPU") to stderr. */
    int verbose;
};

/* Fills cfg with the defaults. */
CT_API void ct_engine_config_init(struct ct_engine_config *cfg);

/* Creates an engine. cfg may be NULL for the defaults. On success *out is
 * owned by the caller (free with ct_engine_free). Errors: CT_ENOMEM,
 * CT_EINVAL (bad config field, named in st). */
CT_API int ct_engine_new(const struct ct_engine_config *cfg, ct_engine_t **out,
                         ct_status_t *st);
/* Frees the engine. Every workspace and net created on it must have been
 * freed first (asserted). NULL allowed. */
CT_API void ct_engine_free(ct_engine_t *eng);

/* Bytes of tensor storage currently allocated through this engine. */
CT_API uint64_t ct_engine_mem_in_use(const ct_engine_t *eng);
/* Highest value ct_engine_mem_in_use() has had. */
CT_API uint64_t ct_engine_mem_peak(const ct_engine_t *eng);
/* The memory budget in bytes. */
CT_API uint64_t ct_engine_mem_budget(const ct_engine_t *eng);
/* Refreshes the engine's gauges in its stat registry (ct_engine_stats):
 * cortado/mem/tensor_bytes and tensor_peak_bytes (the budget's figures),
 * cortado/mem/allocated_bytes (jemalloc's stats.allocated, when built with
 * jemalloc), and the pool's cortado/pool/tasks, steals, injected, parks
 * and parked_ns (when the pool exists). Call it before exporting. Errors:
 * CT_ENOMEM (registering a gauge). Thread-safe. */
CT_API int ct_engine_update_stats(ct_engine_t *eng, ct_status_t *st);
/* The configuration the engine runs with (defaults resolved). */
CT_API const struct ct_engine_config *
ct_engine_get_config(const ct_engine_t *eng);

/* Allocation hooks. Install before any other call (not thread-safe with
 * concurrent allocation). Tests use them for fault injection. Every
 * allocation of the library goes through them. `aligned` must return
 * memory aligned to `align` (a power of two) or NULL. NULL hooks restore
 * the defaults. */
struct ct_allocator {
    void *(*malloc_cb)(size_t size, void *ctx);
    void *(*realloc_cb)(void *p, size_t size, void *ctx);
    void (*free_cb)(void *p, void *ctx);
    void *(*aligned_cb)(size_t align, size_t size, void *ctx);
    void (*aligned_free_cb)(void *p, size_t size, void *ctx);
    void *ctx;
};
CT_API void ct_set_allocator(const struct ct_allocator *a);
/* Frees memory the API handed out (name lists, formatted text, packed
 * buffers). NULL allowed. */
CT_API void ct_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_ENGINE_H */
