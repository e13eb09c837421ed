/* rpc.h: the contract between the gRPC transport (h2.c) and the services (svc_*.c).
 * A handler gets one decoded-length message at a time and answers through these calls; it never sees
 * HTTP/2. Output is not put on the wire at once: the loop flushes it after the commit (commit.c). */
#ifndef CETCD_RPC_H
#define CETCD_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes. */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* One gRPC call: one HTTP/2 stream. Owned by the transport. */
typedef struct rpc_call rpc_call;

typedef enum rpc_kind {
    RPC_UNARY,         /* one request message (delivered at end of stream), one reply */
    RPC_STREAM,        /* bidirectional: each request message delivered as it arrives */
    RPC_SERVER_STREAM, /* one request message (delivered at end of stream), then any number of replies:
                        * the client's half-close does not end the call; the handler rpc_finish()es it */
} rpc_kind;

/* Called with one request message (the protobuf bytes, without the 5-byte prefix). */
typedef void (*rpc_handler)(rpc_call *call, const uint8_t *msg, size_t len);
/* Called once when a streaming call ends for any reason (client half-close, reset, conn closed). */
typedef void (*rpc_close_handler)(rpc_call *call);

typedef struct rpc_method {
    const char *path; /* "/etcdserverpb.KV/Range" */
    rpc_kind kind;
    rpc_handler handler;
    rpc_close_handler on_close; /* streams only; may be NULL */
} rpc_method;

/* methods.c: the one table. NULL if the path is not implemented (the transport answers UNIMPLEMENTED). */
const rpc_method *rpc_find_method(const char *path, size_t len);

/* Unary: send msg and finish with OK. Stream: send one message, keep the call open. */
void rpc_send(rpc_call *call, const ProtobufCMessage *msg);
/* Send one message already encoded in two parts (protobuf fields may come in any order): lets a
 * stream send the same encoded fields to many calls, with a small per-call head. */
void rpc_send_parts(rpc_call *call, const uint8_t *head, size_t head_len, const uint8_t *body,
                    size_t body_len);
/* One message written in place, for a large reply packed once where it is sent from: reserves room for a
 * message of len bytes at the end of call's output and returns where its body goes. Nothing of it is
 * sent before rpc_message_commit, but it counts as held from the start (one reservation at a time). NULL if
 * the call is not writable, or if len passes the send limit (the call is then finished with
 * RESOURCE_EXHAUSTED, as rpc_send finishes it). */
uint8_t *rpc_message_reserve(rpc_call *call, size_t len);
/* Counts n bytes as held, in the pool the reply budgets come from (budget.h), for a reply the call will
 * reserve later (a list sized over several loop turns pledges what it has sized so far), so that
 * requests meanwhile see them taken; replaces the call's pledge before. The reservation, or the call's
 * end, gives them back. */
void rpc_message_pledge(rpc_call *call, size_t n);
/* The reply bytes held in the pool but not pledged: reserved or queued. */
size_t rpc_held_reserved(void);
/* Queues the reserved message with its first len bytes (len <= the length reserved); if the call was
 * finished meanwhile, drops it. A commit after the handler returned must know the call is still open
 * (its on_close has not run). */
void rpc_message_commit(rpc_call *call, size_t len);
/* Finish the call with a status (trailers). message may be NULL; it is percent-encoded on the wire. */
void rpc_finish(rpc_call *call, int grpc_code, const char *message);
/* Convenience for unary handlers: send msg then finish OK. */
void rpc_reply(rpc_call *call, const ProtobufCMessage *msg);

/* Who sent a call, as its transport learned it; the Auth checks (auth_gate.h) read it. */
typedef struct rpc_caller {
    const char *token;   /* etcd's "token" request metadata (else "authorization", which etcd also
                          * reads), NUL-terminated; NULL if the call sent none */
    const char *cert_cn; /* the verified TLS client certificate's CommonName, which etcd takes as the
                          * user when no token is sent (--client-cert-auth; tls_conn_peer_cn); NULL
                          * without one */
} rpc_caller;
/* The caller of call, valid while the call lives. */
const rpc_caller *rpc_call_caller(const rpc_call *call);
/* Who sent the request being served, for the Auth checks (auth_gate.h): set by rpc_unary_exec around
 * the service function of a gRPC call, and by any other front end around the function it runs (the
 * JSON gateway); kept in reply_sink.c. NULL outside a request: nobody known, which with auth enabled
 * is etcd's "user name is empty", so work done later on behalf of a call sets it again. */
const rpc_caller *rpc_current_caller(void);
/* Sets it; returns the one it replaces, to be put back after. */
const rpc_caller *rpc_set_current_caller(const rpc_caller *caller);

/* Per-call state for streaming services. */
void rpc_set_user(rpc_call *call, void *user);
void *rpc_user(const rpc_call *call);
/* Bytes queued on this call's connection and not yet written: for slow-client limits. */
size_t rpc_pending_bytes(const rpc_call *call);

#endif
