/* CRC-32C against published vectors (RFC 3720 B.4, the "123456789" check
 * value), chaining, alignment, and the software tables against the SSE4.2
 * path. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cortado/storage.h"
#include "storage/storage_impl.h"

static void test_crc32c_check_value_matches(void **state)
{
    (void)state;
    assert_int_equal(ct_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(ct__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(ct_crc32c(0, "", 0), 0);
    assert_int_equal(ct_crc32c(0, "a", 1), 0xC1D04330u);
}

static void test_crc32c_rfc3720_vectors_match(void **state)
{
    unsigned char buf[32];
    int i;

    (void)state;
    memset(buf, 0, sizeof(buf));
    assert_int_equal(ct_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(ct_crc32c(0, buf, 32), 0x62A8AB43u);
    for (i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(ct_crc32c(0, buf, 32), 0x46DD794Eu);
    for (i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(ct_crc32c(0, buf, 32), 0x113FDB5Cu);
    assert_int_equal(ct__crc32c_sw(0, buf, 32), 0x113FDB5Cu);
}

static void test_crc32c_chaining_and_alignment_agree(void **state)
{
    unsigned char buf[1000 + 8];
    uint64_t s = 88172645463325252ull;
    size_t i, off, cut;

    (void)state;
    for (i = 0; i < sizeof(buf); i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = (unsigned char)s;
    }
    for (off = 0; off < 8; off++) {
        uint32_t whole = ct__crc32c_sw(0, buf + off, 1000);
        assert_int_equal(ct_crc32c(0, buf + off, 1000), whole);
        for (cut = 0; cut <= 1000; cut += 37)
            assert_int_equal(ct_crc32c(ct_crc32c(0, buf + off, cut),
                                       buf + off + cut, 1000 - cut),
                             whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value_matches),
        cmocka_unit_test(test_crc32c_rfc3720_vectors_match),
        cmocka_unit_test(test_crc32c_chaining_and_alignment_agree),
    };
    return cmocka_run_group_tests_name("storage.crc32c", tests, NULL, NULL);
}
