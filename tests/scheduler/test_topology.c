/* Tests of scheduler/topology.c: synthetic and real discovery, layouts,
 * the printer, and real binding on a fake two-node machine. */
#define _GNU_SOURCE /* sched_getcpu, sched_getaffinity; before any include */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "scheduler/topology.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sync.h"

#define TWO_BY_FOUR "pack:2 numa:1 core:4 pu:1"

/* ---- fixtures ---- */

static int topo_setup_two_by_four(void **state)
{
    struct ct__topology *topo = NULL;

    if (ct__topology_new(TWO_BY_FOUR, 0, &topo, NULL) != CT_OK)
        return -1;
    *state = topo;
    return 0;
}

static int topo_teardown(void **state)
{
    ct__topology_free(*state);
    return 0;
}

/* ---- helpers ---- */

static int first_cpu(hwloc_const_cpuset_t set)
{
    return hwloc_bitmap_first(set);
}

static int n_cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

static bool cpu_allowed(int cpu)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(cpu, &set);
}

/* ---- tests ---- */

static void
test_topology_new_synthetic_gives_two_nodes_of_four_cores(void **state)
{
    struct ct__topology *topo = *state;

    assert_int_equal(topo->n_nodes, 2);
    assert_int_equal(topo->n_numa, 2);
    assert_int_equal(topo->n_packages, 2);
    assert_int_equal(topo->n_cores, 8);
    assert_int_equal(topo->n_pus, 8);
    assert_false(topo->is_thissystem);
    assert_false(topo->can_bind);
    assert_int_equal(topo->nodes[0].n_cores, 4);
    assert_int_equal(topo->nodes[1].n_cores, 4);
    assert_int_equal(hwloc_bitmap_weight(topo->nodes[0].cpuset), 4);
    assert_int_equal(first_cpu(topo->nodes[1].cpuset), 4);
    assert_string_equal(topo->synthetic, TWO_BY_FOUR);
}

static void test_topology_layout_three_threads_gives_two_and_one(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = NULL;

    assert_int_equal(ct__topology_layout(topo, 3, 0, &l, NULL), CT_OK);
    assert_int_equal(l->n_threads, 3);
    assert_int_equal(l->n_threads_per_node[0], 2);
    assert_int_equal(l->n_threads_per_node[1], 1);
    assert_int_equal(l->threads[0].node, 0);
    assert_int_equal(l->threads[1].node, 0);
    assert_int_equal(l->threads[2].node, 1);
    /* One core each: cores 0, 1 of node 0, core 4 (first of node 1). */
    assert_int_equal(hwloc_bitmap_weight(l->threads[1].cpuset), 1);
    assert_int_equal(first_cpu(l->threads[0].cpuset), 0);
    assert_int_equal(first_cpu(l->threads[1].cpuset), 1);
    assert_int_equal(first_cpu(l->threads[2].cpuset), 4);
    /* Synthetic, not this system: nothing is bound. */
    assert_int_equal(l->n_unbindable, 3);
    ct__layout_free(l);
}

static void test_topology_layout_eight_threads_fills_every_core(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = NULL;
    int i;

    assert_int_equal(ct__topology_layout(topo, 8, 0, &l, NULL), CT_OK);
    assert_int_equal(l->n_threads_per_node[0], 4);
    assert_int_equal(l->n_threads_per_node[1], 4);
    for (i = 0; i < 8; i++) {
        assert_int_equal(l->threads[i].node, i / 4);
        assert_int_equal(first_cpu(l->threads[i].cpuset), i);
        assert_int_equal(l->threads[i].core, i);
    }
    ct__layout_free(l);
}

static void test_topology_layout_oversubscribed_wraps_cores(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = NULL;

    assert_int_equal(ct__topology_layout(topo, 10, 0, &l, NULL), CT_OK);
    assert_int_equal(l->n_threads_per_node[0], 5);
    assert_int_equal(l->n_threads_per_node[1], 5);
    assert_int_equal(first_cpu(l->threads[4].cpuset), 0); /* wrapped */
    assert_int_equal(first_cpu(l->threads[9].cpuset), 4);
    ct__layout_free(l);
}

static void test_topology_layout_node_cpuset_binds_whole_node(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = NULL;

    assert_int_equal(
        ct__topology_layout(topo, 3, CT__LAYOUT_NODE_CPUSET, &l, NULL), CT_OK);
    assert_true(
        hwloc_bitmap_isequal(l->threads[1].cpuset, topo->nodes[0].cpuset));
    assert_true(
        hwloc_bitmap_isequal(l->threads[2].cpuset, topo->nodes[1].cpuset));
    ct__layout_free(l);
}

static void test_topology_layout_zero_threads_returns_einval(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = (void *)1;
    ct_status_t st;

    ct_status_clear(&st);
    assert_int_equal(ct__topology_layout(topo, 0, 0, &l, &st), CT_EINVAL);
    assert_null(l);
    assert_non_null(strstr(st.msg, "n_threads 0 out of range"));
}

static void test_topology_new_invalid_synthetic_returns_einval(void **state)
{
    struct ct__topology *topo = (void *)1;
    ct_status_t st;

    (void)state;
    ct_status_clear(&st);
    assert_int_equal(ct__topology_new("pack:2 numa:banana", 0, &topo, &st),
                     CT_EINVAL);
    assert_null(topo);
    assert_int_equal(st.code, CT_EINVAL);
    assert_non_null(strstr(st.msg, "invalid hwloc synthetic description "
                                   "\"pack:2 numa:banana\""));
}

static void test_topology_new_real_machine_finds_cores(void **state)
{
    struct ct__topology *topo = NULL;
    int i, n_cores = 0;

    (void)state;
    assert_int_equal(ct__topology_new(NULL, 0, &topo, NULL), CT_OK);
    assert_null(topo->synthetic);
    assert_true(topo->is_thissystem);
    assert_true(topo->n_nodes >= 1);
    assert_true(topo->n_cores >= 1);
    assert_true(topo->n_pus >= topo->n_cores);
    for (i = 0; i < topo->n_nodes; i++)
        n_cores += topo->nodes[i].n_cores;
    assert_int_equal(n_cores, topo->n_cores);
    ct__topology_free(topo);
}

static void test_topology_new_null_reads_ct_topology_env(void **state)
{
    struct ct__topology *topo = NULL;

    (void)state;
    setenv("CT_TOPOLOGY", "pack:3 numa:1 core:2 pu:2", 1);
    assert_int_equal(ct__topology_new(NULL, 0, &topo, NULL), CT_OK);
    unsetenv("CT_TOPOLOGY");
    assert_int_equal(topo->n_nodes, 3);
    assert_int_equal(topo->n_cores, 6);
    assert_int_equal(topo->n_pus, 12);
    ct__topology_free(topo);
}

static void test_topology_env_hwloc_thissystem_enables_binding(void **state)
{
    struct ct__topology *topo = NULL;

    (void)state;
    setenv("CT_TOPOLOGY", "pack:2 numa:1 core:1 pu:1", 1);
    setenv("HWLOC_THISSYSTEM", "1", 1);
    assert_int_equal(ct__topology_new(NULL, 0, &topo, NULL), CT_OK);
    unsetenv("HWLOC_THISSYSTEM");
    unsetenv("CT_TOPOLOGY");
    assert_int_equal(topo->n_nodes, 2);
    assert_true(topo->is_thissystem);
    assert_int_equal(topo->can_bind,
                     hwloc_bitmap_weight(topo->real_cpuset) > 0);
    ct__topology_free(topo);
}

static void test_topology_print_lists_nodes_and_threads(void **state)
{
    struct ct__topology *topo = *state;
    struct ct__layout *l = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(ct__topology_layout(topo, 3, 0, &l, NULL), CT_OK);
    assert_int_equal(ct__topology_print(topo, l, f), CT_OK);
    fclose(f);
    assert_non_null(strstr(buf, "synthetic \"" TWO_BY_FOUR "\""));
    assert_non_null(strstr(buf, "machine: 2 packages, 2 NUMA nodes, 8 "
                                "cores, 8 PUs"));
    assert_non_null(strstr(buf, "node 1: os 1, cpus 4-7, 4 cores"));
    assert_non_null(strstr(buf, "layout: 3 threads, bound to cores"));
    assert_non_null(strstr(buf, "thread 2: core L#4, cpus 4 (not pinned)"));
    free(buf);
    ct__layout_free(l);
}

static void test_topology_thissystem_skips_cpus_missing_here(void **state)
{
    struct ct__topology *topo = NULL;
    struct ct__layout *l = NULL;
    int i, n_bindable = 0;

    (void)state;
    assert_int_equal(
        ct__topology_new(TWO_BY_FOUR, CT__TOPOLOGY_THISSYSTEM, &topo, NULL),
        CT_OK);
    assert_true(topo->is_thissystem);
    assert_int_equal(ct__topology_layout(topo, 8, 0, &l, NULL), CT_OK);
    for (i = 0; i < 8; i++) {
        assert_int_equal(l->threads[i].bindable, cpu_allowed(i));
        n_bindable += l->threads[i].bindable;
    }
    assert_int_equal(l->n_unbindable, 8 - n_bindable);
    if (!cpu_allowed(7))
        assert_int_equal(ct__topology_bind_thread(topo, l->threads[7].cpuset),
                         CT_ENOTSUP);
    ct__layout_free(l);
    ct__topology_free(topo);
}

struct bind_probe {
    struct ct__topology *topo;
    int rc;
    int cpu;
};

static void probe_main(void *arg)
{
    struct bind_probe *p = arg;
    p->rc = ct__topology_bind_thread(p->topo, p->topo->nodes[1].cpuset);
    p->cpu = sched_getcpu();
}

static void test_topology_thissystem_one_core_nodes_bind_for_real(void **state)
{
    struct ct__topology *topo = NULL;
    struct ct__thread thr;
    struct bind_probe p;

    (void)state;
    if (n_cpus_allowed() < 2 || !cpu_allowed(1))
        skip();
    assert_int_equal(ct__topology_new("pack:2 numa:1 core:1 pu:1",
                                      CT__TOPOLOGY_THISSYSTEM, &topo, NULL),
                     CT_OK);
    assert_int_equal(topo->n_nodes, 2);
    assert_true(topo->can_bind);
    p.topo = topo;
    p.rc = -100;
    p.cpu = -1;
    assert_int_equal(ct__thread_create(&thr, "probe", probe_main, &p), CT_OK);
    ct__thread_join(&thr);
    assert_int_equal(p.rc, CT_OK);
    assert_int_equal(p.cpu, 1);
    ct__topology_free(topo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_topology_new_synthetic_gives_two_nodes_of_four_cores,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test_setup_teardown(
            test_topology_layout_three_threads_gives_two_and_one,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test_setup_teardown(
            test_topology_layout_eight_threads_fills_every_core,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test_setup_teardown(
            test_topology_layout_oversubscribed_wraps_cores,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test_setup_teardown(
            test_topology_layout_node_cpuset_binds_whole_node,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test_setup_teardown(
            test_topology_layout_zero_threads_returns_einval,
            topo_setup_two_by_four, topo_teardown),
        cmocka_unit_test(test_topology_new_invalid_synthetic_returns_einval),
        cmocka_unit_test(test_topology_new_real_machine_finds_cores),
        cmocka_unit_test(test_topology_new_null_reads_ct_topology_env),
        cmocka_unit_test(test_topology_env_hwloc_thissystem_enables_binding),
        cmocka_unit_test_setup_teardown(
            test_topology_print_lists_nodes_and_threads, topo_setup_two_by_four,
            topo_teardown),
        cmocka_unit_test(test_topology_thissystem_skips_cpus_missing_here),
        cmocka_unit_test(test_topology_thissystem_one_core_nodes_bind_for_real),
    };
    return cmocka_run_group_tests_name("scheduler.topology", tests, NULL, NULL);
}
