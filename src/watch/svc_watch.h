/* svc_watch.h: the Watch service: the bidirectional "/etcdserverpb.Watch/Watch" stream's handlers for
 * the method table, its start-up (revision hook, progress interval flag), and the same streams for
 * the JSON gateway's /v3/watch. */
#ifndef CETCD_SVC_WATCH_H
#define CETCD_SVC_WATCH_H

#include "rpc.h"
#include "rpc.pb-c.h"

/* Parses --experimental-watch-progress-notify-interval (exits 2 if bad) and hooks into the store. */
void watch_init(void);

void watch_stream_msg(rpc_call *call, const uint8_t *msg, size_t len);
void watch_stream_closed(rpc_call *call);

/* A watch stream for another transport (the JSON gateway's /v3/watch): its responses go to out, each
 * WatchResponse encoded as protobuf in two parts to be joined (body may be empty). */
typedef struct watch_output {
    void (*send)(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body, size_t body_len);
    size_t (*pending)(void *ctx); /* bytes sent and not yet written to the client */
    void *ctx;
} watch_output;
typedef struct watch_stream watch_stream;
watch_stream *watch_stream_open(const watch_output *out);
/* One request of the stream (create, cancel, progress), as a gRPC client's message. */
void watch_stream_request(watch_stream *ws, const Etcdserverpb__WatchRequest *req);
/* The client is gone: every watcher of the stream goes, and ws is freed. */
void watch_stream_close(watch_stream *ws);

#endif
