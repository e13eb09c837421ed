/* kv_wire.c: a PutRequest decoded and a PutResponse packed by hand (see kv_wire.h). The decoder only
 * takes what protobuf-c would decode to the same struct; everything else is left to protobuf-c. */
#include "kv_wire.h"

#include <assert.h>

#include "header.h"
#include "pb_wire.h"

/* Field 1 key and 2 value (bytes), 3 lease (int64), 4 prev_kv, 5 ignore_value, 6 ignore_lease (bool):
 * the tag byte of each with its wire type. */
static const uint8_t put_tags[7] = {0, 0x0a, 0x12, 0x18, 0x20, 0x28, 0x30};

/* A length of at most 5 bytes, as protobuf-c reads one (a longer one it refuses). */
static bool read_bytes(const uint8_t **p, const uint8_t *end, ProtobufCBinaryData *out) {
    uint64_t n;
    if (!pb_get_varint(p, end, 5, &n) || n > (uint64_t)(end - *p)) return false;
    out->len = (size_t)n;
    out->data = n ? (uint8_t *)*p : NULL; /* protobuf-c leaves an empty one NULL */
    *p += n;
    return true;
}

bool put_request_decode(const uint8_t *msg, size_t len, Etcdserverpb__PutRequest *req) {
    *req = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
    const uint8_t *p = msg, *end = msg + len;
    unsigned seen = 0;
    while (p < end) {
        unsigned field = *p >> 3;
        if (field < 1 || field > 6 || *p != put_tags[field] || (seen & 1u << field)) return false;
        seen |= 1u << field;
        p++;
        uint64_t v = 0;
        if (field <= 2) {
            if (!read_bytes(&p, end, field == 1 ? &req->key : &req->value)) return false;
            continue;
        }
        if (!pb_get_varint(&p, end, 9, &v)) return false;
        if (field == 3) req->lease = (int64_t)v;
        if (field == 4) req->prev_kv = v != 0;
        if (field == 5) req->ignore_value = v != 0;
        if (field == 6) req->ignore_lease = v != 0;
    }
    return true;
}

/* Field 1, the header, whose length fits one byte of varint. */
size_t put_reply_pack(uint8_t *buf, int64_t rev) {
    static_assert(RESPONSE_HEADER_MAX_BYTES < 128 && PUT_REPLY_MAX_BYTES >= 2 + RESPONSE_HEADER_MAX_BYTES,
                  "the header's length is one byte");
    size_t hlen = response_header_pack(buf + 2, rev);
    buf[0] = 0x0a;
    buf[1] = (uint8_t)hlen;
    return 2 + hlen;
}
