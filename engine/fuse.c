/* cortado: net-compile-time fusion of Conv + inference SpatialBN (see
 * engine/fuse.h for what the fused pair computes).
 *
 * Design note. The pass runs once, at the end of ct_net_new, over the
 * compiled ops; it changes no graph edge, only two ops' run-time
 * behaviour: the Conv writes the BN's output blob Y (already affine) and
 * the BN only checks its inputs. That is safe when, for a SpatialBN k
 * (is_test, one output) reading X = input 0 and writing Y = output 0, and
 * the Conv i (same order) writing X:
 *   - X is touched by no op but i (writing it) and k (reading it, or
 *     writing it too when the BN is in place), and is no external input,
 *     nor an external output unless the BN is in place (Y = X): nobody
 *     sees that X is no longer written;
 *   - when Y != X, no op before k other than through k reads or writes Y,
 *     and i does not read it: writing Y at i's time instead of k's changes
 *     nothing any op can see, under either executor (every reader and
 *     later writer of Y waits for k, which waits for i);
 *   - no op of the net writes the BN's scale, bias, mean or var, and none
 *     of them is X or Y: reading them at i's time equals reading them at
 *     k's.
 * The whole pass is skipped when observers are attached at creation
 * (they may look at each op's own outputs), when an op of the net runs
 * subnets (which touch blobs the pass cannot see), and with
 * CT_NO_FUSE=1 or struct ct_net_config.no_fuse. Observers attached later
 * see the fused ops: the BN then takes about no time.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/fuse.h"
#include "engine/net_impl.h"

static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Whether any of names[0, n) is `name`. */
static bool has_name(char *const *names, size_t n, const char *name)
{
    size_t k;

    for (k = 0; k < n; k++)
        if (same(names[k], name))
            return true;
    return false;
}

/* Whether op j reads (read) or writes (write) blob `name`. */
static bool touches(const Caffe2__OperatorDef *d, const char *name, bool read,
                    bool write)
{
    return (read && has_name(d->input, d->n_input, name)) ||
           (write && has_name(d->output, d->n_output, name));
}

static bool env_off(void)
{
    const char *v = getenv("CT_NO_FUSE");

    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* Whether Conv i -> SpatialBN k may fuse (see the design note). */
static bool pair_ok(const ct_net_t *net, const struct ct_net_config *cfg, int i,
                    int k)
{
    const Caffe2__NetDef *def = net->def;
    const Caffe2__OperatorDef *conv = def->op[i], *bn = def->op[k];
    const char *x = bn->input[0], *y = bn->output[0];
    size_t p;
    int j;

    if (!same(conv->output[0], x) ||
        has_name(def->external_input, def->n_external_input, x) ||
        has_name((char *const *)cfg->keep_blobs, cfg->n_keep_blobs, x) ||
        (!same(x, y) &&
         has_name(def->external_output, def->n_external_output, x)) ||
        touches(conv, x, true, false) || touches(conv, y, true, false))
        return false;
    for (p = 1; p < bn->n_input; p++)
        if (same(bn->input[p], x) || same(bn->input[p], y))
            return false;
    for (j = 0; j < net->n_ops; j++) {
        const Caffe2__OperatorDef *d = def->op[j];
        if (j == i || j == k)
            continue;
        if (touches(d, x, true, true) ||
            (j < k && !same(x, y) && touches(d, y, true, true)))
            return false;
        for (p = 1; p < bn->n_input && p <= 4; p++)
            if (touches(d, bn->input[p], false, true))
                return false;
    }
    /* The Conv may not write its own BN's params either. */
    for (p = 1; p < bn->n_input && p <= 4; p++)
        if (touches(conv, bn->input[p], false, true))
            return false;
    return true;
}

int ct__net_fuse(ct_net_t *net, const struct ct_net_config *cfg)
{
    int i, k, n_fused = 0;

    if (env_off() || net->obs != NULL)
        return 0;
    for (i = 0; i < net->n_ops; i++)
        if (net->ops[i]->schema->flags & CT_OP_F_HAS_SUBNET)
            return 0;
    for (k = 0; k < net->n_ops; k++) {
        const Caffe2__OperatorDef *bn = net->def->op[k];
        bool bn_nhwc, conv_nhwc;

        if (!ct__sbn_fusable(net->ops[k], &bn_nhwc) || bn->n_input < 5)
            continue;
        /* The last writer of X before k. */
        for (i = k - 1; i >= 0; i--)
            if (touches(net->def->op[i], bn->input[0], false, true))
                break;
        if (i < 0 || !ct__conv_fusable(net->ops[i], &conv_nhwc) ||
            conv_nhwc != bn_nhwc || !pair_ok(net, cfg, i, k))
            continue;
        ct__conv_fuse_bn(net->ops[i], net->ops[k]);
        n_fused++;
    }
    return n_fused;
}
