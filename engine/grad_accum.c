/* Gradient accumulation over K concurrent scopes (cortado/grad_accum.h).
 *
 * The step net is written as protobuf text and parsed: the forward +
 * backward subnet is formatted with ct_pbtxt_format and embedded as the
 * `net` argument of each Do, so the result is an ordinary library-owned
 * NetDef (freed with ct_netdef_free) whatever its size.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cortado/engine.h"
#include "cortado/grad_accum.h"
#include "cortado/gradient.h"
#include "cortado/proto.h"
#include "engine/alloc.h"
#include "proto/caffe2.pb-c.h"

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) CT_PRINTF(2, 3);

static void bprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = 2 * b->cap + (size_t)n + 1;
            char *p = ct__realloc(b->p, cap);
            if (p == NULL) {
                b->oom = true;
                return;
            }
            b->p = p;
            b->cap = cap;
        }
    }
}

static void emit_step(struct buf *b, const char *name, const char *sub,
                      const struct ct_grad_accum_config *cfg)
{
    size_t i;
    int k;

    bprintf(b, "name: \"%s_accum\"\ntype: \"dag\"\n", name);
    for (k = 0; k < cfg->k; k++)
        bprintf(b,
                "op { output: \"grad_accum/scope_%d\" type: "
                "\"CreateScope\" }\n",
                k);
    for (k = 0; k < cfg->k; k++) {
        bprintf(b, "op {\n  name: \"micro_batch_%d\"\n", k);
        for (i = 0; i < cfg->n_inputs; i++)
            bprintf(b, "  input: \"%s_%d\"\n", cfg->inputs[i], k);
        for (i = 0; i < cfg->n_params; i++)
            bprintf(b, "  input: \"%s\"\n", cfg->params[i]);
        bprintf(b, "  input: \"grad_accum/scope_%d\"\n", k);
        for (i = 0; i < cfg->n_params; i++)
            bprintf(b, "  output: \"%s_grad_%d\"\n", cfg->params[i], k);
        bprintf(b, "  output: \"%s_%d\"\n", cfg->loss, k);
        bprintf(b, "  output: \"grad_accum/scope_%d\"\n  type: \"Do\"\n", k);
        bprintf(b, "  arg { name: \"inner_blobs\"");
        for (i = 0; i < cfg->n_inputs; i++)
            bprintf(b, " strings: \"%s\"", cfg->inputs[i]);
        for (i = 0; i < cfg->n_params; i++)
            bprintf(b, " strings: \"%s\"", cfg->params[i]);
        for (i = 0; i < cfg->n_params; i++)
            bprintf(b, " strings: \"%s_grad\"", cfg->params[i]);
        bprintf(b, " strings: \"%s\" }\n", cfg->loss);
        bprintf(b, "  arg { name: \"outer_blobs_idx\"");
        for (i = 0; i < cfg->n_inputs + 2 * cfg->n_params + 1; i++)
            bprintf(b, " ints: %zu", i);
        bprintf(b, " }\n  arg { name: \"net\" n {\n%s  } }\n}\n", sub);
    }
    for (i = 0; i < cfg->n_params; i++) {
        bprintf(b, "op {");
        for (k = 0; k < cfg->k; k++)
            bprintf(b, " input: \"%s_grad_%d\"", cfg->params[i], k);
        bprintf(b, " output: \"%s_grad\" type: \"Sum\" }\n", cfg->params[i]);
    }
    bprintf(b, "op {");
    for (k = 0; k < cfg->k; k++)
        bprintf(b, " input: \"%s_%d\"", cfg->loss, k);
    bprintf(b, " output: \"%s\" type: \"Sum\" }\n", cfg->loss);
    if (cfg->lr != 0.0f) {
        bprintf(b, "op { output: \"grad_accum/one\" type: \"ConstantFill\" "
                   "arg { name: \"shape\" ints: 1 } arg { name: \"value\" "
                   "f: 1 } }\n");
        bprintf(b,
                "op { output: \"grad_accum/lr\" type: \"ConstantFill\" "
                "arg { name: \"shape\" ints: 1 } arg { name: \"value\" "
                "f: %.9g } }\n",
                (double)cfg->lr);
        for (i = 0; i < cfg->n_params; i++)
            bprintf(b,
                    "op { input: \"%s\" input: \"grad_accum/one\" "
                    "input: \"%s_grad\" input: \"grad_accum/lr\" "
                    "output: \"%s\" type: \"WeightedSum\" }\n",
                    cfg->params[i], cfg->params[i], cfg->params[i]);
    }
}

int ct_netdef_build_grad_accum(const ct_netdef_t *fwd,
                               const struct ct_grad_accum_config *cfg,
                               ct_netdef_t **out, ct_status_t *st)
{
    ct_netdef_t *sub = NULL;
    char *sub_txt = NULL;
    size_t sub_len = 0;
    struct buf b = {0};
    int rc;

    CT_ASSERT(fwd != NULL && cfg != NULL && out != NULL,
              "ct_netdef_build_grad_accum: NULL argument");
    if (cfg->k < 1 || cfg->n_params == 0 || cfg->loss == NULL ||
        fwd->name == NULL || fwd->name[0] == '\0')
        return ct_status_setf(st, CT_EINVAL,
                              "grad accumulation: need k >= 1 (got %d), "
                              "parameters, a loss blob and a named net",
                              cfg->k);
    rc = ct_proto_copy(&fwd->base, (ProtobufCMessage **)&sub, st);
    if (rc != CT_OK)
        return rc;
    rc = ct_netdef_add_gradient_ops(sub, &cfg->loss, 1, st);
    if (rc == CT_OK)
        rc = ct_pbtxt_format(&sub->base, &sub_txt, &sub_len, st);
    if (rc != CT_OK)
        goto done;
    emit_step(&b, fwd->name, sub_txt, cfg);
    if (b.oom) {
        rc = ct_status_setf(st, CT_ENOMEM,
                            "out of memory building the "
                            "grad accumulation net");
        goto done;
    }
    rc = ct_netdef_parse(b.p, b.len, CT_PROTO_TEXT, out, st);
done:
    ct__free(b.p);
    ct_free(sub_txt);
    ct_netdef_free(sub);
    return rc;
}
