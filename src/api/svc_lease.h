/* svc_lease.h: the Lease service's gRPC handlers (LeaseGrant, LeaseRevoke, LeaseKeepAlive,
 * LeaseTimeToLive, LeaseLeases) for the method table, and the start-up call that gives every lease
 * recovered from the log its deadline and starts expiry. */
#ifndef CETCD_SVC_LEASE_H
#define CETCD_SVC_LEASE_H

#include "reply_sink.h"
#include "rpc.h"
#include <ev.h>

/* etcd's bounds: a TTL above MaxLeaseTTL is refused; one below the minimum (from the default election
 * timeout and heartbeat: ceil(1.5 * 10 * 100 ms) = 2 s) is raised to it. */
#define LEASE_MAX_TTL 9000000000LL
#define LEASE_MIN_TTL 2
/* On start, etcd's newly elected leader renews every lease for its TTL plus the election timeout. */
#define LEASE_PROMOTE_EXTEND 1.0
/* At most this many expiries per loop turn (etcd revokes at most 1000 leases a second). */
#define LEASE_EXPIRE_BUDGET 1000

/* Call once the store is open and the listeners are up, before the loop runs: recovered leases get
 * deadline now + TTL + LEASE_PROMOTE_EXTEND, and expiry starts on loop. */
void lease_service_start(struct ev_loop *loop);

void lease_grant(rpc_call *call, const uint8_t *msg, size_t len);
void lease_revoke(rpc_call *call, const uint8_t *msg, size_t len);
void lease_keep_alive(rpc_call *call, const uint8_t *msg, size_t len); /* RPC_STREAM */
void lease_time_to_live(rpc_call *call, const uint8_t *msg, size_t len);
void lease_leases(rpc_call *call, const uint8_t *msg, size_t len);

/* The requests already decoded, answered through a reply_sink: what the gRPC handlers above run, in
 * the shape http_api.c's gateway routes take (a keep-alive renewal answers one message of the stream
 * and never fails). */
void lease_grant_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void lease_keep_alive_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void lease_revoke_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void lease_time_to_live_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void lease_leases_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

#endif
