/* local_call.h: the services called from inside the server, the way etcd's Lock and Election servers
 * call KV and Lease through an in-process client: the same service function a gRPC call runs, with
 * the answer kept as a copy (or the error) for the caller to read. */
#ifndef CETCD_LOCAL_CALL_H
#define CETCD_LOCAL_CALL_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "reply_sink.h"

typedef struct local_result {
    ProtobufCMessage *resp; /* the response, NULL after an error; free with local_result_free */
    int code;               /* the error's gRPC code, GRPC_OK if none */
    char message[256];      /* and its message */
} local_result;

/* Runs exec on req (its size counted as its encoded size, as on the wire). True if it answered with
 * a response. */
bool local_call(unary_exec exec, const ProtobufCMessage *req, local_result *out);
void local_result_free(local_result *r);

#endif
