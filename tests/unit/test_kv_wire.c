/* test_kv_wire.c: unit tests of src/api/kv_wire.c: whatever the hand decoder takes, protobuf-c decodes
 * to the same PutRequest (canonical messages, odd but valid ones, and mutations of them), what it
 * leaves to protobuf-c is what it must not take, and a packed PutResponse is protobuf-c's bytes. */
#include "config.h"
#include "header.h"
#include "kv_wire.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static bool same_bytes(ProtobufCBinaryData a, ProtobufCBinaryData b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* Decodes msg both ways: returns whether the hand decoder took it, after checking that it agrees with
 * protobuf-c when it did. */
static bool check_agrees(const uint8_t *msg, size_t len) {
    Etcdserverpb__PutRequest mine;
    bool took = put_request_decode(msg, len, &mine);
    Etcdserverpb__PutRequest *ref = etcdserverpb__put_request__unpack(NULL, len, msg);
    if (took) {
        ck_assert_msg(ref != NULL, "taken, but protobuf-c refuses it");
        ck_assert(ref->base.n_unknown_fields == 0);
        ck_assert(same_bytes(mine.key, ref->key) && same_bytes(mine.value, ref->value));
        ck_assert(mine.key.len || !mine.key.data);
        ck_assert(mine.value.len || !mine.value.data);
        ck_assert_int_eq(mine.lease, ref->lease);
        ck_assert_int_eq(mine.prev_kv, ref->prev_kv);
        ck_assert_int_eq(mine.ignore_value, ref->ignore_value);
        ck_assert_int_eq(mine.ignore_lease, ref->ignore_lease);
        ck_assert_ptr_eq(mine.base.descriptor, &etcdserverpb__put_request__descriptor);
    }
    if (ref) etcdserverpb__put_request__free_unpacked(ref, NULL);
    return took;
}

#define AGREES(...)                                                                                          \
    ({                                                                                                       \
        static const uint8_t m_[] = {__VA_ARGS__};                                                           \
        check_agrees(m_, sizeof m_);                                                                         \
    })

START_TEST(decodes_what_protobuf_c_decodes) {
    ck_assert(check_agrees((const uint8_t *)"", 0));
    ck_assert(AGREES(0x0a, 3, 'f', 'o', 'o', 0x12, 3, 'b', 'a', 'r'));
    ck_assert(AGREES(0x12, 1, 'v', 0x0a, 1, 'k'));                                 /* out of order */
    ck_assert(AGREES(0x0a, 0, 0x12, 0));                                           /* empty fields */
    ck_assert(AGREES(0x0a, 1, 'k', 0x18, 0xb9, 0x60, 0x20, 1, 0x28, 1, 0x30, 1));  /* every field */
    ck_assert(AGREES(0x20, 2, 0x28, 0x80, 0x00, 0x30, 0xff, 0x7f));                /* bools of odd varints */
    ck_assert(AGREES(0x0a, 0x81, 0x00, 'k'));                                      /* an overlong length */
    ck_assert(AGREES(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)); /* 9-byte lease */
}
END_TEST

START_TEST(leaves_the_rest_to_protobuf_c) {
    ck_assert(!AGREES(0x0a, 1, 'a', 0x0a, 1, 'b'));                    /* a field twice */
    ck_assert(!AGREES(0x38, 1));                                       /* an unknown field */
    ck_assert(!AGREES(0x00, 1));                                       /* field 0 */
    ck_assert(!AGREES(0x1a, 1, 0));                                    /* lease as bytes */
    ck_assert(!AGREES(0x0a, 5, 'k'));                                  /* cut short */
    ck_assert(!AGREES(0x18, 0x80));                                    /* an unterminated varint */
    ck_assert(!AGREES(0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'k')); /* a 6-byte length */
    ck_assert(!AGREES(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)); /* negative lease */
    ck_assert(!AGREES(0x8a, 0x00, 0)); /* a tag of two bytes */
}
END_TEST

/* Random mutations of valid requests: every one the decoder takes must agree with protobuf-c. */
START_TEST(mutations_agree) {
    static const uint8_t seed[] = {0x0a, 4,    'k',  'e',  'y',  '1', 0x12, 3, 'v',  'a',
                                   'l',  0x18, 0x85, 0x01, 0x20, 1,   0x28, 0, 0x30, 1};
    srandom(16);
    unsigned taken = 0;
    for (int round = 0; round < 50000; round++) {
        uint8_t m[sizeof seed + 4];
        size_t len = sizeof seed - (size_t)(random() % 6);
        memcpy(m, seed, sizeof seed);
        for (int k = random() % 3; k >= 0; k--)
            m[random() % len] = (uint8_t)random();
        taken += check_agrees(m, len);
    }
    ck_assert_uint_gt(taken, 1000); /* the decoder took many, not only refused */
}
END_TEST

START_TEST(reply_is_protobuf_c_s) {
    static const int64_t revs[] = {0, 1, 127, 128, 1 << 20, INT64_MAX, -1};
    static const uint64_t ids[] = {0, 1, 0x8e9e05c52164694dULL};
    for (size_t i = 0; i < sizeof revs / sizeof revs[0]; i++) {
        for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++) {
            g_config.cluster_id = ids[j];
            g_config.member_id = ids[(j + 1) % 3];
            g_config.raft_term = j;
            Etcdserverpb__ResponseHeader hdr;
            response_header_fill(&hdr, revs[i]);
            Etcdserverpb__PutResponse resp = ETCDSERVERPB__PUT_RESPONSE__INIT;
            resp.header = &hdr;
            uint8_t want[128], got[PUT_REPLY_MAX_BYTES];
            size_t n = etcdserverpb__put_response__pack(&resp, want);
            ck_assert_uint_eq(put_reply_pack(got, revs[i]), n);
            ck_assert(memcmp(got, want, n) == 0);
        }
    }
}
END_TEST

Suite *kv_wire_suite(void) {
    Suite *s = suite_create("kv_wire");
    TCase *tc = tcase_create("put");
    tcase_add_test(tc, decodes_what_protobuf_c_decodes);
    tcase_add_test(tc, leaves_the_rest_to_protobuf_c);
    tcase_add_test(tc, mutations_agree);
    tcase_add_test(tc, reply_is_protobuf_c_s);
    suite_add_tcase(s, tc);
    return s;
}
