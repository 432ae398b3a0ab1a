/* cortado CLI internal: the persistent state of `cortado run` and what is
 * done with it: asynchronous checkpoints (--checkpoint-dir), --resume
 * from the latest complete one, and --save-params. Kept apart from
 * cmd_run.c so each file stays one concern; docs/storage.md
 * ("Checkpointing from cortado run") is the user-facing description.
 *
 * The state of a run is, in this order and without duplicates:
 *   1. every output of an op of INIT (the parameters, momenta, counters
 *      Caffe2's init nets create);
 *   2. every blob --fill-params created;
 *   3. every blob NET carries from one iteration to the next: the output
 *      of an op of NET that an op reads at or before the first op that
 *      writes it, in NetDef order (an in-place update such as
 *      WeightedSum, MomentumSGDUpdate or Iter with its input), and the
 *      output of an Iter op (which reads its own output).
 * A blob of 1. or 2. that --input or --input-shape feeds is left out
 * unless 3. holds for it: every run feeds it anew.
 * A checkpoint holds the blobs of the state that hold a tensor or a
 * std::string when it is written; a blob of another type is left out.
 */
#ifndef CT_ENGINE_CLI_RUN_CKPT_H
#define CT_ENGINE_CLI_RUN_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

/* Where a blob of a list came from (for messages). */
enum ct__run_origin {
    CT__RUN_FROM_INIT = 0, /* an output of INIT */
    CT__RUN_FROM_FILL,     /* created by --fill-params */
    CT__RUN_FROM_NET,      /* carried by NET from one iteration to the next */
    CT__RUN_FROM_COUNT
};

/* An ordered list of distinct blob names. Zero-initialise; release with
 * ct__run_blobs_destroy. */
struct ct__run_blobs {
    char **names;           /* owned copies */
    unsigned char *origins; /* enum ct__run_origin per name */
    size_t n, cap;
};

void ct__run_blobs_destroy(struct ct__run_blobs *l);
/* Appends a copy of name unless it is listed already. CT_ENOMEM. */
int ct__run_blobs_add(struct ct__run_blobs *l, const char *name, int origin,
                      ct_status_t *st);
/* Appends every output of every op of def, in op order. */
int ct__run_blobs_add_outputs(struct ct__run_blobs *l, const ct_netdef_t *def,
                              ct_status_t *st);
/* Appends the blobs def carries from one run to the next (item 3 above). */
int ct__run_blobs_add_carried(struct ct__run_blobs *l, const ct_netdef_t *def,
                              ct_status_t *st);
/* "produced by --init", "created by --fill-params", "updated in place by
 * NET". */
const char *ct__run_origin_text(int origin);

/* The checkpoints of one run: DIR/ckpt_<iteration, 8 digits or more>.minidb,
 * written by the engine's asynchronous checkpoint writer. Zero-initialise,
 * then ct__run_ckpt_init. */
struct ct__run_ckpt {
    const char *dir;     /* borrowed */
    char *pattern;       /* DIR (with '%' doubled) + "/ckpt_%08d.minidb" */
    int keep;            /* keep_last of the stream; 0 keeps every file */
    int64_t last_iter;   /* iteration of the newest save, -1 before one */
    size_t n_saves;      /* saves queued by this run */
    size_t n_blobs;      /* blobs in the newest save */
    double stall_ns;     /* total time callers waited in the saves */
    double max_stall_ns; /* the longest of them */
};

/* Creates DIR when it does not exist (its parent must) and prepares the
 * pattern. Errors: CT_EIO naming DIR (not a directory, cannot create),
 * CT_ENOMEM. */
int ct__run_ckpt_init(struct ct__run_ckpt *c, const char *dir, int keep,
                      ct_status_t *st);
void ct__run_ckpt_destroy(struct ct__run_ckpt *c);
/* Queues an asynchronous save of the state's blobs of ws that hold a
 * tensor or a std::string, for iteration iter (COPY snapshot: ws may
 * change as soon as this returns). Returns the pending error of an
 * earlier save if there is one. */
int ct__run_ckpt_save(struct ct__run_ckpt *c, ct_engine_t *eng,
                      const ct_workspace_t *ws,
                      const struct ct__run_blobs *state, int64_t iter,
                      ct_status_t *st);
/* Waits for every queued save and reports the first failure. */
int ct__run_ckpt_finish(struct ct__run_ckpt *c, ct_engine_t *eng,
                        ct_status_t *st);

/* What --resume found. */
struct ct__run_resume {
    bool resumed;     /* false: no complete checkpoint, start from scratch */
    char *path;       /* the checkpoint loaded (owned), or NULL */
    int64_t iter;     /* the iteration count to continue from */
    size_t n_blobs;   /* blobs loaded */
    size_t n_skipped; /* newer files skipped as partial or corrupt */
};

/* Finds the newest checkpoint of DIR that verifies (every CRC32C; a
 * notice on stderr names each newer one skipped and why, and each
 * temporary file of an unfinished save), checks that its blobs match the
 * state of ws (every blob of the state that holds a tensor or a string,
 * or that NET has not created yet, must be in it, with the same dtype
 * and shape, and it holds nothing else) and only then puts them into ws.
 * The iteration count continues from the counter of NET's first Iter op
 * when there is one, else from the file name. No checkpoint (or no DIR):
 * a notice, r->resumed false, CT_OK. Errors: CT_ENOTFOUND (a blob of the
 * state missing from the checkpoint, or a blob of the checkpoint that is
 * not part of the state), CT_ESHAPE / CT_ETYPE (dims or dtype differ),
 * those of Load, CT_EIO (DIR unreadable). ws is unchanged on error. */
int ct__run_ckpt_resume(const char *dir, ct_workspace_t *ws,
                        const struct ct__run_blobs *state,
                        const ct_netdef_t *net, struct ct__run_resume *r,
                        ct_status_t *st);
void ct__run_resume_destroy(struct ct__run_resume *r);

/* Writes each blob of `params` that holds a tensor as DIR/<name>.npy ('/'
 * in names becomes '_'), and DIR/params.txt with one line per file:
 * name<TAB>file<TAB>dtype<TAB>dims ("[2, 3]", "[]" for 0-d). Blobs
 * without a tensor are skipped with a notice; *n_written receives the
 * count. DIR is created when missing. Errors: CT_EEXIST (two names map to
 * one file), CT_EIO, CT_ENOMEM. */
int ct__run_save_params(const ct_workspace_t *ws,
                        const struct ct__run_blobs *params, const char *dir,
                        size_t *n_written, ct_status_t *st);

#endif /* CT_ENGINE_CLI_RUN_CKPT_H */
