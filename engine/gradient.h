/* cortado internal: what a gradient maker sees (engine/gradient.c).
 *
 * A maker is the `grad_cb` of an op schema (ops/op_impl.h). The backward
 * builder, ct_netdef_add_gradient_ops, calls it once for every forward op
 * that a gradient flows into, walking the net from its last op to its
 * first, with a struct ct__grad_ctx describing that op. The maker
 *   - reads the gradient blob of each forward output with ct__grad_out
 *     (NULL where no gradient flows into that output);
 *   - names forward blobs its gradient ops read with ct__grad_fwd_in /
 *     ct__grad_fwd_out, so the builder can check that no later in-place op
 *     overwrote the value the gradient needs;
 *   - asks for the blob that must receive the gradient of forward input i
 *     with ct__grad_in, which also declares that it computes one (inputs it
 *     never asks about get no gradient, e.g. labels);
 *   - appends gradient OperatorDefs with ct__grad_emit.
 * The builder copies device_option, engine and every argument of the
 * forward op into each emitted op (Caffe2's GetGradientForOp), marks it
 * is_gradient_op, and does the naming: the gradient of a blob X is
 * "X_grad"; when a blob version is read by several ops, each op's
 * contribution gets a unique "X_grad_autosplit_<k>" and a Sum op adds
 * them into "X_grad" once every contribution exists. Makers therefore
 * never deal with accumulation or versions.
 *
 * Makers must not keep the pointers they get past their return; every
 * string returned here is owned by the builder. A maker that fails
 * returns the code with st filled; the builder adds the op's index, name
 * and type and discards everything it built (the NetDef is unchanged).
 */
#ifndef CT_ENGINE_GRADIENT_H
#define CT_ENGINE_GRADIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/error.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

struct ct__grad_builder;

struct ct__grad_ctx {
    /* The forward op (borrowed from the NetDef) and its position. */
    const Caffe2__OperatorDef *def;
    int idx;
    /* Everything below belongs to the builder; use the functions. */
    struct ct__grad_builder *b;
    const char *const *grad_out; /* def->n_output entries, NULL = none */
    const char *const *grad_in;  /* def->n_input names to write to */
    bool *in_used;               /* set by ct__grad_in */
    bool *need_in, *need_out;    /* set by ct__grad_fwd_in / _out */
};

/* Flags of ct__grad_emit. */
enum ct__grad_emit_flags {
    /* Do not copy the forward op's arguments into the new op (Caffe2's
     * CopyArguments() == false, e.g. Reshape's gradient). */
    CT__GRAD_NO_ARGS = 1u << 0,
};

/* Gradient blob of forward output i, or NULL when no gradient flows into
 * it. At least one output of the op has one when the maker runs. */
const char *ct__grad_out(const struct ct__grad_ctx *g, int i);
/* Like ct__grad_out, but a missing gradient is CT_ENOTSUP naming output
 * i of the op (for makers whose gradient op needs every output's). */
int ct__grad_need_out(const struct ct__grad_ctx *g, int i, const char **name,
                      ct_status_t *st);
/* The blob that must receive the gradient of forward input i; calling it
 * declares that the maker writes that blob. Never fails. */
const char *ct__grad_in(struct ct__grad_ctx *g, int i);
/* Name of forward input i / output i, recorded as a value the gradient
 * ops read (at the version the forward op saw). Never fails. */
const char *ct__grad_fwd_in(struct ct__grad_ctx *g, int i);
const char *ct__grad_fwd_out(struct ct__grad_ctx *g, int i);

/* Appends the gradient op type(in[0..n_in)) -> out[0..n_out). The names
 * are copied. device_option, engine and (unless CT__GRAD_NO_ARGS) the
 * forward op's arguments are copied in; is_gradient_op is set. When op is
 * not NULL it receives the new op (owned by the builder, valid until the
 * maker returns) for ct__grad_op_set_*. Errors: CT_ENOMEM. */
int ct__grad_emit(struct ct__grad_ctx *g, const char *type,
                  const char *const *in, int n_in, const char *const *out,
                  int n_out, unsigned flags, Caffe2__OperatorDef **op,
                  ct_status_t *st);
/* Sets argument `name` of an emitted op, replacing a copied forward
 * argument of that name. Errors: CT_ENOMEM (the op keeps its old value). */
int ct__grad_op_set_int(Caffe2__OperatorDef *op, const char *name, int64_t v,
                        ct_status_t *st);
int ct__grad_op_set_float(Caffe2__OperatorDef *op, const char *name, float v,
                          ct_status_t *st);
/* The same for a list of ints (`ints`, copied), e.g. Transpose's axes. */
int ct__grad_op_set_ints(Caffe2__OperatorDef *op, const char *name,
                         const int64_t *v, size_t n, ct_status_t *st);

/* The maker of ops that stop gradients (Caffe2's NO_GRADIENT: fills,
 * Iter, LearningRate, StopGradient, data ops): emits nothing and declares
 * no input gradient. Ops whose schema has grad_cb == NULL instead make
 * the builder fail when a gradient flows into them (Caffe2's
 * SHOULD_NOT_DO_GRADIENT and unregistered makers). */
int ct__grad_none(struct ct__grad_ctx *g, ct_status_t *st);

#endif /* CT_ENGINE_GRADIENT_H */
