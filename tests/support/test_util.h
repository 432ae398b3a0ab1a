/* cortado test support: builders for OperatorDef / NetDef and tensors.
 *
 * Everything here aborts the test (cmocka fail) on allocation failure, so
 * test bodies stay short. Messages built here are freed with
 * tu_op_free / tu_net_free (they use protobuf-c's unpacked layout through
 * the library allocator, so ct_proto_free also works).
 */
#ifndef CT_TEST_UTIL_H
#define CT_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/blob.h"
#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"
#include "proto/caffe2.pb-c.h"

/* Path of a shared data file ("<CT_DATA_DIR>/<rel>") in a static buffer;
 * NULL (and a printed notice) when the data folder is absent. */
const char *tu_data_path(const char *rel);
bool tu_have_data(void);

/* An OperatorDef of `type` with comma-separated input/output names
 * ("X,W,b"; "" for none). */
Caffe2__OperatorDef *tu_op(const char *type, const char *inputs,
                           const char *outputs);
void tu_op_set_name(Caffe2__OperatorDef *op, const char *name);
void tu_arg_i(Caffe2__OperatorDef *op, const char *name, int64_t v);
void tu_arg_f(Caffe2__OperatorDef *op, const char *name, float v);
void tu_arg_s(Caffe2__OperatorDef *op, const char *name, const char *v);
void tu_arg_ints(Caffe2__OperatorDef *op, const char *name, size_t n,
                 const int64_t *v);
void tu_arg_floats(Caffe2__OperatorDef *op, const char *name, size_t n,
                   const float *v);
void tu_arg_strings(Caffe2__OperatorDef *op, const char *name, size_t n,
                    const char *const *v);
void tu_op_free(Caffe2__OperatorDef *op);

/* A NetDef named `name` with comma-separated external inputs/outputs;
 * tu_net_add_op takes ownership of op. */
Caffe2__NetDef *tu_net(const char *name, const char *ext_inputs,
                       const char *ext_outputs);
void tu_net_add_op(Caffe2__NetDef *net, Caffe2__OperatorDef *op);
void tu_net_free(Caffe2__NetDef *net);

/* Engine + workspace fixture. */
struct tu_env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
};
void tu_env_init(struct tu_env *e);
void tu_env_destroy(struct tu_env *e);

/* Puts a tensor of dtype dt and shape into blob `name` (created if
 * needed), copying numel elements from data (may be NULL for zeros). */
ct_tensor_t *tu_feed(ct_workspace_t *ws, const char *name, ct_dtype_t dt,
                     int ndim, const int64_t *dims, const void *data);
ct_tensor_t *tu_feed_f32(ct_workspace_t *ws, const char *name, int ndim,
                         const int64_t *dims, const float *data);
/* The tensor in blob `name`; fails the test when absent. */
ct_tensor_t *tu_fetch(ct_workspace_t *ws, const char *name);

/* Runs one op (ct_workspace_run_operator_once); returns the code and
 * leaves the message in *st. */
int tu_run_op(ct_workspace_t *ws, const Caffe2__OperatorDef *op,
              ct_status_t *st);

/* Asserts max |a-b| <= atol + rtol*|b| elementwise, printing the first
 * mismatch. */
void tu_assert_close_f32(const float *a, const float *b, size_t n, float rtol,
                         float atol);
/* Asserts the status has `code` and its message contains `needle`. */
void tu_assert_status(const ct_status_t *st, int rc, int code,
                      const char *needle);

/* Deterministic pseudo-random floats in [lo, hi) from a seed. */
void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);

/* Allocation fault injection: after tu_fail_alloc_after(k), the k-th
 * library allocation from now (1-based) and every later one fails, until
 * tu_fail_alloc_off(). Counts allocations and live blocks for leak checks. */
void tu_fail_alloc_after(long k);
void tu_fail_alloc_off(void);
long tu_alloc_live(void); /* live blocks made through the hooks */

/* Concurrency watch: registers an engine-wide observer creator so every
 * net the engine creates afterwards (subnets included) counts how many
 * ops of type `op_type` run at the same moment. tu_overlap_max() is the
 * highest count seen: >= 2 proves two such ops really ran concurrently.
 * This checks scheduling, not speed, so it holds on a loaded machine as
 * long as the threads get scheduled at all. */
struct tu_overlap;
struct tu_overlap *tu_overlap_watch(ct_engine_t *eng, const char *op_type);
int tu_overlap_max(const struct tu_overlap *w);

#endif /* CT_TEST_UTIL_H */
