/* cortado: operator instances and the kernel helpers.
 *
 * Design note. ct__op_create follows Caffe2's CreateOperator order (spec
 * §0.2): registry lookup by type, the schema check (input and output
 * counts, in-place pairs), the argument check, then blob binding (every
 * input must exist; every output is created on the spot, so a compiled
 * net leaves empty output blobs behind, as Caffe2 does), the DeviceOption
 * fields cortado uses, the op's private state and finally init_cb, which
 * parses the arguments once. Every check that can fail on bad input runs
 * before the first allocation, and a failure after it unwinds in reverse
 * order, so the workspace never holds a half-built op. Output blobs
 * created before a later failure stay in the workspace (Caffe2 does the
 * same); they are owned by the workspace, so nothing leaks.
 * If init_cb fails, fini_cb (when set) still runs on the zeroed-then-
 * partially-filled state, so init_cb may simply return on error and leave
 * the cleanup to fini_cb.
 * The kernel helpers only format into the node's own status slot, so two
 * ops failing at once on different workers never share a buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cortado/blob.h"
#include "cortado/workspace.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/op_internal.h"
#include "ops/op_impl.h"

#define SCHEMA_FAIL "Operator def did not pass schema checking: "

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* ---- in-place rules ---- */

bool ct__inplace_any(int in, int out)
{
    (void)in;
    (void)out;
    return true;
}

bool ct__inplace_0_0(int in, int out)
{
    return in == 0 && out == 0;
}

bool ct__inplace_same(int in, int out)
{
    return in == out;
}

/* ---- creation ---- */

/* "2 inputs", "at least 1 input", "1 to 3 inputs". */
static const char *arity_str(char *buf, size_t size, int lo, int hi,
                             const char *what)
{
    if (lo == hi)
        snprintf(buf, size, "%d %s%s", lo, what, lo == 1 ? "" : "s");
    else if (hi == CT_INF)
        snprintf(buf, size, "at least %d %s%s", lo, what, lo == 1 ? "" : "s");
    else
        snprintf(buf, size, "%d to %d %ss", lo, hi, what);
    return buf;
}

static int check_schema(const struct ct_op_schema *s,
                        const Caffe2__OperatorDef *def, ct_status_t *st)
{
    char buf[64];
    size_t i, j;

    if (def->n_input < (size_t)s->min_inputs ||
        (s->max_inputs != CT_INF && def->n_input > (size_t)s->max_inputs))
        return ct_status_setf(
            st, CT_ESCHEMA, SCHEMA_FAIL "%s takes %s, got %zu", s->name,
            arity_str(buf, sizeof(buf), s->min_inputs, s->max_inputs, "input"),
            def->n_input);
    if (def->n_output < (size_t)s->min_outputs ||
        (s->max_outputs != CT_INF && def->n_output > (size_t)s->max_outputs))
        return ct_status_setf(st, CT_ESCHEMA,
                              SCHEMA_FAIL "%s takes %s, got %zu", s->name,
                              arity_str(buf, sizeof(buf), s->min_outputs,
                                        s->max_outputs, "output"),
                              def->n_output);
    for (i = 0; i < def->n_input; i++) {
        for (j = 0; j < def->n_output; j++) {
            if (strcmp(def->input[i], def->output[j]) != 0)
                continue;
            if (s->inplace_cb != NULL && s->inplace_cb((int)i, (int)j))
                continue;
            return ct_status_setf(st, CT_ESCHEMA,
                                  SCHEMA_FAIL
                                  "%s does not allow input %zu and output "
                                  "%zu to be the same blob \"%s\" "
                                  "(in-place)",
                                  s->name, i, j, def->input[i]);
        }
    }
    return CT_OK;
}

/* A seed for ops whose DeviceOption sets none. Caffe2 draws a random one;
 * we derive it from the op's position and first output (FNV-1a), so a
 * rerun of the same net reproduces its results. */
static uint32_t derive_seed(const Caffe2__OperatorDef *def, int idx)
{
    uint32_t h = 2166136261u ^ (uint32_t)idx;
    const char *p = def->n_output > 0 ? def->output[0] : "";

    h *= 16777619u;
    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    return h;
}

static void apply_device(ct_op_t *op, const Caffe2__OperatorDef *def,
                         const Caffe2__DeviceOption *net_dev)
{
    const Caffe2__DeviceOption *d = def->device_option;

    op->numa_node = -1;
    if (d != NULL && d->has_numa_node_id)
        op->numa_node = d->numa_node_id;
    else if (net_dev != NULL && net_dev->has_numa_node_id)
        op->numa_node = net_dev->numa_node_id;
    op->has_seed = true;
    if (d != NULL && d->has_random_seed)
        op->seed = d->random_seed;
    else if (net_dev != NULL && net_dev->has_random_seed)
        op->seed = net_dev->random_seed;
    else {
        op->has_seed = false;
        op->seed = derive_seed(def, op->idx);
    }
    if (def->engine != NULL && def->engine[0] != '\0')
        ct__engine_notice_once(op->eng, CT_NOTICE_ENGINE_IGNORED,
                               "op %d (%s): engine \"%s\" ignored; cortado "
                               "runs its CPU kernels (reported once)",
                               op->idx, op->schema->name, def->engine);
    if ((d != NULL && d->has_device_type && d->device_type != 0) ||
        (net_dev != NULL && net_dev->has_device_type &&
         net_dev->device_type != 0))
        ct__engine_notice_once(op->eng, CT_NOTICE_DEVICE_IGNORED,
                               "op %d (%s): device_type %d ignored; cortado "
                               "runs every op on the CPU (reported once)",
                               op->idx, op->schema->name,
                               d != NULL && d->has_device_type
                                   ? d->device_type
                                   : net_dev->device_type);
}

int ct__op_create_ex(ct_workspace_t *ws, const Caffe2__OperatorDef *def,
                     const Caffe2__DeviceOption *net_dev, int idx,
                     ct_op_t **out, ct_status_t *st)
{
    const struct ct_op_schema *s;
    ct_op_t probe, *op;
    int rc, i;

    CT_ASSERT(ws != NULL && def != NULL && out != NULL,
              "ct__op_create: NULL argument");
    *out = NULL;
    s = ct__op_schema_find(def->type);
    if (s == NULL)
        return ct_status_setf(st, CT_ENOTFOUND, "unknown operator type \"%s\"",
                              str_or_empty(def->type));
    rc = check_schema(s, def, st);
    if (rc != CT_OK)
        return rc;
    memset(&probe, 0, sizeof(probe));
    probe.schema = s;
    probe.def = def;
    rc = ct__args_check(&probe, st);
    if (rc != CT_OK)
        return rc;
    /* Inputs must exist before anything is allocated or created. */
    for (i = 0; i < (int)def->n_input; i++) {
        if (ct_workspace_get_blob(ws, def->input[i]) == NULL)
            return ct_status_setf(st, CT_ENOTFOUND,
                                  "op %s: Encountered a non-existing input "
                                  "blob: %s",
                                  s->name, def->input[i]);
    }

    op = ct__calloc(1, sizeof(*op));
    if (op == NULL)
        goto fail_op;
    op->schema = s;
    op->def = def;
    op->eng = ct_workspace_engine(ws);
    op->ws = ws;
    op->idx = idx;
    op->n_in = (int)def->n_input;
    op->n_out = (int)def->n_output;
    op->in = ct__calloc(def->n_input, sizeof(*op->in));
    op->out = ct__calloc(def->n_output, sizeof(*op->out));
    if (op->in == NULL || op->out == NULL)
        goto fail_arrays;
    for (i = 0; i < op->n_in; i++)
        op->in[i] = ct_workspace_get_blob(ws, def->input[i]);
    for (i = 0; i < op->n_out; i++) {
        rc = ct_workspace_create_blob(ws, def->output[i], &op->out[i], st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "op %s: output %d \"%s\": ", s->name, i,
                             def->output[i]);
            goto fail_bind;
        }
    }
    if (s->state_size > 0) {
        op->state = ct__calloc(1, s->state_size);
        if (op->state == NULL)
            goto fail_state;
    }
    apply_device(op, def, net_dev);
    if (s->init_cb != NULL) {
        rc = s->init_cb(op, st);
        if (rc != CT_OK)
            goto fail_init;
    }
    *out = op;
    return CT_OK;

fail_init:
    if (st != NULL && st->code == CT_OK)
        ct_status_setf(st, rc, "%s: init failed: %s", s->name, ct_strerror(rc));
    if (s->fini_cb != NULL)
        s->fini_cb(op);
    ct__free(op->state);
    ct__free(op->in);
    ct__free(op->out);
    ct__free(op);
    return rc;
fail_state:
    rc = ct_status_setf(st, CT_ENOMEM,
                        "op %s: out of memory for %zu bytes of state", s->name,
                        s->state_size);
fail_bind:
    ct__free(op->in);
    ct__free(op->out);
    ct__free(op);
    return rc;
fail_arrays:
    ct__free(op->in);
    ct__free(op->out);
    ct__free(op);
fail_op:
    return ct_status_setf(st, CT_ENOMEM, "op %s: out of memory", s->name);
}

int ct__op_create(ct_workspace_t *ws, const Caffe2__OperatorDef *def, int idx,
                  ct_op_t **out, ct_status_t *st)
{
    return ct__op_create_ex(ws, def, NULL, idx, out, st);
}

void ct__op_destroy(ct_op_t *op)
{
    if (op == NULL)
        return;
    if (op->schema->fini_cb != NULL)
        op->schema->fini_cb(op);
    ct__free(op->state);
    ct__free(op->in);
    ct__free(op->out);
    if (CT_DEBUG)
        memset(op, 0xdb, sizeof(*op));
    ct__free(op);
}

/* ---- running ---- */

int ct__op_run(ct_op_ctx_t *ctx)
{
    ct_op_t *op = ctx->op;
    int rc;

    CT_ASSERT(ctx->status != NULL, "op context without a status slot");
    ct_status_clear(ctx->status);
    rc = op->schema->run_cb(ctx);
    if (rc == CT_OK)
        return CT_OK;
    if (ctx->status->code == CT_OK)
        ct_status_setf(ctx->status, rc, "%s failed: %s", op->schema->name,
                       ct_strerror(rc));
    else
        ctx->status->code = rc;
    return rc;
}

int ct__op_run_serial(ct_op_t *op, ct_status_t *st)
{
    ct_status_t local;
    ct_op_ctx_t ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.op = op;
    ctx.eng = op->eng;
    ctx.ith = 0;
    ctx.nth = 1;
    ctx.numa_node = op->numa_node;
    ctx.status = st != NULL ? st : &local;
    ctx.sched = NULL;
    return ct__op_run(&ctx);
}

/* ---- kernel helpers ---- */

const char *ct_op_input_name(const ct_op_t *op, int i)
{
    CT_ASSERT(i >= 0 && i < op->n_in, "input %d of an op with %d inputs", i,
              op->n_in);
    return op->def->input[i];
}

const char *ct_op_output_name(const ct_op_t *op, int i)
{
    CT_ASSERT(i >= 0 && i < op->n_out, "output %d of an op with %d outputs", i,
              op->n_out);
    return op->def->output[i];
}

int ct_op_fail(ct_op_ctx_t *ctx, int code, const char *fmt, ...)
{
    va_list ap;

    CT_ASSERT(ctx->status != NULL, "op context without a status slot");
    va_start(ap, fmt);
    ct_status_vsetf(ctx->status, code, fmt, ap);
    va_end(ap);
    return code;
}

int ct_op_input(ct_op_ctx_t *ctx, int i, const ct_tensor_t **out)
{
    const ct_op_t *op = ctx->op;
    const ct_blob_type_t *type;
    const ct_tensor_t *t;

    CT_ASSERT(i >= 0 && i < op->n_in, "input %d of an op with %d inputs", i,
              op->n_in);
    t = ct_blob_get_tensor(op->in[i]);
    if (t != NULL) {
        *out = t;
        return CT_OK;
    }
    *out = NULL;
    type = ct_blob_type(op->in[i]);
    if (type == NULL)
        return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" is empty", i,
                          op->def->input[i]);
    return ct_op_fail(ctx, CT_ETYPE, "input %d \"%s\" holds %s, not a tensor",
                      i, op->def->input[i], type->name);
}

int ct_op_output_tensor(ct_op_ctx_t *ctx, int i, ct_tensor_t **out)
{
    const ct_op_t *op = ctx->op;
    int rc;

    CT_ASSERT(i >= 0 && i < op->n_out, "output %d of an op with %d outputs", i,
              op->n_out);
    *out = NULL;
    rc = ct_blob_get_mutable_tensor(op->out[i], ctx->eng, out, ctx->status);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc,
                          "output %d \"%s\": out of memory for the tensor "
                          "object (%zu bytes)",
                          i, op->def->output[i], sizeof(struct ct_tensor_s));
    return CT_OK;
}

int ct_op_output(ct_op_ctx_t *ctx, int i, ct_dtype_t dt, int ndim,
                 const int64_t *dims, ct_tensor_t **out)
{
    const ct_op_t *op = ctx->op;
    ct_tensor_t *t;
    char shape[128];
    int rc;

    rc = ct_op_output_tensor(ctx, i, &t);
    if (rc != CT_OK) {
        /* Re-say it with the shape the kernel asked for. */
        return ct_op_fail(ctx, rc,
                          "output %d \"%s\" %s %s: out of memory for the "
                          "tensor object (%zu bytes)",
                          i, op->def->output[i],
                          ndim >= 0 && ndim <= CT_MAX_DIMS
                              ? ct_dims_str(ndim, dims, shape, sizeof(shape))
                              : "[?]",
                          ct_dtype_name(dt), sizeof(struct ct_tensor_s));
    }
    rc = ct_tensor_resize(t, dt, ndim, dims, ctx->status);
    if (rc != CT_OK) {
        /* The tensor layer names shape, dtype and bytes; add which output
         * of which blob it was. */
        ct_status_prefix(ctx->status, "output %d \"%s\": ", i,
                         op->def->output[i]);
        *out = NULL;
        return rc;
    }
    *out = t;
    return CT_OK;
}
