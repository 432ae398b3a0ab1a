/* Checkpoint and its old name Snapshot (Caffe2's CheckpointOp in
 * caffe2/operators/load_save_op.h; spec §4.8), synchronous path.
 *
 * Checkpoint    inputs 1..inf, no outputs. Input 0 is the iteration
 *               counter, a CPU INT64 tensor (element 0 is used). When
 *               iter % every == 0, saves ALL inputs (the counter too, as
 *               Caffe2 does) exactly as Save would, to the path the `db`
 *               pattern gives for iter. Arguments:
 *                 db      the pattern (required, "Must specify a
 *                         checkpoint file pattern."): literal text, "%%"
 *                         and at most one %d-style conversion, which gets
 *                         the iteration as int64 (storage/path.c); any
 *                         other directive (%s, %n, %x, "*" ...) is refused
 *                         when the op is created. Caffe2 handed the
 *                         pattern to snprintf with an int64 argument.
 *                 every   > 0, default 1 ("Checkpoint interval should be
 *                         positive.")
 *                 and every argument of Save (db_type, absolute_path,
 *                 strip_prefix, blob_name_overrides, chunk_size, options,
 *                 db_options), checked when the op is created rather than
 *                 at the first save.
 *               Each save replaces its file crash-safely; a failed save
 *               leaves the previous file of that name intact.
 * No gradient; not in place.
 * TODO(storage-async, issue 5): async=1 hands the staged inputs to the
 * checkpoint writer instead (storage/checkpoint.c).
 */
#include <string.h>

#include "storage/storage_impl.h"
#include "storage/storage_ops.h"

struct ckpt_state {
    struct ct__save_args a; /* a.db is the pattern */
    struct ct__pattern pat;
    int64_t every;
};

static int ckpt_init(ct_op_t *op, ct_status_t *st)
{
    struct ckpt_state *s = op->state;
    int rc = ct__save_args_parse(op, "Must specify a checkpoint file pattern.",
                                 &s->a, st);

    if (rc == CT_OK)
        rc = ct__pattern_parse(s->a.db, &s->pat, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "every", 1, &s->every, st);
    if (rc == CT_OK && s->every <= 0)
        rc = ct_status_setf(st, CT_EARG,
                            "Checkpoint interval should be positive (every "
                            "= %lld).",
                            (long long)s->every);
    return rc;
}

static void ckpt_fini(ct_op_t *op)
{
    struct ckpt_state *s = op->state;

    ct__save_args_destroy(&s->a);
}

static int ckpt_run(ct_op_ctx_t *ctx)
{
    struct ckpt_state *s = ctx->op->state;
    const ct_tensor_t *it;
    char *path = NULL, shape[64];
    int64_t iter;
    ct_status_t st;
    int rc = ct_op_input(ctx, 0, &it);

    if (rc != CT_OK)
        return rc;
    if (ct_tensor_dtype(it) != CT_DTYPE_I64 || ct_tensor_numel(it) < 1)
        return ct_op_fail(ctx, CT_ETYPE,
                          "input 0 \"%s\" must be an INT64 tensor holding the "
                          "iteration, not %s %s",
                          ct_op_input_name(ctx->op, 0),
                          ct_dtype_name(ct_tensor_dtype(it)),
                          ct_tensor_shape_str(it, shape, sizeof(shape)));
    iter = *CT_CDATA(it, int64_t);
    if (iter % s->every != 0)
        return CT_OK;
    ct_status_clear(&st);
    rc = ct__pattern_format(s->a.db, &s->pat, iter, &path, &st);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", st.msg);
    rc = ct__save_run(ctx, &s->a, path);
    ct__free(path);
    return rc;
}

static const struct ct_arg_spec ckpt_args[] = {
    {"db", CT_ARG_STRING, false},
    {"db_type", CT_ARG_STRING, false},
    {"every", CT_ARG_INT, false},
    {"absolute_path", CT_ARG_INT, false},
    {"strip_prefix", CT_ARG_STRING, false},
    {"blob_name_overrides", CT_ARG_STRINGS, false},
    {"chunk_size", CT_ARG_INT, false},
    {"options", CT_ARG_STRING, false},
    {"db_options", CT_ARG_STRING, false},
    {NULL, CT_ARG_ANY, false},
};

#define CKPT_SCHEMA(sym, type)                                                 \
    const struct ct_op_schema sym = {                                          \
        .name = type,                                                          \
        .min_inputs = 1,                                                       \
        .max_inputs = CT_INF,                                                  \
        .min_outputs = 0,                                                      \
        .max_outputs = 0,                                                      \
        .args = ckpt_args,                                                     \
        .state_size = sizeof(struct ckpt_state),                               \
        .init_cb = ckpt_init,                                                  \
        .fini_cb = ckpt_fini,                                                  \
        .run_cb = ckpt_run,                                                    \
        .flags = CT_OP_F_IO,                                                   \
        .doc = "Saves every input each `every` iterations to a patterned "     \
               "path.",                                                        \
    }

CKPT_SCHEMA(ct__op_checkpoint, "Checkpoint");
CKPT_SCHEMA(ct__op_snapshot, "Snapshot");
