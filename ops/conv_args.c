/* cortado: argument parsing of the convolution and pooling ops (Caffe2's
 * ConvPoolOpBase / ConvTransposeUnpoolBase rules; see ops/conv_pool.h).
 *
 * Design note. Every spatial argument comes in a family of three forms
 * (a list, a scalar for 2-d, one scalar per dim); read_family reads
 * whichever is given and refuses mixtures and half pairs, so the rest of
 * the parser works on plain arrays and names each value as the user
 * wrote it ("kernels[1]", "kernel", "pad_b") in its messages. Runs once
 * per op, at creation; error paths only format into the caller's status.
 */
#include <stdio.h>
#include <string.h>

#include "ops/conv_pool.h"

/* ---- argument families ---- */

/* One argument family: the list form, the scalar form (expanding to
 * n_one values) and the per-dim form (n_pair names, all required). */
struct fam {
    const char *list;
    const char *one;
    int n_one;
    const char *pair[4];
    int n_pair;
};

enum form { FORM_NONE, FORM_LIST, FORM_ONE, FORM_PAIR };

#define FAM_MAX (2 * CT_CONV_MAX_SP)

struct fam_val {
    enum form form;
    int n;
    int32_t v[FAM_MAX];
};

static const struct fam fam_kernel = {
    "kernels", "kernel", 2, {"kernel_h", "kernel_w"}, 2};
static const struct fam fam_stride = {
    "strides", "stride", 2, {"stride_h", "stride_w"}, 2};
static const struct fam fam_dilation = {
    "dilations", "dilation", 2, {"dilation_h", "dilation_w"}, 2};
static const struct fam fam_pad = {
    "pads", "pad", 4, {"pad_t", "pad_l", "pad_b", "pad_r"}, 4};
static const struct fam fam_adj = {"adjs", "adj", 2, {"adj_h", "adj_w"}, 2};

/* Name of value i of a family as the user wrote it ("kernels[1]",
 * "kernel", "pad_b"). */
static const char *val_name(const struct fam *f, const struct fam_val *fv,
                            int i, char *buf, size_t size)
{
    switch (fv->form) {
    case FORM_LIST:
        snprintf(buf, size, "%s[%d]", f->list, i);
        return buf;
    case FORM_ONE:
        return f->one;
    case FORM_PAIR:
        return f->pair[i];
    case FORM_NONE:
        break;
    }
    snprintf(buf, size, "%s (default)", f->one);
    return buf;
}

static int read_family(const ct_op_t *op, const struct fam *f,
                       struct fam_val *fv, ct_status_t *st)
{
    const int64_t *lv;
    size_t ln;
    bool has_one = ct__arg_has(op, f->one);
    int n_pair = 0, i, rc;
    const char *missing = NULL;

    memset(fv, 0, sizeof(*fv));
    if ((rc = ct__arg_ints(op, f->list, &lv, &ln, st)) != CT_OK)
        return rc;
    for (i = 0; i < f->n_pair; i++) {
        if (ct__arg_has(op, f->pair[i]))
            n_pair++;
        else if (missing == NULL)
            missing = f->pair[i];
    }
    if (ln > 0 && has_one)
        return ct_status_setf(st, CT_EARG,
                              "%s and %s both given; use one of them", f->one,
                              f->list);
    if (n_pair > 0 && (ln > 0 || has_one))
        return ct_status_setf(st, CT_EARG, "%s and %s both given; use one form",
                              f->pair[0], ln > 0 ? f->list : f->one);
    if (n_pair > 0 && n_pair < f->n_pair) {
        char names[64] = "";
        for (i = 0; i < f->n_pair; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names),
                     "%s%s", i ? ", " : "", f->pair[i]);
        return ct_status_setf(st, CT_EARG,
                              "%s must be given together: %s is missing", names,
                              missing);
    }
    if (ln > 0) {
        if (ln > FAM_MAX)
            return ct_status_setf(st, CT_ENOTSUP,
                                  "%s has %zu values: at most %d spatial "
                                  "dims are supported",
                                  f->list, ln, CT_CONV_MAX_SP);
        for (i = 0; i < (int)ln; i++) {
            if (lv[i] < INT32_MIN || lv[i] > INT32_MAX)
                return ct_status_setf(st, CT_EARG,
                                      "%s[%d] = %lld is out of range for int32",
                                      f->list, i, (long long)lv[i]);
            fv->v[i] = (int32_t)lv[i];
        }
        fv->form = FORM_LIST;
        fv->n = (int)ln;
    } else if (has_one) {
        int32_t x;
        if ((rc = ct__arg_int32(op, f->one, 0, &x, st)) != CT_OK)
            return rc;
        for (i = 0; i < f->n_one; i++)
            fv->v[i] = x;
        fv->form = FORM_ONE;
        fv->n = f->n_one;
    } else if (n_pair == f->n_pair) {
        for (i = 0; i < f->n_pair; i++)
            if ((rc = ct__arg_int32(op, f->pair[i], 0, &fv->v[i], st)) != CT_OK)
                return rc;
        fv->form = FORM_PAIR;
        fv->n = f->n_pair;
    }
    return CT_OK;
}

/* Fills an absent family with n copies of dflt, else checks its count. */
static int family_count(const struct fam *f, struct fam_val *fv, int n,
                        int32_t dflt, const char *why, ct_status_t *st)
{
    int i;

    if (fv->form == FORM_NONE) {
        for (i = 0; i < n; i++)
            fv->v[i] = dflt;
        fv->n = n;
        return CT_OK;
    }
    if (fv->n != n)
        return ct_status_setf(st, CT_EARG, "%s has %d values but needs %d (%s)",
                              fv->form == FORM_LIST  ? f->list
                              : fv->form == FORM_ONE ? f->one
                                                     : f->pair[0],
                              fv->n, n, why);
    return CT_OK;
}

/* Every value of the family must be > lo (strict) or >= lo. */
static int family_min(const struct fam *f, const struct fam_val *fv, int32_t lo,
                      bool strict, ct_status_t *st)
{
    char buf[32];
    int i;

    for (i = 0; i < fv->n; i++) {
        if (strict ? fv->v[i] > lo : fv->v[i] >= lo)
            continue;
        return ct_status_setf(st, CT_EARG, "%s = %d must be %s %d",
                              val_name(f, fv, i, buf, sizeof(buf)),
                              (int)fv->v[i], strict ? ">" : ">=", (int)lo);
    }
    return CT_OK;
}

static const char *legacy_name(int lp)
{
    static const char *const names[] = {"NOTSET", "VALID", "SAME",
                                        "CAFFE_LEGACY_POOLING"};
    return lp >= 0 && lp <= 3 ? names[lp] : "?";
}

/* Global pooling: strides and dilations 1, pads 0 (Caffe2's check). */
static int global_check(const struct fam *f, const struct fam_val *fv,
                        int32_t want, ct_status_t *st)
{
    char buf[32];
    int i;

    for (i = 0; i < fv->n; i++)
        if (fv->v[i] != want)
            return ct_status_setf(st, CT_EARG,
                                  "global_pooling is set, so %s = %d is not "
                                  "allowed (pads must be 0, strides and "
                                  "dilations 1)",
                                  val_name(f, fv, i, buf, sizeof(buf)),
                                  (int)fv->v[i]);
    return CT_OK;
}

static int parse_common(const ct_op_t *op, enum ct__conv_kind kind,
                        struct ct__conv_args *a, ct_status_t *st)
{
    const char *order;
    size_t order_len;
    int32_t lp, gp = 0;
    int rc;

    memset(a, 0, sizeof(*a));
    if ((rc = ct__arg_int32(op, "legacy_pad", 0, &lp, st)) != CT_OK)
        return rc;
    if (lp < 0 || lp > 3)
        return ct_status_setf(st, CT_EARG,
                              "legacy_pad = %d is not one of 0 (NOTSET), 1 "
                              "(VALID), 2 (SAME), 3 (CAFFE_LEGACY_POOLING)",
                              (int)lp);
    a->legacy_pad = lp;
    if (kind == CT_CONV_KIND_TRANSPOSE && lp == CT_LEGACY_PAD_CAFFE)
        return ct_status_setf(st, CT_EARG,
                              "legacy_pad = 3 (CAFFE_LEGACY_POOLING) is not "
                              "supported by ConvTranspose");
    if (kind != CT_CONV_KIND_TRANSPOSE &&
        (rc = ct__arg_int32(op, "global_pooling", 0, &gp, st)) != CT_OK)
        return rc;
    if (gp != 0 && kind != CT_CONV_KIND_POOL)
        return ct_status_setf(st, CT_EARG,
                              "global_pooling = %d: only pooling ops pool "
                              "globally",
                              (int)gp);
    a->global_pooling = gp != 0;
    if ((rc = ct__arg_int32(op, "group", 1, &a->group, st)) != CT_OK)
        return rc;
    if (kind != CT_CONV_KIND_POOL && a->group <= 0)
        return ct_status_setf(st, CT_EARG, "group = %d must be > 0",
                              (int)a->group);
    rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st);
    if (rc != CT_OK)
        return rc;
    if (order_len == 4 && memcmp(order, "NHWC", 4) == 0)
        a->nhwc = true;
    else if (order_len != 4 || memcmp(order, "NCHW", 4) != 0)
        return ct_status_setf(st, CT_EARG, "order \"%.*s\" is not NCHW or NHWC",
                              (int)(order_len > 32 ? 32 : order_len), order);
    return CT_OK;
}

int ct__conv_args_parse(const ct_op_t *op, enum ct__conv_kind kind,
                        struct ct__conv_args *a, ct_status_t *st)
{
    struct fam_val kv, sv, dv, pv, av;
    char buf[32], buf2[32];
    bool sized;
    int n, i, rc;

    if ((rc = parse_common(op, kind, a, st)) != CT_OK ||
        (rc = read_family(op, &fam_kernel, &kv, st)) != CT_OK ||
        (rc = read_family(op, &fam_stride, &sv, st)) != CT_OK ||
        (rc = read_family(op, &fam_dilation, &dv, st)) != CT_OK ||
        (rc = read_family(op, &fam_pad, &pv, st)) != CT_OK)
        return rc;
    memset(&av, 0, sizeof(av));
    if (kind == CT_CONV_KIND_TRANSPOSE &&
        (rc = read_family(op, &fam_adj, &av, st)) != CT_OK)
        return rc;
    if ((a->legacy_pad == CT_LEGACY_PAD_VALID ||
         a->legacy_pad == CT_LEGACY_PAD_SAME) &&
        pv.form != FORM_NONE)
        return ct_status_setf(st, CT_EARG,
                              "legacy_pad = %d (%s) computes the padding, so "
                              "%s must not be given",
                              a->legacy_pad, legacy_name(a->legacy_pad),
                              val_name(&fam_pad, &pv, 0, buf, sizeof(buf)));
    if (kv.form == FORM_NONE && !a->global_pooling)
        return ct_status_setf(st, CT_EARG,
                              "kernel not given: set kernel, kernel_h and "
                              "kernel_w, or kernels");
    if (kv.n > CT_CONV_MAX_SP)
        return ct_status_setf(st, CT_ENOTSUP,
                              "kernels has %d values: at most %d spatial "
                              "dims are supported",
                              kv.n, CT_CONV_MAX_SP);
    n = kv.n;
    a->n_sp = n;
    if (a->global_pooling) {
        /* The input gives the kernel; Caffe2 only asks for kernel >= 0 and
         * neutral strides, pads and dilations. */
        if ((rc = family_min(&fam_kernel, &kv, 0, false, st)) != CT_OK ||
            (rc = global_check(&fam_stride, &sv, 1, st)) != CT_OK ||
            (rc = global_check(&fam_dilation, &dv, 1, st)) != CT_OK ||
            (rc = global_check(&fam_pad, &pv, 0, st)) != CT_OK)
            return rc;
        for (i = 0; i < CT_CONV_MAX_SP; i++) {
            a->stride[i] = 1;
            a->dilation[i] = 1;
        }
        return CT_OK;
    }
    sized = a->legacy_pad != CT_LEGACY_PAD_VALID &&
            a->legacy_pad != CT_LEGACY_PAD_SAME;
    if ((rc = family_count(&fam_stride, &sv, n, 1, "one per kernel dim", st)) !=
            CT_OK ||
        (rc = family_count(&fam_dilation, &dv, n, 1, "one per kernel dim",
                           st)) != CT_OK ||
        (sized &&
         (rc = family_count(&fam_pad, &pv, 2 * n, 0,
                            "begin and end per kernel dim", st)) != CT_OK) ||
        (kind == CT_CONV_KIND_TRANSPOSE &&
         (rc = family_count(&fam_adj, &av, n, 0, "one per kernel dim", st)) !=
             CT_OK))
        return rc;
    if (!sized) {
        pv.n = 2 * n;
        memset(pv.v, 0, sizeof(pv.v));
    }
    if ((rc = family_min(&fam_kernel, &kv, 0, true, st)) != CT_OK ||
        (rc = family_min(&fam_stride, &sv, 0, true, st)) != CT_OK ||
        (rc = family_min(&fam_dilation, &dv, 0, true, st)) != CT_OK ||
        (rc = family_min(&fam_pad, &pv, 0, false, st)) != CT_OK ||
        (rc = family_min(&fam_adj, &av, 0, false, st)) != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        const char *dn = val_name(&fam_dilation, &dv, i, buf, sizeof(buf));
        if (dv.v[i] != 1 && kind == CT_CONV_KIND_POOL)
            return ct_status_setf(st, CT_EARG,
                                  "%s = %d: pooling does not support dilation",
                                  dn, (int)dv.v[i]);
        if (dv.v[i] != 1 && kind == CT_CONV_KIND_TRANSPOSE)
            return ct_status_setf(st, CT_EARG,
                                  "%s = %d: ConvTranspose does not support "
                                  "dilation",
                                  dn, (int)dv.v[i]);
        if (dv.v[i] != 1 && a->legacy_pad == CT_LEGACY_PAD_SAME)
            return ct_status_setf(st, CT_EARG,
                                  "%s = %d: legacy_pad = 2 (SAME) does not "
                                  "support dilation",
                                  dn, (int)dv.v[i]);
        if (kind == CT_CONV_KIND_TRANSPOSE && av.v[i] > sv.v[i])
            return ct_status_setf(
                st, CT_EARG, "%s = %d must be in [0, %s = %d]",
                val_name(&fam_adj, &av, i, buf, sizeof(buf)), (int)av.v[i],
                val_name(&fam_stride, &sv, i, buf2, sizeof(buf2)),
                (int)sv.v[i]);
    }
    if (kind == CT_CONV_KIND_POOL) {
        /* Caffe2's PoolOp: "Pad should be smaller than kernel." */
        for (i = 0; i < 2 * n; i++)
            if (pv.v[i] >= kv.v[i % n])
                return ct_status_setf(
                    st, CT_EARG, "%s = %d must be smaller than the kernel (%d)",
                    val_name(&fam_pad, &pv, i, buf, sizeof(buf)), (int)pv.v[i],
                    (int)kv.v[i % n]);
    }
    for (i = 0; i < n; i++) {
        a->kernel[i] = kv.v[i];
        a->stride[i] = sv.v[i];
        a->dilation[i] = dv.v[i];
        a->adj[i] = av.v[i];
        a->pads[i] = pv.v[i];
        a->pads[n + i] = pv.v[n + i];
    }
    return CT_OK;
}
