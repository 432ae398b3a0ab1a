/* cortado: im2col and col2im for NCHW and NHWC (see ops/conv_gemm.h).
 *
 * Design note. Output pixels of a tile [p0, p1) are walked as runs along
 * the innermost output dim (an odometer over (od, oh, ow) decomposed from
 * p0 once per column row), so the per-element work is a copy or an add:
 * for each run the range of output positions whose input tap lies inside
 * the image is computed in closed form, the rest is zero-filled (im2col)
 * or skipped (col2im). With stride 1 a run is one memcpy.
 */
#include <string.h>

#include "ops/conv_gemm.h"

/* dst[j] = row[i0 + j * s] for 0 <= i0 + j * s < w, else 0; j < n. */
static void gather(float *dst, const float *row, int64_t n, int64_t i0,
                   int64_t s, int64_t w)
{
    int64_t lo = 0, hi, j;

    if (i0 < 0)
        lo = (-i0 + s - 1) / s;
    if (lo > n)
        lo = n;
    hi = i0 >= w ? 0 : (w - 1 - i0) / s + 1;
    if (hi > n)
        hi = n;
    if (hi < lo)
        hi = lo;
    if (lo > 0)
        memset(dst, 0, (size_t)lo * sizeof(float));
    if (hi > lo) {
        if (s == 1) {
            memcpy(dst + lo, row + i0 + lo, (size_t)(hi - lo) * sizeof(float));
        } else if (s == 2) {
            /* The common strided case (stride-2 stems and downsampling),
             * unrolled: the compiler does not vectorise strided loads. */
            const float *r = row + i0 + 2 * lo;
            for (j = lo; j + 4 <= hi; j += 4, r += 8) {
                dst[j] = r[0];
                dst[j + 1] = r[2];
                dst[j + 2] = r[4];
                dst[j + 3] = r[6];
            }
            for (; j < hi; j++, r += 2)
                dst[j] = r[0];
        } else {
            for (j = lo; j < hi; j++)
                dst[j] = row[i0 + j * s];
        }
    }
    if (n > hi)
        memset(dst + hi, 0, (size_t)(n - hi) * sizeof(float));
}

/* row[i0 + j * s] += src[j] for the in-image positions. */
static void scatter(const float *src, float *row, int64_t n, int64_t i0,
                    int64_t s, int64_t w)
{
    int64_t lo = 0, hi, j;

    if (i0 < 0)
        lo = (-i0 + s - 1) / s;
    hi = i0 >= w ? 0 : (w - 1 - i0) / s + 1;
    if (hi > n)
        hi = n;
    if (s == 1) {
        for (j = lo; j < hi; j++)
            row[i0 + j] += src[j];
    } else {
        for (j = lo; j < hi; j++)
            row[i0 + j * s] += src[j];
    }
}

/* Odometer over output pixels. */
struct pix {
    int64_t od, oh, ow;
};

static void pix_set(const struct ct__conv_geom *g, int64_t p, struct pix *q)
{
    const int64_t hw = g->out[1] * g->out[2];

    q->od = p / hw;
    q->oh = p % hw / g->out[2];
    q->ow = p % g->out[2];
}

/* The work shared by im2col and col2im in NCHW: for each column row
 * (c, kd, kh, kw) and each run of the tile, either gather x_in into
 * col_out (im2col) or scatter col_in into x_out (col2im); exactly one of
 * the two pairs is set. */
static void nchw_walk(const struct ct__conv_geom *g, const float *x_in,
                      float *col_out, const float *col_in, float *x_out,
                      int64_t cg, int64_t p0, int64_t p1)
{
    const int64_t tp = p1 - p0;
    const bool add = x_out != NULL;
    int64_t c, kd, kh, kw, r = 0;

    for (c = 0; c < cg; c++) {
        for (kd = 0; kd < g->k[0]; kd++) {
            for (kh = 0; kh < g->k[1]; kh++) {
                for (kw = 0; kw < g->k[2]; kw++, r += tp) {
                    const int64_t iw0 = kw * g->d[2] - g->pad[2];
                    struct pix q;
                    int64_t p = p0, off = 0;

                    pix_set(g, p0, &q);
                    while (p < p1) {
                        int64_t seg = g->out[2] - q.ow, id, ih, base;
                        if (seg > p1 - p)
                            seg = p1 - p;
                        id = q.od * g->s[0] - g->pad[0] + kd * g->d[0];
                        ih = q.oh * g->s[1] - g->pad[1] + kh * g->d[1];
                        if (id < 0 || id >= g->in[0] || ih < 0 ||
                            ih >= g->in[1]) {
                            if (!add)
                                memset(col_out + r + off, 0,
                                       (size_t)seg * sizeof(float));
                        } else {
                            base = c * g->in_size +
                                   (id * g->in[1] + ih) * g->in[2];
                            if (add)
                                scatter(col_in + r + off, x_out + base, seg,
                                        q.ow * g->s[2] + iw0, g->s[2],
                                        g->in[2]);
                            else
                                gather(col_out + r + off, x_in + base, seg,
                                       q.ow * g->s[2] + iw0, g->s[2], g->in[2]);
                        }
                        off += seg;
                        p += seg;
                        q.ow = 0;
                        if (++q.oh == g->out[1]) {
                            q.oh = 0;
                            q.od++;
                        }
                    }
                }
            }
        }
    }
}

void ct__im2col_nchw(const struct ct__conv_geom *g, const float *x, int64_t cg,
                     int64_t p0, int64_t p1, float *col)
{
    nchw_walk(g, x, col, NULL, NULL, cg, p0, p1);
}

void ct__col2im_nchw(const struct ct__conv_geom *g, const float *col,
                     int64_t cg, int64_t p0, int64_t p1, float *x)
{
    nchw_walk(g, NULL, NULL, col, x, cg, p0, p1);
}

/* NHWC: one column row per output pixel; for each tap the cg channels of
 * each group are contiguous in both x and the row. */
static void nhwc_walk(const struct ct__conv_geom *g, const float *x_in,
                      float *col_out, const float *col_in, float *x_out,
                      int64_t g0, int64_t g1, int64_t p0, int64_t p1)
{
    const bool add = x_out != NULL;
    const int64_t cg = g->c / g->group, kv = g->k_size * cg;
    const int64_t ld = (g1 - g0) * kv;
    struct pix q;
    int64_t p, kd, kh, kw, gi, i;

    pix_set(g, p0, &q);
    for (p = p0; p < p1; p++) {
        const int64_t row = (p - p0) * ld;
        int64_t kidx = 0;

        for (kd = 0; kd < g->k[0]; kd++) {
            const int64_t id = q.od * g->s[0] - g->pad[0] + kd * g->d[0];
            for (kh = 0; kh < g->k[1]; kh++) {
                const int64_t ih = q.oh * g->s[1] - g->pad[1] + kh * g->d[1];
                for (kw = 0; kw < g->k[2]; kw++, kidx++) {
                    const int64_t iw =
                        q.ow * g->s[2] - g->pad[2] + kw * g->d[2];
                    const bool in = id >= 0 && id < g->in[0] && ih >= 0 &&
                                    ih < g->in[1] && iw >= 0 && iw < g->in[2];
                    const int64_t base =
                        in ? ((id * g->in[1] + ih) * g->in[2] + iw) * g->c : 0;

                    for (gi = g0; gi < g1; gi++) {
                        const int64_t r = row + (gi - g0) * kv + kidx * cg;
                        if (!in) {
                            if (!add)
                                memset(col_out + r, 0,
                                       (size_t)cg * sizeof(float));
                        } else if (add) {
                            float *xp = x_out + base + gi * cg;
                            for (i = 0; i < cg; i++)
                                xp[i] += col_in[r + i];
                        } else {
                            memcpy(col_out + r, x_in + base + gi * cg,
                                   (size_t)cg * sizeof(float));
                        }
                    }
                }
            }
        }
        if (++q.ow == g->out[2]) {
            q.ow = 0;
            if (++q.oh == g->out[1]) {
                q.oh = 0;
                q.od++;
            }
        }
    }
}

void ct__im2col_nhwc(const struct ct__conv_geom *g, const float *x, int64_t g0,
                     int64_t g1, int64_t p0, int64_t p1, float *col)
{
    nhwc_walk(g, x, col, NULL, NULL, g0, g1, p0, p1);
}

void ct__col2im_nhwc(const struct ct__conv_geom *g, const float *col,
                     int64_t g0, int64_t g1, int64_t p0, int64_t p1, float *x)
{
    nhwc_walk(g, NULL, NULL, col, x, g0, g1, p0, p1);
}
