/* later_call.h: a call that its service may answer after the service function has returned (Lock and
 * Campaign wait for older keys, Observe streams, Authenticate, UserAdd and UserChangePassword wait for
 * a hash), the same whichever front end it came from: a gRPC call, or the JSON gateway's deferred
 * HTTP/1 reply. */
#ifndef CETCD_LATER_CALL_H
#define CETCD_LATER_CALL_H

#include <stdbool.h>
#include <stddef.h>

#include "reply_sink.h"
#include "rpc.h"

typedef struct later_call later_call;
/* The client went while the call waited: frees the service's wait (the call is gone after). */
typedef void (*later_cancel_fn)(later_call *lc);

struct later_call {
    /* reply: the answer of a unary call, or one message of a stream; fail: the end of the call, with
     * an error, or with GRPC_OK for a stream that ends well. */
    reply_sink out;
    const rpc_caller *caller;     /* who sent it, valid while the call lives */
    size_t (*pending)(void *ctx); /* output queued on its connection and not yet written */
    void *wait;                   /* the service's state while the call waits, else NULL */
    later_cancel_fn cancel;       /* set with wait */
};

/* A service function that answers through lc->out now, or registers a wait (later_call_wait) and
 * answers later, clearing it (later_call_done) before it frees the wait. req is borrowed. */
typedef void (*later_exec)(later_call *lc, const ProtobufCMessage *req);

void later_call_wait(later_call *lc, void *wait, later_cancel_fn cancel);
void later_call_done(later_call *lc);
/* The front end's word that the client went: the wait, if any, is canceled. */
void later_call_gone(later_call *lc);

/* Sets the current caller (rpc_current_caller) to lc's, for steps run after a wait; returns the one to
 * put back. */
const rpc_caller *later_call_as(const later_call *lc);

/* The gRPC side: unpacks msg as d (a malformed one is refused as grpc-go does), runs exec as the
 * call's caller, with a later_call kept until the call closes (stream: reply sends one message). */
void later_call_grpc(rpc_call *call, const uint8_t *msg, size_t len, const ProtobufCMessageDescriptor *d,
                     later_exec exec, bool stream);
/* The on_close of such a call: cancels its wait and frees the later_call. */
void later_call_grpc_closed(rpc_call *call);

#endif
