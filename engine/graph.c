/* cortado: dependency graph, pruning and chains of a NetDef.
 *
 * Design note. This file ports Caffe2's net_dag_utils.cc step by step, so
 * a NetDef gets the same chains here as in Caffe2:
 *   1. Edges (spec §6.3). Ops are scanned in order with creator[blob] (last
 *      writer) and readers[blob] (readers since that write). Reads are the
 *      inputs then the control_inputs: creator -> i (RAW), i joins the
 *      readers. Each output: creator -> i (WAW), every reader -> i (WAR),
 *      then i becomes the creator and the readers are cleared. Blob names
 *      are interned once into ids (open addressing over the NetDef's own
 *      strings, sized up front so it never grows). Readers are one pooled
 *      linked list per blob, so the scan is O(names) with no per-blob
 *      allocation. Edges are sorted, de-duplicated and self edges dropped
 *      (an in-place op does not wait for itself). Every edge then goes
 *      from a lower op index to a higher one: the graph is a DAG by
 *      construction, which we assert instead of searching for cycles.
 *   2. Pruning (spec §6.4, Caffe2's prune()): a DFS from each root keeps
 *      an "ancestor" mark on the current path; arriving at c from p, every
 *      parent edge q -> c with q != p and q an ancestor is implied by the
 *      path and removed. A node descends into its children only once it
 *      has been reached as many times as it had parents (the counters
 *      persist across roots). Like Caffe2's, it is fast and may miss some
 *      redundant edges; it never changes reachability.
 *   3. Chains (spec §6.4, computeChains): seen_count from a DFS over the
 *      pruned graph, then the stack walk that grows a chain along nodes
 *      with exactly one child while the next node has seen_count 1. On a
 *      CPU-only engine with no async ops Caffe2's can_extend reduces to
 *      seen_count == 1 plus IsSameDevice, which here means the same
 *      effective numa_node_id (device_type and device_id are ignored:
 *      every op runs on the CPU). Chains are keyed by their first op and
 *      ordered by it, like Caffe2's std::map.
 *   4. Chain graph (prepareChainGraphNodes): from the unpruned op edges.
 *      It is a DAG too (a chain is a path of the pruned graph, which keeps
 *      reachability); Kahn's algorithm computes an order and asserts that.
 * Temporaries are freed before returning; the results are packed into one
 * block, released in one go by ct__graph_destroy.
 *
 * Files: steps 1 and 4, packing and the entry points are here; steps 2
 * and 3 are in graph_prune.c; the validation walk (spec §6.1) is in
 * graph_validate.c. Their shared temporaries are in graph_impl.h.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "engine/graph_impl.h"

/* ---- interned blob names ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Sized for at most max_names distinct names: load factor <= 1/2, so an
 * insert always finds a free slot and the table never grows. */
int ct__graph_names_init(struct ct__graph_names *t, size_t max_names)
{
    size_t cap = 16;

    memset(t, 0, sizeof(*t));
    while (cap < max_names * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(const char *))
            return CT_ENOMEM;
        cap <<= 1;
    }
    t->keys = ct__calloc(cap, sizeof(*t->keys));
    t->ids = ct__calloc(cap, sizeof(*t->ids));
    if (t->keys == NULL || t->ids == NULL) {
        ct__free(t->keys);
        ct__free(t->ids);
        t->keys = NULL;
        t->ids = NULL;
        return CT_ENOMEM;
    }
    t->mask = cap - 1;
    return CT_OK;
}

void ct__graph_names_destroy(struct ct__graph_names *t)
{
    ct__free(t->keys);
    ct__free(t->ids);
    memset(t, 0, sizeof(*t));
}

/* Id of s, assigning the next one if s is new. */
int ct__graph_names_intern(struct ct__graph_names *t, const char *s)
{
    size_t h = (size_t)hash_str(s) & t->mask;

    while (t->keys[h] != NULL) {
        if (strcmp(t->keys[h], s) == 0)
            return t->ids[h];
        h = (h + 1) & t->mask;
    }
    CT_ASSERT((size_t)t->n * 2 <= t->mask + 1, "name table over-full");
    t->keys[h] = s;
    t->ids[h] = t->n;
    return t->n++;
}

/* ---- graph building ---- */

static void build_free(struct ct__graph_build *b)
{
    void *all[] = {
        b->edges,      b->par_off,  b->par,      b->ch_off,
        b->ch,         b->cursor,   b->pp,       b->pp_len,
        b->pc,         b->pc_len,   b->orig_par, b->visited,
        b->anc,        b->path,     b->stk,      b->roots,
        b->seen_count, b->numa,     b->seen,     b->cbuf,
        b->cops,       b->ch_start, b->ch_len,   b->chain_at_first,
        b->c_off,      b->c_ops,    b->op_chain, b->cedges,
        b->c_par_off,  b->c_par,    b->c_ch_off, b->c_ch,
        b->topo,       b->indeg,
    };
    size_t k;

    for (k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        ct__free(all[k]);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts keys, drops duplicates and self edges; returns the new count. */
static size_t sort_unique(uint64_t *keys, size_t n)
{
    size_t i, m = 0;

    if (n > 1)
        qsort(keys, n, sizeof(*keys), cmp_u64);
    for (i = 0; i < n; i++) {
        if (ct__graph_edge_src(keys[i]) == ct__graph_edge_dst(keys[i]))
            continue;
        if (m > 0 && keys[m - 1] == keys[i])
            continue;
        keys[m++] = keys[i];
    }
    return m;
}

/* CSR of both directions from sorted unique keys over n nodes; cursor
 * is scratch for n ints. */
static void fill_csr(const uint64_t *keys, size_t n_keys, int n, int *ch_off,
                     int *ch, int *par_off, int *par, int *cursor)
{
    size_t e;
    int i;

    memset(ch_off, 0, (size_t)(n + 1) * sizeof(int));
    memset(par_off, 0, (size_t)(n + 1) * sizeof(int));
    for (e = 0; e < n_keys; e++) {
        ch_off[ct__graph_edge_src(keys[e]) + 1]++;
        par_off[ct__graph_edge_dst(keys[e]) + 1]++;
    }
    for (i = 0; i < n; i++) {
        ch_off[i + 1] += ch_off[i];
        par_off[i + 1] += par_off[i];
    }
    /* Keys are sorted by (src, dst): children come out ascending, and
     * appending each src to its dst's list in the same order keeps the
     * parents ascending too. */
    for (i = 0; i < n; i++)
        cursor[i] = par_off[i];
    for (e = 0; e < n_keys; e++) {
        ch[e] = ct__graph_edge_dst(keys[e]);
        par[cursor[ct__graph_edge_dst(keys[e])]++] =
            ct__graph_edge_src(keys[e]);
    }
}

static int scan_edges(struct ct__graph_build *b, const Caffe2__NetDef *def,
                      ct_status_t *st)
{
    struct ct__graph_names t;
    size_t total = 0, n_reads = 0, n_writes = 0, i, k;
    int *creator = NULL, *rhead = NULL, *rop = NULL, *rnext = NULL;
    int n_r = 0, id, r;
    int rc = CT_OK;

    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        n_reads += op->n_input + op->n_control_input;
        n_writes += op->n_output;
    }
    total = n_reads + n_writes;
    if (total > (size_t)INT_MAX / 4)
        return ct_status_setf(st, CT_EINVAL,
                              "net has %zu blob references, more than "
                              "cortado can index",
                              total);
    if (ct__graph_names_init(&t, total) != CT_OK)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory interning %zu blob names", total);
    creator = ct__malloc((total + 1) * sizeof(int));
    rhead = ct__malloc((total + 1) * sizeof(int));
    rop = ct__malloc((n_reads + 1) * sizeof(int));
    rnext = ct__malloc((n_reads + 1) * sizeof(int));
    b->edges = ct__malloc((2 * n_reads + n_writes + 1) * sizeof(uint64_t));
    if (creator == NULL || rhead == NULL || rop == NULL || rnext == NULL ||
        b->edges == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM,
                            "out of memory building the edges of %d ops", b->n);
        goto out;
    }
    for (i = 0; i <= total; i++) {
        creator[i] = -1;
        rhead[i] = -1;
    }
    for (i = 0; i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        size_t n_in = op->n_input + op->n_control_input;
        for (k = 0; k < n_in; k++) {
            const char *name = k < op->n_input
                                   ? op->input[k]
                                   : op->control_input[k - op->n_input];
            id = ct__graph_names_intern(&t, name);
            if (creator[id] >= 0) /* read after write */
                b->edges[b->n_edges++] =
                    ct__graph_edge_key(creator[id], (int)i);
            rop[n_r] = (int)i;
            rnext[n_r] = rhead[id];
            rhead[id] = n_r++;
        }
        for (k = 0; k < op->n_output; k++) {
            id = ct__graph_names_intern(&t, op->output[k]);
            if (creator[id] >= 0) /* write after write */
                b->edges[b->n_edges++] =
                    ct__graph_edge_key(creator[id], (int)i);
            for (r = rhead[id]; r >= 0; r = rnext[r]) /* write after read */
                b->edges[b->n_edges++] = ct__graph_edge_key(rop[r], (int)i);
            creator[id] = (int)i;
            rhead[id] = -1;
        }
    }
    b->n_edges = sort_unique(b->edges, b->n_edges);
    for (i = 0; i < b->n_edges; i++)
        CT_ASSERT(
            ct__graph_edge_src(b->edges[i]) < ct__graph_edge_dst(b->edges[i]),
            "edge %d -> %d goes backwards", ct__graph_edge_src(b->edges[i]),
            ct__graph_edge_dst(b->edges[i]));
out:
    ct__free(creator);
    ct__free(rhead);
    ct__free(rop);
    ct__free(rnext);
    ct__graph_names_destroy(&t);
    return rc;
}

/* Renumbers chains by first op, maps ops to chains, builds the chain
 * graph from the unpruned edges and a topological order of it. */
static int chain_graph(struct ct__graph_build *b)
{
    int n = b->n, c, k, i, head, tail;
    size_t e;

    b->chain_at_first = ct__malloc(((size_t)n + 1) * sizeof(int));
    b->c_off = ct__malloc(((size_t)b->nch + 1) * sizeof(int));
    b->c_ops = ct__malloc(((size_t)n + 1) * sizeof(int));
    b->op_chain = ct__malloc(((size_t)n + 1) * sizeof(int));
    b->cedges = ct__malloc((b->n_edges + 1) * sizeof(uint64_t));
    b->c_par_off = ct__malloc(((size_t)b->nch + 1) * sizeof(int));
    b->c_ch_off = ct__malloc(((size_t)b->nch + 1) * sizeof(int));
    b->c_par = ct__malloc((b->n_edges + 1) * sizeof(int));
    b->c_ch = ct__malloc((b->n_edges + 1) * sizeof(int));
    b->topo = ct__malloc(((size_t)b->nch + 1) * sizeof(int));
    b->indeg = ct__malloc(((size_t)b->nch + 1) * sizeof(int));
    if (b->chain_at_first == NULL || b->c_off == NULL || b->c_ops == NULL ||
        b->op_chain == NULL || b->cedges == NULL || b->c_par_off == NULL ||
        b->c_ch_off == NULL || b->c_par == NULL || b->c_ch == NULL ||
        b->topo == NULL || b->indeg == NULL)
        return CT_ENOMEM;

    for (i = 0; i < n; i++)
        b->chain_at_first[i] = -1;
    for (k = 0; k < b->nch; k++) {
        int first = b->cops[b->ch_start[k]];
        CT_ASSERT(b->chain_at_first[first] < 0, "Chain %d was already added.",
                  first);
        b->chain_at_first[first] = k;
    }
    c = 0;
    b->c_off[0] = 0;
    for (i = 0; i < n; i++) {
        int old = b->chain_at_first[i], j;
        if (old < 0)
            continue;
        for (j = 0; j < b->ch_len[old]; j++) {
            int op = b->cops[b->ch_start[old] + j];
            b->c_ops[b->c_off[c] + j] = op;
            b->op_chain[op] = c;
        }
        b->c_off[c + 1] = b->c_off[c] + b->ch_len[old];
        c++;
    }
    CT_ASSERT(c == b->nch && b->c_off[c] == n, "chains cover %d of %d ops",
              b->c_off[c], n);

    for (e = 0; e < b->n_edges; e++) {
        int cu = b->op_chain[ct__graph_edge_src(b->edges[e])];
        int cv = b->op_chain[ct__graph_edge_dst(b->edges[e])];
        if (cu != cv)
            b->cedges[b->n_cedges++] = ct__graph_edge_key(cu, cv);
    }
    b->n_cedges = sort_unique(b->cedges, b->n_cedges);
    fill_csr(b->cedges, b->n_cedges, b->nch, b->c_ch_off, b->c_ch, b->c_par_off,
             b->c_par, b->indeg);

    /* Kahn's algorithm; the queue is topo[] itself. */
    head = tail = 0;
    for (c = 0; c < b->nch; c++) {
        b->indeg[c] = b->c_par_off[c + 1] - b->c_par_off[c];
        if (b->indeg[c] == 0)
            b->topo[tail++] = c;
    }
    while (head < tail) {
        int u = b->topo[head++];
        for (k = b->c_ch_off[u]; k < b->c_ch_off[u + 1]; k++) {
            if (--b->indeg[b->c_ch[k]] == 0)
                b->topo[tail++] = b->c_ch[k];
        }
    }
    CT_ASSERT(tail == b->nch, "chain graph has a cycle (%d of %d ordered)",
              tail, b->nch);
    return CT_OK;
}

/* ---- packing the result ---- */

static int *carve(int **p, size_t n)
{
    int *r = *p;
    *p += n;
    return r;
}

static int pack(struct ct__graph_build *b, struct ct__graph *g)
{
    size_t n = (size_t)b->n, E = b->n_edges, Ep = 0, C = (size_t)b->nch;
    size_t Ec = b->n_cedges, total;
    int *p, *off, *idx;
    int i;

    for (i = 0; i < b->n; i++)
        Ep += (size_t)b->pc_len[i];
    total = 4 * (n + 1) + 2 * E + 2 * Ep + 3 * (C + 1) + 2 * n + 2 * Ec + C;
    g->mem = ct__malloc(total * sizeof(int));
    if (g->mem == NULL)
        return CT_ENOMEM;
    p = g->mem;
    g->n_nodes = b->n;
    g->n_edges = (int)E;
    g->n_pruned_edges = (int)Ep;
    g->n_chains = b->nch;

    g->parent_off = memcpy(carve(&p, n + 1), b->par_off, (n + 1) * sizeof(int));
    g->parents = memcpy(carve(&p, E), b->par, E * sizeof(int));
    g->child_off = memcpy(carve(&p, n + 1), b->ch_off, (n + 1) * sizeof(int));
    g->children = memcpy(carve(&p, E), b->ch, E * sizeof(int));

    off = carve(&p, n + 1);
    idx = carve(&p, Ep);
    off[0] = 0;
    for (i = 0; i < b->n; i++) {
        memcpy(idx + off[i], b->pp + b->par_off[i],
               (size_t)b->pp_len[i] * sizeof(int));
        off[i + 1] = off[i] + b->pp_len[i];
    }
    g->pruned_parent_off = off;
    g->pruned_parents = idx;
    off = carve(&p, n + 1);
    idx = carve(&p, Ep);
    off[0] = 0;
    for (i = 0; i < b->n; i++) {
        memcpy(idx + off[i], b->pc + b->ch_off[i],
               (size_t)b->pc_len[i] * sizeof(int));
        off[i + 1] = off[i] + b->pc_len[i];
    }
    g->pruned_child_off = off;
    g->pruned_children = idx;
    CT_ASSERT(g->pruned_parent_off[n] == (int)Ep, "pruned edge counts differ");

    g->chain_off = memcpy(carve(&p, C + 1), b->c_off, (C + 1) * sizeof(int));
    g->chain_ops = memcpy(carve(&p, n), b->c_ops, n * sizeof(int));
    g->op_chain = memcpy(carve(&p, n), b->op_chain, n * sizeof(int));
    g->chain_parent_off =
        memcpy(carve(&p, C + 1), b->c_par_off, (C + 1) * sizeof(int));
    g->chain_parents = memcpy(carve(&p, Ec), b->c_par, Ec * sizeof(int));
    g->chain_child_off =
        memcpy(carve(&p, C + 1), b->c_ch_off, (C + 1) * sizeof(int));
    g->chain_children = memcpy(carve(&p, Ec), b->c_ch, Ec * sizeof(int));
    g->chain_topo = memcpy(carve(&p, C), b->topo, C * sizeof(int));
    CT_ASSERT((size_t)(p - (int *)g->mem) == total, "graph block size");
    return CT_OK;
}

/* ---- entry points ---- */

int ct__graph_init(struct ct__graph *g, const Caffe2__NetDef *def,
                   ct_status_t *st)
{
    struct ct__graph_build b;
    size_t n1;
    int rc, i;

    memset(g, 0, sizeof(*g));
    memset(&b, 0, sizeof(b));
    if (def->n_op > (size_t)INT_MAX / 8)
        return ct_status_setf(st, CT_EINVAL,
                              "net has %zu ops, more than cortado can index",
                              def->n_op);
    b.n = (int)def->n_op;
    n1 = (size_t)b.n + 1;
    rc = scan_edges(&b, def, st);
    if (rc != CT_OK)
        goto out;

    b.par_off = ct__malloc(n1 * sizeof(int));
    b.ch_off = ct__malloc(n1 * sizeof(int));
    b.cursor = ct__malloc(n1 * sizeof(int));
    b.par = ct__malloc((b.n_edges + 1) * sizeof(int));
    b.ch = ct__malloc((b.n_edges + 1) * sizeof(int));
    b.pp = ct__malloc((b.n_edges + 1) * sizeof(int));
    b.pc = ct__malloc((b.n_edges + 1) * sizeof(int));
    b.pp_len = ct__malloc(n1 * sizeof(int));
    b.pc_len = ct__malloc(n1 * sizeof(int));
    b.orig_par = ct__malloc(n1 * sizeof(int));
    b.visited = ct__calloc(n1, sizeof(int));
    b.anc = ct__calloc(n1, sizeof(bool));
    b.path = ct__malloc(n1 * sizeof(int));
    b.roots = ct__malloc(n1 * sizeof(int));
    b.seen_count = ct__calloc(n1, sizeof(int));
    b.numa = ct__malloc(n1 * sizeof(int));
    b.seen = ct__calloc(n1, sizeof(bool));
    b.cbuf = ct__malloc(n1 * sizeof(int));
    b.cops = ct__malloc(n1 * sizeof(int));
    b.ch_start = ct__malloc(n1 * sizeof(int));
    b.ch_len = ct__malloc(n1 * sizeof(int));
    if (b.par_off == NULL || b.ch_off == NULL || b.cursor == NULL ||
        b.par == NULL || b.ch == NULL || b.pp == NULL || b.pc == NULL ||
        b.pp_len == NULL || b.pc_len == NULL || b.orig_par == NULL ||
        b.visited == NULL || b.anc == NULL || b.roots == NULL ||
        b.seen_count == NULL || b.numa == NULL || b.seen == NULL ||
        b.cbuf == NULL || b.cops == NULL || b.ch_start == NULL ||
        b.ch_len == NULL || b.path == NULL)
        goto fail_mem;

    fill_csr(b.edges, b.n_edges, b.n, b.ch_off, b.ch, b.par_off, b.par,
             b.cursor);
    memcpy(b.pp, b.par, b.n_edges * sizeof(int));
    memcpy(b.pc, b.ch, b.n_edges * sizeof(int));
    for (i = 0; i < b.n; i++) {
        b.pp_len[i] = b.par_off[i + 1] - b.par_off[i];
        b.pc_len[i] = b.ch_off[i + 1] - b.ch_off[i];
        b.orig_par[i] = b.pp_len[i];
        b.numa[i] = ct__netdef_op_numa(def, (size_t)i);
    }
    if (ct__graph_build_prune(&b) != CT_OK)
        goto fail_mem;
    for (i = 0; i < b.n; i++) {
        if (b.pp_len[i] == 0)
            b.roots[b.n_roots++] = i;
    }
    if (ct__graph_build_count_seen(&b) != CT_OK)
        goto fail_mem;
    rc = ct__graph_build_chains(&b, st);
    if (rc != CT_OK)
        goto out;
    if (chain_graph(&b) != CT_OK || pack(&b, g) != CT_OK)
        goto fail_mem;
    rc = CT_OK;
    goto out;

fail_mem:
    rc = ct_status_setf(st, CT_ENOMEM,
                        "out of memory building the graph of %d ops", b.n);
out:
    build_free(&b);
    if (rc != CT_OK) {
        ct__free(g->mem);
        memset(g, 0, sizeof(*g));
    }
    return rc;
}

void ct__graph_destroy(struct ct__graph *g)
{
    if (g == NULL)
        return;
    ct__free(g->mem);
    memset(g, 0, sizeof(*g));
}
