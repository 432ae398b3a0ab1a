/* cortado: gradients, Caffe2's AddGradientOperators.
 *
 * ct_netdef_add_gradient_ops appends to a NetDef the backward ops that
 * compute the gradient of the given loss blobs with respect to every blob
 * the losses depend on. Naming follows Caffe2: the gradient of blob X is
 * "X_grad"; the loss itself is seeded with a ConstantFill of 1.0 shaped
 * like the loss into "<loss>_grad". The result is an ordinary NetDef:
 * compile it with ct_net_new and run it after the inputs are fed; the
 * parameter gradients then sit in the "<param>_grad" blobs.
 * Thread-safety: the function touches only the NetDef it is given.
 */
#ifndef CORTADO_GRADIENT_H
#define CORTADO_GRADIENT_H

#include <stddef.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Suffix of a gradient blob's name: the gradient of "fc1_w" is
 * "fc1_w" CT_GRAD_SUFFIX. */
#define CT_GRAD_SUFFIX "_grad"

/* Appends the gradient ops of loss_blobs[0..n_loss) to def.
 *
 * The builder plays the ops forward to give every write of a blob its own
 * version, then walks them backwards from the last one. For each op that a
 * gradient flows into (some output's gradient exists), it calls the op's
 * gradient maker, which emits gradient ops such as FCGradient. The
 * gradient ops get a copy of the forward op's device_option, engine and
 * arguments and is_gradient_op set (spec §0.2). When a blob version is
 * read by several ops, each op's contribution is written to
 * "X_grad_autosplit_<k>" (k in the order the contributions are made) and
 * a Sum op, placed before any op that reads the total, adds them into
 * "X_grad". Ops no gradient flows into are skipped, whatever their type.
 *
 * def must come from the library (ct_netdef_read_file, ct_netdef_parse,
 * ct_proto_copy), because the added ops are freed by ct_netdef_free; def
 * is borrowed and modified in place. loss_blobs is borrowed.
 *
 * Do, If and While ops get gradients through their subnets (see
 * docs/scopes.md): a gradient Do pops the workspace the forward Do
 * pushed, a gradient If branches on the same condition, and a gradient
 * While replays the iterations in reverse.
 *
 * Errors (def unchanged):
 *   CT_EINVAL     n_loss is 0, or a loss blob is named twice; or a control
 *                 op is in a form whose gradient is not supported (a While
 *                 whose loop_net is not a single Do with
 *                 copy_external_blobs and without reuse_workspace, a Do
 *                 with reuse_workspace);
 *   CT_ENOTFOUND  a loss blob is not written by any op of def;
 *   CT_ENOTSUP    a gradient flows into an op that has none (its type has
 *                 no gradient maker, like WeightedSum, or is unknown), or
 *                 whose gradient cannot be built (the message names the
 *                 op's index, name and type and the output concerned); or
 *                 a gradient op would read a forward blob that a later op
 *                 overwrote in place (the value it needs is gone);
 *   CT_EEXIST     a gradient blob name is already used by a forward blob;
 *   CT_ENOMEM.
 * Thread-safety: reentrant; def must not be used by another thread. */
CT_API int ct_netdef_add_gradient_ops(ct_netdef_t *def,
                                      const char *const *loss_blobs,
                                      size_t n_loss, ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_GRADIENT_H */
