/* conn_internal.h: the connection record shared by the three files of src/net that run a connection:
 * server.c (bytes in and out), accept.c (listeners, admission) and conn_timeout.c (deadlines and
 * keepalive). Nothing outside src/net sees it; the rest of the server holds a conn * only. */
#ifndef CETCD_CONN_INTERNAL_H
#define CETCD_CONN_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "h2.h"
#include "sbuf.h"
#include "server.h"

#define MAX_WAITING 4 /* tags in flight are at most "being synced" and "being collected" */

/* Output bytes that may leave once the batch numbered seq is durable (commit.h). */
typedef struct out_chunk {
    uint64_t seq;
    sbuf data;
} out_chunk;

typedef enum conn_proto { PROTO_DETECT, PROTO_H2, PROTO_HTTP1 } conn_proto;

/* What the connection's one timer waits for (conn_timeout.c). */
typedef enum conn_phase {
    PHASE_OPENING,    /* accepted: the HTTP/2 preface + SETTINGS, or a first HTTP/1 request head, is due */
    PHASE_HTTP1_IDLE, /* between HTTP/1 requests: no deadline, as in Go's net/http without IdleTimeout */
    PHASE_HTTP1_HEAD, /* part of an HTTP/1 request head is here */
    PHASE_HTTP1_BODY, /* the head is here, part of the body is not */
    PHASE_H2,         /* HTTP/2 set up: keepalive pings when the client is silent */
    PHASE_LINGER,     /* closing: the output may drain for a short while */
} conn_phase;

/* grpc-go's keepalive state for one HTTP/2 connection: the server's ping, the client's pings. */
typedef struct conn_keepalive {
    ev_tstamp last_read;        /* the last time bytes arrived */
    ev_tstamp ping_sent;        /* when our unanswered ping left; 0 if none is out */
    ev_tstamp last_client_ping; /* 0 before the first */
    int strikes;                /* client pings that came too soon */
    bool reset_strikes;         /* we sent HEADERS or DATA since the last client ping */
    bool too_many_pings;        /* the client earned GOAWAY(ENHANCE_YOUR_CALM) */
} conn_keepalive;

struct conn {
    ev_io rio, wio;
    ev_timer timer; /* the deadline of the current phase */
    int fd;
    conn_proto proto;
    conn_phase phase;
    ev_tstamp phase_since;
    conn_keepalive ka;
    sbuf in;                        /* unparsed input (detection, HTTP/1) */
    size_t http1_scanned;           /* bytes of in searched for the end of an HTTP/1 head (http1.c) */
    out_chunk waiting[MAX_WAITING]; /* output held until its batch is durable, oldest first */
    int n_waiting;
    sbuf out; /* output released to the socket */
    h2_conn *h2;
    struct ssl_st *ssl; /* the TLS session of an https:// listener's connection (tls.c); else NULL */
    bool tls_done;      /* its handshake is over */
    char *peer_cn;      /* its verified client certificate's CommonName (tls_conn_peer_cn) */
    bool peer_cn_known; /* peer_cn was looked up */
    bool metrics_only;  /* from a --listen-metrics-urls listener: /metrics and /health only */
    bool dirty, dead, closing, read_paused;
    conn *next_dirty, *next_dead;
    size_t freed_bytes; /* set when it dies: the reply bytes it held, given back when it is reaped */
    conn *prev, *next;
    conn *hold_prev, *hold_next; /* in the list of connections holding output (n_waiting > 0) */
    bool holding;
};

/* server.c */
void conn_new(int fd); /* a connection for an accepted socket */
/* the same for a listener's socket: tls, a TLS session; metrics_only, /metrics and /health only */
void conn_new_on(int fd, bool tls, bool metrics_only);
void conn_kill(conn *c); /* closes the socket now; freed at the end of the flush */
size_t conn_count(void); /* connections whose socket is open */

/* accept.c */
void accept_reserve_refill(void);  /* reopens the spare descriptor when descriptors may have come free */
void accept_close_listeners(void); /* shutdown: no more connections */

/* conn_timeout.c */
void timeout_start(conn *c);                  /* accepted: the opening deadline runs */
void timeout_stop(conn *c);                   /* the connection is gone */
void timeout_linger(conn *c);                 /* closing: kill after the grace period */
void timeout_read(conn *c);                   /* bytes arrived (keepalive) */
void timeout_reading_resumed(conn *c);        /* reading was paused by us; the client is not to blame */
void timeout_http1_fed(conn *c, bool served); /* after HTTP/1 input was parsed; served: a request was */
int timeout_h2_after_recv(conn *c);           /* -1 when the client must get GOAWAY(ENHANCE_YOUR_CALM) */

#endif
