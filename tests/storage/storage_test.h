/* Helpers shared by the storage tests: temporary directories, whole-file
 * I/O, a reference minidb parser and a serializer record sink. All abort
 * the test (cmocka fail) on unexpected errors. */
#ifndef CT_TESTS_STORAGE_TEST_H
#define CT_TESTS_STORAGE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/storage.h"
#include "storage/storage_impl.h"

/* A new empty directory under $TMPDIR (or /tmp); free with stu_rmtree,
 * which removes it and everything inside, then frees the string. */
char *stu_tmpdir(void);
void stu_rmtree(char *dir);
/* "<dir>/<name>", malloc'd (free with free). */
char *stu_path(const char *dir, const char *name);

/* Whole file into a malloc'd buffer (NULL when it cannot be read). */
unsigned char *stu_read(const char *path, size_t *len);
/* Plain write (not crash-safe), for building test inputs. */
void stu_write(const char *path, const void *p, size_t len);
/* Overwrites in place without truncating first (fast on file systems
 * that discard freed blocks), then sets the size to len. */
void stu_overwrite(const char *path, const void *p, size_t len);
bool stu_exists(const char *path);
/* Number of entries of dir, "." and ".." excluded. */
int stu_count_entries(const char *dir);

struct stu_rec {
    char *key;
    size_t klen;
    unsigned char *val;
    size_t vlen;
    uint64_t offset;
};

struct stu_recs {
    struct stu_rec *r;
    size_t n;
};

/* Parses a minidb image the simple way; returns false on any framing
 * problem. */
bool stu_parse_minidb(const unsigned char *buf, size_t len,
                      struct stu_recs *out);
/* A ct__record_cb that appends copies to a struct stu_recs (ctx). */
int stu_capture(void *ctx, const char *key, size_t klen,
                const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                ct_status_t *st);
void stu_recs_free(struct stu_recs *r);

/* Saves one tensor / items to path as minidb; asserts success. */
void stu_save(const char *path, const struct ct_save_item *items, size_t n);

#endif
