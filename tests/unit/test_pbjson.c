/* test_pbjson.c: unit tests of src/gateway/pbjson.c, protobuf-c messages to and from the JSON of etcd's
 * grpc-gateway: proto and lowerCamel field names, 64-bit integers as strings, bytes as base64, enums
 * by name, oneofs, defaults left out, and the errors a wrong value gives. */
#include "pbjson.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.pb-c.h"

static char err[256];

/* Decodes text (which must parse as JSON) into a message of type d; NULL with err on failure. */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *text) {
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    ck_assert_msg(v != NULL, "json %s: %s", text, err);
    err[0] = '\0';
    ProtobufCMessage *m = pbjson_decode(d, v, err, sizeof err);
    json_free(v);
    return m;
}

static void decode_fails(const ProtobufCMessageDescriptor *d, const char *text, const char *want_err) {
    ProtobufCMessage *m = decode(d, text);
    ck_assert_msg(m == NULL, "%s should not decode", text);
    ck_assert_str_eq(err, want_err);
}

static void encodes(const ProtobufCMessage *m, const char *want) {
    sbuf b = {0};
    pbjson_encode(&b, m);
    ck_assert_msg(sbuf_size(&b) == strlen(want) && memcmp(sbuf_head(&b), want, strlen(want)) == 0,
                  "encoded %.*s, want %s", (int)sbuf_size(&b), (const char *)sbuf_head(&b), want);
    sbuf_free(&b);
}

static void free_msg(void *m) {
    protobuf_c_message_free_unpacked(m, NULL);
}

START_TEST(test_decode_put) {
    Etcdserverpb__PutRequest *r = (Etcdserverpb__PutRequest *)decode(
        &etcdserverpb__put_request__descriptor,
        "{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":\"7\",\"prev_kv\":true,\"unknown\":[1]}");
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_uint_eq(r->key.len, 3);
    ck_assert_mem_eq(r->key.data, "foo", 3);
    ck_assert_uint_eq(r->value.len, 3);
    ck_assert_mem_eq(r->value.data, "bar", 3);
    ck_assert_int_eq(r->lease, 7);
    ck_assert(r->prev_kv);
    ck_assert(!r->ignore_value);
    free_msg(r);
}
END_TEST

/* lowerCamel names, integers as JSON numbers, the URL alphabet and missing padding are all accepted;
 * of duplicate keys the last wins; null means absent. */
START_TEST(test_decode_lenient_forms) {
    Etcdserverpb__RangeRequest *r = (Etcdserverpb__RangeRequest *)decode(
        &etcdserverpb__range_request__descriptor,
        "{\"key\":\"-_8\",\"rangeEnd\":null,\"limit\":5,\"limit\":6,\"keysOnly\":true,\"revision\":\"-1\"}");
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_uint_eq(r->key.len, 2);
    ck_assert_mem_eq(r->key.data, "\xfb\xff", 2);
    ck_assert_uint_eq(r->range_end.len, 0);
    ck_assert_int_eq(r->limit, 6);
    ck_assert(r->keys_only);
    ck_assert_int_eq(r->revision, -1);
    free_msg(r);
}
END_TEST

START_TEST(test_decode_enums) {
    Etcdserverpb__RangeRequest *r = (Etcdserverpb__RangeRequest *)decode(
        &etcdserverpb__range_request__descriptor, "{\"sort_order\":\"DESCEND\",\"sort_target\":3}");
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_int_eq(r->sort_order, ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND);
    ck_assert_int_eq(r->sort_target, ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD);
    free_msg(r);
    decode_fails(&etcdserverpb__range_request__descriptor, "{\"sort_order\":\"SIDEWAYS\"}",
                 "bad value for field \"sort_order\": unknown enum value");
}
END_TEST

/* A Txn: repeated messages, a oneof in each Compare and in each RequestOp. */
START_TEST(test_decode_txn) {
    Etcdserverpb__TxnRequest *t = (Etcdserverpb__TxnRequest *)decode(
        &etcdserverpb__txn_request__descriptor,
        "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"5\"}],"
        "\"success\":[{\"request_put\":{\"key\":\"YQ==\",\"value\":\"Yg==\"}}],"
        "\"failure\":[{\"requestRange\":{\"key\":\"YQ==\"}},{\"request_delete_range\":{}}]}");
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_uint_eq(t->n_compare, 1);
    ck_assert_int_eq(t->compare[0]->target, ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD);
    ck_assert_int_eq(t->compare[0]->result, ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS);
    ck_assert_int_eq(t->compare[0]->target_union_case, ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION);
    ck_assert_int_eq(t->compare[0]->mod_revision, 5);
    ck_assert_uint_eq(t->n_success, 1);
    ck_assert_int_eq(t->success[0]->request_case, ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT);
    ck_assert_mem_eq(t->success[0]->request_put->value.data, "b", 1);
    ck_assert_uint_eq(t->n_failure, 2);
    ck_assert_int_eq(t->failure[0]->request_case, ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE);
    ck_assert_int_eq(t->failure[1]->request_case, ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE);
    free_msg(t);
}
END_TEST

START_TEST(test_decode_errors) {
    const ProtobufCMessageDescriptor *put = &etcdserverpb__put_request__descriptor;
    decode_fails(put, "[]", "etcdserverpb.PutRequest must be a JSON object");
    decode_fails(put, "{\"key\":\"not base64!\"}", "bad value for field \"key\": illegal base64 data");
    decode_fails(put, "{\"key\":\"Q\"}", "bad value for field \"key\": illegal base64 data");
    decode_fails(put, "{\"lease\":\"7x\"}", "bad value for field \"lease\": not an int64");
    decode_fails(put, "{\"lease\":\"9223372036854775808\"}", "bad value for field \"lease\": not an int64");
    decode_fails(put, "{\"prev_kv\":\"true\"}", "bad value for field \"prev_kv\": not a bool");
    decode_fails(&etcdserverpb__request_op__descriptor, "{\"request_put\":{},\"request_range\":{}}",
                 "bad value for field \"request_put\": another field of its oneof is already set");
    decode_fails(&etcdserverpb__txn_request__descriptor, "{\"compare\":{}}",
                 "bad value for field \"compare\": not an array");
    decode_fails(&etcdserverpb__lease_grant_request__descriptor, "{\"TTL\":\"x\"}",
                 "bad value for field \"TTL\": not an int64");
}
END_TEST

/* Fields holding their default are left out; int64 as strings, bytes as base64, enums by name. */
START_TEST(test_encode) {
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    encodes(&put.base, "{}");
    put.key = (ProtobufCBinaryData){3, (uint8_t *)"foo"};
    put.lease = 7;
    encodes(&put.base, "{\"key\":\"Zm9v\",\"lease\":\"7\"}");
    put.value = (ProtobufCBinaryData){2, (uint8_t *)"\xfb\xff"};
    put.prev_kv = 1;
    encodes(&put.base, "{\"key\":\"Zm9v\",\"value\":\"+/8=\",\"lease\":\"7\",\"prev_kv\":true}");
    Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
    range.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    range.limit = -2;
    encodes(&range.base, "{\"limit\":\"-2\",\"sort_order\":\"DESCEND\"}");
}
END_TEST

/* A response with a nested header and a repeated message field, as the gateway writes a Range. */
START_TEST(test_encode_nested) {
    Etcdserverpb__ResponseHeader hdr = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    hdr.cluster_id = 18446744073709551615ull;
    hdr.revision = 12;
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, *kvs[] = {&kv, &kv};
    kv.key = (ProtobufCBinaryData){1, (uint8_t *)"a"};
    kv.version = 1;
    Etcdserverpb__RangeResponse resp = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    resp.header = &hdr;
    resp.kvs = kvs;
    resp.n_kvs = 2;
    resp.count = 2;
    encodes(&resp.base, "{\"header\":{\"cluster_id\":\"18446744073709551615\",\"revision\":\"12\"},"
                        "\"kvs\":[{\"key\":\"YQ==\",\"version\":\"1\"},{\"key\":\"YQ==\",\"version\":\"1\"}],"
                        "\"count\":\"2\"}");
}
END_TEST

/* What the gateway writes, it reads back the same. */
START_TEST(test_round_trip) {
    const char *text =
        "{\"compare\":[{\"result\":\"NOT_EQUAL\",\"target\":\"VALUE\",\"key\":\"YQ==\","
        "\"value\":\"dg==\"}],\"success\":[{\"request_put\":{\"key\":\"YQ==\",\"lease\":\"3\"}}]}";
    ProtobufCMessage *m = decode(&etcdserverpb__txn_request__descriptor, text);
    ck_assert_msg(m != NULL, "%s", err);
    encodes(m, text);
    free_msg(m);
}
END_TEST

Suite *pbjson_suite(void) {
    Suite *s = suite_create("pbjson");
    TCase *dec = tcase_create("decode");
    tcase_add_test(dec, test_decode_put);
    tcase_add_test(dec, test_decode_lenient_forms);
    tcase_add_test(dec, test_decode_enums);
    tcase_add_test(dec, test_decode_txn);
    tcase_add_test(dec, test_decode_errors);
    suite_add_tcase(s, dec);
    TCase *enc = tcase_create("encode");
    tcase_add_test(enc, test_encode);
    tcase_add_test(enc, test_encode_nested);
    tcase_add_test(enc, test_round_trip);
    suite_add_tcase(s, enc);
    return s;
}
