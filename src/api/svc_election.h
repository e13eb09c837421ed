/* svc_election.h: etcd's Election service (v3electionpb.Election: Campaign, Proclaim, Leader, Observe,
 * Resign) for the method table and the JSON gateway. Campaign waits without blocking the loop until
 * the campaigner leads and Observe streams every leader value from now on (later_exec functions, whose
 * on_close handlers clean up); the others answer at once (unary_exec). */
#ifndef CETCD_SVC_ELECTION_H
#define CETCD_SVC_ELECTION_H

#include "later_call.h"
#include "reply_sink.h"
#include "rpc.h"

void election_campaign_exec(later_call *lc, const ProtobufCMessage *req);
void election_observe_exec(later_call *lc, const ProtobufCMessage *req); /* a stream */
void election_proclaim_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void election_leader_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void election_resign_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);

/* gRPC handlers */
void election_campaign(rpc_call *call, const uint8_t *msg, size_t len);
void election_campaign_closed(rpc_call *call);
void election_proclaim(rpc_call *call, const uint8_t *msg, size_t len);
void election_leader(rpc_call *call, const uint8_t *msg, size_t len);
void election_observe(rpc_call *call, const uint8_t *msg, size_t len); /* RPC_SERVER_STREAM */
void election_observe_closed(rpc_call *call);
void election_resign(rpc_call *call, const uint8_t *msg, size_t len);

#endif
