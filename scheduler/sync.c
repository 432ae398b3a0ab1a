/* cortado: pthread wrappers and the lock-rank witness.
 *
 * Witness: each thread keeps the stack of ct__mutex it holds (at most
 * WITNESS_MAX, which is far more than any code path should need). In debug
 * builds, ct__mutex_lock walks the stack and aborts when a held mutex has
 * a rank >= the new one, naming both. The check runs before the real
 * pthread lock, so a rank inversion is reported even on runs where the
 * inverse acquisition order never happens to collide. Unlocks may happen
 * in any order. The stack is thread-local, so the witness needs no lock.
 * Release builds keep the code compiled but skip it (CT_DEBUG is 0).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "cortado/error.h"
#include "scheduler/sync.h"

#define WITNESS_MAX 16

/* Owned by the thread itself: the mutexes it holds, in acquisition order. */
static _Thread_local const struct ct__mutex *witness_held[WITNESS_MAX];
static _Thread_local int witness_n_held;

static void witness_lock(const struct ct__mutex *mu, bool check_order)
{
    int i;

    if (!CT_DEBUG)
        return;
    for (i = 0; check_order && i < witness_n_held; i++) {
        const struct ct__mutex *h = witness_held[i];
        CT_ASSERT(h != mu,
                  "lock order: mutex \"%s\" locked twice by one "
                  "thread",
                  mu->name);
        CT_ASSERT(h->rank < mu->rank,
                  "lock order: acquiring \"%s\" (rank %d) while holding "
                  "\"%s\" (rank %d); ranks must increase",
                  mu->name, (int)mu->rank, h->name, (int)h->rank);
    }
    CT_ASSERT(witness_n_held < WITNESS_MAX,
              "lock order: more than %d mutexes held at once (acquiring "
              "\"%s\")",
              WITNESS_MAX, mu->name);
    witness_held[witness_n_held++] = mu;
}

static void witness_unlock(const struct ct__mutex *mu)
{
    int i;

    if (!CT_DEBUG)
        return;
    for (i = witness_n_held - 1; i >= 0; i--) {
        if (witness_held[i] == mu) {
            memmove(&witness_held[i], &witness_held[i + 1],
                    (size_t)(witness_n_held - i - 1) * sizeof(witness_held[0]));
            witness_n_held--;
            return;
        }
    }
    CT_ASSERT(0, "unlocking mutex \"%s\" that this thread does not hold",
              mu->name);
}

bool ct__witness_enabled(void)
{
    return CT_DEBUG != 0;
}

void ct__witness_assert_unlocked(const char *where)
{
    if (!CT_DEBUG)
        return;
    CT_ASSERT(witness_n_held == 0, "%s while holding mutex \"%s\"", where,
              witness_n_held > 0 ? witness_held[0]->name : "");
}

void ct__mutex_assert_held(const struct ct__mutex *mu)
{
    int i;

    if (!CT_DEBUG)
        return;
    for (i = 0; i < witness_n_held; i++)
        if (witness_held[i] == mu)
            return;
    CT_ASSERT(0, "mutex \"%s\" is not held by the calling thread", mu->name);
}

int ct__mutex_init(struct ct__mutex *mu, const char *name,
                   enum ct_lock_rank rank)
{
    pthread_mutexattr_t attr;
    int rc;

    CT_ASSERT(rank > CT_LOCK_RANK_NONE && rank < CT_LOCK_RANK_COUNT,
              "mutex \"%s\": bad rank %d", name, (int)rank);
    mu->name = name;
    mu->rank = rank;
    rc = pthread_mutexattr_init(&attr);
    if (rc != 0)
        return CT_ENOMEM;
    rc = pthread_mutexattr_settype(&attr, CT_DEBUG ? PTHREAD_MUTEX_ERRORCHECK
                                                   : PTHREAD_MUTEX_NORMAL);
    CT_ASSERT(rc == 0, "pthread_mutexattr_settype: %s", strerror(rc));
    rc = pthread_mutex_init(&mu->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc == ENOMEM || rc == EAGAIN)
        return CT_ENOMEM;
    CT_ASSERT(rc == 0, "pthread_mutex_init(\"%s\"): %s", name, strerror(rc));
    return CT_OK;
}

void ct__mutex_destroy(struct ct__mutex *mu)
{
    int rc = pthread_mutex_destroy(&mu->mu);
    CT_ASSERT(rc == 0, "pthread_mutex_destroy(\"%s\"): %s", mu->name,
              strerror(rc));
}

void ct__mutex_lock(struct ct__mutex *mu)
{
    int rc;

    witness_lock(mu, true);
    rc = pthread_mutex_lock(&mu->mu);
    CT_ASSERT(rc == 0, "pthread_mutex_lock(\"%s\"): %s", mu->name,
              strerror(rc));
}

bool ct__mutex_trylock(struct ct__mutex *mu)
{
    int rc = pthread_mutex_trylock(&mu->mu);
    if (rc == EBUSY)
        return false;
    CT_ASSERT(rc == 0, "pthread_mutex_trylock(\"%s\"): %s", mu->name,
              strerror(rc));
    witness_lock(mu, false);
    return true;
}

void ct__mutex_unlock(struct ct__mutex *mu)
{
    int rc;

    witness_unlock(mu);
    rc = pthread_mutex_unlock(&mu->mu);
    CT_ASSERT(rc == 0, "pthread_mutex_unlock(\"%s\"): %s", mu->name,
              strerror(rc));
}

int ct__cond_init(struct ct__cond *cv)
{
    pthread_condattr_t attr;
    int rc;

    rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return CT_ENOMEM;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    CT_ASSERT(rc == 0, "pthread_condattr_setclock: %s", strerror(rc));
    rc = pthread_cond_init(&cv->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc == ENOMEM || rc == EAGAIN)
        return CT_ENOMEM;
    CT_ASSERT(rc == 0, "pthread_cond_init: %s", strerror(rc));
    return CT_OK;
}

void ct__cond_destroy(struct ct__cond *cv)
{
    int rc = pthread_cond_destroy(&cv->cv);
    CT_ASSERT(rc == 0, "pthread_cond_destroy: %s", strerror(rc));
}

void ct__cond_wait(struct ct__cond *cv, struct ct__mutex *mu)
{
    int rc;

    ct__mutex_assert_held(mu);
    rc = pthread_cond_wait(&cv->cv, &mu->mu);
    CT_ASSERT(rc == 0, "pthread_cond_wait(\"%s\"): %s", mu->name, strerror(rc));
}

bool ct__cond_timedwait(struct ct__cond *cv, struct ct__mutex *mu,
                        uint64_t timeout_ns)
{
    struct timespec ts;
    uint64_t deadline;
    int rc;

    ct__mutex_assert_held(mu);
    deadline = ct__now_ns() + timeout_ns;
    ts.tv_sec = (time_t)(deadline / 1000000000u);
    ts.tv_nsec = (long)(deadline % 1000000000u);
    rc = pthread_cond_timedwait(&cv->cv, &mu->mu, &ts);
    if (rc == ETIMEDOUT)
        return false;
    CT_ASSERT(rc == 0, "pthread_cond_timedwait(\"%s\"): %s", mu->name,
              strerror(rc));
    return true;
}

void ct__cond_signal(struct ct__cond *cv)
{
    int rc = pthread_cond_signal(&cv->cv);
    CT_ASSERT(rc == 0, "pthread_cond_signal: %s", strerror(rc));
}

void ct__cond_broadcast(struct ct__cond *cv)
{
    int rc = pthread_cond_broadcast(&cv->cv);
    CT_ASSERT(rc == 0, "pthread_cond_broadcast: %s", strerror(rc));
}

static void *thread_trampoline(void *p)
{
    struct ct__thread *thr = p;

    if (thr->name[0] != '\0')
        (void)prctl(PR_SET_NAME, thr->name, 0, 0, 0); /* cosmetic only */
    thr->main_cb(thr->arg);
    return NULL;
}

int ct__thread_create(struct ct__thread *thr, const char *name,
                      void (*main_cb)(void *arg), void *arg)
{
    int rc;

    thr->main_cb = main_cb;
    thr->arg = arg;
    thr->name[0] = '\0';
    if (name != NULL) {
        strncpy(thr->name, name, sizeof(thr->name) - 1);
        thr->name[sizeof(thr->name) - 1] = '\0';
    }
    rc = pthread_create(&thr->tid, NULL, thread_trampoline, thr);
    if (rc == EAGAIN || rc == ENOMEM)
        return CT_ENOMEM;
    CT_ASSERT(rc == 0, "pthread_create: %s", strerror(rc));
    return CT_OK;
}

void ct__thread_join(struct ct__thread *thr)
{
    int rc = pthread_join(thr->tid, NULL);
    CT_ASSERT(rc == 0, "pthread_join(\"%s\"): %s", thr->name, strerror(rc));
}

uint64_t ct__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
