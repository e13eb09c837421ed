/* svc_cluster.c: etcd's Cluster service for a server that is its own one-member cluster. MemberList
 * describes this member; Add/Update are refused with FAILED_PRECONDITION (cetcd cannot grow), while
 * Remove/Promote get the errors etcd itself gives for a lone member or an unknown ID. */
#include "svc_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_gate.h"
#include "config.h"
#include "errors.h"
#include "header.h"
#include "rpc.pb-c.h"

#define DEFAULT_PEER_URLS "http://localhost:2380"
#define MAX_URLS 16
#define NOT_SUPPORTED "cetcd: single-member server: membership changes are not supported"

/* A comma list split into at most MAX_URLS strings (in buf). */
typedef struct url_list {
    char buf[2048];
    char *v[MAX_URLS];
    size_t n;
} url_list;

static void split_urls(url_list *l, const char *list) {
    snprintf(l->buf, sizeof l->buf, "%s", list ? list : "");
    l->n = 0;
    for (char *save = NULL, *p = strtok_r(l->buf, ",", &save); p && l->n < MAX_URLS;
         p = strtok_r(NULL, ",", &save))
        l->v[l->n++] = p;
}

static const char *peer_urls(void) {
    const char *p = g_config.initial_advertise_peer_urls;
    return p && *p ? p : DEFAULT_PEER_URLS;
}

static void fail_etcd(const reply_sink *out, etcd_err e) {
    out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
}

/* etcd's cluster header: no revision. */
static void cluster_header(Etcdserverpb__ResponseHeader *h) {
    response_header_fill(h, 0);
}

/* ---------- MemberList ---------- */

void cluster_member_list_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)req, (void)len;
    url_list peers, clients;
    split_urls(&peers, peer_urls());
    split_urls(&clients, g_config.advertise_client_urls);
    Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT, *members[1] = {&m};
    m.id = g_config.member_id;
    m.name = (char *)(g_config.name ? g_config.name : "");
    m.peerurls = peers.v;
    m.n_peerurls = peers.n;
    m.clienturls = clients.v;
    m.n_clienturls = clients.n;
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__MemberListResponse resp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    cluster_header(&hdr);
    resp.header = &hdr;
    resp.members = members;
    resp.n_members = 1;
    out->reply(out->ctx, &resp.base);
}

void cluster_member_list(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__member_list_request__descriptor, cluster_member_list_exec);
}

/* ---------- changes ---------- */

/* etcd's types.NewURLs: scheme http(s) or unix(s), host:port, no path. */
static bool url_valid(const char *u) {
    const char *rest = strncmp(u, "http://", 7) == 0 ? u + 7 : strncmp(u, "https://", 8) == 0 ? u + 8 : NULL;
    if (!rest || !*rest || strchr(rest, '/')) return false;
    const char *colon = strrchr(rest, ':');
    return colon && colon > rest && colon[1] != '\0' && strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

static bool is_our_peer_url(const char *u) {
    url_list ours;
    split_urls(&ours, peer_urls());
    for (size_t i = 0; i < ours.n; i++)
        if (strcmp(ours.v[i], u) == 0) return true;
    return false;
}

/* etcd's checkMembershipOperationPermission: membership changes are admin-only with auth on. */
static bool admin(const reply_sink *out) {
    etcd_err e = auth_check_admin(rpc_current_caller());
    if (e != AUTH_OK) fail_etcd(out, e);
    return e == AUTH_OK;
}

void cluster_member_add_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__MemberAddRequest *r = (const Etcdserverpb__MemberAddRequest *)req;
    if (r->n_peerurls == 0) return fail_etcd(out, ETCD_ERR_MEMBER_BAD_URLS);
    for (size_t i = 0; i < r->n_peerurls; i++)
        if (!url_valid(r->peerurls[i])) return fail_etcd(out, ETCD_ERR_MEMBER_BAD_URLS);
    if (!admin(out)) return;
    for (size_t i = 0; i < r->n_peerurls; i++)
        if (is_our_peer_url(r->peerurls[i])) return fail_etcd(out, ETCD_ERR_PEER_URL_EXIST);
    out->fail(out->ctx, GRPC_FAILED_PRECONDITION, NOT_SUPPORTED);
}

/* etcd refuses to remove the last voting member ("not enough started members"). */
void cluster_member_remove_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__MemberRemoveRequest *r = (const Etcdserverpb__MemberRemoveRequest *)req;
    if (!admin(out)) return;
    fail_etcd(out,
              r->id == g_config.member_id ? ETCD_ERR_MEMBER_NOT_ENOUGH_STARTED : ETCD_ERR_MEMBER_NOT_FOUND);
}

/* Updating to the peer URLs we already have is a no-op success; anything else cannot be done. */
void cluster_member_update_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__MemberUpdateRequest *r = (const Etcdserverpb__MemberUpdateRequest *)req;
    if (!admin(out)) return;
    if (r->id != g_config.member_id) return fail_etcd(out, ETCD_ERR_MEMBER_NOT_FOUND);
    url_list ours;
    split_urls(&ours, peer_urls());
    bool same = r->n_peerurls == ours.n;
    for (size_t i = 0; same && i < r->n_peerurls; i++)
        same = is_our_peer_url(r->peerurls[i]);
    if (!same) return out->fail(out->ctx, GRPC_FAILED_PRECONDITION, NOT_SUPPORTED);
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__MemberUpdateResponse resp = ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
    cluster_header(&hdr);
    resp.header = &hdr;
    out->reply(out->ctx, &resp.base); /* etcd also lists the members; clients ignore it */
}

void cluster_member_promote_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__MemberPromoteRequest *r = (const Etcdserverpb__MemberPromoteRequest *)req;
    if (!admin(out)) return;
    fail_etcd(out, r->id == g_config.member_id ? ETCD_ERR_MEMBER_NOT_LEARNER : ETCD_ERR_MEMBER_NOT_FOUND);
}

void cluster_member_add(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__member_add_request__descriptor, cluster_member_add_exec);
}

void cluster_member_remove(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__member_remove_request__descriptor,
                   cluster_member_remove_exec);
}

void cluster_member_update(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__member_update_request__descriptor,
                   cluster_member_update_exec);
}

void cluster_member_promote(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__member_promote_request__descriptor,
                   cluster_member_promote_exec);
}
