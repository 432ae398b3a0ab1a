/* Tests for engine/graph.c: dependency edges (spec §6.3), pruning and
 * chains (spec §6.4, including the three expected-chain tables of
 * caffe2/core/net_test.cc), the chain graph and the validation walk of
 * spec §6.1. Pure NetDefs: no ops, no workspace. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "net_spec.h"
#include "test_util.h"

/* ---- fixtures ---- */

/* Each test owns one NetDef and one graph; teardown frees both. */
struct fx {
    Caffe2__NetDef *net;
    struct ct__graph g;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

/* Frees what tu_net_free does not know about (control inputs and device
 * options added by the helpers below), then the net and the graph. */
static int teardown(void **state)
{
    struct fx *f = *state;
    size_t i, k;

    if (f->net != NULL) {
        for (i = 0; i < f->net->n_op; i++) {
            Caffe2__OperatorDef *op = f->net->op[i];
            for (k = 0; k < op->n_control_input; k++)
                free(op->control_input[k]);
            free(op->control_input);
            op->n_control_input = 0;
            if (op->device_option != NULL) {
                free(op->device_option->node_name);
                free(op->device_option);
                op->device_option = NULL;
            }
        }
        tu_net_free(f->net);
    }
    ct__graph_destroy(&f->g);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static Caffe2__OperatorDef *add(Caffe2__NetDef *net, const char *in,
                                const char *out)
{
    Caffe2__OperatorDef *op = tu_op("Op", in, out);
    tu_net_add_op(net, op);
    return op;
}

static void add_control(Caffe2__OperatorDef *op, const char *name)
{
    op->control_input =
        realloc(op->control_input, (op->n_control_input + 1) * sizeof(char *));
    assert_non_null(op->control_input);
    op->control_input[op->n_control_input] = strdup(name);
    assert_non_null(op->control_input[op->n_control_input]);
    op->n_control_input++;
}

static Caffe2__DeviceOption *devopt(Caffe2__OperatorDef *op)
{
    if (op->device_option == NULL) {
        op->device_option = calloc(1, sizeof(*op->device_option));
        assert_non_null(op->device_option);
        caffe2__device_option__init(op->device_option);
    }
    return op->device_option;
}

static void set_numa(Caffe2__OperatorDef *op, int node)
{
    devopt(op)->has_numa_node_id = 1;
    devopt(op)->numa_node_id = node;
}

static void build(struct fx *f)
{
    ct_status_t st;
    ct_status_clear(&st);
    if (ct__graph_init(&f->g, f->net, &st) != CT_OK)
        fail_msg("ct__graph_init: %s", st.msg);
}

/* The chains as Caffe2's map prints them: {first:[ops],...}. */
static const char *chains_str(const struct ct__graph *g, char *buf, size_t size)
{
    size_t off = 0;
    int c, k;

    off += (size_t)snprintf(buf + off, size - off, "{");
    for (c = 0; c < g->n_chains; c++) {
        int first = g->chain_ops[g->chain_off[c]];
        off += (size_t)snprintf(buf + off, size - off, "%s%d:[", c ? "," : "",
                                first);
        for (k = g->chain_off[c]; k < g->chain_off[c + 1]; k++)
            off += (size_t)snprintf(buf + off, size - off, "%s%d",
                                    k > g->chain_off[c] ? "," : "",
                                    g->chain_ops[k]);
        off += (size_t)snprintf(buf + off, size - off, "]");
    }
    snprintf(buf + off, size - off, "}");
    return buf;
}

/* A CSR list as "0,2,5". */
static const char *list_str(const int *off, const int *idx, int i, char *buf,
                            size_t size)
{
    size_t o = 0;
    int k;

    buf[0] = '\0';
    for (k = off[i]; k < off[i + 1]; k++)
        o += (size_t)snprintf(buf + o, size - o, "%s%d", k > off[i] ? "," : "",
                              idx[k]);
    return buf;
}

#define ASSERT_CHAINS(g, want)                                                 \
    do {                                                                       \
        char b_[512];                                                          \
        assert_string_equal(chains_str((g), b_, sizeof(b_)), (want));          \
    } while (0)

#define ASSERT_CHILDREN(g, i, want)                                            \
    do {                                                                       \
        char b_[256];                                                          \
        assert_string_equal(                                                   \
            list_str((g)->child_off, (g)->children, (i), b_, sizeof(b_)),      \
            (want));                                                           \
    } while (0)

#define ASSERT_PARENTS(g, i, want)                                             \
    do {                                                                       \
        char b_[256];                                                          \
        assert_string_equal(                                                   \
            list_str((g)->parent_off, (g)->parents, (i), b_, sizeof(b_)),      \
            (want));                                                           \
    } while (0)

/* Makes f's net: tu_net(name, ext_in, ext_out) plus the ops of the spec
 * line `ops` (net_spec.h), all of type "Op". Returns f. */
static struct fx *net_of(void **state, const char *name, const char *ext_in,
                         const char *ext_out, const char *ops)
{
    struct fx *f = *state;

    f->net = tu_net_of(name, ext_in, ext_out, "Op", ops);
    return f;
}

/* net_of, then the graph. */
static struct fx *graph_of(void **state, const char *name, const char *ext_in,
                           const char *ext_out, const char *ops)
{
    struct fx *f = net_of(state, name, ext_in, ext_out, ops);
    build(f);
    return f;
}

/* Chains 0:[0], 1:[1], 2:[2,3]; chain 2 waits for chains 0 and 1. */
#define FORK_JOIN_OPS "x>a y>b a,b>c c>d"

/* ---- tests: the expected-chain tables of spec §6.4 ---- */

static void test_graph_init_linear_gives_one_chain(void **state)
{
    struct fx *f = graph_of(state, "linear", "in", "out", "in>h h>out");

    ASSERT_CHAINS(&f->g, "{0:[0,1]}");
    assert_int_equal(f->g.n_edges, 1);
}

static void test_graph_init_fork_gives_three_chains(void **state)
{
    struct fx *f = graph_of(state, "fork", "in", "", "in>a a>b a>c");

    ASSERT_CHAINS(&f->g, "{0:[0],1:[1],2:[2]}");
    ASSERT_CHILDREN(&f->g, 0, "1,2");
}

static void test_graph_init_fork_join_chains_join_with_tail(void **state)
{
    struct fx *f = graph_of(state, "fork_join", "x,y", "", FORK_JOIN_OPS);

    ASSERT_CHAINS(&f->g, "{0:[0],1:[1],2:[2,3]}");
    ASSERT_PARENTS(&f->g, 2, "0,1");
}

/* ---- tests: edges (spec §6.3) ---- */

static void test_graph_init_read_after_write_adds_edge(void **state)
{
    struct fx *f = graph_of(state, "raw", "", "", ">x x>y");

    ASSERT_CHILDREN(&f->g, 0, "1");
    ASSERT_PARENTS(&f->g, 1, "0");
}

static void test_graph_init_write_after_write_adds_edge(void **state)
{
    struct fx *f = graph_of(state, "waw", "", "", ">x >x");

    ASSERT_CHILDREN(&f->g, 0, "1");
    assert_int_equal(f->g.n_edges, 1);
}

static void test_graph_init_write_after_read_adds_edge(void **state)
{
    /* No creator: only the reader -> writer edge. */
    struct fx *f = graph_of(state, "war", "", "", "x>y >x");

    ASSERT_CHILDREN(&f->g, 0, "1");
    assert_int_equal(f->g.n_edges, 1);
}

static void test_graph_init_raw_waw_war_together(void **state)
{
    /* 0 writes x, 1 and 2 read it, 3 rewrites it: 0->1, 0->2 (RAW),
     * 0->3 (WAW), 1->3, 2->3 (WAR). A later reader 4 depends on 3 only. */
    struct fx *f = graph_of(state, "mix", "", "", ">x x>a x>b >x x>c");

    ASSERT_CHILDREN(&f->g, 0, "1,2,3");
    ASSERT_PARENTS(&f->g, 3, "0,1,2");
    ASSERT_PARENTS(&f->g, 4, "3");
    assert_int_equal(f->g.n_edges, 6);
}

static void test_graph_init_readers_reset_after_write(void **state)
{
    /* 0 reads x; 1 writes x (WAR 0->1); 2 writes x again: WAW 1->2 only,
     * since the readers of x were cleared by the write of 1. */
    struct fx *f = graph_of(state, "reset", "", "", "x>a >x >x");

    ASSERT_PARENTS(&f->g, 2, "1");
}

static void test_graph_init_control_input_adds_edges(void **state)
{
    /* 1 has no data input but a control_input on 0's output: 0 -> 1.
     * 2 writes that blob: as a reader, 1 gets a WAR edge 1 -> 2. */
    struct fx *f = net_of(state, "ctrl", "", "", ">done >y >done");

    add_control(f->net->op[1], "done");
    build(f);
    ASSERT_CHILDREN(&f->g, 0, "1,2");
    ASSERT_PARENTS(&f->g, 2, "0,1");
}

static void test_graph_init_inplace_drops_self_edge(void **state)
{
    struct fx *f = graph_of(state, "inplace", "", "", ">x x>x x>y");

    ASSERT_CHILDREN(&f->g, 1, "2");
    ASSERT_PARENTS(&f->g, 1, "0");
    assert_int_equal(f->g.n_edges, 2);
    ASSERT_CHAINS(&f->g, "{0:[0,1,2]}");
}

static void test_graph_init_duplicate_edges_are_merged(void **state)
{
    /* 1 reads a and b, both written by 0, and then writes a: one edge. */
    struct fx *f = graph_of(state, "dup", "", "", ">a,b a,b,a>a");

    ASSERT_CHILDREN(&f->g, 0, "1");
    assert_int_equal(f->g.n_edges, 1);
}

static void test_graph_init_empty_net_has_no_chains(void **state)
{
    struct fx *f = graph_of(state, "empty", "", "", "");

    assert_int_equal(f->g.n_nodes, 0);
    assert_int_equal(f->g.n_chains, 0);
}

/* ---- tests: pruning and chains ---- */

static void test_graph_init_prunes_transitive_edge(void **state)
{
    /* 0 -> 1 -> 2 and 0 -> 2: the direct edge is implied. */
    struct fx *f = graph_of(state, "tri", "", "", ">a a>b a,b>c");
    char b[64];

    ASSERT_CHILDREN(&f->g, 0, "1,2"); /* unpruned graph keeps it */
    assert_int_equal(f->g.n_pruned_edges, 2);
    assert_string_equal(
        list_str(f->g.pruned_child_off, f->g.pruned_children, 0, b, sizeof(b)),
        "1");
    assert_string_equal(
        list_str(f->g.pruned_parent_off, f->g.pruned_parents, 2, b, sizeof(b)),
        "1");
    ASSERT_CHAINS(&f->g, "{0:[0,1,2]}");
}

/* A node with a wide fan-in takes the path-driven pruning branch (its
 * parent list is much longer than the DFS path): the transitive edge
 * 0 -> sink must still go, and every middle -> sink edge must stay. */
static void
test_graph_init_prunes_transitive_edge_into_wide_fan_in(void **state)
{
    struct fx *f = *state;
    char in[200 * 8 + 8], out[16];
    size_t off;
    int i, k, sink = 201;

    f->net = tu_net("fan", "", "");
    add(f->net, "", "r");
    off = (size_t)snprintf(in, sizeof(in), "r");
    for (i = 1; i <= 200; i++) {
        snprintf(out, sizeof(out), "m%d", i);
        add(f->net, "r", out);
        off += (size_t)snprintf(in + off, sizeof(in) - off, ",%s", out);
    }
    add(f->net, in, "s");
    build(f);
    /* Unpruned: 0 is a parent of the sink. */
    assert_int_equal(f->g.parents[f->g.parent_off[sink]], 0);
    assert_int_equal(f->g.parent_off[sink + 1] - f->g.parent_off[sink], 201);
    /* Pruned: only the 200 middles remain, in order. */
    assert_int_equal(
        f->g.pruned_parent_off[sink + 1] - f->g.pruned_parent_off[sink], 200);
    for (k = 0; k < 200; k++)
        assert_int_equal(f->g.pruned_parents[f->g.pruned_parent_off[sink] + k],
                         k + 1);
    assert_int_equal(f->g.pruned_child_off[1] - f->g.pruned_child_off[0], 200);
    assert_int_equal(f->g.n_pruned_edges, 400);
}

static void test_graph_init_diamond_splits_chains(void **state)
{
    struct fx *f = graph_of(state, "diamond", "", "", ">a a>b a>c b,c>d");

    ASSERT_CHAINS(&f->g, "{0:[0],1:[1],2:[2],3:[3]}");
    assert_int_equal(f->g.n_pruned_edges, 4);
}

static void test_graph_init_numa_change_splits_chain(void **state)
{
    struct fx *f = net_of(state, "numa", "in", "", "in>a a>b b>c");

    set_numa(f->net->op[1], 1);
    set_numa(f->net->op[2], 1);
    build(f);
    ASSERT_CHAINS(&f->g, "{0:[0],1:[1,2]}");
    assert_int_equal(ct__netdef_op_numa(f->net, 0), -1);
    assert_int_equal(ct__netdef_op_numa(f->net, 2), 1);
}

static void test_graph_init_chain_graph_uses_unpruned_edges(void **state)
{
    struct fx *f = graph_of(state, "fork_join", "x,y", "", FORK_JOIN_OPS);
    char b[64];

    assert_string_equal(
        list_str(f->g.chain_parent_off, f->g.chain_parents, 2, b, sizeof(b)),
        "0,1");
    assert_string_equal(
        list_str(f->g.chain_child_off, f->g.chain_children, 0, b, sizeof(b)),
        "2");
    assert_int_equal(f->g.op_chain[3], 2);
    assert_int_equal(f->g.chain_topo[2], 2);
}

/* ---- tests: a large random DAG ---- */

/* Edges by the definition, O(n^2): for each op j and each name it touches,
 * the last writer w < j and the readers in (w, j). */
static bool reads(const Caffe2__OperatorDef *op, const char *name)
{
    size_t k;
    for (k = 0; k < op->n_input; k++)
        if (strcmp(op->input[k], name) == 0)
            return true;
    return false;
}

static bool writes(const Caffe2__OperatorDef *op, const char *name)
{
    size_t k;
    for (k = 0; k < op->n_output; k++)
        if (strcmp(op->output[k], name) == 0)
            return true;
    return false;
}

static void reference_edges(const Caffe2__NetDef *net, unsigned char *adj)
{
    int n = (int)net->n_op, i, j, w;
    size_t k;

    for (j = 0; j < n; j++) {
        const Caffe2__OperatorDef *op = net->op[j];
        size_t n_names = op->n_input + op->n_output;
        for (k = 0; k < n_names; k++) {
            const char *b =
                k < op->n_input ? op->input[k] : op->output[k - op->n_input];
            for (w = j - 1; w >= 0 && !writes(net->op[w], b); w--)
                ;
            if (w >= 0 && w != j)
                adj[w * n + j] = 1; /* RAW or WAW */
            if (!writes(op, b))
                continue;
            for (i = w + 1; i < j; i++) /* WAR */
                if (reads(net->op[i], b))
                    adj[i * n + j] = 1;
        }
    }
}

/* Bit j of row i of reach (w words per row): j reachable from i by the
 * given CSR children. Rows are filled from the last node back, so every
 * child's row is complete when it is merged. */
static void closure(int n, const int *off, const int *idx, uint64_t *reach)
{
    size_t w = ((size_t)n + 63) / 64, m;
    int i, k;

    memset(reach, 0, (size_t)n * w * sizeof(uint64_t));
    for (i = n - 1; i >= 0; i--) {
        for (k = off[i]; k < off[i + 1]; k++) {
            int c = idx[k];
            reach[(size_t)i * w + (size_t)c / 64] |= 1ull << (c % 64);
            for (m = 0; m < w; m++)
                reach[(size_t)i * w + m] |= reach[(size_t)c * w + m];
        }
    }
}

static void test_graph_init_random_dag_chains_are_paths(void **state)
{
    struct fx *f = *state;
    enum { N = 1000, BLOBS = 300 };
    unsigned char *adj;
    uint64_t *r1, *r2;
    size_t words = (N + 63) / 64;
    int *pos, i, k, c, e;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char in[64], out[64];

#define NEXT() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    f->net = tu_net("random", "", "");
    for (i = 0; i < N; i++) {
        int n_in = (int)(NEXT() % 3), n_out = 1 + (int)(NEXT() % 2);
        size_t o = 0;
        in[0] = '\0';
        for (k = 0; k < n_in; k++)
            o += (size_t)snprintf(in + o, sizeof(in) - o, "%sb%d", k ? "," : "",
                                  (int)(NEXT() % BLOBS));
        o = 0;
        for (k = 0; k < n_out; k++)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%sb%d",
                                  k ? "," : "", (int)(NEXT() % BLOBS));
        add(f->net, in, out);
    }
#undef NEXT
    build(f);
    assert_int_equal(f->g.n_nodes, N);

    /* Edges match the definition exactly. */
    adj = calloc((size_t)N * N, 1);
    r1 = calloc((size_t)N * words, sizeof(uint64_t));
    r2 = calloc((size_t)N * words, sizeof(uint64_t));
    pos = calloc(N, sizeof(int));
    assert_true(adj && r1 && r2 && pos);
    reference_edges(f->net, adj);
    e = 0;
    for (i = 0; i < N; i++) {
        for (k = f->g.child_off[i]; k < f->g.child_off[i + 1]; k++) {
            assert_true(f->g.children[k] > i);
            assert_true(adj[i * N + f->g.children[k]]);
            e++;
        }
    }
    for (i = 0; i < N * N; i++)
        e -= adj[i];
    assert_int_equal(e, 0);

    /* Pruning keeps reachability. */
    closure(N, f->g.child_off, f->g.children, r1);
    closure(N, f->g.pruned_child_off, f->g.pruned_children, r2);
    assert_memory_equal(r1, r2, (size_t)N * words * sizeof(uint64_t));

    /* Chains partition the ops, and each is a path of the pruned graph. */
    assert_int_equal(f->g.chain_off[f->g.n_chains], N);
    memset(pos, -1, N * sizeof(int));
    for (c = 0; c < f->g.n_chains; c++) {
        for (k = f->g.chain_off[c]; k < f->g.chain_off[c + 1]; k++) {
            int op = f->g.chain_ops[k];
            assert_int_equal(f->g.op_chain[op], c);
            assert_int_equal(pos[op], -1);
            pos[op] = 0;
            if (k > f->g.chain_off[c]) {
                int prev = f->g.chain_ops[k - 1];
                /* prev's only pruned child is op, op's only parent prev. */
                assert_int_equal(f->g.pruned_child_off[prev + 1] -
                                     f->g.pruned_child_off[prev],
                                 1);
                assert_int_equal(
                    f->g.pruned_children[f->g.pruned_child_off[prev]], op);
                assert_int_equal(f->g.pruned_parent_off[op + 1] -
                                     f->g.pruned_parent_off[op],
                                 1);
            }
        }
        if (c > 0)
            assert_true(f->g.chain_ops[f->g.chain_off[c]] >
                        f->g.chain_ops[f->g.chain_off[c - 1]]);
    }

    /* The net is big enough to have forks, joins and real chains. */
    assert_true(f->g.n_chains > 10 && f->g.n_chains < N);
    assert_true(f->g.n_pruned_edges < f->g.n_edges);

    /* The chain order respects every op edge. */
    for (k = 0; k < f->g.n_chains; k++)
        pos[f->g.chain_topo[k]] = k;
    for (i = 0; i < N; i++) {
        for (k = f->g.child_off[i]; k < f->g.child_off[i + 1]; k++) {
            int cu = f->g.op_chain[i], cv = f->g.op_chain[f->g.children[k]];
            int m;
            bool found = false;
            if (cu == cv)
                continue;
            assert_true(pos[cu] < pos[cv]);
            for (m = f->g.chain_parent_off[cv];
                 m < f->g.chain_parent_off[cv + 1]; m++)
                found |= f->g.chain_parents[m] == cu;
            assert_true(found);
        }
    }
    free(adj);
    free(r1);
    free(r2);
    free(pos);
}

/* ---- tests: allocation failures ---- */

static void test_graph_init_alloc_failure_returns_enomem(void **state)
{
    struct fx *f = *state;
    ct_status_t st;
    long live, k;
    int rc;

    net_of(state, "fork_join", "x,y", "", FORK_JOIN_OPS);
    live = tu_alloc_live();
    for (k = 1;; k++) {
        tu_fail_alloc_after(k);
        rc = ct__graph_init(&f->g, f->net, &st);
        tu_fail_alloc_off();
        if (rc == CT_OK)
            break;
        tu_assert_status(&st, rc, CT_ENOMEM, "out of memory");
        assert_null(f->g.mem);
        assert_int_equal(f->g.n_nodes, 0);
        assert_int_equal(tu_alloc_live(), live);
    }
    assert_true(k > 1);
    ASSERT_CHAINS(&f->g, "{0:[0],1:[1],2:[2,3]}");
}

/* ---- tests: validation (spec §6.1) ---- */

/* ct__netdef_validate of f's net with extra[0..n_extra), no engine. */
static int validate(const struct fx *f, const char *const *extra,
                    size_t n_extra, ct_status_t *st)
{
    return ct__netdef_validate(f->net, extra, n_extra, NULL, st);
}

static void test_netdef_validate_unknown_source_returns_egraph(void **state)
{
    struct fx *f = net_of(state, "n1", "x", "", "x>y y,z>w");
    ct_status_t st;
    int rc;

    tu_op_set_name(f->net->op[1], "second");
    rc = validate(f, NULL, 0, &st);
    tu_assert_status(&st, rc, CT_EGRAPH,
                     "op 1 Op: Source for input z is unknown for net n1");
    assert_int_equal(st.node, 1);
    assert_string_equal(st.op, "Op");
}

static void test_netdef_validate_extra_input_is_known(void **state)
{
    struct fx *f = net_of(state, "n1", "x", "", "x,z>y");
    const char *extra[] = {"z"};
    ct_status_t st;

    assert_int_equal(validate(f, extra, 1, &st), CT_OK);
}

static void
test_netdef_validate_undeclared_inputs_ok_without_externals(void **state)
{
    struct fx *f = net_of(state, "lenient", "", "", "never_declared>y");
    ct_status_t st;

    assert_int_equal(validate(f, NULL, 0, &st), CT_OK);
}

static void test_netdef_validate_unproduced_output_returns_egraph(void **state)
{
    /* Both "zz" and "q" are missing: the first in std::set order is "q". */
    struct fx *f = net_of(state, "n2", "x", "y,zz,x,q", "x>y");
    ct_status_t st;
    int rc = validate(f, NULL, 0, &st);

    tu_assert_status(&st, rc, CT_EGRAPH,
                     "Some of the blobs are declared as output but never "
                     "produced by the net n2, the first one is q");
}

static void test_netdef_validate_node_name_returns_egraph(void **state)
{
    struct fx *f = net_of(state, "n3", "", "", ">a a>b");
    ct_status_t st;
    int rc;

    devopt(f->net->op[1])->node_name = strdup("host7");
    rc = validate(f, NULL, 0, &st);
    tu_assert_status(&st, rc, CT_EGRAPH,
                     "op 1 Op: node_name must be empty for all operators at "
                     "execution time");
    assert_int_equal(st.node, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_graph_init_linear_gives_one_chain),
        T(test_graph_init_fork_gives_three_chains),
        T(test_graph_init_fork_join_chains_join_with_tail),
        T(test_graph_init_read_after_write_adds_edge),
        T(test_graph_init_write_after_write_adds_edge),
        T(test_graph_init_write_after_read_adds_edge),
        T(test_graph_init_raw_waw_war_together),
        T(test_graph_init_readers_reset_after_write),
        T(test_graph_init_control_input_adds_edges),
        T(test_graph_init_inplace_drops_self_edge),
        T(test_graph_init_duplicate_edges_are_merged),
        T(test_graph_init_empty_net_has_no_chains),
        T(test_graph_init_prunes_transitive_edge),
        T(test_graph_init_prunes_transitive_edge_into_wide_fan_in),
        T(test_graph_init_diamond_splits_chains),
        T(test_graph_init_numa_change_splits_chain),
        T(test_graph_init_chain_graph_uses_unpruned_edges),
        T(test_graph_init_random_dag_chains_are_paths),
        T(test_graph_init_alloc_failure_returns_enomem),
        T(test_netdef_validate_unknown_source_returns_egraph),
        T(test_netdef_validate_extra_input_is_known),
        T(test_netdef_validate_undeclared_inputs_ok_without_externals),
        T(test_netdef_validate_unproduced_output_returns_egraph),
        T(test_netdef_validate_node_name_returns_egraph),
    };
#undef T
    return cmocka_run_group_tests_name("engine.graph", tests, NULL, NULL);
}
