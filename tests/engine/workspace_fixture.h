/* Shared fixtures of the workspace tests (test_workspace.c and
 * test_workspace_forward.c): an engine with one root workspace, and
 * helpers that create blobs, children and forwarded children and list
 * names. static inline so a file may leave some unused. Include after
 * cmocka.h and test_util.h. */
#ifndef CT_TESTS_ENGINE_WORKSPACE_FIXTURE_H
#define CT_TESTS_ENGINE_WORKSPACE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/workspace.h"
#include "engine/engine_impl.h"
#include "test_util.h"

/* An engine and one root workspace. */
static inline int setup_env(void **state)
{
    struct tu_env *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    tu_env_init(e);
    *state = e;
    return 0;
}

/* Frees the fixture; the engine asserts that every workspace is gone, so
 * a test that leaks a child workspace fails loudly here. */
static inline int teardown_env(void **state)
{
    struct tu_env *e = *state;

    tu_env_destroy(e);
    free(e);
    return 0;
}

/* ---- helpers ---- */

static inline ct_workspace_t *root_ws(void **state)
{
    return ((struct tu_env *)*state)->ws;
}

static inline ct_engine_t *engine_of(void **state)
{
    return ((struct tu_env *)*state)->eng;
}

static inline int n_workspaces(ct_engine_t *eng)
{
    return atomic_load_explicit(&eng->n_workspaces, memory_order_relaxed);
}

static inline ct_blob_t *create(ct_workspace_t *ws, const char *name)
{
    ct_blob_t *b = NULL;
    ct_status_t st;

    if (ct_workspace_create_blob(ws, name, &b, &st) != CT_OK)
        fail_msg("create_blob %s: %s", name, st.msg);
    return b;
}

static inline ct_workspace_t *new_child(ct_workspace_t *parent)
{
    struct ct_workspace_config cfg = {NULL, parent};
    ct_workspace_t *ws;
    ct_status_t st;

    if (ct_workspace_new(ct_workspace_engine(parent), &cfg, &ws, &st) != CT_OK)
        fail_msg("workspace_new: %s", st.msg);
    return ws;
}

static inline ct_workspace_t *
new_forwarded1(ct_workspace_t *parent, const char *inner, const char *outer)
{
    ct_workspace_t *ws;
    ct_status_t st;

    if (ct_workspace_new_forwarded(parent, &inner, &outer, 1, &ws, &st) !=
        CT_OK)
        fail_msg("new_forwarded: %s", st.msg);
    return ws;
}

/* Feeds a 1-d float tensor {v, v+1, ...} of n elements. */
static inline ct_tensor_t *feed_seq(ct_workspace_t *ws, const char *name, int n,
                                    float v)
{
    float data[16];
    int64_t dims[1];
    int i;

    assert_true(n <= 16);
    for (i = 0; i < n; i++)
        data[i] = v + (float)i;
    dims[0] = n;
    return tu_feed_f32(ws, name, 1, dims, data);
}

/* Joins a name list as "a,b,c" into buf, for compact assertions. */
static inline const char *joined(const char **names, size_t n, char *buf,
                                 size_t size)
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; i < n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                names[i]);
    return buf;
}

static inline const char *local_names(const ct_workspace_t *ws, char *buf,
                                      size_t size)
{
    const char **names;
    ct_status_t st;
    size_t n;

    if (ct_workspace_list_local_blobs(ws, &names, &n, &st) != CT_OK)
        fail_msg("list_local_blobs: %s", st.msg);
    joined(names, n, buf, size);
    ct_free((void *)names);
    return buf;
}

static inline const char *all_names(const ct_workspace_t *ws, char *buf,
                                    size_t size)
{
    const char **names;
    ct_status_t st;
    size_t n;

    if (ct_workspace_list_blobs(ws, &names, &n, &st) != CT_OK)
        fail_msg("list_blobs: %s", st.msg);
    joined(names, n, buf, size);
    ct_free((void *)names);
    return buf;
}

#endif /* CT_TESTS_ENGINE_WORKSPACE_FIXTURE_H */
