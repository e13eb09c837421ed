/* svc_kv.h: the KV service's gRPC handlers (Range, Put, DeleteRange, Txn, Compact), named here so the
 * method table (methods.c) can point at them. */
#ifndef CETCD_SVC_KV_H
#define CETCD_SVC_KV_H

#include "rpc.h"

void kv_range(rpc_call *call, const uint8_t *msg, size_t len);
void kv_put(rpc_call *call, const uint8_t *msg, size_t len);
void kv_delete_range(rpc_call *call, const uint8_t *msg, size_t len);
void kv_txn(rpc_call *call, const uint8_t *msg, size_t len);
void kv_compact(rpc_call *call, const uint8_t *msg, size_t len);

#endif
