/* cortado: Philox4x32-10 streams and the distributions built on them.
 *
 * Layout of a stream: block b is philox(ctr = {b_lo, b_hi, stream_lo,
 * stream_hi}, key = {key_lo, key_hi}), four 32-bit words. Each
 * distribution maps element i to a fixed block and word(s):
 *   uniform_f32     block i/4, word i%4 (24 of its 32 bits);
 *   uniform_f64/i32 block i/2, words 2(i%2) and 2(i%2)+1 (64 bits);
 *   gaussian        block i/2 gives one Box-Muller pair (two 53-bit
 *                   uniforms); even i takes the cosine, odd i the sine.
 * So any [first, first + n) slice of a fill can be produced on its own,
 * and the values never depend on how a fill is split.
 */
#include <math.h>

#include "ops/rand.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* 2*pi to double precision; M_PI is not in strict C11. */
#define TWO_PI 6.283185307179586476925286766559

void ct__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                       uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    int round;

    for (round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;

        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint64_t ct__rand_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ct__rand_key(uint32_t seed, bool has_seed)
{
    /* Bit 32 keeps the keys of derived seeds apart from explicit ones, so
     * an unseeded op never replays an op seeded with the same number. */
    return ct__rand_mix64((uint64_t)seed | (has_seed ? 0 : 1ull << 32));
}

static void block(const struct ct__rng *r, uint64_t b, uint32_t out[4])
{
    uint32_t ctr[4], key[2];

    ctr[0] = (uint32_t)b;
    ctr[1] = (uint32_t)(b >> 32);
    ctr[2] = (uint32_t)r->stream;
    ctr[3] = (uint32_t)(r->stream >> 32);
    key[0] = (uint32_t)r->key;
    key[1] = (uint32_t)(r->key >> 32);
    ct__philox4x32_10(ctr, key, out);
}

static uint64_t join64(const uint32_t *w)
{
    return ((uint64_t)w[0] << 32) | w[1];
}

uint64_t ct__rand_u64(const struct ct__rng *r, uint64_t i, int w)
{
    uint32_t out[4];

    block(r, i, out);
    return join64(out + 2 * (w & 1));
}

/* Uniform in [0, 1) with 53 bits. */
static double unit53(uint64_t x)
{
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

void ct__rand_uniform_f32(const struct ct__rng *r, uint64_t first, size_t n,
                          float lo, float hi, float *dst)
{
    double span = (double)hi - (double)lo;
    float below_hi = nextafterf(hi, lo);
    uint32_t w[4];
    size_t k;

    for (k = 0; k < n; k++) {
        uint64_t i = first + k;
        double u;
        float v;

        if (k == 0 || i % 4 == 0)
            block(r, i / 4, w);
        u = (double)(w[i % 4] >> 8) * (1.0 / 16777216.0);
        v = (float)((double)lo + span * u);
        dst[k] = v < hi ? v : below_hi;
    }
}

void ct__rand_uniform_f64(const struct ct__rng *r, uint64_t first, size_t n,
                          double lo, double hi, double *dst)
{
    double below_hi = nextafter(hi, lo);
    uint32_t w[4];
    size_t k;

    for (k = 0; k < n; k++) {
        uint64_t i = first + k;
        double v;

        if (k == 0 || i % 2 == 0)
            block(r, i / 2, w);
        /* lo + (hi - lo) * u can overflow when the span exceeds DBL_MAX,
         * so interpolate without forming the span. */
        {
            double u = unit53(join64(w + 2 * (i % 2)));
            v = lo * (1.0 - u) + hi * u;
        }
        if (v < lo)
            v = lo;
        dst[k] = v < hi ? v : below_hi;
    }
}

void ct__rand_uniform_i32(const struct ct__rng *r, uint64_t first, size_t n,
                          int32_t lo, int32_t hi, int32_t *dst)
{
    /* hi - lo + 1 is at most 2^32, so it fits and is never 0. */
    uint64_t range = (uint64_t)((int64_t)hi - (int64_t)lo) + 1;
    uint32_t w[4];
    size_t k;

    for (k = 0; k < n; k++) {
        uint64_t i = first + k;

        if (k == 0 || i % 2 == 0)
            block(r, i / 2, w);
        dst[k] =
            (int32_t)((int64_t)lo + (int64_t)(join64(w + 2 * (i % 2)) % range));
    }
}

/* The Box-Muller pair of block b: z[0] = rho cos(theta), z[1] = rho
 * sin(theta). u1 is shifted into (0, 1] so log(u1) is finite. */
static void normal_pair(const struct ct__rng *r, uint64_t b, double z[2])
{
    uint32_t w[4];
    double u1, u2, rho, theta;

    block(r, b, w);
    u1 = ((double)(join64(w) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    u2 = unit53(join64(w + 2));
    rho = sqrt(-2.0 * log(u1));
    theta = TWO_PI * u2;
    z[0] = rho * cos(theta);
    z[1] = rho * sin(theta);
}

void ct__rand_gaussian_f64(const struct ct__rng *r, uint64_t first, size_t n,
                           double mean, double std, double *dst)
{
    double z[2];
    size_t k;

    for (k = 0; k < n; k++) {
        uint64_t i = first + k;

        if (k == 0 || i % 2 == 0)
            normal_pair(r, i / 2, z);
        dst[k] = mean + std * z[i % 2];
    }
}

void ct__rand_gaussian_f32(const struct ct__rng *r, uint64_t first, size_t n,
                           float mean, float std, float *dst)
{
    double z[2];
    size_t k;

    for (k = 0; k < n; k++) {
        uint64_t i = first + k;

        if (k == 0 || i % 2 == 0)
            normal_pair(r, i / 2, z);
        dst[k] = (float)((double)mean + (double)std * z[i % 2]);
    }
}
