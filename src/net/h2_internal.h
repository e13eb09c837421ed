/* h2_internal.h: what h2.c (sessions, callbacks, replies) and h2_input.c (requests: headers, gRPC
 * framing, flow-control credit and the per-turn run queue) share about a connection and its calls.
 * Private to those two files. */
#ifndef CETCD_H2_INTERNAL_H
#define CETCD_H2_INTERNAL_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>

#include "h2.h"
#include "rpc.h"
#include "sbuf.h"

/* A connection whose clients leave this many reply bytes unread stops running requests (they wait,
 * unacknowledged by flow control) until the backlog falls under QUEUED_LOW. It is still read, for
 * the WINDOW_UPDATEs that let the backlog leave (input_backlogged). */
#define QUEUED_HIGH (32u << 20)
#define QUEUED_LOW (8u << 20)
/* Past this much memory in open calls, new streams are refused (REFUSED_STREAM); past half of it,
 * with calls waiting for a turn, the connection is not read until they ran. */
#define CALL_STATE_BUDGET (16u << 20)

struct h2_conn {
    nghttp2_session *session;
    conn *conn;
    rpc_call *calls;    /* every call whose stream is open */
    size_t state_bytes; /* memory the open calls take (an estimate per call, plus their :path) */
    size_t queued;      /* reply bytes held in calls, not yet taken by nghttp2 */
    size_t out_limit;   /* h2_conn_produce's: output past which DATA written in place pauses nghttp2 */
    bool out_paused;    /* it did: more frames may be ready */
    size_t out_want;    /* room the output makes at the first such DATA of a produce (h2_conn_produce) */
    bool blocked;       /* queued went over QUEUED_HIGH: requests wait (see QUEUED_HIGH) */
    ev_timer kick;      /* runs the ready calls on the next loop turn */
    /* input, h2_input.c */
    rpc_call *ready_head, *ready_tail; /* calls with a message or their end to run, oldest first */
    size_t buffered;                   /* request bytes held in calls (sum of their in) */
    size_t withheld;                   /* of those, bytes whose flow-control credit is not returned */
    unsigned turn;                     /* the loop iteration whose work budget spent counts */
    double spent;                      /* seconds of handler time this connection used in it */
    /* the call of the stream last looked up: nghttp2's callbacks ask for the same stream many times
     * in a row (every header of a request) */
    int32_t last_id;
    rpc_call *last_call;
};

/* A buffer of at most this much (sbuf's first size) stays with its call when emptied, and with the
 * call when the call is kept for reuse (h2.c, call_new); a bigger one goes back to the allocator. */
#define CALL_BUF_KEEP 4096
static inline void call_buf_empty(sbuf *b) {
    if (b->cap > CALL_BUF_KEEP) sbuf_free(b);
    b->off = b->len = 0;
}

/* A :path this long or shorter is kept inside the call, with no allocation of its own. */
#define PATH_INLINE 64

struct rpc_call {
    h2_conn *h;
    int32_t stream_id;
    const rpc_method *method;
    char *path; /* :path as received (NUL-terminated): path_inline, or allocated when longer */
    char path_inline[PATH_INLINE + 1];
    size_t path_len;
    bool is_post, grpc_content_type;
    char content_type[64];
    char encoding[32];
    double timeout;  /* seconds; < 0 when the client sent none */
    sbuf in;         /* request bytes not yet cut into messages */
    sbuf out;        /* framed reply messages not yet taken by nghttp2 (h2_outbuf.c) */
    size_t reserved; /* the tail of out reserved for a message not yet committed, its prefix included */
    size_t pledged;  /* counted as held for a reply not yet reserved (rpc_message_pledge) */
    bool started;    /* response HEADERS submitted */
    bool finished;   /* status decided; trailers follow the queued messages */
    bool deferred;   /* nghttp2 is waiting for more output */
    bool client_done, end_handled, closed;
    bool ready;        /* in the connection's ready queue */
    size_t unconsumed; /* request bytes whose credit is withheld (counted in h->withheld) */
    int status;
    char *message; /* percent-encoded grpc-message */
    void *user;
    ev_timer deadline;
    rpc_call *prev, *next;
    rpc_call *ready_next;

    rpc_caller caller; /* rpc_call_caller: its token is the one below */
    char *token;       /* the "token" or "authorization" metadata (h2_input.c, set_token) */
    bool token_named_token;
};

/* h2.c */
void call_finish_http(rpc_call *call, int code, const char *message, const char *http_status);
void call_notify_closed(rpc_call *call);

/* Under AddressSanitizer nothing freed is kept for reuse (calls, nghttp2's blocks), so that a use
 * after free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define H2_KEEP_FREED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2_KEEP_FREED 0
#endif
#endif
#ifndef H2_KEEP_FREED
#define H2_KEEP_FREED 1
#endif

/* h2_outbuf.c: a call's output buffer, and the spare kept for large replies */
void outbuf_prepare(sbuf *out, size_t n); /* n more bytes are about to be appended to out */
void outbuf_take(sbuf *out, size_t n);    /* n bytes were taken from its head */
void outbuf_release(sbuf *out);           /* its call is done: what is left is dropped */

/* h2_mem.c: the allocator of every session */
nghttp2_mem *h2_mem(void);

/* h2_input.c */
void input_headers_done(rpc_call *call); /* the request's HEADERS: pick the method or answer */
int input_header(rpc_call *call, const uint8_t *name, size_t namelen, const uint8_t *value,
                 size_t valuelen); /* returns 0, for on_header */
void input_data(rpc_call *call, const uint8_t *data, size_t len);
void input_end(rpc_call *call);    /* the client half-closed the stream */
void input_forget(rpc_call *call); /* the call is being freed: its bytes and queue place go */
void input_run(h2_conn *h);        /* runs ready calls within this turn's budget */
void input_set_path(rpc_call *call, const uint8_t *value, size_t len); /* :path, inline if short */
bool input_backlogged(const h2_conn *h);

#endif
