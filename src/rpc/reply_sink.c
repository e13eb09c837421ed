/* reply_sink.c: the gRPC side of reply_sink (see reply_sink.h): answers through rpc.h, and the common
 * unpack → run → free sequence of unary handlers written as unary_exec functions. */
#include "reply_sink.h"

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

ProtobufCMessage *rpc_unpack(rpc_call *call, const uint8_t *msg, size_t len,
                             const ProtobufCMessageDescriptor *d) {
    ProtobufCMessage *req = protobuf_c_message_unpack(d, NULL, len, msg);
    if (!req) {
        char text[160];
        snprintf(text, sizeof text, "grpc: error unmarshalling request: malformed %s", d->name);
        rpc_finish(call, GRPC_INVALID_ARGUMENT, text);
    }
    return req;
}

void rpc_unary_exec(rpc_call *call, const uint8_t *msg, size_t len, const ProtobufCMessageDescriptor *d,
                    unary_exec exec) {
    ProtobufCMessage *req = rpc_unpack(call, msg, len, d);
    if (!req) return;
    reply_sink out = rpc_sink(call);
    const rpc_caller *was = rpc_set_current_caller(rpc_call_caller(call));
    exec(req, len, &out);
    rpc_set_current_caller(was);
    protobuf_c_message_free_unpacked(req, NULL);
}
