/* fuzz_server.c: runs the real server for the network fuzz targets (fuzz_server.h). One end of a
 * socketpair becomes a client connection through conn_new, as an accepted socket does: the same
 * detection, HTTP/2 or HTTP/1.1, commit rule, output holding, deadlines and closing as in the server. */
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alarms.h"
#include "auth_codec.h"
#include "auth_hash.h"
#include "commit.h"
#include "compaction_driver.h"
#include "config.h"
#include "conn_internal.h"
#include "flags.h"
#include "fuzz_server.h"
#include "lease_timers.h"
#include "rpc.h"
#include "server.h"
#include "store.h"
#include "svc_auth.h"
#include "svc_lease.h"
#include "svc_watch.h"

#define FZ_MAX_TURNS 200000         /* loop turns one input may take before it counts as a hang */
#define FZ_SEGMENT_BYTES (64 << 10) /* small segments, so that inputs make the log roll */
#define FZ_QUOTA_BYTES (256 << 10)  /* small quota, so that inputs can reach NOSPACE */
#define H2_MAX_FRAME 16384          /* HTTP/2's default SETTINGS_MAX_FRAME_SIZE */
#define FZ_LEASE_ID 0x1000
#define FZ_LEASE_TTL 1000000

/* The paths of src/net/methods.c's table, in its order (the Makefile extracts them into
 * fz_methods.h): inputs name a method by its index, so rows added at the end keep every seed's meaning. */
const char *const fz_methods[] = {
#include "fz_methods.h"
};
const size_t fz_n_methods = sizeof fz_methods / sizeof fz_methods[0];

int fz_method_is_stream(size_t i) {
    const rpc_method *m = rpc_find_method(fz_methods[i], strlen(fz_methods[i]));
    return m && m->kind == RPC_STREAM;
}

/* ---------- the store: a temp dir, a pristine data set, and putting it back ---------- */

static char fz_root[256], fz_data[300];
static struct ev_loop *fz_loop;
static mvcc_options fz_opts;

typedef struct fz_file {
    char name[64];
    uint8_t *data;
    size_t len;
} fz_file;
static fz_file *pristine;
static size_t n_pristine;

typedef struct fz_state {
    int64_t rev, compact_rev;
    uint64_t db_size, keys;
    size_t leases, timers;
} fz_state;
static fz_state pristine_state;
static bool trace; /* FUZZ_TRACE set: one line per connection on stderr */

/* The revision hook watch_hub.c installs (mvcc_on_revision): kept, to install on every new store. */
static mv_revision_hook hub_hook;
static void *hub_hook_ctx;
void __real_mvcc_on_revision(mvcc *s, mv_revision_hook fn, void *ctx);
void __wrap_mvcc_on_revision(mvcc *s, mv_revision_hook fn, void *ctx) {
    hub_hook = fn;
    hub_hook_ctx = ctx;
    __real_mvcc_on_revision(s, fn, ctx);
}

static void die(const char *what) {
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

static void clear_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void remove_root(void) {
    clear_dir(fz_data);
    rmdir(fz_data);
    rmdir(fz_root);
}

static mvcc *open_or_die(void) {
    char err[512] = "";
    mvcc *s = mvcc_open(fz_data, &fz_opts, err, sizeof err);
    if (!s) {
        fprintf(stderr, "fuzz: cannot open the store: %s\n", err);
        abort();
    }
    return s;
}

static mv_bytes B(const char *s) {
    return (mv_bytes){(const uint8_t *)s, strlen(s)};
}

static void put(mvcc *s, const char *k, const char *v, int64_t lease) {
    mv_put_req req = {.key = B(k), .value = B(v), .lease = lease};
    mv_result res = {0};
    mvcc_put(s, &req, &res);
    if (res.err != MV_OK) die("fixture put failed");
    mv_result_free(&res);
}

/* A few keys with history, a deletion, a lease with keys and a compaction: what the captured etcdctl
 * requests name ("foo", "foo/..."), so that they find something. */
static void write_fixture(mvcc *s) {
    put(s, "foo", "bar", 0);
    put(s, "foo/a", "1", 0);
    put(s, "foo/b", "2", 0);
    put(s, "zoo", "z", 0);
    put(s, "foo", "bar2", 0);
    if (mvcc_lease_grant(s, FZ_LEASE_ID, FZ_LEASE_TTL) != MV_OK) die("fixture lease failed");
    put(s, "lease/key", "v", FZ_LEASE_ID);
    mv_delete_req del = {.key = B("zoo")};
    mv_result res = {0};
    mvcc_delete(s, &del, &res);
    mv_result_free(&res);
    int64_t hdr;
    if (mvcc_compact(s, 3, &hdr) != MV_OK) die("fixture compact failed");
    put(s, "foo/c", "3", 0);
    if (mvcc_commit(s) != 0) die("fixture commit failed");
}

static void save_pristine(void) {
    DIR *d = opendir(fz_data);
    if (!d) die("opendir");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", fz_data, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) die("fopen");
        pristine = realloc(pristine, (n_pristine + 1) * sizeof *pristine);
        fz_file *pf = &pristine[n_pristine++];
        memset(pf, 0, sizeof *pf);
        snprintf(pf->name, sizeof pf->name, "%s", e->d_name);
        fseek(f, 0, SEEK_END);
        pf->len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        pf->data = malloc(pf->len ? pf->len : 1);
        if (pf->len && fread(pf->data, 1, pf->len, f) != pf->len) die("fread");
        fclose(f);
    }
    closedir(d);
}

static void restore_pristine(void) {
    clear_dir(fz_data);
    for (size_t i = 0; i < n_pristine; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", fz_data, pristine[i].name);
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(pristine[i].data, 1, pristine[i].len, f) != pristine[i].len) die("fwrite");
        fclose(f);
    }
}

static fz_state state_now(void) {
    return (fz_state){mvcc_revision(g_store),  mvcc_compact_revision(g_store), mvcc_db_size(g_store),
                      mvcc_key_count(g_store), mvcc_lease_count(g_store),      lease_timers_count()};
}

static bool state_changed(void) {
    fz_state now = state_now();
    if (memcmp(&now, &pristine_state, sizeof now) != 0) return true;
    if (mvcc_has_batch(g_store) || mvcc_log_compaction_running(g_store)) return true;
    for (int t = 1; t < ALARM_TYPES; t++)
        if (alarm_is_active(t)) return true;
    return false;
}

/* The store as write_fixture left it, with no alarm and no lease deadline but the fixture's. */
static void reset_store(void) {
    mvcc_close(g_store);
    restore_pristine();
    g_store = open_or_die();
    if (hub_hook) __real_mvcc_on_revision(g_store, hub_hook, hub_hook_ctx);
    char why[256];
    if (!auth_load(why, sizeof why)) die(why); /* the Auth model, from the fresh store */
    lease_timers_reset();
    lease_service_start(fz_loop);
    for (int t = 1; t < ALARM_TYPES; t++)
        if (alarm_is_active(t)) alarm_deactivate(t, alarm_member(t));
}

void fz_server_init(void) {
    if (fz_loop) return;
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz_root, sizeof fz_root, "%s/cetcd-fuzz-XXXXXX", tmp);
    if (!mkdtemp(fz_root)) die("mkdtemp");
    snprintf(fz_data, sizeof fz_data, "%s/data", fz_root);
    atexit(remove_root);

    trace = getenv("FUZZ_TRACE") != NULL;
    setenv("ETCD_BCRYPT_COST", "4", 1); /* bcrypt's cheapest: a password costs ~1 ms, not ~100 */
    const char *level = getenv("FUZZ_LOG_LEVEL");
    char *argv[] = {"cetcd",
                    "--data-dir",
                    fz_data,
                    "--unsafe-no-fsync",
                    "--log-level",
                    (char *)(level ? level : "error"),
                    "--listen-client-urls",
                    "http://127.0.0.1:1",
                    NULL};
    if (flags_parse(8, argv, &g_config) >= 0) die("flags");
    g_config.member_id = 0x8e9e05c52164694dull;
    g_config.cluster_id = 0xcdf818194e3a8c32ull;
    g_config.raft_term = 2;
    g_config.quota_backend_bytes = FZ_QUOTA_BYTES;
    fz_opts = (mvcc_options){.fsync = false,
                             .quota_bytes = FZ_QUOTA_BYTES,
                             .max_txn_ops = g_config.max_txn_ops,
                             .segment_bytes = FZ_SEGMENT_BYTES};

    for (size_t i = 0; i < fz_n_methods; i++)
        if (!rpc_find_method(fz_methods[i], strlen(fz_methods[i])))
            die("fz_methods.h names a path the method table does not serve: rebuild it");

    fz_loop = ev_default_loop(EVFLAG_AUTO);
    if (!fz_loop) die("ev_default_loop");
    mvcc *s = open_or_die();
    write_fixture(s);
    mvcc_close(s);
    save_pristine();
    g_store = open_or_die();
    watch_init();
    auth_service_start(fz_loop);
    commit_start(fz_loop, &(commit_hooks){.flush = server_flush, .durable = server_release_durable});
    lease_service_start(fz_loop);
    compaction_driver_start(fz_loop);
    pristine_state = state_now();
}

/* ---------- one connection ---------- */

/* Reads and drops what the server sent. Returns the byte count, or -1 once the server has closed. */
static long drain(int fd) {
    static uint8_t buf[1 << 16];
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            total += n;
            continue;
        }
        if (n == 0) return -1;
        if (errno == EINTR) continue;
        return total; /* EAGAIN */
    }
}

/* The client's end is watched on the server's loop, so that a loop turn that waits wakes up for
 * the server's output and for its closing the connection. */
static struct {
    ev_io io;
    long got, total;
    bool closed;
} client;

static void on_client_readable(EV_P_ ev_io *w, int revents) {
    (void)revents;
    long n = drain(w->fd);
    if (n >= 0) {
        client.got += n;
        client.total += n;
        return;
    }
    client.closed = true;
    ev_io_stop(EV_A_ w);
}

/* Work the server does on its own timers or threads after a request: wait for it, the loop blocking. */
static bool server_busy(void) {
    return mvcc_log_compaction_running(g_store) || auth_hash_pending() > 0;
}

static void turn(int flags, int *turns, const char *hang) {
    ev_run(fz_loop, flags);
    if (++*turns > FZ_MAX_TURNS) die(hang);
}

void fz_serve(const uint8_t *data, size_t len, size_t chunk) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    conn_new(sv[0]);
    client.closed = false;
    client.total = 0;
    ev_io_init(&client.io, on_client_readable, sv[1], EV_READ);
    ev_io_start(fz_loop, &client.io);
    size_t off = 0;
    int turns = 0;
    /* the input, chunk by chunk, a loop turn after each */
    while (off < len && !client.closed) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        ssize_t w = write(sv[1], data + off, n);
        if (w > 0) off += (size_t)w;
        if (w < 0 && errno == EPIPE) break;
        turn(EVRUN_NOWAIT, &turns, "hang: the server never read the whole input");
    }
    /* until the server is quiet: no output for two turns and nothing running on its timers */
    for (int idle = 0; !client.closed && idle < 2;) {
        client.got = 0;
        turn(server_busy() ? EVRUN_ONCE : EVRUN_NOWAIT, &turns, "hang: the server never went quiet");
        idle = client.got == 0 && !server_busy() ? idle + 1 : 0;
    }
    /* the client is done: the server must close once its replies are read */
    shutdown(sv[1], SHUT_WR);
    while (!client.closed)
        turn(EVRUN_ONCE, &turns, "hang: the server never closed the connection");
    ev_io_stop(fz_loop, &client.io);
    close(sv[1]);
    /* a compaction run a Defragment started goes on after its client left */
    while (server_busy())
        turn(EVRUN_ONCE, &turns, "hang: log compaction never finished");
    if (conn_count() != 0) die("a connection outlived its socket");
    if (trace)
        fprintf(stderr, "fuzz: sent %zu bytes, received %ld, %d loop turns\n", off, client.total, turns);
    fz_finish_input();
}

void fz_finish_input(void) {
    server_flush(commit_batch);
    commit_batch();
    if (state_changed()) reset_store();
}

/* ---------- building a gRPC call ---------- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} wbuf;

static void put_bytes(wbuf *b, const void *d, size_t n) {
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put_frame_head(wbuf *b, size_t len, uint8_t type, uint8_t flags, uint32_t stream) {
    uint8_t h[9] = {
        (uint8_t)(len >> 16),    (uint8_t)(len >> 8),     (uint8_t)len,           type,           flags,
        (uint8_t)(stream >> 24), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
    put_bytes(b, h, sizeof h);
}

/* HPACK: a literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2). */
static void put_hpack_int(wbuf *b, size_t v) {
    if (v < 127) {
        uint8_t c = (uint8_t)v;
        return put_bytes(b, &c, 1);
    }
    uint8_t c = 127;
    put_bytes(b, &c, 1);
    for (v -= 127; v >= 128; v >>= 7) {
        c = (uint8_t)(v | 0x80);
        put_bytes(b, &c, 1);
    }
    c = (uint8_t)v;
    put_bytes(b, &c, 1);
}

static void put_header(wbuf *b, const char *name, size_t nlen, const char *value, size_t vlen) {
    uint8_t zero = 0;
    put_bytes(b, &zero, 1);
    put_hpack_int(b, nlen);
    put_bytes(b, name, nlen);
    put_hpack_int(b, vlen);
    put_bytes(b, value, vlen);
}

size_t fz_grpc_request(uint8_t *out, size_t cap, const char *path, const char *extra, size_t extra_len,
                       const uint8_t *body, size_t body_len, size_t chunk, int end_stream) {
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    wbuf b = {out, 0, cap, false};
    put_bytes(&b, preface, sizeof preface - 1);
    put_frame_head(&b, 0, 4 /* SETTINGS */, 0, 0);
    /* the header block, built after the frame head's place is kept */
    uint8_t block[4096];
    wbuf hb = {block, 0, sizeof block, false};
    static const struct {
        const char *n, *v;
    } fixed[] = {{":method", "POST"},
                 {":scheme", "http"},
                 {":authority", "127.0.0.1"},
                 {"content-type", "application/grpc"},
                 {"te", "trailers"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        put_header(&hb, fixed[i].n, strlen(fixed[i].n), fixed[i].v, strlen(fixed[i].v));
    put_header(&hb, ":path", 5, path, strlen(path));
    for (size_t i = 0; extra && i < extra_len;) { /* "name\0value\0" pairs */
        const char *n = extra + i;
        size_t nl = strnlen(n, extra_len - i);
        if (i + nl + 1 >= extra_len) break;
        const char *v = n + nl + 1;
        size_t vl = strnlen(v, extra_len - i - nl - 1);
        put_header(&hb, n, nl, v, vl);
        i += nl + vl + 2;
    }
    if (hb.overflow) return 0;
    bool no_body = body_len == 0 && end_stream;
    put_frame_head(&b, hb.len, 1 /* HEADERS */, 0x4 | (no_body ? 0x1 : 0), 1);
    put_bytes(&b, block, hb.len);
    if (chunk == 0 || chunk > H2_MAX_FRAME) chunk = H2_MAX_FRAME; /* the server's SETTINGS_MAX_FRAME_SIZE */
    if (!no_body) {
        size_t off = 0;
        do {
            size_t n = chunk && chunk < body_len - off ? chunk : body_len - off;
            bool last = off + n == body_len;
            put_frame_head(&b, n, 0 /* DATA */, last && end_stream ? 0x1 : 0, 1);
            put_bytes(&b, body + off, n);
            off += n;
        } while (off < body_len);
    }
    return b.overflow ? 0 : b.len;
}
