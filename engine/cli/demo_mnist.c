/* cortado demo: MNIST IDX files (gzip-compressed) read through
 * `gzip -dc` and put into workspace blobs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli/demo.h"

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Decompresses path into a malloc'ed buffer of exactly want bytes after a
 * header of hdr_len bytes (returned in hdr). */
static int read_gz(const char *path, unsigned char *hdr, size_t hdr_len,
                   uint32_t magic, unsigned char **out, size_t *len,
                   ct_status_t *st)
{
    char cmd[4200];
    FILE *f;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    int status;

    if (access(path, R_OK) != 0)
        return ct_status_setf(st, CT_ENOTFOUND,
                              "MNIST file %s: %s (expected the gzip'ed IDX "
                              "files of the MNIST test set; see --data)",
                              path, strerror(errno));
    if (strchr(path, '\'') != NULL)
        return ct_status_setf(st, CT_EINVAL, "MNIST path %s contains a quote",
                              path);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
    f = popen(cmd, "r");
    if (f == NULL)
        return ct_status_setf(st, CT_EIO, "cannot run gzip -dc %s: %s", path,
                              strerror(errno));
    if (fread(hdr, 1, hdr_len, f) != hdr_len) {
        pclose(f);
        return ct_status_setf(st, CT_EIO, "%s: short IDX header", path);
    }
    if (be32(hdr) != magic) {
        pclose(f);
        return ct_status_setf(st, CT_EINVAL,
                              "%s: bad IDX magic 0x%08x (want 0x%08x)", path,
                              (unsigned)be32(hdr), (unsigned)magic);
    }
    for (;;) {
        if (n == cap) {
            unsigned char *nb;
            cap = cap ? cap * 2 : (size_t)1 << 20;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                pclose(f);
                return ct_status_setf(st, CT_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    status = pclose(f);
    if (status != 0) {
        free(buf);
        return ct_status_setf(st, CT_EIO, "gzip -dc %s failed (status %d)",
                              path, status);
    }
    *out = buf;
    *len = n;
    return CT_OK;
}

int ct__demo_load_mnist(const char *dir, struct ct__demo_mnist *m,
                        ct_status_t *st)
{
    char path[4096];
    unsigned char hdr[16];
    unsigned char *img = NULL, *lab = NULL;
    size_t ni, nl, i;
    uint32_t n, rows, cols;
    int rc;

    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "%s/t10k-images-idx3-ubyte.gz", dir);
    rc = read_gz(path, hdr, 16, 0x803, &img, &ni, st);
    if (rc != CT_OK)
        return rc;
    n = be32(hdr + 4);
    rows = be32(hdr + 8);
    cols = be32(hdr + 12);
    if (rows != 28 || cols != 28 || (size_t)n * 784 > ni || n < 2000) {
        free(img);
        return ct_status_setf(st, CT_EINVAL,
                              "%s: want >= 2000 28x28 images, header says "
                              "%u of %ux%u (%zu bytes of pixels)",
                              path, (unsigned)n, (unsigned)rows, (unsigned)cols,
                              ni);
    }
    snprintf(path, sizeof(path), "%s/t10k-labels-idx1-ubyte.gz", dir);
    rc = read_gz(path, hdr, 8, 0x801, &lab, &nl, st);
    if (rc != CT_OK) {
        free(img);
        return rc;
    }
    if (be32(hdr + 4) != n || nl < n) {
        free(img);
        free(lab);
        return ct_status_setf(st, CT_EINVAL, "%s: %u labels for %u images",
                              path, (unsigned)be32(hdr + 4), (unsigned)n);
    }
    m->labels = malloc(sizeof(int32_t) * n);
    if (m->labels == NULL) {
        free(img);
        free(lab);
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        if (lab[i] > 9) {
            free(img);
            free(lab);
            free(m->labels);
            m->labels = NULL;
            return ct_status_setf(st, CT_EINVAL, "%s: label %u of image %zu",
                                  path, lab[i], i);
        }
        m->labels[i] = lab[i];
    }
    free(lab);
    m->images = img;
    m->n = (int64_t)n;
    return CT_OK;
}

void ct__demo_mnist_free(struct ct__demo_mnist *m)
{
    free(m->images);
    free(m->labels);
    memset(m, 0, sizeof(*m));
}

int ct__demo_put(ct_workspace_t *ws, const char *name, ct_dtype_t dt, int ndim,
                 const int64_t *dims, const void *src, ct_status_t *st)
{
    ct_blob_t *b;
    ct_tensor_t *t;
    int rc;

    rc = ct_workspace_create_blob(ws, name, &b, st);
    if (rc == CT_OK)
        rc = ct_blob_get_mutable_tensor(b, ct_workspace_engine(ws), &t, st);
    if (rc == CT_OK)
        rc = ct_tensor_resize(t, dt, ndim, dims, st);
    if (rc != CT_OK)
        return rc;
    if (src != NULL)
        memcpy(ct_tensor_data(t), src, ct_tensor_nbytes(t));
    else
        memset(ct_tensor_data(t), 0, ct_tensor_nbytes(t));
    return CT_OK;
}
