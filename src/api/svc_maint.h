/* svc_maint.h: the Maintenance service (Status, Alarm, Defragment, Hash, HashKV, Snapshot,
 * MoveLeader, Downgrade) for the method table and the JSON gateway. The alarm state itself is alarms.h. */
#ifndef CETCD_SVC_MAINT_H
#define CETCD_SVC_MAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "later_call.h"
#include "reply_sink.h"
#include "rpc.h"

/* --- unary service functions, shared by the gRPC handlers and the JSON gateway --- */
void maint_status_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void maint_alarm_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
void maint_move_leader_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
/* Downgrade (maint_downgrade.c): VALIDATE, ENABLE, CANCEL of the job kept in the store. */
void maint_downgrade_exec(const ProtobufCMessage *req, size_t len, const reply_sink *out);
/* Reads the saved downgrade job at start; false with why set if it cannot be read. */
bool downgrade_load(char *why, size_t whylen);
/* The job as Status reports it (the strings stay valid until the next Downgrade call). */
struct Etcdserverpb__DowngradeInfo;
void downgrade_info_fill(struct Etcdserverpb__DowngradeInfo *info);

/* --- gRPC handlers --- */
void maint_status(rpc_call *call, const uint8_t *msg, size_t len);
void maint_alarm(rpc_call *call, const uint8_t *msg, size_t len);
/* Hash and HashKV (maint_hash.c): answered once a sliced walk of the index is done. */
void maint_hash(rpc_call *call, const uint8_t *msg, size_t len);
void maint_hashkv(rpc_call *call, const uint8_t *msg, size_t len);
void maint_hash_call_closed(rpc_call *call);
void maint_hash_exec(later_call *lc, const ProtobufCMessage *req);
void maint_hashkv_exec(later_call *lc, const ProtobufCMessage *req);
void maint_move_leader(rpc_call *call, const uint8_t *msg, size_t len);
void maint_downgrade(rpc_call *call, const uint8_t *msg, size_t len);
/* Defragment: the call stays open until the log compaction run it waits for is done. */
void maint_defragment(rpc_call *call, const uint8_t *msg, size_t len);
void maint_defragment_closed(rpc_call *call);
/* Snapshot (RPC_SERVER_STREAM): chunks sent across loop turns as the client reads them. */
void maint_snapshot(rpc_call *call, const uint8_t *msg, size_t len);
void maint_snapshot_closed(rpc_call *call);

#endif
