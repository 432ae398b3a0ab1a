/* cortado: CRC-32C (Castagnoli), the checksum of the minidb manifest.
 *
 * Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and final
 * XOR 0xFFFFFFFF, as iSCSI (RFC 3720), ext4, LevelDB and TensorFlow use.
 * Two implementations giving identical results:
 *   - slicing-by-8 tables (8 KiB, built once under pthread_once), about
 *     1.5 bytes per cycle, for any CPU;
 *   - x86-64 SSE4.2 `crc32` instructions, 8 bytes per instruction, chosen
 *     at run time when the CPU has them (about 3 bytes per cycle, one
 *     dependency chain; enough to stay well ahead of the disk).
 * ct__crc32c_sw is exposed for the test that compares both.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "cortado/storage.h"
#include "storage/storage_impl.h"

#define POLY 0x82F63B78u

/* Written once by build_tables under pthread_once, read-only afterwards. */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    uint32_t i, k, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        c = table[0][i];
        for (k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][i] = c;
        }
    }
}

uint32_t ct__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;
    int rc = pthread_once(&table_once, build_tables);

    CT_ASSERT(rc == 0, "pthread_once failed (%d)", rc);
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        uint32_t lo, hi;
        memcpy(&w, p, 8);
        /* Little-endian load order (the only byte order cortado builds
         * for; see the check in storage_impl.h). */
        lo = (uint32_t)w ^ c;
        hi = (uint32_t)(w >> 32);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
            table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_HW_CRC 1

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/* Decided once; relaxed is enough since every thread computes the same
 * value (0 unknown, 1 software, 2 hardware). */
static _Atomic int impl;

static bool use_hw(void)
{
    int v = atomic_load_explicit(&impl, memory_order_relaxed);

    if (v == 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("sse4.2") ? 2 : 1;
        atomic_store_explicit(&impl, v, memory_order_relaxed);
    }
    return v == 2;
}
#endif

uint32_t ct_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (len == 0)
        return crc;
#ifdef HAVE_HW_CRC
    if (use_hw())
        return crc32c_hw(crc, buf, len);
#endif
    return ct__crc32c_sw(crc, buf, len);
}
