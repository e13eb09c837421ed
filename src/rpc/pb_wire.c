/* pb_wire.c: protobuf varints and field heads written by hand (API in pb_wire.h), shared by the Range
 * reply packer (svc_kv.c), watch's per-watcher head (svc_watch.c) and the Put wire path (kv_wire.c). */
#include "pb_wire.h"

size_t pb_varint_size(uint64_t v) {
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

uint8_t *pb_put_varint(uint8_t *p, uint64_t v) {
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

size_t pb_int_field_size(int64_t v) {
    return v ? 1 + pb_varint_size((uint64_t)v) : 0;
}

uint8_t *pb_put_int_field(uint8_t *p, unsigned tag, int64_t v) {
    if (!v) return p;
    *p++ = (uint8_t)tag;
    return pb_put_varint(p, (uint64_t)v);
}

size_t pb_bytes_field_size(size_t len) {
    return len ? 1 + pb_varint_size(len) + len : 0;
}

uint8_t *pb_put_bytes_head(uint8_t *p, unsigned tag, size_t len) {
    *p++ = (uint8_t)tag;
    return pb_put_varint(p, len);
}

bool pb_get_varint(const uint8_t **p, const uint8_t *end, unsigned max_bytes, uint64_t *v) {
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (unsigned i = 0; i < max_bytes && q < end; i++, q++) {
        x |= (uint64_t)(*q & 0x7f) << (7 * i);
        if (*q < 0x80) {
            *v = x;
            *p = q + 1;
            return true;
        }
    }
    return false;
}
