/* Checkpoint and its old name Snapshot (Caffe2's CheckpointOp in
 * caffe2/operators/load_save_op.h; spec §4.8), synchronous and
 * asynchronous paths.
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
 *               cortado's additions (not in Caffe2):
 *                 async          1: stage a snapshot of the inputs, hand
 *                                it to the engine's checkpoint writer and
 *                                return (storage/checkpoint.c); an error
 *                                of an earlier save of this pattern fails
 *                                the next saving run (which then queues
 *                                nothing) or ct_engine_flush_checkpoints.
 *                                0 (default): save before returning.
 *                 max_in_flight  async saves of this pattern queued or
 *                                being written at once, 1 to 1024
 *                                (default 1); the next saving run waits
 *                                beyond that.
 *                 keep_last      > 0: once a save is published (CT_OK),
 *                                delete this engine's older files of the
 *                                pattern so that the newest keep_last
 *                                remain; 0 (default) keeps every file.
 *                                minidb only.
 *                 snapshot       "copy" (default) or "share": see
 *                                enum ct_checkpoint_snapshot.
 *               Each save replaces its file crash-safely; a failed save
 *               leaves the previous file of that name intact.
 * No gradient; not in place.
 */
#include <string.h>

#include "storage/checkpoint.h"
#include "storage/storage_impl.h"
#include "storage/storage_ops.h"

struct ckpt_state {
    struct ct__save_args a; /* a.db is the pattern */
    struct ct__pattern pat;
    int64_t every;
    bool async;
    int max_in_flight, keep_last;
    int snapshot; /* enum ct_checkpoint_snapshot */
};

/* cortado's own arguments: async, max_in_flight, keep_last, snapshot. */
static int ckpt_init_async(ct_op_t *op, struct ckpt_state *s, ct_status_t *st)
{
    int64_t async, max_in_flight, keep_last;
    const char *snap;
    size_t len;
    int rc = ct__arg_int(op, "async", 0, &async, st);

    if (rc == CT_OK)
        rc = ct__arg_int(op, "max_in_flight", 1, &max_in_flight, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "keep_last", 0, &keep_last, st);
    if (rc == CT_OK)
        rc = ct__arg_string(op, "snapshot", "copy", &snap, &len, st);
    if (rc != CT_OK)
        return rc;
    if (max_in_flight < 1 || max_in_flight > 1024)
        return ct_status_setf(st, CT_EARG,
                              "max_in_flight = %lld (want 1 to 1024)",
                              (long long)max_in_flight);
    if (keep_last < 0 || keep_last > INT32_MAX)
        return ct_status_setf(st, CT_EARG, "keep_last = %lld (want >= 0)",
                              (long long)keep_last);
    if (keep_last > 0 && strcmp(s->a.db_type, "minidb") != 0 &&
        strcmp(s->a.db_type, "MiniDB") != 0)
        return ct_status_setf(st, CT_EARG,
                              "keep_last needs db_type minidb, not %s",
                              s->a.db_type);
    if (len == 4 && memcmp(snap, "copy", 4) == 0)
        s->snapshot = CT_CHECKPOINT_SNAPSHOT_COPY;
    else if (len == 5 && memcmp(snap, "share", 5) == 0)
        s->snapshot = CT_CHECKPOINT_SNAPSHOT_SHARE;
    else
        return ct_status_setf(st, CT_EARG,
                              "snapshot \"%.*s\" (want \"copy\" or \"share\")",
                              (int)(len < 32 ? len : 32), snap);
    s->async = async != 0;
    s->max_in_flight = (int)max_in_flight;
    s->keep_last = (int)keep_last;
    return CT_OK;
}

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
    if (rc == CT_OK)
        rc = ckpt_init_async(op, s, st);
    return rc;
}

static void ckpt_fini(ct_op_t *op)
{
    struct ckpt_state *s = op->state;

    ct__save_args_destroy(&s->a);
}

/* The resolved file and pattern (the stream key) of a save. */
static int resolve(ct_op_ctx_t *ctx, struct ckpt_state *s, const char *path,
                   char **full, char **key, ct_status_t *st)
{
    const char *root = ct_workspace_root_folder(ctx->op->ws);
    int rc = ct__path_resolve(root, path, s->a.absolute, full, st);

    *key = NULL;
    if (rc == CT_OK)
        rc = ct__path_resolve(root, s->a.db, s->a.absolute, key, st);
    if (rc != CT_OK) {
        ct__free(*full);
        *full = NULL;
    }
    return rc;
}

/* async=1: the inputs as save items, handed to the checkpoint writer. */
static int ckpt_submit(ct_op_ctx_t *ctx, struct ckpt_state *s, const char *path,
                       int64_t iter)
{
    const ct_op_t *op = ctx->op;
    struct ct__save_args *a = &s->a;
    struct ct__ckpt_request req;
    char *full = NULL, *key = NULL;
    ct_status_t st;
    int i, rc;

    for (i = 0; i < a->n; i++) {
        struct ct_save_item *it = &a->items[i];
        const ct_str_t *str;
        it->name = a->names[i];
        it->opts = &a->opts[i];
        it->tensor = ct_blob_get_tensor(op->in[i]);
        it->str = NULL;
        it->str_len = 0;
        if (it->tensor != NULL)
            continue;
        str = ct_blob_get_string(op->in[i]);
        if (str == NULL) {
            const ct_blob_type_t *t = ct_blob_type(op->in[i]);
            return ct_op_fail(
                ctx, CT_ETYPE, "input %d \"%s\": No known serializer for %s", i,
                ct_op_input_name(op, i), t != NULL ? t->name : "an empty blob");
        }
        it->str = str->data != NULL ? str->data : "";
        it->str_len = str->len;
    }
    ct_status_clear(&st);
    rc = resolve(ctx, s, path, &full, &key, &st);
    if (rc == CT_OK) {
        memset(&req, 0, sizeof(req));
        req.stream = key;
        req.path = full;
        req.iter = iter;
        req.items = a->items;
        req.n = (size_t)a->n;
        req.db_type = a->db_type;
        req.db_options = a->db_options;
        req.db_options_len = a->db_options_len;
        req.max_in_flight = s->max_in_flight;
        req.keep_last = s->keep_last;
        req.snapshot = s->snapshot;
        rc = ct__ckpt_submit(ctx->eng, &req, &st);
    }
    ct__free(full);
    ct__free(key);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
}

/* async=0 with keep_last: the save published path; apply retention. */
static int ckpt_retain(ct_op_ctx_t *ctx, struct ckpt_state *s, const char *path)
{
    char *full = NULL, *key = NULL;
    ct_status_t st;
    int rc;

    ct_status_clear(&st);
    rc = resolve(ctx, s, path, &full, &key, &st);
    if (rc == CT_OK)
        rc = ct__ckpt_retain(ctx->eng, key, full, s->keep_last, &st);
    ct__free(full);
    ct__free(key);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
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
    if (s->async)
        rc = ckpt_submit(ctx, s, path, iter);
    else
        rc = ct__save_run(ctx, &s->a, path);
    if (rc == CT_OK && !s->async && s->keep_last > 0)
        rc = ckpt_retain(ctx, s, path);
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
    {"async", CT_ARG_INT, false},
    {"max_in_flight", CT_ARG_INT, false},
    {"keep_last", CT_ARG_INT, false},
    {"snapshot", CT_ARG_STRING, false},
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
