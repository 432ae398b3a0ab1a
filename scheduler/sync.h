/* cortado internal: mutex, condition variable and thread wrappers.
 *
 * Thin wrappers over pthreads that abort (through CT_ASSERT) on errors
 * that cannot happen in a correct program: EINVAL, EDEADLK, EPERM on
 * lock/unlock/join. Only initialisation and thread creation can fail for
 * real (ENOMEM, EAGAIN); those return CT_ENOMEM.
 *
 * Every mutex has a name and a rank (scheduler/lock_rank.h). Debug builds
 * (CT_DEBUG) use error-checking mutexes and keep a per-thread witness of
 * the mutexes held: acquiring a mutex whose rank is not strictly greater
 * than every rank held aborts with both names, before it can deadlock.
 *
 * Only scheduler/ creates threads (STYLE §5); everything else borrows
 * threads from a pool.
 */
#ifndef CT_SCHEDULER_SYNC_H
#define CT_SCHEDULER_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "scheduler/lock_rank.h"

struct ct__mutex {
    pthread_mutex_t mu;
    const char *name; /* static storage; for the witness's messages */
    enum ct_lock_rank rank;
};

struct ct__cond {
    pthread_cond_t cv; /* waits measure time with CLOCK_MONOTONIC */
};

/* A thread started by ct__thread_create. The struct is caller-owned and
 * must stay valid (and unmoved) until ct__thread_join returns. */
struct ct__thread {
    pthread_t tid;
    void (*main_cb)(void *arg);
    void *arg;
    char name[16]; /* kernel thread name (comm), at most 15 characters */
};

/* Initialises mu with a name (static storage) and a rank. Returns CT_OK or
 * CT_ENOMEM (mu is then unusable and must not be destroyed). */
int ct__mutex_init(struct ct__mutex *mu, const char *name,
                   enum ct_lock_rank rank);
/* Destroys an unlocked mutex. Aborts if it is still locked. */
void ct__mutex_destroy(struct ct__mutex *mu);
/* Locks mu, asserting the rank order in debug builds. */
void ct__mutex_lock(struct ct__mutex *mu);
/* Tries to lock mu; returns true when it did. Never blocks, so it skips the
 * rank-order check (it cannot deadlock), but records the lock as held. */
bool ct__mutex_trylock(struct ct__mutex *mu);
void ct__mutex_unlock(struct ct__mutex *mu);
/* Debug builds: aborts unless the calling thread holds mu. No-op otherwise. */
void ct__mutex_assert_held(const struct ct__mutex *mu);

/* Debug builds: aborts if the calling thread holds any ct__mutex; `where`
 * names the call site ("running a task"). STYLE §5: never hold a lock while
 * calling a kernel, an observer or a user callback. No-op otherwise. */
void ct__witness_assert_unlocked(const char *where);
/* Whether this build checks lock ranks (CT_DEBUG). For tests. */
bool ct__witness_enabled(void);

/* Initialises a condition variable on CLOCK_MONOTONIC. CT_OK or CT_ENOMEM. */
int ct__cond_init(struct ct__cond *cv);
void ct__cond_destroy(struct ct__cond *cv);
/* Waits on cv with mu held (mu stays recorded as held for the witness). */
void ct__cond_wait(struct ct__cond *cv, struct ct__mutex *mu);
/* Waits at most timeout_ns; returns false on timeout, true otherwise
 * (signalled or spurious: callers re-check their predicate). */
bool ct__cond_timedwait(struct ct__cond *cv, struct ct__mutex *mu,
                        uint64_t timeout_ns);
void ct__cond_signal(struct ct__cond *cv);
void ct__cond_broadcast(struct ct__cond *cv);

/* Starts a thread running main_cb(arg). `name` (may be NULL) becomes the
 * kernel thread name, truncated to 15 characters. Returns CT_OK, or
 * CT_ENOMEM when the system is out of threads or memory (thr unused). */
int ct__thread_create(struct ct__thread *thr, const char *name,
                      void (*main_cb)(void *arg), void *arg);
/* Joins a thread started by ct__thread_create. Aborts on misuse (joining
 * twice, joining oneself). */
void ct__thread_join(struct ct__thread *thr);

/* Monotonic clock in nanoseconds. */
uint64_t ct__now_ns(void);

#endif /* CT_SCHEDULER_SYNC_H */
