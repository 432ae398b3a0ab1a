/* cortado internal: counter-based random numbers for kernels.
 *
 * The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11): a keyed bijection of a 128-bit counter, so
 * element i of a stream is a pure function of (key, stream, i). A fill that
 * is split across workers therefore produces the same values for every
 * split and thread count, and no generator state is shared or locked.
 *
 * A stream is (key, stream): ops derive the key from the seed once
 * (ct__rand_key) and use the run number as the stream, so each run of one
 * op instance draws fresh values while a re-created op with the same seed
 * repeats them, which is what Caffe2's per-op generator does.
 *
 * Every function here is reentrant and allocation-free.
 */
#ifndef CT_OPS_RAND_H
#define CT_OPS_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct__rng {
    uint64_t key;    /* Philox key (two 32-bit words) */
    uint64_t stream; /* upper half of the counter: one sequence per value */
};

/* One Philox4x32-10 block: out = philox(ctr, key). */
void ct__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                       uint32_t out[4]);

/* The splitmix64 finaliser: a bijective 64-bit mixer, for deriving keys. */
uint64_t ct__rand_mix64(uint64_t x);

/* The Philox key of an op from op->seed and op->has_seed. With has_seed
 * (DeviceOption.random_seed was set) the key depends only on the seed, so
 * the same seed gives the same values. Without it, op->seed is the seed
 * the engine derived from the op's position and first output, and the key
 * lies in a separate domain, so it never equals an explicit seed's key. */
uint64_t ct__rand_key(uint32_t seed, bool has_seed);

/* 64 random bits, word w (0 or 1) of block i of the stream. */
uint64_t ct__rand_u64(const struct ct__rng *r, uint64_t i, int w);

/* Fills dst[0..n) with elements [first, first + n) of the stream.
 * uniform_f32/f64: uniform in [lo, hi) (lo < hi; computed in double, then
 * clamped below hi so rounding never yields hi).
 * uniform_i32: uniform integers in [lo, hi], both ends included (lo <= hi);
 * 64 random bits reduced modulo the range, so the bias is below 2^-32.
 * gaussian: mean + std * z with z standard normal, by Box-Muller on two
 * 53-bit uniforms per pair of elements, computed in double. */
void ct__rand_uniform_f32(const struct ct__rng *r, uint64_t first, size_t n,
                          float lo, float hi, float *dst);
void ct__rand_uniform_f64(const struct ct__rng *r, uint64_t first, size_t n,
                          double lo, double hi, double *dst);
void ct__rand_uniform_i32(const struct ct__rng *r, uint64_t first, size_t n,
                          int32_t lo, int32_t hi, int32_t *dst);
void ct__rand_gaussian_f32(const struct ct__rng *r, uint64_t first, size_t n,
                           float mean, float std, float *dst);
void ct__rand_gaussian_f64(const struct ct__rng *r, uint64_t first, size_t n,
                           double mean, double std, double *dst);

#endif /* CT_OPS_RAND_H */
