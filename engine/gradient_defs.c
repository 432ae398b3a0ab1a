/* cortado: OperatorDef / NetDef construction helpers of the gradient
 * builder and the control-op gradient makers (If, While, Do): new ops and
 * nets, arguments of every kind. Split from gradient.c, which keeps the
 * builder itself. Every function leaves its inputs untouched on failure
 * except where noted (ct__grad_netdef_append and ct__grad_op_set_net take
 * ownership and free on failure). */
#include <stdlib.h>
#include <string.h>

#include "engine/alloc.h"
#include "cortado/proto.h"
#include "engine/gradient.h"

static int oom(ct_status_t *st)
{
    return ct_status_setf(st, CT_ENOMEM,
                          "out of memory while building gradient ops");
}

int ct__grad_copy_strv(char ***dst, size_t *n_dst, const char *const *src,
                       int n)
{
    int i;

    *dst = NULL;
    *n_dst = 0;
    if (n == 0)
        return CT_OK;
    *dst = ct__calloc((size_t)n, sizeof(char *));
    if (*dst == NULL)
        return CT_ENOMEM;
    *n_dst = (size_t)n;
    for (i = 0; i < n; i++) {
        (*dst)[i] = ct__strdup(src[i]);
        if ((*dst)[i] == NULL)
            return CT_ENOMEM;
    }
    return CT_OK;
}

/* A new Argument `name` at index k of op->arg (replacing what is there,
 * or appended when k == n_arg). */
static Caffe2__Argument *arg_slot(Caffe2__OperatorDef *op, const char *name)
{
    Caffe2__Argument *a, **arr;
    size_t k;

    a = ct__calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    caffe2__argument__init(a);
    if ((a->name = ct__strdup(name)) == NULL) {
        ct__free(a);
        return NULL;
    }
    for (k = 0; k < op->n_arg; k++) {
        if (op->arg[k]->name != NULL && strcmp(op->arg[k]->name, name) == 0) {
            ct_proto_free(&op->arg[k]->base);
            op->arg[k] = a;
            return a;
        }
    }
    arr = ct__realloc(op->arg, (op->n_arg + 1) * sizeof(*arr));
    if (arr == NULL) {
        ct_proto_free(&a->base);
        return NULL;
    }
    op->arg = arr;
    op->arg[op->n_arg++] = a;
    return a;
}

int ct__grad_op_set_int(Caffe2__OperatorDef *op, const char *name, int64_t v,
                        ct_status_t *st)
{
    Caffe2__Argument *a = arg_slot(op, name);

    if (a == NULL)
        return oom(st);
    a->has_i = 1;
    a->i = v;
    return CT_OK;
}

int ct__grad_op_set_float(Caffe2__OperatorDef *op, const char *name, float v,
                          ct_status_t *st)
{
    Caffe2__Argument *a = arg_slot(op, name);

    if (a == NULL)
        return oom(st);
    a->has_f = 1;
    a->f = v;
    return CT_OK;
}

int ct__grad_op_set_ints(Caffe2__OperatorDef *op, const char *name,
                         const int64_t *v, size_t n, ct_status_t *st)
{
    int64_t *copy = NULL;
    Caffe2__Argument *a;

    if (n > 0 && (copy = ct__calloc(n, sizeof(*copy))) == NULL)
        return oom(st);
    if ((a = arg_slot(op, name)) == NULL) {
        ct__free(copy);
        return oom(st);
    }
    if (n > 0)
        memcpy(copy, v, n * sizeof(*copy));
    a->ints = copy;
    a->n_ints = n;
    return CT_OK;
}

/* ---- building nets for gradient subnets ---- */

int ct__grad_opdef_new(const char *type, const char *const *in, int n_in,
                       const char *const *out, int n_out,
                       Caffe2__OperatorDef **res, ct_status_t *st)
{
    Caffe2__OperatorDef *op = ct__calloc(1, sizeof(*op));

    *res = NULL;
    if (op == NULL)
        return oom(st);
    caffe2__operator_def__init(op);
    if ((op->type = ct__strdup(type)) == NULL ||
        ct__grad_copy_strv(&op->input, &op->n_input, in, n_in) != CT_OK ||
        ct__grad_copy_strv(&op->output, &op->n_output, out, n_out) != CT_OK) {
        ct_proto_free(&op->base);
        return oom(st);
    }
    *res = op;
    return CT_OK;
}

int ct__grad_netdef_new(const char *name, Caffe2__NetDef **res, ct_status_t *st)
{
    Caffe2__NetDef *net = ct__calloc(1, sizeof(*net));

    *res = NULL;
    if (net == NULL)
        return oom(st);
    caffe2__net_def__init(net);
    if ((net->name = ct__strdup(name)) == NULL) {
        ct_proto_free(&net->base);
        return oom(st);
    }
    *res = net;
    return CT_OK;
}

int ct__grad_netdef_append(Caffe2__NetDef *net, Caffe2__OperatorDef *op,
                           ct_status_t *st)
{
    Caffe2__OperatorDef **arr;

    arr = ct__realloc(net->op, (net->n_op + 1) * sizeof(*arr));
    if (arr == NULL) {
        ct_proto_free(&op->base);
        return oom(st);
    }
    net->op = arr;
    net->op[net->n_op++] = op;
    return CT_OK;
}

int ct__grad_op_set_net(Caffe2__OperatorDef *op, const char *name,
                        Caffe2__NetDef *net, ct_status_t *st)
{
    Caffe2__Argument *a = arg_slot(op, name);

    if (a == NULL) {
        ct_proto_free(&net->base);
        return oom(st);
    }
    a->n = net;
    return CT_OK;
}

int ct__grad_op_set_strings(Caffe2__OperatorDef *op, const char *name,
                            const char *const *v, size_t n, ct_status_t *st)
{
    Caffe2__Argument *a;
    ProtobufCBinaryData *arr = NULL;
    size_t i;

    if (n > 0 && (arr = ct__calloc(n, sizeof(*arr))) == NULL)
        return oom(st);
    for (i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        arr[i].data = ct__malloc(len + 1);
        if (arr[i].data == NULL)
            goto fail;
        memcpy(arr[i].data, v[i], len + 1);
        arr[i].len = len;
    }
    if ((a = arg_slot(op, name)) == NULL)
        goto fail;
    a->strings = arr;
    a->n_strings = n;
    return CT_OK;
fail:
    for (i = 0; i < n; i++)
        ct__free(arr[i].data);
    ct__free(arr);
    return oom(st);
}
