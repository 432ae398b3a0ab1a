/* Tests for engine/engine.c: configuration, defaults, CT_TOPOLOGY and the
 * memory budget counters (white-box through engine_impl.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cortado/engine.h"
#include "engine/engine_impl.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* Every test starts with CT_TOPOLOGY unset so the host environment
 * cannot leak into the defaults being checked. */
static int setup_env(void **state)
{
    (void)state;
    return unsetenv("CT_TOPOLOGY");
}

/* ---- helpers ---- */

static uint64_t expected_default_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0)
        return ((uint64_t)8 << 30) / 4 * 3;
    return (uint64_t)pages * (uint64_t)page / 4 * 3;
}

/* ---- tests ---- */

static void test_engine_config_init_fills_defaults(void **state)
{
    struct ct_engine_config cfg;

    (void)state;
    memset(&cfg, 0x5a, sizeof(cfg));
    ct_engine_config_init(&cfg);
    assert_true(cfg.mem_budget_bytes == expected_default_budget());
    assert_int_equal(cfg.n_threads, 0);
    assert_null(cfg.topology);
    assert_int_equal(cfg.intra_op, CT_INTRA_OP_POOL);
    assert_int_equal(cfg.verbose, 0);
}

static void test_engine_new_null_config_resolves_defaults(void **state)
{
    const struct ct_engine_config *c;
    ct_engine_t *eng;
    ct_status_t st;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    (void)state;
    assert_int_equal(ct_engine_new(NULL, &eng, &st), CT_OK);
    c = ct_engine_get_config(eng);
    assert_int_equal(c->n_threads, ncpu > 0 ? (int)ncpu : 1);
    assert_true(c->mem_budget_bytes == expected_default_budget());
    assert_true(ct_engine_mem_budget(eng) == expected_default_budget());
    assert_null(c->topology);
    assert_int_equal(c->intra_op, CT_INTRA_OP_POOL);
    assert_true(ct_engine_mem_in_use(eng) == 0);
    assert_true(ct_engine_mem_peak(eng) == 0);
    ct_engine_free(eng);
}

static void test_engine_new_zero_budget_uses_default(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    assert_true(ct_engine_mem_budget(eng) == expected_default_budget());
    ct_engine_free(eng);
}

static void test_engine_new_explicit_fields_are_kept(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1 << 20;
    cfg.n_threads = 3;
    cfg.intra_op = CT_INTRA_OP_SERIAL;
    cfg.verbose = 1;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    assert_true(ct_engine_mem_budget(eng) == 1 << 20);
    assert_int_equal(ct_engine_get_config(eng)->n_threads, 3);
    assert_int_equal(ct_engine_get_config(eng)->intra_op, CT_INTRA_OP_SERIAL);
    assert_int_equal(ct_engine_get_config(eng)->verbose, 1);
    ct_engine_free(eng);
}

static void test_engine_new_negative_threads_returns_einval(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng = (ct_engine_t *)&cfg;
    ct_status_t st;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.n_threads = -1;
    rc = ct_engine_new(&cfg, &eng, &st);
    tu_assert_status(&st, rc, CT_EINVAL,
                     "engine: n_threads -1 out of range [0, 4096]");
    assert_null(eng);
}

static void test_engine_new_too_many_threads_returns_einval(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.n_threads = 4097;
    rc = ct_engine_new(&cfg, &eng, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "n_threads 4097 out of range");
    cfg.n_threads = 4096;
    assert_int_equal(ct_engine_new(&cfg, &eng, &st), CT_OK);
    ct_engine_free(eng);
}

static void test_engine_new_bad_intra_op_returns_einval(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.intra_op = CT_INTRA_OP_COUNT;
    rc = ct_engine_new(&cfg, &eng, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "engine: unknown intra_op mode 3");
    cfg.intra_op = -1;
    rc = ct_engine_new(&cfg, &eng, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "unknown intra_op mode -1");
}

static void test_engine_new_null_status_still_returns_code(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.n_threads = -5;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_EINVAL);
}

static void test_engine_new_topology_env_is_picked_up(void **state)
{
    const char *topo = "numa:2 core:4 pu:1";
    ct_engine_t *eng;

    (void)state;
    assert_int_equal(setenv("CT_TOPOLOGY", topo, 1), 0);
    assert_int_equal(ct_engine_new(NULL, &eng, NULL), CT_OK);
    assert_non_null(ct_engine_get_config(eng)->topology);
    assert_string_equal(ct_engine_get_config(eng)->topology, topo);
    /* The engine keeps its own copy: changing the environment later must
     * not change a running engine. */
    assert_ptr_not_equal(ct_engine_get_config(eng)->topology,
                         getenv("CT_TOPOLOGY"));
    assert_int_equal(setenv("CT_TOPOLOGY", "pu:1", 1), 0);
    assert_string_equal(ct_engine_get_config(eng)->topology, topo);
    ct_engine_free(eng);
    unsetenv("CT_TOPOLOGY");
}

static void test_engine_new_topology_env_used_with_config(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;

    (void)state;
    assert_int_equal(setenv("CT_TOPOLOGY", "pu:2", 1), 0);
    ct_engine_config_init(&cfg);
    cfg.n_threads = 2;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    assert_string_equal(ct_engine_get_config(eng)->topology, "pu:2");
    ct_engine_free(eng);
    unsetenv("CT_TOPOLOGY");
}

static void test_engine_new_config_topology_overrides_env(void **state)
{
    struct ct_engine_config cfg;
    char topo[32];
    ct_engine_t *eng;

    (void)state;
    assert_int_equal(setenv("CT_TOPOLOGY", "pu:2", 1), 0);
    ct_engine_config_init(&cfg);
    strcpy(topo, "core:8 pu:2");
    cfg.topology = topo;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    strcpy(topo, "clobbered");
    assert_string_equal(ct_engine_get_config(eng)->topology, "core:8 pu:2");
    ct_engine_free(eng);
    unsetenv("CT_TOPOLOGY");
}

static void test_engine_new_alloc_failure_returns_enomem(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;
    long k, live;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.topology = "pu:4";
    for (k = 1;; k++) {
        live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = ct_engine_new(&cfg, &eng, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, "engine: out of memory");
        assert_null(eng);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 2); /* the engine and the topology copy */
    ct_engine_free(eng);
}

static void test_engine_free_null_is_noop(void **state)
{
    (void)state;
    ct_engine_free(NULL);
}

static void test_engine_alloc_charges_and_releases_budget(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    void *a, *b;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1000;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    assert_int_equal(ct__engine_alloc(eng, 600, "a", &a, NULL), CT_OK);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal(ct__engine_alloc(eng, 400, "b", &b, NULL), CT_OK);
    assert_true(ct_engine_mem_in_use(eng) == 1000);
    ct__engine_free(eng, a, 600);
    assert_true(ct_engine_mem_in_use(eng) == 400);
    assert_true(ct_engine_mem_peak(eng) == 1000);
    ct__engine_free(eng, b, 400);
    ct__engine_free(eng, NULL, 0);
    assert_true(ct_engine_mem_in_use(eng) == 0);
    assert_true(ct_engine_mem_peak(eng) == 1000);
    ct_engine_free(eng);
}

static void test_engine_alloc_over_budget_returns_enomem(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;
    void *a, *b = &cfg;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1000;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    assert_int_equal(ct__engine_alloc(eng, 999, "a", &a, NULL), CT_OK);
    rc = ct__engine_alloc(eng, 2, "output 0 \"Y\"", &b, &st);
    tu_assert_status(&st, rc, CT_ENOMEM,
                     "output 0 \"Y\": 2 bytes exceed the memory budget "
                     "(999 of 1000 bytes in use)");
    assert_null(b);
    assert_true(ct_engine_mem_in_use(eng) == 999);
    rc = ct__engine_alloc(eng, 5, NULL, &b, &st);
    tu_assert_status(&st, rc, CT_ENOMEM, "allocation: 5 bytes exceed");
    ct__engine_free(eng, a, 999);
    ct_engine_free(eng);
}

static void test_engine_alloc_malloc_failure_refunds_budget(void **state)
{
    struct ct_engine_config cfg;
    ct_engine_t *eng;
    ct_status_t st;
    void *a;
    int rc;

    (void)state;
    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 1000;
    assert_int_equal(ct_engine_new(&cfg, &eng, NULL), CT_OK);
    tu_fail_alloc_after(1);
    rc = ct__engine_alloc(eng, 64, "scratch", &a, &st);
    tu_fail_alloc_off();
    tu_assert_status(&st, rc, CT_ENOMEM, "scratch: malloc of 64 bytes failed");
    assert_true(ct_engine_mem_in_use(eng) == 0);
    assert_true(ct_engine_mem_peak(eng) == 0);
    ct_engine_free(eng);
}

static void test_version_string_matches_macros(void **state)
{
    char want[32];

    (void)state;
    snprintf(want, sizeof(want), "%d.%d.%d", CT_VERSION_MAJOR, CT_VERSION_MINOR,
             CT_VERSION_PATCH);
    assert_string_equal(ct_version_string(), want);
}

static void test_free_null_is_noop(void **state)
{
    (void)state;
    ct_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_engine_config_init_fills_defaults,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_null_config_resolves_defaults,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_zero_budget_uses_default,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_explicit_fields_are_kept,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_negative_threads_returns_einval,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_too_many_threads_returns_einval,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_bad_intra_op_returns_einval,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_null_status_still_returns_code,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_topology_env_is_picked_up,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_topology_env_used_with_config,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_config_topology_overrides_env,
                               setup_env),
        cmocka_unit_test_setup(test_engine_new_alloc_failure_returns_enomem,
                               setup_env),
        cmocka_unit_test(test_engine_free_null_is_noop),
        cmocka_unit_test(test_engine_alloc_charges_and_releases_budget),
        cmocka_unit_test(test_engine_alloc_over_budget_returns_enomem),
        cmocka_unit_test(test_engine_alloc_malloc_failure_refunds_budget),
        cmocka_unit_test(test_version_string_matches_macros),
        cmocka_unit_test(test_free_null_is_noop),
    };

    /* Install the counting allocator before anything is allocated, so
     * every block is both counted and released through the hooks. */
    (void)tu_alloc_live();
    return cmocka_run_group_tests_name("engine.engine", tests, NULL, NULL);
}
