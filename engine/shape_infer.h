/* cortado internal: static shape inference over a NetDef, and the shapes
 * of the parameters a net reads but nothing produces.
 *
 * ct__shape_infer walks the ops in order, starting from the shapes the
 * caller knows (tensors already in a workspace, shapes given by name) and
 * calling each op's infer_cb. An input that is neither known nor written
 * by an earlier op is a parameter; its shape comes from the consuming op's
 * parameter rule (engine/param_rules.c): every dim the data input fixes
 * (a Conv filter's C / group and kernel, FC's K, SpatialBN's C) is taken
 * from it, and the op's one free dim, its output width (Conv's M, FC's
 * N), is a "free width".
 *
 * Free widths. A NetDef does not state them (only the weights do), so
 * each starts as a symbol and is fixed, in order of precedence, by
 *   1. a shape the caller gives for that parameter (e.g. --input-shape
 *      conv1_w=96,3,11,11 pins conv1's M = 96);
 *   2. a later op that needs it equal to a known dim: a Sum / Add / Mul
 *      or Concat whose inputs must agree (ResNet's shortcut branch fixes
 *      the residual branch's width), or a consumer whose parameter was
 *      given (conv2_w given fixes conv1's M through conv2's C);
 *   3. otherwise the default width (64, rounded up to a multiple of the
 *      op's group).
 * Symbols are large distinct sentinel values in [2^22, 2^23) that every
 * infer_cb carries along like real dims; when an op rejects its inputs,
 * or a rule reports a dim that must equal another, and a sentinel is
 * involved, the two are unified (symbol := known value, or two symbols
 * merged) and the walk restarts. Each restart removes a symbol, so there
 * are at most n_widths + 2 walks; the last one runs with every symbol
 * replaced by its value and must pass cleanly.
 *
 * Thread-safety: none inside; distinct calls share nothing but the
 * engine (whose notices are thread-safe).
 */
#ifndef CT_ENGINE_SHAPE_INFER_H
#define CT_ENGINE_SHAPE_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/workspace.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

/* What a parameter holds, which decides how it is filled. */
enum ct__param_kind {
    CT__PARAM_NONE = 0, /* a data input, not a parameter */
    CT__PARAM_WEIGHT,   /* fan-in scaled: U(-s, s), s = sqrt(6 / fan_in) */
    CT__PARAM_BIAS,     /* near 0 (biases, shifts, means) */
    CT__PARAM_SCALE,    /* near 1 (multipliers) */
    CT__PARAM_VARIANCE, /* positive (SpatialBN variances) */
    CT__PARAM_KIND_COUNT
};

/* At most this many "must be equal" pairs per rule call. */
#define CT__PARAM_MAX_EQ 8

/* What a parameter rule sees and fills. */
struct ct__param_ctx {
    const ct_op_t *op;
    /* op->n_in shapes: known ones set, the missing ones (missing[i]) to
     * be filled by the rule. */
    ct_shape_t *in;
    const bool *missing;
    /* Out: per input, CT__PARAM_NONE for data inputs; every parameter
     * position gets its kind, missing or not. */
    enum ct__param_kind *kind;
    /* The op's free width to use for missing parameters. */
    int64_t width;
    /* Out: > 0 when the op has a free width (a missing parameter used
     * it); the width must then be a multiple of width_mult (the group). */
    int64_t width_mult;
    /* Out: pairs of dims that must be equal for the op to accept its
     * inputs (e.g. X's C and a given filter's C * group). Elementwise ops
     * (Sum, Add, ...) need no rule for this: when they reject inputs, the
     * differing dims are unified. */
    int n_eq;
    int64_t eq[CT__PARAM_MAX_EQ][2];
};

/* Shapes the missing parameters of one op. CT_ESHAPE names the input
 * whose shape is needed but unknown, CT_EARG a missing kernel argument. */
typedef int (*ct__param_rule_fn)(struct ct__param_ctx *c, ct_status_t *st);

/* The rule for an op type (Conv, ConvTranspose, FC, FCTransposed,
 * SpatialBN, Add, Sub, Mul, Div, Sum), or NULL (not found). */
ct__param_rule_fn ct__param_rule_find(const char *type);

/* A blob name with a shape the caller gives. */
struct ct__shape_hint {
    const char *name;
    ct_shape_t shape;
};

struct ct__shape_infer_cfg {
    ct_engine_t *eng;
    const Caffe2__NetDef *def;
    /* Tensors already in this workspace have known shapes; may be NULL. */
    const ct_workspace_t *ws;
    const struct ct__shape_hint *hints;
    size_t n_hints;
    /* Width for free widths nothing fixes; <= 0 means 64. */
    int64_t default_width;
    /* When false, a parameter is an error (CT_ENOTFOUND naming it). */
    bool infer_params;
};

/* One blob of the net (every name an op reads or writes, plus the
 * external inputs and outputs). */
struct ct__shape_blob {
    const char *name; /* borrowed from the def */
    /* Final shape after the walk (of the last writer; the given one for
     * hinted blobs); ndim < 0 unknown. */
    ct_shape_t shape;
    bool known;  /* shape given (workspace tensor or hint) */
    bool hinted; /* given by a hint (which wins over a workspace tensor) */
    bool param;  /* read before any op writes it, not known: filled */
    /* For params and hinted blobs: the kind from the first consumer. */
    enum ct__param_kind kind;
    int consumer; /* first op reading it, -1 none */
};

struct ct__shape_infer_result {
    size_t n_blobs;
    struct ct__shape_blob *blobs; /* in order of first appearance */
    size_t n_params;
    int64_t n_param_elements;
    size_t n_widths;         /* free widths of the net */
    size_t n_widths_default; /* of which took the default */
    size_t n_walks;          /* walks over the net (restarts + 1) */
    double flops;            /* sum of the ops' cost_cb (estimate) */
};

/* Runs the inference. res is caller-owned and filled on success; release
 * it with ct__shape_infer_result_destroy (also safe after a failure).
 * Errors: the first op whose infer_cb or parameter rule fails, prefixed
 * `op <i> "<name>" (<Type>): ` (st->node = i); CT_ENOTFOUND for an input
 * with no shape that cannot be a parameter ("input <k> "<x>" of op ...
 * has no known shape; feed it or give its shape"); op creation errors;
 * CT_ENOMEM. */
int ct__shape_infer(const struct ct__shape_infer_cfg *cfg,
                    struct ct__shape_infer_result *res, ct_status_t *st);
void ct__shape_infer_result_destroy(struct ct__shape_infer_result *res);

#endif /* CT_ENGINE_SHAPE_INFER_H */
