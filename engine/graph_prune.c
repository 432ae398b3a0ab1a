/* cortado: transitive pruning and chains of a NetDef's dependency graph
 * (steps 2 and 3 of the design note in graph.c; Caffe2's prune and
 * computeChains from net_dag_utils.cc).
 */
#include <string.h>

#include "engine/graph_impl.h"

/* ---- pruning (Caffe2's prune / pruneOpNodeGraph) ---- */

static void remove_child(struct ct__graph_build *b, int parent, int child)
{
    int *seg = b->pc + b->ch_off[parent];
    int k, m = 0;

    for (k = 0; k < b->pc_len[parent]; k++) {
        if (seg[k] != child)
            seg[m++] = seg[k];
    }
    b->pc_len[parent] = m;
}

/* The DFS from one root. An entry stays on the stack while its subtree is
 * explored; meeting it again on top with its ancestor mark set means the
 * subtree is done, so the mark is cleared and the entry popped. */
static int prune_from(struct ct__graph_build *b, int root)
{
    size_t sp = 0;
    int k, m;

    b->path_len = 0; /* every DFS ends with an empty path */
    if (ct__graph_build_push(b, &sp, root, -1) != CT_OK)
        return CT_ENOMEM;
    while (sp > 0) {
        int curr = b->stk[sp - 1].node, prev = b->stk[sp - 1].aux;
        if (b->anc[curr]) {
            b->anc[curr] = false;
            b->path_len--;
            sp--;
            continue;
        }
        if (prev >= 0 && (int64_t)b->path_len * 16 < (int64_t)b->pp_len[curr]) {
            /* Same rule, driven by the (short) path instead of the (long)
             * parent list: a node with a huge fan-in would otherwise scan
             * all its parents on every arrival, O(fan-in^2). The parent
             * segment stays sorted (compaction keeps the order), so each
             * path node is looked up by binary search. */
            int *seg = b->pp + b->par_off[curr];
            int a;
            for (a = 0; a < b->path_len; a++) {
                int q = b->path[a], lo = 0, hi = b->pp_len[curr];
                if (q == prev)
                    continue;
                while (lo < hi) {
                    int mid = lo + (hi - lo) / 2;
                    if (seg[mid] < q)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo < b->pp_len[curr] && seg[lo] == q) {
                    remove_child(b, q, curr);
                    memmove(seg + lo, seg + lo + 1,
                            (size_t)(b->pp_len[curr] - lo - 1) * sizeof(int));
                    b->pp_len[curr]--;
                }
            }
        } else if (prev >= 0) {
            /* Drop q -> curr when q is on the current path and is not
             * where we came from: the path already implies the edge. */
            int *seg = b->pp + b->par_off[curr];
            m = 0;
            for (k = 0; k < b->pp_len[curr]; k++) {
                int q = seg[k];
                if (q != prev && b->anc[q])
                    remove_child(b, q, curr);
                else
                    seg[m++] = q;
            }
            b->pp_len[curr] = m;
        }
        b->anc[curr] = true;
        b->path[b->path_len++] = curr;
        /* Descend once, when every original parent has reached us. */
        if (b->visited[curr] == b->orig_par[curr]) {
            const int *kids = b->pc + b->ch_off[curr];
            int n_kids = b->pc_len[curr];
            for (k = 0; k < n_kids; k++) {
                b->visited[kids[k]]++;
                if (ct__graph_build_push(b, &sp, kids[k], curr) != CT_OK)
                    return CT_ENOMEM;
            }
        }
    }
    return CT_OK;
}

int ct__graph_build_prune(struct ct__graph_build *b)
{
    int i, rc;

    for (i = 0; i < b->n; i++) {
        if (b->pp_len[i] == 0) {
            rc = prune_from(b, i);
            if (rc != CT_OK)
                return rc;
        }
    }
    return CT_OK;
}

/* ---- chains (Caffe2's computeChains) ---- */

/* seen_count[n]: edges reaching n in a DFS from every root, each node
 * expanded once; roots count 1. */
int ct__graph_build_count_seen(struct ct__graph_build *b)
{
    size_t sp;
    int r;

    for (r = 0; r < b->n_roots; r++) {
        int root = b->roots[r];
        sp = 0;
        if (ct__graph_build_push(b, &sp, root, 0) != CT_OK)
            return CT_ENOMEM;
        b->seen_count[root]++;
        CT_ASSERT(b->seen_count[root] == 1,
                  "root node %d visit count must be == 1", root);
        while (sp > 0) {
            struct ct__graph_frame cur = b->stk[--sp];
            if (cur.aux < b->pc_len[cur.node]) {
                int c = b->pc[b->ch_off[cur.node] + cur.aux];
                b->seen_count[c]++;
                cur.aux++;
                if (ct__graph_build_push(b, &sp, cur.node, cur.aux) != CT_OK)
                    return CT_ENOMEM;
                if (b->seen_count[c] == 1 &&
                    ct__graph_build_push(b, &sp, c, 0) != CT_OK)
                    return CT_ENOMEM;
            }
        }
    }
    return CT_OK;
}

/* Caffe2's check_current_for_chaining on a CPU-only engine. */
static bool can_extend(const struct ct__graph_build *b, int cur)
{
    return b->seen_count[cur] == 1 &&
           (b->clen == 0 || b->numa[cur] == b->numa[b->cbuf[b->clen - 1]]);
}

static void commit_chain(struct ct__graph_build *b)
{
    if (b->clen == 0)
        return;
    b->ch_start[b->nch] = b->n_cops;
    b->ch_len[b->nch] = b->clen;
    memcpy(b->cops + b->n_cops, b->cbuf, (size_t)b->clen * sizeof(int));
    b->n_cops += b->clen;
    b->nch++;
    b->clen = 0;
}

/* Skips seen children of cur; if one remains, pushes cur (still pointing
 * at that child, as Caffe2 does) and then the child. */
static int depth_traverse(struct ct__graph_build *b, size_t *sp,
                          struct ct__graph_frame cur)
{
    const int *kids = b->pc + b->ch_off[cur.node];
    int n_kids = b->pc_len[cur.node];

    while (cur.aux < n_kids && b->seen[kids[cur.aux]])
        cur.aux++;
    if (cur.aux < n_kids) {
        if (ct__graph_build_push(b, sp, cur.node, cur.aux) != CT_OK ||
            ct__graph_build_push(b, sp, kids[cur.aux], 0) != CT_OK)
            return CT_ENOMEM;
    }
    return CT_OK;
}

int ct__graph_build_chains(struct ct__graph_build *b, ct_status_t *st)
{
    size_t sp;
    int r, n_seen = 0, rc = CT_OK;

    for (r = 0; r < b->n_roots && rc == CT_OK; r++) {
        sp = 0;
        rc = ct__graph_build_push(b, &sp, b->roots[r], 0);
        while (sp > 0 && rc == CT_OK) {
            struct ct__graph_frame cur = b->stk[--sp];
            int n_kids = b->pc_len[cur.node];
            if (b->seen[cur.node]) {
                /* Seen before: only its remaining children matter. */
                commit_chain(b);
                rc = depth_traverse(b, &sp, cur);
                continue;
            }
            b->seen[cur.node] = true;
            n_seen++;
            if (n_kids == 1) {
                /* Extend the chain, or start a new one, and follow the
                 * only child. */
                if (!can_extend(b, cur.node))
                    commit_chain(b);
                b->cbuf[b->clen++] = cur.node;
                rc =
                    ct__graph_build_push(b, &sp, b->pc[b->ch_off[cur.node]], 0);
            } else if (n_kids == 0 && can_extend(b, cur.node)) {
                b->cbuf[b->clen++] = cur.node;
                commit_chain(b);
            } else {
                /* A fork (or a join ending a path): its own chain. */
                commit_chain(b);
                b->cbuf[b->clen++] = cur.node;
                commit_chain(b);
                rc = depth_traverse(b, &sp, cur);
            }
        }
        commit_chain(b);
    }
    if (rc != CT_OK)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory computing the chains of %d ops",
                              b->n);
    if (n_seen != b->n)
        return ct_status_setf(st, CT_EINTERNAL,
                              "Haven't seen all the nodes, expected number "
                              "of nodes %d, but seen %d.",
                              b->n, n_seen);
    return CT_OK;
}
