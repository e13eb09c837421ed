/* main.c: starts cetcd: flags → config and cluster identity → descriptors → the store → listeners →
 * the loop. SIGTERM and SIGINT stop the loop cleanly: the pending batch is committed and connections
 * told goodbye before the store closes. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "alarms.h"
#include "auto_compactor.h"
#include "commit.h"
#include "compaction_driver.h"
#include "config.h"
#include "flags.h"
#include "log_msg.h"
#include "server.h"
#include "snapshot_file.h"
#include "storage_io.h"
#include "store.h"
#include "svc_auth.h"
#include "svc_lease.h"
#include "svc_maint.h"
#include "svc_watch.h"

/* FNV-1a, 64 bits: a stable id from the member's name and URLs. */
static uint64_t hash64(uint64_t h, const char *s) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h ^= 0xff; /* separator, so ("ab","c") and ("a","bc") differ */
    return h * 0x100000001b3ull;
}

static void derive_identity(config *cfg) {
    uint64_t member = hash64(0xcbf29ce484222325ull, cfg->name);
    member = hash64(member, cfg->advertise_client_urls);
    uint64_t cluster = hash64(member, "cetcd-cluster");
    cfg->member_id = member ? member : 1;
    cfg->cluster_id = cluster ? cluster : 1;
    cfg->raft_term = 2;
}

#define DEFAULT_MAX_CONNECTIONS 10000
#define FD_RESERVE_MIN 128 /* descriptors kept for the log's segments and the rest of the server */

/* Go raises the soft descriptor limit to the hard one at start, so etcd runs with it; so does cetcd.
 * Returns the limit in force. */
static uint64_t raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/* --max-connections 0: the descriptor limit less a reserve (an eighth, at least 128, at most half),
 * and at most DEFAULT_MAX_CONNECTIONS. An explicit value above that is kept, with a warning. */
static void size_connections(uint64_t fd_limit) {
    uint64_t reserve = fd_limit / 8 > FD_RESERVE_MIN ? fd_limit / 8 : FD_RESERVE_MIN;
    if (reserve > fd_limit / 2) reserve = fd_limit / 2;
    uint64_t fit = fd_limit - reserve;
    if (!fit) fit = 1;
    bool derived = !g_config.max_connections;
    if (derived) g_config.max_connections = fit < DEFAULT_MAX_CONNECTIONS ? fit : DEFAULT_MAX_CONNECTIONS;
    log_msg(LOG_INFO, "at most %llu client connections at once (--max-connections%s; descriptor limit %llu)",
            (unsigned long long)g_config.max_connections, derived ? " default" : "",
            (unsigned long long)fd_limit);
    if (g_config.max_connections > fit)
        log_msg(LOG_WARN,
                "--max-connections %llu is above what the descriptor limit %llu leaves after a reserve of "
                "%llu; past that, new connections are closed on arrival",
                (unsigned long long)g_config.max_connections, (unsigned long long)fd_limit,
                (unsigned long long)reserve);
}

/* The log opens its files through this: at EMFILE the server's spare descriptors make room. */
static int open_with_reserve(int dirfd, const char *name, int flags, mode_t mode) {
    int fd = openat(dirfd, name, flags, mode);
    while (fd < 0 && (errno == EMFILE || errno == ENFILE) && server_release_reserve())
        fd = openat(dirfd, name, flags, mode);
    return fd;
}

static void report_replay(const mv_replay_progress *p) {
    if (p->done)
        log_msg(LOG_INFO, "recovered the data dir in %.1f s: %llu log records, %llu keys, revision %lld",
                p->seconds, (unsigned long long)p->records, (unsigned long long)p->keys,
                (long long)p->revision);
    else
        log_msg(LOG_INFO,
                "recovering the data dir: %llu log records read, %llu keys, revision %lld, %.1f s so far",
                (unsigned long long)p->records, (unsigned long long)p->keys, (long long)p->revision,
                p->seconds);
}

static void open_store(void) {
    mvcc_options opts = {
        .on_replay_progress = report_replay,
        .fsync = !g_config.unsafe_no_fsync,
        .quota_bytes = g_config.quota_backend_bytes,
        .max_txn_ops = g_config.max_txn_ops,
        .disk_reserve_bytes = g_config.disk_reserve_bytes,
    };
    char err[512] = "";
    g_store = mvcc_open(g_config.data_dir, &opts, err, sizeof err);
    if (!g_store) {
        fprintf(stderr, "cetcd: %s\n", err[0] ? err : "cannot open the data directory");
        exit(2);
    }
}

static void on_stop_signal(EV_P_ ev_signal *w, int revents) {
    (void)revents;
    log_msg(LOG_INFO, "received %s, shutting down", strsignal(w->signum));
    ev_break(EV_A_ EVBREAK_ALL);
}

static void start_listeners(void) {
    char err[512];
    if (!server_listen(g_config.listen_client_urls, false, err, sizeof err) ||
        (g_config.listen_metrics_urls &&
         !server_listen(g_config.listen_metrics_urls, true, err, sizeof err))) {
        fprintf(stderr, "cetcd: %s\n", err);
        exit(1);
    }
}

int main(int argc, char **argv) {
    int rc = flags_parse(argc, argv, &g_config);
    if (rc >= 0) return rc;
    auto_compaction compaction;
    char ac_err[300];
    if (!auto_compaction_parse(g_config.auto_compaction_mode, g_config.auto_compaction_retention,
                               g_config.auto_compaction_interval, &compaction, ac_err, sizeof ac_err)) {
        fprintf(stderr, "cetcd: %s\n", ac_err);
        return 2;
    }
    if (g_config.restore_file) return snapshot_restore_main();
    if ((g_config.cert_file && *g_config.cert_file) || g_config.auto_tls) {
        char err[600];
        if (!server_tls_setup(err, sizeof err)) {
            fprintf(stderr, "cetcd: %s\n", err);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    derive_identity(&g_config);
    if (g_config.unsafe_no_fsync)
        log_msg(LOG_WARN,
                "--unsafe-no-fsync: writes are not synced to disk; a crash can lose acknowledged data");
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        fputs("cetcd: cannot initialise the event loop\n", stderr);
        return 1;
    }
    uint64_t fd_limit = raise_fd_limit();
    static const storage_io io = {.open_at = open_with_reserve};
    storage_io_set(&io);
    open_store();
    char alarm_err[200];
    if (!alarms_load(alarm_err, sizeof alarm_err)) {
        fprintf(stderr, "cetcd: %s: %s\n", g_config.data_dir, alarm_err);
        return 2;
    }
    if (!downgrade_load(alarm_err, sizeof alarm_err)) {
        fprintf(stderr, "cetcd: %s: %s\n", g_config.data_dir, alarm_err);
        return 2;
    }
    size_connections(fd_limit); /* logs: after the store, so a bad data dir gets one line only */
    watch_init();
    auth_service_start(loop);
    start_listeners();
    commit_start(loop, &(commit_hooks){.flush = server_flush, .durable = server_release_durable});
    lease_service_start(loop);
    compaction_driver_start(loop);
    auto_compactor_start(loop, &compaction);
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, on_stop_signal, SIGTERM);
    ev_signal_init(&sigint, on_stop_signal, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    log_msg(LOG_INFO, "ready to serve client requests (name %s, data dir %s, member %016llx)", g_config.name,
            g_config.data_dir, (unsigned long long)g_config.member_id);
    ev_run(loop, 0);
    commit_batch();
    server_shutdown(commit_batch);
    mvcc_close(g_store);
    g_store = NULL;
    return 0;
}
