/* Tests for engine/strmap.c: the string -> pointer map used by the
 * workspace, the op registry and the stat registry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/strmap.h"
#include "test_util.h"

/* ---- fixtures ---- */

static int setup_map(void **state)
{
    struct ct__strmap *m = malloc(sizeof(*m));

    if (m == NULL)
        return -1;
    ct__strmap_init(m);
    *state = m;
    return 0;
}

static int teardown_map(void **state)
{
    ct__strmap_destroy(*state, NULL);
    free(*state);
    return 0;
}

/* ---- helpers ---- */

#define N_KEYS 5000

static void key_of(int i, char *buf, size_t size)
{
    snprintf(buf, size, "blob_%d", i);
}

/* Value stored for key i: a distinct non-NULL pointer. */
static void *val_of(int i)
{
    return (void *)(uintptr_t)(i + 1);
}

static int n_freed;

static void count_free(void *val)
{
    (void)val;
    n_freed++;
}

/* xorshift: a deterministic order for the removal tests. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- tests ---- */

static void test_strmap_empty_finds_nothing(void **state)
{
    struct ct__strmap *m = *state;
    size_t it = 0;

    assert_int_equal(ct__strmap_size(m), 0);
    assert_null(ct__strmap_get(m, "x"));
    assert_false(ct__strmap_find(m, "x", NULL));
    assert_null(ct__strmap_key(m, "x"));
    assert_false(ct__strmap_remove(m, "x", NULL));
    assert_false(ct__strmap_next(m, &it, NULL, NULL));
}

static void test_strmap_insert_copies_key(void **state)
{
    struct ct__strmap *m = *state;
    char key[8] = "abc";
    void *v = NULL;

    assert_int_equal(ct__strmap_insert(m, key, val_of(1)), CT_OK);
    strcpy(key, "zzz");
    assert_ptr_equal(ct__strmap_get(m, "abc"), val_of(1));
    assert_true(ct__strmap_find(m, "abc", &v));
    assert_ptr_equal(v, val_of(1));
    assert_null(ct__strmap_get(m, "zzz"));
    assert_string_equal(ct__strmap_key(m, "abc"), "abc");
    assert_ptr_not_equal(ct__strmap_key(m, "abc"), key);
}

static void test_strmap_insert_duplicate_returns_eexist(void **state)
{
    struct ct__strmap *m = *state;

    assert_int_equal(ct__strmap_insert(m, "a", val_of(1)), CT_OK);
    assert_int_equal(ct__strmap_insert(m, "a", val_of(2)), CT_EEXIST);
    assert_ptr_equal(ct__strmap_get(m, "a"), val_of(1));
    assert_int_equal(ct__strmap_size(m), 1);
}

static void test_strmap_null_value_is_found(void **state)
{
    struct ct__strmap *m = *state;
    void *v = val_of(3);

    assert_int_equal(ct__strmap_insert(m, "", NULL), CT_OK);
    assert_true(ct__strmap_find(m, "", &v));
    assert_null(v);
    assert_null(ct__strmap_get(m, ""));
}

static void test_strmap_many_keys_grow_and_stay_reachable(void **state)
{
    struct ct__strmap *m = *state;
    char key[32];
    int i;

    for (i = 0; i < N_KEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    assert_int_equal(ct__strmap_size(m), N_KEYS);
    /* Power-of-two table, load factor at most 3/4. */
    assert_int_equal(m->cap & (m->cap - 1), 0);
    assert_true(m->n <= m->cap / 4 * 3);
    for (i = 0; i < N_KEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_ptr_equal(ct__strmap_get(m, key), val_of(i));
    }
    key_of(N_KEYS, key, sizeof(key));
    assert_null(ct__strmap_get(m, key));
}

static void test_strmap_random_removals_keep_others_reachable(void **state)
{
    struct ct__strmap *m = *state;
    static bool present[N_KEYS];
    uint32_t seed = 12345;
    char key[32];
    int i, round;

    for (i = 0; i < N_KEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
        present[i] = true;
    }
    /* Remove and re-insert at random, checking the whole map against the
     * reference after each round; backward-shift deletion must never
     * orphan an entry of a probe run. */
    for (round = 0; round < 8; round++) {
        for (i = 0; i < N_KEYS / 2; i++) {
            int k = (int)(next_rand(&seed) % N_KEYS);
            void *v = NULL;
            key_of(k, key, sizeof(key));
            if (present[k]) {
                assert_true(ct__strmap_remove(m, key, &v));
                assert_ptr_equal(v, val_of(k));
                present[k] = false;
            } else {
                assert_false(ct__strmap_remove(m, key, NULL));
                assert_int_equal(ct__strmap_insert(m, key, val_of(k)), CT_OK);
                present[k] = true;
            }
        }
        for (i = 0; i < N_KEYS; i++) {
            key_of(i, key, sizeof(key));
            assert_int_equal(ct__strmap_find(m, key, NULL), present[i]);
        }
    }
}

static void test_strmap_next_visits_every_entry_once(void **state)
{
    struct ct__strmap *m = *state;
    static int seen[100];
    const char *k;
    void *v;
    size_t it = 0, n = 0;
    char key[32];
    int i;

    for (i = 0; i < 100; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    while (ct__strmap_next(m, &it, &k, &v)) {
        int idx = (int)((uintptr_t)v - 1);
        key_of(idx, key, sizeof(key));
        assert_string_equal(k, key);
        seen[idx]++;
        n++;
    }
    assert_int_equal(n, 100);
    for (i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    /* A finished walk stays finished. */
    assert_false(ct__strmap_next(m, &it, NULL, NULL));
}

static void test_strmap_put_replaces_without_allocating(void **state)
{
    struct ct__strmap *m = *state;
    void *old = val_of(9);
    long live;
    int rc;

    assert_int_equal(ct__strmap_put(m, "k", val_of(1), &old), CT_OK);
    assert_null(old);
    live = tu_alloc_live();
    tu_fail_alloc_after(1);
    rc = ct__strmap_put(m, "k", val_of(2), &old);
    tu_fail_alloc_off();
    assert_int_equal(rc, CT_OK);
    assert_ptr_equal(old, val_of(1));
    assert_ptr_equal(ct__strmap_get(m, "k"), val_of(2));
    assert_int_equal(tu_alloc_live(), live);
    assert_int_equal(ct__strmap_size(m), 1);
}

static void test_strmap_rename_moves_value(void **state)
{
    struct ct__strmap *m = *state;

    assert_int_equal(ct__strmap_insert(m, "old", val_of(1)), CT_OK);
    assert_int_equal(ct__strmap_insert(m, "other", val_of(2)), CT_OK);
    assert_int_equal(ct__strmap_rename(m, "old", "new"), CT_OK);
    assert_null(ct__strmap_get(m, "old"));
    assert_ptr_equal(ct__strmap_get(m, "new"), val_of(1));
    assert_ptr_equal(ct__strmap_get(m, "other"), val_of(2));
    assert_int_equal(ct__strmap_size(m), 2);
}

static void test_strmap_rename_errors_leave_map_unchanged(void **state)
{
    struct ct__strmap *m = *state;
    int rc;

    assert_int_equal(ct__strmap_insert(m, "a", val_of(1)), CT_OK);
    assert_int_equal(ct__strmap_insert(m, "b", val_of(2)), CT_OK);
    assert_int_equal(ct__strmap_rename(m, "zz", "c"), CT_ENOTFOUND);
    assert_int_equal(ct__strmap_rename(m, "a", "b"), CT_EEXIST);
    assert_int_equal(ct__strmap_rename(m, "a", "a"), CT_EEXIST);
    tu_fail_alloc_after(1);
    rc = ct__strmap_rename(m, "a", "c");
    tu_fail_alloc_off();
    assert_int_equal(rc, CT_ENOMEM);
    assert_ptr_equal(ct__strmap_get(m, "a"), val_of(1));
    assert_ptr_equal(ct__strmap_get(m, "b"), val_of(2));
    assert_null(ct__strmap_get(m, "c"));
    assert_int_equal(ct__strmap_size(m), 2);
}

static void test_strmap_rename_on_full_table_does_not_grow(void **state)
{
    struct ct__strmap *m = *state;
    char key[32];
    size_t cap;
    int i;

    /* Fill to the load limit: 6 of 8 slots. */
    for (i = 0; i < 6; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    cap = m->cap;
    assert_int_equal(cap, 8);
    assert_int_equal(ct__strmap_rename(m, "blob_0", "renamed"), CT_OK);
    assert_int_equal(m->cap, cap);
    assert_ptr_equal(ct__strmap_get(m, "renamed"), val_of(0));
}

static void test_strmap_insert_alloc_failure_leaves_map_unchanged(void **state)
{
    struct ct__strmap *m = *state;
    char key[32];
    long k, live;
    int i, rc;

    for (i = 0; i < 6; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    /* The 7th insert needs both a table growth and a key copy. */
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct__strmap_insert(m, "seventh", val_of(7));
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        assert_int_equal(rc, CT_ENOMEM);
        assert_int_equal(ct__strmap_size(m), 6);
        assert_null(ct__strmap_get(m, "seventh"));
        assert_ptr_equal(ct__strmap_get(m, "blob_5"), val_of(5));
        /* A grown table is kept; anything else is released. */
        assert_true(tu_alloc_live() - live <= 1);
    }
    assert_int_equal(k, 3); /* the table growth, then the key copy */
    assert_ptr_equal(ct__strmap_get(m, "seventh"), val_of(7));
}

static void test_strmap_reserve_preallocates_table(void **state)
{
    struct ct__strmap *m = *state;
    char key[32];
    size_t cap;
    int i;

    assert_int_equal(ct__strmap_reserve(m, 100), CT_OK);
    cap = m->cap;
    assert_true(cap / 4 * 3 >= 100);
    for (i = 0; i < 100; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    assert_int_equal(m->cap, cap);
    assert_int_equal(ct__strmap_reserve(m, 10), CT_OK);
    assert_int_equal(m->cap, cap);
}

static void test_strmap_reserve_absurd_count_returns_enomem(void **state)
{
    struct ct__strmap *m = *state;

    assert_int_equal(ct__strmap_reserve(m, SIZE_MAX / 2), CT_ENOMEM);
    assert_int_equal(m->cap, 0);
}

static void test_strmap_destroy_calls_free_cb_and_allows_reuse(void **state)
{
    struct ct__strmap *m = *state;
    long live = tu_alloc_live();
    char key[32];
    int i;

    for (i = 0; i < 20; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(ct__strmap_insert(m, key, val_of(i)), CT_OK);
    }
    n_freed = 0;
    ct__strmap_destroy(m, count_free);
    assert_int_equal(n_freed, 20);
    assert_int_equal(ct__strmap_size(m), 0);
    assert_int_equal(tu_alloc_live(), live);
    assert_int_equal(ct__strmap_insert(m, "again", val_of(1)), CT_OK);
    assert_ptr_equal(ct__strmap_get(m, "again"), val_of(1));
}

static void test_strmap_remove_frees_key(void **state)
{
    struct ct__strmap *m = *state;
    long live;

    assert_int_equal(ct__strmap_insert(m, "keep", val_of(1)), CT_OK);
    live = tu_alloc_live();
    assert_int_equal(ct__strmap_insert(m, "gone", val_of(2)), CT_OK);
    assert_true(ct__strmap_remove(m, "gone", NULL));
    assert_int_equal(tu_alloc_live(), live);
}

static void test_strmap_hash_is_deterministic_and_spreads(void **state)
{
    (void)state;
    assert_true(ct__strmap_hash("conv1_w") == ct__strmap_hash("conv1_w"));
    assert_true(ct__strmap_hash("conv1_w") != ct__strmap_hash("conv1_b"));
    /* Keys differing in their last byte land in different buckets of a
     * small table (the low bits depend on every byte). */
    assert_true((ct__strmap_hash("a0") & 7) != (ct__strmap_hash("a1") & 7) ||
                (ct__strmap_hash("a1") & 7) != (ct__strmap_hash("a2") & 7));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_map, teardown_map)
    const struct CMUnitTest tests[] = {
        T(test_strmap_empty_finds_nothing),
        T(test_strmap_insert_copies_key),
        T(test_strmap_insert_duplicate_returns_eexist),
        T(test_strmap_null_value_is_found),
        T(test_strmap_many_keys_grow_and_stay_reachable),
        T(test_strmap_random_removals_keep_others_reachable),
        T(test_strmap_next_visits_every_entry_once),
        T(test_strmap_put_replaces_without_allocating),
        T(test_strmap_rename_moves_value),
        T(test_strmap_rename_errors_leave_map_unchanged),
        T(test_strmap_rename_on_full_table_does_not_grow),
        T(test_strmap_insert_alloc_failure_leaves_map_unchanged),
        T(test_strmap_reserve_preallocates_table),
        T(test_strmap_reserve_absurd_count_returns_enomem),
        T(test_strmap_destroy_calls_free_cb_and_allows_reuse),
        T(test_strmap_remove_frees_key),
        T(test_strmap_hash_is_deterministic_and_spreads),
    };
#undef T

    (void)tu_alloc_live(); /* count every block from the start */
    return cmocka_run_group_tests_name("engine.strmap", tests, NULL, NULL);
}
