/* cortado: the validation walk of a NetDef (spec §6.1) and the effective
 * NUMA node of its ops. Blob names are interned with the graph's name table
 * (graph.c), sized up front so it never grows.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/graph_impl.h"

static const char *type_of(const Caffe2__OperatorDef *op)
{
    return op->type != NULL ? op->type : "";
}

int ct__netdef_op_numa(const Caffe2__NetDef *def, size_t i)
{
    const Caffe2__DeviceOption *d = def->op[i]->device_option;

    if (d != NULL && d->has_numa_node_id)
        return d->numa_node_id;
    if (def->device_option != NULL && def->device_option->has_numa_node_id)
        return def->device_option->numa_node_id;
    return -1;
}

/* ---- validation (spec §6.1) ---- */

/* Marks st as the error of op i. */
static void op_status(ct_status_t *st, size_t i, const Caffe2__OperatorDef *op)
{
    if (st == NULL)
        return;
    st->node = (int)i;
    snprintf(st->op, sizeof(st->op), "%s", type_of(op));
}

int ct__netdef_validate(const Caffe2__NetDef *def, const char *const *extra,
                        size_t n_extra, ct_engine_t *eng, ct_status_t *st)
{
    const char *net_name = def->name != NULL ? def->name : "";
    const char *missing = NULL;
    struct ct__graph_names t;
    bool *known = NULL;
    size_t total, i, k;
    int rc = CT_OK;

    for (i = 0; i < def->n_op; i++) {
        const Caffe2__DeviceOption *d = def->op[i]->device_option;
        if (d != NULL && d->node_name != NULL && d->node_name[0] != '\0') {
            rc = ct_status_setf(st, CT_EGRAPH,
                                "op %zu %s: node_name must be empty for all "
                                "operators at execution time (got \"%s\")",
                                i, type_of(def->op[i]), d->node_name);
            op_status(st, i, def->op[i]);
            return rc;
        }
    }

    total = def->n_external_input + def->n_external_output + n_extra;
    for (i = 0; i < def->n_op; i++)
        total += def->op[i]->n_input + def->op[i]->n_output;
    if (total > (size_t)INT_MAX / 4)
        return ct_status_setf(st, CT_EINVAL,
                              "net %s: %zu blob names are more than cortado "
                              "can index",
                              net_name, total);
    if (ct__graph_names_init(&t, total) != CT_OK)
        goto fail_names;
    known = ct__calloc(total + 1, sizeof(*known));
    if (known == NULL)
        goto fail_known;

    for (k = 0; k < def->n_external_input; k++)
        known[ct__graph_names_intern(&t, def->external_input[k])] = true;
    for (k = 0; k < n_extra; k++)
        known[ct__graph_names_intern(&t, extra[k])] = true;
    for (i = 0; i < def->n_op && rc == CT_OK; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        for (k = 0; k < op->n_input; k++) {
            if (known[ct__graph_names_intern(&t, op->input[k])])
                continue;
            if (def->n_external_input > 0) {
                rc = ct_status_setf(st, CT_EGRAPH,
                                    "op %zu %s: Source for input %s is "
                                    "unknown for net %s",
                                    i, type_of(op), op->input[k], net_name);
                op_status(st, i, op);
                break;
            }
            if (eng != NULL && eng->cfg.verbose)
                ct__engine_notice_once(eng, CT_NOTICE_UNDECLARED_INPUT,
                                       "op %zu %s: input %s is not declared "
                                       "by net %s, which declares no "
                                       "external inputs (reported once)",
                                       i, type_of(op), op->input[k], net_name);
        }
        for (k = 0; k < op->n_output; k++)
            known[ct__graph_names_intern(&t, op->output[k])] = true;
    }
    if (rc == CT_OK) {
        for (k = 0; k < def->n_external_output; k++) {
            const char *x = def->external_output[k];
            if (!known[ct__graph_names_intern(&t, x)] &&
                (missing == NULL || strcmp(x, missing) < 0))
                missing = x;
        }
        if (missing != NULL)
            rc = ct_status_setf(st, CT_EGRAPH,
                                "Some of the blobs are declared as output but "
                                "never produced by the net %s, the first one "
                                "is %s",
                                net_name, missing);
    }
    ct__free(known);
    ct__graph_names_destroy(&t);
    return rc;

fail_known:
    ct__graph_names_destroy(&t);
fail_names:
    return ct_status_setf(st, CT_ENOMEM,
                          "net %s: out of memory validating %zu blob names",
                          net_name, total);
}
