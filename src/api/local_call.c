/* local_call.c: runs a service function through a reply_sink that copies its answer (local_call.h):
 * the response is packed and unpacked again, so it outlives the service's own memory. */
#include "local_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static void keep_reply(void *ctx, const ProtobufCMessage *resp) {
    local_result *r = ctx;
    size_t len = protobuf_c_message_get_packed_size(resp);
    uint8_t *buf = xmalloc(len ? len : 1);
    protobuf_c_message_pack(resp, buf);
    r->resp = protobuf_c_message_unpack(resp->descriptor, NULL, len, buf);
    free(buf);
    if (!r->resp) out_of_memory(); /* what was just packed always unpacks */
    r->code = GRPC_OK;
}

static void keep_error(void *ctx, int code, const char *message) {
    local_result *r = ctx;
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

bool local_call(unary_exec exec, const ProtobufCMessage *req, local_result *out) {
    memset(out, 0, sizeof *out);
    out->code = GRPC_UNKNOWN;
    snprintf(out->message, sizeof out->message, "cetcd: no reply");
    reply_sink sink = {keep_reply, keep_error, out};
    exec(req, protobuf_c_message_get_packed_size(req), &sink);
    return out->resp != NULL;
}

void local_result_free(local_result *r) {
    if (r->resp) protobuf_c_message_free_unpacked(r->resp, NULL);
    r->resp = NULL;
}
