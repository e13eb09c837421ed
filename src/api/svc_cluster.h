/* svc_cluster.h: the Cluster service for the method table: one member (this server) listed, and
 * membership changes refused with clear errors rather than ignored. */
#ifndef CETCD_SVC_CLUSTER_H
#define CETCD_SVC_CLUSTER_H

#include "reply_sink.h"
#include "rpc.h"

/* Unary service functions, shared by the gRPC handlers and the JSON gateway. */
void cluster_member_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void cluster_member_add_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void cluster_member_remove_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void cluster_member_update_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void cluster_member_promote_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

void cluster_member_list(rpc_call *call, const uint8_t *msg, size_t len);
void cluster_member_add(rpc_call *call, const uint8_t *msg, size_t len);
void cluster_member_remove(rpc_call *call, const uint8_t *msg, size_t len);
void cluster_member_update(rpc_call *call, const uint8_t *msg, size_t len);
void cluster_member_promote(rpc_call *call, const uint8_t *msg, size_t len);

#endif
