/* The predictor's MetaNetDef in caffe2.proto is wire-compatible with the
 * real "!!META_NET_DEF" record that Caffe2's predictor exporter wrote into
 * ../shared/data/caffe2/mnist_lenet_agnostic12/mnist_model.minidb. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cortado/engine.h"
#include "cortado/proto.h"
#include "proto/caffe2.pb-c.h"
#include "test_util.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void test_metanet_real_minidb_record_decodes_and_repacks(void **state)
{
    const char *path;
    uint8_t *buf;
    size_t len, i;
    uint32_t klen, vlen;
    ct_status_t st;
    ProtobufCMessage *blob_msg, *meta_msg;
    Caffe2__BlobProto *blob;
    Caffe2__MetaNetDef *meta;
    void *packed;
    size_t packed_len;
    bool have_predict = false;

    (void)state;
    if (!tu_have_data())
        skip();
    path = tu_data_path("caffe2/mnist_lenet_agnostic12/mnist_model.minidb");
    assert_int_equal(ct_file_read(path, (void **)&buf, &len, &st), CT_OK);
    assert_true(len > 8);
    klen = le32(buf);
    vlen = le32(buf + 4);
    assert_true(8 + (size_t)klen + vlen <= len);
    assert_int_equal(klen, strlen("!!META_NET_DEF"));
    assert_memory_equal(buf + 8, "!!META_NET_DEF", klen);

    assert_int_equal(ct_proto_unpack(&caffe2__blob_proto__descriptor,
                                     buf + 8 + klen, vlen, &blob_msg, &st),
                     CT_OK);
    blob = (Caffe2__BlobProto *)blob_msg;
    assert_string_equal(blob->type, "std::string");
    assert_int_equal(ct_proto_unpack(&caffe2__meta_net_def__descriptor,
                                     blob->content.data, blob->content.len,
                                     &meta_msg, &st),
                     CT_OK);
    meta = (Caffe2__MetaNetDef *)meta_msg;
    assert_true(meta->n_blobs >= 3);
    assert_string_equal(meta->blobs[0]->key, "PARAMETERS_BLOB_TYPE");
    assert_int_equal(meta->blobs[0]->n_value, 8);
    assert_string_equal(meta->blobs[0]->value[0], "conv1_w");
    for (i = 0; i < meta->n_nets; i++)
        if (strcmp(meta->nets[i]->key, "PREDICT_NET_TYPE") == 0)
            have_predict = meta->nets[i]->value->n_op == 8;
    assert_true(have_predict);

    /* Nothing is lost: packing gives back the exact bytes. */
    assert_int_equal(ct_proto_pack(meta_msg, &packed, &packed_len, &st), CT_OK);
    assert_int_equal(packed_len, blob->content.len);
    assert_memory_equal(packed, blob->content.data, packed_len);

    ct_free(packed);
    ct_proto_free(meta_msg);
    ct_proto_free(blob_msg);
    ct_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metanet_real_minidb_record_decodes_and_repacks),
    };
    return cmocka_run_group_tests_name("proto.metanet", tests, NULL, NULL);
}
