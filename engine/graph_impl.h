/* cortado internal: the temporaries graph building shares between
 * graph.c (names, edges, chain graph, packing), graph_prune.c (pruning and
 * chains) and graph_validate.c. Only those files include it.
 */
#ifndef CT_ENGINE_GRAPH_IMPL_H
#define CT_ENGINE_GRAPH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/error.h"
#include "engine/alloc.h"
#include "engine/graph.h"

/* ---- interned blob names (graph.c) ---- */

/* Open addressing over borrowed strings, sized once; never grows. */
struct ct__graph_names {
    const char **keys; /* borrowed from the NetDef */
    int *ids;
    size_t mask;
    int n;
};

/* Sized for at most max_names distinct names: load factor <= 1/2, so an
 * insert always finds a free slot and the table never grows. */
int ct__graph_names_init(struct ct__graph_names *t, size_t max_names);
void ct__graph_names_destroy(struct ct__graph_names *t);
/* Id of s, assigning the next one if s is new. */
int ct__graph_names_intern(struct ct__graph_names *t, const char *s);

/* ---- graph building ---- */

/* A DFS stack entry: a node and a second int (the node it was reached
 * from while pruning; the next child position while chaining). */
struct ct__graph_frame {
    int node;
    int aux;
};

/* Temporaries of one ct__graph_init call; freed together. */
struct ct__graph_build {
    int n;
    uint64_t *edges; /* (src << 32 | dst) keys, sorted and unique */
    size_t n_edges;
    /* unpruned CSR */
    int *par_off, *par, *ch_off, *ch, *cursor;
    /* pruned lists: the unpruned offsets with their own lengths */
    int *pp, *pp_len, *pc, *pc_len;
    int *orig_par, *visited;
    bool *anc;
    int *path, path_len; /* the nodes with anc set, root first */
    struct ct__graph_frame *stk;
    size_t s_cap;
    int *roots, n_roots;
    int *seen_count, *numa;
    bool *seen;
    int *cbuf, clen;   /* chain being grown */
    int *cops, n_cops; /* committed chains, concatenated */
    int *ch_start, *ch_len, nch;
    /* chains renumbered by first op */
    int *chain_at_first, *c_off, *c_ops, *op_chain;
    uint64_t *cedges;
    size_t n_cedges;
    int *c_par_off, *c_par, *c_ch_off, *c_ch, *topo, *indeg;
};

/* Pushes (node, aux) onto b->stk at *sp, growing it. CT_ENOMEM when the
 * stack cannot grow. */
static inline int ct__graph_build_push(struct ct__graph_build *b, size_t *sp,
                                       int node, int aux)
{
    if (*sp == b->s_cap && ct__grow((void **)&b->stk, &b->s_cap, *sp + 1,
                                    sizeof(*b->stk)) != CT_OK)
        return CT_ENOMEM;
    b->stk[*sp].node = node;
    b->stk[*sp].aux = aux;
    (*sp)++;
    return CT_OK;
}

/* Edges are (src << 32 | dst) keys, so sorting orders them by (src, dst). */
static inline uint64_t ct__graph_edge_key(int src, int dst)
{
    return (uint64_t)(uint32_t)src << 32 | (uint32_t)dst;
}

static inline int ct__graph_edge_src(uint64_t k)
{
    return (int)(k >> 32);
}
static inline int ct__graph_edge_dst(uint64_t k)
{
    return (int)(k & 0xffffffffu);
}

/* ---- steps 2 and 3 (graph_prune.c) ---- */

/* Removes implied edges from the pruned lists (pp/pc and their lengths):
 * one DFS from each root. CT_ENOMEM when the DFS stack cannot grow. */
int ct__graph_build_prune(struct ct__graph_build *b);
/* seen_count[] over the pruned graph from b->roots. CT_ENOMEM likewise. */
int ct__graph_build_count_seen(struct ct__graph_build *b);
/* Grows the chains (cops, ch_start, ch_len, nch). CT_ENOMEM or
 * CT_EINTERNAL ("Haven't seen all the nodes ..."), with st filled. */
int ct__graph_build_chains(struct ct__graph_build *b, ct_status_t *st);

#endif /* CT_ENGINE_GRAPH_IMPL_H */
