/* cortado internal: long-lived service threads.
 *
 * A service thread is a background thread an engine owns besides its
 * pool workers, such as the asynchronous checkpoint writer
 * (storage/checkpoint.c). STYLE §5 keeps thread creation in scheduler/;
 * this is the one entry point for threads that are not pool workers.
 * Such a thread differs from a worker in two ways:
 *   - every signal that can be blocked is blocked in it, so process-
 *     directed signals (SIGINT, SIGTERM, SIGCHLD ...) reach the
 *     application's own threads, and a signal a system call raises for
 *     the calling thread (SIGXFSZ when a write passes `ulimit -f`, SIGPIPE)
 *     stays pending instead of killing the process: the call fails with
 *     its errno (EFBIG, EPIPE), which the service reports as an error;
 *   - it is not pinned and takes no pool slot.
 */
#ifndef CT_SCHEDULER_SERVICE_H
#define CT_SCHEDULER_SERVICE_H

#include "scheduler/sync.h"

/* Starts main_cb(arg) on a new service thread named `name` (at most 15
 * characters are kept). thr is caller-owned and must stay valid until
 * ct__service_thread_join. The calling thread's signal mask is unchanged
 * on return. Returns CT_OK, or CT_ENOMEM when the system is out of
 * threads or memory (thr unused). Thread-safe. */
int ct__service_thread_start(struct ct__thread *thr, const char *name,
                             void (*main_cb)(void *arg), void *arg);
/* Waits for the thread to return from main_cb. */
void ct__service_thread_join(struct ct__thread *thr);

#endif /* CT_SCHEDULER_SERVICE_H */
