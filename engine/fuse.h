/* cortado internal: net-compile-time op fusion (engine/fuse.c), and the
 * op-side hooks it uses (ops/conv.c, ops/spatial_bn.c).
 *
 * Conv + inference SpatialBN. A Conv whose output X only an is_test
 * SpatialBN (same order) reads gets that BN's per-channel affine
 * y = a[c] * x + b[c] in its GEMM epilogue, while the output tile is in
 * cache, and writes the BN's output blob Y directly; the BN op then only
 * checks its inputs (so its shape errors still name it) and writes
 * nothing. a and b are computed from the BN's scale, bias, mean and var
 * at every run, with the same code (ct__sbn_coeffs) and the same affine
 * kernel (ct__sbn_affine_*) as the unfused BN: the output is bit for bit
 * the unfused one. When the params are unusable at the Conv's run (wrong
 * dtype or size), the Conv writes the plain convolution and the BN runs
 * its full kernel in place on Y, reporting the error as before.
 * X itself is then never written (it stays as it was, usually empty).
 *
 * Conditions (engine/fuse.c): see ct__net_fuse. Off with
 * struct ct_net_config.no_fuse or the environment variable CT_NO_FUSE=1.
 */
#ifndef CT_ENGINE_FUSE_H
#define CT_ENGINE_FUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "cortado/net.h"
#include "ops/op_impl.h"

/* Whether ws reads through to a parent or forwards names to one (the
 * child workspaces of Do and gradient accumulation): nets there are
 * subnets whose blobs the parent may read by name (engine/workspace.c). */
bool ct__workspace_has_parent(const ct_workspace_t *ws);

/* Fuses every eligible Conv -> SpatialBN pair of the net (called once by
 * ct_net_new after the ops and the graph are built, before any run).
 * Returns how many pairs it fused. Never fails: a pair that does not
 * qualify is left alone. cfg->keep_blobs are never left unwritten. */
int ct__net_fuse(ct_net_t *net, const struct ct_net_config *cfg);

/* ---- ops/conv.c ---- */

/* Whether op is a Conv that may take a fused BN; *nhwc gives its order. */
bool ct__conv_fusable(const ct_op_t *op, bool *nhwc);
/* Makes conv apply bn's affine and write bn's output blob (conv->out[0]
 * is rebound to bn->out[0]); marks bn fused. */
void ct__conv_fuse_bn(ct_op_t *conv, ct_op_t *bn);

/* ---- ops/spatial_bn.c ---- */

/* Whether op is an inference SpatialBN (is_test, one output); *nhwc gives
 * its order. */
bool ct__sbn_fusable(const ct_op_t *op, bool *nhwc);
/* Marks bn as fused into the Conv that writes its input. */
void ct__sbn_set_fused(ct_op_t *bn);
/* Called by the fused Conv at run time, for C = c output channels:
 * fills ab[0, c) = a and ab[c, 2c) = b from bn's current inputs and
 * returns true, or returns false when they are not FLOAT [c] tensors (the
 * BN op then runs unfused and reports it). Records the answer for the
 * BN's own run. Writes only bn's state and ab. */
bool ct__sbn_fused_coeffs(ct_op_t *bn, int64_t c, float *ab);

/* The inference coefficients of ops/spatial_bn.c:
 *   rstd = 1 / sqrt((double)var + eps), a = (float)(scale * rstd),
 *   b = (float)(bias - (double)(scale * rstd) * mean),
 * for c channels into ab[0, c) and ab[c, 2c). */
void ct__sbn_coeffs(const float *scale, const float *bias, const float *mean,
                    const float *var, float eps, int64_t c, float *ab);
/* y[k] = a * x[k] + b for k < n (one NCHW channel run). y may be x. */
void ct__sbn_affine_plane(const float *x, float *y, int64_t n, float a,
                          float b);
/* y[k] = al[k] * x[k] + be[k] for k < c (one NHWC pixel). y may be x. */
void ct__sbn_affine_pixel(const float *x, float *y, int64_t c, const float *al,
                          const float *be);

#endif /* CT_ENGINE_FUSE_H */
