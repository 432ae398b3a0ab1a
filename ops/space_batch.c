/* SpaceToBatch and BatchToSpace (Caffe2's space_batch_op.h, spec §5).
 *
 * Math, NCHW (NHWC is the same map with C innermost). bs = block_size,
 * pt, pl, pb, pr = the pads.
 * SpaceToBatch: X [N, C, H, W] -> Y [N*bs*bs, C, (H+pt+pb)/bs, (W+pl+pr)/bs]
 *   Y[ob, c, oh, ow] = X[b, c, oh*bs + off_h - pt, ow*bs + off_w - pl]
 *   with ob = (off_h*bs + off_w)*N + b (the block offset is the slow index,
 *   the image the fast one, as in Caffe2 and TensorFlow), and 0 where the
 *   input position falls into the padding.
 * BatchToSpace: X [B, C, Hb, Wb] -> Y [B/(bs*bs), C, Hb*bs-pt-pb,
 *   Wb*bs-pl-pr], the inverse map: every Y element is written once, the
 *   X elements landing in the padding are dropped (cropped).
 * Gradients: each op's gradient is the other one with the same arguments
 *   (spec §5.3); the maps are exact adjoints.
 *
 * Inputs X, output Y; no in-place (as in Caffe2). Dtypes: every numeric
 * one (FLOAT, DOUBLE, FLOAT16, INT8..INT64, UINT8, UINT16, BOOL, BYTE):
 * elements are copied by size; STRING is CT_ENOTSUP.
 * Attrs (all `i`): block_size (2), pad (0), pad_t, pad_l, pad_b, pad_r
 * (each defaults to pad and is honoured independently; Caffe2 reads
 * pad_l, pad_b and pad_r from `pad`, a documented difference), order
 * ("NCHW" or "NHWC"; Caffe2 accepts only NCHW).
 *
 * Validation (reliability checklist D1-D7), all before the output is
 * touched, each message naming the argument and its value:
 *   at creation (CT_EARG): block_size < 1; block_size so large that
 *   block_size^2 overflows int64; a negative pad; an unknown order.
 *   at run (CT_ESHAPE): rank != 4; padded height or width not divisible by
 *   block_size; BatchToSpace: batch not divisible by block_size^2 and a
 *   negative output height or width (pads larger than the input covers).
 *   (CT_EOVERFLOW): padded sizes, N*bs^2, Hb*bs or the output's element
 *   count overflowing int64.
 * Empty tensors give empty (or, with pads, all-zero) outputs; an empty
 * input's data pointer is never used.
 *
 * Design. Both ops walk the same geometry: a "space" side [P planes, h
 * rows, w units] and a "batch" side [bs*bs*P planes, hb rows, wb units],
 * where a unit is one element (NCHW, P = N*C) or one pixel of C elements
 * (NHWC, P = N), so NHWC moves contiguous C-runs and NCHW contiguous row
 * segments. Batch-side plane k*P + p (k = off_h*bs + off_w) holds block
 * offset k of space plane p. One batch row r of every k corresponds to
 * the bs space rows r*bs + off_h - pt: SpaceToBatch de-interleaves each
 * such space row into bs batch rows (stride-bs gather, one stream per
 * off_w), BatchToSpace interleaves them back. The column ranges that
 * fall into the padding are computed per stream without division (from
 * pl / bs and (w - 1 + pl) / bs, found once per run), so inner loops are
 * plain strided copies; bs 2, 3, 4 with units of 1 to 64 bytes (powers of
 * two) take a fused loop over all streams that reads each space row once,
 * row blocks at a time (SSE2 shuffles for bs 2 and 4 with units of 1 to 8
 * bytes, prefetching the next strided space row). The work is split into tiles
 * of (plane, block of batch rows), about TILE_BYTES each, which are independent
 * (disjoint outputs) and run through ct_parallel_for (run_tiles, the one call
 * site).
 */
#include <string.h>

#include "engine/gradient.h"
#include "ops/op_impl.h"

/* Bytes of output a tile aims at: large enough to amortise the tile's
 * setup, small enough for a few tiles per worker on 1 MiB tensors. */
#define TILE_BYTES (256 * 1024)

/* Largest block_size whose square fits int64 (floor(sqrt(INT64_MAX))). */
#define BS_MAX INT64_C(3037000499)

enum sb_order { SB_NCHW, SB_NHWC };

struct sb_state {
    int64_t bs;
    int64_t pt, pl, pb, pr;
    enum sb_order order;
};

/* Sizes of both sides, in the NCHW sense (see the file note). */
struct sb_geom {
    int64_t n, c, h, w;  /* space side: batch, channels, height, width */
    int64_t nb, hb, wb;  /* batch side: batch, height, width */
    int64_t in_dims[4];  /* input dims as given */
    int64_t out_dims[4]; /* output dims in the op's order */
};

/* ---- validation ---- */

static int sb_init(ct_op_t *op, ct_status_t *st)
{
    static const char *const pad_names[4] = {"pad_t", "pad_l", "pad_b",
                                             "pad_r"};
    struct sb_state *s = op->state;
    int64_t pad, *pads[4] = {&s->pt, &s->pl, &s->pb, &s->pr};
    const char *order;
    size_t order_len;
    int rc, k;

    if ((rc = ct__arg_int(op, "block_size", 2, &s->bs, st)) != CT_OK ||
        (rc = ct__arg_int(op, "pad", 0, &pad, st)) != CT_OK ||
        (rc = ct__arg_string(op, "order", "NCHW", &order, &order_len, st)) !=
            CT_OK)
        return rc;
    if (s->bs < 1)
        return ct_status_setf(st, CT_EARG, "block_size=%lld must be >= 1",
                              (long long)s->bs);
    if (s->bs > BS_MAX)
        return ct_status_setf(st, CT_EARG,
                              "block_size=%lld is too large: block_size^2 "
                              "overflows int64",
                              (long long)s->bs);
    if (pad < 0)
        return ct_status_setf(st, CT_EARG, "pad=%lld must be >= 0",
                              (long long)pad);
    for (k = 0; k < 4; k++) {
        if ((rc = ct__arg_int(op, pad_names[k], pad, pads[k], st)) != CT_OK)
            return rc;
        if (*pads[k] < 0)
            return ct_status_setf(st, CT_EARG, "%s=%lld must be >= 0",
                                  pad_names[k], (long long)*pads[k]);
    }
    if (order_len == 4 && memcmp(order, "NCHW", 4) == 0)
        s->order = SB_NCHW;
    else if (order_len == 4 && memcmp(order, "NHWC", 4) == 0)
        s->order = SB_NHWC;
    else
        return ct_status_setf(st, CT_EARG,
                              "order \"%.*s\" must be \"NCHW\" or \"NHWC\"",
                              (int)(order_len > 32 ? 32 : order_len), order);
    return CT_OK;
}

/* a + b + c for non-negative values, or CT_EOVERFLOW. */
static int add3(int64_t a, int64_t b, int64_t c, int64_t *out)
{
    if (a > INT64_MAX - b || a + b > INT64_MAX - c)
        return CT_EOVERFLOW;
    *out = a + b + c;
    return CT_OK;
}

static int mul2(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a)
        return CT_EOVERFLOW;
    *out = a * b;
    return CT_OK;
}

/* Output sizes of SpaceToBatch (to_batch) or BatchToSpace for input dims
 * d (rank nd). Only validates; touches nothing. */
static int sb_geometry(const struct sb_state *s, bool to_batch, int nd,
                       const int64_t *d, struct sb_geom *g, ct_status_t *st)
{
    const char *what = to_batch ? "SpaceToBatch" : "BatchToSpace";
    const int64_t bs = s->bs;
    char buf[160];
    int64_t b0, c0, h0, w0, bs2, hp, wp, numel;
    int i;

    if (nd != 4)
        return ct_status_setf(st, CT_ESHAPE,
                              "%s: input must be 4-D (%s), got %d-D %s", what,
                              s->order == SB_NCHW ? "N, C, H, W" : "N, H, W, C",
                              nd, ct_dims_str(nd, d, buf, sizeof(buf)));
    ct_dims_str(nd, d, buf, sizeof(buf));
    b0 = d[0];
    c0 = s->order == SB_NCHW ? d[1] : d[3];
    h0 = s->order == SB_NCHW ? d[2] : d[1];
    w0 = s->order == SB_NCHW ? d[3] : d[2];
    bs2 = bs * bs; /* bs <= BS_MAX */
    for (i = 0; i < 4; i++)
        g->in_dims[i] = d[i];
    if (to_batch) {
        g->n = b0, g->c = c0, g->h = h0, g->w = w0;
        if (add3(h0, s->pt, s->pb, &hp) != CT_OK ||
            add3(w0, s->pl, s->pr, &wp) != CT_OK)
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "%s: padded size of input %s with pad_t=%lld "
                                  "pad_b=%lld pad_l=%lld pad_r=%lld overflows "
                                  "int64",
                                  what, buf, (long long)s->pt, (long long)s->pb,
                                  (long long)s->pl, (long long)s->pr);
        if (hp % bs != 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s: padded height H + pad_t + pad_b = %lld "
                                  "+ %lld + %lld = %lld is not divisible by "
                                  "block_size=%lld (input %s)",
                                  what, (long long)h0, (long long)s->pt,
                                  (long long)s->pb, (long long)hp,
                                  (long long)bs, buf);
        if (wp % bs != 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s: padded width W + pad_l + pad_r = %lld "
                                  "+ %lld + %lld = %lld is not divisible by "
                                  "block_size=%lld (input %s)",
                                  what, (long long)w0, (long long)s->pl,
                                  (long long)s->pr, (long long)wp,
                                  (long long)bs, buf);
        if (mul2(b0, bs2, &g->nb) != CT_OK)
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "%s: output batch N * block_size^2 = %lld * "
                                  "%lld overflows int64 (input %s)",
                                  what, (long long)b0, (long long)bs2, buf);
        g->hb = hp / bs;
        g->wb = wp / bs;
    } else {
        g->nb = b0, g->c = c0, g->hb = h0, g->wb = w0;
        if (b0 % bs2 != 0)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s: input batch %lld is not divisible by "
                                  "block_size^2 = %lld (block_size=%lld, "
                                  "input %s)",
                                  what, (long long)b0, (long long)bs2,
                                  (long long)bs, buf);
        g->n = b0 / bs2;
        if (mul2(h0, bs, &hp) != CT_OK || mul2(w0, bs, &wp) != CT_OK)
            return ct_status_setf(st, CT_EOVERFLOW,
                                  "%s: input %s times block_size=%lld "
                                  "overflows int64",
                                  what, buf, (long long)bs);
        /* hp - pt cannot overflow (both >= 0); compare before subtracting
         * pb. */
        if (hp - s->pt < s->pb)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s: output height Hb * block_size - pad_t "
                                  "- pad_b = %lld - %lld - %lld is negative "
                                  "(input %s)",
                                  what, (long long)hp, (long long)s->pt,
                                  (long long)s->pb, buf);
        if (wp - s->pl < s->pr)
            return ct_status_setf(st, CT_ESHAPE,
                                  "%s: output width Wb * block_size - pad_l - "
                                  "pad_r = %lld - %lld - %lld is negative "
                                  "(input %s)",
                                  what, (long long)wp, (long long)s->pl,
                                  (long long)s->pr, buf);
        g->h = hp - s->pt - s->pb;
        g->w = wp - s->pl - s->pr;
    }
    {
        const int64_t ob = to_batch ? g->nb : g->n;
        const int64_t oh = to_batch ? g->hb : g->h;
        const int64_t ow = to_batch ? g->wb : g->w;
        g->out_dims[0] = ob;
        if (s->order == SB_NCHW) {
            g->out_dims[1] = g->c, g->out_dims[2] = oh, g->out_dims[3] = ow;
        } else {
            g->out_dims[1] = oh, g->out_dims[2] = ow, g->out_dims[3] = g->c;
        }
    }
    if (ct_dims_numel(4, g->out_dims, &numel, NULL) != CT_OK)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "%s: output %s has more than INT64_MAX "
                              "elements",
                              what,
                              ct_dims_str(4, g->out_dims, buf, sizeof(buf)));
    return CT_OK;
}

/* ---- row kernels ---- */

/* Fused kernels over `rows` rows of n groups (see FUSED_FN). */
typedef void (*deint_fn)(char *const *y, size_t ys, const char *x, size_t xs,
                         int64_t rows, int64_t n);
typedef void (*inter_fn)(char *const *y, size_t ys, char *x, size_t xs,
                         int64_t rows, int64_t n);

/* What every tile needs. Units are `u` bytes; rows of the space side have
 * w units, rows of the batch side wb. */
struct sb_job {
    const char *src;
    char *dst;
    bool to_batch;
    size_t u;
    int64_t planes;       /* P */
    int64_t h, w, hb, wb; /* rows and units per row of each side */
    int64_t bs, pt, pl;
    int64_t lo_q, lo_r; /* pl / bs, pl % bs */
    int64_t hi_q, hi_r; /* (w - 1 + pl) / bs and % bs; hi_q -1 when w+pl is 0 */
    int64_t rows_per_tile, tiles_per_plane, n_tiles;
    /* Fused interior (NULL when bs or u has no fused kernel): columns
     * [f_lo, f_hi) of every stream, starting f_x0 bytes into the space
     * row. */
    deint_fn deint;
    inter_fn inter;
    bool edges; /* some stream has columns outside [f_lo, f_hi) */
    int64_t f_lo, f_hi;
    size_t f_x0;
};

/* Columns [lo, hi) of stream off_w that map into the space row. */
static void stream_range(const struct sb_job *j, int64_t off_w, int64_t *lo,
                         int64_t *hi)
{
    *lo = j->lo_q + (off_w < j->lo_r ? 1 : 0);
    *hi = j->hi_q < 0 ? 0 : j->hi_q + (off_w <= j->hi_r ? 1 : 0);
    if (*hi > j->wb)
        *hi = j->wb;
    if (*lo > *hi)
        *lo = *hi;
}

/* n units from src (stride ss units) to dst (stride ds units). Fixed-size
 * memcpy compiles to plain moves and keeps the accesses alias-safe. */
#define COPY_LOOP(SZ)                                                          \
    for (i = 0; i < n; i++)                                                    \
        memcpy(dst + (size_t)i * ds * (SZ), src + (size_t)i * ss * (SZ), (SZ));

static void copy_units(char *dst, int64_t ds, const char *src, int64_t ss,
                       int64_t n, size_t u)
{
    int64_t i;

    switch (u) {
    case 1:
        COPY_LOOP(1)
        return;
    case 2:
        COPY_LOOP(2)
        return;
    case 4:
        COPY_LOOP(4)
        return;
    case 8:
        COPY_LOOP(8)
        return;
    case 16:
        COPY_LOOP(16)
        return;
    case 32:
        COPY_LOOP(32)
        return;
    case 64:
        COPY_LOOP(64)
        return;
    default:
        break;
    }
    if (ds == 1 && ss == 1) {
        memcpy(dst, src, (size_t)n * u);
        return;
    }
    for (i = 0; i < n; i++)
        memcpy(dst + (size_t)(i * ds) * u, src + (size_t)(i * ss) * u, u);
}

/* Fused de-interleave (SpaceToBatch) / interleave (BatchToSpace) of n
 * groups of BS units: space x[i*BS + k] <-> batch y_k[i]. The stream
 * pointers are copied into scalars first (stores through char pointers
 * may alias the caller's array, which would force a reload per store),
 * the per-stream statements are spelt out, and `omp simd` lets GCC's -O2
 * cost model vectorise the strided group (it would not on its own). The
 * streams never overlap each other or x, so the loop has no dependence. */
/* GCC only: clang reports loops it cannot vectorize (-Wpass-failed, an
 * error under -Werror) and vectorizes these fixed-size copies without the
 * hint anyway. */
#if defined(_OPENMP) && !defined(__clang__)
#define SB_SIMD _Pragma("omp simd")
#else
#define SB_SIMD
#endif

/* SSE2 (the x86-64 baseline, so no CPU dispatch) row kernels for units of
 * 1, 2, 4 and 8 bytes and bs 2 and 4: each step moves 16-byte vectors,
 * V = 16 / SZ groups, and returns how many groups it did; the portable
 * loops below finish the row tail (and are the whole kernel elsewhere).
 * d2 splits the 2V units of vectors (a, b) into the even units e and the
 * odd units o; i2 is its inverse. bs 4 is d2 applied twice (units 0 and
 * 2 of a group are the evens, 1 and 3 the odds), and i2 twice back. The
 * shuffles only move bits (no arithmetic), so any dtype is safe.
 * pf != 0 prefetches the same columns of the next space row, pf bytes on
 * (bs space rows further): the hardware prefetchers follow sequential
 * streams but not this jump, and without it the space side's strided
 * rows ran at about 0.7x memcpy (docs/training.md). */
#if defined(__SSE2__)
#include <emmintrin.h>

#define VLOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define VSTORE(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))

static inline void d2(size_t sz, __m128i a, __m128i b, __m128i *e, __m128i *o)
{
    switch (sz) {
    case 1: { /* bytes 0..255 in 16-bit lanes: packus is exact */
        const __m128i lo = _mm_set1_epi16(0xff);
        *e = _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
        *o = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
        return;
    }
    case 2: /* sign-extended 16-bit values in 32-bit lanes: packs is exact */
        *e = _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(a, 16), 16),
                             _mm_srai_epi32(_mm_slli_epi32(b, 16), 16));
        *o = _mm_packs_epi32(_mm_srai_epi32(a, 16), _mm_srai_epi32(b, 16));
        return;
    case 4: {
        const __m128 fa = _mm_castsi128_ps(a), fb = _mm_castsi128_ps(b);
        *e = _mm_castps_si128(_mm_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0)));
        *o = _mm_castps_si128(_mm_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1)));
        return;
    }
    default: /* 8 */
        *e = _mm_unpacklo_epi64(a, b);
        *o = _mm_unpackhi_epi64(a, b);
        return;
    }
}

static inline void i2(size_t sz, __m128i e, __m128i o, __m128i *a, __m128i *b)
{
    switch (sz) {
    case 1:
        *a = _mm_unpacklo_epi8(e, o);
        *b = _mm_unpackhi_epi8(e, o);
        return;
    case 2:
        *a = _mm_unpacklo_epi16(e, o);
        *b = _mm_unpackhi_epi16(e, o);
        return;
    case 4:
        *a = _mm_unpacklo_epi32(e, o);
        *b = _mm_unpackhi_epi32(e, o);
        return;
    default: /* 8 */
        *a = _mm_unpacklo_epi64(e, o);
        *b = _mm_unpackhi_epi64(e, o);
        return;
    }
}

/* De-interleave: groups [0, return) of x into y0..y3 (see FUSED_FN). */
static inline int64_t vec_deint(size_t sz, int64_t bs, char *y0, char *y1,
                                char *y2, char *y3, const char *x, int64_t n,
                                size_t pf)
{
    const int64_t v = 16 / (int64_t)sz;
    int64_t i = 0;
    __m128i a, b, c, d, e0, o0, e1, o1;

    if (sz > 8 || (bs != 2 && bs != 4))
        return 0;
    for (; i + v <= n; i += v, x += 16 * bs) {
        const size_t off = (size_t)i * sz;
        if (pf != 0 && (bs == 4 || (i & v) == 0)) /* once per 64 bytes */
            _mm_prefetch(x + pf, _MM_HINT_T0);
        if (bs == 2) {
            d2(sz, VLOAD(x), VLOAD(x + 16), &e0, &o0);
            VSTORE(y0 + off, e0);
            VSTORE(y1 + off, o0);
        } else {
            d2(sz, VLOAD(x), VLOAD(x + 16), &e0, &o0);
            d2(sz, VLOAD(x + 32), VLOAD(x + 48), &e1, &o1);
            d2(sz, e0, e1, &a, &c); /* units 0 and 2 */
            d2(sz, o0, o1, &b, &d); /* units 1 and 3 */
            VSTORE(y0 + off, a);
            VSTORE(y1 + off, b);
            VSTORE(y2 + off, c);
            VSTORE(y3 + off, d);
        }
    }
    return i;
}

/* Interleave: groups [0, return) of y0..y3 into x. */
static inline int64_t vec_inter(size_t sz, int64_t bs, const char *y0,
                                const char *y1, const char *y2, const char *y3,
                                char *x, int64_t n, size_t pf)
{
    const int64_t v = 16 / (int64_t)sz;
    int64_t i = 0;
    __m128i a, b, c, d, e0, o0, e1, o1;

    if (sz > 8 || (bs != 2 && bs != 4))
        return 0;
    for (; i + v <= n; i += v, x += 16 * bs) {
        const size_t off = (size_t)i * sz;
        if (pf != 0 && (bs == 4 || (i & v) == 0))
            _mm_prefetch(x + pf, _MM_HINT_T0);
        if (bs == 2) {
            i2(sz, VLOAD(y0 + off), VLOAD(y1 + off), &a, &b);
            VSTORE(x, a);
            VSTORE(x + 16, b);
        } else {
            i2(sz, VLOAD(y0 + off), VLOAD(y2 + off), &e0, &e1);
            i2(sz, VLOAD(y1 + off), VLOAD(y3 + off), &o0, &o1);
            i2(sz, e0, o0, &a, &b);
            i2(sz, e1, o1, &c, &d);
            VSTORE(x, a);
            VSTORE(x + 16, b);
            VSTORE(x + 32, c);
            VSTORE(x + 48, d);
        }
    }
    return i;
}
#else
#define vec_deint(sz, bs, y0, y1, y2, y3, x, n, pf) ((int64_t)0)
#define vec_inter(sz, bs, y0, y1, y2, y3, x, n, pf) ((int64_t)0)
#endif

#define DE(K, SZ, BS)                                                          \
    memcpy(y##K + (size_t)i * SZ, x + ((size_t)i * BS + K) * SZ, SZ)
#define IN(K, SZ, BS)                                                          \
    memcpy(x + ((size_t)i * BS + K) * SZ, y##K + (size_t)i * SZ, SZ)

/* Row r of n groups: y_k advances ys bytes per row, x xs bytes. */
#define FUSED_FN(SZ, BS, BODY_DE, BODY_IN)                                     \
    static void deint_##SZ##_##BS(char *const *y, size_t ys, const char *x,    \
                                  size_t xs, int64_t rows, int64_t n)          \
    {                                                                          \
        char *y0 = y[0], *y1 = y[1];                                           \
        char *y2 = BS > 2 ? y[2 % BS] : NULL, *y3 = BS > 3 ? y[3 % BS] : NULL; \
        int64_t r, i, i0;                                                      \
        (void)y2; /* unused for small BS: the body never names them */         \
        (void)y3;                                                              \
        for (r = 0; r < rows; r++) {                                           \
            i0 = vec_deint(SZ, BS, y0, y1, y2, y3, x, n,                       \
                           r + 1 < rows ? xs : 0);                             \
            SB_SIMD for (i = i0; i < n; i++)                                   \
            {                                                                  \
                BODY_DE;                                                       \
            }                                                                  \
            x += xs;                                                           \
            y0 += ys;                                                          \
            y1 += ys;                                                          \
            if (BS > 2)                                                        \
                y2 += ys;                                                      \
            if (BS > 3)                                                        \
                y3 += ys;                                                      \
        }                                                                      \
    }                                                                          \
    static void inter_##SZ##_##BS(char *const *y, size_t ys, char *x,          \
                                  size_t xs, int64_t rows, int64_t n)          \
    {                                                                          \
        const char *y0 = y[0], *y1 = y[1];                                     \
        const char *y2 = BS > 2 ? y[2 % BS] : NULL;                            \
        const char *y3 = BS > 3 ? y[3 % BS] : NULL;                            \
        int64_t r, i, i0;                                                      \
        (void)y2;                                                              \
        (void)y3;                                                              \
        for (r = 0; r < rows; r++) {                                           \
            i0 = vec_inter(SZ, BS, y0, y1, y2, y3, x, n,                       \
                           r + 1 < rows ? xs : 0);                             \
            SB_SIMD for (i = i0; i < n; i++)                                   \
            {                                                                  \
                BODY_IN;                                                       \
            }                                                                  \
            x += xs;                                                           \
            y0 += ys;                                                          \
            y1 += ys;                                                          \
            if (BS > 2)                                                        \
                y2 += ys;                                                      \
            if (BS > 3)                                                        \
                y3 += ys;                                                      \
        }                                                                      \
    }

#define FUSED(SZ)                                                              \
    FUSED_FN(SZ, 2, DE(0, SZ, 2); DE(1, SZ, 2), IN(0, SZ, 2); IN(1, SZ, 2))    \
    FUSED_FN(SZ, 3, DE(0, SZ, 3); DE(1, SZ, 3); DE(2, SZ, 3), IN(0, SZ, 3);    \
             IN(1, SZ, 3); IN(2, SZ, 3))                                       \
    FUSED_FN(SZ, 4, DE(0, SZ, 4); DE(1, SZ, 4); DE(2, SZ, 4);                  \
             DE(3, SZ, 4), IN(0, SZ, 4); IN(1, SZ, 4); IN(2, SZ, 4);           \
             IN(3, SZ, 4))

FUSED(1)
FUSED(2)
FUSED(4)
FUSED(8)
FUSED(16)
FUSED(32)
FUSED(64)

/* [size index][bs - 2] */
#define FNS(P, SZ)                                                             \
    {                                                                          \
        P##_##SZ##_2, P##_##SZ##_3, P##_##SZ##_4                               \
    }
static const deint_fn deint_fns[7][3] = {
    FNS(deint, 1),  FNS(deint, 2),  FNS(deint, 4),  FNS(deint, 8),
    FNS(deint, 16), FNS(deint, 32), FNS(deint, 64),
};
static const inter_fn inter_fns[7][3] = {
    FNS(inter, 1),  FNS(inter, 2),  FNS(inter, 4),  FNS(inter, 8),
    FNS(inter, 16), FNS(inter, 32), FNS(inter, 64),
};

static int size_index(size_t u)
{
    switch (u) {
    case 1:
        return 0;
    case 2:
        return 1;
    case 4:
        return 2;
    case 8:
        return 3;
    case 16:
        return 4;
    case 32:
        return 5;
    case 64:
        return 6;
    default:
        return -1;
    }
}

/* Maximum number of streams a fused kernel takes. */
#define FUSED_MAX_BS 4

/* Stream k of one space row x <-> its batch row yk, leaving out columns
 * [skip_lo, skip_hi) that a fused loop did. SpaceToBatch zeroes the
 * columns that fall into the horizontal padding. */
static void sb_stream(const struct sb_job *j, char *x, char *yk, int64_t k,
                      int64_t skip_lo, int64_t skip_hi)
{
    const size_t u = j->u;
    int64_t lo, hi, segs[2][2];
    int s;

    stream_range(j, k, &lo, &hi);
    if (j->to_batch) {
        memset(yk, 0, (size_t)lo * u);
        memset(yk + (size_t)hi * u, 0, (size_t)(j->wb - hi) * u);
    }
    segs[0][0] = lo;
    segs[0][1] = hi < skip_lo ? hi : skip_lo;
    segs[1][0] = lo > skip_hi ? lo : skip_hi;
    segs[1][1] = hi;
    if (skip_lo >= skip_hi) { /* nothing skipped: one segment */
        segs[0][1] = hi;
        segs[1][1] = segs[1][0];
    }
    for (s = 0; s < 2; s++) {
        const int64_t c0 = segs[s][0], n = segs[s][1] - c0;
        char *xs, *ys;
        if (n <= 0)
            continue;
        xs = x + (size_t)(c0 * j->bs + k - j->pl) * u;
        ys = yk + (size_t)c0 * u;
        if (j->to_batch)
            copy_units(ys, 1, xs, j->bs, n, u);
        else
            copy_units(xs, j->bs, ys, 1, n, u);
    }
}

/* Batch row r of stream plane (k, p). */
static char *batch_row(const struct sb_job *j, char *batch, int64_t k,
                       int64_t p, int64_t r)
{
    const size_t brow = (size_t)j->wb * j->u;

    return batch +
           ((size_t)(k * j->planes + p) * (size_t)j->hb + (size_t)r) * brow;
}

/* Batch rows [*ra, *rb) within [r0, r1) whose space row r*bs + off_h - pt
 * lies inside [0, h); the others are padding. */
static void valid_rows(const struct sb_job *j, int64_t off_h, int64_t r0,
                       int64_t r1, int64_t *ra, int64_t *rb)
{
    const int64_t lo = j->pt - off_h, hi = j->h - 1 + j->pt - off_h;
    int64_t a = lo <= 0 ? 0 : (lo + j->bs - 1) / j->bs;
    int64_t b = hi < 0 ? 0 : hi / j->bs + 1;

    a = a < r0 ? r0 : a;
    b = b > r1 ? r1 : b;
    if (a > b)
        a = b;
    *ra = a;
    *rb = b;
}

/* Tiles [t0, t1): each is (space plane p, batch rows [r0, r1)), all bs*bs
 * streams of that plane. */
static void sb_tiles(void *arg, int64_t t0, int64_t t1, int ith)
{
    const struct sb_job *j = arg;
    const size_t u = j->u, srow = (size_t)j->w * u, brow = (size_t)j->wb * u;
    char *space = j->to_batch ? (char *)j->src : j->dst;
    char *batch = j->to_batch ? j->dst : (char *)j->src;
    int64_t t;

    (void)ith;
    for (t = t0; t < t1; t++) {
        const int64_t p = t / j->tiles_per_plane;
        const int64_t r0 = (t - p * j->tiles_per_plane) * j->rows_per_tile;
        const int64_t r1 =
            j->hb - r0 > j->rows_per_tile ? r0 + j->rows_per_tile : j->hb;
        int64_t off_h, k, r, ra, rb;

        for (off_h = 0; off_h < j->bs; off_h++) {
            const int64_t k0 = off_h * j->bs;
            char *x;

            valid_rows(j, off_h, r0, r1, &ra, &rb);
            if (j->to_batch) { /* padding rows become zeros */
                for (k = 0; k < j->bs; k++) {
                    memset(batch_row(j, batch, k0 + k, p, r0), 0,
                           (size_t)(ra - r0) * brow);
                    memset(batch_row(j, batch, k0 + k, p, rb), 0,
                           (size_t)(r1 - rb) * brow);
                }
            }
            if (ra == rb)
                continue;
            x = space + ((size_t)p * (size_t)j->h +
                         (size_t)(ra * j->bs + off_h - j->pt)) *
                            srow;
            if (j->deint != NULL) {
                char *y[FUSED_MAX_BS];
                for (k = 0; k < j->bs; k++)
                    y[k] = batch_row(j, batch, k0 + k, p, ra) +
                           (size_t)j->f_lo * u;
                if (j->to_batch)
                    j->deint(y, brow, x + j->f_x0, (size_t)j->bs * srow,
                             rb - ra, j->f_hi - j->f_lo);
                else
                    j->inter(y, brow, x + j->f_x0, (size_t)j->bs * srow,
                             rb - ra, j->f_hi - j->f_lo);
                if (!j->edges)
                    continue;
            }
            for (r = ra; r < rb; r++, x += (size_t)j->bs * srow)
                for (k = 0; k < j->bs; k++)
                    sb_stream(j, x, batch_row(j, batch, k0 + k, p, r), k,
                              j->f_lo, j->f_hi);
        }
    }
}

/* ---- the kernel ---- */

/* THE parallel call site. Tiles are independent (disjoint outputs), so
 * they go to ct_parallel_for (scheduler/sched.c), one tile per range
 * unit: on the executor's pool (ctx->sched), the engine's pool or an
 * OpenMP team as the engine's intra_op mode says, or inline for a
 * one-thread engine. It fails only when the engine's pool cannot be made,
 * before any tile ran. */
static int run_tiles(ct_op_ctx_t *ctx, struct sb_job *j)
{
    return ct_parallel_for(ctx, j->n_tiles, 1, sb_tiles, j);
}

/* Fills everything in j but the data pointers. */
static void sb_plan(const struct sb_state *s, const struct sb_geom *g,
                    bool to_batch, size_t esz, struct sb_job *j)
{
    const int64_t bs = s->bs;
    int64_t row_bytes, e;
    int si;

    memset(j, 0, sizeof(*j));
    j->to_batch = to_batch;
    j->u = s->order == SB_NCHW ? esz : (size_t)g->c * esz;
    j->planes = s->order == SB_NCHW ? g->n * g->c : g->n;
    j->h = g->h, j->w = g->w, j->hb = g->hb, j->wb = g->wb;
    j->bs = bs, j->pt = s->pt, j->pl = s->pl;
    j->lo_q = s->pl / bs;
    j->lo_r = s->pl % bs;
    e = g->w - 1 + s->pl; /* no overflow: W + pl + pr was checked */
    j->hi_q = e < 0 ? -1 : e / bs;
    j->hi_r = e < 0 ? 0 : e % bs;
    si = size_index(j->u);
    if (si >= 0 && bs >= 2 && bs <= FUSED_MAX_BS) {
        j->f_lo = j->lo_q + (j->lo_r > 0 ? 1 : 0);
        j->f_hi = j->hi_q < 0 ? 0 : j->hi_q + (j->hi_r == bs - 1 ? 1 : 0);
        if (j->f_hi > j->wb)
            j->f_hi = j->wb;
        if (j->f_lo < j->f_hi) {
            j->deint = deint_fns[si][bs - 2];
            j->inter = inter_fns[si][bs - 2];
            j->f_x0 = (size_t)(j->f_lo * bs - s->pl) * j->u;
        } else {
            j->f_lo = j->f_hi = 0;
        }
    }
    /* f_lo is the largest and f_hi the smallest stream bound, so fused
     * columns [0, wb) leave no column to any stream. */
    j->edges = j->deint == NULL || j->f_lo > 0 || j->f_hi < j->wb;
    /* Rows per tile: TILE_BYTES of batch-side data (bs^2 rows of wb units
     * per batch row), at least one. */
    row_bytes = bs * bs * j->wb * (int64_t)j->u; /* <= the output's bytes */
    j->rows_per_tile =
        row_bytes > 0 && row_bytes < TILE_BYTES ? TILE_BYTES / row_bytes : 1;
    if (j->rows_per_tile > j->hb)
        j->rows_per_tile = j->hb > 0 ? j->hb : 1;
    j->tiles_per_plane = (j->hb + j->rows_per_tile - 1) / j->rows_per_tile;
    j->n_tiles = j->planes * j->tiles_per_plane;
}

static int sb_run(ct_op_ctx_t *ctx, bool to_batch)
{
    const struct sb_state *s = ctx->op->state;
    const ct_tensor_t *x;
    ct_tensor_t *y;
    struct sb_geom g;
    struct sb_job j;
    ct_status_t lst;
    int rc;

    if ((rc = ct_op_input(ctx, 0, &x)) != CT_OK)
        return rc;
    if (x->dtype == CT_DTYPE_STRING || x->dtype == CT_DTYPE_UNDEFINED)
        return ct_op_fail(ctx, CT_ENOTSUP,
                          "unsupported dtype %s (every numeric dtype)",
                          ct_dtype_name(x->dtype));
    ct_status_clear(&lst);
    rc = sb_geometry(s, to_batch, x->ndim, x->dims, &g, &lst);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", lst.msg);
    rc = ct_op_output(ctx, 0, x->dtype, 4, g.out_dims, &y);
    if (rc != CT_OK)
        return rc;
    if (y->numel == 0)
        return CT_OK;
    if (x->numel == 0) {
        /* Only SpaceToBatch gets here (BatchToSpace's output is never
         * larger than its input): all padding. */
        memset(ct_tensor_data(y), 0, ct_tensor_nbytes(y));
        return CT_OK;
    }
    sb_plan(s, &g, to_batch, ct_dtype_size(x->dtype), &j);
    j.src = ct_tensor_cdata(x);
    j.dst = ct_tensor_data(y);
    return run_tiles(ctx, &j);
}

static int s2b_run(ct_op_ctx_t *ctx)
{
    return sb_run(ctx, true);
}

static int b2s_run(ct_op_ctx_t *ctx)
{
    return sb_run(ctx, false);
}

static int sb_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                    bool to_batch, ct_status_t *st)
{
    struct sb_geom g;
    int rc;

    out[0].dtype = in[0].dtype;
    if (in[0].ndim < 0)
        return CT_OK;
    rc = sb_geometry(op->state, to_batch, in[0].ndim, in[0].dims, &g, st);
    if (rc != CT_OK)
        return rc;
    out[0].ndim = 4;
    memcpy(out[0].dims, g.out_dims, sizeof(g.out_dims));
    return CT_OK;
}

static int s2b_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    return sb_infer(op, in, out, true, st);
}

static int b2s_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                     ct_status_t *st)
{
    return sb_infer(op, in, out, false, st);
}

/* Bytes moved: every output element is read (or zeroed) and written. */
static double sb_cost(const ct_op_t *op, const ct_shape_t *in, bool to_batch)
{
    struct sb_geom g;
    double n = 1;
    int i;

    if (in[0].ndim < 0 || sb_geometry(op->state, to_batch, in[0].ndim,
                                      in[0].dims, &g, NULL) != CT_OK)
        return 0;
    for (i = 0; i < 4; i++)
        n *= (double)g.out_dims[i];
    return 2 * n * (double)ct_dtype_size(in[0].dtype);
}

static double s2b_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return sb_cost(op, in, true);
}

static double b2s_cost(const ct_op_t *op, const ct_shape_t *in)
{
    return sb_cost(op, in, false);
}

/* ---- gradients (spec §5.3): each op's is the other, same arguments ---- */

static int sb_grad_make(struct ct__grad_ctx *g, const char *type,
                        ct_status_t *st)
{
    const char *dy = ct__grad_out(g, 0), *dx = ct__grad_in(g, 0);

    return ct__grad_emit(g, type, &dy, 1, &dx, 1, 0, NULL, st);
}

static int s2b_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return sb_grad_make(g, "BatchToSpace", st);
}

static int b2s_grad_make(struct ct__grad_ctx *g, ct_status_t *st)
{
    return sb_grad_make(g, "SpaceToBatch", st);
}

static const struct ct_arg_spec sb_args[] = {
    {"block_size", CT_ARG_INT, false}, {"pad", CT_ARG_INT, false},
    {"pad_t", CT_ARG_INT, false},      {"pad_l", CT_ARG_INT, false},
    {"pad_b", CT_ARG_INT, false},      {"pad_r", CT_ARG_INT, false},
    {"order", CT_ARG_STRING, false},   {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_space_to_batch = {
    .name = "SpaceToBatch",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = sb_args,
    .state_size = sizeof(struct sb_state),
    .init_cb = sb_init,
    .infer_cb = s2b_infer,
    .run_cb = s2b_run,
    .grad_cb = s2b_grad_make,
    .cost_cb = s2b_cost,
    .doc = "Spatial blocks to batch: [N,C,H,W] -> [N*bs^2,C,Hp/bs,Wp/bs]",
};

const struct ct_op_schema ct__op_batch_to_space = {
    .name = "BatchToSpace",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = sb_args,
    .state_size = sizeof(struct sb_state),
    .init_cb = sb_init,
    .infer_cb = b2s_infer,
    .run_cb = b2s_run,
    .grad_cb = b2s_grad_make,
    .cost_cb = b2s_cost,
    .doc = "Batch to spatial blocks: inverse of SpaceToBatch (cropping)",
};
