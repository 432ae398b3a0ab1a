/* Helpers shared by the storage tests (see storage_test.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_test.h"

char *stu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    p = malloc(strlen(base) + 32);
    assert_non_null(p);
    sprintf(p, "%s/ct_storage_XXXXXX", base);
    if (mkdtemp(p) == NULL)
        fail_msg("mkdtemp %s failed", p);
    return p;
}

static void rm_rec(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        chmod(path, 0700);
        d = opendir(path);
        while (d != NULL && (e = readdir(d)) != NULL) {
            char *sub;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            sub = stu_path(path, e->d_name);
            rm_rec(sub);
            free(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void stu_rmtree(char *dir)
{
    if (dir == NULL)
        return;
    rm_rec(dir);
    free(dir);
}

char *stu_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

unsigned char *stu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

void stu_write(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void stu_overwrite(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);

    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(pwrite(fd, p, len, 0), (ssize_t)len);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    assert_int_equal(close(fd), 0);
}

bool stu_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

int stu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void push(struct stu_recs *out, const void *key, size_t klen,
                 const void *val, size_t vlen, uint64_t off)
{
    struct stu_rec *r;

    out->r = realloc(out->r, (out->n + 1) * sizeof(*out->r));
    assert_non_null(out->r);
    r = &out->r[out->n++];
    r->key = malloc(klen + 1);
    r->val = malloc(vlen + 1);
    assert_non_null(r->key);
    assert_non_null(r->val);
    memcpy(r->key, key, klen);
    r->key[klen] = '\0';
    if (vlen > 0)
        memcpy(r->val, val, vlen);
    r->klen = klen;
    r->vlen = vlen;
    r->offset = off;
}

bool stu_parse_minidb(const unsigned char *buf, size_t len,
                      struct stu_recs *out)
{
    size_t off = 0;

    memset(out, 0, sizeof(*out));
    while (off < len) {
        uint32_t k, v;
        if (len - off < 8)
            return false;
        k = le32(buf + off);
        v = le32(buf + off + 4);
        if (k == 0 || v == 0 || k > INT32_MAX || v > INT32_MAX ||
            (uint64_t)k + v > len - off - 8)
            return false;
        push(out, buf + off + 8, k, buf + off + 8 + k, v, off);
        off += 8 + (size_t)k + v;
    }
    return true;
}

int stu_capture(void *ctx, const char *key, size_t klen,
                const struct ct_db_iov *iov, size_t n, uint64_t vlen,
                ct_status_t *st)
{
    struct stu_recs *out = ctx;
    unsigned char *v = malloc(vlen + 1);
    size_t i, off = 0;

    (void)st;
    assert_non_null(v);
    for (i = 0; i < n; i++) {
        if (iov[i].len > 0)
            memcpy(v + off, iov[i].base, iov[i].len);
        off += iov[i].len;
    }
    assert_int_equal(off, vlen);
    push(out, key, klen, v, vlen, 0);
    free(v);
    return CT_OK;
}

void stu_recs_free(struct stu_recs *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->r[i].key);
        free(r->r[i].val);
    }
    free(r->r);
    memset(r, 0, sizeof(*r));
}

void stu_save(const char *path, const struct ct_save_item *items, size_t n)
{
    ct_status_t st;
    int rc = ct_db_save_items("minidb", path, NULL, 0, items, n, NULL, &st);

    if (rc != CT_OK)
        fail_msg("save %s: %s", path, st.msg);
}
