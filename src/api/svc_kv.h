/* svc_kv.h: the KV service's gRPC handlers (Range, Put, DeleteRange, Txn, Compact), named here so the
 * method table (methods.c) can point at them. */
#ifndef CETCD_SVC_KV_H
#define CETCD_SVC_KV_H

#include "reply_sink.h"
#include "rpc.h"

void kv_range(rpc_call *call, const uint8_t *msg, size_t len);
void kv_put(rpc_call *call, const uint8_t *msg, size_t len);
void kv_delete_range(rpc_call *call, const uint8_t *msg, size_t len);
void kv_txn(rpc_call *call, const uint8_t *msg, size_t len);
void kv_compact(rpc_call *call, const uint8_t *msg, size_t len);

/* The same requests already decoded, answered through a reply_sink (the JSON gateway uses these). */
void kv_range_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void kv_put_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void kv_delete_range_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void kv_txn_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void kv_compact_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

#endif
