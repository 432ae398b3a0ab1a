/* cortado internal: what an operator file sees.
 *
 * An op is described by one `const struct ct_op_schema ct__op_<name>` and
 * registered by a CT_OP(<name>) line in ops/op_list.def. The schema gives
 * the arity, the in-place rule, the argument specs (checked generically
 * when the op is created), an init callback that parses and validates the
 * arguments once into the op's private state, optional shape inference, the
 * kernel, the gradient maker slot and a cost hint.
 *
 * Life of an op: ct__op_create (schema checks, argument checks, blob
 * binding, init_cb) when the net is compiled; run_cb for every run, on
 * whatever worker the executor picks, with a ct_op_ctx_t that carries the
 * thread context; fini_cb when the net is freed. run_cb must not keep
 * state across runs outside op->state, must not lock, and allocates only
 * output storage (ct_op_output) or scratch through the engine.
 */
#ifndef CT_OPS_OP_IMPL_H
#define CT_OPS_OP_IMPL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cortado/blob.h"
#include "cortado/error.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/tensor_impl.h"
#include "proto/caffe2.pb-c.h"

typedef struct ct_op_s ct_op_t;
typedef struct ct_op_ctx_s ct_op_ctx_t;

/* Unbounded arity. */
#define CT_INF INT_MAX

/* Static shape and dtype, for shape inference. ndim < 0: unknown. */
typedef struct ct_shape {
    ct_dtype_t dtype;
    int ndim;
    int64_t dims[CT_MAX_DIMS];
} ct_shape_t;

/* Which Argument field an argument must use (spec §0.2). */
enum ct_arg_kind {
    CT_ARG_INT,     /* i */
    CT_ARG_FLOAT,   /* f */
    CT_ARG_STRING,  /* s */
    CT_ARG_INTS,    /* ints */
    CT_ARG_FLOATS,  /* floats */
    CT_ARG_STRINGS, /* strings */
    CT_ARG_NET,     /* n */
    CT_ARG_NETS,    /* nets */
    CT_ARG_TENSOR,  /* t */
    CT_ARG_TENSORS, /* tensors */
    CT_ARG_ANY      /* checked by the op itself (several accepted forms) */
};

struct ct_arg_spec {
    const char *name;
    enum ct_arg_kind kind;
    bool required;
};

/* Gradient maker slot (filled by the gradient module). */
struct ct__grad_ctx;
typedef int (*ct__grad_maker_fn)(struct ct__grad_ctx *g, ct_status_t *st);

enum ct_op_flags {
    CT_OP_F_HAS_SUBNET = 1u << 0, /* runs nets (Do / If / While) */
    CT_OP_F_RANDOM = 1u << 1,     /* output depends on an RNG */
    CT_OP_F_IO = 1u << 2,         /* touches files (Save / Load) */
};

struct ct_op_schema {
    const char *name;           /* Caffe2 type string */
    int min_inputs, max_inputs; /* CT_INF for unbounded */
    int min_outputs, max_outputs;
    /* Whether input `in` may have the same name as output `out`. NULL:
     * never. See ct__inplace_* below. */
    bool (*inplace_cb)(int in, int out);
    /* Arguments with a fixed field; NULL-name terminated, may be NULL. */
    const struct ct_arg_spec *args;
    /* Bytes of zeroed private state per op instance (op->state). */
    size_t state_size;
    /* Parses and validates arguments into op->state. Errors name the
     * argument and the value. May be NULL. */
    int (*init_cb)(ct_op_t *op, ct_status_t *st);
    /* Releases what init_cb allocated inside op->state. May be NULL. */
    void (*fini_cb)(ct_op_t *op);
    /* Output shapes from input shapes; in[] has op->n_in entries, out[]
     * op->n_out, pre-set to unknown. Return 0 leaving unknown where it
     * cannot tell (data-dependent shapes). May be NULL. */
    int (*infer_cb)(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                    ct_status_t *st);
    /* The kernel. */
    int (*run_cb)(ct_op_ctx_t *ctx);
    /* Gradient maker; NULL = no gradient defined. */
    ct__grad_maker_fn grad_cb;
    /* Estimated work in flops (or bytes moved) for the given input shapes;
     * used for scheduling and --profile. NULL = numel of output 0. */
    double (*cost_cb)(const ct_op_t *op, const ct_shape_t *in);
    unsigned flags;  /* enum ct_op_flags */
    const char *doc; /* one line */
};

/* An operator instance, created from an OperatorDef at compile time. */
struct ct_op_s {
    const struct ct_op_schema *schema;
    const Caffe2__OperatorDef *def; /* borrowed from the net's NetDef copy */
    ct_engine_t *eng;
    ct_workspace_t *ws;
    int idx; /* position in the net */
    int n_in, n_out;
    ct_blob_t **in; /* bound at creation */
    ct_blob_t **out;
    int numa_node; /* DeviceOption.numa_node_id, -1 when unset */
    uint32_t seed; /* DeviceOption.random_seed, or derived */
    bool has_seed;
    void *state; /* schema->state_size bytes */
};

/* Run-time context handed to a kernel. */
struct ct_op_ctx_s {
    ct_op_t *op;
    ct_engine_t *eng;
    int ith, nth;        /* worker index and count */
    int numa_node;       /* NUMA node of the worker, -1 unknown */
    ct_status_t *status; /* this node's own status slot */
    void *sched;         /* executor/pool handle for ct_parallel_for */
    /* Non-NULL while the net is profiled: ct_parallel_for adds where its
     * time went (struct ct__pf_times, scheduler/parallel_for.h). */
    struct ct__pf_times *pf_times;
};

/* ---- intra-op parallelism (scheduler/sched.c) ---- */
/* Body of a parallel loop: handles [begin, end) on participant ith. */
typedef void (*ct_range_fn)(void *arg, int64_t begin, int64_t end, int ith);
/* Splits [0, n) into ranges of at least `grain` elements and runs fn on
 * them, fork-join. With the engine's intra_op mode POOL (default) the
 * ranges run on the engine's pool with the calling thread helping (from a
 * worker this nests without blocking); OPENMP uses an OpenMP team when the
 * op runs outside the pool (simple executor), else the pool; SERIAL, a
 * one-thread engine, or n <= grain call fn(arg, 0, n, 0) inline. fn must
 * not fail: compute errors before the loop. Returns CT_OK, or CT_ENOMEM /
 * CT_EINVAL when the pool could not be created (st of the op's context
 * says why; nothing ran). n <= 0 calls nothing. */
int ct_parallel_for(ct_op_ctx_t *ctx, int64_t n, int64_t grain, ct_range_fn fn,
                    void *arg);

/* ---- in-place rules ---- */
bool ct__inplace_any(int in, int out);
bool ct__inplace_0_0(int in, int out);  /* only input 0 -> output 0 */
bool ct__inplace_same(int in, int out); /* input i -> output i */

/* ---- registry (ops/registry.c, generated from ops/op_list.def) ---- */
const struct ct_op_schema *ct__op_schema_find(const char *type);
/* All schemas, for listings; returns the count. */
size_t ct__op_schema_list(const struct ct_op_schema *const **out);

/* ---- op lifecycle (engine/op.c) ---- */
/* Creates the op for def at net position idx: schema lookup
 * (CT_ENOTFOUND), arity and in-place checks (CT_ESCHEMA), duplicate and
 * typed argument checks (CT_EARG), input binding (CT_ENOTFOUND
 * "Encountered a non-existing input blob: X"), output creation, init_cb.
 * Messages are prefixed `op <idx> "<name>" (<Type>): ` by the caller.
 * When init_cb fails, fini_cb (if set) still runs on the partially filled
 * (zero-initialised) state, so init_cb may simply return its error and
 * fini_cb must accept fields init_cb never reached. Output blobs created
 * before a failure stay in the workspace, as in Caffe2. Engine-side
 * extras (ct__args_check, ct__op_create_ex, ct__op_run) are in
 * engine/op_internal.h. */
int ct__op_create(ct_workspace_t *ws, const Caffe2__OperatorDef *def, int idx,
                  ct_op_t **out, ct_status_t *st);
void ct__op_destroy(ct_op_t *op);
/* Runs op->schema->run_cb with a serial context (ith 0, nth 1). */
int ct__op_run_serial(ct_op_t *op, ct_status_t *st);

/* ---- arguments (engine/args.c), Caffe2's ArgumentHelper rules ---- */
/* The argument named `name`, or NULL (not found). */
const Caffe2__Argument *ct__arg_find(const ct_op_t *op, const char *name);
bool ct__arg_has(const ct_op_t *op, const char *name);
/* Scalar getters: absent -> *out = dflt; present without the field ->
 * CT_EARG "Argument <name> does not have the right field: expected <f>".
 * ct__arg_int32 also checks the value fits (CT_EARG "... out of range"). */
int ct__arg_int(const ct_op_t *op, const char *name, int64_t dflt, int64_t *out,
                ct_status_t *st);
int ct__arg_int32(const ct_op_t *op, const char *name, int32_t dflt,
                  int32_t *out, ct_status_t *st);
int ct__arg_float(const ct_op_t *op, const char *name, float dflt, float *out,
                  ct_status_t *st);
/* *out borrowed from the def (NUL-terminated copy is not made; strings
 * in `s` may contain NULs, use *len). */
int ct__arg_string(const ct_op_t *op, const char *name, const char *dflt,
                   const char **out, size_t *len, ct_status_t *st);
/* Repeated getters: absent -> n = 0. Arrays borrowed from the def. */
int ct__arg_ints(const ct_op_t *op, const char *name, const int64_t **v,
                 size_t *n, ct_status_t *st);
int ct__arg_floats(const ct_op_t *op, const char *name, const float **v,
                   size_t *n, ct_status_t *st);
int ct__arg_strings(const ct_op_t *op, const char *name,
                    const ProtobufCBinaryData **v, size_t *n, ct_status_t *st);

/* ---- kernel helpers (engine/op.c) ---- */
/* Input i as a tensor. CT_ETYPE `input <i> "<blob>" holds <Type>, not a
 * tensor` (or "is empty") otherwise. */
int ct_op_input(ct_op_ctx_t *ctx, int i, const ct_tensor_t **out);
/* Output i as a tensor of dtype dt and the given shape, allocating through
 * the engine budget (CT_ENOMEM names output, shape, dtype and bytes). An
 * output aliasing an input (in-place) keeps its storage when the byte size
 * is unchanged. */
int ct_op_output(ct_op_ctx_t *ctx, int i, ct_dtype_t dt, int ndim,
                 const int64_t *dims, ct_tensor_t **out);
/* Output i as a tensor without resizing it (for ops that share/copy). */
int ct_op_output_tensor(ct_op_ctx_t *ctx, int i, ct_tensor_t **out);
/* Writes the message into ctx->status and returns code. */
int ct_op_fail(ct_op_ctx_t *ctx, int code, const char *fmt, ...)
    CT_PRINTF(3, 4);
/* Names of op input/output i (borrowed from the def). */
const char *ct_op_input_name(const ct_op_t *op, int i);
const char *ct_op_output_name(const ct_op_t *op, int i);

#endif /* CT_OPS_OP_IMPL_H */
