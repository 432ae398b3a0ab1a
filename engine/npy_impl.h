/* cortado internal: constants shared by the .npy reader (npy.c) and
 * writer (npy_write.c). Format reference: numpy/lib/format.py. */
#ifndef CT_ENGINE_NPY_IMPL_H
#define CT_ENGINE_NPY_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CT_NPY_MAGIC "\x93NUMPY"
#define CT_NPY_MAGIC_LEN 6
/* The data starts at a multiple of this (numpy's ARRAY_ALIGN). */
#define CT_NPY_ALIGN 64
/* numpy adds room for this many digits of the first dim, so a file can be
 * grown in place; the writer does the same to stay byte-identical. */
#define CT_NPY_GROWTH_DIGITS 21

/* True on a little-endian host. */
static inline bool ct__npy_host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char c;

    memcpy(&c, &one, 1);
    return c == 1;
}

#endif /* CT_ENGINE_NPY_IMPL_H */
