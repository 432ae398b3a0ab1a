/* cortado: asynchronous gradient accumulation with scopes (DESIGN §8).
 *
 * ct_netdef_build_grad_accum() turns a forward net with a loss into one
 * step net of K micro-batches. For micro-batch k it emits
 *   CreateScope -> grad_accum/scope_<k>
 *   Do([<input>_<k>..., <param>..., scope_<k>],
 *      [<param>_grad_<k>..., <loss>_<k>, scope_<k>],
 *      net = forward + its gradient ops)
 * The K Do ops share nothing they write, so the dag executor runs them
 * at the same time, each in its own child workspace that sees the
 * parameters read-only through forwards. Then, per parameter,
 *   Sum(<param>_grad_0, ..., <param>_grad_<K-1>) -> <param>_grad
 * adds the gradients in a fixed order (Sum adds in input order), so the
 * result is deterministic and equals the K micro-batches computed one
 * after the other. With lr != 0 the update WeightedSum(<param>, 1,
 * <param>_grad, lr) -> <param> follows (lr negative for descent), and
 * Sum(<loss>_k...) -> <loss> gives the summed loss. See docs/scopes.md.
 *
 * Bits: the step equals the K micro-batches run one after the other,
 * bit for bit, at any thread count and intra-op mode: the ops that split
 * their work with ct_parallel_for cut it by shape only (FC's output tiles,
 * see ops/fc.c), never by the number of threads. CT_INTRA_OP_SERIAL is
 * still the faster choice when K >= threads: the scopes are then the
 * parallelism, and a GEMM cut into tiles inside a busy scope repeats the
 * packing of its operands (docs/training.md, "Benchmark: gradient
 * accumulation").
 *
 * Cost per step: the child workspaces and their compiled subnets are
 * made by the first run and reused (CreateScope empties the stack but
 * keeps its workspaces; each Do finds its subnet cached by name).
 */
#ifndef CORTADO_GRAD_ACCUM_H
#define CORTADO_GRAD_ACCUM_H

#include <stddef.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ct_grad_accum_config {
    int k;                     /* micro-batches, >= 1 */
    const char *const *params; /* parameter blobs (gradients wanted) */
    size_t n_params;
    const char *const *inputs; /* per-micro-batch inputs: "<in>_<k>" */
    size_t n_inputs;
    const char *loss; /* the loss blob of the forward net */
    float lr;         /* 0: no update ops */
};

/* Builds the step net described above from fwd (borrowed; must have a
 * name). *out is freed with ct_netdef_free; its name is "<fwd>_accum",
 * type "dag". Errors: CT_EINVAL (k < 1, no params, no loss, unnamed
 * fwd), the gradient builder's errors, CT_ENOMEM. */
CT_API int ct_netdef_build_grad_accum(const ct_netdef_t *fwd,
                                      const struct ct_grad_accum_config *cfg,
                                      ct_netdef_t **out, ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_GRAD_ACCUM_H */
