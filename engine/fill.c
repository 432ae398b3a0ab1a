/* cortado: parameters for nets without weights (cortado/fill.h).
 *
 * Design note. Everything that can fail on bad input (the config, the
 * shape inference of engine/shape_infer.c) runs before the first blob is
 * written, so an error leaves the workspace as it was. Values: each blob
 * draws from its own Philox stream keyed by the seed and a hash of the
 * blob name, so a blob's values do not depend on which other blobs the
 * net has or on the order they are filled in.
 */
#include <math.h>
#include <string.h>

#include "cortado/blob.h"
#include "cortado/fill.h"
#include "cortado/tensor.h"
#include "engine/alloc.h"
#include "engine/shape_infer.h"
#include "ops/rand.h"

const char *ct_fill_mode_name(int mode)
{
    switch (mode) {
    case CT_FILL_NONE:
        return "none";
    case CT_FILL_ZEROS:
        return "zeros";
    case CT_FILL_RANDOM:
        return "random";
    default:
        return "unknown";
    }
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Values for one blob of `kind` (CT__PARAM_NONE: a data input). */
static void fill_values(int mode, uint64_t seed, const char *name,
                        enum ct__param_kind kind, ct_tensor_t *t)
{
    const int64_t n = ct_tensor_numel(t);
    float *x = ct_tensor_data(t);
    struct ct__rng rng;
    float lo = 0, hi = 1;
    int64_t i;

    if (n == 0)
        return;
    if (mode == CT_FILL_ZEROS && kind != CT__PARAM_NONE) {
        const float v =
            kind == CT__PARAM_SCALE || kind == CT__PARAM_VARIANCE ? 1.0f : 0.0f;
        for (i = 0; i < n; i++)
            x[i] = v;
        return;
    }
    switch (kind) {
    case CT__PARAM_WEIGHT: {
        const int64_t d0 = ct_tensor_ndim(t) > 0 ? ct_tensor_dim(t, 0) : 1;
        const double fan_in = (double)(d0 > 0 ? n / d0 : n);
        hi = (float)sqrt(6.0 / (fan_in > 0 ? fan_in : 1));
        lo = -hi;
        break;
    }
    case CT__PARAM_BIAS:
        lo = -0.1f;
        hi = 0.1f;
        break;
    case CT__PARAM_SCALE:
    case CT__PARAM_VARIANCE:
        lo = 0.5f;
        hi = 1.5f;
        break;
    default: /* data inputs */
        break;
    }
    rng.key = ct__rand_mix64(seed ^ name_hash(name));
    rng.stream = 0;
    ct__rand_uniform_f32(&rng, 0, (size_t)n, lo, hi, x);
}

/* Creates (or refills an empty) blob `name` with a tensor of shape sh. */
static int create_filled(ct_workspace_t *ws, const struct ct_fill_config *cfg,
                         const char *name, const ct_shape_t *sh,
                         enum ct__param_kind kind, ct_status_t *st)
{
    ct_tensor_t *t = NULL;
    ct_blob_t *b = ct_workspace_get_blob(ws, name);
    int rc;

    rc = ct_tensor_new_shape(ct_workspace_engine(ws), CT_DTYPE_F32, sh->ndim,
                             sh->dims, &t, st);
    if (rc == CT_OK && b == NULL)
        rc = ct_workspace_create_blob(ws, name, &b, st);
    if (rc != CT_OK) {
        ct_tensor_free(t);
        ct_status_prefix(st, "filling \"%s\": ", name);
        return rc;
    }
    fill_values(cfg->mode, cfg->seed, name, kind, t);
    ct_blob_reset(b, &ct_blob_type_tensor, t);
    return CT_OK;
}

static int64_t shape_elements(const ct_shape_t *sh)
{
    int64_t n = 1;
    int d;

    for (d = 0; d < sh->ndim; d++)
        n *= sh->dims[d];
    return n;
}

static int check_config(const struct ct_fill_config *cfg, ct_status_t *st)
{
    size_t i, j;
    int d;

    if (cfg->mode < CT_FILL_NONE || cfg->mode >= CT_FILL_MODE_COUNT)
        return ct_status_setf(st, CT_EINVAL, "unknown fill mode %d", cfg->mode);
    if (cfg->default_width < 0)
        return ct_status_setf(st, CT_EINVAL, "default width %lld is negative",
                              (long long)cfg->default_width);
    CT_ASSERT(cfg->n_shapes == 0 || cfg->shapes != NULL,
              "ct_workspace_fill_params: n_shapes without shapes");
    for (i = 0; i < cfg->n_shapes; i++) {
        const struct ct_fill_shape *s = &cfg->shapes[i];
        CT_ASSERT(s->name != NULL,
                  "ct_workspace_fill_params: shape %zu has "
                  "no name",
                  i);
        if (s->ndim < 0 || s->ndim > CT_MAX_DIMS)
            return ct_status_setf(st, CT_EINVAL,
                                  "shape of \"%s\": %d dims (0 to %d allowed)",
                                  s->name, s->ndim, CT_MAX_DIMS);
        for (d = 0; d < s->ndim; d++)
            if (s->dims[d] < 0)
                return ct_status_setf(st, CT_EINVAL,
                                      "shape of \"%s\": dim %d is %lld",
                                      s->name, d, (long long)s->dims[d]);
        for (j = 0; j < i; j++)
            if (strcmp(cfg->shapes[j].name, s->name) == 0)
                return ct_status_setf(st, CT_EINVAL,
                                      "shape of \"%s\" given twice", s->name);
    }
    return CT_OK;
}

/* CT_FILL_NONE: only the given shapes, all as data inputs. */
static int fill_inputs_only(ct_workspace_t *ws, const ct_netdef_t *def,
                            const struct ct_fill_config *cfg,
                            struct ct_fill_report *rep, ct_status_t *st)
{
    size_t i, k, j;
    int rc;

    for (i = 0; i < cfg->n_shapes; i++) {
        const char *name = cfg->shapes[i].name;
        bool used = false;
        for (k = 0; k < def->n_op && !used; k++)
            for (j = 0; j < def->op[k]->n_input && !used; j++)
                used = strcmp(def->op[k]->input[j], name) == 0;
        if (!used)
            return ct_status_setf(st, CT_ENOTFOUND,
                                  "a shape is given for \"%s\", which net "
                                  "\"%s\" never reads",
                                  name, def->name != NULL ? def->name : "");
    }
    for (i = 0; i < cfg->n_shapes; i++) {
        ct_shape_t sh;
        memset(&sh, 0, sizeof(sh));
        sh.dtype = CT_DTYPE_F32;
        sh.ndim = cfg->shapes[i].ndim;
        memcpy(sh.dims, cfg->shapes[i].dims, sizeof(sh.dims));
        rc = create_filled(ws, cfg, cfg->shapes[i].name, &sh, CT__PARAM_NONE,
                           st);
        if (rc != CT_OK)
            return rc;
        rep->n_inputs++;
    }
    return CT_OK;
}

/* cfg->shape_is_param[i] = 1 for the shapes entry named `name`. */
static void mark_shape_param(const struct ct_fill_config *cfg, const char *name)
{
    size_t i;

    if (cfg->shape_is_param == NULL)
        return;
    for (i = 0; i < cfg->n_shapes; i++)
        if (strcmp(cfg->shapes[i].name, name) == 0)
            cfg->shape_is_param[i] = 1;
}

int ct_workspace_fill_params(ct_workspace_t *ws, const ct_netdef_t *def,
                             const struct ct_fill_config *cfg,
                             struct ct_fill_report *report, ct_status_t *st)
{
    struct ct__shape_infer_cfg icfg;
    struct ct__shape_infer_result res;
    struct ct__shape_hint *hints = NULL;
    struct ct_fill_report rep;
    size_t i;
    int rc;

    CT_ASSERT(ws != NULL && def != NULL && cfg != NULL,
              "ct_workspace_fill_params: NULL argument");
    memset(&rep, 0, sizeof(rep));
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    if (cfg->shape_is_param != NULL && cfg->n_shapes > 0)
        memset(cfg->shape_is_param, 0, cfg->n_shapes);
    if ((rc = check_config(cfg, st)) != CT_OK)
        return rc;
    if (cfg->mode == CT_FILL_NONE) {
        rc = fill_inputs_only(ws, def, cfg, &rep, st);
        goto done;
    }
    if (cfg->n_shapes > 0) {
        hints = ct__calloc(cfg->n_shapes, sizeof(*hints));
        if (hints == NULL)
            return ct_status_setf(st, CT_ENOMEM, "out of memory for %zu shapes",
                                  cfg->n_shapes);
    }
    for (i = 0; i < cfg->n_shapes; i++) {
        hints[i].name = cfg->shapes[i].name;
        hints[i].shape.dtype = CT_DTYPE_F32;
        hints[i].shape.ndim = cfg->shapes[i].ndim;
        memcpy(hints[i].shape.dims, cfg->shapes[i].dims,
               sizeof(hints[i].shape.dims));
    }
    memset(&icfg, 0, sizeof(icfg));
    icfg.eng = ct_workspace_engine(ws);
    icfg.def = def;
    icfg.ws = ws;
    icfg.hints = hints;
    icfg.n_hints = cfg->n_shapes;
    icfg.default_width = cfg->default_width;
    icfg.infer_params = true;
    rc = ct__shape_infer(&icfg, &res, st);
    ct__free(hints);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < res.n_blobs && rc == CT_OK; i++) {
        const struct ct__shape_blob *b = &res.blobs[i];
        if (b->param) {
            rc = create_filled(ws, cfg, b->name, &b->shape, b->kind, st);
            rep.n_params++;
        } else if (b->hinted) {
            rc = create_filled(ws, cfg, b->name, &b->shape, b->kind, st);
            if (b->kind != CT__PARAM_NONE) {
                /* shape inference counts only the params it sized; a
                 * parameter whose shape was given counts here. */
                mark_shape_param(cfg, b->name);
                rep.n_params++;
                rep.n_param_elements += shape_elements(&b->shape);
            } else {
                rep.n_inputs++;
            }
        }
    }
    rep.n_param_elements += res.n_param_elements;
    rep.n_widths = res.n_widths;
    rep.n_widths_default = res.n_widths_default;
    rep.flops = res.flops;
    ct__shape_infer_result_destroy(&res);
done:
    if (rc == CT_OK && report != NULL)
        *report = rep;
    return rc;
}
