/* cortado internal: the dependency graph and chains of a NetDef.
 *
 * Pure NetDef analysis, no ops or workspace needed (so it is testable on
 * bare NetDefs): the validation walk of spec §6.1, the dependency edges of
 * §6.3 (read-after-write, write-after-write and write-after-read, with
 * control_input read like an input), the transitive pruning and the
 * chains of §6.4, and the chain graph (from the unpruned op edges).
 * Every edge goes from a lower op index to a higher one, so the op graph
 * is a DAG by construction (asserted), and so is the chain graph
 * (asserted while its topological order is computed).
 * A built graph is immutable; any number of threads may read it.
 */
#ifndef CT_ENGINE_GRAPH_H
#define CT_ENGINE_GRAPH_H

#include <stddef.h>

#include "cortado/engine.h"
#include "cortado/error.h"
#include "proto/caffe2.pb-c.h"

/* Adjacency lists are CSR: node i's list is idx[off[i] .. off[i + 1]),
 * ascending. All arrays live in one block owned by the graph. */
struct ct__graph {
    int n_nodes; /* ops of the NetDef */
    int n_edges; /* unpruned, de-duplicated, no self edges */
    int n_pruned_edges;
    int n_chains;
    /* Dependency graph of spec §6.3. */
    const int *parent_off, *parents;
    const int *child_off, *children;
    /* The pruned copy used for chaining (spec §6.4). */
    const int *pruned_parent_off, *pruned_parents;
    const int *pruned_child_off, *pruned_children;
    /* Chains keyed by their first op, in ascending first-op order (the
     * iteration order of Caffe2's std::map). Chain c holds ops
     * chain_ops[chain_off[c] .. chain_off[c + 1]), ascending. */
    const int *chain_off, *chain_ops;
    const int *op_chain; /* chain index of each op */
    /* Chain graph: distinct other chains holding a parent / child of one
     * of the chain's ops, unpruned edges, ascending chain index. */
    const int *chain_parent_off, *chain_parents;
    const int *chain_child_off, *chain_children;
    /* A topological order of the chains (Kahn, smallest index first). */
    const int *chain_topo;
    void *mem; /* the one block every array above lives in */
};

/* Builds the graph of def into caller-owned g. An empty net gives a graph
 * with no nodes and no chains. Errors: CT_ENOMEM, CT_EINVAL (more ops or
 * blob names than an int can index), CT_EINTERNAL ("Haven't seen all the
 * nodes ...", which a DAG cannot trigger); g is left empty (safe to
 * destroy) on failure. Thread-safe on distinct g. */
int ct__graph_init(struct ct__graph *g, const Caffe2__NetDef *def,
                   ct_status_t *st);
/* Releases g's block. Safe on a zeroed or failed g. */
void ct__graph_destroy(struct ct__graph *g);

/* The effective NUMA node of op i: its own DeviceOption.numa_node_id,
 * else the net's, else -1. Chains never mix NUMA nodes (this is what
 * Caffe2's IsSameDevice test reduces to on a CPU-only engine). */
int ct__netdef_op_numa(const Caffe2__NetDef *def, size_t i);

/* Net validation of spec §6.1, run before any op is created:
 *   1. an op with a device_option must have an empty node_name
 *      (CT_EGRAPH "op <i> <Type>: node_name must be empty for all
 *      operators at execution time.");
 *   2. ops are walked in order with the known blobs seeded from the
 *      external inputs and extra[0..n_extra); when the net declares any
 *      external_input, an unknown input is CT_EGRAPH "op <i> <Type>:
 *      Source for input <X> is unknown for net <N>"; otherwise it is only
 *      reported once through eng's notices (eng may be NULL) when
 *      verbose;
 *   3. a declared external output that no op produces and that is not an
 *      external input is CT_EGRAPH "Some of the blobs are declared as
 *      output but never produced by the net <N>, the first one is <X>",
 *      X the smallest such name (Caffe2 keeps them in a std::set).
 * For per-op errors st->node is the op index. Errors also: CT_ENOMEM. */
int ct__netdef_validate(const Caffe2__NetDef *def, const char *const *extra,
                        size_t n_extra, ct_engine_t *eng, ct_status_t *st);

#endif /* CT_ENGINE_GRAPH_H */
