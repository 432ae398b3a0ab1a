/* cortado: convolution drivers, im2col + cblas_sgemm per tile (see
 * ops/conv_gemm.h).
 *
 * Design note. The forward pass splits the work into items of (image,
 * group, tile of output pixels, part of the output channels) in NCHW and
 * (image, tile) in NHWC; ct__conv_job_fit sizes tiles and parts so that a
 * batch-1 layer still has a few items per lane while every GEMM stays as
 * large as possible (see there). For each item the column tile is built
 * in the lane's scratch and one GEMM per group writes the item's slice of
 * Y, with the bias preset and beta = 1.
 * Paths without im2col:
 *   - 1x1 kernels with stride 1 and no padding read X as the column
 *     matrix directly (a plain GEMM);
 *   - NCHW depthwise (one input channel per group) accumulates each
 *     output row tap by tap, which beats a GEMM with K = kernel size.
 * The backward-data pass (ConvGradient's dX and ConvTranspose's forward)
 * computes columns W^T dY tile by tile and scatters them with col2im;
 * col2im of different tiles overlaps in dX, so its items are whole
 * (image, group) pairs (NCHW) or images (NHWC). The backward-filter pass
 * reduces over images, so its items are groups, each summing over the
 * batch; splitting a single group would need per-lane partial dW.
 * OpenBLAS runs one thread per call (scheduler/sched.c): each call runs on
 * the calling thread.
 */
#include <cblas.h>
#include <string.h>

#include "engine/fuse.h"
#include "ops/conv_gemm.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* omp simd on loops whose iterations are independent (distinct output
 * elements, inputs in another buffer); without OpenMP they are plain C. */
#if defined(_OPENMP)
#define CONV_SIMD _Pragma("omp simd")
#else
#define CONV_SIMD
#endif

void ct__conv_job_init(struct ct__conv_job *j, const struct ct__conv_geom *g)
{
    const int64_t cg = g->c / g->group;
    int64_t k_rows;
    int i;

    memset(j, 0, sizeof(*j));
    j->g = g;
    j->direct_1x1 = true;
    for (i = 0; i < CT_CONV_MAX_SP; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pad[i] != 0)
            j->direct_1x1 = false;
    j->depthwise = !g->nhwc && cg == 1 && g->group > 1 && !j->direct_1x1;
    /* NHWC columns hold every group of a pixel. */
    k_rows = (g->nhwc ? g->c : cg) * g->k_size;
    j->tile = ct__conv_tile(k_rows, g->out_size);
    /* Whole output rows per tile: im2col then copies full runs only. */
    if (j->tile < g->out_size && j->tile >= g->out[2])
        j->tile -= j->tile % g->out[2];
    j->n_tiles = (g->out_size + j->tile - 1) / j->tile;
    j->col_lane = j->direct_1x1 ? 0 : k_rows * j->tile;
    j->m_parts = 1;
    j->m_chunk = g->m / g->group;
}

/* Items the forward pass aims for per lane: enough that a lane the
 * machine slows (other jobs on its core) leaves little for the others to
 * wait on, few enough that every GEMM stays large. */
#define FWD_ITEMS_PER_LANE 4
/* Column granularity and least width of a direct 1x1 pixel tile; row
 * granularity of an output-channel part (multiples of the GEMM kernels'
 * steps) and its least height: every part re-packs its column tile (and
 * on the im2col path rebuilds it, about 25 flops' time per float), which
 * a part of at least 64 (128) rows keeps to a few percent. */
#define FWD_COL_ALIGN 16
#define FWD_COL_MIN 128
/* With several lanes, direct 1x1 tiles of at most this many pixels (a
 * GEMM with N = 1024 is within a few percent of the whole image's), so
 * the big early layers give lanes finer items to balance. */
#define FWD_COL_MAX 1024
#define FWD_ROW_ALIGN 8
#define FWD_ROWS_MIN_DIRECT 64
#define FWD_ROWS_MIN_IM2COL 128

static int64_t round_up(int64_t v, int64_t a)
{
    return (v + a - 1) / a * a;
}

/* Parts of at most FWD_COL_MAX pixels that p pixels need. */
static int64_t cap_parts(int64_t p)
{
    return (p + FWD_COL_MAX - 1) / FWD_COL_MAX;
}

/* Direct 1x1: the pixels in `parts` equal tiles (16-column aligned). */
static void direct_tiles(struct ct__conv_job *j, int64_t parts)
{
    const int64_t p = j->g->out_size;
    int64_t tile = round_up((p + parts - 1) / parts, FWD_COL_ALIGN);

    if (tile > p)
        tile = p;
    j->tile = tile;
    j->n_tiles = (p + tile - 1) / tile;
}

void ct__conv_job_fit(struct ct__conv_job *j, int n_lanes)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t outer = g->nhwc ? g->n : g->n * g->group;
    const int64_t mg = g->m / g->group;
    const int64_t want = (int64_t)n_lanes * FWD_ITEMS_PER_LANE;
    int64_t need, tile;

    if (j->depthwise || g->out_size <= 0 || outer <= 0 || mg <= 0)
        return;
    /* One lane: one GEMM per image and group on the direct path (its tile
     * bounds no scratch). Several lanes and enough (image, group) items:
     * direct tiles of at most FWD_COL_MAX pixels. The im2col tile stays
     * cache-sized either way. */
    if (n_lanes <= 1 || outer * (j->direct_1x1 ? 1 : j->n_tiles) >= want) {
        if (j->direct_1x1)
            direct_tiles(j, n_lanes <= 1 ? 1 : cap_parts(g->out_size));
        return;
    }
    /* Too few items: split each (image, group) further. Splitting the
     * pixels makes the GEMM pack the filter once per tile (mg * K floats);
     * splitting the output channels packs the column tile (K * tile) once
     * per part, and rebuilds it on the im2col path: split channels when
     * the filter is the larger (small images, many channels). */
    if (j->direct_1x1)
        direct_tiles(j, 1);
    need = (want + outer * j->n_tiles - 1) / (outer * j->n_tiles);
    if (!g->nhwc && mg > j->tile) {
        const int64_t least =
            j->direct_1x1 ? FWD_ROWS_MIN_DIRECT : FWD_ROWS_MIN_IM2COL;
        int64_t chunk = round_up((mg + need - 1) / need, FWD_ROW_ALIGN);
        if (chunk < least)
            chunk = least;
        if (chunk < mg) {
            j->m_chunk = chunk;
            j->m_parts = (mg + chunk - 1) / chunk;
        }
        return;
    }
    if (!j->direct_1x1)
        return; /* im2col tiles already as small as the cache wants */
    if (need < cap_parts(g->out_size))
        need = cap_parts(g->out_size);
    tile = round_up((g->out_size + need - 1) / need, FWD_COL_ALIGN);
    if (tile < FWD_COL_MIN)
        tile = FWD_COL_MIN;
    if (tile > g->out_size)
        tile = g->out_size;
    j->tile = tile;
    j->n_tiles = (g->out_size + tile - 1) / tile;
}

/* ---- forward ---- */

int64_t ct__conv_fwd_items(const struct ct__conv_job *j)
{
    const struct ct__conv_geom *g = j->g;

    if (j->depthwise)
        return g->n * g->group;
    return g->nhwc ? g->n * j->n_tiles
                   : g->n * g->group * j->n_tiles * j->m_parts;
}

/* Depthwise NCHW, item (n, group): every output channel of the group
 * accumulates its taps row by row. */
static void fwd_depthwise(const struct ct__conv_job *j, int64_t it)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t mg = g->m / g->group, gi = it % g->group, n = it / g->group;
    const float *x = j->x + (n * g->c + gi) * g->in_size;
    int64_t mm, od, oh, kd, kh, kw, ow;

    for (mm = 0; mm < mg; mm++) {
        const int64_t m = gi * mg + mm;
        const float *w = j->w + m * g->k_size;
        float *y = j->y + (n * g->m + m) * g->out_size;
        const float b = j->b != NULL ? j->b[m] : 0.0f;

        for (ow = 0; ow < g->out_size; ow++)
            y[ow] = b;
        for (od = 0; od < g->out[0]; od++) {
            for (oh = 0; oh < g->out[1]; oh++) {
                float *yr = y + (od * g->out[1] + oh) * g->out[2];
                for (kd = 0; kd < g->k[0]; kd++) {
                    const int64_t id = od * g->s[0] - g->pad[0] + kd * g->d[0];
                    if (id < 0 || id >= g->in[0])
                        continue;
                    for (kh = 0; kh < g->k[1]; kh++) {
                        const int64_t ih =
                            oh * g->s[1] - g->pad[1] + kh * g->d[1];
                        const float *xr;
                        if (ih < 0 || ih >= g->in[1])
                            continue;
                        xr = x + (id * g->in[1] + ih) * g->in[2];
                        for (kw = 0; kw < g->k[2]; kw++) {
                            const float wv =
                                w[(kd * g->k[1] + kh) * g->k[2] + kw];
                            const int64_t i0 = kw * g->d[2] - g->pad[2];
                            const int64_t s = g->s[2];
                            int64_t lo = 0, hi;
                            if (i0 < 0)
                                lo = (-i0 + s - 1) / s;
                            hi = i0 >= g->in[2] ? 0
                                                : (g->in[2] - 1 - i0) / s + 1;
                            hi = MIN(hi, g->out[2]);
                            if (s == 1) {
                                const float *xs = xr + i0;
                                CONV_SIMD for (ow = lo; ow < hi; ow++)
                                {
                                    yr[ow] += wv * xs[ow];
                                }
                            } else {
                                for (ow = lo; ow < hi; ow++)
                                    yr[ow] += wv * xr[i0 + ow * s];
                            }
                        }
                    }
                }
            }
        }
        if (j->bn_a != NULL)
            ct__sbn_affine_plane(y, y, g->out_size, j->bn_a[m], j->bn_b[m]);
    }
}

/* NCHW, item (n, group, tile, output-channel part). */
static void fwd_nchw(const struct ct__conv_job *j, int64_t it, float *col)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t cg = g->c / g->group, mg = g->m / g->group;
    const int64_t kd = cg * g->k_size, P = g->out_size;
    const int64_t mp = it % j->m_parts, rest = it / j->m_parts;
    const int64_t t = rest % j->n_tiles, ng = rest / j->n_tiles;
    const int64_t gi = ng % g->group, n = ng / g->group;
    const int64_t p0 = t * j->tile, tp = MIN(j->tile, P - p0);
    const int64_t m0 = mp * j->m_chunk, rows = MIN(j->m_chunk, mg - m0);
    const float *x = j->x + (n * g->c + gi * cg) * g->in_size;
    float *y = j->y + (n * g->m + gi * mg + m0) * P + p0;
    const float *bmat;
    float beta = 0.0f;
    int64_t m, p, ldb;

    if (rows <= 0)
        return;
    if (j->b != NULL) {
        for (m = 0; m < rows; m++)
            for (p = 0; p < tp; p++)
                y[m * P + p] = j->b[gi * mg + m0 + m];
        beta = 1.0f;
    }
    if (j->direct_1x1) {
        bmat = x + p0;
        ldb = g->in_size;
    } else {
        ct__im2col_nchw(g, x, cg, p0, p0 + tp, col);
        bmat = col;
        ldb = tp;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows,
                (blasint)tp, (blasint)kd, 1.0f, j->w + (gi * mg + m0) * kd,
                (blasint)kd, bmat, (blasint)ldb, beta, y, (blasint)P);
    /* Fused SpatialBN epilogue, on the tile while it is in cache. */
    if (j->bn_a != NULL) {
        for (m = 0; m < rows; m++) {
            const int64_t mc = gi * mg + m0 + m;
            ct__sbn_affine_plane(y + m * P, y + m * P, tp, j->bn_a[mc],
                                 j->bn_b[mc]);
        }
    }
}

/* NHWC, item (n, tile): one column tile for every group. */
static void fwd_nhwc(const struct ct__conv_job *j, int64_t it, float *col)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t cg = g->c / g->group, mg = g->m / g->group;
    const int64_t kd = cg * g->k_size, P = g->out_size;
    const int64_t t = it % j->n_tiles, n = it / j->n_tiles;
    const int64_t p0 = t * j->tile, tp = MIN(j->tile, P - p0);
    const float *x = j->x + n * g->in_size * g->c;
    float *y = j->y + (n * P + p0) * g->m;
    const float *amat;
    float beta = 0.0f;
    int64_t p, gi, lda;

    if (mg == 0)
        return;
    if (j->b != NULL) {
        for (p = 0; p < tp; p++)
            memcpy(y + p * g->m, j->b, (size_t)g->m * sizeof(float));
        beta = 1.0f;
    }
    if (j->direct_1x1) {
        amat = x + p0 * g->c;
        lda = g->c;
    } else {
        ct__im2col_nhwc(g, x, 0, g->group, p0, p0 + tp, col);
        amat = col;
        lda = g->group * kd;
    }
    for (gi = 0; gi < g->group; gi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)tp,
                    (blasint)mg, (blasint)kd, 1.0f,
                    amat + gi * (j->direct_1x1 ? cg : kd), (blasint)lda,
                    j->w + gi * mg * kd, (blasint)kd, beta, y + gi * mg,
                    (blasint)g->m);
    /* Fused SpatialBN epilogue, on the tile while it is in cache. */
    if (j->bn_a != NULL) {
        for (p = 0; p < tp; p++)
            ct__sbn_affine_pixel(y + p * g->m, y + p * g->m, g->m, j->bn_a,
                                 j->bn_b);
    }
}

void ct__conv_fwd_range(void *job, int64_t i0, int64_t i1, int ith)
{
    const struct ct__conv_job *j = job;
    float *col = j->col != NULL ? j->col + ith * j->col_lane : NULL;
    int64_t it;

    for (it = i0; it < i1; it++) {
        if (j->depthwise)
            fwd_depthwise(j, it);
        else if (j->g->nhwc)
            fwd_nhwc(j, it, col);
        else
            fwd_nchw(j, it, col);
    }
}

/* ---- backward data: dx = col2im(W^T dy) (+ bias over c) ---- */

int64_t ct__conv_bwd_data_items(const struct ct__conv_job *j)
{
    const struct ct__conv_geom *g = j->g;

    return g->nhwc ? g->n : g->n * g->group;
}

/* NCHW, item (n, group). */
static void bwd_data_nchw(const struct ct__conv_job *j, int64_t it, float *col)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t cg = g->c / g->group, mg = g->m / g->group;
    const int64_t kd = cg * g->k_size, P = g->out_size;
    const int64_t gi = it % g->group, n = it / g->group;
    const float *dy = j->dy + (n * g->m + gi * mg) * P;
    const float *w = j->w + gi * mg * kd;
    float *dx = j->dx + (n * g->c + gi * cg) * g->in_size;
    int64_t t, c, i;

    if (j->direct_1x1 && mg > 0) {
        /* dx [cg, P] = W^T [cg, mg] dy [mg, P]; in and out extents agree. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)kd,
                    (blasint)P, (blasint)mg, 1.0f, w, (blasint)kd, dy,
                    (blasint)P, 0.0f, dx, (blasint)P);
    } else {
        memset(dx, 0, (size_t)(cg * g->in_size) * sizeof(float));
        for (t = 0; t < j->n_tiles && mg > 0; t++) {
            const int64_t p0 = t * j->tile, tp = MIN(j->tile, P - p0);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)kd,
                        (blasint)tp, (blasint)mg, 1.0f, w, (blasint)kd, dy + p0,
                        (blasint)P, 0.0f, col, (blasint)tp);
            ct__col2im_nchw(g, col, cg, p0, p0 + tp, dx);
        }
    }
    if (j->b != NULL) {
        for (c = 0; c < cg; c++) {
            const float b = j->b[gi * cg + c];
            float *plane = dx + c * g->in_size;
            for (i = 0; i < g->in_size; i++)
                plane[i] += b;
        }
    }
}

/* NHWC, item n. */
static void bwd_data_nhwc(const struct ct__conv_job *j, int64_t n, float *col)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t cg = g->c / g->group, mg = g->m / g->group;
    const int64_t kd = cg * g->k_size, P = g->out_size, G = g->group;
    const float *dy = j->dy + n * P * g->m;
    float *dx = j->dx + n * g->in_size * g->c;
    int64_t t, gi, p;

    if (j->direct_1x1 && mg > 0) {
        for (gi = 0; gi < G; gi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)P,
                        (blasint)cg, (blasint)mg, 1.0f, dy + gi * mg,
                        (blasint)g->m, j->w + gi * mg * kd, (blasint)kd, 0.0f,
                        dx + gi * cg, (blasint)g->c);
    } else {
        memset(dx, 0, (size_t)(g->in_size * g->c) * sizeof(float));
        for (t = 0; t < j->n_tiles && mg > 0; t++) {
            const int64_t p0 = t * j->tile, tp = MIN(j->tile, P - p0);
            for (gi = 0; gi < G; gi++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                            (blasint)tp, (blasint)kd, (blasint)mg, 1.0f,
                            dy + p0 * g->m + gi * mg, (blasint)g->m,
                            j->w + gi * mg * kd, (blasint)kd, 0.0f,
                            col + gi * kd, (blasint)(G * kd));
            ct__col2im_nhwc(g, col, 0, G, p0, p0 + tp, dx);
        }
    }
    if (j->b != NULL) {
        for (p = 0; p < g->in_size; p++) {
            float *row = dx + p * g->c;
            for (gi = 0; gi < g->c; gi++)
                row[gi] += j->b[gi];
        }
    }
}

void ct__conv_bwd_data_range(void *job, int64_t i0, int64_t i1, int ith)
{
    const struct ct__conv_job *j = job;
    float *col = j->col != NULL ? j->col + ith * j->col_lane : NULL;
    int64_t it;

    for (it = i0; it < i1; it++) {
        if (j->g->nhwc)
            bwd_data_nhwc(j, it, col);
        else
            bwd_data_nchw(j, it, col);
    }
}

/* ---- backward filter: dw_g = sum over n of dy_g col^T ---- */

int64_t ct__conv_bwd_filter_items(const struct ct__conv_job *j)
{
    return j->g->group;
}

static void bwd_filter_group(const struct ct__conv_job *j, int64_t gi,
                             float *col)
{
    const struct ct__conv_geom *g = j->g;
    const int64_t cg = g->c / g->group, mg = g->m / g->group;
    const int64_t kd = cg * g->k_size, P = g->out_size;
    float *dw = j->dw + gi * mg * kd;
    int64_t n, t;

    memset(dw, 0, (size_t)(mg * kd) * sizeof(float));
    if (mg == 0)
        return;
    for (n = 0; n < g->n; n++) {
        for (t = 0; t < j->n_tiles; t++) {
            const int64_t p0 = t * j->tile, tp = MIN(j->tile, P - p0);
            const float *bmat;
            int64_t ldb;

            if (!g->nhwc) {
                const float *x = j->x + (n * g->c + gi * cg) * g->in_size;
                const float *dy = j->dy + (n * g->m + gi * mg) * P + p0;
                if (j->direct_1x1) {
                    bmat = x + p0;
                    ldb = g->in_size;
                } else {
                    ct__im2col_nchw(g, x, cg, p0, p0 + tp, col);
                    bmat = col;
                    ldb = tp;
                }
                /* dw [mg, kd] += dy [mg, tp] * col^T [tp, kd] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            (blasint)mg, (blasint)kd, (blasint)tp, 1.0f, dy,
                            (blasint)P, bmat, (blasint)ldb, 1.0f, dw,
                            (blasint)kd);
            } else {
                const float *x = j->x + n * g->in_size * g->c;
                const float *dy = j->dy + (n * P + p0) * g->m + gi * mg;
                if (j->direct_1x1) {
                    bmat = x + p0 * g->c + gi * cg;
                    ldb = g->c;
                } else {
                    ct__im2col_nhwc(g, x, gi, gi + 1, p0, p0 + tp, col);
                    bmat = col;
                    ldb = kd;
                }
                /* dw [mg, kd] += dy^T [mg, tp] * col [tp, kd] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                            (blasint)mg, (blasint)kd, (blasint)tp, 1.0f, dy,
                            (blasint)g->m, bmat, (blasint)ldb, 1.0f, dw,
                            (blasint)kd);
            }
        }
    }
}

void ct__conv_bwd_filter_range(void *job, int64_t i0, int64_t i1, int ith)
{
    const struct ct__conv_job *j = job;
    float *col = j->col != NULL ? j->col + ith * j->col_lane : NULL;
    int64_t gi;

    for (gi = i0; gi < i1; gi++)
        bwd_filter_group(j, gi, col);
}

void ct__conv_bwd_bias(const struct ct__conv_geom *g, const float *dy,
                       float *db)
{
    const int64_t P = g->out_size;
    int64_t m, n, p;

    for (m = 0; m < g->m; m++) {
        double s = 0.0;
        for (n = 0; n < g->n; n++) {
            if (!g->nhwc) {
                const float *plane = dy + (n * g->m + m) * P;
                for (p = 0; p < P; p++)
                    s += plane[p];
            } else {
                const float *img = dy + n * P * g->m + m;
                for (p = 0; p < P; p++)
                    s += img[p * g->m];
            }
        }
        db[m] = (float)s;
    }
}
