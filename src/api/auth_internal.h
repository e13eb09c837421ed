/* auth_internal.h: what the Auth service's files share (svc_auth.c: auth on/off, Authenticate, the gRPC
 * handlers and their hashing in the background; auth_users.c; auth_roles.c). Private to them. */
#ifndef CETCD_AUTH_INTERNAL_H
#define CETCD_AUTH_INTERNAL_H

#include <stdbool.h>

#include "auth_gate.h"
#include "reply_sink.h"
#include "rpc.pb-c.h"

#define AUTH_ROOT "root" /* etcd's rootUser and rootRole */

void auth_fail(const reply_sink *out, etcd_err e);
/* etcd's raft path: the caller is resolved from its token (an unknown token fails), then an
 * admin-only request needs the root role (etcd's needAdminPermission). False once answered. */
bool auth_admitted(const reply_sink *out, auth_who *who, bool admin);
/* Answers with a response of type d holding only its header. */
void auth_reply_empty(const reply_sink *out, const ProtobufCMessageDescriptor *d);
/* After a change of the model: the auth revision moves on, the permission sets are rebuilt, the state
 * is saved (the reply waits for it to be durable) and the answer is an empty response of type d. */
void auth_changed(const reply_sink *out, const ProtobufCMessageDescriptor *d);
/* Go's bcrypt (etcd 3.5) refuses to hash a password over 72 bytes, before anything else. False once
 * answered. */
bool auth_password_fits(const char *password, const reply_sink *out);

/* UserAdd and UserChangePassword in two halves around the hash: the check (false once answered; *hash
 * says whether a password must be hashed), then, with the hash (or NULL), the change itself, which
 * checks again since the model may have changed while hashing. */
bool auth_user_add_check(const Etcdserverpb__AuthUserAddRequest *r, const reply_sink *out, bool *hash);
void auth_user_add_apply(const Etcdserverpb__AuthUserAddRequest *r, const char *hash, const reply_sink *out);
bool auth_user_change_password_check(const Etcdserverpb__AuthUserChangePasswordRequest *r,
                                     const reply_sink *out, bool *hash);
void auth_user_change_password_apply(const Etcdserverpb__AuthUserChangePasswordRequest *r, const char *hash,
                                     const reply_sink *out);

#endif
