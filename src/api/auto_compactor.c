/* auto_compactor.c: etcd's automatic compaction (v3compactor's Periodic and Revision), on one libev
 * timer. Each compaction is kv_compact_exec run through local_call, the Compact RPC's own function, so
 * it is logged, written and made durable, and cancels lagging watchers, exactly as a client's would.
 * The flags' parsing follows etcd's embed.parseCompactionRetention. */
#include "auto_compactor.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "flags.h"
#include "local_call.h"
#include "log_msg.h"
#include "rpc.pb-c.h"
#include "store.h"
#include "svc_kv.h"

#define RETRY_DIVISOR 10    /* etcd's retryDivisor: periodic mode looks every tenth of the window */
#define WINDOW_MAX 3600.0   /* past an hour, etcd keeps hourly windows */
#define TICK_MIN 0.001      /* cetcd: a periodic tick is at least 1 ms (etcd would spin) */
#define HOURS_MAX 2562047LL /* the most hours a Go time.Duration holds */

/* ---------- parsing ---------- */

/* llround(x) without libm, for the one caller each in parsing and in printing: the nearest whole
 * number, halves away from zero; NaN and values outside int64 give LLONG_MIN, as glibc's llround does
 * on x86-64. */
static long long round_half_away(double x) {
    if (!(x >= -0x1p63 && x < 0x1p63)) return LLONG_MIN;
    long long t = (long long)x;  /* toward zero, exact in this range */
    double frac = x - (double)t; /* exact: the fraction of x */
    if (frac >= 0.5)
        t++;
    else if (frac <= -0.5)
        t--;
    return t;
}

static bool fail(char *err, size_t cap, const char *fmt, const char *value) {
    snprintf(err, cap, fmt, value);
    return false;
}

/* Go's strconv.Atoi: an optional sign and decimal digits that fit an int64. */
static bool go_atoi(const char *s, int64_t *out) {
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18) return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

static void duration_retention(auto_compaction *out, bool periodic, double secs) {
    if (periodic) {
        out->mode = AC_PERIODIC;
        out->period = secs;
        auto_compaction_duration_text(secs, out->retention_text, sizeof out->retention_text);
    } else { /* etcd reads a duration in revision mode as its count of nanoseconds */
        out->mode = AC_REVISION;
        out->revisions = (int64_t)round_half_away(secs * 1e9);
        out->revisions_from_duration = true;
        snprintf(out->retention_text, sizeof out->retention_text, "%lld", (long long)out->revisions);
    }
}

bool auto_compaction_parse(const char *mode, const char *retention, double interval, auto_compaction *out,
                           char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->interval = interval > 0 ? interval : AUTO_COMPACTION_REVISION_INTERVAL;
    if (interval < 0) return fail(err, errlen, "--cetcd-auto-compaction-interval must not be negative%s", "");
    bool periodic = mode && strcmp(mode, "periodic") == 0, revision = mode && strcmp(mode, "revision") == 0;
    if (mode && *mode && !periodic && !revision)
        return fail(err, errlen, "unknown auto-compaction-mode \"%s\" (periodic or revision)", mode);
    if (!retention || !*retention) retention = "0"; /* etcd's default: off */
    int64_t n;
    if (go_atoi(retention, &n) && n >= 0) {
        if (n == 0 || (!periodic && !revision)) return true; /* no mode: etcd's switch leaves 0, off */
        if (periodic && n > HOURS_MAX)
            return fail(err, errlen, "invalid value \"%s\" for --auto-compaction-retention: too many hours",
                        retention);
        out->mode = periodic ? AC_PERIODIC : AC_REVISION;
        out->period = periodic ? (double)n * 3600 : 0;
        out->revisions = periodic ? 0 : n;
        if (periodic)
            auto_compaction_duration_text(out->period, out->retention_text, sizeof out->retention_text);
        else
            snprintf(out->retention_text, sizeof out->retention_text, "%lld", (long long)n);
        return true;
    }
    double secs;
    if (!flags_parse_duration(retention, &secs) || (secs < 0 ? -secs : secs) * 1e9 > 9.2e18)
        return fail(err, errlen,
                    "invalid value \"%s\" for --auto-compaction-retention: neither a whole number nor a "
                    "duration such as 30m or 1h30m",
                    retention);
    if (secs < 0)
        return fail(err, errlen,
                    "invalid value \"%s\" for --auto-compaction-retention: a negative retention (etcd "
                    "would compact without pause)",
                    retention);
    if (secs * 1e9 < 1) return true; /* "0s" */
    if (!periodic && !revision)
        return fail(err, errlen,
                    "unsupported compaction mode \"%s\": a retention with a unit needs auto-compaction-mode "
                    "periodic (etcd refuses it too)",
                    mode ? mode : "");
    duration_retention(out, periodic, secs);
    return true;
}

/* ---------- Go's Duration.String() ---------- */

/* v/div with the fraction's digits, trailing zeros dropped: fixed(1500, 1000) = "1.5". */
static void fixed(char *out, size_t cap, uint64_t v, uint64_t div) {
    int n = snprintf(out, cap, "%llu", (unsigned long long)(v / div));
    uint64_t frac = v % div;
    if (!frac || n < 0 || (size_t)n >= cap) return;
    int digits = 0;
    for (uint64_t d = div; d > 1; d /= 10)
        digits++;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(out + n, cap - (size_t)n, ".%0*llu", digits, (unsigned long long)frac);
}

void auto_compaction_duration_text(double secs, char *buf, size_t cap) {
    long long ns = round_half_away(secs * 1e9);
    const char *sign = ns < 0 ? "-" : "";
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char num[40];
    if (u == 0) {
        snprintf(buf, cap, "0s");
    } else if (u < 1000000000ull) {
        uint64_t div = u < 1000 ? 1 : u < 1000000 ? 1000 : 1000000;
        fixed(num, sizeof num, u, div);
        snprintf(buf, cap, "%s%s%s", sign, num, div == 1 ? "ns" : div == 1000 ? "\xc2\xb5s" : "ms");
    } else {
        uint64_t s_ns = 1000000000ull, h = u / (3600 * s_ns), m = u / (60 * s_ns) % 60;
        fixed(num, sizeof num, u % (60 * s_ns), s_ns);
        if (h)
            snprintf(buf, cap, "%s%lluh%llum%ss", sign, (unsigned long long)h, (unsigned long long)m, num);
        else if (m)
            snprintf(buf, cap, "%s%llum%ss", sign, (unsigned long long)m, num);
        else
            snprintf(buf, cap, "%s%ss", sign, num);
    }
}

/* ---------- the compactor ---------- */

static struct {
    auto_compaction s;
    ev_timer timer;
    /* periodic: the revisions seen at each tick, a ring of at most max once full (head: the oldest) */
    int64_t *revs;
    size_t len, cap, max, head;
    double tick, compact_interval, base, last_success;
    int64_t prev; /* revision: the last revision compacted to */
} ac;

/* The Compact RPC from inside the server (no caller: no token, as etcd's compactor sends none).
 * A revision already compacted counts as done, as etcd's compactor counts mvcc.ErrCompacted. */
static bool compact_to(int64_t rev, char *why, size_t cap) {
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    req.revision = rev;
    local_result r;
    const rpc_caller *was = rpc_set_current_caller(NULL);
    bool ok = local_call(kv_compact_exec, &req.base, &r);
    rpc_set_current_caller(was);
    if (!ok && strcmp(r.message, etcd_err_message(ETCD_ERR_COMPACTED)) == 0) ok = true;
    snprintf(why, cap, "%s", r.message);
    local_result_free(&r);
    return ok;
}

/* compact_to with etcd's log lines around it; mode "periodic" or "revision", setting its retention as
 * etcd prints it ("compact-period 5m", "revision-compaction-retention 10"). */
static bool compact_logged(int64_t rev, const char *mode, const char *setting, double retry_seconds) {
    char why[256];
    log_msg(LOG_INFO, "starting auto %s compaction (revision %lld, %s)", mode, (long long)rev, setting);
    double t0 = ev_time();
    bool ok = compact_to(rev, why, sizeof why);
    if (ok) {
        char took[64];
        auto_compaction_duration_text(ev_time() - t0, took, sizeof took);
        log_msg(LOG_INFO, "completed auto %s compaction (revision %lld, %s, took %s)", mode, (long long)rev,
                setting, took);
    } else {
        char retry[64];
        auto_compaction_duration_text(retry_seconds, retry, sizeof retry);
        log_msg(LOG_WARN, "failed auto %s compaction (revision %lld, %s, retry-interval %s): %s", mode,
                (long long)rev, setting, retry, why);
    }
    return ok;
}

static void record(int64_t rev) {
    if (ac.len < ac.max) { /* still filling: the ring has not turned, head stays 0 */
        if (ac.len == ac.cap) {
            ac.cap = ac.cap ? 2 * ac.cap : 16;
            if (ac.cap > ac.max) ac.cap = ac.max;
            ac.revs = xrealloc(ac.revs, ac.cap * sizeof *ac.revs);
        }
        ac.revs[ac.len++] = rev;
        return;
    }
    ac.revs[ac.head] = rev;
    ac.head = (ac.head + 1) % ac.max;
}

/* Every tick: once a window has passed since the last success, compact to the oldest revision kept
 * (the one seen a retention ago), then record the current revision. A failure is tried again at the
 * next tick, with the revision the ring then holds. */
static void periodic_tick(EV_P_ ev_timer *w, int revents) {
    (void)w, (void)revents;
    double now = ev_now(EV_A);
    if (now - ac.last_success >= ac.base - ac.tick / 2) {
        assert(ac.len > 0);
        ac.base =
            ac.compact_interval; /* the first window is the whole retention, later ones an hour at most */
        char period[64], setting[96];
        auto_compaction_duration_text(ac.s.period, period, sizeof period);
        snprintf(setting, sizeof setting, "compact-period %s", period);
        if (compact_logged(ac.revs[ac.head], "periodic", setting, ac.tick)) ac.last_success = now;
    }
    record(mvcc_revision(g_store));
}

/* Every interval: compact to the current revision less the retention, when that moved. */
static void revision_tick(EV_P_ ev_timer *w, int revents) {
    (void)loop, (void)w, (void)revents;
    int64_t rev = mvcc_revision(g_store) - ac.s.revisions;
    if (rev <= 0 || rev == ac.prev) return;
    char setting[96];
    snprintf(setting, sizeof setting, "revision-compaction-retention %lld", (long long)ac.s.revisions);
    if (compact_logged(rev, "revision", setting, ac.s.interval)) ac.prev = rev;
}

static void start_periodic(struct ev_loop *loop) {
    double window = ac.s.period < WINDOW_MAX ? ac.s.period : WINDOW_MAX;
    ac.tick = window / RETRY_DIVISOR < TICK_MIN ? TICK_MIN : window / RETRY_DIVISOR;
    ac.compact_interval = window;
    ac.max = (size_t)(ac.s.period / ac.tick + 1e-9) + 1;
    ac.base = ac.s.period;
    ac.last_success = ev_now(loop);
    record(mvcc_revision(g_store));
    char tick[64];
    auto_compaction_duration_text(ac.tick, tick, sizeof tick);
    log_msg(
        LOG_INFO,
        "auto compaction: periodic, retention %s (to the revision of %s ago; the revision noted every %s)",
        ac.s.retention_text, ac.s.retention_text, tick);
    ev_timer_init(&ac.timer, periodic_tick, ac.tick, ac.tick);
}

void auto_compactor_start(struct ev_loop *loop, const auto_compaction *s) {
    assert(!ac.s.mode && !ac.revs);
    ac.s = *s;
    if (s->mode == AC_OFF) return;
    if (s->mode == AC_PERIODIC) {
        assert(s->period > 0);
        start_periodic(loop);
    } else {
        assert(s->revisions > 0 && s->interval > 0);
        char every[64];
        auto_compaction_duration_text(s->interval, every, sizeof every);
        log_msg(LOG_INFO, "auto compaction: revision, retention %lld revisions (looked at every %s)",
                (long long)s->revisions, every);
        if (s->revisions_from_duration)
            log_msg(LOG_WARN,
                    "--auto-compaction-retention is a duration in revision mode: as etcd, its nanoseconds "
                    "are taken as a number of revisions (%lld)",
                    (long long)s->revisions);
        ev_timer_init(&ac.timer, revision_tick, s->interval, s->interval);
    }
    ev_timer_start(loop, &ac.timer);
}
