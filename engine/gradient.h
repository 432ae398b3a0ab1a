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

/* Copies n strings into a fresh array (*dst, *n_dst). On CT_ENOMEM the
 * partial copy is left in *dst for the caller's proto free. */
int ct__grad_copy_strv(char ***dst, size_t *n_dst, const char *const *src,
                       int n);

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

/* ---- gradients through subnets (Do, If, While) ----
 *
 * ct__grad_subnet runs the same builder on a subnet (a Do's `net`, an
 * If's branches, a While's `loop_net`) with given gradients instead of
 * loss seeds: seeds[i].grad holds the gradient of the value seeds[i].blob
 * has when the subnet ends. The result holds the gradient ops, and for
 * each blob the gradient of the value it had when the subnet started
 * (version 0), which may be a seed blob itself when the subnet does not
 * touch that blob. Gradient names are "<blob><suffix>", where the suffix
 * is the parent build's suffix with cfg->tag appended (so names of
 * nested builds that run in the same workspace cannot collide), or
 * CT_GRAD_SUFFIX when tag is NULL (a Do's subnet, which runs in its own
 * workspace). Reads of a forward value that a later op of the subnet
 * overwrote are errors as in a whole-net build, except version-0 reads of
 * a blob listed in cfg->saved, which are redirected to
 * "<blob><saved_suffix>" (the copy a forward Do keeps of blobs its subnet
 * reads and then overwrites). */
struct ct__grad_seed {
    const char *blob; /* forward blob of the subnet */
    const char *grad; /* blob holding the gradient of its final value */
};

struct ct__grad_sub_cfg {
    const struct ct__grad_seed *seeds;
    size_t n_seeds;
    const char *tag; /* see above; NULL = fresh CT_GRAD_SUFFIX names */
    const char *const *saved;
    size_t n_saved;
    const char *saved_suffix;
};

struct ct__grad_sub {
    Caffe2__OperatorDef **ops; /* owned, in run order */
    size_t n_ops;
    char **blob, **grad; /* version-0 gradients: grad[i] of blob[i] */
    size_t n_grad;
    char **state; /* forward blobs the ops write on purpose (scopes) */
    size_t n_state;
};

/* Builds the gradient of net. g is the maker's context (for the suffix;
 * may be NULL with tag NULL). On failure *out is empty and st names the
 * subnet and its op. Errors: those of ct_netdef_add_gradient_ops,
 * CT_EINVAL for a blob seeded twice. */
int ct__grad_subnet(struct ct__grad_ctx *g, const Caffe2__NetDef *net,
                    const struct ct__grad_sub_cfg *cfg,
                    struct ct__grad_sub *out, ct_status_t *st);
/* Frees what a subnet build returned; the struct is zeroed. NULL ok. */
void ct__grad_sub_release(struct ct__grad_sub *r);
/* The version-0 gradient of blob, or NULL when none flows into it. */
const char *ct__grad_sub_find(const struct ct__grad_sub *r, const char *blob);
/* Declares that the emitted ops may write forward blob `blob` (a scope
 * blob whose WorkspaceStack a gradient Do pops); other writes of forward
 * blobs are CT_EEXIST. Errors: CT_ENOMEM. */
int ct__grad_mark_state(struct ct__grad_ctx *g, const char *blob,
                        ct_status_t *st);
/* The suffix of the gradient names of the build g belongs to. */
const char *ct__grad_suffix(const struct ct__grad_ctx *g);

/* Helpers to assemble the subnets of gradient ops. ct__grad_opdef_new
 * makes a bare OperatorDef (no arguments, no context); the caller owns
 * it. ct__grad_netdef_append takes ownership of op (freed on failure);
 * ct__grad_op_set_net takes ownership of net (freed on failure).
 * Errors: CT_ENOMEM. */
int ct__grad_opdef_new(const char *type, const char *const *in, int n_in,
                       const char *const *out, int n_out,
                       Caffe2__OperatorDef **res, ct_status_t *st);
int ct__grad_netdef_new(const char *name, Caffe2__NetDef **res,
                        ct_status_t *st);
int ct__grad_netdef_append(Caffe2__NetDef *net, Caffe2__OperatorDef *op,
                           ct_status_t *st);
int ct__grad_op_set_net(Caffe2__OperatorDef *op, const char *name,
                        Caffe2__NetDef *net, ct_status_t *st);
int ct__grad_op_set_strings(Caffe2__OperatorDef *op, const char *name,
                            const char *const *v, size_t n, ct_status_t *st);

#endif /* CT_ENGINE_GRADIENT_H */
