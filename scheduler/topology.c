/* cortado: hwloc topology discovery and pool layouts (see topology.h).
 *
 * hwloc is used only here and at worker start-up (binding). Every hwloc
 * failure after loading is non-fatal for the engine: a worker that cannot
 * be bound runs unbound. Discovery of the real machine costs a few ms, so
 * an engine discovers once and shares the result read-only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "scheduler/topology.h"

static void nodes_free(struct ct__topo_node *nodes, int n)
{
    int i;

    if (nodes == NULL)
        return;
    for (i = 0; i < n; i++) {
        hwloc_bitmap_free(nodes[i].cpuset);
        hwloc_bitmap_free(nodes[i].nodeset);
        ct__free(nodes[i].cores);
    }
    ct__free(nodes);
}

/* The NUMA node whose cpuset contains `set` and is the smallest such one,
 * or NULL. */
static hwloc_obj_t local_numa(hwloc_topology_t hw, hwloc_const_cpuset_t set)
{
    hwloc_obj_t best = NULL, numa = NULL;
    int best_weight = 0;

    while ((numa = hwloc_get_next_obj_by_type(hw, HWLOC_OBJ_NUMANODE, numa)) !=
           NULL) {
        int w;
        if (numa->cpuset == NULL || !hwloc_bitmap_isincluded(set, numa->cpuset))
            continue;
        w = hwloc_bitmap_weight(numa->cpuset);
        if (best == NULL || w < best_weight) {
            best = numa;
            best_weight = w;
        }
    }
    return best;
}

/* Fills topo->nodes from the loaded hwloc topology. */
static int discover_nodes(struct ct__topology *topo)
{
    hwloc_topology_t hw = topo->hw;
    hwloc_obj_t *numa_of_core = NULL;
    int *node_of_numa = NULL;
    int n_cores = topo->n_cores, i, rc = CT_ENOMEM;

    topo->nodes = NULL;
    topo->n_nodes = 0;
    numa_of_core =
        ct__calloc((size_t)(n_cores > 0 ? n_cores : 1), sizeof(*numa_of_core));
    node_of_numa = ct__calloc((size_t)(topo->n_numa > 0 ? topo->n_numa : 1),
                              sizeof(*node_of_numa));
    topo->nodes = ct__calloc((size_t)(topo->n_numa > 0 ? topo->n_numa : 1),
                             sizeof(*topo->nodes));
    if (numa_of_core == NULL || node_of_numa == NULL || topo->nodes == NULL)
        goto fail_alloc;
    for (i = 0; i < topo->n_numa; i++)
        node_of_numa[i] = -1;

    /* Assign each core to its local NUMA node, creating nodes in the order
     * of their first core (which is NUMA logical order in practice). */
    for (i = 0; i < n_cores; i++) {
        hwloc_obj_t core =
            hwloc_get_obj_by_type(hw, topo->core_type, (unsigned)i);
        hwloc_obj_t numa = core ? local_numa(hw, core->cpuset) : NULL;
        int ni;

        if (numa == NULL) /* no NUMA information: use the first one */
            numa = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, 0);
        if (numa == NULL || (int)numa->logical_index >= topo->n_numa) {
            rc = CT_EINTERNAL;
            goto fail_alloc;
        }
        numa_of_core[i] = numa;
        ni = node_of_numa[numa->logical_index];
        if (ni < 0) {
            struct ct__topo_node *nd = &topo->nodes[topo->n_nodes];
            ni = topo->n_nodes++;
            node_of_numa[numa->logical_index] = ni;
            nd->os_index = numa->os_index;
            nd->memory_bytes =
                numa->attr ? numa->attr->numanode.local_memory : 0;
            nd->cpuset = hwloc_bitmap_alloc();
            nd->nodeset = hwloc_bitmap_dup(numa->nodeset);
            nd->cores = ct__calloc((size_t)n_cores, sizeof(int));
            if (nd->cpuset == NULL || nd->nodeset == NULL || nd->cores == NULL)
                goto fail_alloc;
        }
        topo->nodes[ni].cores[topo->nodes[ni].n_cores++] = i;
        if (hwloc_bitmap_or(topo->nodes[ni].cpuset, topo->nodes[ni].cpuset,
                            core->cpuset) != 0)
            goto fail_alloc;
    }
    ct__free(numa_of_core);
    ct__free(node_of_numa);
    return CT_OK;

fail_alloc:
    nodes_free(topo->nodes, topo->n_nodes);
    topo->nodes = NULL;
    topo->n_nodes = 0;
    ct__free(numa_of_core);
    ct__free(node_of_numa);
    return rc;
}

int ct__topology_new(const char *synthetic, unsigned flags,
                     struct ct__topology **out, ct_status_t *st)
{
    struct ct__topology *topo;
    unsigned long hwflags = 0;
    int rc;

    *out = NULL;
    if (synthetic == NULL) {
        synthetic = getenv("CT_TOPOLOGY");
        if (synthetic != NULL && synthetic[0] == '\0')
            synthetic = NULL;
    }
    topo = ct__calloc(1, sizeof(*topo));
    if (topo == NULL)
        goto fail_topo;
    if (synthetic != NULL) {
        topo->synthetic = ct__strdup(synthetic);
        if (topo->synthetic == NULL)
            goto fail_strdup;
    }
    if (hwloc_topology_init(&topo->hw) != 0)
        goto fail_init;
    if (synthetic != NULL &&
        hwloc_topology_set_synthetic(topo->hw, synthetic) != 0) {
        rc = ct_status_setf(st, CT_EINVAL,
                            "topology: invalid hwloc synthetic description "
                            "\"%s\" (expected e.g. \"pack:2 numa:1 core:4 "
                            "pu:1\")",
                            synthetic);
        goto fail_load;
    }
    if (flags & CT__TOPOLOGY_THISSYSTEM)
        hwflags |= HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM;
    if (hwflags != 0 && hwloc_topology_set_flags(topo->hw, hwflags) != 0) {
        rc = ct_status_setf(st, CT_EINTERNAL,
                            "topology: hwloc_topology_set_flags: %s",
                            strerror(errno));
        goto fail_load;
    }
    if (hwloc_topology_load(topo->hw) != 0) {
        rc = ct_status_setf(
            st, CT_EINTERNAL, "topology: hwloc could not load %s%s%s: %s",
            synthetic ? "\"" : "the machine topology",
            synthetic ? synthetic : "", synthetic ? "\"" : "", strerror(errno));
        goto fail_load;
    }

    topo->is_thissystem = hwloc_topology_is_thissystem(topo->hw) != 0;
    topo->n_packages = hwloc_get_nbobjs_by_type(topo->hw, HWLOC_OBJ_PACKAGE);
    topo->n_numa = hwloc_get_nbobjs_by_type(topo->hw, HWLOC_OBJ_NUMANODE);
    topo->n_pus = hwloc_get_nbobjs_by_type(topo->hw, HWLOC_OBJ_PU);
    topo->core_type = HWLOC_OBJ_CORE;
    topo->n_cores = hwloc_get_nbobjs_by_type(topo->hw, HWLOC_OBJ_CORE);
    if (topo->n_cores <= 0) { /* e.g. "numa:2 pu:4": treat PUs as cores */
        topo->core_type = HWLOC_OBJ_PU;
        topo->n_cores = topo->n_pus;
    }
    if (topo->n_cores <= 0 || topo->n_numa < 0) {
        rc = ct_status_setf(st, CT_EINTERNAL, "topology: hwloc found no cores");
        goto fail_load;
    }
    if (topo->n_numa == 0)
        topo->n_numa = 1;

    topo->real_cpuset = hwloc_bitmap_alloc();
    if (topo->real_cpuset == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM, "topology: out of memory");
        goto fail_load;
    }
    if (topo->is_thissystem) {
        const struct hwloc_topology_support *sup =
            hwloc_topology_get_support(topo->hw);
        topo->can_bind = sup != NULL && sup->cpubind->set_thread_cpubind;
        /* The CPUs this process may use; on a synthetic topology asserted
         * as this system, hwloc asks the real OS here. */
        if (topo->can_bind &&
            hwloc_get_cpubind(topo->hw, topo->real_cpuset,
                              HWLOC_CPUBIND_PROCESS) != 0 &&
            hwloc_bitmap_copy(topo->real_cpuset,
                              hwloc_topology_get_allowed_cpuset(topo->hw)) != 0)
            topo->can_bind = false;
        if (hwloc_bitmap_iszero(topo->real_cpuset))
            topo->can_bind = false;
    }

    rc = discover_nodes(topo);
    if (rc != CT_OK) {
        ct_status_setf(st, rc, "topology: %s",
                       rc == CT_ENOMEM ? "out of memory"
                                       : "cores outside every NUMA node");
        goto fail_load;
    }
    *out = topo;
    return CT_OK;

fail_load:
    hwloc_bitmap_free(topo->real_cpuset);
    hwloc_topology_destroy(topo->hw);
    ct__free(topo->synthetic);
    ct__free(topo);
    return rc;
fail_init:
    ct__free(topo->synthetic);
fail_strdup:
    ct__free(topo);
fail_topo:
    return ct_status_setf(st, CT_ENOMEM, "topology: out of memory");
}

void ct__topology_free(struct ct__topology *topo)
{
    if (topo == NULL)
        return;
    nodes_free(topo->nodes, topo->n_nodes);
    hwloc_bitmap_free(topo->real_cpuset);
    hwloc_topology_destroy(topo->hw);
    ct__free(topo->synthetic);
    ct__free(topo);
}

int ct__topology_bind_thread(const struct ct__topology *topo,
                             hwloc_const_cpuset_t set)
{
    if (!topo->can_bind || !hwloc_bitmap_isincluded(set, topo->real_cpuset))
        return CT_ENOTSUP;
    if (hwloc_set_cpubind(topo->hw, set, HWLOC_CPUBIND_THREAD) != 0)
        return CT_EINTERNAL;
    return CT_OK;
}

void ct__layout_free(struct ct__layout *layout)
{
    int i;

    if (layout == NULL)
        return;
    if (layout->threads != NULL)
        for (i = 0; i < layout->n_threads; i++)
            hwloc_bitmap_free(layout->threads[i].cpuset);
    ct__free(layout->threads);
    ct__free(layout->n_threads_per_node);
    ct__free(layout);
}

/* Splits n_threads over the nodes in proportion to their cores, giving the
 * leftover threads to the largest remainders (ties: lowest node index). */
static void split_threads(const struct ct__topology *topo, int n_threads,
                          int *per_node)
{
    int64_t total = topo->n_cores, given = 0;
    int i;

    for (i = 0; i < topo->n_nodes; i++) {
        per_node[i] =
            (int)((int64_t)n_threads * topo->nodes[i].n_cores / total);
        given += per_node[i];
    }
    while (given < n_threads) {
        int best = 0;
        int64_t best_rem = -1;
        for (i = 0; i < topo->n_nodes; i++) {
            /* Remainder of node i if it kept its current share, scaled by
             * total so it stays an integer. */
            int64_t rem = (int64_t)n_threads * topo->nodes[i].n_cores -
                          (int64_t)per_node[i] * total;
            if (rem > best_rem) {
                best_rem = rem;
                best = i;
            }
        }
        per_node[best]++;
        given++;
    }
}

int ct__topology_layout(const struct ct__topology *topo, int n_threads,
                        unsigned flags, struct ct__layout **out,
                        ct_status_t *st)
{
    struct ct__layout *l;
    int node, j, k = 0;

    *out = NULL;
    if (n_threads < 1 || n_threads > 65536)
        return ct_status_setf(st, CT_EINVAL,
                              "layout: n_threads %d out of range [1, 65536]",
                              n_threads);
    l = ct__calloc(1, sizeof(*l));
    if (l == NULL)
        goto fail_oom;
    l->n_threads = n_threads;
    l->n_nodes = topo->n_nodes;
    l->flags = flags;
    l->n_threads_per_node = ct__calloc((size_t)topo->n_nodes, sizeof(int));
    l->threads = ct__calloc((size_t)n_threads, sizeof(*l->threads));
    if (l->n_threads_per_node == NULL || l->threads == NULL)
        goto fail_arrays;
    split_threads(topo, n_threads, l->n_threads_per_node);
    for (node = 0; node < topo->n_nodes; node++) {
        const struct ct__topo_node *nd = &topo->nodes[node];
        for (j = 0; j < l->n_threads_per_node[node]; j++, k++) {
            struct ct__layout_thread *t = &l->threads[k];
            hwloc_obj_t core;

            t->node = node;
            t->core = nd->cores[j % nd->n_cores];
            core = hwloc_get_obj_by_type(topo->hw, topo->core_type,
                                         (unsigned)t->core);
            t->cpuset = hwloc_bitmap_dup((flags & CT__LAYOUT_NODE_CPUSET) ||
                                                 core == NULL
                                             ? nd->cpuset
                                             : core->cpuset);
            if (t->cpuset == NULL)
                goto fail_arrays;
            t->bindable = topo->can_bind &&
                          hwloc_bitmap_isincluded(t->cpuset, topo->real_cpuset);
            if (!t->bindable)
                l->n_unbindable++;
        }
    }
    CT_ASSERT(k == n_threads, "layout placed %d of %d threads", k, n_threads);
    *out = l;
    return CT_OK;

fail_arrays:
    ct__layout_free(l);
fail_oom:
    return ct_status_setf(st, CT_ENOMEM, "layout: out of memory");
}

int ct__topology_print(const struct ct__topology *topo,
                       const struct ct__layout *layout, FILE *f)
{
    char cpus[256];
    int i, j, k = 0, bad = 0;
    const char *why;

    if (!topo->is_thissystem)
        why = "binding skipped: not this system";
    else if (!topo->can_bind)
        why = "binding unsupported";
    else
        why = "binding enabled";
    if (topo->synthetic != NULL)
        bad |= fprintf(f, "topology: synthetic \"%s\" (%s)\n", topo->synthetic,
                       why) < 0;
    else
        bad |=
            fprintf(f, "topology: %s (%s)\n",
                    topo->is_thissystem ? "this machine" : "imported", why) < 0;
    bad |=
        fprintf(f,
                "machine: %d packages, %d NUMA nodes, %d cores, "
                "%d PUs\n",
                topo->n_packages, topo->n_numa, topo->n_cores, topo->n_pus) < 0;
    for (i = 0; i < topo->n_nodes; i++) {
        const struct ct__topo_node *nd = &topo->nodes[i];
        hwloc_bitmap_list_snprintf(cpus, sizeof(cpus), nd->cpuset);
        bad |= fprintf(f, "node %d: os %u, cpus %s, %d cores, %llu MiB\n", i,
                       nd->os_index, cpus, nd->n_cores,
                       (unsigned long long)(nd->memory_bytes >> 20)) < 0;
    }
    if (layout != NULL) {
        bad |= fprintf(f, "layout: %d threads, bound to %s", layout->n_threads,
                       (layout->flags & CT__LAYOUT_NODE_CPUSET) ? "node cpusets"
                                                                : "cores") < 0;
        if (layout->n_unbindable > 0)
            bad |= fprintf(f, " (%d not pinned)", layout->n_unbindable) < 0;
        bad |= fputc('\n', f) == EOF;
        for (i = 0; i < layout->n_nodes; i++) {
            bad |= fprintf(f, "node %d: %d threads\n", i,
                           layout->n_threads_per_node[i]) < 0;
            for (j = 0; j < layout->n_threads_per_node[i]; j++, k++) {
                const struct ct__layout_thread *t = &layout->threads[k];
                hwloc_bitmap_list_snprintf(cpus, sizeof(cpus), t->cpuset);
                bad |= fprintf(f, "  thread %d: core L#%d, cpus %s%s\n", k,
                               t->core, cpus,
                               t->bindable ? "" : " (not pinned)") < 0;
            }
        }
    }
    return bad ? CT_EIO : CT_OK;
}
