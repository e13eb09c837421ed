/* reply_sink.c: the gRPC side of reply_sink (see reply_sink.h): answers through rpc.h, and the common
 * unpack → run → free sequence of unary handlers written as unary_exec functions. */
#include "reply_sink.h"

#include <assert.h>
#include <stdio.h>

static void sink_reply(void *ctx, const ProtobufCMessage *resp) {
    rpc_reply(ctx, resp);
}

static void sink_fail(void *ctx, int code, const char *message) {
    rpc_finish(ctx, code, message);
}

static const rpc_caller *current_caller;

const rpc_caller *rpc_current_caller(void) {
    return current_caller;
}

const rpc_caller *rpc_set_current_caller(const rpc_caller *caller) {
    const rpc_caller *was = current_caller;
    current_caller = caller;
    return was;
}

reply_sink rpc_sink(rpc_call *call) {
    return (reply_sink){sink_reply, sink_fail, call};
}

bool rpc_sink_takes_encoded(const reply_sink *out) {
    return out->reply == sink_reply;
}

void rpc_sink_reply_encoded(const reply_sink *out, const uint8_t *msg, size_t len) {
    assert(rpc_sink_takes_encoded(out));
    rpc_send_parts(out->ctx, msg, len, NULL, 0);
    rpc_finish(out->ctx, GRPC_OK, NULL); /* nothing if the send failed the call */
}

uint8_t *rpc_sink_reserve_encoded(const reply_sink *out, size_t len) {
    assert(rpc_sink_takes_encoded(out));
    return rpc_message_reserve(out->ctx, len);
}

void rpc_sink_pledge(const reply_sink *out, size_t len) {
    assert(rpc_sink_takes_encoded(out));
    rpc_message_pledge(out->ctx, len);
}

void rpc_sink_commit_encoded(const reply_sink *out, size_t len) {
    assert(rpc_sink_takes_encoded(out));
    rpc_message_commit(out->ctx, len);
    rpc_finish(out->ctx, GRPC_OK, NULL); /* nothing if the call is finished already (a unary one is) */
}

rpc_call *rpc_sink_call(const reply_sink *out) {
    assert(rpc_sink_takes_encoded(out));
    return out->ctx;
}

const char *rpc_unmarshal_error(const ProtobufCMessageDescriptor *d) {
    static char text[160];
    snprintf(text, sizeof text, "grpc: error unmarshalling request: malformed %s", d->name);
    return text;
}

void rpc_fail_unmarshal(rpc_call *call, const ProtobufCMessageDescriptor *d) {
    rpc_finish(call, GRPC_INTERNAL, rpc_unmarshal_error(d));
}

/* Does m, or a message inside it, hold an unknown field numbered 0? Go's decoder refuses one ("illegal
 * tag 0"); protobuf-c takes it in, and writes it out as a tag it then refuses itself. */
static bool has_field_zero(const ProtobufCMessage *m) {
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0) return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *at = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)at;
            for (size_t k = 0; k < n; k++)
                if (items[k] && has_field_zero(items[k])) return true;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
            if (sub && has_field_zero(sub)) return true;
        }
    }
    return false;
}

ProtobufCMessage *rpc_unpack(rpc_call *call, const uint8_t *msg, size_t len,
                             const ProtobufCMessageDescriptor *d) {
    ProtobufCMessage *req = protobuf_c_message_unpack(d, NULL, len, msg);
    if (req && has_field_zero(req)) {
        protobuf_c_message_free_unpacked(req, NULL);
        req = NULL;
    }
    if (!req) rpc_fail_unmarshal(call, d);
    return req;
}

void rpc_unary_run(rpc_call *call, const ProtobufCMessage *req, size_t len, unary_exec exec) {
    reply_sink out = rpc_sink(call);
    const rpc_caller *was = rpc_set_current_caller(rpc_call_caller(call));
    exec(req, len, &out);
    rpc_set_current_caller(was);
}

void rpc_unary_exec(rpc_call *call, const uint8_t *msg, size_t len, const ProtobufCMessageDescriptor *d,
                    unary_exec exec) {
    ProtobufCMessage *req = rpc_unpack(call, msg, len, d);
    if (!req) return;
    rpc_unary_run(call, req, len, exec);
    protobuf_c_message_free_unpacked(req, NULL);
}
