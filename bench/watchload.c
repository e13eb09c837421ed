/* watchload.c: a watch load generator that spends less CPU per event than the server it measures (issue 16):
 * etcd's Go `benchmark watch` costs more per event than cetcd or etcd, so it measured itself. This one opens
 * Watch streams over h2c (nghttp2), counts the events in each WatchResponse, and writes the puts itself,
 * pipelined. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONNS = 512, WINDOW = 16 << 20, READ_BUF = 256 << 10, WRITE_BUF = 64 << 10, KEY_MAX = 200 };

struct opts {
    const char *host, *port, *key;
    int prefix;                   /* watch KEY as a prefix; each put writes its own key under it */
    int conns, streams, watchers; /* watch connections, Watch streams per connection, watchers per stream */
    int put_conns, inflight;      /* put connections, puts in flight on each */
    long puts;
    int value_size;
    double timeout;
    int frame_writes; /* one write() per HTTP/2 frame */
    double rate;      /* puts per second, or 0: as fast as they complete */
};

struct stream {
    struct conn *c;
    int is_put;
    uint8_t *body; /* the request body (gRPC-framed), sent from body_off */
    size_t body_len, body_off;
    int grpc_status; /* -1 until the trailers say */
    uint8_t hdr[5];  /* a Watch stream's reader: the 5-byte gRPC prefix, then the message */
    size_t hdr_got, msg_len, msg_got, msg_cap;
    uint8_t *msg;
};

struct conn {
    int fd, is_put, inflight;
    nghttp2_session *s;
    uint8_t out[WRITE_BUF]; /* frames from nghttp2, written from out_off to out_len */
    size_t out_off, out_len;
};

static struct opts o = {"127.0.0.1", "2379", "watchload/key", 0, 2, 5, 100, 8, 8, 2000, 8, 60, 0, 0};
static struct conn conns[MAX_CONNS];
static int nconns;
static long created, events, responses, expected_events, puts_sent, puts_ok;
static int putting;
static double t_first_put, t_last_event, t_last_put;
static char authority[300];

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "watchload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (events %ld of %ld, watchers created %ld, puts %ld of %ld)\n", events, expected_events,
            created, puts_ok, o.puts);
    va_end(ap);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die("out of memory");
    return p;
}

/* ---- protobuf: writing the two requests, and walking a WatchResponse's top-level fields ---- */

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    for (; v > 0x7F; v >>= 7)
        p[n++] = (uint8_t)(v | 0x80);
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_bytes(uint8_t *p, unsigned field, const void *b, size_t len) {
    size_t n = put_varint(p, field << 3 | 2);
    n += put_varint(p + n, len);
    memcpy(p + n, b, len);
    return n + len;
}

/* grpc_frame: BUF holds the message from offset 5; writes the prefix (uncompressed, big-endian length) */
static size_t grpc_frame(uint8_t *buf, size_t msg_len) {
    buf[0] = 0;
    for (int i = 0; i < 4; i++)
        buf[1 + i] = (uint8_t)(msg_len >> (24 - 8 * i));
    return msg_len + 5;
}

/* watch_create: WatchRequest{create_request(1): WatchCreateRequest{key(1), range_end(2)}} at OUT */
static size_t watch_create(uint8_t *out) {
    uint8_t inner[2 * KEY_MAX + 16], end[KEY_MAX];
    size_t klen = strlen(o.key), n = put_bytes(inner, 1, o.key, klen);
    if (o.prefix) { /* the prefix's range end: the key with its last byte below 0xff raised by one */
        memcpy(end, o.key, klen);
        size_t e = klen;
        while (e > 0 && end[e - 1] == 0xff)
            e--;
        assert(e > 0);
        end[e - 1]++;
        n += put_bytes(inner + n, 2, end, e);
    }
    return grpc_frame(out, put_bytes(out + 5, 1, inner, n));
}

/* put_request: PutRequest{key(1), value(2)}, gRPC-framed, in a new buffer; with -p each put has its own key
 */
static uint8_t *put_request(long seq, size_t *len) {
    char key[KEY_MAX + 24];
    int klen =
        o.prefix ? snprintf(key, sizeof key, "%s%010ld", o.key, seq) : snprintf(key, sizeof key, "%s", o.key);
    static uint8_t *val;
    if (!val) val = memset(xmalloc((size_t)o.value_size + 1), 'v', (size_t)o.value_size);
    uint8_t *buf = xmalloc(5 + (size_t)klen + (size_t)o.value_size + 32);
    size_t n = put_bytes(buf + 5, 1, key, (size_t)klen);
    n += put_bytes(buf + 5 + n, 2, val, (size_t)o.value_size);
    *len = grpc_frame(buf, n);
    return buf;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* skip_field: past one field's value of wire type WT; its varint value (wire type 0) in *V */
static int skip_field(const uint8_t **p, const uint8_t *end, unsigned wt, uint64_t *v) {
    size_t n;
    *v = 0;
    switch (wt) {
    case 0:
        return get_varint(p, end, v);
    case 1:
        n = 8;
        break;
    case 5:
        n = 4;
        break;
    case 2:
        if (get_varint(p, end, v) < 0) return -1;
        n = (size_t)*v;
        break;
    default:
        return -1;
    }
    if ((size_t)(end - *p) < n) return -1;
    *p += n;
    return 0;
}

/* on_watch_response: counts events(11), created(3); canceled(4) ends the run */
static void on_watch_response(const uint8_t *p, size_t len) {
    const uint8_t *end = p + len;
    long n = 0;
    while (p < end) {
        uint64_t tag, v;
        if (get_varint(&p, end, &tag) < 0 || skip_field(&p, end, tag & 7, &v) < 0)
            die("malformed WatchResponse (%zu bytes)", len);
        unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
        if (field == 11 && wt == 2)
            n++;
        else if (field == 3 && wt == 0 && v)
            created++;
        else if (field == 4 && wt == 0 && v)
            die("a watcher was canceled");
    }
    if (n == 0) return;
    events += n, responses++;
    t_last_event = now();
    if (events > expected_events) die("more events than expected");
}

/* ---- nghttp2 callbacks ---- */

/* watch_feed: the gRPC messages of a Watch stream, which can span DATA frames; a whole one is read in place
 */
static void watch_feed(struct stream *st, const uint8_t *d, size_t len) {
    while (len > 0) {
        if (st->hdr_got < 5) {
            size_t n = len < 5 - st->hdr_got ? len : 5 - st->hdr_got;
            memcpy(st->hdr + st->hdr_got, d, n);
            st->hdr_got += n, d += n, len -= n;
            if (st->hdr_got < 5) return;
            if (st->hdr[0] != 0) die("a compressed gRPC message");
            st->msg_len =
                (size_t)st->hdr[1] << 24 | (size_t)st->hdr[2] << 16 | (size_t)st->hdr[3] << 8 | st->hdr[4];
            st->msg_got = 0;
        }
        if (st->msg_got == 0 && len >= st->msg_len) {
            on_watch_response(d, st->msg_len);
            d += st->msg_len, len -= st->msg_len, st->hdr_got = 0;
            continue;
        }
        if (st->msg_cap < st->msg_len) {
            st->msg = realloc(st->msg, st->msg_len);
            if (!st->msg) die("out of memory");
            st->msg_cap = st->msg_len;
        }
        size_t n = len < st->msg_len - st->msg_got ? len : st->msg_len - st->msg_got;
        memcpy(st->msg + st->msg_got, d, n);
        st->msg_got += n, d += n, len -= n;
        if (st->msg_got < st->msg_len) return;
        on_watch_response(st->msg, st->msg_len);
        st->hdr_got = 0;
    }
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *ud) {
    (void)flags, (void)ud;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st && !st->is_put) watch_feed(st, d, len);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
    (void)flags, (void)ud;
    struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st) return 0;
    if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) st->grpc_status = atoi((const char *)value);
    if (!st->is_put && nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
        fprintf(stderr, "watchload: watch stream grpc-message: %.*s\n", (int)vlen, value);
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud) {
    (void)ud;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st) return 0;
    if (!st->is_put) die("a Watch stream closed: grpc-status %d, h2 error %u", st->grpc_status, err);
    if (err != 0 || st->grpc_status != 0)
        die("a put failed: grpc-status %d, h2 error %u", st->grpc_status, err);
    puts_ok++;
    t_last_put = now();
    st->c->inflight--;
    free(st->body);
    free(st);
    return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
    (void)s, (void)id, (void)ud;
    struct stream *st = src->ptr;
    size_t n = st->body_len - st->body_off;
    if (n > len) n = len;
    memcpy(out, st->body + st->body_off, n);
    st->body_off += n;
    if (st->body_off == st->body_len) {
        if (st->is_put)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
            return NGHTTP2_ERR_DEFERRED; /* a Watch stream stays open */
    }
    return (ssize_t)n;
}

/* on_send: nghttp2's frames into the connection's buffer, so that one write carries many of them */
static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud) {
    (void)s, (void)flags;
    struct conn *c = ud;
    size_t room = WRITE_BUF - c->out_len;
    if (room == 0 || (o.frame_writes && c->out_len > 0)) return NGHTTP2_ERR_WOULDBLOCK;
    if (len > room) len = room;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return (ssize_t)len;
}

/* ---- connections ---- */

static int dial(void) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(o.host, o.port, &hints, &ai), one = 1;
    if (rc != 0) die("%s:%s: %s", o.host, o.port, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("connect %s:%s: %s", o.host, o.port, strerror(errno));
    freeaddrinfo(ai);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static struct conn *conn_open(int is_put) {
    if (nconns == MAX_CONNS) die("more than %d connections", MAX_CONNS);
    struct conn *c = &conns[nconns++];
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    c->fd = dial(), c->is_put = is_put;
    if (nghttp2_session_client_new(&c->s, cb, c) != 0) die("nghttp2_session_client_new");
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW}};
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, set, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, WINDOW) != 0)
        die("nghttp2 settings");
    return c;
}

#define NV(n, v)                                                                                             \
    { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static void submit(struct conn *c, const char *path, struct stream *st) {
    nghttp2_nv h[] = {NV(":method", "POST"),
                      NV(":scheme", "http"),
                      NV(":authority", authority),
                      NV(":path", path),
                      NV("content-type", "application/grpc"),
                      NV("te", "trailers")};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read};
    st->c = c, st->grpc_status = -1;
    if (nghttp2_submit_request(c->s, NULL, h, sizeof h / sizeof h[0], &dp, st) < 0)
        die("nghttp2_submit_request");
}

/* open_watch: one Watch stream on C carrying o.watchers create requests */
static void open_watch(struct conn *c) {
    struct stream *st = calloc(1, sizeof *st);
    uint8_t one[2 * KEY_MAX + 32];
    size_t n = watch_create(one);
    if (!st) die("out of memory");
    st->body = xmalloc(n * (size_t)o.watchers);
    for (int i = 0; i < o.watchers; i++)
        memcpy(st->body + n * (size_t)i, one, n);
    st->body_len = n * (size_t)o.watchers;
    submit(c, "/etcdserverpb.Watch/Watch", st);
}

/* puts_due: how many puts may have been sent by now: all of them, or with -r as many as the rate allows */
static long puts_due(void) {
    if (o.rate <= 0) return o.puts;
    long due = 1 + (long)((now() - t_first_put) * o.rate);
    return due < o.puts ? due : o.puts;
}

static void top_up_puts(struct conn *c) {
    long due = putting && c->is_put ? puts_due() : 0;
    while (c->inflight < o.inflight && puts_sent < due) {
        struct stream *st = calloc(1, sizeof *st);
        if (!st) die("out of memory");
        st->is_put = 1;
        st->body = put_request(puts_sent++, &st->body_len);
        submit(c, "/etcdserverpb.KV/Put", st);
        c->inflight++;
    }
}

static void conn_flush(struct conn *c) {
    for (;;) {
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            int rc = nghttp2_session_send(c->s);
            if (rc != 0) die("nghttp2_session_send: %s", nghttp2_strerror(rc));
            if (c->out_len == 0) return;
        }
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (w < 0) die("write: %s", strerror(errno));
        c->out_off += (size_t)w;
    }
}

static void conn_read(struct conn *c) {
    static uint8_t buf[READ_BUF];
    for (int i = 0; i < 4; i++) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0)
            die("the server closed a connection%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        ssize_t r = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
        if (r < 0) die("nghttp2_session_mem_recv: %s", nghttp2_strerror((int)r));
        if (n < (ssize_t)sizeof buf) return;
    }
}

/* run_until: the event loop over every connection until DONE() or the deadline */
static void run_until(int (*done)(void), double deadline, const char *what) {
    struct pollfd pfd[MAX_CONNS];
    while (!done()) {
        if (now() > deadline) die("timed out waiting for %s", what);
        for (int i = 0; i < nconns; i++) {
            top_up_puts(&conns[i]);
            conn_flush(&conns[i]);
            pfd[i].fd = conns[i].fd;
            pfd[i].events = POLLIN | (conns[i].out_off < conns[i].out_len ? POLLOUT : 0);
        }
        if (poll(pfd, (nfds_t)nconns, putting && o.rate > 0 ? 1 : 100) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        for (int i = 0; i < nconns; i++)
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) conn_read(&conns[i]);
    }
}

static int all_created(void) {
    return created == (long)o.conns * o.streams * o.watchers;
}

static int all_received(void) {
    return events == expected_events && puts_ok == o.puts;
}

static void usage(void) {
    fprintf(
        stderr,
        "usage: watchload [-h host] [-P port] [-k key] [-p] [-c watch-conns] [-s streams-per-conn]\n"
        "  [-w watchers-per-stream] [-n puts] [-C put-conns] [-m puts-in-flight-per-conn]\n"
        "  [-v value-bytes] [-r puts-per-second] [-t timeout-s] [-F: one write per HTTP/2 frame, as some "
        "clients do]\n"
        "Watches KEY (with -p every key under it) from c*s*w watchers, puts n times (with -p to n keys\n"
        "under KEY), and waits for every event: n*c*s*w, or n with -p; prints events/s and its own CPU\n");
    exit(2);
}

/* the options: a letter, how to read its argument (s string, i int, l long, d double, - none: sets 1) */
static const struct {
    char ch, kind;
    void *p;
} opt_refs[] = {{'h', 's', &o.host},         {'P', 's', &o.port},       {'k', 's', &o.key},
                {'p', '-', &o.prefix},       {'c', 'i', &o.conns},      {'s', 'i', &o.streams},
                {'w', 'i', &o.watchers},     {'n', 'l', &o.puts},       {'C', 'i', &o.put_conns},
                {'m', 'i', &o.inflight},     {'v', 'i', &o.value_size}, {'t', 'd', &o.timeout},
                {'F', '-', &o.frame_writes}, {'r', 'd', &o.rate}};

static void set_opt(int ch, const char *arg) {
    for (size_t i = 0; i < sizeof opt_refs / sizeof opt_refs[0]; i++) {
        if (opt_refs[i].ch != ch) continue;
        void *p = opt_refs[i].p;
        switch (opt_refs[i].kind) {
        case 's':
            *(const char **)p = arg;
            return;
        case 'i':
            *(int *)p = atoi(arg);
            return;
        case 'l':
            *(long *)p = atol(arg);
            return;
        case 'd':
            *(double *)p = atof(arg);
            return;
        default:
            *(int *)p = 1;
            return;
        }
    }
    usage();
}

static void parse_opts(int argc, char **argv) {
    int ch;
    while ((ch = getopt(argc, argv, "h:P:k:pc:s:w:n:C:m:v:t:Fr:")) != -1)
        set_opt(ch, optarg);
    if (optind != argc || o.conns < 1 || o.streams < 1 || o.watchers < 1 || o.puts < 1 || o.put_conns < 1 ||
        o.inflight < 1 || o.value_size < 0 || strlen(o.key) == 0 || strlen(o.key) > KEY_MAX)
        usage();
    snprintf(authority, sizeof authority, "%s:%s", o.host, o.port);
    expected_events = o.puts * (o.prefix ? 1 : (long)o.conns * o.streams * o.watchers);
}

int main(int argc, char **argv) {
    parse_opts(argc, argv);
    double deadline = now() + o.timeout;
    for (int i = 0; i < o.conns; i++) {
        struct conn *c = conn_open(0);
        for (int j = 0; j < o.streams; j++)
            open_watch(c);
    }
    for (int i = 0; i < o.put_conns; i++)
        conn_open(1);
    run_until(all_created, deadline, "the watchers to be created");
    putting = 1, t_first_put = now();
    run_until(all_received, deadline, "the events");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double secs = t_last_event - t_first_put, cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf(
        "events=%ld watchers=%ld puts=%ld seconds=%.6f events_per_sec=%.0f cpu_s=%.6f cpu_us_per_event=%.4f "
        "puts_seconds=%.6f responses=%ld\n",
        events, created, puts_ok, secs, (double)events / secs, cpu, cpu / (double)events * 1e6,
        t_last_put - t_first_put, responses);
    return 0;
}
