/* pbjson.c: generic protobuf-c ⇄ JSON conversion following golang/protobuf's jsonpb as configured by
 * etcd's grpc-gateway (OrigName, EmitDefaults off), walking protobuf-c's field descriptors. Decoded
 * memory comes from malloc so protobuf_c_message_free_unpacked frees it. */
#include "pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define MEMBER(type, msg, off) (*(type *)((uint8_t *)(msg) + (off)))

/* ---------- base64 ---------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_encode(sbuf *out, const uint8_t *p, size_t n) {
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63];
        q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        sbuf_append(out, q, 4);
    }
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL alphabet, padding optional (as protojson accepts). */
static bool base64_decode(const char *s, size_t n, ProtobufCBinaryData *out) {
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1) return false;
    uint8_t *d = xmalloc(n * 3 / 4 + 1);
    size_t len = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(d);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            d[len++] = (uint8_t)(acc >> 16), d[len++] = (uint8_t)(acc >> 8), d[len++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) d[len++] = (uint8_t)(acc >> 4);
    if (n % 4 == 3) d[len++] = (uint8_t)(acc >> 10), d[len++] = (uint8_t)(acc >> 2);
    if (len == 0) {
        free(d);
        d = NULL;
    }
    *out = (ProtobufCBinaryData){len, d};
    return true;
}

/* ---------- decoding ---------- */

typedef struct dec {
    char *err;
    size_t errlen;
} dec;

static bool dec_fail(dec *dc, const ProtobufCFieldDescriptor *f, const char *what) {
    snprintf(dc->err, dc->errlen, "bad value for field \"%s\": %s", f->name, what);
    return false;
}

/* "prev_kv" also answers to "prevKv" (protoc's json_name). */
static bool name_matches(const char *name, const char *key) {
    if (strcmp(name, key) == 0) return true;
    bool up = false;
    for (; *name; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        char c = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 32) : *name;
        up = false;
        if (*key++ != c) return false;
    }
    return *key == '\0';
}

/* The integer text of a JSON number or string. */
static const char *int_text(const json_value *v) {
    if (v->type == JSON_NUMBER || v->type == JSON_STRING) return v->str;
    return NULL;
}

static bool parse_i64(const json_value *v, int64_t lo, int64_t hi, int64_t *out) {
    const char *s = int_text(v);
    if (!s || !*s) return false;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return false;
    *out = x;
    return true;
}

static bool parse_u64(const json_value *v, uint64_t hi, uint64_t *out) {
    const char *s = int_text(v);
    if (!s || *s < '0' || *s > '9') return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x > hi) return false;
    *out = x;
    return true;
}

static bool parse_enum(const ProtobufCFieldDescriptor *f, const json_value *v, int *out) {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (v->type == JSON_STRING) {
        for (unsigned i = 0; i < ed->n_values; i++) {
            if (strcmp(ed->values[i].name, v->str) == 0) return *out = ed->values[i].value, true;
        }
        return false;
    }
    int64_t x;
    if (!parse_i64(v, INT32_MIN, INT32_MAX, &x)) return false;
    *out = (int)x;
    return true;
}

static ProtobufCMessage *decode_message(dec *dc, const ProtobufCMessageDescriptor *d, const json_value *v,
                                        int depth);

/* One value of field f into slot (the field itself, or one element of a repeated field). */
static bool decode_scalar(dec *dc, const ProtobufCFieldDescriptor *f, const json_value *v, void *slot,
                          int depth) {
    int64_t i;
    uint64_t u;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!parse_i64(v, INT32_MIN, INT32_MAX, &i)) return dec_fail(dc, f, "not an int32");
        return *(int32_t *)slot = (int32_t)i, true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!parse_u64(v, UINT32_MAX, &u)) return dec_fail(dc, f, "not a uint32");
        return *(uint32_t *)slot = (uint32_t)u, true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!parse_i64(v, INT64_MIN, INT64_MAX, &i)) return dec_fail(dc, f, "not an int64");
        return *(int64_t *)slot = i, true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!parse_u64(v, UINT64_MAX, &u)) return dec_fail(dc, f, "not a uint64");
        return *(uint64_t *)slot = u, true;
    case PROTOBUF_C_TYPE_BOOL:
        if (v->type != JSON_BOOL) return dec_fail(dc, f, "not a bool");
        return *(protobuf_c_boolean *)slot = v->boolean, true;
    case PROTOBUF_C_TYPE_ENUM:
        if (!parse_enum(f, v, (int *)slot)) return dec_fail(dc, f, "unknown enum value");
        return true;
    case PROTOBUF_C_TYPE_STRING: {
        if (v->type != JSON_STRING) return dec_fail(dc, f, "not a string");
        char *s = xmalloc(v->str_len + 1);
        memcpy(s, v->str, v->str_len + 1);
        return *(char **)slot = s, true;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (v->type != JSON_STRING || !base64_decode(v->str, v->str_len, slot))
            return dec_fail(dc, f, "illegal base64 data");
        return true;
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = decode_message(dc, f->descriptor, v, depth + 1);
        return m ? (*(ProtobufCMessage **)slot = m, true) : false;
    }
    default:
        return dec_fail(dc, f, "unsupported field type");
    }
}

static size_t slot_size(const ProtobufCFieldDescriptor *f) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

static bool decode_repeated(dec *dc, const ProtobufCFieldDescriptor *f, const json_value *v, void *msg,
                            int depth) {
    if (v->type != JSON_ARRAY) return dec_fail(dc, f, "not an array");
    if (v->n == 0) return true;
    uint8_t *arr = xcalloc(v->n, slot_size(f));
    MEMBER(void *, msg, f->offset) = arr;
    for (size_t i = 0; i < v->n; i++) {
        if (!decode_scalar(dc, f, v->items[i], arr + i * slot_size(f), depth)) return false;
        MEMBER(size_t, msg, f->quantifier_offset) = i + 1; /* what free_unpacked must free */
    }
    return true;
}

/* The last value given for field f (JSON's last duplicate wins), or NULL. */
static const json_value *find_value(const ProtobufCFieldDescriptor *f, const json_value *obj) {
    for (size_t i = obj->n; i-- > 0;)
        if (name_matches(f->name, obj->keys[i])) return obj->items[i];
    return NULL;
}

static bool decode_field(dec *dc, const ProtobufCFieldDescriptor *f, const json_value *v, void *msg,
                         int depth) {
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return decode_repeated(dc, f, v, msg, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = &MEMBER(uint32_t, msg, f->quantifier_offset);
        if (*which != 0) return dec_fail(dc, f, "another field of its oneof is already set");
        if (!decode_scalar(dc, f, v, (uint8_t *)msg + f->offset, depth)) return false;
        *which = f->id;
        return true;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
        MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
    return decode_scalar(dc, f, v, (uint8_t *)msg + f->offset, depth);
}

static ProtobufCMessage *decode_message(dec *dc, const ProtobufCMessageDescriptor *d, const json_value *v,
                                        int depth) {
    if (v->type != JSON_OBJECT) {
        snprintf(dc->err, dc->errlen, "%s must be a JSON object", d->name);
        return NULL;
    }
    if (depth > 256) {
        snprintf(dc->err, dc->errlen, "message nesting too deep");
        return NULL;
    }
    ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const json_value *fv = find_value(&d->fields[i], v);
        if (!fv || fv->type == JSON_NULL) continue;
        if (!decode_field(dc, &d->fields[i], fv, m, depth)) {
            protobuf_c_message_free_unpacked(m, NULL);
            return NULL;
        }
    }
    return m;
}

ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const json_value *v, char *err,
                                size_t errlen) {
    dec dc = {err, errlen};
    return decode_message(&dc, d, v, 0);
}

/* ---------- encoding ---------- */

static void encode_message(sbuf *out, const ProtobufCMessage *m);

static void put_fmt(sbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(sbuf *out, const char *fmt, ...) {
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sbuf_append(out, buf, (size_t)n);
}

static void encode_enum(sbuf *out, const ProtobufCFieldDescriptor *f, int value) {
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);
    if (ev)
        json_write_string(out, ev->name, strlen(ev->name));
    else
        put_fmt(out, "%d", value);
}

static void encode_scalar(sbuf *out, const ProtobufCFieldDescriptor *f, const void *slot) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return put_fmt(out, "%" PRId32, *(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return put_fmt(out, "%" PRIu32, *(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return put_fmt(out, "\"%" PRId64 "\"", *(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return put_fmt(out, "\"%" PRIu64 "\"", *(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return json_write_raw(out, *(const protobuf_c_boolean *)slot ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM:
        return encode_enum(out, f, *(const int *)slot);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return json_write_string(out, s ? s : "", s ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = slot;
        sbuf_append(out, "\"", 1);
        base64_encode(out, b->data, b->len);
        return sbuf_append(out, "\"", 1);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return encode_message(out, *(ProtobufCMessage *const *)slot);
    default:
        return json_write_raw(out, "null");
    }
}

/* EmitDefaults off: proto3 scalars equal to their zero value are left out. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *slot) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)slot == NULL;
    default: {
        static const uint8_t zero[8];
        return memcmp(slot, zero, slot_size(f)) == 0;
    }
    }
}

static bool field_present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m) {
    const void *slot = (const uint8_t *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return MEMBER(size_t, m, f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return MEMBER(uint32_t, m, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
        return MEMBER(protobuf_c_boolean, m, f->quantifier_offset);
    return !is_default(f, slot);
}

static void encode_field(sbuf *out, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m) {
    json_write_string(out, f->name, strlen(f->name));
    sbuf_append(out, ":", 1);
    if (f->label != PROTOBUF_C_LABEL_REPEATED) return encode_scalar(out, f, (const uint8_t *)m + f->offset);
    size_t n = MEMBER(size_t, m, f->quantifier_offset);
    const uint8_t *arr = MEMBER(const uint8_t *, m, f->offset);
    sbuf_append(out, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_append(out, ",", 1);
        encode_scalar(out, f, arr + i * slot_size(f));
    }
    sbuf_append(out, "]", 1);
}

static void encode_message(sbuf *out, const ProtobufCMessage *m) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    bool first = true;
    sbuf_append(out, "{", 1);
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (!field_present(&d->fields[i], m)) continue;
        if (!first) sbuf_append(out, ",", 1);
        first = false;
        encode_field(out, &d->fields[i], m);
    }
    sbuf_append(out, "}", 1);
}

void pbjson_encode(sbuf *out, const ProtobufCMessage *msg) {
    encode_message(out, msg);
}

static bool blank(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return false;
    return true;
}

ProtobufCMessage *pbjson_decode_body(const ProtobufCMessageDescriptor *d, const uint8_t *body, size_t len,
                                     char *err, size_t errlen) {
    json_value *v = blank(body, len) ? json_parse("{}", 2, err, errlen)
                                     : json_parse((const char *)body, len, err, errlen);
    if (!v) return NULL;
    ProtobufCMessage *msg = pbjson_decode(d, v, err, errlen);
    json_free(v);
    return msg;
}
