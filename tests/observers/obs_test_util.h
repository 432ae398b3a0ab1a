/* Shared fixtures of the observer tests: an engine + workspace, a NetDef
 * under construction, a private temporary folder for observer files, and
 * small file helpers. Everything is static inline so each test file uses
 * what it needs without unused-function warnings. Include after cmocka.h.
 */
#ifndef CT_TESTS_OBS_TEST_UTIL_H
#define CT_TESTS_OBS_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/net.h"
#include "cortado/observer.h"
#include "test_util.h"

struct ofx {
    struct tu_env env;
    Caffe2__NetDef *def;
    ct_net_t *net;
    ct_status_t st;
    char dir[64];
    char path[4][256];
    int next_path;
};

/* Removes dir and what it holds (subfolders included). */
static inline void ofx_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    struct stat sb;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >=
            sizeof(p))
            continue;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            ofx_rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline int ofx_setup(void **state)
{
    struct ofx *f = calloc(1, sizeof(*f));
    static int seq;

    if (f == NULL)
        return -1;
    tu_env_init(&f->env);
    ct_status_clear(&f->st);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ct_obs_%d_%d", (int)getpid(), seq++);
    ofx_rmtree(f->dir);
    if (mkdir(f->dir, 0755) != 0)
        return -1;
    *state = f;
    return 0;
}

/* The net goes before the workspace whose blobs it binds. */
static inline int ofx_teardown(void **state)
{
    struct ofx *f = *state;

    ct_net_free(f->net);
    if (f->def != NULL)
        tu_net_free(f->def);
    tu_env_destroy(&f->env);
    ofx_rmtree(f->dir);
    free(f);
    return 0;
}

/* "<dir>/<name>" in one of four rotating buffers. */
static inline const char *ofx_path(struct ofx *f, const char *name)
{
    char *p = f->path[f->next_path++ % 4];

    snprintf(p, sizeof(f->path[0]), "%s/%s", f->dir, name);
    return p;
}

static inline Caffe2__OperatorDef *ofx_op(Caffe2__NetDef *def, const char *type,
                                          const char *name, const char *in,
                                          const char *out)
{
    Caffe2__OperatorDef *op = tu_op(type, in, out);

    if (name != NULL)
        tu_op_set_name(op, name);
    tu_net_add_op(def, op);
    return op;
}

/* ConstantFill of a [2, 2] FLOAT tensor. */
static inline Caffe2__OperatorDef *
ofx_fill(Caffe2__NetDef *def, const char *name, const char *out, float value)
{
    static const int64_t shape[] = {2, 2};
    Caffe2__OperatorDef *op = ofx_op(def, "ConstantFill", name, "", out);

    tu_arg_ints(op, "shape", 2, shape);
    tu_arg_f(op, "value", value);
    return op;
}

/* fill "a" -> X (1.0), Relu "b" X -> Y, Relu "c" Y -> Z. */
static inline void ofx_chain3(struct ofx *f, const char *name)
{
    f->def = tu_net(name, "", "");
    ofx_fill(f->def, "a", "X", 1);
    ofx_op(f->def, "Relu", "b", "X", "Y");
    ofx_op(f->def, "Relu", "c", "Y", "Z");
}

static inline int ofx_compile(struct ofx *f, enum ct_executor ex)
{
    struct ct_net_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.executor = (int)ex;
    ct_status_clear(&f->st);
    return ct_net_new(f->env.ws, f->def, &cfg, &f->net, &f->st);
}

static inline void ofx_compile_ok(struct ofx *f, enum ct_executor ex)
{
    if (ofx_compile(f, ex) != CT_OK)
        fail_msg("ct_net_new: %s", f->st.msg);
}

static inline void ofx_run_ok(struct ofx *f)
{
    ct_status_clear(&f->st);
    if (ct_net_run(f->net, &f->st) != CT_OK)
        fail_msg("ct_net_run: %s", f->st.msg);
}

static inline ct_observer_t *ofx_spec(struct ofx *f, const char *spec)
{
    ct_observer_t *obs = NULL;

    if (ct_observer_create_from_spec(f->env.eng, spec, &obs, &f->st) != CT_OK)
        fail_msg("ct_observer_create_from_spec(%s): %s", spec, f->st.msg);
    return obs;
}

/* Makes the observer of spec and attaches it to f->net. */
static inline ct_observer_t *ofx_attach(struct ofx *f, const char *spec)
{
    ct_observer_t *obs = ofx_spec(f, spec);

    if (ct_net_add_observer(f->net, obs, &f->st) != CT_OK)
        fail_msg("ct_net_add_observer(%s): %s", spec, f->st.msg);
    return obs;
}

/* The whole file as a NUL-terminated malloc'd string, or NULL. */
static inline char *ofx_read(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        fclose(fp);
        return NULL;
    }
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static inline bool ofx_exists(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0;
}

/* Asserts the file at path holds exactly want. */
static inline void ofx_assert_file(const char *path, const char *want)
{
    char *got = ofx_read(path);

    if (got == NULL)
        fail_msg("cannot read %s", path);
    if (strcmp(got, want) != 0) {
        print_error("%s holds:\n%s\nwant:\n%s\n", path, got, want);
        free(got);
        fail();
    }
    free(got);
}

#endif /* CT_TESTS_OBS_TEST_UTIL_H */
