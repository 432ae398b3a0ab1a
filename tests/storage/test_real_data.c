/* Real Caffe2 files from ../shared/data (skipped when absent):
 *   - the MNIST LeNet checkpoint written by Caffe2's predictor exporter
 *     loads (its "!!META_NET_DEF" as a std::string blob), and every
 *     tensor equals, bit for bit, what the same model's init_net.pb
 *     produces;
 *   - every record of the Iris minidb datasets decodes as TensorProtos
 *     {FLOAT [4] features, INT32 label};
 *   - ct_db_describe lists the checkpoint; a re-save of it in cortado's
 *     format verifies and loads back identically. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/proto.h"
#include "storage_test.h"
#include "test_util.h"

#define MNIST "caffe2/mnist_lenet_agnostic12/"

static const char *const params[] = {"conv1_w", "conv1_b", "conv2_w", "conv2_b",
                                     "fc3_w",   "fc3_b",   "pred_w",  "pred_b"};
#define N_PARAMS 8

static void load_all(ct_workspace_t *ws, const char *path, bool absolute)
{
    Caffe2__OperatorDef *op = tu_op("Load", "", "");
    ct_status_t st;

    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", absolute);
    tu_arg_i(op, "load_all", 1);
    if (tu_run_op(ws, op, &st) != CT_OK)
        fail_msg("load %s: %s", path, st.msg);
    tu_op_free(op);
}

static void assert_same(const ct_tensor_t *a, const ct_tensor_t *b,
                        const char *name)
{
    char sa[64], sb[64];

    assert_int_equal(ct_tensor_dtype(a), ct_tensor_dtype(b));
    if (strcmp(ct_tensor_shape_str(a, sa, sizeof(sa)),
               ct_tensor_shape_str(b, sb, sizeof(sb))) != 0)
        fail_msg("%s: shape %s vs %s", name, sa, sb);
    assert_memory_equal(ct_tensor_cdata(a), ct_tensor_cdata(b),
                        ct_tensor_nbytes(a));
}

static void test_real_mnist_checkpoint_equals_init_net(void **state)
{
    struct tu_env ckpt, init;
    ct_netdef_t *net;
    ct_status_t st;
    const ct_str_t *meta;
    ProtobufCMessage *m;
    int i;

    (void)state;
    if (!tu_have_data())
        skip();
    tu_env_init(&ckpt);
    tu_env_init(&init);
    load_all(ckpt.ws, tu_data_path(MNIST "mnist_model.minidb"), true);
    assert_int_equal(
        ct_netdef_read_file(tu_data_path(MNIST "init_net.pb"), &net, &st),
        CT_OK);
    assert_int_equal(ct_workspace_run_net_once(init.ws, net, &st), CT_OK);
    ct_netdef_free(net);
    for (i = 0; i < N_PARAMS; i++)
        assert_same(tu_fetch(ckpt.ws, params[i]), tu_fetch(init.ws, params[i]),
                    params[i]);
    assert_int_equal(ct_tensor_ndim(tu_fetch(ckpt.ws, "conv1_w")), 4);
    assert_int_equal(ct_tensor_dim(tu_fetch(ckpt.ws, "conv1_w"), 0), 20);
    /* The predictor's MetaNetDef comes through as a std::string blob. */
    meta = ct_blob_get_string(ct_workspace_get_blob(ckpt.ws, "!!META_NET_DEF"));
    assert_non_null(meta);
    assert_true(meta->len > 1000 && meta->len < 1459);
    assert_int_equal(ct_proto_unpack(&caffe2__meta_net_def__descriptor,
                                     meta->data, meta->len, &m, &st),
                     CT_OK);
    ct_proto_free(m);
    tu_env_destroy(&ckpt);
    tu_env_destroy(&init);
}

static void test_real_mnist_explicit_outputs_skip_meta(void **state)
{
    struct tu_env e;
    Caffe2__OperatorDef *op;
    ct_status_t st;

    (void)state;
    if (!tu_have_data())
        skip();
    tu_env_init(&e);
    op = tu_op("Load", "", "pred_b,conv1_w");
    tu_arg_s(op, "db", tu_data_path(MNIST "mnist_model.minidb"));
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    assert_int_equal(tu_run_op(e.ws, op, &st), CT_OK);
    tu_op_free(op);
    assert_int_equal(ct_tensor_numel(tu_fetch(e.ws, "pred_b")), 10);
    assert_false(ct_workspace_has_blob(e.ws, "!!META_NET_DEF"));
    tu_env_destroy(&e);
}

static void test_real_mnist_resaved_by_cortado_verifies(void **state)
{
    struct tu_env a, b;
    char *dir, *path;
    ct_status_t st;
    Caffe2__OperatorDef *op;
    uint64_t n;
    int i;

    (void)state;
    if (!tu_have_data())
        skip();
    dir = stu_tmpdir();
    path = stu_path(dir, "mnist.minidb");
    tu_env_init(&a);
    tu_env_init(&b);
    load_all(a.ws, tu_data_path(MNIST "mnist_model.minidb"), true);
    op = tu_op("Save",
               "!!META_NET_DEF,conv1_w,conv1_b,conv2_w,conv2_b,fc3_w,"
               "fc3_b,pred_w,pred_b",
               "");
    tu_arg_s(op, "db", path);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "absolute_path", 1);
    assert_int_equal(tu_run_op(a.ws, op, &st), CT_OK);
    tu_op_free(op);
    assert_int_equal(ct_db_verify("minidb", path, &n, &st), CT_OK);
    assert_int_equal(n, 9);
    load_all(b.ws, path, true);
    for (i = 0; i < N_PARAMS; i++)
        assert_same(tu_fetch(a.ws, params[i]), tu_fetch(b.ws, params[i]),
                    params[i]);
    tu_env_destroy(&a);
    tu_env_destroy(&b);
    free(path);
    stu_rmtree(dir);
}

static void check_iris(const char *rel, uint64_t want)
{
    struct tu_env e;
    ct_db_t *db;
    ct_db_cursor_t *c;
    ct_status_t st;
    uint64_t n = 0;

    tu_env_init(&e);
    assert_int_equal(
        ct_db_open("minidb", tu_data_path(rel), CT_DB_READ, &db, &st), CT_OK);
    assert_int_equal(ct_db_cursor_new(db, &c, &st), CT_OK);
    for (; ct_db_cursor_valid(c); n++) {
        const void *v;
        size_t len;
        ProtobufCMessage *m;
        const Caffe2__TensorProtos *tps;
        ct_tensor_t *x, *y;
        int32_t label;
        assert_int_equal(ct_db_cursor_value(c, &v, &len, &st), CT_OK);
        assert_int_equal(ct_proto_unpack(&caffe2__tensor_protos__descriptor, v,
                                         len, &m, &st),
                         CT_OK);
        tps = (const Caffe2__TensorProtos *)m;
        assert_int_equal(tps->n_protos, 2);
        assert_int_equal(
            ct__tensor_from_proto(e.eng, tps->protos[0], "x", len, &x, &st),
            CT_OK);
        assert_int_equal(
            ct__tensor_from_proto(e.eng, tps->protos[1], "y", len, &y, &st),
            CT_OK);
        assert_int_equal(ct_tensor_dtype(x), CT_DTYPE_F32);
        assert_int_equal(ct_tensor_numel(x), 4);
        assert_int_equal(ct_tensor_dtype(y), CT_DTYPE_I32);
        assert_int_equal(ct_tensor_numel(y), 1);
        label = *(const int32_t *)ct_tensor_cdata(y);
        assert_true(label >= 0 && label <= 2);
        assert_true(((const float *)ct_tensor_cdata(x))[0] > 4.0f);
        ct_tensor_free(x);
        ct_tensor_free(y);
        ct_proto_free(m);
        assert_int_equal(ct_db_cursor_next(c, &st), CT_OK);
    }
    assert_int_equal(n, want);
    ct_db_cursor_free(c);
    ct_db_free(db);
    tu_env_destroy(&e);
}

static void test_real_iris_records_decode_as_tensor_protos(void **state)
{
    (void)state;
    if (!tu_have_data())
        skip();
    check_iris("caffe2/iris_minidb_blateyang/iris_train.minidb", 100);
    check_iris("caffe2/iris_minidb_blateyang/iris_test.minidb", 50);
}

static void test_real_describe_lists_the_checkpoint(void **state)
{
    char *dir, *out;
    FILE *f;
    unsigned char *text;
    size_t len;
    ct_status_t st;

    (void)state;
    if (!tu_have_data())
        skip();
    dir = stu_tmpdir();
    out = stu_path(dir, "out.txt");
    assert_string_equal(
        ct_db_detect_type(tu_data_path(MNIST "mnist_model.minidb")), "minidb");
    assert_string_equal(ct_db_detect_type(tu_data_path(
                            "caffe2/iris_minidb_blateyang/iris_test.minidb")),
                        "minidb");
    assert_null(ct_db_detect_type(tu_data_path(MNIST "init_net.pb")));
    assert_null(ct_db_detect_type(
        tu_data_path("caffe2/zoo_pbtxt/resnet50_predict_net.pbtxt")));
    f = fopen(out, "w");
    assert_int_equal(ct_db_describe("minidb",
                                    tu_data_path(MNIST "mnist_model.minidb"), f,
                                    &st),
                     CT_OK);
    fclose(f);
    text = stu_read(out, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    assert_non_null(strstr((char *)text, "9 records, 9 blobs"));
    assert_non_null(strstr((char *)text, "no cortado manifest"));
    assert_non_null(strstr((char *)text, "conv1_w"));
    assert_non_null(strstr((char *)text, "[20, 1, 5, 5]"));
    assert_non_null(strstr((char *)text, "std::string"));
    free(text);
    free(out);
    stu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_mnist_checkpoint_equals_init_net),
        cmocka_unit_test(test_real_mnist_explicit_outputs_skip_meta),
        cmocka_unit_test(test_real_mnist_resaved_by_cortado_verifies),
        cmocka_unit_test(test_real_iris_records_decode_as_tensor_protos),
        cmocka_unit_test(test_real_describe_lists_the_checkpoint),
    };
    return cmocka_run_group_tests_name("storage.real_data", tests, NULL, NULL);
}
