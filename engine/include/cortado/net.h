/* cortado: nets, compiled Caffe2 NetDefs.
 *
 * ct_net_new validates a NetDef (spec §6.1), creates one operator per
 * OperatorDef through the registry (schema and argument checks happen
 * here, not at run time), binds every input and output to a blob of the
 * workspace, builds the dependency graph (read-after-write,
 * write-after-write, write-after-read and control_input edges), prunes
 * transitive edges and fuses linear runs into chains. The compiled net is
 * immutable: several threads may run different nets at once, and the
 * parallel executor reads the graph without locks.
 * Thread-safety: one net runs at most once at a time (CT_EBUSY otherwise).
 */
#ifndef CORTADO_NET_H
#define CORTADO_NET_H

#include <stdbool.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Executors. Every Caffe2 net type string maps to one of these. */
enum ct_executor {
    CT_EXECUTOR_SIMPLE = 1, /* ops in order on the calling thread */
    CT_EXECUTOR_DAG = 2,    /* chains as tasks on the engine's pool */
    CT_EXECUTOR_COUNT
};

/* Maps a NetDef `type` string to an executor: "" and "simple",
 * "simple_refcount", "async_simple", "rnn" -> SIMPLE; "dag", "prof_dag",
 * "async_dag", "async_polling", "async_scheduling", "parallel" -> DAG.
 * CT_EINVAL "unknown net type ..." otherwise. */
CT_API int ct_executor_from_net_type(const char *type, enum ct_executor *out,
                                     ct_status_t *st);
CT_API const char *ct_executor_name(enum ct_executor e);

/* Compile-time options; zero-initialise. */
struct ct_net_config {
    /* Executor override: CT_NET_EXECUTOR_FROM_DEF (0, so a zeroed
     * config keeps the NetDef's type) or an enum ct_executor value.
     * Other values: CT_EINVAL. */
    int executor;
    /* Worker count override; 0 = NetDef num_workers, its "num_workers"
     * argument, or the engine default. The first source that is set and
     * non-zero wins, in that order (Caffe2 reads only the field; DESIGN
     * §4 also reads the argument, which must use `i`, else CT_EARG). A
     * negative value or one above 4096 from any source is CT_EINVAL
     * naming the source and value; nothing is clamped. The resolved
     * count is at least 1 (ct_net_num_workers). */
    int num_workers;
    /* Blob names the caller will feed that count as declared external
     * inputs (for nets that read inputs they do not declare). */
    const char *const *extra_inputs;
    size_t n_extra_inputs;
    /* Turns off op fusion (false, the zeroed default, fuses). Fusion:
     * a Conv whose output only an inference SpatialBN (is_test = 1, same
     * order) reads, and that is no external input or output, applies the
     * BN's per-channel affine while writing its output tiles and writes
     * the BN's output itself; the BN op then only checks its inputs. The
     * result is bit for bit the unfused one; the Conv's own output blob
     * is left unwritten, and profiles show the BN with about no time.
     * The environment variable CT_NO_FUSE=1 turns it off as well. */
    bool no_fuse;
    /* Blobs the caller will read after runs (e.g. to dump them): fusion
     * never leaves one of them unwritten. External outputs are kept
     * anyway. Read by ct_net_new only. */
    const char *const *keep_blobs;
    size_t n_keep_blobs;
};
#define CT_NET_EXECUTOR_FROM_DEF 0

/* Compiles def against ws. def is copied; the caller keeps ownership of
 * it. Every external input must already exist in ws; outputs are created
 * as empty blobs (as Caffe2 does). cfg may be NULL. Caller frees with
 * ct_net_free. Errors: CT_EGRAPH (validation), CT_ESCHEMA, CT_EARG,
 * CT_ENOTFOUND (unknown op type or missing input blob), CT_EINVAL,
 * CT_ENOMEM; the message names the op index, type and blob. */
CT_API int ct_net_new(ct_workspace_t *ws, const ct_netdef_t *def,
                      const struct ct_net_config *cfg, ct_net_t **out,
                      ct_status_t *st);
/* Frees the net (its ops and graph; not the blobs, which belong to the
 * workspace). Must not race a run of the net (asserted). NULL allowed. */
CT_API void ct_net_free(ct_net_t *net);

/* Runs the net once. On failure st reads
 * `node <i> "<name>" (<Type>): <message>`, st->node is i and st->op the
 * type; ops not started when the failure was seen are skipped. A second
 * concurrent run of the same net returns CT_EBUSY at once and does not
 * disturb the first. Different nets may run concurrently. */
CT_API int ct_net_run(ct_net_t *net, ct_status_t *st);

CT_API const char *ct_net_name(const ct_net_t *net);
CT_API enum ct_executor ct_net_executor(const ct_net_t *net);
CT_API int ct_net_num_workers(const ct_net_t *net);
CT_API int ct_net_n_ops(const ct_net_t *net);
/* The (copied) NetDef the net was compiled from; owned by the net. */
CT_API const ct_netdef_t *ct_net_def(const ct_net_t *net);
CT_API const char *ct_net_op_type(const ct_net_t *net, int i);
CT_API const char *ct_net_op_name(const ct_net_t *net, int i);

/* Dependency graph after de-duplication (before pruning). Arrays owned by
 * the net. */
CT_API int ct_net_op_parents(const ct_net_t *net, int i, const int **idx);
CT_API int ct_net_op_children(const ct_net_t *net, int i, const int **idx);
/* Chains: linear runs of ops executed as one task. Chain c holds ops
 * ops[0..n) (ascending execution order); returns n. */
CT_API int ct_net_n_chains(const ct_net_t *net);
CT_API int ct_net_chain_ops(const ct_net_t *net, int c, const int **ops);
/* Chains this chain waits for / that wait for it (unpruned op edges). */
CT_API int ct_net_chain_parents(const ct_net_t *net, int c, const int **idx);
CT_API int ct_net_chain_children(const ct_net_t *net, int c, const int **idx);

/* ---- profiling (scheduling overhead) ----
 * Off by default. While on, every run records the figures below; they
 * accumulate over runs until profiling is turned off (which drops them).
 * Cost: a few clock reads per task and per op. */
struct ct_net_profile {
    uint64_t runs;             /* profiled runs */
    uint64_t wall_ns;          /* sum of the runs' wall times */
    uint64_t n_tasks;          /* tasks (chains) run */
    uint64_t ready_latency_ns; /* sum of ready -> start latencies */
    uint64_t kernel_ns;        /* time inside kernels, all threads */
    uint64_t overhead_ns;      /* time in tasks outside kernels */
    /* Longest dependency path of op times (summed over runs). */
    uint64_t critical_path_ns;
    int threads; /* threads that could run kernels in the last run:
                    executor participants, or the engine's pool when
                    ops split their work over it (intra_op not SERIAL) */
    /* (kernel_ns - intra_op_wait_ns + intra_op_ns) / (wall_ns * threads):
     * 1.0 means every thread did kernel work all the time. */
    double parallel_efficiency;
    /* Time other threads spent running ct_parallel_for chunks of this
     * net's kernels (counted as work), and the time the kernels spent
     * waiting for those chunks (not counted). Not measured for OpenMP
     * teams (intra_op OPENMP under the simple executor). */
    uint64_t intra_op_ns;
    uint64_t intra_op_wait_ns;
};
/* Turns profiling on (allocating the counters) or off (freeing them).
 * CT_EBUSY while the net runs, CT_ENOMEM. */
CT_API int ct_net_set_profiling(ct_net_t *net, bool on, ct_status_t *st);
/* The accumulated figures. CT_ESTATE when profiling is off. */
CT_API int ct_net_get_profile(const ct_net_t *net, struct ct_net_profile *out,
                              ct_status_t *st);
/* Time spent in op i over the profiled runs. CT_EINVAL when profiling is
 * off or i is out of range. */
CT_API int ct_net_op_time_ns(const ct_net_t *net, int i, uint64_t *total_ns);

/* Writes the op graph summary as text (ops by type, chains) to a buffer
 * the caller frees with ct_free. */
CT_API int ct_net_describe(const ct_net_t *net, char **out, ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_NET_H */
