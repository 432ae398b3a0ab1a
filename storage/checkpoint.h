/* cortado internal: the engine's asynchronous checkpoint writer
 * (storage/checkpoint.c), shared by the public C API
 * (ct_engine_checkpoint_async), the Checkpoint op (async=1, keep_last)
 * and ct_engine_free. Only storage/, engine/engine.c and white-box tests
 * include it.
 */
#ifndef CT_STORAGE_CHECKPOINT_H
#define CT_STORAGE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/storage.h"

struct ct__ckpt_writer;

/* One save to queue. Every pointer is borrowed for the call only. */
struct ct__ckpt_request {
    /* The stream: saves with the same key share max_in_flight, pending
     * errors and retention. The op passes its resolved pattern. */
    const char *stream;
    const char *path;                 /* the file to write (resolved) */
    int64_t iter;                     /* for messages */
    const struct ct_save_item *items; /* tensors / strings to snapshot */
    size_t n;
    const char *db_type;    /* registered */
    const char *db_options; /* may be NULL */
    size_t db_options_len;
    int max_in_flight; /* >= 1 */
    int keep_last;     /* >= 0; 0 keeps every file */
    int snapshot;      /* enum ct_checkpoint_snapshot */
};

/* Waits for a free slot of the stream (back-pressure), reports its
 * pending error if any (nothing is queued then), else stages the items
 * and queues the save. Starts the engine's writer thread on first use.
 * Errors: the pending error, CT_ENOMEM (staging or thread), CT_ETYPE (an
 * item that cannot be serialized). Thread-safe. */
int ct__ckpt_submit(ct_engine_t *eng, const struct ct__ckpt_request *req,
                    ct_status_t *st);
/* A synchronous save of the stream published `path` (CT_OK): records it
 * and deletes the stream's files beyond the newest keep_last, as the
 * writer does after an asynchronous save. Never fails the save: deletion
 * errors are counted (cortado/checkpoint/retention_failures). CT_OK or
 * CT_ENOMEM (nothing recorded or deleted). Thread-safe. */
int ct__ckpt_retain(ct_engine_t *eng, const char *stream, const char *path,
                    int keep_last, ct_status_t *st);
/* Test hook: cb(ctx, path) runs on the writer thread before each save,
 * with no lock held, so a test can hold the writer. NULL removes it. Set
 * it while no save is in flight. CT_OK or CT_ENOMEM. */
int ct__ckpt_set_hook(ct_engine_t *eng, void (*cb)(void *ctx, const char *path),
                      void *ctx, ct_status_t *st);
/* Called by ct_engine_free before the pool goes: waits for every queued
 * save to finish, stops the thread and frees the writer (unreported
 * errors are dropped; they were counted in the stats). */
void ct__ckpt_writer_free(ct_engine_t *eng);

#endif /* CT_STORAGE_CHECKPOINT_H */
