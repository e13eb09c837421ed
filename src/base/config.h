/* config.h: the server's settings, filled from etcd-named flags by flags.c and read everywhere. */
#ifndef CETCD_CONFIG_H
#define CETCD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CETCD_VERSION "3.5.17"        /* the etcd API version we speak and report */
#define CETCD_CLUSTER_VERSION "3.5.0" /* etcd reports the cluster version as major.minor.0 */

typedef struct config {
    const char *name;
    const char *data_dir;
    const char *listen_client_urls; /* comma list, http://host:port */
    const char *advertise_client_urls;
    const char *listen_metrics_urls;
    const char *log_level;
    uint64_t max_request_bytes;   /* etcd default 1.5 MiB */
    size_t max_txn_ops;           /* etcd default 128 */
    uint64_t quota_backend_bytes; /* etcd default 2 GiB */
    bool unsafe_no_fsync;
    const char *watch_progress_notify_interval; /* Go duration; NULL = etcd default 10m */
    const char *initial_advertise_peer_urls;    /* only reported (MemberList); NULL = http://localhost:2380 */
    const char *restore_file;                   /* --restore: restore this snapshot into data_dir and exit */
    /* client TLS (src/net/tls.c), etcd's flags: used by the https:// listeners */
    const char *cert_file, *key_file, *trusted_ca_file, *client_crl_file;
    bool client_cert_auth, auto_tls;
    const char *cipher_suites;   /* comma list of Go's names (TLS 1.2 suites) */
    const char *tls_min_version; /* TLS1.2 or TLS1.3; NULL = TLS1.2 */
    const char *tls_max_version; /* NULL = no maximum */
    /* peers: one member has none; the files are checked so a kubeadm line with a typo fails as etcd */
    const char *peer_cert_file, *peer_key_file, *peer_trusted_ca_file, *initial_cluster;
    const char *initial_cluster_state, *listen_peer_urls;
    const char *logger, *log_outputs; /* --logger zap: etcd's JSON lines (log_msg.c) */
    const char *config_file;          /* --config-file: etcd's YAML (config_file.c) */
    uint64_t max_connections;         /* --max-connections; 0 = from the descriptor limit */
    uint64_t max_reply_bytes;         /* --max-reply-bytes: one reply's results (src/rpc/budget.c) */
    uint64_t max_reply_pool_bytes;    /* --max-reply-pool-bytes: every reply held, together */
    uint64_t disk_reserve_bytes;      /* --disk-reserve-bytes: writes refused under this much free */
    double grpc_keepalive_min_time;   /* seconds: --grpc-keepalive-min-time, */
    double grpc_keepalive_interval;   /* --grpc-keepalive-interval */
    double grpc_keepalive_timeout;    /* and --grpc-keepalive-timeout */
    const char *auth_token;           /* --auth-token: NULL or "simple" (etcd's default) */
    uint64_t auth_token_ttl;          /* --auth-token-ttl, seconds; 0 = etcd's 300 */
    uint64_t bcrypt_cost;             /* --bcrypt-cost; 0 = etcd's 10 */
    /* --auto-compaction-mode (periodic, revision; NULL in a config file that names none, as etcd) and
     * --auto-compaction-retention, checked and run by src/api/auto_compactor.c */
    const char *auto_compaction_mode, *auto_compaction_retention;
    double auto_compaction_interval; /* cetcd only: revision mode's period, s; 0 = etcd's 5m */
    uint64_t cluster_id, member_id;  /* derived at start, constant for the server's life */
    uint64_t raft_term;
} config;

extern config g_config;

#endif
