/* cortado test support: NetDefs written as one line of op specs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "net_spec.h"
#include "test_util.h"

void tu_net_add_ops(Caffe2__NetDef *net, const char *type, const char *ops)
{
    const char *p = ops + strspn(ops, " ");

    while (*p != '\0') {
        const size_t len = strcspn(p, " ");
        const char *gt = memchr(p, '>', len);
        const char *colon = memchr(p, ':', len);
        char ty[64], in[512], out[512];

        if (gt == NULL || len >= sizeof(in) || (colon != NULL && colon > gt))
            fail_msg("malformed op spec \"%.*s\"", (int)len, p);
        if (colon != NULL) {
            snprintf(ty, sizeof(ty), "%.*s", (int)(colon - p), p);
            p = colon + 1;
        } else {
            snprintf(ty, sizeof(ty), "%s", type);
        }
        snprintf(in, sizeof(in), "%.*s", (int)(gt - p), p);
        snprintf(out, sizeof(out), "%.*s", (int)(strcspn(gt + 1, " ")), gt + 1);
        tu_net_add_op(net, tu_op(ty, in, out));
        p = gt + 1 + strcspn(gt + 1, " ");
        p += strspn(p, " ");
    }
}

Caffe2__NetDef *tu_net_of(const char *name, const char *ext_inputs,
                          const char *ext_outputs, const char *type,
                          const char *ops)
{
    Caffe2__NetDef *net = tu_net(name, ext_inputs, ext_outputs);

    tu_net_add_ops(net, type, ops);
    return net;
}
