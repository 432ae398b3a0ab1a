/* cortado test support: what the op tests share on top of test_util.h: a
 * heap-allocated engine + workspace fixture for cmocka, shape literals for
 * the white-box infer/cost checks, and a one-call "this run fails" check.
 */
#ifndef CT_TEST_OP_TEST_H
#define CT_TEST_OP_TEST_H

#include <stdint.h>

#include "ops/op_impl.h"
#include "test_util.h"

/* cmocka setup/teardown: *state becomes a struct tu_env (tu_env_init). */
int tu_env_setup(void **state);
int tu_env_teardown(void **state);

/* A ct_shape_t of dtype dt and nd dims d (nd -1: unknown rank). */
ct_shape_t tu_shape(ct_dtype_t dt, int nd, const int64_t *d);

/* Runs op once on ws, asserts it fails with code and a message containing
 * needle (NULL: any message), then frees op. */
void tu_assert_op_fails(ct_workspace_t *ws, Caffe2__OperatorDef *op, int code,
                        const char *needle);

#endif /* CT_TEST_OP_TEST_H */
