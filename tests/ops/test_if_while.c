/* Tests for ops/if_while.c: net_builder_test.py's test_if_net (basic
 * results 1 / 2, nested ifs, branches wrapped in Do scopes writing outer
 * blobs while their local blobs stay out of the outer workspace) and
 * test_while_net (x = 7, y = 21), plus the condition errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "test_util.h"

static int run_txt(ct_workspace_t *ws, const char *txt, ct_status_t *st)
{
    ct_netdef_t *def = NULL;
    ct_net_t *net = NULL;
    int rc = ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, &def, st);

    if (rc == CT_OK)
        rc = ct_net_new(ws, def, NULL, &net, st);
    if (rc == CT_OK)
        rc = ct_net_run(net, st);
    ct_net_free(net);
    ct_netdef_free(def);
    return rc;
}

static float val(ct_workspace_t *ws, const char *name)
{
    return *(const float *)ct_tensor_cdata(tu_fetch(ws, name));
}

static void feed_bool(ct_workspace_t *ws, const char *name, bool v)
{
    const int64_t d[1] = {1};
    tu_feed(ws, name, CT_DTYPE_BOOL, 1, d, &v);
}

static void feed1(ct_workspace_t *ws, const char *name, float v)
{
    const int64_t d[1] = {1};
    tu_feed_f32(ws, name, 1, d, &v);
}

#define FILL(out, v)                                                           \
    "op { output: \"" out "\" type: \"ConstantFill\" "                         \
    "arg { name: \"shape\" ints: 1 } arg { name: \"value\" f: " #v " } }\n"

static void test_if_net(void **state)
{
    struct tu_env e;
    ct_status_t st = {0};
    /* first_res: If(True) then 1 else 2; second_res: If(False). Then a
     * nested If inside a Do scope: then-branch of the outer If runs a Do
     * whose subnet makes a local blob, tests an inner If on it and writes
     * y0 = 1000 and y1 = y1 + 100 (y1 = 101) to outer blobs; y2 = y2 +
     * 100 + 6 (108) from an else branch. */
    const char *txt =
        "name: \"if_net\"\n"
        "op { input: \"t\" output: \"first_res\" type: \"If\"\n"
        "  arg { name: \"then_net\" n { name: \"a\" " FILL(
            "first_res",
            1) " } }\n"
               "  arg { name: \"else_net\" n { name: \"b\" " FILL(
                   "first_res",
                   2) " } } }\n"
                      "op { input: \"f\" output: \"second_res\" type: \"If\"\n"
                      "  arg { name: \"then_net\" n { name: \"c\" " FILL(
                          "second_res",
                          1) " } }\n"
                             "  arg { name: \"else_net\" n { name: \"d\" " FILL(
                                 "second_res",
                                 2) " } } }\n"
                                    "op { output: \"S\" type: \"CreateScope\" "
                                    "}\n"
                                    "op { input: \"t\" input: \"y1\" input: "
                                    "\"S\" output: \"y0\" "
                                    "output: \"y1\" output: \"S\" type: "
                                    "\"If\"\n"
                                    "  arg { name: \"then_net\" n { name: "
                                    "\"then\"\n"
                                    "    op { input: \"t\" input: \"y1\" "
                                    "input: \"S\" output: \"y0\" "
                                    "output: \"y1\" output: \"S\" type: "
                                    "\"Do\"\n"
                                    "      arg { name: \"inner_blobs\" "
                                    "strings: \"c\" strings: \"in_y1\" "
                                    "strings: \"in_y0\" }\n"
                                    "      arg { name: \"outer_blobs_idx\" "
                                    "ints: 0 ints: 1 ints: 2 }\n"
                                    "      arg { name: \"net\" n { name: "
                                    "\"body\"\n"
                                    "        " FILL(
                                        "local_blob",
                                        100) "        op { input: \"c\" input: "
                                             "\"local_blob\" output: \"in_y0\" "
                                             "type: \"If\"\n"
                                             "          arg { name: "
                                             "\"then_net\" n { name: "
                                             "\"i\" " FILL(
                                                 "in_y0",
                                                 1000) " } } }\n"
                                                       "        op { input: "
                                                       "\"in_y1\" input: "
                                                       "\"local_blob\" "
                                                       "output: \"in_y1\" "
                                                       "type: \"Add\" } } } } "
                                                       "} }\n"
                                                       "  arg { name: "
                                                       "\"else_net\" n { name: "
                                                       "\"never\" " FILL(
                                                           "y0",
                                                           -1) " } } }\n"
                                                               "op { input: "
                                                               "\"f\" input: "
                                                               "\"y2\" output: "
                                                               "\"y2\" type: "
                                                               "\"If\"\n"
                                                               "  arg { name: "
                                                               "\"then_net\" n "
                                                               "{ name: "
                                                               "\"t2\" " FILL(
                                                                   "y2",
                                                                   -1) " } }\n"
                                                                       "  arg "
                                                                       "{ "
                                                                       "name: "
                                                                       "\"else_"
                                                                       "net\" "
                                                                       "n { "
                                                                       "name: "
                                                                       "\"e2\""
                                                                       "\n"
                                                                       "   "
                                                                       " " FILL(
                                                                           "k",
                                                                           106) "\n"
                                                                                "    op { input: \"y2\" input: \"k\" output: \"y2\" type: \"Add\" } "
                                                                                "} } }\n";

    (void)state;
    tu_env_init(&e);
    feed_bool(e.ws, "t", true);
    feed_bool(e.ws, "f", false);
    feed1(e.ws, "first_res", 0);
    feed1(e.ws, "second_res", 0);
    feed1(e.ws, "y0", 0);
    feed1(e.ws, "y1", 1);
    feed1(e.ws, "y2", 2);
    if (run_txt(e.ws, txt, &st) != CT_OK)
        fail_msg("%s", st.msg);
    assert_true(val(e.ws, "first_res") == 1.0f);
    assert_true(val(e.ws, "second_res") == 2.0f);
    assert_true(val(e.ws, "y0") == 1000.0f);
    assert_true(val(e.ws, "y1") == 101.0f);
    assert_true(val(e.ws, "y2") == 108.0f);
    assert_false(ct_workspace_has_blob(e.ws, "local_blob"));
    tu_env_destroy(&e);
}

static void test_while_net(void **state)
{
    struct tu_env e;
    ct_status_t st = {0};
    /* x = 0, y = 0; while (++x < 7) y += x. The condition x < 7 is
     * Relu(7 - x) != 0 (a FLOAT condition, a cortado extension). */
    const char *txt =
        "name: \"while_net\"\n"
        "op { input: \"cond\" input: \"x\" input: \"y\" output: \"x\" "
        "output: \"y\" output: \"cond\" type: \"While\"\n"
        "  arg { name: \"cond_net\" n { name: \"cond\"\n"
        "    op { input: \"x\" input: \"one\" output: \"x\" type: \"Add\" }\n"
        "    op { input: \"seven\" input: \"x\" output: \"d\" type: \"Sub\" }\n"
        "    op { input: \"d\" output: \"cond\" type: \"Relu\" } } }\n"
        "  arg { name: \"loop_net\" n { name: \"body\"\n"
        "    op { input: \"x\" input: \"y\" output: \"y\" type: \"Add\" } } } "
        "}\n";

    (void)state;
    tu_env_init(&e);
    feed1(e.ws, "x", 0);
    feed1(e.ws, "y", 0);
    feed1(e.ws, "one", 1);
    feed1(e.ws, "seven", 7);
    feed1(e.ws, "cond", 1);
    feed1(e.ws, "d", 0);
    if (run_txt(e.ws, txt, &st) != CT_OK)
        fail_msg("%s", st.msg);
    assert_true(val(e.ws, "x") == 7.0f);
    assert_true(val(e.ws, "y") == 21.0f);
    tu_env_destroy(&e);
}

static void test_if_while_errors(void **state)
{
    struct tu_env e;
    ct_status_t st = {0};
    const int64_t d[1] = {2};
    const float two[2] = {1, 1};

    (void)state;
    tu_env_init(&e);
    tu_feed_f32(e.ws, "c2", 1, d, two);
    tu_assert_status(
        &st,
        run_txt(e.ws, "name: \"e\" op { input: \"c2\" type: \"If\" }", &st),
        CT_EARG, "then_net must be specified in If operator");
    tu_assert_status(&st,
                     run_txt(e.ws,
                             "name: \"e\" op { input: \"c2\" type: \"While\" "
                             "}",
                             &st),
                     CT_EARG, "loop_net must be specified in While operator");
    tu_assert_status(&st,
                     run_txt(e.ws,
                             "name: \"e\" op { input: \"c2\" type: \"If\" "
                             "arg { name: \"then_net\" n { name: \"x\" } } }",
                             &st),
                     CT_ESHAPE, "single value expected");
    tu_env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_if_net),
        cmocka_unit_test(test_while_net),
        cmocka_unit_test(test_if_while_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
