/* cortado internal: the engine's scheduling services.
 *
 * The engine owns one topology and one work-stealing pool, created on
 * first use (the first parallel run or parallel_for) with the engine's
 * n_threads and topology, and freed with the engine. Creation is
 * serialised by the engine's scheduler mutex; afterwards the pointer is
 * read with acquire ordering and never changes, so the hot path takes no
 * lock.
 */
#ifndef CT_SCHEDULER_SCHED_H
#define CT_SCHEDULER_SCHED_H

#include "cortado/engine.h"
#include "cortado/error.h"

struct ct__pool;
struct ct__topology;

/* The engine's pool, created on first call. Errors: CT_EINVAL (bad
 * topology string, named), CT_ENOMEM (memory or threads); a failed
 * creation is retried by the next call. */
int ct__engine_pool(ct_engine_t *eng, struct ct__pool **out, ct_status_t *st);
/* The pool if it was created already, else NULL. Never blocks. */
struct ct__pool *ct__engine_pool_peek(const ct_engine_t *eng);
/* The engine's topology, created on first call (like the pool). */
int ct__engine_topology(ct_engine_t *eng, const struct ct__topology **out,
                        ct_status_t *st);
/* Frees the pool and topology; called by ct_engine_free. */
void ct__engine_sched_free(ct_engine_t *eng);
/* Creates the scheduler state of a new engine (the mutex). */
int ct__engine_sched_init(ct_engine_t *eng);

#endif /* CT_SCHEDULER_SCHED_H */
