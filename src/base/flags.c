/* flags.c: etcd's command line (`--flag value`, `--flag=value`, `-flag`, ETCD_FLAG env vars) parsed
 * into g_config, so that etcd and kubeadm command lines start cetcd unchanged. Flags that only matter
 * to a multi-member cluster are accepted (peer files checked) and ignored; anything else unknown is an error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "flags.h"
#include "log_msg.h"

/* Weak so that a test binary may define its own; the server uses this one. */
__attribute__((weak)) config g_config;

enum flag_kind {
    FK_STRING,
    FK_UINT,
    FK_BOOL,
    FK_DURATION,
    FK_IGNORE_VALUE,
    FK_IGNORE_BOOL,
    FK_HELP,
    FK_VERSION
};

typedef struct flag_def {
    const char *name;
    enum flag_kind kind;
    size_t offset; /* into config, for FK_STRING / FK_UINT / FK_BOOL / FK_DURATION (a double) */
    int uint_size; /* sizeof the FK_UINT field */
    uint64_t min, max;
} flag_def;

#define STR(f) FK_STRING, offsetof(config, f), 0, 0, 0
#define UINT(f, lo, hi) FK_UINT, offsetof(config, f), (int)sizeof(((config *)0)->f), lo, hi
#define BOOL(f) FK_BOOL, offsetof(config, f), 0, 0, 0
#define DURATION(f) FK_DURATION, offsetof(config, f), 0, 0, 0
#define IGNV FK_IGNORE_VALUE, 0, 0, 0, 0
#define IGNB FK_IGNORE_BOOL, 0, 0, 0, 0

static const flag_def flag_table[] = {
    {"name", STR(name)},
    {"data-dir", STR(data_dir)},
    {"listen-client-urls", STR(listen_client_urls)},
    {"advertise-client-urls", STR(advertise_client_urls)},
    {"listen-metrics-urls", STR(listen_metrics_urls)},
    {"log-level", STR(log_level)},
    {"max-request-bytes", UINT(max_request_bytes, 1, 0x7fffffffu - 512 * 1024)},
    {"max-txn-ops", UINT(max_txn_ops, 1, 1u << 30)},
    {"quota-backend-bytes", UINT(quota_backend_bytes, 0, INT64_MAX)},
    {"unsafe-no-fsync", BOOL(unsafe_no_fsync)},
    {"initial-advertise-peer-urls", STR(initial_advertise_peer_urls)},
    {"restore", STR(restore_file)},
    {"max-connections", UINT(max_connections, 0, 1u << 30)},
    {"max-reply-bytes", UINT(max_reply_bytes, 1u << 20, 0x7fffffffu)},
    {"max-reply-pool-bytes", UINT(max_reply_pool_bytes, 1u << 20, INT64_MAX)},
    {"disk-reserve-bytes", UINT(disk_reserve_bytes, 0, INT64_MAX)},
    {"grpc-keepalive-min-time", DURATION(grpc_keepalive_min_time)},
    {"grpc-keepalive-interval", DURATION(grpc_keepalive_interval)},
    {"grpc-keepalive-timeout", DURATION(grpc_keepalive_timeout)},
    {"experimental-watch-progress-notify-interval", STR(watch_progress_notify_interval)},
    {"auth-token", STR(auth_token)},
    {"auth-token-ttl", UINT(auth_token_ttl, 0, 1u << 30)},
    {"bcrypt-cost", UINT(bcrypt_cost, 0, 1u << 30)},
    {"auto-compaction-mode", STR(auto_compaction_mode)},
    {"auto-compaction-retention", STR(auto_compaction_retention)},
    {"cetcd-auto-compaction-interval", DURATION(auto_compaction_interval)},
    /* client TLS (src/net/tls.c) */
    {"cert-file", STR(cert_file)},
    {"key-file", STR(key_file)},
    {"trusted-ca-file", STR(trusted_ca_file)},
    {"client-crl-file", STR(client_crl_file)},
    {"client-cert-auth", BOOL(client_cert_auth)},
    {"auto-tls", BOOL(auto_tls)},
    {"cipher-suites", STR(cipher_suites)},
    {"tls-min-version", STR(tls_min_version)},
    {"tls-max-version", STR(tls_max_version)},
    {"config-file", STR(config_file)},
    {"logger", STR(logger)},
    {"log-outputs", STR(log_outputs)},
    /* peers and cluster: checked (finish_config), not used by one member */
    {"peer-cert-file", STR(peer_cert_file)},
    {"peer-key-file", STR(peer_key_file)},
    {"peer-trusted-ca-file", STR(peer_trusted_ca_file)},
    {"initial-cluster", STR(initial_cluster)},
    {"initial-cluster-state", STR(initial_cluster_state)},
    {"listen-peer-urls", STR(listen_peer_urls)},
    {"help", FK_HELP, 0, 0, 0, 0},
    {"h", FK_HELP, 0, 0, 0, 0},
    {"version", FK_VERSION, 0, 0, 0, 0},
    /* accepted and ignored: clustering, peers, tuning that has no meaning for one member */
    {"initial-cluster-token", IGNV},
    {"snapshot-count", IGNV},
    {"heartbeat-interval", IGNV},
    {"election-timeout", IGNV},
    {"max-snapshots", IGNV},
    {"max-wals", IGNV},
    {"wal-dir", IGNV},
    {"max-concurrent-streams", IGNV},
    {"metrics", IGNV},
    {"enable-v2", IGNB},
    {"peer-crl-file", IGNV},
    {"peer-cert-allowed-cn", IGNV},
    {"peer-cert-allowed-hostname", IGNV},
    {"client-cert-allowed-hostname", IGNV},
    {"self-signed-cert-validity", IGNV},
    {"listen-client-http-urls", IGNV},
    {"discovery", IGNV},
    {"discovery-srv", IGNV},
    {"discovery-fallback", IGNV},
    {"discovery-proxy", IGNV},
    {"cors", IGNV},
    {"host-whitelist", IGNV},
    {"backend-batch-interval", IGNV},
    {"backend-batch-limit", IGNV},
    {"backend-bbolt-freelist-type", IGNV},
    {"log-rotation-config-json", IGNV},
    {"v2-deprecation", IGNV},
    {"enable-log-rotation", IGNB},
    {"enable-grpc-gateway", IGNB},
    {"force-new-cluster", IGNB},
    {"initial-election-tick-advance", IGNB},
    {"peer-skip-client-san-verification", IGNB},
    {"peer-client-cert-auth", IGNB},
    {"peer-auto-tls", IGNB},
    {"strict-reconfig-check", IGNB},
    {"pre-vote", IGNB},
    {"enable-pprof", IGNB},
    {"socket-reuse-address", IGNB},
    {"socket-reuse-port", IGNB},
};

static void usage(void) {
    printf(
        "Usage: cetcd [flags]\n"
        "  A single-node server for the etcd v3 API.\n\n"
        "  --name NAME                      member name (default \"default\")\n"
        "  --data-dir DIR                   data directory (default \"${name}.etcd\")\n"
        "  --listen-client-urls URLS        comma list of http://host:port (default http://localhost:2379)\n"
        "  --advertise-client-urls URLS     client URLs to advertise (default: the listen URLs)\n"
        "  --listen-metrics-urls URLS       extra listeners for /metrics and /health\n"
        "  --max-request-bytes N            largest request accepted (default 1572864)\n"
        "  --max-txn-ops N                  most operations in one txn (default 128)\n"
        "  --max-reply-bytes N              largest reply results, e.g. an unpaged list (default 67108864)\n"
        "  --max-reply-pool-bytes N         all replies held at once, together (default 536870912)\n"
        "  --disk-reserve-bytes N           refuse writes (NOSPACE) when the data dir's file system has\n"
        "                                   less free; 0 = never (default 67108864)\n"
        "  --quota-backend-bytes N          space quota, 0 = default 2 GiB (default 0)\n"
        "  --unsafe-no-fsync                do not fsync the log (data loss on crash; for tests)\n"
        "  --log-level LEVEL                debug, info, warn, error, panic or fatal (default info)\n"
        "  --config-file F                  etcd's YAML config (flags and ETCD_* are then ignored)\n"
        "  --logger zap                     etcd's JSON log lines (default: plain lines on stderr)\n"
        "  --log-outputs LIST               with zap: stderr, stdout or file paths (default stderr)\n"
        "  --experimental-watch-progress-notify-interval D  progress_notify period, a Go duration (default "
        "10m)\n"
        "  --initial-advertise-peer-urls U  peer URLs reported by MemberList (default "
        "http://localhost:2380)\n"
        "  --restore FILE                   restore a snapshot (from `etcdctl snapshot save` against cetcd)\n"
        "                                   into --data-dir, which must be new or empty, then exit\n"
        "  --max-connections N              client connections at once; more are closed on arrival\n"
        "                                   (cetcd only; default 0 = the descriptor limit minus a reserve,\n"
        "                                   at most 10000)\n"
        "  --grpc-keepalive-min-time D      a client pinging more often gets GOAWAY too_many_pings (default "
        "5s)\n"
        "  --grpc-keepalive-interval D      ping a connection silent this long (default 2h)\n"
        "  --grpc-keepalive-timeout D       close it if nothing answers within this (default 20s)\n"
        "  --auth-token TYPE                auth token kind: simple (the default; jwt is not supported)\n"
        "  --auth-token-ttl N               seconds a simple token lives unused (default 300)\n"
        "  --bcrypt-cost N                  bcrypt cost of password hashes, 4 to 31 (default 10)\n"
        "  --auto-compaction-mode MODE      periodic or revision (default periodic)\n"
        "  --auto-compaction-retention R    0 = off (the default); periodic: hours, or a duration such as\n"
        "                                   30m; revision: how many revisions to keep\n"
        "  --cetcd-auto-compaction-interval D  how often revision mode compacts (cetcd only; default 5m,\n"
        "                                   etcd's fixed period)\n"
        "  --cert-file F, --key-file F      certificate and key of the https:// listeners\n"
        "  --trusted-ca-file F              CA that signs client certificates\n"
        "  --client-cert-auth               refuse clients without a certificate signed by that CA\n"
        "  --client-crl-file F              certificates revoked by the CA (PEM CRL)\n"
        "  --auto-tls                       a self-signed certificate, made at start, when no files\n"
        "  --cipher-suites LIST             TLS 1.2 suites by Go's names (default OpenSSL's)\n"
        "  --tls-min-version V, --tls-max-version V  TLS1.2 or TLS1.3 (default TLS1.2 and no maximum)\n"
        "  Certificate files are read again when they change, checked on each new connection.\n"
        "  --version                        print the version and exit\n"
        "  -h, --help                       print this help and exit\n\n"
        "  Every flag may also be set as an environment variable ETCD_<FLAG> (ETCD_DATA_DIR=...).\n"
        "  Accepted and ignored (meaningless for one member, or not supported yet):\n"
        "  --initial-cluster (one member only) --initial-cluster-state (new) --listen-peer-urls "
        "--snapshot-count\n"
        "  --heartbeat-interval --election-timeout\n"
        "  --enable-v2 --experimental-* --max-snapshots --max-wals --wal-dir --metrics\n"
        "  --max-concurrent-streams --peer-* TLS files (checked readable)\n");
}

static void print_version(void) {
    printf("cetcd Version: %s\netcd API Version: %s\n", CETCD_SELF_VERSION, CETCD_VERSION);
}

static const flag_def *find_flag(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof flag_table / sizeof flag_table[0]; i++) {
        if (strlen(flag_table[i].name) == len && memcmp(flag_table[i].name, name, len) == 0)
            return &flag_table[i];
    }
    return NULL;
}

static bool is_experimental(const char *name, size_t len) {
    static const char prefix[] = "experimental-";
    return len > sizeof prefix - 1 && memcmp(name, prefix, sizeof prefix - 1) == 0;
}

/* Go's strconv.ParseBool, which etcd's bool flags use. */
static int parse_bool(const char *s) {
    static const char *yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0) return 1;
        if (strcmp(s, no[i]) == 0) return 0;
    }
    return -1;
}

static bool parse_uint(const char *s, uint64_t *out) {
    if (!isdigit((unsigned char)s[0])) return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static int bad_value(const char *value, const char *name) {
    fprintf(stderr, "cetcd: invalid value \"%s\" for --%s\n", value, name);
    return 2;
}

/* Stores value into the field of flag f. Returns -1 on success or exit code 2. */
static int set_flag(config *cfg, const flag_def *f, const char *value) {
    char *field = (char *)cfg + f->offset;
    uint64_t v;
    int b;
    switch (f->kind) {
    case FK_STRING:
        *(const char **)field = value;
        return -1;
    case FK_UINT:
        if (!parse_uint(value, &v) || v < f->min || v > f->max) return bad_value(value, f->name);
        if (f->uint_size == sizeof(uint64_t))
            *(uint64_t *)field = v;
        else
            *(size_t *)field = (size_t)v;
        return -1;
    case FK_BOOL:
        if ((b = parse_bool(value)) < 0) return bad_value(value, f->name);
        *(bool *)field = b;
        return -1;
    case FK_DURATION:
        if (!flags_parse_duration(value, (double *)field)) return bad_value(value, f->name);
        return -1;
    case FK_IGNORE_BOOL:
        if (parse_bool(value) < 0) return bad_value(value, f->name);
        return -1;
    default:
        return -1;
    }
}

static bool takes_value(const flag_def *f) {
    return f->kind == FK_STRING || f->kind == FK_UINT || f->kind == FK_DURATION || f->kind == FK_IGNORE_VALUE;
}

/* One argument (and maybe the next). *i is advanced past what was used. Returns -1 or an exit code. */
static int parse_arg(config *cfg, int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    if (arg[0] != '-' || arg[1] == '\0') {
        fprintf(stderr, "cetcd: unexpected argument: %s\n", arg);
        return 2;
    }
    const char *name = arg + (arg[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : NULL;
    const flag_def *f = find_flag(name, name_len);
    if (!f && is_experimental(name, name_len)) {
        /* unknown type: a value with '=', or the next argument unless it looks like a flag */
        if (!value && *i + 1 < argc && argv[*i + 1][0] != '-') (*i)++;
        return -1;
    }
    if (!f) {
        fprintf(stderr, "cetcd: unknown flag: --%.*s\n", (int)name_len, name);
        return 2;
    }
    if (f->kind == FK_HELP) return usage(), 0;
    if (f->kind == FK_VERSION) return print_version(), 0;
    if (!value && takes_value(f)) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "cetcd: flag needs an argument: --%s\n", f->name);
            return 2;
        }
        value = argv[++*i];
    }
    return set_flag(cfg, f, value ? value : "true");
}

/* ETCD_DATA_DIR for "data-dir". */
static void env_name(const char *flag, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "ETCD_%s", flag);
    for (size_t i = 5; i < n && i < cap; i++)
        out[i] = out[i] == '-' ? '_' : (char)toupper((unsigned char)out[i]);
}

static int parse_env(config *cfg) {
    for (size_t i = 0; i < sizeof flag_table / sizeof flag_table[0]; i++) {
        const flag_def *f = &flag_table[i];
        if (f->kind == FK_HELP || f->kind == FK_VERSION) continue;
        char name[96];
        env_name(f->name, name, sizeof name);
        const char *value = getenv(name);
        if (!value) continue;
        int rc = set_flag(cfg, f, value);
        if (rc >= 0) return rc;
    }
    return -1;
}

static void set_defaults(config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "default";
    cfg->listen_client_urls = "http://localhost:2379";
    cfg->log_level = "info";
    cfg->max_request_bytes = 1572864;
    cfg->max_txn_ops = 128;
    cfg->max_reply_bytes = (uint64_t)64 << 20;
    cfg->max_reply_pool_bytes = (uint64_t)512 << 20;
    cfg->disk_reserve_bytes = (uint64_t)64 << 20;
    cfg->quota_backend_bytes = 0;
    cfg->grpc_keepalive_min_time = 5;    /* etcd's defaults */
    cfg->grpc_keepalive_interval = 7200; /* 2h */
    cfg->grpc_keepalive_timeout = 20;
}

/* Every URL of a comma list must parse; *any_tls is set when one is https. Returns -1 or 2. */
static int check_urls(const char *list, const char *flag, bool *any_tls) {
    if (!list) return -1;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        listen_url u;
        char err[200];
        if (!url_parse(p, len, &u, err, sizeof err)) {
            fprintf(stderr, "cetcd: invalid value \"%s\" for --%s: %s\n", list, flag, err);
            return 2;
        }
        if (u.tls) *any_tls = true;
        if (!comma) return -1;
        p = comma + 1;
    }
}

static bool empty(const char *s) {
    return !s || !*s;
}

/* The TLS flags, as etcd checks them; the files themselves are read by src/net/tls.c. */
static int check_tls(config *cfg, bool any_tls) {
    const char *versions[] = {"TLS1.2", "TLS1.3"};
    const char *v[2] = {cfg->tls_min_version, cfg->tls_max_version};
    const char *vflag[2] = {"tls-min-version", "tls-max-version"};
    for (int i = 0; i < 2; i++) {
        if (empty(v[i])) continue;
        if (strcmp(v[i], versions[0]) != 0 && strcmp(v[i], versions[1]) != 0)
            return bad_value(v[i], vflag[i]);
    }
    if (!empty(v[0]) && !empty(v[1]) && strcmp(v[0], v[1]) > 0) {
        fprintf(stderr, "cetcd: --tls-min-version %s is above --tls-max-version %s\n", v[0], v[1]);
        return 2;
    }
    if (!empty(cfg->cipher_suites) && !empty(v[0]) && strcmp(v[0], "TLS1.3") == 0) {
        fprintf(stderr, "cetcd: --cipher-suites cannot be used with --tls-min-version TLS1.3\n");
        return 2;
    }
    if (empty(cfg->cert_file) != empty(cfg->key_file)) {
        fprintf(stderr, "cetcd: --cert-file and --key-file go together\n");
        return 2;
    }
    if (any_tls && empty(cfg->cert_file) && !cfg->auto_tls) {
        fprintf(stderr, "cetcd: an https:// listen URL needs --cert-file and --key-file (or --auto-tls)\n");
        return 2;
    }
    if (cfg->client_cert_auth && empty(cfg->trusted_ca_file) && !cfg->auto_tls) {
        fprintf(stderr, "cetcd: --client-cert-auth needs --trusted-ca-file\n");
        return 2;
    }
    return -1;
}

/* One member: --initial-cluster may name this member only, and the cluster must be new. The peer
 * files are not used, but a missing one fails the start as it would in etcd. */
static int check_cluster(const config *cfg) {
    if (!empty(cfg->initial_cluster_state) && strcmp(cfg->initial_cluster_state, "new") != 0) {
        if (strcmp(cfg->initial_cluster_state, "existing") != 0)
            return bad_value(cfg->initial_cluster_state, "initial-cluster-state");
        fprintf(stderr, "cetcd: --initial-cluster-state=existing: cetcd is one member and joins no cluster "
                        "(to copy a cluster's data into cetcd, use etcdctl make-mirror)\n");
        return 2;
    }
    if (!empty(cfg->initial_cluster)) {
        size_t name_len = strlen(cfg->name);
        for (const char *p = cfg->initial_cluster; p && *p;) {
            const char *comma = strchr(p, ',');
            const char *eq = strchr(p, '=');
            if (!eq || (comma && eq > comma)) return bad_value(cfg->initial_cluster, "initial-cluster");
            if ((size_t)(eq - p) != name_len || memcmp(p, cfg->name, name_len) != 0) {
                fprintf(
                    stderr,
                    "cetcd: --initial-cluster names a member other than --name %s (\"%.*s\"): cetcd is one "
                    "member (to feed a cluster from cetcd or back, use etcdctl make-mirror)\n",
                    cfg->name, (int)(eq - p), p);
                return 2;
            }
            p = comma ? comma + 1 : NULL;
        }
    }
    const char *files[] = {cfg->peer_cert_file, cfg->peer_key_file, cfg->peer_trusted_ca_file};
    const char *fflag[] = {"peer-cert-file", "peer-key-file", "peer-trusted-ca-file"};
    for (int i = 0; i < 3; i++) {
        FILE *f = empty(files[i]) ? NULL : fopen(files[i], "r");
        if (!empty(files[i]) && !f) {
            fprintf(stderr, "cetcd: --%s %s: %s\n", fflag[i], files[i], strerror(errno));
            return 2;
        }
        if (f) fclose(f);
    }
    return -1;
}

static int finish_config(config *cfg) {
    static char data_dir[600];
    if (!cfg->data_dir || !*cfg->data_dir) {
        snprintf(data_dir, sizeof data_dir, "%s.etcd", cfg->name);
        cfg->data_dir = data_dir;
    }
    if (!log_set_level(cfg->log_level)) return bad_value(cfg->log_level, "log-level");
    char err[1200];
    if (!log_set_output(cfg->logger, cfg->log_outputs, err, sizeof err)) {
        fprintf(stderr, "cetcd: %s\n", err);
        return 2;
    }
    if (!cfg->advertise_client_urls || !*cfg->advertise_client_urls)
        cfg->advertise_client_urls = cfg->listen_client_urls;
    if (cfg->listen_metrics_urls && !*cfg->listen_metrics_urls) cfg->listen_metrics_urls = NULL;
    if (cfg->max_reply_pool_bytes < cfg->max_reply_bytes) {
        fprintf(stderr, "cetcd: --max-reply-pool-bytes %llu is below --max-reply-bytes %llu\n",
                (unsigned long long)cfg->max_reply_pool_bytes, (unsigned long long)cfg->max_reply_bytes);
        return 2;
    }
    bool tls = false;
    int rc = check_urls(cfg->listen_client_urls, "listen-client-urls", &tls);
    if (rc < 0) rc = check_urls(cfg->listen_metrics_urls, "listen-metrics-urls", &tls);
    if (rc < 0) rc = check_tls(cfg, tls);
    if (rc < 0) rc = check_cluster(cfg);
    return rc;
}

/* A setting of the config file by its flag's name; keys that are no flag of ours are ignored, as
 * etcd ignores unknown keys. */
static int set_by_name(config *cfg, const char *name, const char *value) {
    const flag_def *f = find_flag(name, strlen(name));
    if (!f || f->kind == FK_HELP || f->kind == FK_VERSION) return -1;
    return set_flag(cfg, f, value);
}

int flags_parse(int argc, char **argv, config *cfg) {
    set_defaults(cfg);
    cfg->auto_compaction_mode = "periodic"; /* etcd's flag default; a config file has none (etcd's too) */
    int rc = parse_env(cfg);
    for (int i = 1; rc < 0 && i < argc; i++)
        rc = parse_arg(cfg, argc, argv, &i);
    if (rc >= 0) return rc;
    if (cfg->config_file && *cfg->config_file) { /* as in etcd: the file alone; flags and env are ignored */
        const char *path = cfg->config_file;
        set_defaults(cfg);
        if ((rc = config_file_load(path, cfg, set_by_name)) >= 0) return rc;
        cfg->config_file = path;
    }
    return finish_config(cfg);
}

/* --- durations --- */

static double unit_seconds(const char **p) {
    static const struct {
        const char *name;
        double secs;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
                 {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(*p, units[i].name, n) == 0) {
            *p += n;
            return units[i].secs;
        }
    }
    return 0;
}

bool flags_parse_duration(const char *s, double *out) {
    double sign = 1, total = 0;
    if (*s == '-' || *s == '+') sign = *s++ == '-' ? -1 : 1;
    if (strcmp(s, "0") == 0) return *out = 0, true;
    if (!*s) return false;
    while (*s) {
        char *end;
        if (!((*s >= '0' && *s <= '9') || *s == '.')) return false;
        double v = strtod(s, &end);
        if (end == s) return false;
        s = end;
        double unit = unit_seconds(&s);
        if (unit == 0) return false;
        total += v * unit;
    }
    *out = sign * total;
    return true;
}

/* --- listen URLs --- */

static bool fail(char *err, size_t errlen, const char *msg) {
    snprintf(err, errlen, "%s", msg);
    return false;
}

static bool copy_part(char *dst, size_t cap, const char *src, size_t len) {
    if (len >= cap) return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

static bool valid_port(const char *port) {
    uint64_t v;
    return parse_uint(port, &v) && v <= 65535 && strspn(port, "0123456789") == strlen(port);
}

bool url_parse(const char *url, size_t len, listen_url *out, char *err, size_t errlen) {
    static const char http[] = "http://", https[] = "https://";
    const char *host;
    out->tls = len >= sizeof https - 1 && strncmp(url, https, sizeof https - 1) == 0;
    if (out->tls)
        host = url + sizeof https - 1;
    else if (len >= sizeof http - 1 && strncmp(url, http, sizeof http - 1) == 0)
        host = url + sizeof http - 1;
    else
        return fail(err, errlen, "URL scheme must be http or https");
    const char *end = url + len;
    if (end > host && end[-1] == '/') end--;
    const char *colon;
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close + 1 >= end || close[1] != ':')
            return fail(err, errlen, "missing port in address");
        if (!copy_part(out->host, sizeof out->host, host + 1, (size_t)(close - host - 1)))
            return fail(err, errlen, "host too long");
        colon = close + 1;
    } else {
        colon = NULL;
        for (const char *p = host; p < end; p++)
            if (*p == ':') colon = p;
        if (!colon) return fail(err, errlen, "missing port in address");
        if (memchr(host, '/', (size_t)(colon - host)))
            return fail(err, errlen, "URL must not contain a path");
        if (!copy_part(out->host, sizeof out->host, host, (size_t)(colon - host)))
            return fail(err, errlen, "host too long");
    }
    if (!copy_part(out->port, sizeof out->port, colon + 1, (size_t)(end - colon - 1)) ||
        !valid_port(out->port))
        return fail(err, errlen, "invalid port");
    return true;
}
