/* metrics.c: counters and histograms kept in plain globals (one thread), rendered on /metrics in
 * Prometheus text format with etcd's metric names, help strings and histogram buckets, plus the
 * process_* metrics Go's client exports, read from /proc, and cetcd's own loop-turn times under
 * cetcd_* names no etcd metric has. */
#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "rpc.h"
#include "store.h"

#define FSYNC_BUCKETS 14 /* etcd: prometheus.ExponentialBuckets(0.001, 2, 14) */
#define MAX_METHODS 64
#define N_CODES 17

static uint64_t n_range, n_put, n_delete, n_txn;
static uint64_t grpc_received, grpc_sent;
static uint64_t health_ok, health_failed;
static uint64_t gather_waits, gather_timeouts;
static uint64_t fsync_buckets[FSYNC_BUCKETS], fsync_count, last_fsyncs;
static double fsync_sum;
/* loop turns: per-bucket counts (not cumulative; summed when rendered), the last for > 1 s */
static const double turn_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1};
#define TURN_BUCKETS (sizeof turn_le / sizeof turn_le[0])
static uint64_t turn_counts[TURN_BUCKETS + 1], turn_count;
static double turn_sum, turn_longest;
static double start_time;

typedef struct method_stat {
    const char *path;
    int kind;
    uint64_t handled[N_CODES];
} method_stat;
static method_stat methods[MAX_METHODS];
static size_t n_methods;

static const char *code_names[N_CODES] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

static double now_seconds(int clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- counting ---------- */

void metrics_kv(unsigned ranges, unsigned puts, unsigned deletes) {
    n_range += ranges;
    n_put += puts;
    n_delete += deletes;
}

static unsigned count_ops(const mv_txn_resp *r, unsigned *ranges, unsigned *puts, unsigned *deletes) {
    unsigned total = 0;
    for (size_t i = 0; r && i < r->n_responses; i++) {
        switch (r->responses[i].type) {
        case MV_OP_RANGE:
            (*ranges)++, total++;
            break;
        case MV_OP_PUT:
            (*puts)++, total++;
            break;
        case MV_OP_DELETE:
            (*deletes)++, total++;
            break;
        default:
            total += count_ops(r->responses[i].u.txn, ranges, puts, deletes);
            break;
        }
    }
    return total;
}

void metrics_kv_txn(const mv_txn_resp *r) {
    unsigned ranges = 0, puts = 0, deletes = 0;
    if (count_ops(r, &ranges, &puts, &deletes) > 1) n_txn++;
    metrics_kv(ranges, puts, deletes);
}

void metrics_grpc_handled(const char *path, int kind, int code) {
    if (code < 0 || code >= N_CODES) code = GRPC_UNKNOWN;
    for (size_t i = 0; i < n_methods; i++) {
        if (methods[i].path == path || strcmp(methods[i].path, path) == 0) {
            methods[i].handled[code]++;
            return;
        }
    }
    if (n_methods == MAX_METHODS) return;
    methods[n_methods] = (method_stat){.path = path, .kind = kind};
    methods[n_methods++].handled[code] = 1;
}

void metrics_grpc_received(size_t bytes) {
    grpc_received += bytes;
}

void metrics_grpc_sent(size_t bytes) {
    grpc_sent += bytes;
}

static void observe_fsync(double seconds) {
    double le = 0.001;
    for (int i = 0; i < FSYNC_BUCKETS; i++, le *= 2)
        if (seconds <= le) fsync_buckets[i]++;
    fsync_count++;
    fsync_sum += seconds;
}

void metrics_observe_fsync(const mvcc *s, double seconds) {
    observe_fsync(seconds);
    last_fsyncs = mvcc_fsync_count(s);
}

int metrics_timed_commit(mvcc *s) {
    double t0 = now_seconds(CLOCK_MONOTONIC);
    int rc = mvcc_commit(s);
    uint64_t syncs = mvcc_fsync_count(s);
    if (syncs != last_fsyncs) observe_fsync(now_seconds(CLOCK_MONOTONIC) - t0);
    last_fsyncs = syncs;
    return rc;
}

void metrics_loop_turn(double seconds) {
    size_t i = 0;
    while (i < TURN_BUCKETS && seconds > turn_le[i])
        i++;
    turn_counts[i]++;
    turn_count++;
    turn_sum += seconds;
    if (seconds > turn_longest) turn_longest = seconds;
}

void metrics_gather(int timed_out) {
    if (timed_out)
        gather_timeouts++;
    else
        gather_waits++;
}

void metrics_health(int ok) {
    if (ok)
        health_ok++;
    else
        health_failed++;
}

/* ---------- rendering ---------- */

static void put(sbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *out, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) sbuf_append(out, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void head(sbuf *out, const char *name, const char *type, const char *help) {
    put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_u64(sbuf *out, const char *name, const char *type, const char *help, uint64_t v) {
    head(out, name, type, help);
    put(out, "%s %" PRIu64 "\n", name, v);
}

static void render_fsync(sbuf *out) {
    const char *name = "etcd_disk_wal_fsync_duration_seconds";
    head(out, name, "histogram", "The latency distributions of fsync called by WAL.");
    double le = 0.001;
    for (int i = 0; i < FSYNC_BUCKETS; i++, le *= 2)
        put(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, le, fsync_buckets[i]);
    put(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, fsync_count);
    put(out, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, fsync_sum, name, fsync_count);
}

static void render_loop_turns(sbuf *out) {
    const char *name = "cetcd_loop_turn_duration_seconds";
    head(out, name, "histogram",
         "Time the event loop spent on one turn, from waking up to waiting again (cetcd only).");
    uint64_t cum = 0;
    for (size_t i = 0; i < TURN_BUCKETS; i++) {
        cum += turn_counts[i];
        put(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, turn_le[i], cum);
    }
    put(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, turn_count);
    put(out, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, turn_sum, name, turn_count);
    head(out, "cetcd_loop_turn_longest_seconds", "gauge",
         "The longest turn of the event loop since the server started (cetcd only).");
    put(out, "cetcd_loop_turn_longest_seconds %.9g\n", turn_longest);
    metric_u64(out, "cetcd_commit_gather_waits_total", "counter",
               "Batches held back for the writers the last sync answered (cetcd only).", gather_waits);
    metric_u64(out, "cetcd_commit_gather_timeouts_total", "counter",
               "Of those, the waits ended by their timer (cetcd only).", gather_timeouts);
}

static const char *grpc_type(int kind) {
    return kind == RPC_UNARY ? "unary" : kind == RPC_SERVER_STREAM ? "server_stream" : "bidi_stream";
}

static void render_grpc(sbuf *out) {
    head(out, "grpc_server_handled_total", "counter",
         "Total number of RPCs completed on the server, regardless of success or failure.");
    for (size_t i = 0; i < n_methods; i++) {
        const char *path = methods[i].path + (methods[i].path[0] == '/');
        const char *slash = strchr(path, '/');
        if (!slash) continue;
        for (int c = 0; c < N_CODES; c++) {
            if (!methods[i].handled[c]) continue;
            put(out,
                "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\",grpc_service=\"%.*s\","
                "grpc_type=\"%s\"} %" PRIu64 "\n",
                code_names[c], slash + 1, (int)(slash - path), path, grpc_type(methods[i].kind),
                methods[i].handled[c]);
        }
    }
    metric_u64(out, "etcd_network_client_grpc_received_bytes_total", "counter",
               "The total number of bytes received from grpc clients.", grpc_received);
    metric_u64(out, "etcd_network_client_grpc_sent_bytes_total", "counter",
               "The total number of bytes sent to grpc clients.", grpc_sent);
}

static void render_server(sbuf *out) {
    metric_u64(out, "etcd_server_has_leader", "gauge",
               "Whether or not a leader exists. 1 is existence, 0 is not.", 1);
    metric_u64(out, "etcd_server_is_leader", "gauge",
               "Whether or not this member is a leader. 1 if is, 0 otherwise.", 1);
    metric_u64(out, "etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.",
               1);
    head(out, "etcd_server_id", "gauge",
         "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.");
    put(out, "etcd_server_id{server_id=\"%" PRIx64 "\"} 1\n", g_config.member_id);
    head(out, "etcd_server_version", "gauge",
         "Which version is running. 1 for 'server_version' label with current version.");
    put(out, "etcd_server_version{server_version=\"%s\"} 1\n", CETCD_VERSION);
    head(out, "etcd_cluster_version", "gauge",
         "Which version is running. 1 for 'cluster_version' label with current cluster version");
    put(out, "etcd_cluster_version{cluster_version=\"%.3s\"} 1\n", CETCD_CLUSTER_VERSION);
    uint64_t quota = g_config.quota_backend_bytes ? g_config.quota_backend_bytes : 2ull << 30;
    metric_u64(out, "etcd_server_quota_backend_bytes", "gauge",
               "Current backend storage quota size in bytes.", quota);
    metric_u64(out, "etcd_server_health_success", "counter", "The total number of successful health checks",
               health_ok);
    metric_u64(out, "etcd_server_health_failures", "counter", "The total number of failed health checks",
               health_failed);
}

static void render_mvcc(sbuf *out) {
    uint64_t size = g_store ? mvcc_db_size(g_store) : 0, in_use = g_store ? mvcc_db_size_in_use(g_store) : 0;
    uint64_t keys = g_store ? mvcc_key_count(g_store) : 0;
    int64_t rev = g_store ? mvcc_revision(g_store) : 0,
            compact = g_store ? mvcc_compact_revision(g_store) : 0;
    metric_u64(out, "etcd_mvcc_db_total_size_in_bytes", "gauge",
               "Total size of the underlying database physically allocated in bytes.", size);
    metric_u64(out, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
               "Total size of the underlying database logically in use in bytes.", in_use);
    metric_u64(out, "etcd_debugging_mvcc_keys_total", "gauge", "Total number of keys.", keys);
    metric_u64(out, "etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.",
               (uint64_t)rev);
    metric_u64(out, "etcd_debugging_mvcc_compact_revision", "gauge",
               "The revision of the last compaction in store.", compact > 0 ? (uint64_t)compact : 0);
    metric_u64(out, "etcd_mvcc_range_total", "counter", "Total number of ranges seen by this member.",
               n_range);
    metric_u64(out, "etcd_mvcc_put_total", "counter", "Total number of puts seen by this member.", n_put);
    metric_u64(out, "etcd_mvcc_delete_total", "counter", "Total number of deletes seen by this member.",
               n_delete);
    metric_u64(out, "etcd_mvcc_txn_total", "counter", "Total number of txns seen by this member.", n_txn);
}

static uint64_t count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    uint64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* minus the directory's own fd */
}

static void render_process(sbuf *out) {
    unsigned long long vsize = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize, &rss) != 2) vsize = rss = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    struct rlimit rl;
    uint64_t max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
    head(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    put(out, "process_cpu_seconds_total %.2f\n", cpu);
    metric_u64(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds);
    metric_u64(out, "process_open_fds", "gauge", "Number of open file descriptors.", count_open_fds());
    metric_u64(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               rss * (uint64_t)page);
    head(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
    put(out, "process_start_time_seconds %.2f\n", start_time);
    metric_u64(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               vsize * (uint64_t)page);
}

__attribute__((constructor)) static void metrics_init(void) {
    start_time = now_seconds(CLOCK_REALTIME);
}

void metrics_render(sbuf *out) {
    render_fsync(out);
    render_mvcc(out);
    render_server(out);
    render_grpc(out);
    render_process(out);
    render_loop_turns(out);
}
