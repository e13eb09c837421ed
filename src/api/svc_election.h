/* svc_election.h: etcd's Election service (v3electionpb.Election: Campaign, Proclaim, Leader, Observe,
 * Resign) for the method table. Campaign waits without blocking the loop until the campaigner leads;
 * Observe streams every leader value from now on; their on_close handlers clean up. */
#ifndef CETCD_SVC_ELECTION_H
#define CETCD_SVC_ELECTION_H

#include "rpc.h"

void election_campaign(rpc_call *call, const uint8_t *msg, size_t len);
void election_campaign_closed(rpc_call *call);
void election_proclaim(rpc_call *call, const uint8_t *msg, size_t len);
void election_leader(rpc_call *call, const uint8_t *msg, size_t len);
void election_observe(rpc_call *call, const uint8_t *msg, size_t len); /* RPC_SERVER_STREAM */
void election_observe_closed(rpc_call *call);
void election_resign(rpc_call *call, const uint8_t *msg, size_t len);

#endif
