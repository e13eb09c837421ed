/* later_call.c: the bookkeeping of a call answered later (later_call.h) and its gRPC side: one
 * later_call per call, in the call's user slot until the transport closes the call. */
#include "later_call.h"

#include <assert.h>
#include <stdlib.h>

#include "alloc.h"

void later_call_wait(later_call *lc, void *wait, later_cancel_fn cancel) {
    assert(wait && cancel && !lc->wait);
    lc->wait = wait;
    lc->cancel = cancel;
}

void later_call_done(later_call *lc) {
    lc->wait = NULL;
    lc->cancel = NULL;
}

void later_call_gone(later_call *lc) {
    if (!lc->wait) return;
    later_cancel_fn cancel = lc->cancel;
    cancel(lc);
    later_call_done(lc);
}

const rpc_caller *later_call_as(const later_call *lc) {
    return rpc_set_current_caller(lc->caller);
}

/* ---------- gRPC ---------- */

static void stream_send(void *ctx, const ProtobufCMessage *m) {
    rpc_send(ctx, m);
}

static void call_end(void *ctx, int code, const char *message) {
    rpc_finish(ctx, code, message);
}

static size_t call_pending(void *ctx) {
    return rpc_pending_bytes(ctx);
}

void later_call_grpc(rpc_call *call, const uint8_t *msg, size_t len, const ProtobufCMessageDescriptor *d,
                     later_exec exec, bool stream) {
    ProtobufCMessage *req = rpc_unpack(call, msg, len, d);
    if (!req) return;
    assert(!rpc_user(call));
    later_call *lc = xcalloc(1, sizeof *lc);
    lc->out = rpc_sink(call);
    if (stream) lc->out = (reply_sink){stream_send, call_end, call};
    lc->caller = rpc_call_caller(call);
    lc->pending = call_pending;
    rpc_set_user(call, lc);
    const rpc_caller *was = later_call_as(lc);
    exec(lc, req);
    rpc_set_current_caller(was);
    protobuf_c_message_free_unpacked(req, NULL);
}

void later_call_grpc_closed(rpc_call *call) {
    later_call *lc = rpc_user(call);
    if (!lc) return;
    rpc_set_user(call, NULL);
    later_call_gone(lc);
    free(lc);
}
