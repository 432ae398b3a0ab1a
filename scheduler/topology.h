/* cortado internal: machine topology (hwloc 2.x) and pool layouts.
 *
 * A topology lists the NUMA nodes that have CPUs (memory-only nodes are
 * not scheduling targets), each with its cpuset, nodeset, local memory and
 * cores. In hwloc 2.x NUMA nodes are memory children, not tree levels, so
 * each core is assigned to the NUMA node with the smallest cpuset that
 * contains it (its local node, also when nodes nest, as with HBM).
 *
 * A synthetic hwloc description ("pack:2 numa:1 core:4 pu:1") replaces the
 * real machine, so multi-node behaviour is testable on a 2-core box. Such a
 * topology does not describe this system, so binding is skipped, unless
 * CT__TOPOLOGY_THISSYSTEM (or HWLOC_THISSYSTEM=1) asserts that it does:
 * then binding is real for the CPUs this process may use and skipped for
 * the others ("pack:2 numa:1 core:1 pu:1" gives two fake nodes of one
 * real core each, with working pinning).
 *
 * A layout places N threads: threads are spread over nodes in proportion
 * to their cores (largest remainder), node-major, and inside a node each
 * thread gets the next core (wrapping when oversubscribed). Its cpuset is
 * that core's PUs, or the whole node's cpuset under CT__LAYOUT_NODE_CPUSET
 * (intra-op OpenMP: a team inherits the worker's binding, so a worker
 * pinned to one core would squeeze its team onto that core).
 *
 * Thread-safety: a topology and a layout are immutable once created; any
 * thread may read them and bind itself concurrently.
 */
#ifndef CT_SCHEDULER_TOPOLOGY_H
#define CT_SCHEDULER_TOPOLOGY_H

#include <hwloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cortado/error.h"

/* Flags of ct__topology_new. */
enum ct__topology_flag {
    /* The synthetic description describes this machine: bind for real. */
    CT__TOPOLOGY_THISSYSTEM = 1u << 0,
};

/* Flags of ct__topology_layout. */
enum ct__layout_flag {
    /* Bind each thread to its node's cpuset instead of its core. */
    CT__LAYOUT_NODE_CPUSET = 1u << 0,
};

struct ct__topo_node {
    unsigned os_index;       /* the OS's NUMA node number */
    uint64_t memory_bytes;   /* local memory; 0 when unknown */
    hwloc_cpuset_t cpuset;   /* owned: the PUs of the node's cores */
    hwloc_nodeset_t nodeset; /* owned: for hwloc membind calls */
    int n_cores;
    int *cores; /* owned: hwloc logical indexes of the node's cores */
};

struct ct__topology {
    hwloc_topology_t hw; /* owned, loaded */
    char *synthetic;     /* owned copy of the description, or NULL */
    bool is_thissystem;  /* hwloc_topology_is_thissystem() */
    bool can_bind;       /* thissystem and thread binding supported */
    /* CPUs this process may run on (owned; empty when !can_bind). A
     * layout thread is bindable when its cpuset is included in it. */
    hwloc_cpuset_t real_cpuset;
    hwloc_obj_type_t core_type; /* HWLOC_OBJ_CORE, or PU if none exist */
    int n_packages;
    int n_numa; /* every NUMA node, including memory-only ones */
    int n_cores;
    int n_pus;
    int n_nodes;                 /* NUMA nodes with at least one core */
    struct ct__topo_node *nodes; /* owned, n_nodes entries */
};

struct ct__layout_thread {
    int node;              /* index into topology->nodes */
    int core;              /* hwloc logical index of its core */
    hwloc_cpuset_t cpuset; /* owned: where the thread is bound */
    bool bindable;         /* binding will really happen */
};

struct ct__layout {
    int n_threads;
    int n_nodes;
    unsigned flags;                    /* enum ct__layout_flag */
    int *n_threads_per_node;           /* owned, n_nodes entries */
    struct ct__layout_thread *threads; /* owned, n_threads, node-major */
    int n_unbindable;                  /* threads whose cpuset is not real */
};

/* Discovers the topology. `synthetic` is an hwloc synthetic description;
 * NULL means the environment variable CT_TOPOLOGY, and when that is unset
 * or empty, the real machine (hwloc's own HWLOC_XMLFILE / HWLOC_SYNTHETIC
 * variables still apply). flags: enum ct__topology_flag. On success *out
 * is owned by the caller (ct__topology_free). Errors: CT_EINVAL (invalid
 * description, quoted in st), CT_ENOMEM, CT_EINTERNAL (hwloc failed to
 * load); *out is NULL then. */
int ct__topology_new(const char *synthetic, unsigned flags,
                     struct ct__topology **out, ct_status_t *st);
/* NULL allowed. */
void ct__topology_free(struct ct__topology *topo);

/* Binds the calling thread to `set`. CT_OK, CT_ENOTSUP when binding is
 * skipped (topology not of this system, or CPUs absent here), CT_EINTERNAL
 * when the OS refused. Never fatal for the caller. */
int ct__topology_bind_thread(const struct ct__topology *topo,
                             hwloc_const_cpuset_t set);

/* Computes where n_threads (>= 1) threads go. flags: enum ct__layout_flag.
 * On success *out is owned by the caller (ct__layout_free). Errors:
 * CT_EINVAL (n_threads < 1 or > 65536), CT_ENOMEM. */
int ct__topology_layout(const struct ct__topology *topo, int n_threads,
                        unsigned flags, struct ct__layout **out,
                        ct_status_t *st);
/* NULL allowed. */
void ct__layout_free(struct ct__layout *layout);

/* Prints the machine summary and, when layout is not NULL, the placement
 * of every thread, e.g.
 *
 *   topology: synthetic "pack:2 numa:1 core:4 pu:1" (binding skipped:
 *     not this system)
 *   machine: 2 packages, 2 NUMA nodes, 8 cores, 8 PUs
 *   node 0: os 0, cpus 0-3, 4 cores, 1024 MiB
 *   ...
 *   layout: 3 threads, bound to cores
 *   node 0: 2 threads
 *     thread 0: core L#0, cpus 0
 *
 * The future `cortado topo` command prints this. Returns CT_OK or CT_EIO
 * when writing failed. */
int ct__topology_print(const struct ct__topology *topo,
                       const struct ct__layout *layout, FILE *f);

#endif /* CT_SCHEDULER_TOPOLOGY_H */
