/* Tests for ops/rand.c: Philox4x32-10 known answers (Random123's
 * vectors), slices of a stream equal to the whole for every distribution,
 * and the uniform upper bound never being returned. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "ops/rand.h"

/* ---- tests ---- */

static void test_philox4x32_10_known_answers_match_random123(void **state)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0},
         {0, 0},
         {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
         {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
         {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        uint32_t out[4];
        ct__philox4x32_10(kat[i].ctr, kat[i].key, out);
        assert_memory_equal(out, kat[i].out, sizeof(out));
    }
}

static void test_rand_streams_split_anywhere_give_same_values(void **state)
{
    const struct ct__rng r = {0x0123456789abcdefull, 3};
    float whole[101], part[101];
    int32_t iw[101], ip[101];
    double dw[101], dp[101];
    const size_t cut[] = {0, 1, 37, 64, 101};
    size_t c;

    (void)state;
    ct__rand_gaussian_f32(&r, 0, 101, 0.0f, 1.0f, whole);
    ct__rand_uniform_i32(&r, 0, 101, INT32_MIN, INT32_MAX, iw);
    ct__rand_uniform_f64(&r, 0, 101, -1.0, 1.0, dw);
    for (c = 0; c + 1 < sizeof(cut) / sizeof(cut[0]); c++) {
        size_t n = cut[c + 1] - cut[c];
        ct__rand_gaussian_f32(&r, cut[c], n, 0.0f, 1.0f, part + cut[c]);
        ct__rand_uniform_i32(&r, cut[c], n, INT32_MIN, INT32_MAX, ip + cut[c]);
        ct__rand_uniform_f64(&r, cut[c], n, -1.0, 1.0, dp + cut[c]);
    }
    assert_memory_equal(whole, part, sizeof(whole));
    assert_memory_equal(iw, ip, sizeof(iw));
    assert_memory_equal(dw, dp, sizeof(dw));
}

static void test_rand_uniform_f32_never_returns_hi(void **state)
{
    const struct ct__rng r = {7, 0};
    float v[4096];
    size_t k;

    (void)state;
    /* A span this narrow rounds many draws up to hi before clamping. */
    ct__rand_uniform_f32(&r, 0, 4096, 1.0f, nextafterf(1.0f, 2.0f), v);
    for (k = 0; k < 4096; k++)
        assert_true(v[k] == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox4x32_10_known_answers_match_random123),
        cmocka_unit_test(test_rand_streams_split_anywhere_give_same_values),
        cmocka_unit_test(test_rand_uniform_f32_never_returns_hi),
    };
    return cmocka_run_group_tests_name("ops.rand", tests, NULL, NULL);
}
