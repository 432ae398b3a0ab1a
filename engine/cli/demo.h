/* cortado CLI internal: helpers of `cortado demo` (cmd_demo.c). */
#ifndef CT_ENGINE_CLI_DEMO_H
#define CT_ENGINE_CLI_DEMO_H

#include <stdint.h>

#include "cortado/blob.h"
#include "cortado/error.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"

/* The MNIST test set: n images of 28x28 UINT8 pixels and their labels. */
struct ct__demo_mnist {
    unsigned char *images; /* n * 784 */
    int32_t *labels;       /* n */
    int64_t n;
};

/* Reads DIR/t10k-images-idx3-ubyte.gz and DIR/t10k-labels-idx1-ubyte.gz
 * through `gzip -dc`. CT_ENOTFOUND with the path when a file is missing. */
int ct__demo_load_mnist(const char *dir, struct ct__demo_mnist *m,
                        ct_status_t *st);
void ct__demo_mnist_free(struct ct__demo_mnist *m);

/* Puts a tensor into blob `name` of ws (created if needed), copying
 * src's bytes (zeros when src is NULL). */
int ct__demo_put(ct_workspace_t *ws, const char *name, ct_dtype_t dt, int ndim,
                 const int64_t *dims, const void *src, ct_status_t *st);

#endif /* CT_ENGINE_CLI_DEMO_H */
