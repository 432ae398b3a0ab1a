/* cortado test support: see test_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cortado/engine.h"
#include "cortado/observer.h"
#include "test_util.h"

/* The builders below allocate with malloc; protobuf-c messages built with
 * them are freed with the matching tu_*_free, which walks the same layout. */

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL)
        fail_msg("out of memory in test support");
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = xmalloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

const char *tu_data_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", CT_DATA_DIR, rel);
    return buf;
}

bool tu_have_data(void)
{
    struct stat sb;
    if (stat(CT_DATA_DIR, &sb) == 0 && S_ISDIR(sb.st_mode))
        return true;
    fprintf(stderr, "note: %s is absent; skipping tests on shared data\n",
            CT_DATA_DIR);
    return false;
}

static void split_csv(const char *csv, char ***out, size_t *n)
{
    const char *p = csv;
    size_t cnt = 0, i = 0;

    *out = NULL;
    *n = 0;
    if (csv == NULL || *csv == '\0')
        return;
    for (p = csv; *p; p++)
        cnt += *p == ',';
    cnt++;
    *out = xmalloc(cnt * sizeof(char *));
    p = csv;
    while (i < cnt) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        (*out)[i] = xmalloc(len + 1);
        memcpy((*out)[i], p, len);
        i++;
        p = e ? e + 1 : p + len;
    }
    *n = cnt;
}

Caffe2__OperatorDef *tu_op(const char *type, const char *inputs,
                           const char *outputs)
{
    Caffe2__OperatorDef *op = xmalloc(sizeof(*op));
    caffe2__operator_def__init(op);
    op->type = xstrdup(type);
    split_csv(inputs, &op->input, &op->n_input);
    split_csv(outputs, &op->output, &op->n_output);
    return op;
}

void tu_op_set_name(Caffe2__OperatorDef *op, const char *name)
{
    op->name = xstrdup(name);
}

static Caffe2__Argument *add_arg(Caffe2__OperatorDef *op, const char *name)
{
    Caffe2__Argument *a = xmalloc(sizeof(*a));
    caffe2__argument__init(a);
    a->name = xstrdup(name);
    op->arg = realloc(op->arg, (op->n_arg + 1) * sizeof(*op->arg));
    if (op->arg == NULL)
        fail_msg("out of memory in test support");
    op->arg[op->n_arg++] = a;
    return a;
}

void tu_arg_i(Caffe2__OperatorDef *op, const char *name, int64_t v)
{
    Caffe2__Argument *a = add_arg(op, name);
    a->has_i = 1;
    a->i = v;
}

void tu_arg_f(Caffe2__OperatorDef *op, const char *name, float v)
{
    Caffe2__Argument *a = add_arg(op, name);
    a->has_f = 1;
    a->f = v;
}

void tu_arg_s(Caffe2__OperatorDef *op, const char *name, const char *v)
{
    Caffe2__Argument *a = add_arg(op, name);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)xstrdup(v);
}

void tu_arg_ints(Caffe2__OperatorDef *op, const char *name, size_t n,
                 const int64_t *v)
{
    Caffe2__Argument *a = add_arg(op, name);
    a->n_ints = n;
    a->ints = xmalloc(n * sizeof(int64_t));
    if (n)
        memcpy(a->ints, v, n * sizeof(int64_t));
}

void tu_arg_floats(Caffe2__OperatorDef *op, const char *name, size_t n,
                   const float *v)
{
    Caffe2__Argument *a = add_arg(op, name);
    a->n_floats = n;
    a->floats = xmalloc(n * sizeof(float));
    if (n)
        memcpy(a->floats, v, n * sizeof(float));
}

void tu_arg_strings(Caffe2__OperatorDef *op, const char *name, size_t n,
                    const char *const *v)
{
    Caffe2__Argument *a = add_arg(op, name);
    size_t i;
    a->n_strings = n;
    a->strings = xmalloc(n * sizeof(ProtobufCBinaryData));
    for (i = 0; i < n; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)xstrdup(v[i]);
    }
}

static void free_strv(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void tu_op_free(Caffe2__OperatorDef *op)
{
    size_t i, k;
    if (op == NULL)
        return;
    free_strv(op->input, op->n_input);
    free_strv(op->output, op->n_output);
    for (i = 0; i < op->n_arg; i++) {
        Caffe2__Argument *a = op->arg[i];
        free(a->name);
        free(a->s.data);
        free(a->ints);
        free(a->floats);
        for (k = 0; k < a->n_strings; k++)
            free(a->strings[k].data);
        free(a->strings);
        free(a);
    }
    free(op->arg);
    if (op->type != NULL && op->type != protobuf_c_empty_string)
        free(op->type);
    if (op->name != NULL && op->name != protobuf_c_empty_string)
        free(op->name);
    free(op);
}

Caffe2__NetDef *tu_net(const char *name, const char *ext_inputs,
                       const char *ext_outputs)
{
    Caffe2__NetDef *net = xmalloc(sizeof(*net));
    caffe2__net_def__init(net);
    net->name = xstrdup(name);
    split_csv(ext_inputs, &net->external_input, &net->n_external_input);
    split_csv(ext_outputs, &net->external_output, &net->n_external_output);
    return net;
}

void tu_net_add_op(Caffe2__NetDef *net, Caffe2__OperatorDef *op)
{
    net->op = realloc(net->op, (net->n_op + 1) * sizeof(*net->op));
    if (net->op == NULL)
        fail_msg("out of memory in test support");
    net->op[net->n_op++] = op;
}

void tu_net_free(Caffe2__NetDef *net)
{
    size_t i;
    if (net == NULL)
        return;
    for (i = 0; i < net->n_op; i++)
        tu_op_free(net->op[i]);
    free(net->op);
    free_strv(net->external_input, net->n_external_input);
    free_strv(net->external_output, net->n_external_output);
    if (net->type != NULL && net->type != protobuf_c_empty_string)
        free(net->type);
    free(net->name);
    free(net);
}

void tu_env_init(struct tu_env *e)
{
    ct_status_t st;
    assert_int_equal(ct_engine_new(NULL, &e->eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(e->eng, NULL, &e->ws, &st), CT_OK);
}

void tu_env_destroy(struct tu_env *e)
{
    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    e->ws = NULL;
    e->eng = NULL;
}

ct_tensor_t *tu_feed(ct_workspace_t *ws, const char *name, ct_dtype_t dt,
                     int ndim, const int64_t *dims, const void *data)
{
    ct_status_t st;
    ct_blob_t *b;
    ct_tensor_t *t;

    assert_int_equal(ct_workspace_create_blob(ws, name, &b, &st), CT_OK);
    assert_int_equal(
        ct_blob_get_mutable_tensor(b, ct_workspace_engine(ws), &t, &st), CT_OK);
    if (ct_tensor_resize(t, dt, ndim, dims, &st) != CT_OK)
        fail_msg("tu_feed %s: %s", name, st.msg);
    if (data != NULL && ct_tensor_numel(t) > 0) {
        if (dt == CT_DTYPE_STRING) {
            const char *const *s = data;
            int64_t i;
            for (i = 0; i < ct_tensor_numel(t); i++)
                assert_int_equal(
                    ct_tensor_set_string(t, i, s[i], strlen(s[i]), &st), CT_OK);
        } else {
            memcpy(ct_tensor_data(t), data, ct_tensor_nbytes(t));
        }
    }
    return t;
}

ct_tensor_t *tu_feed_f32(ct_workspace_t *ws, const char *name, int ndim,
                         const int64_t *dims, const float *data)
{
    return tu_feed(ws, name, CT_DTYPE_F32, ndim, dims, data);
}

ct_tensor_t *tu_fetch(ct_workspace_t *ws, const char *name)
{
    ct_blob_t *b = ct_workspace_get_blob(ws, name);
    ct_tensor_t *t;
    if (b == NULL)
        fail_msg("blob %s not found", name);
    t = ct_blob_get_tensor(b);
    if (t == NULL)
        fail_msg("blob %s holds no tensor", name);
    return t;
}

int tu_run_op(ct_workspace_t *ws, const Caffe2__OperatorDef *op,
              ct_status_t *st)
{
    ct_status_clear(st);
    return ct_workspace_run_operator_once(ws, op, st);
}

void tu_assert_close_f32(const float *a, const float *b, size_t n, float rtol,
                         float atol)
{
    size_t i;
    for (i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= atol + rtol * fabsf(b[i])) && !(isnan(a[i]) && isnan(b[i])))
            fail_msg("element %zu: got %.9g, want %.9g (|diff| %.3g)", i,
                     (double)a[i], (double)b[i], (double)d);
    }
}

void tu_assert_status(const ct_status_t *st, int rc, int code,
                      const char *needle)
{
    if (rc != code || st->code != code)
        fail_msg("want %s, got rc %s / status %s: %s", ct_err_name(code),
                 ct_err_name(rc), ct_err_name(st->code), st->msg);
    if (needle != NULL && strstr(st->msg, needle) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", st->msg, needle);
}

void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i;
    for (i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) / (double)(1ull << 24));
    }
}

/* ---- allocation fault injection ---- */

static atomic_long fail_countdown; /* <= 0: off */
static atomic_long live_blocks;

static bool should_fail(void)
{
    long k = atomic_load(&fail_countdown);
    if (k <= 0)
        return false;
    if (k == 1)
        return true; /* stays at 1: every later call fails too */
    atomic_fetch_sub(&fail_countdown, 1);
    return false;
}

static void *hook_malloc(size_t size, void *ctx)
{
    void *p;
    (void)ctx;
    if (should_fail())
        return NULL;
    p = malloc(size);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

static void *hook_realloc(void *old, size_t size, void *ctx)
{
    void *p;
    (void)ctx;
    if (should_fail())
        return NULL;
    p = realloc(old, size);
    if (p && old == NULL)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

static void hook_free(void *p, void *ctx)
{
    (void)ctx;
    if (p) {
        atomic_fetch_sub(&live_blocks, 1);
        free(p);
    }
}

static void *hook_aligned(size_t align, size_t size, void *ctx)
{
    void *p = NULL;
    (void)ctx;
    if (should_fail())
        return NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    atomic_fetch_add(&live_blocks, 1);
    return p;
}

static void hook_aligned_free(void *p, size_t size, void *ctx)
{
    (void)size;
    hook_free(p, ctx);
}

static bool hooks_installed;

static void install_hooks(void)
{
    static const struct ct_allocator a = {hook_malloc,       hook_realloc,
                                          hook_free,         hook_aligned,
                                          hook_aligned_free, NULL};
    if (!hooks_installed) {
        ct_set_allocator(&a);
        hooks_installed = true;
    }
}

void tu_fail_alloc_after(long k)
{
    install_hooks();
    atomic_store(&fail_countdown, k);
}

void tu_fail_alloc_off(void)
{
    install_hooks();
    atomic_store(&fail_countdown, 0);
}

long tu_alloc_live(void)
{
    install_hooks();
    return atomic_load(&live_blocks);
}

/* ---- concurrency watch ---- */

struct tu_overlap {
    char op_type[64];
    atomic_int active;
    atomic_int max;
};

static int overlap_start(void *ctx, const struct ct_observer_event *ev,
                         ct_status_t *st)
{
    struct tu_overlap *w = ctx;
    int now, seen;
    (void)st;
    if (strcmp(ev->op->type, w->op_type) != 0)
        return CT_OK;
    now = atomic_fetch_add(&w->active, 1) + 1;
    seen = atomic_load(&w->max);
    while (now > seen && !atomic_compare_exchange_weak(&w->max, &seen, now))
        ;
    return CT_OK;
}

static int overlap_end(void *ctx, const struct ct_observer_event *ev,
                       ct_status_t *st)
{
    struct tu_overlap *w = ctx;
    (void)st;
    if (strcmp(ev->op->type, w->op_type) == 0)
        atomic_fetch_sub(&w->active, 1);
    return CT_OK;
}

static void overlap_free(void *ctx)
{
    (void)ctx; /* the watch belongs to the creator, freed with the engine */
}

static int overlap_create(void *ctx, ct_net_t *net, ct_observer_t **out,
                          ct_status_t *st)
{
    struct ct_observer_cbs cbs;
    (void)net;
    memset(&cbs, 0, sizeof(cbs));
    cbs.name = "overlap";
    cbs.op_start_cb = overlap_start;
    cbs.op_end_cb = overlap_end;
    cbs.free_cb = overlap_free;
    return ct_observer_new(&cbs, ctx, out, st);
}

struct tu_overlap *tu_overlap_watch(ct_engine_t *eng, const char *op_type)
{
    struct tu_overlap *w = xmalloc(sizeof(*w));
    ct_status_t st;
    snprintf(w->op_type, sizeof(w->op_type), "%s", op_type);
    atomic_init(&w->active, 0);
    atomic_init(&w->max, 0);
    if (ct_engine_add_observer_creator(eng, overlap_create, w, free, &st) !=
        CT_OK)
        fail_msg("tu_overlap_watch: %s", st.msg);
    return w;
}

int tu_overlap_max(const struct tu_overlap *w)
{
    return atomic_load(&((struct tu_overlap *)w)->max);
}
