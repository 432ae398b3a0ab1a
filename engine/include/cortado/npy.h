/* cortado: NumPy .npy files, the tensor exchange format of the CLI.
 *
 * Reads format versions 1.0, 2.0 and 3.0 (the header dict is parsed as a
 * small Python literal: any key order and spacing, trailing commas, 1-tuples,
 * `()` for 0-d, Python 2 `3L` longs) and writes what numpy.save writes,
 * byte for byte (version 1.0, or 2.0 when the header needs it). Only
 * C-order arrays of these dtypes map to a tensor:
 *   f4 FLOAT, f8 DOUBLE, f2 FLOAT16, i1 INT8, i2 INT16, i4 INT32, i8 INT64,
 *   u1 UINT8, u2 UINT16, b1 BOOL, S<n> STRING (fixed-width bytes).
 * Byte-order marks `<`, `>`, `=`, `|` are all accepted: data in the other
 * byte order than the host's is byte-swapped while reading. Strings lose
 * their trailing NUL bytes on read (numpy does the same) and are padded
 * with NULs to the longest element on write; a BYTE tensor is written as
 * u1. Fortran order (unless the layout is the same as C order: at most one
 * dim > 1), object arrays, unicode `U`, structured and other dtypes are
 * CT_ENOTSUP; a malformed header is CT_EPARSE; a header whose shape does
 * not match the data that follows (truncated or trailing bytes), or whose
 * size overflows, is CT_ECORRUPT. Nothing larger than the input implies is
 * ever allocated. All functions are thread-safe.
 */
#ifndef CORTADO_NPY_H
#define CORTADO_NPY_H

#include <stddef.h>

#include "cortado/common.h"
#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header dict accepted, in bytes. numpy itself refuses headers
 * over 10000 bytes unless told otherwise; a real header is under 200. */
#define CT_NPY_MAX_HEADER ((size_t)1 << 20)

/* Reads the .npy file at path into a new tensor whose storage is charged
 * to eng. On success *out is owned by the caller (ct_tensor_free); on
 * failure *out is NULL and st's message starts with the path.
 * Errors: CT_EIO (open/read, with errno text; not a regular file),
 * CT_EPARSE (bad magic or header), CT_ENOTSUP (dtype, order, version,
 * rank > CT_MAX_DIMS), CT_ECORRUPT (size mismatch, overflow), CT_ENOMEM. */
CT_API int ct_npy_read_file(ct_engine_t *eng, const char *path,
                            ct_tensor_t **out, ct_status_t *st);
/* Same as ct_npy_read_file for an in-memory file image of len bytes
 * (borrowed). Messages start with "npy: ". */
CT_API int ct_npy_read_buffer(ct_engine_t *eng, const void *buf, size_t len,
                              ct_tensor_t **out, ct_status_t *st);

/* Writes t to path as numpy.save would, atomically: a temporary file in
 * the same directory is written, flushed to disk and renamed over path,
 * so path holds either its old content or the complete new file.
 * Errors: CT_ETYPE (UNDEFINED dtype), CT_EIO (naming the path and errno
 * text), CT_ENOMEM. t is not modified. */
CT_API int ct_npy_write_file(const ct_tensor_t *t, const char *path,
                             ct_status_t *st);
/* Serialises t into a new buffer; *out is freed with ct_free and *len is
 * its size. Errors: CT_ETYPE, CT_EOVERFLOW, CT_ENOMEM. */
CT_API int ct_npy_write_buffer(const ct_tensor_t *t, void **out, size_t *len,
                               ct_status_t *st);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_NPY_H */
