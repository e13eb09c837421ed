/* svc_lock.h: etcd's Lock service (v3lockpb.Lock: Lock, Unlock) for the method table and the JSON
 * gateway. A Lock call waits without blocking the loop until every older contender is gone; Lock's
 * on_close cleans up a call that ends (client gone, deadline) before it got the lock. */
#ifndef CETCD_SVC_LOCK_H
#define CETCD_SVC_LOCK_H

#include "later_call.h"
#include "reply_sink.h"
#include "rpc.h"

void lock_lock_exec(later_call *lc, const ProtobufCMessage *req); /* a LockRequest */
void lock_unlock_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

/* gRPC handlers */
void lock_lock(rpc_call *call, const uint8_t *msg, size_t len);
void lock_lock_closed(rpc_call *call);
void lock_unlock(rpc_call *call, const uint8_t *msg, size_t len);

#endif
