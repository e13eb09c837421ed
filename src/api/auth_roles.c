/* auth_roles.c: the Auth service's role calls (RoleAdd, RoleGet, RoleList, RoleDelete,
 * RoleGrantPermission, RoleRevokePermission) with etcd 3.5's rules and errors: admin-only except that a
 * user may get a role it has; permissions are kept sorted by key and a grant of the same key and
 * range_end replaces the type; the root role cannot be deleted while auth is on. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_internal.h"
#include "header.h"
#include "log_msg.h"
#include "store.h"
#include "svc_auth.h"

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = al && bl ? memcmp(a, b, al < bl ? al : bl) : 0;
    return c ? c : (al > bl) - (al < bl);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    if (!n) return NULL;
    uint8_t *out = xmalloc(n);
    memcpy(out, p, n);
    return out;
}

void auth_role_add_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthRoleAddRequest *r = (const Etcdserverpb__AuthRoleAddRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    if (!*r->name) return auth_fail(out, ETCD_ERR_ROLE_EMPTY);
    if (auth_role_find(r->name)) return auth_fail(out, ETCD_ERR_ROLE_ALREADY_EXIST);
    auth_add_role(r->name);
    log_msg(LOG_INFO, "created a role: %s", r->name);
    auth_changed(out, &etcdserverpb__auth_role_add_response__descriptor);
}

/* Admins get any role; a user the roles it has (etcd's authApplierV3.RoleGet). */
void auth_role_get_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthRoleGetRequest *r = (const Etcdserverpb__AuthRoleGetRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, false)) return;
    etcd_err e = auth_may_admin(&who);
    const auth_user *self = who.user ? auth_user_find(who.user) : NULL;
    if (e != AUTH_OK && !(self && auth_user_has_role(self, r->role))) return auth_fail(out, e);
    const auth_role *role = auth_role_find(r->role);
    if (!role) return auth_fail(out, ETCD_ERR_ROLE_NOT_FOUND);
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthRoleGetResponse resp = ETCDSERVERPB__AUTH_ROLE_GET_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    size_t n = role->n_perms;
    Authpb__Permission *perms = xcalloc(n ? n : 1, sizeof *perms);
    resp.perm = xcalloc(n ? n : 1, sizeof *resp.perm);
    resp.n_perm = n;
    for (size_t i = 0; i < n; i++) {
        const auth_perm *p = &role->perms[i];
        authpb__permission__init(&perms[i]);
        perms[i].permtype = (Authpb__Permission__Type)p->type;
        perms[i].key = (ProtobufCBinaryData){p->key_len, p->key};
        perms[i].range_end = (ProtobufCBinaryData){p->end_len, p->range_end};
        resp.perm[i] = &perms[i];
    }
    out->reply(out->ctx, &resp.base);
    free(resp.perm);
    free(perms);
}

/* etcd lists roles with a range from "\x00" to "\xff": a name starting with byte 0xff is left out. */
void auth_role_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthRoleListResponse resp = ETCDSERVERPB__AUTH_ROLE_LIST_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    resp.roles = xcalloc(g_auth.n_roles ? g_auth.n_roles : 1, sizeof *resp.roles);
    for (size_t i = 0; i < g_auth.n_roles; i++)
        if ((unsigned char)g_auth.roles[i].name[0] != 0xff) resp.roles[resp.n_roles++] = g_auth.roles[i].name;
    out->reply(out->ctx, &resp.base);
    free(resp.roles);
}

/* The role goes, and from every user that had it. */
void auth_role_delete_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthRoleDeleteRequest *r = (const Etcdserverpb__AuthRoleDeleteRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    if (g_auth.enabled && strcmp(r->role, AUTH_ROOT) == 0) return auth_fail(out, ETCD_ERR_INVALID_AUTH_MGMT);
    if (!auth_role_find(r->role)) return auth_fail(out, ETCD_ERR_ROLE_NOT_FOUND);
    auth_remove_role(r->role);
    for (size_t i = 0; i < g_auth.n_users; i++) {
        auth_user *u = &g_auth.users[i];
        size_t kept = 0;
        for (size_t j = 0; j < u->n_roles; j++) {
            if (strcmp(u->roles[j], r->role) == 0)
                free(u->roles[j]);
            else
                u->roles[kept++] = u->roles[j];
        }
        u->n_roles = kept;
    }
    log_msg(LOG_INFO, "deleted role %s", r->role);
    auth_changed(out, &etcdserverpb__auth_role_delete_response__descriptor);
}

void auth_role_grant_permission_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthRoleGrantPermissionRequest *r =
        (const Etcdserverpb__AuthRoleGrantPermissionRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    const Authpb__Permission *p = r->perm;
    if (!p) return auth_fail(out, ETCD_ERR_PERMISSION_NOT_GIVEN);
    if (!auth_perm_valid_range(p->key.data, p->key.len, p->range_end.data, p->range_end.len))
        return auth_fail(out, ETCD_ERR_INVALID_AUTH_MGMT);
    auth_role *role = auth_role_find(r->name);
    if (!role) return auth_fail(out, ETCD_ERR_ROLE_NOT_FOUND);
    /* etcd looks only at the first permission whose key is not below the new one's (sort.Search) */
    size_t at = 0;
    while (at < role->n_perms &&
           bytes_cmp(role->perms[at].key, role->perms[at].key_len, p->key.data, p->key.len) < 0)
        at++;
    auth_perm *same = at < role->n_perms ? &role->perms[at] : NULL;
    if (same && bytes_cmp(same->key, same->key_len, p->key.data, p->key.len) == 0 &&
        bytes_cmp(same->range_end, same->end_len, p->range_end.data, p->range_end.len) == 0) {
        same->type = (int)p->permtype;
    } else { /* appended, then sorted by key: after the permissions with the same key */
        while (at < role->n_perms &&
               bytes_cmp(role->perms[at].key, role->perms[at].key_len, p->key.data, p->key.len) == 0)
            at++;
        role->perms = xrealloc(role->perms, (role->n_perms + 1) * sizeof *role->perms);
        memmove(&role->perms[at + 1], &role->perms[at], (role->n_perms - at) * sizeof *role->perms);
        role->perms[at] = (auth_perm){.type = (int)p->permtype,
                                      .key = dup_bytes(p->key.data, p->key.len),
                                      .key_len = p->key.len,
                                      .range_end = dup_bytes(p->range_end.data, p->range_end.len),
                                      .end_len = p->range_end.len};
        role->n_perms++;
    }
    log_msg(LOG_INFO, "granted/updated a permission of role %s", r->name);
    auth_changed(out, &etcdserverpb__auth_role_grant_permission_response__descriptor);
}

/* Every permission with this key and range_end goes. */
void auth_role_revoke_permission_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__AuthRoleRevokePermissionRequest *r =
        (const Etcdserverpb__AuthRoleRevokePermissionRequest *)req;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    auth_role *role = auth_role_find(r->role);
    if (!role) return auth_fail(out, ETCD_ERR_ROLE_NOT_FOUND);
    size_t kept = 0;
    for (size_t i = 0; i < role->n_perms; i++) {
        auth_perm *p = &role->perms[i];
        if (bytes_cmp(p->key, p->key_len, r->key.data, r->key.len) == 0 &&
            bytes_cmp(p->range_end, p->end_len, r->range_end.data, r->range_end.len) == 0) {
            free(p->key);
            free(p->range_end);
        } else {
            role->perms[kept++] = *p;
        }
    }
    if (kept == role->n_perms) return auth_fail(out, ETCD_ERR_PERMISSION_NOT_GRANTED);
    role->n_perms = kept;
    log_msg(LOG_INFO, "revoked a permission of role %s", r->role);
    auth_changed(out, &etcdserverpb__auth_role_revoke_permission_response__descriptor);
}
