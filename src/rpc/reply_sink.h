/* reply_sink.h: where a unary request's answer goes, so one service function serves both a gRPC call
 * and the HTTP/1.1 JSON gateway: a response message, or a gRPC status code and message. */
#ifndef CETCD_REPLY_SINK_H
#define CETCD_REPLY_SINK_H

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"

typedef struct reply_sink {
    void (*reply)(void *ctx, const ProtobufCMessage *resp); /* the response (valid during the call) */
    void (*fail)(void *ctx, int grpc_code, const char *message);
    void *ctx;
} reply_sink;

/* A service function: answers req (len = its encoded size, for request size limits) through out,
 * before returning. */
typedef void (*unary_exec)(const ProtobufCMessage *req, size_t len, const reply_sink *out);

/* The sink answering gRPC call (rpc_reply / rpc_finish). */
reply_sink rpc_sink(rpc_call *call);
/* Whether out is such a sink, which can then send a response already encoded as protobuf, len bytes
 * (rpc_sink_reply_encoded; a large reply is packed once, where its data is, instead of built as a
 * message first). */
bool rpc_sink_takes_encoded(const reply_sink *out);
void rpc_sink_reply_encoded(const reply_sink *out, const uint8_t *msg, size_t len);
/* The same, with the response packed in place (rpc_message_reserve): room for len bytes, or NULL when
 * the call takes no reply (it was finished, with RESOURCE_EXHAUSTED if len is over the send limit);
 * then the commit of its first len bytes, which finishes the call with OK. */
uint8_t *rpc_sink_reserve_encoded(const reply_sink *out, size_t len);
/* rpc_message_pledge for the call of out (a gRPC call's sink). */
void rpc_sink_pledge(const reply_sink *out, size_t len);
void rpc_sink_commit_encoded(const reply_sink *out, size_t len);
/* The gRPC call a sink answers (rpc_sink_takes_encoded), for a reply finished on a later loop turn. */
rpc_call *rpc_sink_call(const reply_sink *out);

/* The answer to a request that does not decode as d (grpc-go's words), and finishing call with it
 * under grpc-go's code, INTERNAL. */
const char *rpc_unmarshal_error(const ProtobufCMessageDescriptor *d);
void rpc_fail_unmarshal(rpc_call *call, const ProtobufCMessageDescriptor *d);
/* Unpacks msg as type d; NULL after rpc_fail_unmarshal, as grpc-go answers malformed protobuf (an
 * unknown field numbered 0 included, which protobuf-c alone would take). */
ProtobufCMessage *rpc_unpack(rpc_call *call, const uint8_t *msg, size_t len,
                             const ProtobufCMessageDescriptor *d);

/* Unpacks msg as type d, runs exec with call's sink, frees the request. Malformed protobuf gets
 * INVALID_ARGUMENT as grpc-go answers it. */
void rpc_unary_exec(rpc_call *call, const uint8_t *msg, size_t len, const ProtobufCMessageDescriptor *d,
                    unary_exec exec);
/* Its second half: runs exec on a request decoded by other means, len bytes on the wire. */
void rpc_unary_run(rpc_call *call, const ProtobufCMessage *req, size_t len, unary_exec exec);

#endif
