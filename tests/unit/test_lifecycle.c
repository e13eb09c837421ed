/* test_lifecycle.c: a model-based test of storage/ over long random lifecycles (writes, txns,
 * leases, compactions, log compaction, Defragment, snapshots, restarts and simulated power losses
 * through crashfs), each step checked against a plain in-memory model of every revision held.
 * LIFECYCLE_STEPS (per seed), LIFECYCLE_SEED (the first seed; alone, the only one) and LIFECYCLE_SEEDS
 * (how many) lengthen it; LIFECYCLE_VERBOSE=1 prints each step; a failed seed's files are kept. */
#include "crashfs.h"
#include "lifecycle_model.h"
#include "mvcc.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* crashfs is built as part of this file: the storage tests link fixture.c as their one helper. */
#include "crashfs.c"

#define MAX_EVENTS 64
#define TRACE 24
#define DEFAULT_STEPS 2000
#define DEFAULT_SEEDS 8

/* ---------- the run: store, failures, trace ---------- */

static struct run {
    uint64_t seed;
    long step;
    char root[64], data[96];
    mvcc_options opt;
    mvcc *s;
    bool crash_armed, failed;
    long crash_deadline;
    int64_t events_checked; /* events of revisions up to this one were checked */
    char trace[TRACE][128];
    long n_trace;
} R;

static struct totals {
    long ops, restarts, crashes, crashes_in_open, lost, runs, defrags, snapshots, dir_crashes, renames;
} T;

static void note(const char *fmt, ...) {
    char *line = R.trace[R.n_trace++ % TRACE];
    int n = snprintf(line, sizeof R.trace[0], "step %ld: ", R.step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof R.trace[0] - (size_t)n, fmt, ap);
    va_end(ap);
    if (getenv("LIFECYCLE_VERBOSE")) fprintf(stderr, "%s\n", line);
}

#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) FAIL(__VA_ARGS__);                                                                      \
    } while (0)

/* A storage abort() or a sanitizer report ends the process before Check can say which seed. */
static void print_trace(void) {
    fprintf(stderr,
            "lifecycle: LIFECYCLE_SEED=%lu stopped at step %ld (its files are in %s); the steps before:\n",
            (unsigned long)R.seed, R.step, R.root);
    for (long i = R.n_trace > TRACE ? R.n_trace - TRACE : 0; i < R.n_trace; i++)
        fprintf(stderr, "  %s\n", R.trace[i % TRACE]);
}

static void fail_at(int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_trace();
    R.failed = true; /* its files stay for a look */
    ck_abort_msg("LIFECYCLE_SEED=%lu, step %ld (test_lifecycle.c:%d): %s", (unsigned long)R.seed, R.step,
                 line, msg);
}

static void on_abort(int sig) {
    print_trace();
    signal(sig, SIG_DFL);
    raise(sig);
}

void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static unsigned pick(unsigned n) {
    return (unsigned)(rng_next() % n);
}

static mv_bytes key_bytes(int k) {
    return (mv_bytes){(const uint8_t *)key_names[k], strlen(key_names[k])};
}

static mv_bytes bytes_of(const char *s, size_t n) {
    return (mv_bytes){(const uint8_t *)s, n};
}

/* Mostly small values, some of a few hundred bytes, a few near the smallest segment size. */
static const uint8_t *make_value(size_t *len) {
    static uint8_t buf[3000];
    unsigned p = pick(100);
    *len = p < 70 ? pick(41) : p < 95 ? 40 + pick(360) : 400 + pick(2600);
    for (size_t i = 0; i < *len; i++)
        buf[i] = (uint8_t)('a' + (rng_next() % 26));
    return buf;
}

static void describe(char *out, size_t n, const mv_kv *kv, const mkv *m) {
    if (kv)
        snprintf(out, n, "store %.*s: %zu bytes, create %ld, mod %ld, version %ld, lease %ld",
                 (int)kv->key.len, kv->key.data, kv->value.len, (long)kv->create_revision,
                 (long)kv->mod_revision, (long)kv->version, (long)kv->lease);
    else
        snprintf(out, n, "model %s: %zu bytes, create %ld, mod %ld, version %ld, lease %ld",
                 key_names[m->key], m->vlen, (long)m->create, (long)m->mod, (long)m->version, (long)m->lease);
}

static void check_kv(const mv_kv *kv, const mkv *m, bool with_value, const char *where, int64_t rev) {
    mv_bytes k = key_bytes(m->key);
    bool same = kv->key.len == k.len && memcmp(kv->key.data, k.data, k.len) == 0 &&
                kv->create_revision == m->create && kv->mod_revision == m->mod && kv->version == m->version &&
                kv->lease == m->lease;
    if (same && with_value)
        same = kv->value.len == m->vlen && (m->vlen == 0 || memcmp(kv->value.data, m->value, m->vlen) == 0);
    if (same) return;
    char a[192], b[192];
    describe(a, sizeof a, kv, NULL);
    describe(b, sizeof b, NULL, m);
    FAIL("%s at revision %ld: %s; %s%s", where, (long)rev, a, b, with_value ? " (or the values differ)" : "");
}

/* ---------- checks of the store against a view of the model ---------- */

static mv_err expected_read_err(const mview *v, int64_t r) {
    return r < v->compact ? MV_ERR_COMPACTED : r > v->rev ? MV_ERR_FUTURE_REV : MV_OK;
}

static void check_range(mvcc *s, const mview *v, int64_t r) {
    mv_range_req q = {.key = bytes_of("", 1), .range_end = bytes_of("", 1), .revision = r};
    mv_result res;
    mvcc_range(s, &q, &res);
    mv_err want = expected_read_err(v, r);
    CHECK(res.err == want, "range at revision %ld: error %d, want %d (revision %ld, compacted at %ld)",
          (long)r, res.err, want, (long)v->rev, (long)v->compact);
    size_t i = 0;
    for (int k = 0; want == MV_OK && k < NKEYS; k++) {
        const mkv *m = rev_at(r)->live[k];
        if (!m) continue;
        CHECK(i < res.resp.u.range.n_kvs, "range at revision %ld: %s is missing", (long)r, key_names[k]);
        check_kv(&res.resp.u.range.kvs[i++], m, true, "range", r);
    }
    CHECK(want != MV_OK || i == res.resp.u.range.n_kvs, "range at revision %ld: %zu keys, the model has %zu",
          (long)r, res.resp.u.range.n_kvs, i);
    mv_result_free(&res);
}

typedef struct got_events {
    mv_event ev[MAX_EVENTS];
    size_t n;
} got_events;

static bool collect_event(void *ctx, const mv_event *ev) {
    got_events *g = ctx;
    if (g->n < MAX_EVENTS) g->ev[g->n] = *ev;
    g->n++;
    return true;
}

static bool event_is(const mv_event *ev, const mevent *m, int64_t r) {
    mv_bytes k = key_bytes(m->key);
    if (ev->type != (m->put ? MV_EVENT_PUT : MV_EVENT_DELETE) || ev->kv.mod_revision != r ||
        ev->kv.key.len != k.len || memcmp(ev->kv.key.data, k.data, k.len) != 0)
        return false;
    if (!m->put) return true;
    const mkv *p = m->put;
    return ev->kv.create_revision == p->create && ev->kv.version == p->version && ev->kv.lease == p->lease &&
           ev->kv.value.len == p->vlen && (p->vlen == 0 || memcmp(ev->kv.value.data, p->value, p->vlen) == 0);
}

static void check_prev(const mv_event *ev, const mevent *m, const mview *v, int64_t r) {
    const mkv *want = r - 1 >= v->compact && r - 1 >= M.base ? rev_at(r - 1)->live[m->key] : NULL;
    CHECK(!ev->prev_kv == !want, "event of %s at revision %ld: prev_kv %s, the model %s", key_names[m->key],
          (long)r, ev->prev_kv ? "given" : "missing", want ? "has one" : "has none");
    if (want) check_kv(ev->prev_kv, want, true, "prev_kv of an event", r);
}

/* At the compaction revision, some events may be compacted away: the rest must be in order. */
static void check_events(mvcc *s, const mview *v, int64_t r) {
    mv_arena *a = mv_arena_new();
    got_events g = {.n = 0};
    bool with_prev = pick(2);
    mv_err err = mvcc_events_at(s, r, with_prev, a, collect_event, &g), want = expected_read_err(v, r);
    CHECK(err == want, "events at revision %ld: error %d, want %d (revision %ld, compacted at %ld)", (long)r,
          err, want, (long)v->rev, (long)v->compact);
    const mrev *mr = want == MV_OK ? rev_at(r) : NULL;
    bool partial = r <= v->compact;
    CHECK(!mr || g.n == mr->n_ev || (partial && g.n < mr->n_ev),
          "events at revision %ld: %zu, the model has %zu (compacted at %ld)", (long)r, g.n,
          mr ? mr->n_ev : 0, (long)v->compact);
    size_t j = 0;
    for (size_t i = 0; mr && i < g.n; i++, j++) {
        while (partial && j < mr->n_ev && !event_is(&g.ev[i], &mr->ev[j], r))
            j++;
        CHECK(
            j < mr->n_ev && event_is(&g.ev[i], &mr->ev[j], r),
            "event %zu at revision %ld (%s of %.*s, mod %ld, create %ld, version %ld, %zu bytes) is not the "
            "model's (%zu events, the first a %s of %s)",
            i, (long)r, g.ev[i].type == MV_EVENT_PUT ? "put" : "delete", (int)g.ev[i].kv.key.len,
            g.ev[i].kv.key.data, (long)g.ev[i].kv.mod_revision, (long)g.ev[i].kv.create_revision,
            (long)g.ev[i].kv.version, g.ev[i].kv.value.len, mr->n_ev,
            mr->n_ev && mr->ev[0].put ? "put" : "delete", mr->n_ev ? key_names[mr->ev[0].key] : "-");
        if (with_prev && !partial) check_prev(&g.ev[i], &mr->ev[j], v, r);
    }
    mv_arena_free(a);
}

static void add_lease(void *ctx, int64_t id, int64_t ttl) {
    mview *got = ctx;
    if (got->n_leases < MAX_LEASES) got->leases[got->n_leases] = (mlease){id, ttl};
    got->n_leases++;
}

static mview store_view(mvcc *s) {
    mview got = {.rev = mvcc_revision(s), .compact = mvcc_compact_revision(s)};
    mvcc_lease_foreach(s, add_lease, &got);
    return got;
}

static void check_leases(mvcc *s, const mview *v) {
    mview got = store_view(s);
    got.rev = v->rev;
    got.compact = v->compact;
    char a[160], b[160];
    describe_view(a, sizeof a, &got);
    describe_view(b, sizeof b, v);
    CHECK(same_view(&got, v) && mvcc_lease_count(s) == v->n_leases,
          "leases differ: the store at %s, the model at %s", a, b);
    for (size_t i = 0; i < v->n_leases; i++) {
        mv_arena *a = mv_arena_new();
        mv_bytes *keys;
        size_t n = mvcc_lease_keys(s, v->leases[i].id, a, &keys), j = 0;
        for (int k = 0; k < NKEYS; k++) {
            const mkv *m = rev_at(v->rev)->live[k];
            if (!m || m->lease != v->leases[i].id) continue;
            CHECK(j < n && keys[j].len == strlen(key_names[k]) &&
                      memcmp(keys[j].data, key_names[k], keys[j].len) == 0,
                  "lease %ld: key %zu is not %s", (long)v->leases[i].id, j, key_names[k]);
            j++;
        }
        CHECK(j == n, "lease %ld: %zu keys, the model has %zu", (long)v->leases[i].id, n, j);
        mv_arena_free(a);
    }
}

/* HashKV depends only on the logical content, which (revision, compaction) names. */
static void check_hash(mvcc *s, const mview *v) {
    uint32_t h;
    int64_t at;
    CHECK(mvcc_hash_kv(s, 0, &h, &at) == MV_OK && at == v->rev, "HashKV failed or hashed revision %ld",
          (long)at);
    if (M.hash_known && M.hash_rev == v->rev && M.hash_compact == v->compact) {
        CHECK(h == M.hash, "HashKV at revision %ld (compacted at %ld) changed: %08x, was %08x", (long)v->rev,
              (long)v->compact, h, M.hash);
        return;
    }
    M.hash_known = true;
    M.hash_rev = v->rev;
    M.hash_compact = v->compact;
    M.hash = h;
}

static void check_store(mvcc *s, const mview *v, bool full) {
    int64_t rev = mvcc_revision(s), compact = mvcc_compact_revision(s);
    CHECK(rev >= compact, "revision %ld is below the compaction revision %ld", (long)rev, (long)compact);
    CHECK(rev >= M.acked_rev, "revision went backwards: %ld, %ld acknowledged", (long)rev, (long)M.acked_rev);
    CHECK(rev == v->rev && compact == v->compact,
          "store at revision %ld compacted at %ld, model at %ld / %ld", (long)rev, (long)compact,
          (long)v->rev, (long)v->compact);
    uint64_t keys = 0;
    for (int k = 0; k < NKEYS; k++)
        keys += rev_at(v->rev)->live[k] != NULL;
    CHECK(mvcc_key_count(s) == keys, "the store counts %lu keys, the model has %lu",
          (unsigned long)mvcc_key_count(s), (unsigned long)keys);
    int64_t lo = held_from(v);
    if (R.events_checked > v->rev || full) R.events_checked = lo - 1;
    for (int64_t r = full ? lo : v->rev; r <= v->rev; r++)
        check_range(s, v, r);
    check_range(s, v, lo + (int64_t)pick((unsigned)(v->rev - lo + 1)));
    check_range(s, v, v->rev + 1);
    for (int64_t r = R.events_checked + 1; r <= v->rev; r++)
        check_events(s, v, r);
    R.events_checked = v->rev;
    if (v->compact > 1) {
        check_range(s, v, v->compact - 1);
        check_events(s, v, v->compact - 1);
    }
    check_leases(s, v);
    if (!full) return;
    check_hash(s, v);
    char why[512];
    CHECK(crashfs_verify(why, sizeof why) == 0, "%s", why);
}

/* After a finished Defragment the store's size follows its live data, not its history. */
static void check_space(void) {
    uint64_t live = live_bytes(&M.tip), seg = R.opt.segment_bytes, max_bytes = 2 * seg + 2 * live;
    crashfs_usage use = crashfs_get_usage();
    long max_files = 4 + (long)(2 * live / seg);
    CHECK(mvcc_db_size(R.s) <= max_bytes && use.bytes <= max_bytes,
          "after Defragment the log has %lu bytes (%lu on disk) for %lu live bytes: over %lu",
          (unsigned long)mvcc_db_size(R.s), (unsigned long)use.bytes, (unsigned long)live,
          (unsigned long)max_bytes);
    CHECK(use.files <= max_files && use.fds <= max_files + 1,
          "after Defragment: %ld files, %ld descriptors (%ld through the seam) for %lu live bytes: over %ld",
          use.files, use.fds, crashfs_get_stats().open_fds, (unsigned long)live, max_files);
}

/* ---------- commits, crashes and restarts ---------- */

/* The ops issued are acknowledged once durable; a failure must be the crash's. */
static bool commit(void) {
    int rc;
    struct log_job *job = NULL;
    if (pick(4)) {
        rc = mvcc_commit(R.s);
    } else if ((rc = mvcc_write_batch(R.s, &job)) == 0 && job) {
        rc = mvcc_run_job(job);
        mvcc_sync_finished(R.s, rc);
    }
    if (rc == 0) {
        CHECK(!mvcc_has_batch(R.s), "a batch remains after a commit");
        model_ack();
        return true;
    }
    CHECK(crashfs_crashed(), "commit failed without a crash: %s", strerror(-rc));
    return false;
}

static void after_write(void) {
    model_op_done();
    if (M.n_views > MAX_PENDING || pick(3)) commit();
}

static bool open_store(void) {
    char err[256];
    R.s = mvcc_open(R.data, &R.opt, err, sizeof err);
    CHECK(R.s || crashfs_crashed(), "open of %s failed: %s", R.data, err);
    return R.s != NULL;
}

/* Which state did the crash leave: the acknowledged one or one of the ops after it. */
static void resolve_crash(void) {
    mview got = store_view(R.s);
    const mview *v = NULL;
    for (size_t k = M.n_views; k-- > 0 && !v;)
        if (same_view(&M.views[k], &got)) v = &M.views[k];
    CHECK(got.rev >= M.acked_rev, "revision went backwards after a crash: %ld, %ld acknowledged",
          (long)got.rev, (long)M.acked_rev);
    char a[160], b[160], c[160];
    describe_view(a, sizeof a, &got);
    describe_view(b, sizeof b, &M.views[0]);
    describe_view(c, sizeof c, &M.views[M.n_views - 1]);
    CHECK(v,
          "after a crash the store holds %s: neither the acknowledged state (%s) nor the state after one of "
          "the %zu ops issued after it (last: %s)",
          a, b, M.n_views - 1, c);
    if (v != &M.views[M.n_views - 1]) T.lost++;
    model_truncate(v);
    model_ack();
}

/* The store is dropped as a killed process would leave it, the directory rolled back to what was
 * durable, and the store opened again, sometimes crashing again inside the open. */
static void handle_crash(void) {
    if (R.s) mvcc_close(R.s);
    R.s = NULL;
    T.crashes++;
    char why[512];
    for (int attempt = 0; !R.s; attempt++) {
        CHECK(crashfs_recover(rng_next, why, sizeof why) == 0, "%s", why);
        bool again = attempt == 0 && pick(4) == 0;
        if (again) crashfs_arm(1 + pick(10), false, pick(2));
        note("crash recovered; opening%s", again ? " with a crash armed" : "");
        if (open_store() && !crashfs_crashed()) break;
        CHECK(attempt < 2, "open keeps crashing");
        T.crashes_in_open++;
        if (R.s) mvcc_close(R.s);
        R.s = NULL;
    }
    crashfs_disarm();
    R.crash_armed = false;
    resolve_crash();
    check_store(R.s, &M.tip, true);
}

static void op_restart(void) {
    if (M.n_views > 1 && !commit()) return;
    note("restart");
    mvcc_close(R.s);
    R.s = NULL;
    if (crashfs_crashed() || !open_store() || crashfs_crashed()) return;
    T.restarts++;
    check_store(R.s, &M.tip, true);
}

static void op_arm_crash(void) {
    if (R.crash_armed) return;
    unsigned kind = pick(8);
    if (kind < 2) {
        note("power loss");
        crashfs_crash_now();
        return;
    }
    bool dir_ops = kind >= 4, after = pick(2);
    uint64_t nth = dir_ops ? 1 + pick(4) : 1 + pick(40);
    note("crash armed %s %s number %lu from now", after ? "after" : "before",
         dir_ops ? "create/rename/unlink/directory sync" : "change", (unsigned long)nth);
    crashfs_arm(nth, dir_ops, after);
    R.crash_armed = true;
    R.crash_deadline = R.step + 40;
}

/* ---------- writes ---------- */

static int pick_key(void) {
    return (int)pick(NKEYS);
}

/* No lease, an existing one, or now and then one that does not exist. */
static int64_t pick_lease(bool only_existing, bool *exists) {
    unsigned p = pick(100);
    *exists = true;
    if (p < 65 || (only_existing && !M.tip.n_leases)) return 0;
    if (M.tip.n_leases && (p < 97 || only_existing)) return M.tip.leases[pick((unsigned)M.tip.n_leases)].id;
    *exists = false;
    return 900 + pick(50);
}

static void op_put(void) {
    int k = pick_key();
    size_t vlen;
    const uint8_t *v = make_value(&vlen);
    bool lease_ok;
    mv_put_req q = {
        .key = key_bytes(k), .value = {v, vlen}, .lease = pick_lease(false, &lease_ok), .prev_kv = pick(2)};
    mv_result res;
    mvcc_put(R.s, &q, &res);
    note("put %s (%zu bytes, lease %ld)", key_names[k], vlen, (long)q.lease);
    if (!lease_ok) {
        CHECK(res.err == MV_ERR_LEASE_NOT_FOUND, "put with a missing lease: error %d", res.err);
    } else {
        CHECK(res.err == MV_OK, "put: error %d", res.err);
        const mkv *before = rev_at(M.tip.rev)->live[k];
        mv_kv *prev = res.resp.u.put.prev_kv;
        CHECK(!q.prev_kv || !prev == !before, "put %s: prev_kv %s", key_names[k], prev ? "given" : "missing");
        if (q.prev_kv && before) check_kv(prev, before, true, "prev_kv of a put", M.tip.rev);
        model_put(model_new_rev(), k, v, vlen, q.lease);
        CHECK(res.header_revision == M.tip.rev, "put: header revision %ld, want %ld",
              (long)res.header_revision, (long)M.tip.rev);
    }
    mv_result_free(&res);
    after_write();
}

static void op_delete(bool range) {
    int a = pick_key(), b = range ? a + 1 + (int)pick((unsigned)(NKEYS - a)) : a + 1;
    mv_delete_req q = {.key = key_bytes(a), .prev_kv = pick(2)};
    if (range) q.range_end = b < NKEYS ? key_bytes(b) : pick(2) ? bytes_of("", 1) : bytes_of("key0", 4);
    mv_result res;
    mvcc_delete(R.s, &q, &res);
    note("delete %s..%s", key_names[a], range ? (b < NKEYS ? key_names[b] : "end") : "");
    CHECK(res.err == MV_OK, "delete: error %d", res.err);
    const mrev *before = rev_at(M.tip.rev);
    int64_t n = 0;
    for (int k = a; k < b; k++)
        if (before->live[k]) {
            CHECK(!q.prev_kv || (size_t)n < res.resp.u.del.n_prev_kvs, "delete: prev_kvs missing");
            if (q.prev_kv)
                check_kv(&res.resp.u.del.prev_kvs[n], before->live[k], true, "prev_kv of a delete",
                         M.tip.rev);
            n++;
        }
    CHECK(res.resp.u.del.deleted == n, "delete: %ld deleted, the model %ld", (long)res.resp.u.del.deleted,
          (long)n);
    mrev *r = n ? model_new_rev() : NULL;
    for (int k = a; r && k < b; k++)
        if (r->live[k]) model_delete(r, k);
    CHECK(res.header_revision == M.tip.rev, "delete: header revision %ld, want %ld",
          (long)res.header_revision, (long)M.tip.rev);
    mv_result_free(&res);
    after_write();
}

/* A branch of puts and deletes of distinct keys, with values kept in bufs. */
static size_t make_branch(mv_op *ops, const int *keys, size_t n, uint8_t bufs[][400]) {
    for (size_t i = 0; i < n; i++) {
        if (pick(10) < 3) {
            ops[i] = (mv_op){.type = MV_OP_DELETE, .u.del = {.key = key_bytes(keys[i])}};
            continue;
        }
        size_t len = pick(400);
        for (size_t j = 0; j < len; j++)
            bufs[i][j] = (uint8_t)('A' + pick(26));
        bool exists;
        ops[i] = (mv_op){.type = MV_OP_PUT, .u.put = {.key = key_bytes(keys[i]), .value = {bufs[i], len}}};
        ops[i].u.put.lease = pick(5) ? 0 : pick_lease(true, &exists);
    }
    if (pick(3) == 0)
        ops[n++] =
            (mv_op){.type = MV_OP_RANGE, .u.range = {.key = bytes_of("", 1), .range_end = bytes_of("", 1)}};
    return n;
}

/* The model's side of a branch; keys[i] is the key of ops[i] (a trailing range changes nothing). */
static void apply_branch(const mv_op *ops, const int *keys, size_t n) {
    bool changes = false;
    for (size_t i = 0; i < n; i++)
        changes |=
            ops[i].type == MV_OP_PUT || (ops[i].type == MV_OP_DELETE && rev_at(M.tip.rev)->live[keys[i]]);
    mrev *r = changes ? model_new_rev() : NULL;
    for (size_t i = 0; r && i < n; i++) {
        if (ops[i].type == MV_OP_PUT)
            model_put(r, keys[i], ops[i].u.put.value.data, ops[i].u.put.value.len, ops[i].u.put.lease);
        else if (ops[i].type == MV_OP_DELETE && r->live[keys[i]])
            model_delete(r, keys[i]);
    }
}

/* A txn whose compare picks one of two branches, each changing several keys in one revision. */
static void op_txn(void) {
    int keys[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        keys[i] = i;
    for (int i = 0; i < 10; i++) {
        int j = i + (int)pick((unsigned)(NKEYS - i)), t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
    }
    static uint8_t bufs[10][400];
    mv_op success[6], failure[6];
    size_t n_ok = make_branch(success, keys, 2 + pick(4), bufs);
    size_t n_fail = make_branch(failure, keys + 5, 1 + pick(4), bufs + 5);
    int c = pick_key();
    const mkv *ck = rev_at(M.tip.rev)->live[c];
    mv_compare cmp = {.result = MV_CMP_LESS,
                      .target = MV_CMP_MOD,
                      .key = key_bytes(c),
                      .number = (int64_t)pick((unsigned)M.tip.rev + 2)};
    bool holds = (ck ? ck->mod : 0) < cmp.number;
    mv_txn_req q = {.compare = &cmp,
                    .n_compare = 1,
                    .success = success,
                    .n_success = n_ok,
                    .failure = failure,
                    .n_failure = n_fail};
    mv_result res;
    mvcc_txn(R.s, &q, &res);
    note("txn of %zu ops, %s branch", holds ? n_ok : n_fail, holds ? "success" : "failure");
    CHECK(res.err == MV_OK, "txn: error %d", res.err);
    CHECK(res.resp.u.txn->succeeded == holds, "txn: succeeded %d, the model %d", res.resp.u.txn->succeeded,
          holds);
    apply_branch(holds ? success : failure, holds ? keys : keys + 5, holds ? n_ok : n_fail);
    CHECK(res.header_revision == M.tip.rev, "txn: header revision %ld, want %ld", (long)res.header_revision,
          (long)M.tip.rev);
    mv_result_free(&res);
    after_write();
}

static void op_grant(void) {
    int64_t id = 1 + pick(40), ttl = 1 + pick(1000);
    bool exists = lease_index(&M.tip, id) >= 0;
    if (!exists && M.tip.n_leases == MAX_LEASES) return;
    mv_err err = mvcc_lease_grant(R.s, id, ttl);
    note("grant lease %ld (ttl %ld)", (long)id, (long)ttl);
    CHECK(err == (exists ? MV_ERR_LEASE_EXISTS : MV_OK), "grant of lease %ld: error %d", (long)id, err);
    if (!exists) model_grant(id, ttl);
    after_write();
}

/* Revoking (or expiring) a lease deletes its keys in one revision. */
static void op_revoke(void) {
    bool exists = M.tip.n_leases && pick(10);
    int64_t id = exists ? M.tip.leases[pick((unsigned)M.tip.n_leases)].id : 900 + pick(50);
    mv_result res;
    mvcc_lease_revoke(R.s, id, pick(2), &res);
    note("revoke lease %ld", (long)id);
    CHECK(res.err == (exists ? MV_OK : MV_ERR_LEASE_NOT_FOUND), "revoke of lease %ld: error %d", (long)id,
          res.err);
    if (exists) {
        const mrev *before = rev_at(M.tip.rev);
        int64_t n = 0;
        for (int k = 0; k < NKEYS; k++)
            n += before->live[k] && before->live[k]->lease == id;
        CHECK(res.resp.u.del.deleted == n, "revoke: %ld keys deleted, the model %ld",
              (long)res.resp.u.del.deleted, (long)n);
        mrev *r = n ? model_new_rev() : NULL;
        for (int k = 0; r && k < NKEYS; k++)
            if (r->live[k] && r->live[k]->lease == id) model_delete(r, k);
        model_forget_lease(id);
        CHECK(res.header_revision == M.tip.rev, "revoke: header revision %ld, want %ld",
              (long)res.header_revision, (long)M.tip.rev);
    }
    mv_result_free(&res);
    after_write();
}

/* Many grants and revokes of keyless leases: records that Defragment must reclaim. */
static void op_lease_churn(void) {
    for (int i = 0; i < 20; i++) {
        if (M.tip.n_leases < MAX_LEASES) op_grant();
        op_revoke();
        if (crashfs_crashed()) return;
    }
}

/* Compaction at a revision between the compaction and the current one; now and then a refused one. */
static void op_compact(void) {
    int64_t lo = M.tip.compact + 1, hi = M.tip.rev, r, hdr;
    unsigned p = pick(12);
    if (p == 0 || lo > hi)
        r = hi + 1;
    else if (p == 1 && M.tip.compact >= 0)
        r = M.tip.compact;
    else if (hi - held_from(&M.tip) > 150)
        r = hi - (int64_t)pick(20) > lo ? hi - (int64_t)pick(20) : hi;
    else
        r = lo + (int64_t)pick((unsigned)(hi - lo + 1));
    mv_err err = mvcc_compact(R.s, r, &hdr), want = r > hi   ? MV_ERR_FUTURE_REV
                                                    : r < lo ? MV_ERR_COMPACTED
                                                             : MV_OK;
    note("compact at %ld", (long)r);
    CHECK(err == want, "compact at %ld: error %d, want %d", (long)r, err, want);
    if (err == MV_OK) M.tip.compact = r;
    after_write();
}

/* Steps of the log compaction run; false if a crash stopped it. to_end: commits what it waits for. */
static bool compaction_steps(long times, bool to_end) {
    for (long i = 0; i < times && mvcc_log_compaction_running(R.s); i++) {
        int rc = mvcc_log_compaction_step(R.s, pick(3) ? 0 : 300);
        if (rc < 0) {
            CHECK(crashfs_crashed(), "log compaction step failed without a crash: %s", strerror(-rc));
            return false;
        }
        if (to_end && rc == 1 && mvcc_wants_job(R.s) && !commit()) return false;
    }
    return !crashfs_crashed();
}

/* A run started (or one going on) takes a few steps, and may be left unfinished. */
static void op_log_compaction(void) {
    if (!mvcc_log_compaction_running(R.s)) {
        bool seal = pick(2);
        note("log compaction starts%s", seal ? ", sealing the current segment" : "");
        mvcc_log_compaction_start(R.s, seal);
        T.runs++;
    }
    compaction_steps(1 + pick(4), false);
}

static void op_defrag(void) {
    if (M.n_views > 1 && !commit()) return;
    note("defragment");
    if (!compaction_steps(100000, true)) return;
    mvcc_log_compaction_start(R.s, true);
    if (!compaction_steps(100000, true)) return;
    CHECK(!mvcc_log_compaction_running(R.s), "log compaction never finishes");
    T.defrags++;
    check_store(R.s, &M.tip, true);
    check_space();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int remove_tree(const char *dir) {
    return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A snapshot restored into a new directory holds a state the store acknowledged or had issued. */
static void op_snapshot(void) {
    if (R.crash_armed) return; /* the restore's own writes must not take the armed crash */
    char err[256], dir[128];
    mv_snapshot *sn = mvcc_snapshot_begin(R.s, err, sizeof err);
    if (!sn) {
        CHECK(crashfs_crashed(), "snapshot: %s", err);
        return;
    }
    uint64_t size = mvcc_snapshot_size(sn), at = 0;
    uint8_t *buf = malloc(size);
    long got;
    while ((got = mvcc_snapshot_read(sn, buf + at, size - at < 1000 ? size - at : 1 + pick(20000))) > 0)
        at += (uint64_t)got;
    mvcc_snapshot_end(sn);
    CHECK(got == 0 && at == size, "snapshot read %lu of %lu bytes (%ld)", (unsigned long)at,
          (unsigned long)size, got);
    snprintf(dir, sizeof dir, "%s/restored", R.root);
    CHECK(mvcc_restore_bytes(buf, size, dir, err, sizeof err) == 0, "restore: %s", err);
    free(buf);
    mvcc *copy = mvcc_open(dir, &R.opt, err, sizeof err);
    CHECK(copy, "open of the restored snapshot: %s", err);
    note("snapshot of %lu bytes restored", (unsigned long)size);
    mview got_view = store_view(copy);
    const mview *v = NULL;
    for (size_t k = 0; k < M.n_views && !v; k++)
        if (same_view(&M.views[k], &got_view)) v = &M.views[k];
    CHECK(v, "the restored snapshot is at revision %ld, compacted at %ld: no state the store had",
          (long)got_view.rev, (long)got_view.compact);
    int64_t checked = R.events_checked;
    check_store(copy, v, true);
    R.events_checked = checked;
    mvcc_close(copy);
    CHECK(remove_tree(dir) == 0, "removing %s failed", dir);
    T.snapshots++;
}

/* ---------- the lifecycle ---------- */

static void step(void) {
    unsigned p = pick(1000);
    if (M.tip.rev - held_from(&M.tip) > 250 && p % 4 == 0)
        op_compact();
    else if (p < 270)
        op_put();
    else if (p < 330)
        op_delete(false);
    else if (p < 370)
        op_delete(true);
    else if (p < 490)
        op_txn();
    else if (p < 550)
        op_grant();
    else if (p < 600)
        op_revoke();
    else if (p < 610)
        op_lease_churn();
    else if (p < 670)
        op_compact();
    else if (p < 750)
        op_log_compaction();
    else if (p < 775)
        op_defrag();
    else if (p < 790)
        op_snapshot();
    else if (p < 830)
        op_restart();
    else if (p < 870)
        op_arm_crash();
    else if (M.n_views > 1)
        commit();
    else
        op_put();
}

static void run_setup(uint64_t seed) {
    memset(&R, 0, sizeof R);
    R.seed = seed;
    rng_state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (int k = 0; k < NKEYS; k++)
        snprintf(key_names[k], sizeof key_names[k], "key/%02d%s", k,
                 k % 5 ? "" : "-a-long-key-that-fills-the-log-a-bit-faster");
    strcpy(R.root, "/tmp/cetcd-lifecycle-XXXXXX");
    ck_assert(mkdtemp(R.root) != NULL);
    snprintf(R.data, sizeof R.data, "%s/data", R.root);
    ck_assert(mkdir(R.data, 0755) == 0);
    R.opt = (mvcc_options){.fsync = true, .segment_bytes = 4096u << pick(5)};
    model_init();
    crashfs_install(R.data);
    CHECK(open_store(), "open of a new store failed");
    check_store(R.s, &M.tip, true);
}

static void run_teardown(void) {
    crashfs_stats st = crashfs_get_stats();
    T.dir_crashes += (long)st.crashes_at_dir_ops;
    T.renames += (long)st.renames;
    if (R.s) mvcc_close(R.s);
    R.s = NULL;
    crashfs_uninstall();
    model_free();
    if (R.root[0] && !R.failed && remove_tree(R.root) != 0)
        fprintf(stderr, "lifecycle: could not remove %s\n", R.root);
    R.root[0] = 0;
}

static void run_seed(uint64_t seed, long steps) {
    run_setup(seed);
    for (R.step = 1; R.step <= steps; R.step++) {
        step();
        T.ops++;
        if (R.crash_armed && R.step >= R.crash_deadline && !crashfs_crashed()) {
            note("power loss (the armed crash point was not reached)");
            crashfs_crash_now();
        }
        if (crashfs_crashed())
            handle_crash();
        else
            check_store(R.s, &M.tip, R.step % 8 == 0);
    }
    run_teardown();
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

START_TEST(test_lifecycle) {
    long steps = env_long("LIFECYCLE_STEPS", DEFAULT_STEPS), first = env_long("LIFECYCLE_SEED", 1);
    long seeds = env_long("LIFECYCLE_SEEDS", getenv("LIFECYCLE_SEED") ? 1 : DEFAULT_SEEDS);
    memset(&T, 0, sizeof T);
    signal(SIGABRT, on_abort);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(print_trace);
    for (long seed = first; seed < first + seeds; seed++)
        run_seed((uint64_t)seed, steps);
    fprintf(
        stderr,
        "lifecycle: %ld ops, %ld restarts, %ld crashes (%ld at a create, rename, unlink or directory sync, "
        "%ld losing unacknowledged ops, %ld more inside the open after one), %ld renames, %ld log compaction "
        "runs, %ld defragments, %ld snapshots, seeds %ld..%ld\n",
        T.ops, T.restarts, T.crashes, T.dir_crashes, T.lost, T.crashes_in_open, T.renames, T.runs, T.defrags,
        T.snapshots, first, first + seeds - 1);
}
END_TEST

static void lifecycle_teardown(void) {
    if (R.root[0]) run_teardown();
}

Suite *lifecycle_suite(void) {
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("model");
    long work = env_long("LIFECYCLE_STEPS", DEFAULT_STEPS) *
                env_long("LIFECYCLE_SEEDS", getenv("LIFECYCLE_SEED") ? 1 : DEFAULT_SEEDS);
    tcase_set_timeout(tc, 60.0 + (double)work / 100.0);
    tcase_add_checked_fixture(tc, NULL, lifecycle_teardown);
    tcase_add_test(tc, test_lifecycle);
    suite_add_tcase(s, tc);
    return s;
}
