/* svc_auth.h: etcd's Auth service (AuthEnable ... RoleRevokePermission) as unary_exec functions for
 * the JSON gateway and gRPC handlers for the method table, and the service's start-up. The model and
 * the checks other services make are in auth_gate.h; the per-request checks of KV and Lease in
 * auth_checks.h. */
#ifndef CETCD_SVC_AUTH_H
#define CETCD_SVC_AUTH_H

#include <ev.h>

#include "later_call.h"
#include "reply_sink.h"
#include "rpc.h"

/* Reads the saved auth state (exits with a message if it cannot) and starts the hashing threads. */
void auth_service_start(struct ev_loop *loop);

void auth_enable_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_disable_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_status_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
/* Authenticate, UserAdd and UserChangePassword hash on helper threads and answer later. */
void auth_authenticate_exec(later_call *lc, const ProtobufCMessage *req);
void auth_user_add_exec(later_call *lc, const ProtobufCMessage *req);
void auth_user_change_password_exec(later_call *lc, const ProtobufCMessage *req);
void auth_user_get_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_user_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_user_delete_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_user_grant_role_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_user_revoke_role_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_add_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_get_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_delete_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_grant_permission_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void auth_role_revoke_permission_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

/* gRPC handlers */
void auth_enable(rpc_call *call, const uint8_t *msg, size_t len);
void auth_disable(rpc_call *call, const uint8_t *msg, size_t len);
void auth_status(rpc_call *call, const uint8_t *msg, size_t len);
void auth_authenticate(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_add(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_get(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_list(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_delete(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_change_password(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_grant_role(rpc_call *call, const uint8_t *msg, size_t len);
void auth_user_revoke_role(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_add(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_get(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_list(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_delete(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_grant_permission(rpc_call *call, const uint8_t *msg, size_t len);
void auth_role_revoke_permission(rpc_call *call, const uint8_t *msg, size_t len);
/* on_close of the three that hash: the call went before its hash was done */
void auth_hashing_call_closed(rpc_call *call);

#endif
