/* cortado test support: fixtures and checks shared by the op tests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "op_test.h"

int tu_env_setup(void **state)
{
    struct tu_env *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    tu_env_init(e);
    *state = e;
    return 0;
}

int tu_env_teardown(void **state)
{
    struct tu_env *e = *state;

    tu_env_destroy(e);
    free(e);
    return 0;
}

ct_shape_t tu_shape(ct_dtype_t dt, int nd, const int64_t *d)
{
    ct_shape_t s;

    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.ndim = nd;
    if (nd > 0)
        memcpy(s.dims, d, (size_t)nd * sizeof(int64_t));
    return s;
}

void tu_assert_op_fails(ct_workspace_t *ws, Caffe2__OperatorDef *op, int code,
                        const char *needle)
{
    ct_status_t st;

    tu_assert_status(&st, tu_run_op(ws, op, &st), code, needle);
    tu_op_free(op);
}
