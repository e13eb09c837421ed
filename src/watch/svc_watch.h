/* svc_watch.h: the Watch service: the bidirectional "/etcdserverpb.Watch/Watch" stream's handlers for
 * the method table, and its start-up (revision hook, progress interval flag). */
#ifndef CETCD_SVC_WATCH_H
#define CETCD_SVC_WATCH_H

#include "rpc.h"

/* Parses --experimental-watch-progress-notify-interval (exits 2 if bad) and hooks into the store. */
void watch_init(void);

void watch_stream_msg(rpc_call *call, const uint8_t *msg, size_t len);
void watch_stream_closed(rpc_call *call);

#endif
