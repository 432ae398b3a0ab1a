/* cortado internal: the engine side of the op API (engine/op.c, args.c).
 *
 * ops/op_impl.h is what an op file sees; this header adds what only the
 * engine (nets, executors, the workspace's run_operator_once) needs: the
 * generic argument check run at op creation, the net-level argument
 * getters (NetDef.arg has the same rules as OperatorDef.arg), op creation
 * with the net's DeviceOption merged in, and running an op with a context
 * an executor built.
 */
#ifndef CT_ENGINE_OP_INTERNAL_H
#define CT_ENGINE_OP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cortado/error.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

/* Caffe2's ArgumentHelper construction plus the schema's argument specs
 * (spec §0.2), run by ct__op_create before anything is bound:
 *   - the same name twice with identical content is accepted (Caffe2 only
 *     warns); different content is CT_EARG "argument <name> given twice
 *     with different values";
 *   - every spec of op->schema->args that is present must have its field
 *     set (CT_EARG "Argument <name> does not have the right field:
 *     expected <f>, has <g>"); CT_ARG_ANY specs are left to the op;
 *   - a required spec that is absent is CT_EARG "Argument <name> is
 *     required by <Type> but missing".
 * Needs op->schema and op->def only. Never allocates. */
int ct__args_check(const ct_op_t *op, ct_status_t *st);

/* Same getters as ct__arg_* over a bare argument array, for NetDef.arg
 * (e.g. the net's "num_workers"). The first argument of that name wins;
 * duplicates are not checked here. NULL when absent. */
const Caffe2__Argument *ct__argv_find(Caffe2__Argument *const *args,
                                      size_t n_args, const char *name);
int ct__argv_int(Caffe2__Argument *const *args, size_t n_args, const char *name,
                 int64_t dflt, int64_t *out, ct_status_t *st);

/* ct__op_create with the net's DeviceOption (may be NULL) merged in the
 * way Caffe2's SimpleNet merges it: each field the op's own DeviceOption
 * sets wins, the others come from net_dev (numa_node_id, random_seed). */
int ct__op_create_ex(ct_workspace_t *ws, const Caffe2__OperatorDef *def,
                     const Caffe2__DeviceOption *net_dev, int idx,
                     ct_op_t **out, ct_status_t *st);

/* Runs op's kernel with a context the caller filled (op, eng, ith, nth,
 * numa_node, status slot, sched). Clears ctx->status first. A kernel that
 * returns an error without writing the status gets the code's default
 * text ("<Type> failed: <strerror>"), so the slot always explains a
 * failure. Returns the kernel's code. */
int ct__op_run(ct_op_ctx_t *ctx);

#endif /* CT_ENGINE_OP_INTERNAL_H */
