/* cortado test support: NetDefs written as one line of op specs.
 *
 * An op spec is "[Type:]inputs>outputs" with comma-separated blob names:
 * "FC:X,W,b>Y" is an FC reading X, W, b and writing Y; "a,b>c" takes the
 * default type; ">x" reads nothing. Specs are separated by spaces. Ops are
 * built with tu_op, so tu_net_free releases them.
 */
#ifndef CT_TEST_NET_SPEC_H
#define CT_TEST_NET_SPEC_H

#include "proto/caffe2.pb-c.h"

/* Appends one op per spec of `ops` to net, in order; `type` is the type of
 * specs that name none. Fails the test on a malformed spec. */
void tu_net_add_ops(Caffe2__NetDef *net, const char *type, const char *ops);

/* tu_net(name, ext_inputs, ext_outputs) plus tu_net_add_ops(type, ops). */
Caffe2__NetDef *tu_net_of(const char *name, const char *ext_inputs,
                          const char *ext_outputs, const char *type,
                          const char *ops);

#endif /* CT_TEST_NET_SPEC_H */
