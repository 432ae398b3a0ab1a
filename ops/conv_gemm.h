/* cortado internal: convolution kernels (im2col + GEMM, direct paths).
 *
 * Everything works on a struct ct__conv_geom (ops/conv_pool.h): a
 * convolution from an input of c channels and spatial extent `in` to an
 * output of m channels and extent `out`, in NCHW or NHWC, grouped.
 * Filters are [m, c/group, kd, kh, kw] (NCHW) or [m, kd, kh, kw, c/group]
 * (NHWC), as Caffe2 stores them.
 *
 * Column layouts:
 *   NCHW: rows (c, kd, kh, kw) of one group, one column per output pixel
 *         of the tile: col[K][tp], K = c/group * k_size.
 *   NHWC: one row per output pixel of the tile, holding groups [g0, g1)
 *         each as (kd, kh, kw, c/group): col[tp][(g1 - g0) * K].
 * Out-of-image taps (padding) read as zeros; col2im ignores them.
 *
 * Drivers are range functions (ct__conv_range_fn) over items, so
 * ct__conv_for can split them: every item writes outputs no other item
 * touches, and uses the col scratch of its lane only. They never
 * allocate, lock or fail.
 */
#ifndef CT_OPS_CONV_GEMM_H
#define CT_OPS_CONV_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "ops/conv_pool.h"

/* ---- im2col / col2im (ops/im2col.c) ---- */

/* x: the cg channels of one image and group (channel stride in_size).
 * Fills col[K][p1 - p0] for output pixels [p0, p1). */
void ct__im2col_nchw(const struct ct__conv_geom *g, const float *x, int64_t cg,
                     int64_t p0, int64_t p1, float *col);
/* x += the columns scattered back (the adjoint of ct__im2col_nchw). */
void ct__col2im_nchw(const struct ct__conv_geom *g, const float *col,
                     int64_t cg, int64_t p0, int64_t p1, float *x);
/* x: one image [D, H, W, c]. Fills col[p1 - p0][(g1 - g0) * K]. */
void ct__im2col_nhwc(const struct ct__conv_geom *g, const float *x, int64_t g0,
                     int64_t g1, int64_t p0, int64_t p1, float *col);
/* x += the columns scattered back (adjoint of ct__im2col_nhwc). */
void ct__col2im_nhwc(const struct ct__conv_geom *g, const float *col,
                     int64_t g0, int64_t g1, int64_t p0, int64_t p1, float *x);

/* ---- drivers (ops/conv_gemm.c) ---- */

struct ct__conv_job {
    const struct ct__conv_geom *g;
    const float *x;   /* convolution input (fwd, bwd filter) */
    const float *w;   /* filter */
    const float *b;   /* fwd: bias [m]; bwd data: bias [c]; or NULL */
    const float *dy;  /* output gradient (bwd data, bwd filter) */
    float *y;         /* fwd output */
    float *dx;        /* bwd data output (every element written) */
    float *dw;        /* bwd filter output (every element written) */
    float *col;       /* scratch: n_lanes * col_lane floats */
    int64_t col_lane; /* floats of col per lane; 0 when unused */
    int64_t tile;     /* output pixels per tile */
    int64_t n_tiles;
    int64_t m_parts; /* fwd NCHW: output channels of a group split in */
    int64_t m_chunk; /* parts of m_chunk rows (the last may be short) */
    bool direct_1x1; /* 1x1 kernel, stride 1, no pad: no im2col */
    bool depthwise;  /* NCHW, one input channel per group: direct */
    /* fwd: a fused SpatialBN's per-output-channel affine y = a * y + b,
     * applied to each finished output tile (engine/fuse.h); or NULL. */
    const float *bn_a, *bn_b;
};

/* Tiling and path choice for g; sets every field but the pointers. */
void ct__conv_job_init(struct ct__conv_job *j, const struct ct__conv_geom *g);

/* Forward only, after ct__conv_job_init: fits the items to n_lanes lanes.
 * The direct 1x1 path gets one GEMM per image and group with one lane,
 * and tiles of at most 1024 pixels with several; with too few items, each
 * (image, group) splits in output-channel parts (NCHW, when the filter is
 * larger than the column tile: small images, many channels; parts of at
 * least 64 rows, 128 on the im2col path) or in pixel tiles (direct 1x1,
 * at least 128 pixels), about FWD_ITEMS_PER_LANE items per lane. */
void ct__conv_job_fit(struct ct__conv_job *j, int n_lanes);

/* Items of each driver, and the drivers. */
int64_t ct__conv_fwd_items(const struct ct__conv_job *j);
void ct__conv_fwd_range(void *job, int64_t i0, int64_t i1, int ith);
int64_t ct__conv_bwd_data_items(const struct ct__conv_job *j);
void ct__conv_bwd_data_range(void *job, int64_t i0, int64_t i1, int ith);
int64_t ct__conv_bwd_filter_items(const struct ct__conv_job *j);
void ct__conv_bwd_filter_range(void *job, int64_t i0, int64_t i1, int ith);

/* db[m] = sum of dy over the batch and every output pixel. Serial: it
 * reads dy once, O(n * m * out_size). */
void ct__conv_bwd_bias(const struct ct__conv_geom *g, const float *dy,
                       float *db);

#endif /* CT_OPS_CONV_GEMM_H */
