/* maint_downgrade.c: Maintenance/Downgrade as a one-member etcd 3.5 answers it: VALIDATE, ENABLE and
 * CANCEL with etcd's checks and errors, over a downgrade job kept in the store (as etcd keeps it in its
 * cluster bucket), which Status reports. cetcd itself keeps running after ENABLE; see README.md. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_gate.h"
#include "config.h"
#include "errors.h"
#include "header.h"
#include "log_msg.h"
#include "rpc.pb-c.h"
#include "store.h"
#include "svc_maint.h"

/* The job: etcd's DowngradeInfo (enabled, and the target as "major.minor.0"). */
static struct {
    bool enabled;
    char target[48];
} job;

/* The saved form: a format byte, the enabled byte, then the target's text (so never empty). */
#define DOWNGRADE_FORMAT 1

typedef struct semver_mm {
    long long major, minor;
} semver_mm;

/* ---------- go-semver's NewVersion, as far as etcd uses it ---------- */

/* "^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$", go-semver's identifier, or empty. */
static bool identifier_ok(const char *s, size_t n) {
    if (n == 0) return true;
    bool part_empty = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (part_empty) return false;
            part_empty = true;
        } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-') {
            part_empty = false;
        } else {
            return false;
        }
    }
    return !part_empty;
}

/* strconv.ParseInt(s, 10, 64) on text that holds no '+' or '-' (split off before). */
static bool parse_int64(const char *s, size_t n, long long *out) {
    if (n == 0) return false;
    while (n > 1 && s[0] == '0') /* leading zeros are allowed, and say nothing */
        s++, n--;
    if (n > 30) return false;
    char buf[32];
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    *out = strtoll(buf, NULL, 10);
    return errno == 0;
}

/* semver.NewVersion(v): metadata after the first '+', then pre-release after the first '-', then
 * exactly three dot-separated integers (the third may not hold a dot). */
static bool semver_parse(const char *v, size_t n, semver_mm *out) {
    const char *plus = memchr(v, '+', n);
    size_t core = plus ? (size_t)(plus - v) : n;
    if (plus && !identifier_ok(plus + 1, n - core - 1)) return false;
    const char *dash = memchr(v, '-', core);
    size_t nums = dash ? (size_t)(dash - v) : core;
    if (dash && !identifier_ok(dash + 1, core - nums - 1)) return false;
    const char *d1 = memchr(v, '.', nums);
    if (!d1) return false;
    const char *d2 = memchr(d1 + 1, '.', nums - (size_t)(d1 + 1 - v));
    if (!d2) return false;
    long long patch;
    return parse_int64(v, (size_t)(d1 - v), &out->major) &&
           parse_int64(d1 + 1, (size_t)(d2 - d1 - 1), &out->minor) &&
           parse_int64(d2 + 1, nums - (size_t)(d2 + 1 - v), &patch);
}

/* etcd's convertToClusterVersion: "M.m.p" or "M.m" (retried with ".0"), patch dropped. */
static bool target_version(const char *v, semver_mm *out) {
    if (semver_parse(v, strlen(v), out)) return true;
    char with_patch[512];
    int n = snprintf(with_patch, sizeof with_patch, "%s.0", v);
    if (n < 0 || (size_t)n >= sizeof with_patch) return false; /* too long to be a version anyway */
    return semver_parse(with_patch, (size_t)n, out);
}

/* The cluster version of a one-member cluster: this member's major.minor. */
static semver_mm cluster_version(void) {
    semver_mm cv;
    bool ok = semver_parse(CETCD_VERSION, strlen(CETCD_VERSION), &cv);
    assert(ok);
    (void)ok;
    return cv;
}

static void cluster_version_text(char *buf, size_t len) {
    semver_mm cv = cluster_version();
    snprintf(buf, len, "%lld.%lld.0", cv.major, cv.minor);
}

/* ---------- the saved job ---------- */

static void save(void) {
    uint8_t blob[2 + sizeof job.target];
    size_t tlen = strlen(job.target);
    blob[0] = DOWNGRADE_FORMAT;
    blob[1] = job.enabled;
    memcpy(blob + 2, job.target, tlen);
    /* never refused by the quota; the reply that changed the job waits for the commit */
    mv_err err = mvcc_state_save(g_store, MV_STATE_DOWNGRADE, blob, 2 + tlen);
    assert(err == MV_OK);
    (void)err;
}

bool downgrade_load(char *why, size_t whylen) {
    memset(&job, 0, sizeof job);
    mv_bytes saved = mvcc_state(g_store, MV_STATE_DOWNGRADE);
    if (saved.len == 0) return true;
    if (saved.data[0] != DOWNGRADE_FORMAT || saved.len < 2 || saved.data[1] > 1 ||
        saved.len - 2 >= sizeof job.target) {
        snprintf(why, whylen, "the saved downgrade job is in an unknown format (%zu bytes, version %u)",
                 saved.len, saved.data[0]);
        return false;
    }
    job.enabled = saved.data[1];
    memcpy(job.target, saved.data + 2, saved.len - 2);
    if (job.enabled) /* etcd 3.5 would refuse to start here: only a member at the target may */
        log_msg(LOG_WARN, "a downgrade to %s is enabled (since before the restart); this member is %s",
                job.target, CETCD_VERSION);
    return true;
}

void downgrade_info_fill(Etcdserverpb__DowngradeInfo *info) {
    info->enabled = job.enabled;
    info->targetversion = job.enabled ? job.target : (char *)"";
}

/* ---------- the three actions ---------- */

/* etcd's downgradeValidate: the format, then the one allowed target, then no job in progress. */
static etcd_err validate(const char *version) {
    semver_mm target;
    if (!target_version(version, &target)) return ETCD_ERR_WRONG_DOWNGRADE_VERSION_FORMAT;
    semver_mm cv = cluster_version(); /* AllowedDowngradeVersion: one minor lower */
    if (target.major != cv.major || target.minor != cv.minor - 1)
        return ETCD_ERR_INVALID_DOWNGRADE_TARGET_VERSION;
    if (job.enabled) return ETCD_ERR_DOWNGRADE_IN_PROCESS;
    return AUTH_OK;
}

static etcd_err enable(const char *version) {
    etcd_err e = validate(version);
    if (e != AUTH_OK) return e;
    semver_mm target;
    bool ok = target_version(version, &target);
    assert(ok);
    (void)ok;
    job.enabled = true;
    snprintf(job.target, sizeof job.target, "%lld.%lld.0", target.major, target.minor);
    save();
    log_msg(LOG_INFO, "downgrade enabled, target version %s", job.target);
    return AUTH_OK;
}

static etcd_err cancel(void) {
    if (!job.enabled) return ETCD_ERR_NO_INFLIGHT_DOWNGRADE;
    job.enabled = false;
    job.target[0] = '\0';
    save();
    log_msg(LOG_INFO, "downgrade canceled");
    return AUTH_OK;
}

void maint_downgrade_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out) {
    (void)len;
    const Etcdserverpb__DowngradeRequest *r = (const Etcdserverpb__DowngradeRequest *)req;
    const char *denied = auth_check_maintenance(rpc_current_caller()); /* admin-only, as etcd 3.6 */
    if (denied) return out->fail(out->ctx, GRPC_UNKNOWN, denied);
    const char *version = r->version ? r->version : "";
    etcd_err e;
    switch (r->action) {
    case ETCDSERVERPB__DOWNGRADE_REQUEST__DOWNGRADE_ACTION__VALIDATE:
        e = validate(version);
        break;
    case ETCDSERVERPB__DOWNGRADE_REQUEST__DOWNGRADE_ACTION__ENABLE:
        e = enable(version);
        break;
    case ETCDSERVERPB__DOWNGRADE_REQUEST__DOWNGRADE_ACTION__CANCEL:
        e = cancel();
        break;
    default:
        e = ETCD_ERR_UNKNOWN_METHOD;
        break;
    }
    if (e != AUTH_OK) return out->fail(out->ctx, etcd_err_code(e), etcd_err_message(e));
    Etcdserverpb__ResponseHeader hdr;
    Etcdserverpb__DowngradeResponse resp = ETCDSERVERPB__DOWNGRADE_RESPONSE__INIT;
    char cv[48];
    cluster_version_text(cv, sizeof cv);
    response_header_fill(&hdr, mvcc_revision(g_store));
    resp.header = &hdr;
    resp.version = cv;
    out->reply(out->ctx, &resp.base);
}

void maint_downgrade(rpc_call *call, const uint8_t *msg, size_t len) {
    rpc_unary_exec(call, msg, len, &etcdserverpb__downgrade_request__descriptor, maint_downgrade_exec);
}
