/* auth_users.c: the Auth service's user calls (UserAdd, UserGet, UserList, UserDelete,
 * UserChangePassword, UserGrantRole, UserRevokeRole) with etcd 3.5's rules and errors: admin-only
 * except that a user may get itself, root cannot be deleted or lose the root role while auth is on,
 * and a deleted user or a changed password ends the user's tokens. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_hash.h"
#include "auth_internal.h"
#include "header.h"
#include "log_msg.h"
#include "store.h"
#include "svc_auth.h"

/* ---------- UserAdd ---------- */

bool auth_user_add_check(const Etcdserverpb__AuthUserAddRequest *r, const reply_sink *out, bool *hash) {
    bool no_password = r->options && r->options->no_password;
    *hash = !no_password;
    /* etcd 3.5 hashes in its API layer, before anything is checked */
    if (*hash && !auth_password_fits(r->password, out)) return false;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return false;
    if (!*r->name) return auth_fail(out, ETCD_ERR_USER_EMPTY), false;
    if (auth_user_find(r->name)) return auth_fail(out, ETCD_ERR_USER_ALREADY_EXIST), false;
    return true;
}

void auth_user_add_apply(const Etcdserverpb__AuthUserAddRequest *r, const char *hash, const reply_sink *out) {
    bool want_hash;
    if (!auth_user_add_check(r, out, &want_hash)) return;
    if (want_hash && !hash) return out->fail(out->ctx, GRPC_INTERNAL, "cetcd: bcrypt hashing failed");
    auth_user *u = auth_add_user(r->name);
    u->no_password = !want_hash;
    if (want_hash) {
        u->password_len = strlen(hash);
        u->password = (uint8_t *)xstrdup(hash);
    }
    log_msg(LOG_INFO, "added a user: %s", r->name);
    auth_changed(out, &etcdserverpb__auth_user_add_response__descriptor);
}

/* ---------- UserChangePassword ---------- */

bool auth_user_change_password_check(const Etcdserverpb__AuthUserChangePasswordRequest *r,
                                     const reply_sink *out, bool *hash) {
    *hash = *r->password != '\0'; /* else etcd 3.5 takes hashedPassword as it is */
    if (*hash && !auth_password_fits(r->password, out)) return false;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return false;
    if (!auth_user_find(r->name)) return auth_fail(out, ETCD_ERR_USER_NOT_FOUND), false;
    return true;
}

/* Go's base64.StdEncoding.DecodeString (padding required; \r and \n skipped). NULL if malformed. */
static uint8_t *base64_decode(const char *s, size_t *len) {
    size_t n = strlen(s), o = 0, q = 0, pad = 0;
    uint8_t *out = xmalloc(n / 4 * 3 + 3);
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;
        if (c == '\r' || c == '\n') continue;
        if (c == '=') {
            pad++;
            v = 0;
        } else if (pad) {
            v = -1;
        } else {
            const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            const char *at = c ? strchr(alphabet, c) : NULL;
            v = at ? (int)(at - alphabet) : -1;
        }
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++q == 4) {
            out[o++] = (uint8_t)(acc >> 16), out[o++] = (uint8_t)(acc >> 8), out[o++] = (uint8_t)acc;
            q = 0;
            acc = 0;
        }
    }
    if (q != 0 || pad > 2) {
        free(out);
        return NULL;
    }
    *len = o - pad;
    return out;
}

void auth_user_change_password_apply(const Etcdserverpb__AuthUserChangePasswordRequest *r, const char *hash,
                                     const reply_sink *out) {
    bool want_hash;
    if (!auth_user_change_password_check(r, out, &want_hash)) return;
    if (want_hash && !hash) return out->fail(out->ctx, GRPC_INTERNAL, "cetcd: bcrypt hashing failed");
    auth_user *u = auth_user_find(r->name);
    uint8_t *password = NULL;
    size_t password_len = 0;
    if (!u->no_password) { /* a user without password stays so */
        if (want_hash) {
            password = (uint8_t *)xstrdup(hash);
            password_len = strlen(hash);
        } else if (!(password = base64_decode(r->hashedpassword, &password_len))) {
            return out->fail(out->ctx, GRPC_UNKNOWN,
                             "auth: authentication failed, password was given for no password user");
        }
    }
    free(u->password);
    u->password = password;
    u->password_len = password_len;
    auth_tokens_drop_user(r->name);
    log_msg(LOG_INFO, "changed a password of a user: %s", r->name);
    auth_changed(out, &etcdserverpb__auth_user_change_password_response__descriptor);
}

/* ---------- UserGet, UserList ---------- */

/* A user may get itself; anyone else needs the root role (etcd's authApplierV3.UserGet). */
void auth_user_get_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthUserGetRequest *r = (const Etcdserverpb__AuthUserGetRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, false)) return;
    etcd_err e = auth_may_admin(&who);
    if (e != AUTH_OK && strcmp(r->name, who.user ? who.user : "") != 0) return auth_fail(out, e);
    const auth_user *u = auth_user_find(r->name);
    if (!u) return auth_fail(out, ETCD_ERR_USER_NOT_FOUND);
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthUserGetResponse resp = ETCDSERVERPB__AUTH_USER_GET_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    resp.n_roles = u->n_roles;
    resp.roles = u->roles;
    out->reply(out->ctx, &resp.base);
}

void auth_user_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthUserListResponse resp = ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    resp.n_users = g_auth.n_users;
    resp.users = xcalloc(g_auth.n_users ? g_auth.n_users : 1, sizeof *resp.users);
    for (size_t i = 0; i < g_auth.n_users; i++)
        resp.users[i] = g_auth.users[i].name;
    out->reply(out->ctx, &resp.base);
    free(resp.users);
}

/* ---------- UserDelete ---------- */

void auth_user_delete_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthUserDeleteRequest *r = (const Etcdserverpb__AuthUserDeleteRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    if (g_auth.enabled && strcmp(r->name, AUTH_ROOT) == 0) return auth_fail(out, ETCD_ERR_INVALID_AUTH_MGMT);
    if (!auth_user_find(r->name)) return auth_fail(out, ETCD_ERR_USER_NOT_FOUND);
    char *name = xstrdup(r->name); /* who.user may be the deleted user's name */
    auth_remove_user(name);
    auth_tokens_drop_user(name);
    log_msg(LOG_INFO, "deleted a user: %s", name);
    free(name);
    auth_changed(out, &etcdserverpb__auth_user_delete_response__descriptor);
}

/* ---------- UserGrantRole, UserRevokeRole ---------- */

void auth_user_grant_role_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthUserGrantRoleRequest *r = (const Etcdserverpb__AuthUserGrantRoleRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    auth_user *u = auth_user_find(r->user);
    if (!u) return auth_fail(out, ETCD_ERR_USER_NOT_FOUND);
    /* the root role need not exist to be granted */
    if (strcmp(r->role, AUTH_ROOT) != 0 && !auth_role_find(r->role))
        return auth_fail(out, ETCD_ERR_ROLE_NOT_FOUND);
    const ProtobufCMessageDescriptor *d = &etcdserverpb__auth_user_grant_role_response__descriptor;
    size_t at = 0;
    while (at < u->n_roles && strcmp(u->roles[at], r->role) < 0)
        at++;
    if (at < u->n_roles && strcmp(u->roles[at], r->role) == 0) return auth_reply_empty(out, d); /* ignored */
    u->roles = xrealloc(u->roles, (u->n_roles + 1) * sizeof *u->roles);
    memmove(&u->roles[at + 1], &u->roles[at], (u->n_roles - at) * sizeof *u->roles);
    u->roles[at] = xstrdup(r->role);
    u->n_roles++;
    log_msg(LOG_INFO, "granted role %s to user %s", r->role, r->user);
    auth_changed(out, d);
}

void auth_user_revoke_role_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthUserRevokeRoleRequest *r = (const Etcdserverpb__AuthUserRevokeRoleRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    if (g_auth.enabled && strcmp(r->name, AUTH_ROOT) == 0 && strcmp(r->role, AUTH_ROOT) == 0)
        return auth_fail(out, ETCD_ERR_INVALID_AUTH_MGMT);
    auth_user *u = auth_user_find(r->name);
    if (!u) return auth_fail(out, ETCD_ERR_USER_NOT_FOUND);
    size_t kept = 0;
    for (size_t i = 0; i < u->n_roles; i++) {
        if (strcmp(u->roles[i], r->role) == 0)
            free(u->roles[i]);
        else
            u->roles[kept++] = u->roles[i];
    }
    if (kept == u->n_roles) return auth_fail(out, ETCD_ERR_ROLE_NOT_GRANTED);
    u->n_roles = kept;
    log_msg(LOG_INFO, "revoked role %s from user %s", r->role, r->name);
    auth_changed(out, &etcdserverpb__auth_user_revoke_role_response__descriptor);
}
