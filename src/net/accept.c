/* accept.c: the listening sockets and who gets in. Running out of descriptors must never stop the
 * server nor spin the loop, so a few spare descriptors are kept: one to accept and close the newest
 * connection at EMFILE, all for the log's files; and --max-connections refuses connections the same
 * way before descriptors run out. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "conn_internal.h"
#include "flags.h"
#include "log_msg.h"
#include "server.h"
#include "tls.h"

#define ACCEPT_BATCH 64            /* accepts per readable event, so one listener cannot hog the loop */
#define BACKOFF_FIRST_SECONDS 0.05 /* pause of a listener whose accept fails with nothing to shed */
#define BACKOFF_MAX_SECONDS 1.0
#define LOG_EVERY_SECONDS 10.0 /* at most one line about refused connections this often */
#define SPARE_FDS 4 /* a log compaction opens a new segment and a new MANIFEST before closing old ones */

typedef struct listener {
    ev_io io;
    ev_timer retry; /* restarts io after a pause */
    double backoff; /* the next pause; doubles while accept keeps failing */
    int fd;
    bool tls, metrics_only; /* https://; a --listen-metrics-urls listener */
    struct listener *next;
} listener;

static listener *listeners;
/* /dev/null, closed when a descriptor is needed at EMFILE; -1 where one is in use */
static int spare[SPARE_FDS] = {-1, -1, -1, -1};

/* Refused connections, reported at most once per LOG_EVERY_SECONDS with a count. */
static struct {
    uint64_t count;     /* refused since the last message */
    bool episode;       /* refusing since the last connection let in */
    ev_tstamp last_log; /* 0: never */
} refusals;

/* --- the spare descriptor --- */

void accept_reserve_refill(void) {
    for (int i = 0; i < SPARE_FDS; i++)
        if (spare[i] < 0 && (spare[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return;
}

bool server_release_reserve(void) {
    for (int i = SPARE_FDS - 1; i >= 0; i--) {
        if (spare[i] < 0) continue;
        close(spare[i]);
        spare[i] = -1;
        return true;
    }
    return false;
}

/* --- refusals --- */

static bool may_log(void) {
    ev_tstamp now = ev_now(EV_DEFAULT);
    if (refusals.last_log != 0 && now - refusals.last_log < LOG_EVERY_SECONDS) return false;
    refusals.last_log = now;
    return true;
}

static void describe_fd_limit(char *out, size_t cap) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        snprintf(out, cap, " (descriptor limit %llu)", (unsigned long long)rl.rlim_cur);
    else
        out[0] = '\0';
}

/* One more connection closed at once; why names the cause for the log. */
static void note_refused(const char *why, bool fd_shortage) {
    refusals.count++;
    refusals.episode = true;
    if (!may_log()) return;
    char limit[64] = "";
    if (fd_shortage) describe_fd_limit(limit, sizeof limit);
    log_msg(LOG_WARN, "%s%s: closing new connections at once (%llu refused since the last message)", why,
            limit, (unsigned long long)refusals.count);
    refusals.count = 0;
}

static void note_admitted(void) {
    if (!refusals.episode) return;
    refusals.episode = false;
    if (!may_log()) return;
    log_msg(LOG_INFO, "accepting new connections again (%llu refused since the last message)",
            (unsigned long long)refusals.count);
    refusals.count = 0;
}

/* --- accepting --- */

static void admit(listener *l, int fd) {
    l->backoff = BACKOFF_FIRST_SECONDS;
    if (g_config.max_connections && conn_count() >= g_config.max_connections) {
        close(fd);
        return note_refused("connection limit reached (--max-connections)", false);
    }
    note_admitted();
    conn_new_on(fd, l->tls, l->metrics_only);
}

/* At EMFILE: frees a spare descriptor, accepts the newest connection and closes it, so that its
 * client sees a clean close instead of waiting in the backlog. 1: one shed, 0: none waiting, -1: the
 * spare is gone or did not help (the caller pauses the listener). */
static int shed_one(listener *l, int why) {
    if (!server_release_reserve()) return -1;
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) close(fd);
    accept_reserve_refill();
    if (fd >= 0) {
        note_refused(strerror(why), true);
        return 1;
    }
    return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

/* Stops the listener for a while; the timer is re-armed each time, so a pause is never skipped. */
static void pause_listener(listener *l, int err) {
    if (may_log()) {
        char limit[64] = "";
        if (err == EMFILE || err == ENFILE) describe_fd_limit(limit, sizeof limit);
        log_msg(LOG_WARN, "accept: %s%s; new connections wait %.2f s", strerror(err), limit, l->backoff);
    }
    ev_io_stop(EV_DEFAULT_ & l->io);
    ev_timer_stop(EV_DEFAULT_ & l->retry);
    ev_timer_set(&l->retry, l->backoff, 0.);
    ev_timer_start(EV_DEFAULT_ & l->retry);
    l->backoff = l->backoff * 2 < BACKOFF_MAX_SECONDS ? l->backoff * 2 : BACKOFF_MAX_SECONDS;
}

static void on_accept_retry(EV_P_ ev_timer *t, int revents) {
    (void)revents;
    listener *l = t->data;
    accept_reserve_refill();
    ev_io_start(EV_A_ & l->io);
}

/* accept(2) errors that belong to one connection (the man page: treat like EAGAIN and retry). */
static bool transient_error(int err) {
    return err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM || err == ENETDOWN ||
           err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH ||
           err == EOPNOTSUPP || err == ENETUNREACH;
}

static void on_acceptable(EV_P_ ev_io *w, int revents) {
    (void)revents, (void)EV_A;
    listener *l = w->data;
    accept_reserve_refill();
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(l, fd);
            continue;
        }
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (transient_error(err)) continue;
        int shed = err == EMFILE || err == ENFILE ? shed_one(l, err) : -1;
        if (shed == 0) return;
        if (shed < 0) return pause_listener(l, err);
    }
}

/* --- listening --- */

static int open_socket(int family, const struct sockaddr *sa, socklen_t salen, char *err, size_t errlen) {
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, sa, salen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* "127.0.0.1:2379", "[::1]:2379" (and "%scope" for a link-local address), as getnameinfo with
 * NI_NUMERICHOST | NI_NUMERICSERV would write them, without its code in the idle server's pages. */
static void describe_bound(int fd, char *out, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?", scope[IF_NAMESIZE + 1] = "";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, cap, "?");
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        port = ntohs(v4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        port = ntohs(v6->sin6_port);
        char name[IF_NAMESIZE];
        if (v6->sin6_scope_id && if_indextoname(v6->sin6_scope_id, name))
            snprintf(scope, sizeof scope, "%%%s", name);
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s%s]:%u" : "%s%s:%u", host, scope, port);
}

/* An IP literal (the usual listen URL) into *ss without getaddrinfo, whose machinery (gai.conf,
 * interface probing) costs the idle server RSS; false for anything else, which getaddrinfo resolves. */
static bool literal_address(const listen_url *u, struct sockaddr_storage *ss, socklen_t *len) {
    unsigned port = (unsigned)strtoul(u->port, NULL, 10); /* url_parse checked it: digits, <= 65535 */
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, u->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, u->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

/* Go listens on one address of a host name, preferring IPv4; we do the same. */
static const struct addrinfo *pick_address(const struct addrinfo *list) {
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) return ai;
    return list;
}

/* The bound socket for u: an IP literal directly, else the address getaddrinfo gives. -1 with err. */
static int bind_url(const listen_url *u, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    socklen_t len;
    char why[160];
    int fd;
    if (literal_address(u, &ss, &len)) {
        fd = open_socket(ss.ss_family, (struct sockaddr *)&ss, len, why, sizeof why);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        struct addrinfo *res = NULL;
        const char *host = u->host[0] ? u->host : NULL;
        if (!host) hints.ai_family = AF_INET6; /* "http://:2379": all addresses, v4 and v6 */
        int gai = getaddrinfo(host, u->port, &hints, &res);
        if (gai != 0) {
            snprintf(err, errlen, "listen %s:%s: %s", u->host, u->port, gai_strerror(gai));
            return -1;
        }
        const struct addrinfo *ai = pick_address(res);
        fd = open_socket(ai->ai_family, ai->ai_addr, ai->ai_addrlen, why, sizeof why);
        freeaddrinfo(res);
    }
    if (fd < 0) snprintf(err, errlen, "listen tcp %s:%s: %s", u->host, u->port, why);
    return fd;
}

static void add_listener(int fd, bool tls, bool metrics_only) {
    listener *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    l->tls = tls;
    l->metrics_only = metrics_only;
    l->backoff = BACKOFF_FIRST_SECONDS;
    ev_io_init(&l->io, on_acceptable, fd, EV_READ);
    ev_timer_init(&l->retry, on_accept_retry, BACKOFF_FIRST_SECONDS, 0.);
    l->io.data = l->retry.data = l;
    ev_io_start(EV_DEFAULT_ & l->io);
    l->next = listeners;
    listeners = l;
}

static bool listen_one(const listen_url *u, bool metrics_only, char *err, size_t errlen) {
    if (u->tls && !tls_ready()) {
        snprintf(err, errlen, "listen %s:%s: https needs --cert-file and --key-file (or --auto-tls)", u->host,
                 u->port);
        return false;
    }
    int fd = bind_url(u, err, errlen);
    if (fd < 0) return false;
    add_listener(fd, u->tls, metrics_only);
    char where[300];
    describe_bound(fd, where, sizeof where);
    log_msg(LOG_INFO, "serving %s %s on %s", metrics_only ? "metrics and health" : "client traffic",
            u->tls ? "securely" : "insecurely", where);
    return true;
}

bool server_listen(const char *urls, bool metrics_only, char *err, size_t errlen) {
    accept_reserve_refill();
    for (const char *p = urls; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        listen_url u;
        if (!url_parse(p, len, &u, err, errlen) || !listen_one(&u, metrics_only, err, errlen)) return false;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}

void accept_close_listeners(void) {
    while (listeners) {
        listener *l = listeners;
        listeners = l->next;
        ev_io_stop(EV_DEFAULT_ & l->io);
        ev_timer_stop(EV_DEFAULT_ & l->retry);
        close(l->fd);
        free(l);
    }
}
