/* cortado: service threads (see scheduler/service.h).
 *
 * A new thread inherits the signal mask of the thread that creates it, so
 * the mask is set to "everything blocked" around the creation and put
 * back right after: the new thread never runs with signals open, and the
 * caller's mask is restored before this returns. SIGKILL, SIGSTOP and the
 * synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
 * SIGSYS: blocking them while they are raised by a fault is undefined,
 * and sanitizers rely on them) stay deliverable.
 */
#include <signal.h>
#include <string.h>

#include "cortado/error.h"
#include "scheduler/service.h"

int ct__service_thread_start(struct ct__thread *thr, const char *name,
                             void (*main_cb)(void *arg), void *arg)
{
    static const int keep_open[] = {SIGSEGV, SIGBUS,  SIGFPE,
                                    SIGILL,  SIGTRAP, SIGSYS};
    sigset_t all, old;
    size_t i;
    int rc;

    sigfillset(&all);
    for (i = 0; i < sizeof(keep_open) / sizeof(keep_open[0]); i++)
        sigdelset(&all, keep_open[i]);
    rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    CT_ASSERT(rc == 0, "pthread_sigmask: %s", strerror(rc));
    rc = ct__thread_create(thr, name, main_cb, arg);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void ct__service_thread_join(struct ct__thread *thr)
{
    ct__thread_join(thr);
}
