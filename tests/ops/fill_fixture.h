/* Shared fixtures of the fill op tests (test_fill.c and
 * test_fill_random.c): an engine + workspace per test, element access as
 * double for every dtype, shape assertions. static inline so a file may
 * leave some unused. Include after cmocka.h and test_util.h. */
#ifndef CT_TESTS_OPS_FILL_FIXTURE_H
#define CT_TESTS_OPS_FILL_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "cortado/tensor.h"
#include "test_util.h"

static inline int setup_env(void **state)
{
    struct tu_env *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    tu_env_init(e);
    *state = e;
    return 0;
}

static inline int teardown_env(void **state)
{
    struct tu_env *e = *state;

    tu_env_destroy(e);
    free(e);
    return 0;
}

/* ---- helpers ---- */

/* Element k of a numeric tensor as a double. */
static inline double elem(const ct_tensor_t *t, int64_t k)
{
    const void *p = ct_tensor_cdata(t);

    switch (ct_tensor_dtype(t)) {
    case CT_DTYPE_F32:
        return ((const float *)p)[k];
    case CT_DTYPE_F64:
        return ((const double *)p)[k];
    case CT_DTYPE_BOOL:
    case CT_DTYPE_U8:
    case CT_DTYPE_BYTE:
        return ((const uint8_t *)p)[k];
    case CT_DTYPE_I8:
        return ((const int8_t *)p)[k];
    case CT_DTYPE_I16:
        return ((const int16_t *)p)[k];
    case CT_DTYPE_U16:
        return ((const uint16_t *)p)[k];
    case CT_DTYPE_I32:
        return ((const int32_t *)p)[k];
    case CT_DTYPE_I64:
        return (double)((const int64_t *)p)[k];
    default:
        fail_msg("elem of a %s tensor", ct_dtype_name(ct_tensor_dtype(t)));
    }
    return 0;
}

static inline void assert_shape(const ct_tensor_t *t, int ndim,
                                const int64_t *dims)
{
    int i;

    assert_int_equal(ct_tensor_ndim(t), ndim);
    for (i = 0; i < ndim; i++)
        assert_int_equal(ct_tensor_dim(t, i), dims[i]);
}

#endif /* CT_TESTS_OPS_FILL_FIXTURE_H */
