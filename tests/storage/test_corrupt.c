/* Corrupt checkpoints (reliability checklist B2, B3, B4, B8): a small
 * checkpoint written by Save, truncated at every byte offset and with
 * every bit of every byte flipped in turn, must always fail to load with
 * a clean error (CT_ECORRUPT, or CT_ENOTSUP for a header turned into a
 * future version): never a crash, an abort, or a silent success. The
 * allocator hooks record the largest single allocation: it stays within
 * the file size plus a small fixed allowance, whatever lengths and dims
 * the damaged bytes claim. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "storage_test.h"
#include "test_util.h"

/* Largest allocation the library asked for since the last reset. Tensor
 * storage of a damaged file is bounded by the file size (float data);
 * the allowance covers fixed-size objects (a workspace's tables). */
#define ALLOWANCE 4096

static size_t max_alloc;

static void *h_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (n > max_alloc)
        max_alloc = n;
    return malloc(n);
}

static void *h_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (n > max_alloc)
        max_alloc = n;
    return realloc(p, n);
}

static void h_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void *h_aligned(size_t align, size_t n, void *ctx)
{
    void *p = NULL;

    (void)ctx;
    if (n > max_alloc)
        max_alloc = n;
    return posix_memalign(&p, align, n ? n : 1) == 0 ? p : NULL;
}

static void h_aligned_free(void *p, size_t n, void *ctx)
{
    (void)n;
    (void)ctx;
    free(p);
}

struct env {
    ct_engine_t *eng;
    char *dir, *good, *bad;
    unsigned char *bytes;
    size_t len;
};

static int setup(void **state)
{
    static const struct ct_serialize_options chunk30 = {30, 0};
    struct env *e = calloc(1, sizeof(*e));
    const int64_t d34[2] = {3, 4}, d100 = 100, d5 = 5;
    ct_tensor_t *t[4];
    struct ct_save_item it[5];
    ct_status_t st;
    int i;

    e->dir = stu_tmpdir();
    e->good = stu_path(e->dir, "good.minidb");
    e->bad = stu_path(e->dir, "bad.minidb");
    if (ct_engine_new(NULL, &e->eng, NULL) != CT_OK ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_I64, 0, NULL, &t[0], &st) ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_F32, 2, d34, &t[1], &st) ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_F32, 1, &d100, &t[2], &st) ||
        ct_tensor_new_shape(e->eng, CT_DTYPE_I32, 1, &d5, &t[3], &st))
        return -1;
    *(int64_t *)ct_tensor_data(t[0]) = 1000;
    tu_fill_uniform(ct_tensor_data(t[1]), 12, -1, 1, 3);
    tu_fill_uniform(ct_tensor_data(t[2]), 100, -1, 1, 4);
    for (i = 0; i < 5; i++)
        ((int32_t *)ct_tensor_data(t[3]))[i] = i * 1000 - 2000;
    memset(it, 0, sizeof(it));
    it[0].name = "iter";
    it[1].name = "w";
    it[2].name = "b";
    it[2].opts = &chunk30;
    it[3].name = "labels";
    for (i = 0; i < 4; i++)
        it[i].tensor = t[i];
    it[4].name = "note";
    it[4].str = "a std::string blob";
    it[4].str_len = strlen(it[4].str);
    if (ct_db_save_items("minidb", e->good, NULL, 0, it, 5, NULL, &st) != CT_OK)
        return -1;
    for (i = 0; i < 4; i++)
        ct_tensor_free(t[i]);
    e->bytes = stu_read(e->good, &e->len);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct_engine_free(e->eng);
    free(e->bytes);
    free(e->good);
    free(e->bad);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

/* load_all of path into a fresh workspace; returns the code. */
static int load(struct env *e, const char *path, ct_status_t *st)
{
    ct_workspace_t *ws;
    Caffe2__OperatorDef *op = tu_op("Load", "", "");
    int rc;

    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    tu_arg_i(op, "load_all", 1);
    assert_int_equal(ct_workspace_new(e->eng, NULL, &ws, NULL), CT_OK);
    max_alloc = 0;
    rc = tu_run_op(ws, op, st);
    tu_op_free(op);
    ct_workspace_free(ws);
    return rc;
}

static void test_corrupt_reference_file_loads(void **state)
{
    struct env *e = *state;
    ct_status_t st;

    assert_true(e->len < 64 * 1024);
    if (load(e, e->good, &st) != CT_OK)
        fail_msg("%s", st.msg);
}

static void test_corrupt_truncation_at_every_offset_fails(void **state)
{
    struct env *e = *state;
    size_t cut, worst = 0;
    ct_status_t st;

    for (cut = 0; cut < e->len; cut++) {
        int rc;
        stu_write(e->bad, e->bytes, cut);
        rc = load(e, e->bad, &st);
        if (rc != CT_ECORRUPT)
            fail_msg("cut at %zu of %zu: %s %s", cut, e->len, ct_err_name(rc),
                     rc ? st.msg : "(loaded)");
        if (max_alloc > worst)
            worst = max_alloc;
        assert_true(max_alloc <= e->len + ALLOWANCE);
        assert_int_equal(ct_db_verify("minidb", e->bad, NULL, &st),
                         CT_ECORRUPT);
    }
    print_message("truncation: %zu cuts of a %zu-byte file, largest "
                  "allocation %zu bytes\n",
                  e->len, e->len, worst);
}

static void test_corrupt_every_bit_flip_fails(void **state)
{
    struct env *e = *state;
    unsigned char *buf = malloc(e->len);
    size_t i, worst = 0, n_notsup = 0;
    ct_status_t st;
    int bit;

    memcpy(buf, e->bytes, e->len);
    for (i = 0; i < e->len; i++) {
        for (bit = 0; bit < 8; bit++) {
            int rc;
            buf[i] ^= (unsigned char)(1u << bit);
            stu_overwrite(e->bad, buf, e->len);
            rc = load(e, e->bad, &st);
            buf[i] ^= (unsigned char)(1u << bit);
            if (rc == CT_ENOTSUP && strstr(st.msg, "newer") != NULL) {
                n_notsup++;
            } else if (rc != CT_ECORRUPT) {
                fail_msg("bit %d of byte %zu (of %zu): %s %s", bit, i, e->len,
                         ct_err_name(rc), rc ? st.msg : "(silently loaded)");
            }
            if (max_alloc > worst)
                worst = max_alloc;
            if (max_alloc > e->len + ALLOWANCE)
                fail_msg("bit %d of byte %zu: allocation of %zu bytes", bit, i,
                         max_alloc);
        }
    }
    /* Only the header's version digit can read as a future version. */
    assert_true(n_notsup <= 8);
    print_message("bit flips: %zu loads, all refused; largest allocation "
                  "%zu bytes\n",
                  e->len * 8, worst);
    free(buf);
}

/* A foreign (no manifest) record claiming 2^62 floats with 4 bytes of
 * data, and lengths that claim more than the file (B4, B8). */
static void test_corrupt_huge_claims_fail_before_allocating(void **state)
{
    static const unsigned char tp[] = {
        0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x10, 0x01,
        0x1a, 0x04, 0,    0,    0,    0,    0x5a, 0x04, 0x08, 0x00, 0x10, 0x01};
    struct env *e = *state;
    unsigned char rec[128];
    uint32_t klen = 4, vlen;
    size_t n;
    ct_status_t st;

    rec[16] = 0x0a;
    rec[17] = 1;
    rec[18] = 'h';
    memcpy(rec + 19, "\x12\x06Tensor\x1a", 9);
    rec[28] = sizeof(tp);
    memcpy(rec + 29, tp, sizeof(tp));
    vlen = (uint32_t)(29 - 16 + sizeof(tp));
    memcpy(rec, &klen, 4);
    memcpy(rec + 4, &vlen, 4);
    memcpy(rec + 8, "h#%0", 4);
    memmove(rec + 12, rec + 16, vlen);
    n = 12 + vlen;
    stu_write(e->bad, rec, n);
    assert_int_equal(load(e, e->bad, &st), CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "cannot fit in a db of"));
    assert_true(max_alloc <= n + ALLOWANCE);
    /* value length INT32_MAX in a 20-byte file */
    vlen = INT32_MAX;
    memcpy(rec + 4, &vlen, 4);
    stu_write(e->bad, rec, 20);
    assert_int_equal(load(e, e->bad, &st), CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "runs past the end"));
    assert_true(max_alloc <= 20 + ALLOWANCE);
}

int main(void)
{
    static const struct ct_allocator hooks = {h_malloc,  h_realloc,      h_free,
                                              h_aligned, h_aligned_free, NULL};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_reference_file_loads),
        cmocka_unit_test(test_corrupt_truncation_at_every_offset_fails),
        cmocka_unit_test(test_corrupt_every_bit_flip_fails),
        cmocka_unit_test(test_corrupt_huge_claims_fail_before_allocating),
    };

    ct_set_allocator(&hooks); /* before any other library call */
    return cmocka_run_group_tests_name("storage.corrupt", tests, setup,
                                       teardown);
}
