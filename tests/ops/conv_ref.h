/* Naive reference kernels and the case description shared by the
 * convolution and pooling tests (test_conv.c, test_conv_grad.c,
 * test_pooling.c). Everything is static inline, so a test uses what it
 * needs without unused-function warnings; include it after cmocka.h.
 *
 * A case is one layer: shapes, arguments and layout. The references are
 * direct loops over every index in double precision, written without the
 * library's geometry code (the spatial dims are padded to 3 here too, but
 * output sizes are recomputed from the plain formula), so a shared
 * mistake would have to be made twice.
 */
#ifndef CT_TESTS_OPS_CONV_REF_H
#define CT_TESTS_OPS_CONV_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* How a case passes its spatial arguments. */
enum cr_form {
    CR_LISTS,  /* kernels, strides, pads, dilations (any rank) */
    CR_SCALAR, /* kernel, stride, pad, dilation (2-d, equal values) */
    CR_HW,     /* kernel_h/_w, stride_h/_w, pad_t/l/b/r, dilation_h/_w */
};

struct cr_case {
    const char *what;
    int n_sp; /* 1..3 */
    bool nhwc;
    int64_t n, c, m, group; /* m: output channels (pooling: unused) */
    int64_t in[3];          /* spatial extents, n_sp used */
    int k[3], s[3], d[3];
    int pads[6]; /* heads then tails, n_sp each */
    int adj[3];  /* ConvTranspose */
    bool bias;
    enum cr_form form;
};

/* ---- a small deterministic generator for random cases ---- */

static inline uint64_t cr_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline int cr_rand(uint64_t *s, int lo, int hi)
{
    return lo + (int)(cr_rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* ---- shapes ---- */

/* Spatial extents padded to 3 with leading 1s. */
static inline void cr_sp3(int n_sp, const int64_t *sp, int64_t *out3)
{
    int i;
    for (i = 0; i < 3; i++)
        out3[i] = i < 3 - n_sp ? 1 : sp[i - (3 - n_sp)];
}

static inline void cr_int3(int n_sp, const int *v, int dflt, int64_t *out3)
{
    int i;
    for (i = 0; i < 3; i++)
        out3[i] = i < 3 - n_sp ? dflt : v[i - (3 - n_sp)];
}

/* Conv output extent of spatial dim i (legacy_pad NOTSET). */
static inline int64_t cr_conv_out(const struct cr_case *c, int i)
{
    const int64_t dk = (int64_t)c->d[i] * (c->k[i] - 1) + 1;
    return (c->in[i] + c->pads[i] + c->pads[c->n_sp + i] - dk) / c->s[i] + 1;
}

/* ConvTranspose output extent of spatial dim i. */
static inline int64_t cr_convt_out(const struct cr_case *c, int i)
{
    return (c->in[i] - 1) * c->s[i] + c->k[i] + c->adj[i] - c->pads[i] -
           c->pads[c->n_sp + i];
}

/* Full dims [N, C, sp...] or [N, sp..., C]. Returns ndim. */
static inline int cr_dims(const struct cr_case *c, int64_t ch,
                          const int64_t *sp, int64_t *dims)
{
    int i;
    dims[0] = c->n;
    for (i = 0; i < c->n_sp; i++)
        dims[c->nhwc ? 1 + i : 2 + i] = sp[i];
    dims[c->nhwc ? c->n_sp + 1 : 1] = ch;
    return c->n_sp + 2;
}

/* Filter dims [rows, cols, k...] (NCHW) or [rows, k..., cols] (NHWC). */
static inline int cr_wdims(const struct cr_case *c, int64_t rows, int64_t cols,
                           int64_t *dims)
{
    int i;
    dims[0] = rows;
    for (i = 0; i < c->n_sp; i++)
        dims[c->nhwc ? 1 + i : 2 + i] = c->k[i];
    dims[c->nhwc ? c->n_sp + 1 : 1] = cols;
    return c->n_sp + 2;
}

static inline int64_t cr_numel(int nd, const int64_t *d)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

/* Index of (n, ch, d, h, w) in a tensor of C channels, extents e[3]. */
static inline int64_t cr_at(bool nhwc, int64_t C, const int64_t *e, int64_t n,
                            int64_t ch, int64_t d, int64_t h, int64_t w)
{
    if (nhwc)
        return (((n * e[0] + d) * e[1] + h) * e[2] + w) * C + ch;
    return (((n * C + ch) * e[0] + d) * e[1] + h) * e[2] + w;
}

/* Index of filter element (row, col, kd, kh, kw); cols per row. */
static inline int64_t cr_wat(bool nhwc, int64_t cols, const int64_t *k,
                             int64_t r, int64_t col, int64_t kd, int64_t kh,
                             int64_t kw)
{
    if (nhwc)
        return (((r * k[0] + kd) * k[1] + kh) * k[2] + kw) * cols + col;
    return (((r * cols + col) * k[0] + kd) * k[1] + kh) * k[2] + kw;
}

/* ---- arguments ---- */

/* Adds the spatial arguments of c (and group, order) to op. */
static inline void cr_add_args(Caffe2__OperatorDef *op, const struct cr_case *c,
                               bool with_dilation, bool with_group)
{
    int64_t v[6];
    int i;

    switch (c->form) {
    case CR_LISTS:
        for (i = 0; i < c->n_sp; i++)
            v[i] = c->k[i];
        tu_arg_ints(op, "kernels", (size_t)c->n_sp, v);
        for (i = 0; i < c->n_sp; i++)
            v[i] = c->s[i];
        tu_arg_ints(op, "strides", (size_t)c->n_sp, v);
        for (i = 0; i < 2 * c->n_sp; i++)
            v[i] = c->pads[i];
        tu_arg_ints(op, "pads", (size_t)(2 * c->n_sp), v);
        if (with_dilation) {
            for (i = 0; i < c->n_sp; i++)
                v[i] = c->d[i];
            tu_arg_ints(op, "dilations", (size_t)c->n_sp, v);
        }
        break;
    case CR_SCALAR:
        tu_arg_i(op, "kernel", c->k[0]);
        tu_arg_i(op, "stride", c->s[0]);
        tu_arg_i(op, "pad", c->pads[0]);
        if (with_dilation)
            tu_arg_i(op, "dilation", c->d[0]);
        break;
    case CR_HW:
        tu_arg_i(op, "kernel_h", c->k[0]);
        tu_arg_i(op, "kernel_w", c->k[1]);
        tu_arg_i(op, "stride_h", c->s[0]);
        tu_arg_i(op, "stride_w", c->s[1]);
        tu_arg_i(op, "pad_t", c->pads[0]);
        tu_arg_i(op, "pad_l", c->pads[1]);
        tu_arg_i(op, "pad_b", c->pads[2]);
        tu_arg_i(op, "pad_r", c->pads[3]);
        if (with_dilation) {
            tu_arg_i(op, "dilation_h", c->d[0]);
            tu_arg_i(op, "dilation_w", c->d[1]);
        }
        break;
    }
    if (with_group && c->group != 1)
        tu_arg_i(op, "group", c->group);
    if (c->nhwc)
        tu_arg_s(op, "order", "NHWC");
}

/* ---- reference convolution (7 loops, padded to 3-d) ---- */

/* y = conv(x, w) + b; y has m channels and extents out[3]. */
static inline void cr_conv_ref(const struct cr_case *c, const float *x,
                               const float *w, const float *b, double *y)
{
    int64_t in3[3], out3[3], k3[3], s3[3], d3[3], p3[3], out[3];
    const int64_t cg = c->c / c->group, mg = c->m / c->group;
    int64_t n, m, od, oh, ow, cc, kd, kh, kw;
    int i;

    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_conv_out(c, i);
    cr_sp3(c->n_sp, c->in, in3);
    cr_sp3(c->n_sp, out, out3);
    cr_int3(c->n_sp, c->k, 1, k3);
    cr_int3(c->n_sp, c->s, 1, s3);
    cr_int3(c->n_sp, c->d, 1, d3);
    cr_int3(c->n_sp, c->pads, 0, p3);
    for (n = 0; n < c->n; n++)
        for (m = 0; m < c->m; m++)
            for (od = 0; od < out3[0]; od++)
                for (oh = 0; oh < out3[1]; oh++)
                    for (ow = 0; ow < out3[2]; ow++) {
                        const int64_t gi = m / mg;
                        double acc = b != NULL ? b[m] : 0.0;
                        for (cc = 0; cc < cg; cc++)
                            for (kd = 0; kd < k3[0]; kd++)
                                for (kh = 0; kh < k3[1]; kh++)
                                    for (kw = 0; kw < k3[2]; kw++) {
                                        const int64_t id =
                                            od * s3[0] - p3[0] + kd * d3[0];
                                        const int64_t ih =
                                            oh * s3[1] - p3[1] + kh * d3[1];
                                        const int64_t iw =
                                            ow * s3[2] - p3[2] + kw * d3[2];
                                        if (id < 0 || id >= in3[0] || ih < 0 ||
                                            ih >= in3[1] || iw < 0 ||
                                            iw >= in3[2])
                                            continue;
                                        acc += (double)x[cr_at(
                                                   c->nhwc, c->c, in3, n,
                                                   gi * cg + cc, id, ih, iw)] *
                                               w[cr_wat(c->nhwc, cg, k3, m, cc,
                                                        kd, kh, kw)];
                                    }
                        y[cr_at(c->nhwc, c->m, out3, n, m, od, oh, ow)] = acc;
                    }
}

/* The naive adjoints of cr_conv_ref for output gradient dy: dx, dw, db
 * (each may be NULL). */
static inline void cr_conv_bwd_ref(const struct cr_case *c, const float *x,
                                   const float *w, const float *dy, double *dx,
                                   double *dw, double *db)
{
    int64_t in3[3], out3[3], k3[3], s3[3], d3[3], p3[3], out[3];
    const int64_t cg = c->c / c->group, mg = c->m / c->group;
    int64_t n, m, od, oh, ow, cc, kd, kh, kw, nx, nw;
    int i;

    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_conv_out(c, i);
    cr_sp3(c->n_sp, c->in, in3);
    cr_sp3(c->n_sp, out, out3);
    cr_int3(c->n_sp, c->k, 1, k3);
    cr_int3(c->n_sp, c->s, 1, s3);
    cr_int3(c->n_sp, c->d, 1, d3);
    cr_int3(c->n_sp, c->pads, 0, p3);
    nx = c->n * c->c * in3[0] * in3[1] * in3[2];
    nw = c->m * cg * k3[0] * k3[1] * k3[2];
    if (dx != NULL)
        memset(dx, 0, (size_t)nx * sizeof(double));
    if (dw != NULL)
        memset(dw, 0, (size_t)nw * sizeof(double));
    if (db != NULL)
        memset(db, 0, (size_t)c->m * sizeof(double));
    for (n = 0; n < c->n; n++)
        for (m = 0; m < c->m; m++)
            for (od = 0; od < out3[0]; od++)
                for (oh = 0; oh < out3[1]; oh++)
                    for (ow = 0; ow < out3[2]; ow++) {
                        const int64_t gi = m / mg;
                        const double g =
                            dy[cr_at(c->nhwc, c->m, out3, n, m, od, oh, ow)];
                        if (db != NULL)
                            db[m] += g;
                        for (cc = 0; cc < cg; cc++)
                            for (kd = 0; kd < k3[0]; kd++)
                                for (kh = 0; kh < k3[1]; kh++)
                                    for (kw = 0; kw < k3[2]; kw++) {
                                        const int64_t id =
                                            od * s3[0] - p3[0] + kd * d3[0];
                                        const int64_t ih =
                                            oh * s3[1] - p3[1] + kh * d3[1];
                                        const int64_t iw =
                                            ow * s3[2] - p3[2] + kw * d3[2];
                                        int64_t xi, wi;
                                        if (id < 0 || id >= in3[0] || ih < 0 ||
                                            ih >= in3[1] || iw < 0 ||
                                            iw >= in3[2])
                                            continue;
                                        xi = cr_at(c->nhwc, c->c, in3, n,
                                                   gi * cg + cc, id, ih, iw);
                                        wi = cr_wat(c->nhwc, cg, k3, m, cc, kd,
                                                    kh, kw);
                                        if (dx != NULL)
                                            dx[xi] += g * w[wi];
                                        if (dw != NULL)
                                            dw[wi] += g * x[xi];
                                    }
                    }
}

/* ConvTranspose by naive scatter: x has c->c channels (M), y has c->m
 * channels (C); w is [M, C/group, k...] (NCHW) or [M, k..., C/group]. */
static inline void cr_convt_ref(const struct cr_case *c, const float *x,
                                const float *w, const float *b, double *y)
{
    int64_t in3[3], out3[3], k3[3], s3[3], p3[3], out[3];
    const int64_t mg = c->c / c->group, cg = c->m / c->group;
    int64_t n, mi, id, ih, iw, cc, kd, kh, kw, ny;
    int i;

    for (i = 0; i < c->n_sp; i++)
        out[i] = cr_convt_out(c, i);
    cr_sp3(c->n_sp, c->in, in3);
    cr_sp3(c->n_sp, out, out3);
    cr_int3(c->n_sp, c->k, 1, k3);
    cr_int3(c->n_sp, c->s, 1, s3);
    cr_int3(c->n_sp, c->pads, 0, p3);
    ny = c->n * c->m * out3[0] * out3[1] * out3[2];
    for (i = 0; i < ny; i++)
        y[i] = 0;
    for (n = 0; n < c->n; n++)
        for (mi = 0; mi < c->c; mi++)
            for (id = 0; id < in3[0]; id++)
                for (ih = 0; ih < in3[1]; ih++)
                    for (iw = 0; iw < in3[2]; iw++) {
                        const double xv =
                            x[cr_at(c->nhwc, c->c, in3, n, mi, id, ih, iw)];
                        const int64_t gi = mi / mg;
                        for (cc = 0; cc < cg; cc++)
                            for (kd = 0; kd < k3[0]; kd++)
                                for (kh = 0; kh < k3[1]; kh++)
                                    for (kw = 0; kw < k3[2]; kw++) {
                                        const int64_t od =
                                            id * s3[0] - p3[0] + kd;
                                        const int64_t oh =
                                            ih * s3[1] - p3[1] + kh;
                                        const int64_t ow =
                                            iw * s3[2] - p3[2] + kw;
                                        if (od < 0 || od >= out3[0] || oh < 0 ||
                                            oh >= out3[1] || ow < 0 ||
                                            ow >= out3[2])
                                            continue;
                                        y[cr_at(c->nhwc, c->m, out3, n,
                                                gi * cg + cc, od, oh, ow)] +=
                                            xv * w[cr_wat(c->nhwc, cg, k3, mi,
                                                          cc, kd, kh, kw)];
                                    }
                    }
    if (b != NULL)
        for (n = 0; n < c->n; n++)
            for (cc = 0; cc < c->m; cc++)
                for (id = 0; id < out3[0]; id++)
                    for (ih = 0; ih < out3[1]; ih++)
                        for (iw = 0; iw < out3[2]; iw++)
                            y[cr_at(c->nhwc, c->m, out3, n, cc, id, ih, iw)] +=
                                b[cc];
}

/* ---- comparison ---- */

/* Asserts |got - want| <= atol + rtol * |want| everywhere (equal
 * infinities match). */
static inline void cr_assert_close(const char *what, const float *got,
                                   const double *want, int64_t n, double rtol,
                                   double atol)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if ((double)got[i] == want[i])
            continue;
        if (!(d <= atol + rtol * fabs(want[i])))
            fail_msg("%s: element %lld: got %.9g, want %.9g", what,
                     (long long)i, (double)got[i], want[i]);
    }
}

static inline float *cr_rand_floats(int64_t n, uint64_t seed)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(v);
    tu_fill_uniform(v, (size_t)n, -1.0f, 1.0f, seed);
    return v;
}

#endif /* CT_TESTS_OPS_CONV_REF_H */
