/* cortado: parameters for nets without weights.
 *
 * ct_workspace_fill_params runs shape inference over a NetDef from the
 * shapes the workspace already holds (fed inputs, an init net's outputs)
 * and the shapes the caller gives, then creates every blob the net reads
 * but nothing produces: data inputs given a shape get uniform [0, 1)
 * values, and parameters (filters, biases, normalization statistics) get
 * values chosen by the role the consuming op gives them, from a seeded
 * Philox stream, so runs are repeatable. The widths a NetDef does not
 * state (a Conv's output channels M, an FC's N) are fixed by what the net
 * constrains (a given parameter shape, an Add or Sum whose inputs must
 * agree) and otherwise take the default width. Details: docs/models.md.
 * Thread-safety: mutates the workspace (its blob map), so no net may run
 * in it at the time.
 */
#ifndef CORTADO_FILL_H
#define CORTADO_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How parameters are filled. */
enum ct_fill_mode {
    /* No parameters: only the cfg->shapes blobs are created (uniform
     * [0, 1)); no inference runs. */
    CT_FILL_NONE = 0,
    /* Weights, biases and means 0; scales and variances 1 (Caffe2's
     * model-builder initial values, so normalizations stay finite). */
    CT_FILL_ZEROS = 1,
    /* Weights U(-s, s) with s = sqrt(6 / fan_in), fan_in = numel /
     * dims[0]; biases and means U(-0.1, 0.1); scales and variances
     * U(0.5, 1.5). */
    CT_FILL_RANDOM = 2,
    CT_FILL_MODE_COUNT
};

/* A blob and its shape (FLOAT). */
struct ct_fill_shape {
    const char *name;
    int ndim;                  /* 0 .. CT_MAX_DIMS */
    int64_t dims[CT_MAX_DIMS]; /* each >= 0 */
};

/* Parameters; zero-initialise. */
struct ct_fill_config {
    int mode;      /* enum ct_fill_mode */
    uint64_t seed; /* seed of every random value (inputs and parameters) */
    /* Blobs with a given shape: data inputs to create, or parameters
     * whose shape is pinned (which also fixes the widths they imply). */
    const struct ct_fill_shape *shapes;
    size_t n_shapes;
    /* Width of a Conv / ConvTranspose / FC output that nothing fixes
     * (rounded up to a multiple of the op's group); 0 means 64. */
    int64_t default_width;
    /* Optional output, n_shapes entries (NULL: none): set to 1 for each
     * shapes[i] that was created as a parameter, 0 for a data input. */
    unsigned char *shape_is_param;
};

/* What ct_workspace_fill_params did. */
struct ct_fill_report {
    size_t n_inputs;          /* cfg->shapes blobs created as data inputs */
    size_t n_params;          /* parameter blobs created */
    int64_t n_param_elements; /* their elements */
    size_t n_widths;          /* free output widths of the net */
    size_t n_widths_default;  /* of which took the default width */
    double flops;             /* estimated work of one run (ops' cost) */
};

/* Creates the blobs described above in ws for running def. Parameters
 * that already hold a tensor are left alone (their shapes count as
 * given); a cfg->shapes blob is always created anew, replacing a tensor
 * it holds (as feeding an input does); a cfg->shapes name the net never
 * uses is CT_ENOTFOUND. report may be NULL. Errors: CT_EINVAL (bad mode or
 * shape), CT_ENOTFOUND (an input with no shape that is not a parameter: "input
 * 0 "data" of op 0
 * ... has no known shape"), the errors of op creation and of the ops'
 * shape inference (prefixed `op <i> "<name>" (<Type>): `), CT_ENOMEM.
 * On failure no blob has been created or changed (shapes are all
 * inferred before the first blob is written), except on CT_ENOMEM while
 * filling, which may leave some blobs filled.
 * Thread-safety: no net may run in ws meanwhile. */
CT_API int ct_workspace_fill_params(ct_workspace_t *ws, const ct_netdef_t *def,
                                    const struct ct_fill_config *cfg,
                                    struct ct_fill_report *report,
                                    ct_status_t *st);

/* "none", "zeros", "random"; "unknown" otherwise. */
CT_API const char *ct_fill_mode_name(int mode);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_FILL_H */
