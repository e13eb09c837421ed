/* change.c: decoding a write record's payload into its changes, with their sub-revisions (change.h).
 * Every length is checked against what is left, so a malformed payload is refused, never overrun. */
#include "change.h"

#include "le.h"

#include <string.h>

#include "alloc.h"

void change_iter_init(change_iter *it, const uint8_t *payload, size_t len) {
    *it = (change_iter){.payload = payload, .len = len};
}

static uint8_t *grow(uint8_t **buf, size_t *len, size_t *cap, size_t n) {
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n)
            c *= 2;
        *buf = xrealloc(*buf, c);
        *cap = c;
    }
    uint8_t *at = *buf + *len;
    *len += n;
    return at;
}

size_t change_encode(uint8_t **buf, size_t *len, size_t *cap, const change *c) {
    if (c->kind == CHANGE_SUBREV) {
        change_encode_subrev(grow(buf, len, cap, CHANGE_SUBREV_BYTES), c->sub_rev);
        return CHANGE_SUBREV_BYTES;
    }
    bool put = c->kind == CHANGE_PUT;
    size_t n = CHANGE_KEY_AT + c->key_len + (put ? CHANGE_PUT_FIELDS + c->value_len : 0);
    uint8_t *p = grow(buf, len, cap, n);
    p[0] = (uint8_t)c->kind;
    le_put(p + 1, (uint32_t)c->key_len, 4);
    if (c->key_len) memcpy(p + CHANGE_KEY_AT, c->key, c->key_len);
    if (!put) return n;
    p += CHANGE_KEY_AT + c->key_len;
    le_put(p, (uint64_t)c->lease, 8);
    le_put(p + 8, (uint64_t)c->create_revision, 8);
    le_put(p + 16, (uint64_t)c->version, 8);
    le_put(p + 24, (uint32_t)c->value_len, 4);
    if (c->value_len) memcpy(p + CHANGE_PUT_FIELDS, c->value, c->value_len);
    return n;
}

void change_encode_subrev(uint8_t *out, uint32_t sub) {
    out[0] = CHANGE_SUBREV;
    le_put(out + 1, sub, 4);
}

void change_encode_revoke(uint8_t *out, int64_t lease) {
    out[0] = CHANGE_REVOKE;
    le_put(out + 1, (uint64_t)lease, 8);
}

/* Reads one marker; 0, or -1 if it is cut short or a sub-revision goes backwards. */
static int read_marker(change_iter *it) {
    const uint8_t *p = it->payload + it->at;
    size_t left = it->len - it->at;
    if (p[0] == CHANGE_REVOKE) {
        if (left < CHANGE_REVOKE_BYTES || it->revoked_lease) return -1;
        it->revoked_lease = le_i64(p + 1);
        it->at += CHANGE_REVOKE_BYTES;
        return it->revoked_lease ? 0 : -1;
    }
    if (left < CHANGE_SUBREV_BYTES) return -1;
    uint32_t sub = le_u32(p + 1);
    if (sub < it->next_sub) return -1;
    it->next_sub = sub;
    it->at += CHANGE_SUBREV_BYTES;
    return 0;
}

static int skip_markers(change_iter *it) {
    while (it->at < it->len && (it->payload[it->at] == CHANGE_SUBREV || it->payload[it->at] == CHANGE_REVOKE))
        if (read_marker(it) < 0) return -1;
    return 0;
}

static int decode_put(change_iter *it, const uint8_t *p, size_t left, change *c) {
    size_t used = CHANGE_KEY_AT + c->key_len;
    if (left - used < CHANGE_PUT_FIELDS) return -1;
    c->lease = le_i64(p + used);
    c->create_revision = le_i64(p + used + 8);
    c->version = le_i64(p + used + 16);
    c->value_len = le_u32(p + used + 24);
    used += CHANGE_PUT_FIELDS;
    if (left - used < c->value_len) return -1;
    c->value = p + used;
    c->value_at = it->at + used;
    c->bytes = used + c->value_len;
    return 0;
}

int change_next(change_iter *it, change *c) {
    if (skip_markers(it) < 0) return -1;
    if (it->at >= it->len) return 0;
    const uint8_t *p = it->payload + it->at;
    size_t left = it->len - it->at;
    if (left < CHANGE_KEY_AT) return -1;
    *c = (change){.kind = p[0], .sub_rev = it->next_sub, .at = it->at, .key = p + CHANGE_KEY_AT};
    c->key_len = le_u32(p + 1);
    if (left - CHANGE_KEY_AT < c->key_len) return -1;
    if (c->kind == CHANGE_DELETE)
        c->bytes = CHANGE_KEY_AT + c->key_len;
    else if (c->kind != CHANGE_PUT || decode_put(it, p, left, c) < 0)
        return -1;
    it->at += c->bytes;
    it->next_sub++;
    return 1;
}
