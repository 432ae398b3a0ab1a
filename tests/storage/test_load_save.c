/* Save / Load / DBExists (storage/load_save.c, storage/load_op.c): the
 * port of Caffe2's load_save_test.py (spec §8.4, db_type minidb) plus
 * cortado's own rules: all-or-nothing Load, allow_incomplete, std::string
 * blobs, the path rule (checklist C10) and DBExists on unknown types. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cortado/proto.h"
#include "storage_test.h"
#include "test_util.h"

#define N_ARR 10

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    char *dir;
    char *path;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct ct_workspace_config cfg = {NULL, NULL};

    if (e == NULL)
        return -1;
    e->dir = stu_tmpdir();
    e->path = stu_path(e->dir, "db.minidb");
    cfg.root_folder = e->dir;
    if (ct_engine_new(NULL, &e->eng, NULL) != CT_OK ||
        ct_workspace_new(e->eng, &cfg, &e->ws, NULL) != CT_OK)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    free(e->path);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

static void reset_ws(struct env *e)
{
    struct ct_workspace_config cfg = {NULL, NULL};

    cfg.root_folder = e->dir;
    ct_workspace_free(e->ws);
    assert_int_equal(ct_workspace_new(e->eng, &cfg, &e->ws, NULL), CT_OK);
}

static size_t n_blobs(const struct env *e)
{
    const char **names;
    size_t n;

    assert_int_equal(ct_workspace_list_blobs(e->ws, &names, &n, NULL), CT_OK);
    ct_free(names);
    return n;
}

/* The 10 arrays of testLoadSave: permutation(6).reshape(2, 3) in f16, f32,
 * f64, bool, i8, i16, i32, i64, u8, u16, named "0".."9". */
static const ct_dtype_t arr_dt[N_ARR] = {
    CT_DTYPE_F16, CT_DTYPE_F32, CT_DTYPE_F64, CT_DTYPE_BOOL, CT_DTYPE_I8,
    CT_DTYPE_I16, CT_DTYPE_I32, CT_DTYPE_I64, CT_DTYPE_U8,   CT_DTYPE_U16};
static const int perm[6] = {3, 0, 5, 1, 4, 2};

static void fill_value(ct_dtype_t dt, void *p, int64_t i, int v)
{
    switch (dt) {
    case CT_DTYPE_F16:
        ((uint16_t *)p)[i] = ct_f32_to_f16((float)v);
        break;
    case CT_DTYPE_F32:
        ((float *)p)[i] = (float)v;
        break;
    case CT_DTYPE_F64:
        ((double *)p)[i] = v;
        break;
    case CT_DTYPE_BOOL:
    case CT_DTYPE_U8:
        ((uint8_t *)p)[i] = (uint8_t)(dt == CT_DTYPE_BOOL ? v & 1 : v);
        break;
    case CT_DTYPE_I8:
        ((int8_t *)p)[i] = (int8_t)-v;
        break;
    case CT_DTYPE_I16:
        ((int16_t *)p)[i] = (int16_t)(-300 * v);
        break;
    case CT_DTYPE_U16:
        ((uint16_t *)p)[i] = (uint16_t)(9000 * v);
        break;
    case CT_DTYPE_I32:
        ((int32_t *)p)[i] = -70000 * v;
        break;
    default:
        ((int64_t *)p)[i] = (int64_t)v << 40;
        break;
    }
}

static void feed_arrays(ct_workspace_t *ws, int first, int n)
{
    const int64_t dims[2] = {2, 3};
    int k;

    for (k = first; k < first + n; k++) {
        char name[16];
        ct_tensor_t *t;
        int i;
        snprintf(name, sizeof(name), "%d", k);
        t = tu_feed(ws, name, arr_dt[k % N_ARR], 2, dims, NULL);
        for (i = 0; i < 6; i++)
            fill_value(arr_dt[k % N_ARR], ct_tensor_data(t), i, perm[i] + k);
    }
}

static void check_arrays(ct_workspace_t *ws, const char *prefix, int first,
                         int n)
{
    int k;

    for (k = first; k < first + n; k++) {
        char name[32];
        unsigned char want[6 * 8];
        ct_tensor_t *t;
        int i;
        snprintf(name, sizeof(name), "%s%d", prefix, k);
        t = tu_fetch(ws, name);
        assert_int_equal(ct_tensor_dtype(t), arr_dt[k % N_ARR]);
        assert_int_equal(ct_tensor_ndim(t), 2);
        assert_int_equal(ct_tensor_dim(t, 0), 2);
        assert_int_equal(ct_tensor_dim(t, 1), 3);
        for (i = 0; i < 6; i++)
            fill_value(arr_dt[k % N_ARR], want, i, perm[i] + k);
        assert_memory_equal(ct_tensor_cdata(t), want, ct_tensor_nbytes(t));
    }
}

static char *names_csv(const char *prefix, int first, int n)
{
    char *s = malloc((size_t)n * 16 + 1);
    size_t off = 0;
    int k;

    assert_non_null(s);
    s[0] = '\0';
    for (k = first; k < first + n; k++)
        off +=
            (size_t)sprintf(s + off, "%s%s%d", k > first ? "," : "", prefix, k);
    return s;
}

static Caffe2__OperatorDef *save_def(const char *inputs, const char *path)
{
    Caffe2__OperatorDef *op = tu_op("Save", inputs, "");
    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    return op;
}

static Caffe2__OperatorDef *load_def(const char *outputs, const char *path)
{
    Caffe2__OperatorDef *op = tu_op("Load", "", outputs);
    if (path != NULL)
        tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    return op;
}

static int run(struct env *e, Caffe2__OperatorDef *op, ct_status_t *st)
{
    int rc = tu_run_op(e->ws, op, st);
    tu_op_free(op);
    return rc;
}

static void run_ok(struct env *e, Caffe2__OperatorDef *op)
{
    ct_status_t st;
    if (run(e, op, &st) != CT_OK)
        fail_msg("%s", st.msg);
}

static void run_fails(struct env *e, Caffe2__OperatorDef *op, int code,
                      const char *needle)
{
    ct_status_t st;
    int rc = run(e, op, &st);

    if (rc != code || strstr(st.msg, needle) == NULL)
        fail_msg("want %s \"%s\", got %s \"%s\"", ct_err_name(code), needle,
                 ct_err_name(rc), rc == CT_OK ? "(ok)" : st.msg);
}

/* Records per blob name (the key cut at its last "#%"). */
static size_t count_chunks(const char *path, const char *name)
{
    struct stu_recs r;
    unsigned char *buf;
    size_t len, i, n = 0;

    buf = stu_read(path, &len);
    assert_non_null(buf);
    assert_true(stu_parse_minidb(buf, len, &r));
    for (i = 0; i < r.n; i++) {
        char *sep = NULL, *p = r.r[i].key;
        while ((p = strstr(p, "#%")) != NULL)
            sep = p++;
        if (sep != NULL && (size_t)(sep - r.r[i].key) == strlen(name) &&
            memcmp(r.r[i].key, name, strlen(name)) == 0)
            n++;
    }
    stu_recs_free(&r);
    free(buf);
    return n;
}

/* ---- load_save_test.py ---- */

static void test_load_save_all_dtypes_every_load_form(void **state)
{
    struct env *e = *state;
    char *all = names_csv("", 0, N_ARR);
    Caffe2__OperatorDef *op;
    int keep;

    feed_arrays(e->ws, 0, N_ARR);
    run_ok(e, save_def(all, e->path));
    for (keep = 0; keep <= 1; keep++) {
        /* explicit outputs, overwriting */
        op = load_def(all, e->path);
        tu_arg_i(op, "keep_device", keep);
        run_ok(e, op);
        check_arrays(e->ws, "", 0, N_ARR);
        /* load_all with no outputs, after a reset */
        reset_ws(e);
        op = load_def("", e->path);
        tu_arg_i(op, "load_all", 1);
        tu_arg_i(op, "keep_device", keep);
        run_ok(e, op);
        check_arrays(e->ws, "", 0, N_ARR);
        assert_int_equal(n_blobs(e), N_ARR);
        /* load_all with the explicit names */
        reset_ws(e);
        op = load_def(all, e->path);
        tu_arg_i(op, "load_all", 1);
        run_ok(e, op);
        check_arrays(e->ws, "", 0, N_ARR);
    }
    free(all);
}

static void test_save_repeated_inputs_fail(void **state)
{
    struct env *e = *state;

    feed_arrays(e->ws, 0, 2);
    run_fails(e, save_def("0,1,0,1", e->path), CT_EARG, "Duplicated input: 0");
}

static void test_load_excess_blobs_fail(void **state)
{
    struct env *e = *state;
    char *all = names_csv("", 0, N_ARR);
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, N_ARR);
    run_ok(e, save_def(all, e->path));
    run_fails(e, load_def("0,1,0", e->path), CT_EARG,
              "Duplicated source blob name: 0");
    op = load_def("9,10", e->path);
    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_ENOTFOUND,
              "Output blob name 10 does not exist in the db(s).");
    op = load_def("10,11", e->path);
    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_ENOTFOUND, "Output blob name 10 does not exist");
    free(all);
}

static void test_load_truncated_file_fails(void **state)
{
    struct env *e = *state;
    char *all = names_csv("", 0, N_ARR);
    unsigned char zeros[20] = {0};
    Caffe2__OperatorDef *op;

    /* Caffe2's testTruncatedFile really leaves 20 zero bytes. */
    stu_write(e->path, zeros, sizeof(zeros));
    run_fails(e, load_def(all, e->path), CT_ECORRUPT, "key length 0");
    op = load_def("", e->path);
    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_ECORRUPT, "is not positive");
    free(all);
}

static void test_save_blob_name_overrides(void **state)
{
    struct env *e = *state;
    static const char *const over[3] = {"x", "y", "z"};
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, 3);
    op = save_def("0,1,2", e->path);
    tu_arg_s(op, "strip_prefix", ".temp");
    tu_arg_strings(op, "blob_name_overrides", 3, over);
    run_fails(e, op, CT_EARG, "mutually exclusive");
    op = save_def("0,1,2", e->path);
    tu_arg_strings(op, "blob_name_overrides", 2, over);
    run_fails(e, op, CT_EARG, "blob_name_overrides mismatch");
    op = save_def("0,1,2", e->path);
    tu_arg_strings(op, "blob_name_overrides", 3, over);
    run_ok(e, op);

    reset_ws(e);
    op = load_def("", e->path);
    tu_arg_i(op, "load_all", 1);
    run_ok(e, op);
    assert_int_equal(n_blobs(e), 3);
    assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "x")), arr_dt[0]);
    assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "z")), arr_dt[2]);
    {
        static const char *const src1[1] = {"x"};
        static const char *const src3[3] = {"x", "y", "z"};
        op = load_def("blob_x", e->path);
        tu_arg_strings(op, "source_blob_names", 1, src1);
        run_ok(e, op);
        assert_int_equal(n_blobs(e), 4);
        op = load_def("blob_x,blob_y,blob_z", e->path);
        tu_arg_strings(op, "source_blob_names", 3, src3);
        run_ok(e, op);
        assert_int_equal(n_blobs(e), 6);
        assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "blob_y")),
                            ct_tensor_cdata(tu_fetch(e->ws, "y")), 6 * 4);
    }
}

static void test_load_missing_file_fails(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op = load_def("", e->path);

    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_ENOTFOUND, "Cannot open file");
}

static void save_two_dbs(struct env *e, char **db1, char **db2, bool same)
{
    char *a = names_csv("", 0, 10), *b = names_csv("", 10, 10);

    *db1 = stu_path(e->dir, "db1");
    *db2 = stu_path(e->dir, "db2");
    feed_arrays(e->ws, 0, 20);
    run_ok(e, save_def(a, *db1));
    run_ok(e, save_def(same ? a : b, *db2));
    reset_ws(e);
    free(a);
    free(b);
}

static void test_load_multiple_files_given_source_names(void **state)
{
    struct env *e = *state;
    char *db1, *db2, *all = names_csv("", 0, 20), **src = calloc(20, 8);
    const char *dbs[2];
    Caffe2__OperatorDef *op;
    int i;

    save_two_dbs(e, &db1, &db2, false);
    dbs[0] = db1;
    dbs[1] = db2;
    for (i = 0; i < 20; i++) {
        src[i] = malloc(16);
        sprintf(src[i], "%d", i);
    }
    op = load_def(all, NULL);
    tu_arg_strings(op, "dbs", 2, dbs);
    tu_arg_strings(op, "source_blob_names", 20, (const char *const *)src);
    run_ok(e, op);
    assert_int_equal(n_blobs(e), 20);
    check_arrays(e->ws, "", 0, 20);
    for (i = 0; i < 20; i++)
        free(src[i]);
    free(src);
    free(all);
    free(db1);
    free(db2);
}

static void test_load_all_multiple_files(void **state)
{
    struct env *e = *state;
    char *db1, *db2;
    const char *dbs[2];
    Caffe2__OperatorDef *op;

    save_two_dbs(e, &db1, &db2, false);
    dbs[0] = db1;
    dbs[1] = db2;
    op = load_def("", NULL);
    tu_arg_strings(op, "dbs", 2, dbs);
    tu_arg_i(op, "load_all", 1);
    run_ok(e, op);
    assert_int_equal(n_blobs(e), 20);
    check_arrays(e->ws, "", 0, 20);
    free(db1);
    free(db2);
}

static void test_load_all_multiple_files_same_key_fails(void **state)
{
    struct env *e = *state;
    char *db1, *db2;
    const char *dbs[2];
    Caffe2__OperatorDef *op;

    save_two_dbs(e, &db1, &db2, true);
    dbs[0] = db1;
    dbs[1] = db2;
    op = load_def("", NULL);
    tu_arg_strings(op, "dbs", 2, dbs);
    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_EEXIST, "Duplicate Key 0 is found!");
    /* All-or-nothing: nothing was loaded. */
    assert_int_equal(n_blobs(e), 0);
    free(db1);
    free(db2);
}

static void test_load_repeated_files_fail(void **state)
{
    struct env *e = *state;
    const char *dbs[2] = {e->path, e->path};
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, 1);
    run_ok(e, save_def("0", e->path));
    op = load_def("0", NULL);
    tu_arg_strings(op, "dbs", 2, dbs);
    run_fails(e, op, CT_EARG, "Duplicated db name");
    op = load_def("0", NULL);
    tu_arg_strings(op, "dbs", 2, dbs);
    tu_arg_s(op, "db_options", "some options");
    run_fails(e, op, CT_EARG, "Duplicated db name");
}

static const ct_dtype_t chunk_dt[9] = {
    CT_DTYPE_I8,  CT_DTYPE_I16, CT_DTYPE_I32, CT_DTYPE_I64, CT_DTYPE_U8,
    CT_DTYPE_U16, CT_DTYPE_F16, CT_DTYPE_F32, CT_DTYPE_F64};
static const char *const chunk_names[9] = {
    "int8_data",   "int16_data",   "int32_data", "int64_data", "uint8_data",
    "uint16_data", "float16_data", "float_data", "double_data"};

static void feed_chunk_blobs(struct env *e, int64_t numel)
{
    int k;

    for (k = 0; k < 9; k++) {
        ct_tensor_t *t =
            tu_feed(e->ws, chunk_names[k], chunk_dt[k], 1, &numel, NULL);
        unsigned char *p = ct_tensor_data(t);
        size_t i, nb = ct_tensor_nbytes(t);
        for (i = 0; i < nb; i++)
            p[i] = (unsigned char)(i * 131 + (size_t)k);
        if (chunk_dt[k] == CT_DTYPE_F16 || chunk_dt[k] == CT_DTYPE_F32 ||
            chunk_dt[k] == CT_DTYPE_F64)
            for (i = 0; i < nb; i++) /* keep the values finite */
                if (i % ct_dtype_size(chunk_dt[k]) ==
                    ct_dtype_size(chunk_dt[k]) - 1)
                    p[i] &= 0x3f;
    }
}

static char *chunk_csv(void)
{
    char *s = malloc(200);
    int k;

    s[0] = '\0';
    for (k = 0; k < 9; k++) {
        if (k > 0)
            strcat(s, ",");
        strcat(s, chunk_names[k]);
    }
    return s;
}

static void save_load_chunks(struct env *e, int64_t numel, bool has_chunk,
                             int64_t chunk, Caffe2__OperatorDef *extra,
                             size_t want)
{
    char *all = chunk_csv();
    Caffe2__OperatorDef *op = extra != NULL ? extra : save_def(all, e->path);
    ct_tensor_t *orig[9];
    int k;

    feed_chunk_blobs(e, numel);
    if (has_chunk)
        tu_arg_i(op, "chunk_size", chunk);
    run_ok(e, op);
    for (k = 0; k < 9; k++) {
        ct_status_t st;
        assert_int_equal(ct_tensor_new(e->eng, &orig[k], &st), CT_OK);
        assert_int_equal(
            ct_tensor_copy(orig[k], tu_fetch(e->ws, chunk_names[k]), &st),
            CT_OK);
        if (want > 0)
            assert_int_equal(count_chunks(e->path, chunk_names[k]), want);
    }
    reset_ws(e);
    run_ok(e, load_def(all, e->path));
    for (k = 0; k < 9; k++) {
        const ct_tensor_t *t = tu_fetch(e->ws, chunk_names[k]);
        assert_int_equal(ct_tensor_dtype(t), chunk_dt[k]);
        assert_int_equal(ct_tensor_numel(t), numel);
        assert_memory_equal(ct_tensor_cdata(t), ct_tensor_cdata(orig[k]),
                            ct_tensor_nbytes(t));
        ct_tensor_free(orig[k]);
    }
    free(all);
}

static void test_save_with_chunk_size_gives_39_chunks(void **state)
{
    save_load_chunks(*state, 1234, true, 32, NULL, 39);
}

static void test_save_with_default_chunk_size_gives_2_chunks(void **state)
{
    save_load_chunks(*state, 1000010, true, -1, NULL, 2);
}

static void test_save_with_no_chunking_gives_1_chunk(void **state)
{
    save_load_chunks(*state, 1000010, true, 0, NULL, 1);
}

static void test_save_with_db_options_gives_39_chunks(void **state)
{
    struct env *e = *state;
    char *all = chunk_csv();
    Caffe2__OperatorDef *op = save_def(all, e->path);

    tu_arg_s(op, "db_options", "some db options");
    save_load_chunks(e, 1234, true, 32, op, 39);
    free(all);
}

/* SerializationOptions bytes for the `options` argument. */
static char *options_bytes(size_t n, const char *const *re,
                           const int64_t *chunk, const int *fmt, size_t *len)
{
    Caffe2__SerializationOptions so = CAFFE2__SERIALIZATION_OPTIONS__INIT;
    Caffe2__BlobSerializationOptions o[4], *po[4];
    void *buf;
    char *s;
    size_t i;

    for (i = 0; i < n; i++) {
        caffe2__blob_serialization_options__init(&o[i]);
        o[i].blob_name_regex = (char *)re[i];
        if (chunk != NULL) {
            o[i].has_chunk_size = 1;
            o[i].chunk_size = chunk[i];
        }
        if (fmt != NULL) {
            o[i].has_float_format = 1;
            o[i].float_format = fmt[i];
        }
        po[i] = &o[i];
    }
    so.n_options = n;
    so.options = po;
    assert_int_equal(ct_proto_pack(&so.base, &buf, len, NULL), CT_OK);
    s = malloc(*len + 1);
    memcpy(s, buf, *len);
    s[*len] = '\0';
    ct_free(buf);
    return s;
}

static void test_save_with_options_first_match_wins(void **state)
{
    struct env *e = *state;
    static const char *const re[3] = {"int16_data", ".*16_data",
                                      "float16_data"};
    static const int64_t chunk[3] = {10, 20, 30};
    char *all = chunk_csv();
    Caffe2__OperatorDef *op = save_def(all, e->path);
    Caffe2__Argument *a;
    size_t len;
    char *opts = options_bytes(3, re, chunk, NULL, &len);

    tu_arg_s(op, "options", "");
    a = op->arg[op->n_arg - 1];
    free(a->s.data);
    a->s.data = (uint8_t *)opts; /* tu_op_free frees it */
    a->s.len = len;
    save_load_chunks(e, 1234, true, 40, op, 0);
    assert_int_equal(count_chunks(e->path, "int16_data"), 124);
    assert_int_equal(count_chunks(e->path, "uint16_data"), 62);
    assert_int_equal(count_chunks(e->path, "float16_data"), 62);
    assert_int_equal(count_chunks(e->path, "int64_data"), 31);
    free(all);
}

static void test_save_float_to_bfloat16(void **state)
{
    struct env *e = *state;
    static const char *const re[1] = {"float1"};
    static const int fmt[1] = {2};
    const int64_t n = 4000;
    Caffe2__OperatorDef *op = save_def("float1,float2", e->path);
    Caffe2__Argument *a;
    float *x1, *x2, *ref;
    const float *y1;
    size_t len, i;
    char *opts = options_bytes(1, re, NULL, fmt, &len);
    struct stu_recs r;
    unsigned char *buf;
    size_t flen, s1 = 0, s2 = 0;

    x1 = ct_tensor_data(tu_feed(e->ws, "float1", CT_DTYPE_F32, 1, &n, NULL));
    x2 = ct_tensor_data(tu_feed(e->ws, "float2", CT_DTYPE_F32, 1, &n, NULL));
    tu_fill_uniform(x1, 4000, -1, 1, 1);
    memcpy(x2, x1, 4000 * 4);
    tu_arg_s(op, "options", "");
    a = op->arg[op->n_arg - 1];
    free(a->s.data);
    a->s.data = (uint8_t *)opts;
    a->s.len = len;
    run_ok(e, op);
    buf = stu_read(e->path, &flen);
    assert_true(stu_parse_minidb(buf, flen, &r));
    for (i = 0; i < r.n; i++) {
        if (strcmp(r.r[i].key, "float1#%0") == 0)
            s1 = r.r[i].vlen;
        if (strcmp(r.r[i].key, "float2#%0") == 0)
            s2 = r.r[i].vlen;
    }
    assert_true(s1 > 0 && s2 > 0 && s1 < 0.6 * s2);
    stu_recs_free(&r);
    free(buf);
    ref = malloc(4000 * sizeof(float));
    memcpy(ref, x2, 4000 * sizeof(float)); /* x2 dies with the workspace */
    reset_ws(e);
    run_ok(e, load_def("float1,float2", e->path));
    y1 = ct_tensor_cdata(tu_fetch(e->ws, "float1"));
    for (i = 0; i < 4000; i++)
        assert_true(y1[i] - ref[i] < 0.01f && ref[i] - y1[i] < 0.01f);
    assert_memory_equal(ct_tensor_cdata(tu_fetch(e->ws, "float2")), ref,
                        4000 * sizeof(float));
    free(ref);
}

/* ---- cortado's own rules ---- */

static void test_load_allow_incomplete_leaves_missing_outputs(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, 2);
    run_ok(e, save_def("0,1", e->path));
    reset_ws(e);
    run_fails(e, load_def("0,1,absent", e->path), CT_ENOTFOUND,
              "Expected to load 3 blobs, got 2 only. Failed to load: absent");
    assert_false(ct_workspace_has_blob(e->ws, "0") &&
                 ct_blob_get_tensor(ct_workspace_get_blob(e->ws, "0")) != NULL);
    op = load_def("0,1,absent", e->path);
    tu_arg_i(op, "allow_incomplete", 1);
    run_ok(e, op);
    check_arrays(e->ws, "", 0, 2);
    assert_true(ct_blob_is_empty(ct_workspace_get_blob(e->ws, "absent")));
}

static void test_load_failure_changes_no_blob(void **state)
{
    struct env *e = *state;
    const int64_t d = 100;
    ct_tensor_t *t;
    unsigned char *buf;
    size_t len;
    struct stu_recs r;
    Caffe2__OperatorDef *op;
    ct_status_t st;

    t = tu_feed(e->ws, "big", CT_DTYPE_F32, 1, &d, NULL);
    ((float *)ct_tensor_data(t))[0] = 42;
    feed_arrays(e->ws, 0, 1);
    op = save_def("0,big", e->path);
    tu_arg_i(op, "chunk_size", 30);
    run_ok(e, op);
    /* Drop chunk big#%2 (a Caffe2-style file: no manifest to trip on). */
    buf = stu_read(e->path, &len);
    assert_true(stu_parse_minidb(buf, len, &r));
    {
        FILE *f = fopen(e->path, "wb");
        size_t i;
        for (i = 1; i + 1 < r.n; i++)
            if (strcmp(r.r[i].key, "big#%2") != 0)
                fwrite(buf + r.r[i].offset, 1, 8 + r.r[i].klen + r.r[i].vlen,
                       f);
        fclose(f);
    }
    stu_recs_free(&r);
    free(buf);
    ((float *)ct_tensor_data(t))[0] = 7;
    fill_value(arr_dt[0], ct_tensor_data(tu_fetch(e->ws, "0")), 0, 99);
    op = load_def("0,big", e->path);
    assert_int_equal(run(e, op, &st), CT_ECORRUPT);
    assert_non_null(strstr(st.msg, "Data size mismatch for blob big. "
                                   "Expected: 100 Read: 70"));
    /* neither "0" (complete in the file) nor "big" changed */
    assert_true(((float *)ct_tensor_data(tu_fetch(e->ws, "big")))[0] == 7);
    assert_int_equal(((uint16_t *)ct_tensor_data(tu_fetch(e->ws, "0")))[0],
                     ct_f32_to_f16(99));
}

static void test_save_load_string_blob(void **state)
{
    struct env *e = *state;
    ct_blob_t *b;
    const ct_str_t *s;
    Caffe2__OperatorDef *op;

    assert_int_equal(
        ct_workspace_create_blob(e->ws, "!!META_NET_DEF", &b, NULL), CT_OK);
    assert_int_equal(ct_blob_set_string(b, "a\0b", 3, NULL), CT_OK);
    assert_int_equal(ct_workspace_create_blob(e->ws, "empty", &b, NULL), CT_OK);
    run_fails(e, save_def("empty", e->path), CT_ETYPE,
              "No known serializer for an empty blob");
    run_ok(e, save_def("!!META_NET_DEF", e->path));
    assert_int_equal(count_chunks(e->path, "!!META_NET_DEF"), 0);
    reset_ws(e);
    op = load_def("", e->path);
    tu_arg_i(op, "load_all", 1);
    run_ok(e, op);
    s = ct_blob_get_string(ct_workspace_get_blob(e->ws, "!!META_NET_DEF"));
    assert_non_null(s);
    assert_int_equal(s->len, 3);
    assert_memory_equal(s->data, "a\0b", 3);
    assert_int_equal(n_blobs(e), 1); /* the header / manifest are not blobs */
}

static void test_paths_stay_inside_the_root_folder(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;
    char *sub = stu_path(e->dir, "sub"), *link = stu_path(e->dir, "out");

    feed_arrays(e->ws, 0, 1);
    /* relative to the workspace root folder */
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db", "rel.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_ok(e, op);
    free(sub);
    sub = stu_path(e->dir, "rel.minidb");
    assert_true(stu_exists(sub));
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db", "../escape.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EPATH, "\"..\" components are not allowed");
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db", "/tmp/abs.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EPATH, "absolute path but absolute_path is 0");
    /* a symbolic link inside the root that leads out of it */
    assert_int_equal(symlink("/tmp", link), 0);
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db", "out/x.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EPATH, "outside the workspace root folder");
    op = tu_op("Load", "", "0");
    tu_arg_s(op, "db", "out/x.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EPATH, "outside the workspace root folder");
    free(sub);
    free(link);
}

static void test_db_exists_reports_and_rejects_unknown_types(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;
    const ct_tensor_t *t;

    feed_arrays(e->ws, 0, 1);
    run_ok(e, save_def("0", e->path));
    op = tu_op("DBExists", "", "exists");
    tu_arg_s(op, "db_name", e->path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    run_ok(e, op);
    t = tu_fetch(e->ws, "exists");
    assert_int_equal(ct_tensor_dtype(t), CT_DTYPE_BOOL);
    assert_int_equal(ct_tensor_ndim(t), 0);
    assert_int_equal(*(const uint8_t *)ct_tensor_cdata(t), 1);
    op = tu_op("DBExists", "", "exists");
    tu_arg_s(op, "db_name", "nope.minidb");
    tu_arg_s(op, "db_type", "minidb");
    run_ok(e, op);
    assert_int_equal(
        *(const uint8_t *)ct_tensor_cdata(tu_fetch(e->ws, "exists")), 0);
    op = tu_op("DBExists", "", "exists");
    tu_arg_s(op, "db_name", e->path);
    tu_arg_s(op, "db_type", "leveldb");
    tu_arg_i(op, "absolute_path", 1);
    run_fails(e, op, CT_ENOTFOUND,
              "Cannot find db implementation of type \"leveldb\"");
    op = save_def("0", e->path);
    op->arg[1]->s.data[0] = 'x'; /* db_type "xinidb" */
    run_fails(e, op, CT_ENOTFOUND, "Cannot find db implementation of type");
}

static void test_save_load_args_are_checked(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, 1);
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EARG, "Must specify a db name.");
    op = tu_op("Save", "0", "");
    tu_arg_s(op, "db", "x");
    run_fails(e, op, CT_EARG, "Must specify a db type.");
    op = save_def("0", e->path);
    tu_arg_s(op, "options", "\xff\xff\xff");
    run_fails(e, op, CT_EARG, "unable to parse serialization options");
    op = save_def("0", e->path);
    tu_arg_i(op, "chunk_size", -7);
    run_fails(e, op, CT_EARG, "chunk_size -7");
    op = tu_op("Load", "", "0");
    tu_arg_s(op, "db", "x");
    run_fails(e, op, CT_EARG, "Must specify a db type.");
    op = tu_op("Load", "", "0");
    tu_arg_s(op, "db_type", "minidb");
    run_fails(e, op, CT_EARG, "Must specify a db name.");
    op = load_def("0", e->path);
    {
        static const char *const src[2] = {"a", "b"};
        tu_arg_strings(op, "source_blob_names", 2, src);
    }
    run_fails(e, op, CT_EARG, "source_blob_names mismatch");
    op = load_def("0", e->path);
    {
        static const char *const src[1] = {"a"};
        tu_arg_strings(op, "source_blob_names", 1, src);
    }
    tu_arg_i(op, "load_all", 1);
    run_fails(e, op, CT_EARG, "cannot load_all_ while using source_blob_names");
    op = load_def("0", e->path);
    {
        static const char *const dbs[2] = {"a", ""};
        tu_arg_strings(op, "dbs", 2, dbs);
    }
    run_fails(e, op, CT_EARG, "Db name should not be empty.");
}

static void test_load_prefixes(void **state)
{
    struct env *e = *state;
    static const char *const over[2] = {"gpu_0/w", "gpu_0/b"};
    Caffe2__OperatorDef *op;

    feed_arrays(e->ws, 0, 2);
    op = save_def("0,1", e->path);
    tu_arg_strings(op, "blob_name_overrides", 2, over);
    run_ok(e, op);
    reset_ws(e);
    op = load_def("", e->path);
    tu_arg_i(op, "load_all", 1);
    tu_arg_s(op, "strip_prefix", "gpu_0/");
    tu_arg_s(op, "add_prefix", "m.");
    run_ok(e, op);
    assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "m.w")), arr_dt[0]);
    assert_int_equal(ct_tensor_dtype(tu_fetch(e->ws, "m.b")), arr_dt[1]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_load_save_all_dtypes_every_load_form),
        T(test_save_repeated_inputs_fail),
        T(test_load_excess_blobs_fail),
        T(test_load_truncated_file_fails),
        T(test_save_blob_name_overrides),
        T(test_load_missing_file_fails),
        T(test_load_multiple_files_given_source_names),
        T(test_load_all_multiple_files),
        T(test_load_all_multiple_files_same_key_fails),
        T(test_load_repeated_files_fail),
        T(test_save_with_chunk_size_gives_39_chunks),
        T(test_save_with_default_chunk_size_gives_2_chunks),
        T(test_save_with_no_chunking_gives_1_chunk),
        T(test_save_with_db_options_gives_39_chunks),
        T(test_save_with_options_first_match_wins),
        T(test_save_float_to_bfloat16),
        T(test_load_allow_incomplete_leaves_missing_outputs),
        T(test_load_failure_changes_no_blob),
        T(test_save_load_string_blob),
        T(test_paths_stay_inside_the_root_folder),
        T(test_db_exists_reports_and_rejects_unknown_types),
        T(test_save_load_args_are_checked),
        T(test_load_prefixes),
    };
    return cmocka_run_group_tests_name("storage.load_save", tests, NULL, NULL);
}
