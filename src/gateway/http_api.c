/* http_api.c: what etcd serves over HTTP/1.1 on its client and metrics ports: /health, /livez,
 * /readyz, /version, /metrics, and the gRPC-gateway JSON API (KV, Maintenance, Cluster), which decodes
 * JSON into the protobuf request and runs the same service function as gRPC. */
#include "http_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarms.h"
#include "config.h"
#include "gw_stream.h"
#include "json.h"
#include "metrics.h"
#include "pbjson.h"
#include "rpc.pb-c.h"
#include "svc_auth.h"
#include "svc_cluster.h"
#include "svc_election.h"
#include "svc_kv.h"
#include "svc_lease.h"
#include "svc_lock.h"
#include "svc_maint.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define APP_JSON "application/json"
#define PROM_TEXT "text/plain; version=0.0.4; charset=utf-8"

static void set_body(http_api_resp *resp, int status, const char *ctype, const char *text) {
    resp->status = status;
    resp->content_type = ctype;
    sbuf_append(&resp->body, text, strlen(text));
}

/* Go's http.Error: the text plus a newline, as plain text. */
static void http_error(http_api_resp *resp, int status, const char *text) {
    set_body(resp, status, TEXT_PLAIN, text);
    sbuf_append(&resp->body, "\n", 1);
}

static bool only_get(const http_api_req *req, http_api_resp *resp) {
    if (strcmp(req->method, "GET") == 0) return true;
    resp->allow = "GET";
    http_error(resp, 405, "Method Not Allowed");
    return false;
}

/* ---------- query strings ---------- */

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* URL-decodes s[0..n) into out (cap bytes, NUL-terminated). */
static void url_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])), i += 2;
        else
            out[o++] = s[i];
    }
    out[o] = '\0';
}

/* Whether the query has name=value (value NULL: name present with any value). */
static bool query_has(const char *query, const char *name, const char *value) {
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char k[128], v[256];
        url_decode(p, eq ? (size_t)(eq - p) : len, k, sizeof k);
        url_decode(eq ? eq + 1 : p + len, eq ? len - (size_t)(eq + 1 - p) : 0, v, sizeof v);
        if (strcmp(k, name) == 0 && (!value || strcmp(v, value) == 0)) return true;
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* ---------- /health ---------- */

/* etcd 3.5: active alarms (unless excluded) make it unhealthy; the leader and a read always succeed
 * here (one member, always leader), whether serializable=true or not. */
static void serve_health(const http_api_req *req, http_api_resp *resp) {
    if (!only_get(req, resp)) return;
    const char *reason = "";
    if (alarm_is_active(ETCDSERVERPB__ALARM_TYPE__NOSPACE) && !query_has(req->query, "exclude", "NOSPACE"))
        reason = "ALARM NOSPACE";
    else if (alarm_is_active(ETCDSERVERPB__ALARM_TYPE__CORRUPT) &&
             !query_has(req->query, "exclude", "CORRUPT"))
        reason = "ALARM CORRUPT";
    bool ok = !*reason;
    char body[128];
    snprintf(body, sizeof body, "{\"health\":\"%s\",\"reason\":\"%s\"}", ok ? "true" : "false", reason);
    metrics_health(ok);
    if (ok)
        set_body(resp, 200, TEXT_PLAIN, body);
    else
        http_error(resp, 503, body);
}

/* ---------- /livez, /readyz ---------- */

typedef struct health_check {
    const char *name;
    const char *(*run)(void); /* NULL when fine, else why it failed */
} health_check;

static const char *check_read(void) {
    return NULL; /* reads are served from memory by the one member */
}

static const char *check_corruption(void) {
    return alarm_is_active(ETCDSERVERPB__ALARM_TYPE__CORRUPT) ? "alarm activated: CORRUPT" : NULL;
}

/* Sorted by name; etcd runs them in Go map order, which is random. */
static const health_check livez_checks[] = {{"serializable_read", check_read}, {NULL, NULL}};
static const health_check readyz_checks[] = {{"data_corruption", check_corruption},
                                             {"linearizable_read", check_read},
                                             {"serializable_read", check_read},
                                             {NULL, NULL}};

/* Runs checks (only `only` if given, else all not excluded); fills *report. True if all passed. */
static bool run_checks(const health_check *checks, const char *only, const char *query, sbuf *report) {
    bool ok = true;
    for (const health_check *c = checks; c->name; c++) {
        if (only ? strcmp(only, c->name) != 0 : query_has(query, "exclude", c->name)) continue;
        const char *why = c->run();
        char line[200];
        if (why)
            snprintf(line, sizeof line, "[-]%s failed: %s\n", c->name, why);
        else
            snprintf(line, sizeof line, "[+]%s ok\n", c->name);
        sbuf_append(report, line, strlen(line));
        ok = ok && !why;
    }
    return ok;
}

static bool has_check(const health_check *checks, const char *name) {
    for (const health_check *c = checks; c->name; c++)
        if (strcmp(c->name, name) == 0) return true;
    return false;
}

/* path is "/livez", "/readyz" or one of their "/<root>/<check>" sub-paths. */
static bool serve_probe(const http_api_req *req, http_api_resp *resp, const char *root,
                        const health_check *checks) {
    size_t rlen = strlen(root);
    if (strncmp(req->path, root, rlen) != 0) return false;
    const char *only = NULL;
    if (req->path[rlen] == '/' && has_check(checks, req->path + rlen + 1))
        only = req->path + rlen + 1;
    else if (req->path[rlen] != '\0')
        return false;
    if (!only_get(req, resp)) return true;
    sbuf report = {0};
    bool ok = run_checks(checks, only, req->query, &report);
    resp->status = ok ? 200 : 503;
    resp->content_type = TEXT_PLAIN;
    if (!ok || query_has(req->query, "verbose", NULL))
        sbuf_append(&resp->body, sbuf_head(&report), sbuf_size(&report));
    sbuf_append(&resp->body, ok ? "ok\n" : "\n", ok ? 3 : 1);
    sbuf_free(&report);
    return true;
}

/* ---------- /version, /metrics ---------- */

static void serve_version(const http_api_req *req, http_api_resp *resp) {
    if (!only_get(req, resp)) return;
    set_body(resp, 200, APP_JSON,
             "{\"etcdserver\":\"" CETCD_VERSION "\",\"etcdcluster\":\"" CETCD_CLUSTER_VERSION "\"}");
}

static void serve_metrics(const http_api_req *req, http_api_resp *resp) {
    (void)req;
    resp->status = 200;
    resp->content_type = PROM_TEXT;
    metrics_render(&resp->body);
}

/* ---------- the JSON gateway ---------- */

typedef struct gw_route {
    const char *path;
    const ProtobufCMessageDescriptor *request;
    unary_exec exec;
} gw_route;

static const gw_route gw_routes[] = {
    {"/v3/kv/range", &etcdserverpb__range_request__descriptor, kv_range_exec},
    {"/v3/kv/put", &etcdserverpb__put_request__descriptor, kv_put_exec},
    {"/v3/kv/deleterange", &etcdserverpb__delete_range_request__descriptor, kv_delete_range_exec},
    {"/v3/kv/txn", &etcdserverpb__txn_request__descriptor, kv_txn_exec},
    {"/v3/kv/compaction", &etcdserverpb__compaction_request__descriptor, kv_compact_exec},
    {"/v3/lease/grant", &etcdserverpb__lease_grant_request__descriptor, lease_grant_exec},
    {"/v3/lease/revoke", &etcdserverpb__lease_revoke_request__descriptor, lease_revoke_exec},
    {"/v3/kv/lease/revoke", &etcdserverpb__lease_revoke_request__descriptor, lease_revoke_exec},
    {"/v3/lease/timetolive", &etcdserverpb__lease_time_to_live_request__descriptor, lease_time_to_live_exec},
    {"/v3/kv/lease/timetolive", &etcdserverpb__lease_time_to_live_request__descriptor,
     lease_time_to_live_exec},
    {"/v3/lease/leases", &etcdserverpb__lease_leases_request__descriptor, lease_leases_exec},
    {"/v3/kv/lease/leases", &etcdserverpb__lease_leases_request__descriptor, lease_leases_exec},
    {"/v3/maintenance/status", &etcdserverpb__status_request__descriptor, maint_status_exec},
    {"/v3/maintenance/alarm", &etcdserverpb__alarm_request__descriptor, maint_alarm_exec},
    {"/v3/maintenance/transfer-leadership", &etcdserverpb__move_leader_request__descriptor,
     maint_move_leader_exec},
    {"/v3/maintenance/downgrade", &etcdserverpb__downgrade_request__descriptor, maint_downgrade_exec},
    {"/v3/auth/enable", &etcdserverpb__auth_enable_request__descriptor, auth_enable_exec},
    {"/v3/auth/disable", &etcdserverpb__auth_disable_request__descriptor, auth_disable_exec},
    {"/v3/auth/status", &etcdserverpb__auth_status_request__descriptor, auth_status_exec},
    {"/v3/auth/user/get", &etcdserverpb__auth_user_get_request__descriptor, auth_user_get_exec},
    {"/v3/auth/user/list", &etcdserverpb__auth_user_list_request__descriptor, auth_user_list_exec},
    {"/v3/auth/user/delete", &etcdserverpb__auth_user_delete_request__descriptor, auth_user_delete_exec},
    {"/v3/auth/user/grant", &etcdserverpb__auth_user_grant_role_request__descriptor,
     auth_user_grant_role_exec},
    {"/v3/auth/user/revoke", &etcdserverpb__auth_user_revoke_role_request__descriptor,
     auth_user_revoke_role_exec},
    {"/v3/auth/role/add", &etcdserverpb__auth_role_add_request__descriptor, auth_role_add_exec},
    {"/v3/auth/role/get", &etcdserverpb__auth_role_get_request__descriptor, auth_role_get_exec},
    {"/v3/auth/role/list", &etcdserverpb__auth_role_list_request__descriptor, auth_role_list_exec},
    {"/v3/auth/role/delete", &etcdserverpb__auth_role_delete_request__descriptor, auth_role_delete_exec},
    {"/v3/auth/role/grant", &etcdserverpb__auth_role_grant_permission_request__descriptor,
     auth_role_grant_permission_exec},
    {"/v3/auth/role/revoke", &etcdserverpb__auth_role_revoke_permission_request__descriptor,
     auth_role_revoke_permission_exec},
    {"/v3/cluster/member/list", &etcdserverpb__member_list_request__descriptor, cluster_member_list_exec},
    {"/v3/cluster/member/add", &etcdserverpb__member_add_request__descriptor, cluster_member_add_exec},
    {"/v3/cluster/member/remove", &etcdserverpb__member_remove_request__descriptor,
     cluster_member_remove_exec},
    {"/v3/cluster/member/update", &etcdserverpb__member_update_request__descriptor,
     cluster_member_update_exec},
    {"/v3/cluster/member/promote", &etcdserverpb__member_promote_request__descriptor,
     cluster_member_promote_exec},
    {"/v3/lock/unlock", &v3lockpb__unlock_request__descriptor, lock_unlock_exec},
    {"/v3/election/proclaim", &v3electionpb__proclaim_request__descriptor, election_proclaim_exec},
    {"/v3/election/leader", &v3electionpb__leader_request__descriptor, election_leader_exec},
    {"/v3/election/resign", &v3electionpb__resign_request__descriptor, election_resign_exec},
};

/* grpc-gateway v1's HTTPStatusFromCode. */
static int http_status_for(int code) {
    static const int map[] = {200, 408, 500, 400, 504, 404, 409, 403, 429,
                              400, 409, 400, 501, 500, 503, 500, 401};
    return code >= 0 && code < (int)(sizeof map / sizeof map[0]) ? map[code] : 500;
}

/* grpc-gateway's error body: {"error":msg,"code":N,"message":msg}. */
static void gw_fail(void *ctx, int code, const char *message) {
    http_api_resp *resp = ctx;
    resp->status = http_status_for(code);
    resp->content_type = APP_JSON;
    sbuf_append(&resp->body, "{\"error\":", 9);
    json_write_string(&resp->body, message, strlen(message));
    char mid[32];
    snprintf(mid, sizeof mid, ",\"code\":%d,\"message\":", code);
    json_write_raw(&resp->body, mid);
    json_write_string(&resp->body, message, strlen(message));
    sbuf_append(&resp->body, "}", 1);
}

static void gw_reply(void *ctx, const ProtobufCMessage *msg) {
    http_api_resp *resp = ctx;
    resp->status = 200;
    resp->content_type = APP_JSON;
    pbjson_encode(&resp->body, msg);
}

static void serve_gateway(const gw_route *r, const http_api_req *req, http_api_resp *resp) {
    if (strcmp(req->method, "POST") != 0) return http_error(resp, 405, "Method Not Allowed");
    char err[256];
    ProtobufCMessage *msg = pbjson_decode_body(r->request, req->body, req->body_len, err, sizeof err);
    if (!msg) return gw_fail(resp, GRPC_INVALID_ARGUMENT, err);
    reply_sink out = {gw_reply, gw_fail, resp};
    r->exec(msg, protobuf_c_message_get_packed_size(msg), &out);
    if (!resp->status) gw_fail(resp, GRPC_INTERNAL, "cetcd: no reply"); /* every exec answers at once */
    protobuf_c_message_free_unpacked(msg, NULL);
}

static bool serve_v3(const http_api_req *req, http_api_resp *resp) {
    if (strncmp(req->path, "/v3/", 4) != 0) return false;
    if (gw_stream_path(req->path)) { /* streams and replies sent later: gw_stream.c */
        if (strcmp(req->method, "POST") != 0) return http_error(resp, 405, "Method Not Allowed"), true;
        return gw_stream_serve(req, resp, gw_fail), true;
    }
    for (size_t i = 0; i < sizeof gw_routes / sizeof gw_routes[0]; i++) {
        if (strcmp(gw_routes[i].path, req->path) == 0) {
            serve_gateway(&gw_routes[i], req, resp);
            return true;
        }
    }
    http_error(resp, 404, "Not Found");
    return true;
}

/* ---------- routing ---------- */

bool http_api_serve(const http_api_req *req, http_api_resp *resp) {
    if (strcmp(req->path, "/health") == 0) return serve_health(req, resp), true;
    if (strcmp(req->path, "/version") == 0) return serve_version(req, resp), true;
    if (strcmp(req->path, "/metrics") == 0) return serve_metrics(req, resp), true;
    if (serve_probe(req, resp, "/livez", livez_checks)) return true;
    if (serve_probe(req, resp, "/readyz", readyz_checks)) return true;
    rpc_caller caller = {req->authorization, NULL}; /* grpc-gateway passes Authorization on as the token */
    const rpc_caller *was = rpc_set_current_caller(&caller);
    bool served = serve_v3(req, resp);
    rpc_set_current_caller(was);
    return served;
}
