/* Tests for engine/error.c: the X-macro code list and ct_status_t. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cortado/error.h"

/* ---- helpers ---- */

/* One row per code, generated from the same list as the library's
 * tables, so a code added to the list is checked without editing here. */
static const struct {
    int value;
    const char *name;
    const char *text;
} codes[] = {
#define ROW(name, value, text) {value, #name, text},
    CT_ERROR_LIST(ROW)
#undef ROW
};

#define N_CODES (sizeof(codes) / sizeof(codes[0]))

/* Calls ct_status_vsetf with a format the compiler cannot check (NULL). */
static int vset(ct_status_t *st, int code, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = ct_status_vsetf(st, code, fmt, ap);
    va_end(ap);
    return rc;
}

static void fill(char *buf, size_t n, char c)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

/* ---- tests ---- */

static void test_error_list_count_matches_enum(void **state)
{
    (void)state;
    assert_int_equal(N_CODES, CT_ERROR_COUNT_);
}

static void test_err_name_every_code_matches_list(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_CODES; i++)
        assert_string_equal(ct_err_name(codes[i].value), codes[i].name);
}

static void test_strerror_every_code_matches_list(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_CODES; i++)
        assert_string_equal(ct_strerror(codes[i].value), codes[i].text);
}

static void test_error_values_are_dense_and_stable(void **state)
{
    size_t i;

    (void)state;
    /* Values are part of the ABI: 0, -1, -2, ... in list order. */
    for (i = 0; i < N_CODES; i++)
        assert_int_equal(codes[i].value, -(int)i);
    assert_int_equal(CT_ENOMEM, -2);
    assert_int_equal(CT_EINTERNAL, -20);
}

static void test_strerror_unknown_code_returns_unknown_error(void **state)
{
    (void)state;
    assert_string_equal(ct_strerror(1), "unknown error");
    assert_string_equal(ct_strerror(-21), "unknown error");
    assert_string_equal(ct_strerror(-1000), "unknown error");
}

static void test_err_name_unknown_code_returns_placeholder(void **state)
{
    (void)state;
    assert_string_equal(ct_err_name(7), "CT_E?");
    assert_string_equal(ct_err_name(-21), "CT_E?");
}

static void test_status_clear_resets_every_field(void **state)
{
    ct_status_t st;

    (void)state;
    memset(&st, 'x', sizeof(st));
    st.code = CT_EIO;
    st.node = 4;
    ct_status_clear(&st);
    assert_int_equal(st.code, CT_OK);
    assert_int_equal(st.node, -1);
    assert_string_equal(st.op, "");
    assert_string_equal(st.msg, "");
}

static void test_status_clear_null_is_noop(void **state)
{
    (void)state;
    ct_status_clear(NULL);
}

static void test_status_setf_formats_and_returns_code(void **state)
{
    ct_status_t st;
    int rc;

    (void)state;
    ct_status_clear(&st);
    rc = ct_status_setf(&st, CT_ESHAPE, "want %d-d, got %s", 4, "3-d");
    assert_int_equal(rc, CT_ESHAPE);
    assert_int_equal(st.code, CT_ESHAPE);
    assert_string_equal(st.msg, "want 4-d, got 3-d");
}

static void test_status_setf_resets_node_and_op(void **state)
{
    ct_status_t st;

    (void)state;
    ct_status_clear(&st);
    st.node = 12;
    strcpy(st.op, "Conv");
    ct_status_setf(&st, CT_EINVAL, "x");
    assert_int_equal(st.node, -1);
    assert_string_equal(st.op, "");
}

static void test_status_setf_null_status_returns_code(void **state)
{
    (void)state;
    assert_int_equal(ct_status_setf(NULL, CT_EIO, "disk %d", 1), CT_EIO);
    assert_int_equal(vset(NULL, CT_ENOMEM, NULL), CT_ENOMEM);
}

static void test_status_setf_long_message_truncated_at_255(void **state)
{
    char big[400];
    ct_status_t st;

    (void)state;
    fill(big, 399, 'a');
    ct_status_setf(&st, CT_EPARSE, "%s!", big);
    assert_int_equal(strlen(st.msg), CT_STATUS_MSG_MAX - 1);
    assert_int_equal(strlen(st.msg), 255);
    assert_int_equal(st.msg[0], 'a');
    assert_int_equal(st.msg[254], 'a');
    assert_int_equal(st.code, CT_EPARSE);
}

static void test_status_setf_exactly_255_chars_kept_whole(void **state)
{
    char msg[256];
    ct_status_t st;

    (void)state;
    fill(msg, 254, 'b');
    ct_status_setf(&st, CT_EIO, "%sZ", msg);
    assert_int_equal(strlen(st.msg), 255);
    assert_int_equal(st.msg[254], 'Z');
}

static void test_status_vsetf_null_format_uses_default_text(void **state)
{
    ct_status_t st;

    (void)state;
    vset(&st, CT_ENOTFOUND, NULL);
    assert_int_equal(st.code, CT_ENOTFOUND);
    assert_string_equal(st.msg, "not found");
}

static void test_status_setf_may_reuse_own_message(void **state)
{
    ct_status_t st;

    (void)state;
    ct_status_setf(&st, CT_EIO, "inner %d", 7);
    ct_status_setf(&st, CT_ECORRUPT, "outer: %s", st.msg);
    assert_string_equal(st.msg, "outer: inner 7");
    assert_int_equal(st.code, CT_ECORRUPT);
}

static void test_status_prefix_prepends_and_keeps_code(void **state)
{
    ct_status_t st;

    (void)state;
    ct_status_setf(&st, CT_ESHAPE, "want 4-d");
    st.node = 3;
    ct_status_prefix(&st, "node %d \"%s\" (%s): ", 3, "conv1", "Conv");
    assert_string_equal(st.msg, "node 3 \"conv1\" (Conv): want 4-d");
    assert_int_equal(st.code, CT_ESHAPE);
    assert_int_equal(st.node, 3);
}

static void test_status_prefix_twice_nests(void **state)
{
    ct_status_t st;

    (void)state;
    ct_status_setf(&st, CT_EIO, "c");
    ct_status_prefix(&st, "b: ");
    ct_status_prefix(&st, "a: ");
    assert_string_equal(st.msg, "a: b: c");
}

static void test_status_prefix_ok_status_is_noop(void **state)
{
    ct_status_t st;

    (void)state;
    ct_status_clear(&st);
    ct_status_prefix(&st, "ctx: ");
    assert_string_equal(st.msg, "");
    assert_int_equal(st.code, CT_OK);
}

static void test_status_prefix_null_is_noop(void **state)
{
    (void)state;
    ct_status_prefix(NULL, "ctx %d: ", 1);
}

static void test_status_prefix_long_result_truncated_at_255(void **state)
{
    char big[300];
    ct_status_t st;

    (void)state;
    fill(big, 250, 'm');
    ct_status_setf(&st, CT_EIO, "%s", big);
    ct_status_prefix(&st, "0123456789: ");
    assert_int_equal(strlen(st.msg), 255);
    assert_memory_equal(st.msg, "0123456789: mmm", 15);
    assert_int_equal(st.msg[254], 'm');
}

static void test_status_prefix_longer_than_buffer_keeps_prefix(void **state)
{
    char big[300];
    ct_status_t st;

    (void)state;
    fill(big, 299, 'p');
    ct_status_setf(&st, CT_EIO, "old");
    ct_status_prefix(&st, "%s", big);
    assert_int_equal(strlen(st.msg), 255);
    assert_int_equal(st.msg[254], 'p');
    assert_null(strstr(st.msg, "old"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_list_count_matches_enum),
        cmocka_unit_test(test_err_name_every_code_matches_list),
        cmocka_unit_test(test_strerror_every_code_matches_list),
        cmocka_unit_test(test_error_values_are_dense_and_stable),
        cmocka_unit_test(test_strerror_unknown_code_returns_unknown_error),
        cmocka_unit_test(test_err_name_unknown_code_returns_placeholder),
        cmocka_unit_test(test_status_clear_resets_every_field),
        cmocka_unit_test(test_status_clear_null_is_noop),
        cmocka_unit_test(test_status_setf_formats_and_returns_code),
        cmocka_unit_test(test_status_setf_resets_node_and_op),
        cmocka_unit_test(test_status_setf_null_status_returns_code),
        cmocka_unit_test(test_status_setf_long_message_truncated_at_255),
        cmocka_unit_test(test_status_setf_exactly_255_chars_kept_whole),
        cmocka_unit_test(test_status_vsetf_null_format_uses_default_text),
        cmocka_unit_test(test_status_setf_may_reuse_own_message),
        cmocka_unit_test(test_status_prefix_prepends_and_keeps_code),
        cmocka_unit_test(test_status_prefix_twice_nests),
        cmocka_unit_test(test_status_prefix_ok_status_is_noop),
        cmocka_unit_test(test_status_prefix_null_is_noop),
        cmocka_unit_test(test_status_prefix_long_result_truncated_at_255),
        cmocka_unit_test(test_status_prefix_longer_than_buffer_keeps_prefix),
    };
    return cmocka_run_group_tests_name("engine.error", tests, NULL, NULL);
}
