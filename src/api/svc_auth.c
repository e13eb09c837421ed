/* svc_auth.c: etcd's Auth service: AuthEnable, AuthDisable, AuthStatus and Authenticate here, users in
 * auth_users.c and roles in auth_roles.c; the gRPC handlers of all of them, with the bcrypt work of
 * Authenticate, UserAdd and UserChangePassword done on helper threads (auth_hash.c) while the loop
 * serves on, for gRPC and the JSON gateway alike (later_call.h). Rules, order of checks and errors follow
 * etcd 3.5's auth/store.go, apply_auth.go and v3_server.go. */
#include "svc_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_codec.h"
#include "auth_hash.h"
#include "auth_internal.h"
#include "config.h"
#include "header.h"
#include "log_msg.h"
#include "store.h"

/* Not in etcd's error table: gRPC answers it as Unknown with the auth package's own words. */
static const char NO_PASSWORD_USER[] = "auth: authentication failed, password was given for no password user";

/* ---------- shared by the service's files ---------- */

void auth_fail(const reply_sink *out, etcd_err e) {
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

bool auth_admitted(const reply_sink *out, auth_who *who, bool admin) {
    etcd_err e = auth_resolve(rpc_current_caller(), who);
    if (e == AUTH_OK && admin) e = auth_may_admin(who);
    if (e == AUTH_OK) return true;
    auth_fail(out, e);
    return false;
}

void auth_reply_empty(const reply_sink *out, const ProtobufCMessageDescriptor *d) {
    ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
    d->message_init(m);
    Etcdserverpb__ResponseHeader h;
    response_header_fill(&h, mvcc_revision(g_store));
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, "header");
    *(Etcdserverpb__ResponseHeader **)((char *)m + f->offset) = &h;
    out->reply(out->ctx, m);
    free(m);
}

void auth_changed(const reply_sink *out, const ProtobufCMessageDescriptor *d) {
    g_auth.revision++;
    auth_refresh();
    mv_err err = auth_save();
    if (err != MV_OK) return auth_fail(out, etcd_err_from_mv(err));
    auth_reply_empty(out, d);
}

bool auth_password_fits(const char *password, const reply_sink *out) {
    if (strlen(password) <= 72) return true;
    out->fail(out->ctx, GRPC_UNKNOWN, "bcrypt: password length exceeds 72 bytes");
    return false;
}

/* ---------- start-up ---------- */

void auth_service_start(struct ev_loop *loop) {
    const char *kind = g_config.auth_token;
    if (kind && *kind && strcmp(kind, "simple") != 0) {
        fprintf(stderr, "cetcd: --auth-token %s is not supported: only simple tokens are\n", kind);
        exit(2);
    }
    char why[200];
    if (!auth_load(why, sizeof why)) {
        fprintf(stderr, "cetcd: %s\n", why);
        exit(2);
    }
    auth_hash_start(loop);
    if (g_auth.enabled)
        log_msg(LOG_INFO, "authentication is enabled (auth revision %llu, %zu users, %zu roles)",
                (unsigned long long)g_auth.revision, g_auth.n_users, g_auth.n_roles);
}

/* ---------- AuthEnable, AuthDisable, AuthStatus ---------- */

void auth_enable_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    const ProtobufCMessageDescriptor *d = &etcdserverpb__auth_enable_response__descriptor;
    if (g_auth.enabled) return auth_reply_empty(out, d); /* already on: ignored */
    const auth_user *root = auth_user_find(AUTH_ROOT);
    if (!root) return auth_fail(out, ETCD_ERR_ROOT_USER_NOT_EXIST);
    if (!auth_user_has_role(root, AUTH_ROOT)) return auth_fail(out, ETCD_ERR_ROOT_ROLE_NOT_EXIST);
    g_auth.enabled = true; /* the auth revision stays, as in etcd */
    auth_refresh();
    mv_err err = auth_save();
    if (err != MV_OK) return auth_fail(out, etcd_err_from_mv(err));
    log_msg(LOG_INFO, "enabled authentication");
    auth_reply_empty(out, d);
}

void auth_disable_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    const ProtobufCMessageDescriptor *d = &etcdserverpb__auth_disable_response__descriptor;
    if (!g_auth.enabled) return auth_reply_empty(out, d);
    g_auth.enabled = false;
    g_auth.revision++;
    mv_err err = auth_save();
    if (err != MV_OK) return auth_fail(out, etcd_err_from_mv(err));
    auth_tokens_clear(); /* every token goes */
    log_msg(LOG_INFO, "disabled authentication");
    auth_reply_empty(out, d);
}

/* etcd 3.5: admin-only (needAdminPermission lists AuthStatus). */
void auth_status_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    auth_who who;
    if (!auth_admitted(out, &who, true)) return;
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthStatusResponse resp = ETCDSERVERPB__AUTH_STATUS_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    resp.enabled = g_auth.enabled;
    resp.authrevision = g_auth.revision;
    out->reply(out->ctx, &resp.base);
}

/* ---------- Authenticate ---------- */

/* etcd's CheckPassword before the hash: the user whose hash to check, or false once answered. */
static bool authenticate_check(const Etcdserverpb__AuthenticateRequest *r, const reply_sink *out,
                               const auth_user **user) {
    if (!g_auth.enabled) return auth_fail(out, ETCD_ERR_AUTH_NOT_ENABLED), false;
    const auth_user *u = auth_user_find(r->name);
    if (!u) return auth_fail(out, ETCD_ERR_AUTH_FAILED), false;
    if (u->no_password) return out->fail(out->ctx, GRPC_UNKNOWN, NO_PASSWORD_USER), false;
    *user = u;
    return true;
}

/* After the hash: etcd's Authenticate request through raft (the caller's own token is resolved, the
 * user checked again) and a new simple token. */
static void authenticate_finish(const Etcdserverpb__AuthenticateRequest *r, bool matched,
                                const reply_sink *out) {
    if (!matched) return auth_fail(out, ETCD_ERR_AUTH_FAILED);
    auth_who who;
    if (!auth_admitted(out, &who, false)) return;
    if (!g_auth.enabled) return auth_fail(out, ETCD_ERR_AUTH_NOT_ENABLED);
    const auth_user *u = auth_user_find(r->name);
    if (!u || u->no_password) return auth_fail(out, ETCD_ERR_AUTH_FAILED);
    Etcdserverpb__ResponseHeader h;
    Etcdserverpb__AuthenticateResponse resp = ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
    response_header_fill(&h, mvcc_revision(g_store));
    resp.header = &h;
    resp.token = (char *)auth_token_assign(r->name);
    out->reply(out->ctx, &resp.base);
}

/* ---------- hashing in the background ---------- */

typedef enum hash_kind { HASH_AUTHENTICATE, HASH_USER_ADD, HASH_CHANGE_PASSWORD } hash_kind;

/* A call waiting for its hash. */
typedef struct hash_wait {
    later_call *lc;        /* NULL once the call is gone */
    ProtobufCMessage *req; /* a copy */
    hash_kind kind;
    uint64_t checked_revision; /* Authenticate: the auth revision the password was checked against */
} hash_wait;

static void hash_done(void *ctx, const char *hash, bool matched);

/* Queues w's hash; false once answered (w is then the caller's to free). */
static bool queue_hash(hash_wait *w, const reply_sink *out) {
    bool queued;
    if (w->kind == HASH_AUTHENTICATE) {
        const Etcdserverpb__AuthenticateRequest *r = (const Etcdserverpb__AuthenticateRequest *)w->req;
        const auth_user *u;
        if (!authenticate_check(r, out, &u)) return false;
        w->checked_revision = g_auth.revision;
        queued = auth_hash_verify(r->password, u->password, u->password_len, hash_done, w);
    } else if (w->kind == HASH_USER_ADD) {
        queued = auth_hash_make(((const Etcdserverpb__AuthUserAddRequest *)w->req)->password, hash_done, w);
    } else {
        queued = auth_hash_make(((const Etcdserverpb__AuthUserChangePasswordRequest *)w->req)->password,
                                hash_done, w);
    }
    if (!queued) auth_fail(out, ETCD_ERR_TOO_MANY_REQUESTS);
    return queued;
}

static void wait_free(hash_wait *w) {
    protobuf_c_message_free_unpacked(w->req, NULL);
    free(w);
}

/* The second half of the request, with the hash, as its caller. */
static void hash_finish(hash_wait *w, const char *hash, bool matched, const reply_sink *out) {
    switch (w->kind) {
    case HASH_AUTHENTICATE:
        authenticate_finish((const Etcdserverpb__AuthenticateRequest *)w->req, matched, out);
        break;
    case HASH_USER_ADD:
        auth_user_add_apply((const Etcdserverpb__AuthUserAddRequest *)w->req, hash, out);
        break;
    case HASH_CHANGE_PASSWORD:
        auth_user_change_password_apply((const Etcdserverpb__AuthUserChangePasswordRequest *)w->req, hash,
                                        out);
        break;
    }
}

static void hash_cancel(later_call *lc) {
    hash_wait *w = lc->wait;
    w->lc = NULL; /* hash_done frees it */
}

/* Back on the loop with the hash: the rest of the request, if its call is still there. */
static void hash_done(void *ctx, const char *hash, bool matched) {
    hash_wait *w = ctx;
    if (!w->lc) return wait_free(w);
    later_call *lc = w->lc;
    reply_sink out = lc->out;
    const rpc_caller *was = later_call_as(lc);
    later_call_done(lc);
    /* etcd checks again when the auth store changed while it hashed */
    bool again = w->kind == HASH_AUTHENTICATE && w->checked_revision != g_auth.revision;
    if (again && queue_hash(w, &out)) {
        later_call_wait(lc, w, hash_cancel);
    } else {
        if (!again) hash_finish(w, hash, matched, &out);
        wait_free(w);
    }
    rpc_set_current_caller(was);
}

/* A copy of a request, kept while it hashes; NULL if its encoding does not decode again: protobuf-c
 * takes an unknown field numbered 0 in, and writes it out as a tag it then refuses (fuzz_rpc found it;
 * tests/fuzz/crashes/rpc-authenticate-field-zero). Go's decoder refuses such a request outright. */
static ProtobufCMessage *message_copy(const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    return copy;
}

/* A request that may need a hash: answered at once when it needs none, else after the hash. */
static void hashing_exec(later_call *lc, const ProtobufCMessage *req, hash_kind kind) {
    const reply_sink *out = &lc->out;
    bool answered = false, hash = true;
    if (kind == HASH_USER_ADD) {
        const Etcdserverpb__AuthUserAddRequest *r = (const Etcdserverpb__AuthUserAddRequest *)req;
        answered =
            !auth_user_add_check(r, out, &hash) || (!hash && (auth_user_add_apply(r, NULL, out), true));
    } else if (kind == HASH_CHANGE_PASSWORD) {
        const Etcdserverpb__AuthUserChangePasswordRequest *r =
            (const Etcdserverpb__AuthUserChangePasswordRequest *)req;
        answered = !auth_user_change_password_check(r, out, &hash) ||
                   (!hash && (auth_user_change_password_apply(r, NULL, out), true));
    }
    if (answered) return;
    ProtobufCMessage *copy = message_copy(req);
    if (!copy) return out->fail(out->ctx, GRPC_INTERNAL, rpc_unmarshal_error(req->descriptor));
    hash_wait *w = xcalloc(1, sizeof *w);
    *w = (hash_wait){.lc = lc, .req = copy, .kind = kind};
    if (queue_hash(w, out))
        later_call_wait(lc, w, hash_cancel);
    else
        wait_free(w);
}

void auth_authenticate_exec(later_call *lc, const ProtobufCMessage *req) {
    hashing_exec(lc, req, HASH_AUTHENTICATE);
}

void auth_user_add_exec(later_call *lc, const ProtobufCMessage *req) {
    hashing_exec(lc, req, HASH_USER_ADD);
}

void auth_user_change_password_exec(later_call *lc, const ProtobufCMessage *req) {
    hashing_exec(lc, req, HASH_CHANGE_PASSWORD);
}

void auth_authenticate(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &etcdserverpb__authenticate_request__descriptor, auth_authenticate_exec,
                    false);
}

void auth_user_add(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &etcdserverpb__auth_user_add_request__descriptor, auth_user_add_exec,
                    false);
}

void auth_user_change_password(rpc_call *call, const uint8_t *msg, size_t len) {
    later_call_grpc(call, msg, len, &etcdserverpb__auth_user_change_password_request__descriptor,
                    auth_user_change_password_exec, false);
}

void auth_hashing_call_closed(rpc_call *call) {
    later_call_grpc_closed(call);
}

/* ---------- the other handlers ---------- */

#define UNARY(fn, type)                                                                                      \
    void fn(rpc_call *call, const uint8_t *msg, size_t len) {                                                \
        rpc_unary_exec(call, msg, len, &etcdserverpb__##type##__descriptor, fn##_exec);                      \
    }

UNARY(auth_enable, auth_enable_request)
UNARY(auth_disable, auth_disable_request)
UNARY(auth_status, auth_status_request)
UNARY(auth_user_get, auth_user_get_request)
UNARY(auth_user_list, auth_user_list_request)
UNARY(auth_user_delete, auth_user_delete_request)
UNARY(auth_user_grant_role, auth_user_grant_role_request)
UNARY(auth_user_revoke_role, auth_user_revoke_role_request)
UNARY(auth_role_add, auth_role_add_request)
UNARY(auth_role_get, auth_role_get_request)
UNARY(auth_role_list, auth_role_list_request)
UNARY(auth_role_delete, auth_role_delete_request)
UNARY(auth_role_grant_permission, auth_role_grant_permission_request)
UNARY(auth_role_revoke_permission, auth_role_revoke_permission_request)
