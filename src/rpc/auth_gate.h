/* auth_gate.h: etcd's auth store, in memory, where every service can reach it: the users and roles,
 * whether auth is enabled and its revision; the simple tokens Authenticate hands out; and the checks
 * every call goes through (who is calling, may they read, write or administer). The Auth service
 * (src/api/svc_auth.c) changes the model and persists it; KV, Lease, Maintenance and Watch check it.
 * It sits in rpc, below api and watch, because both of them check. */
#ifndef CETCD_AUTH_GATE_H
#define CETCD_AUTH_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_perm.h"
#include "errors.h"
#include "mvcc.h"
#include "rpc.h"

/* "No error" for the checks below, which otherwise return the etcd error to answer with. */
#define AUTH_OK ETCD_ERR_COUNT

enum { AUTH_READ = 0, AUTH_WRITE = 1, AUTH_READWRITE = 2 }; /* authpb.Permission.Type */

typedef struct auth_perm {
    int type; /* AUTH_READ, AUTH_WRITE or AUTH_READWRITE */
    uint8_t *key, *range_end;
    size_t key_len, end_len;
} auth_perm;

typedef struct auth_role {
    char *name;
    auth_perm *perms; /* sorted by key, as etcd keeps them */
    size_t n_perms;
} auth_role;

typedef struct auth_user {
    char *name;
    uint8_t *password; /* the bcrypt hash ("$2b$10$..."), NULL for a user without password */
    size_t password_len;
    char **roles; /* sorted */
    size_t n_roles;
    bool no_password;
    auth_perm_set read, write; /* merged from the roles by auth_refresh (etcd's rangePermCache) */
} auth_user;

typedef struct auth_model {
    bool enabled;
    uint64_t revision; /* etcd's auth revision: 1 on a new store, +1 for each change */
    auth_user *users;  /* sorted by name */
    auth_role *roles;  /* sorted by name */
    size_t n_users, n_roles;
} auth_model;

extern auth_model g_auth;

/* --- the model; pointers into it are valid until the next change --- */
auth_user *auth_user_find(const char *name);
auth_role *auth_role_find(const char *name);
auth_user *auth_add_user(const char *name); /* a new empty user; name must be free */
auth_role *auth_add_role(const char *name);
void auth_remove_user(const char *name);
void auth_remove_role(const char *name);
bool auth_user_has_role(const auth_user *u, const char *role);
void auth_user_free(auth_user *u);
void auth_role_free(auth_role *r);
/* Empties the model (disabled, revision 0). */
void auth_model_clear(void);
/* Rebuilds every user's permission sets from the roles: after any change. */
void auth_refresh(void);

/* --- simple tokens: "<16 random letters>.<index>", as etcd's simple_token.go; each lives
 * --auth-token-ttl seconds (etcd's 300) from its last use --- */
/* A new token for user, valid until it expires or is dropped; a copy is the caller's to keep. */
const char *auth_token_assign(const char *user);
void auth_tokens_drop_user(const char *user); /* the user was deleted or changed its password */
void auth_tokens_clear(void);                 /* auth was disabled */
size_t auth_token_count(void);

/* --- the checks, as etcd's authStore (auth/store.go) --- */

/* Who is calling: etcd's AuthInfo. user NULL when the call carries neither token nor certificate. */
typedef struct auth_who {
    const char *user;  /* valid during the request it was resolved for */
    uint64_t revision; /* 0 with no user */
} auth_who;

/* AuthInfoFromCtx: a token that is not one of ours (or any token while auth is disabled: tokens are
 * dropped then) is ETCD_ERR_INVALID_AUTH_TOKEN; without a token the TLS certificate's CN is the user. */
etcd_err auth_resolve(const rpc_caller *caller, auth_who *who);
/* IsRangePermitted: reading [key, range_end) (one key if range_end is empty, "\0": from key on). */
etcd_err auth_may_read(const auth_who *who, mv_bytes key, mv_bytes range_end);
/* IsPutPermitted (range_end empty) and IsDeleteRangePermitted. */
etcd_err auth_may_write(const auth_who *who, mv_bytes key, mv_bytes range_end);
/* IsAdminPermitted: the user has the root role (anything goes while auth is disabled). */
etcd_err auth_may_admin(const auth_who *who);
/* auth_resolve then auth_may_admin: etcd's rule for admin-only calls (membership changes). */
etcd_err auth_check_admin(const rpc_caller *caller);
/* The same for Maintenance's admin-only calls (Defragment, Snapshot, Hash, HashKV), which etcd answers
 * with its auth package's own error unconverted: gRPC code Unknown and words such as "auth: permission
 * denied". NULL if allowed, else that message. */
const char *auth_check_maintenance(const rpc_caller *caller);
/* A Watch create, as etcd's isWatchPermitted (an empty key is "\0", the smallest; range_end "\0" is
 * every key from key on): NULL if allowed, else the cancel reason etcd sends, which is the gRPC
 * status text ("rpc error: code = PermissionDenied desc = etcdserver: permission denied"). */
const char *auth_watch_denied(const rpc_caller *caller, mv_bytes key, mv_bytes range_end);

#endif
