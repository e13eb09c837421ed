/* methods.c: the one table of gRPC methods: path → kind and handler. Adding a method is one row here
 * plus its handler; a path not in the table is answered UNIMPLEMENTED by the transport. */
#include "rpc.h"
#include "svc_cluster.h"
#include "svc_kv.h"
#include "svc_lease.h"
#include "svc_maint.h"
#include "svc_watch.h"
#include <string.h>

static const rpc_method methods[] = {
    {"/etcdserverpb.KV/Range", RPC_UNARY, kv_range, NULL},
    {"/etcdserverpb.KV/Put", RPC_UNARY, kv_put, NULL},
    {"/etcdserverpb.KV/DeleteRange", RPC_UNARY, kv_delete_range, NULL},
    {"/etcdserverpb.KV/Txn", RPC_UNARY, kv_txn, NULL},
    {"/etcdserverpb.KV/Compact", RPC_UNARY, kv_compact, NULL},
    {"/etcdserverpb.Maintenance/Status", RPC_UNARY, maint_status, NULL},
    {"/etcdserverpb.Maintenance/Alarm", RPC_UNARY, maint_alarm, NULL},
    {"/etcdserverpb.Maintenance/Defragment", RPC_UNARY, maint_defragment, maint_defragment_closed},
    {"/etcdserverpb.Maintenance/Hash", RPC_UNARY, maint_hash, NULL},
    {"/etcdserverpb.Maintenance/HashKV", RPC_UNARY, maint_hashkv, NULL},
    {"/etcdserverpb.Maintenance/Snapshot", RPC_SERVER_STREAM, maint_snapshot, maint_snapshot_closed},
    {"/etcdserverpb.Maintenance/MoveLeader", RPC_UNARY, maint_move_leader, NULL},
    {"/etcdserverpb.Cluster/MemberList", RPC_UNARY, cluster_member_list, NULL},
    {"/etcdserverpb.Cluster/MemberAdd", RPC_UNARY, cluster_member_add, NULL},
    {"/etcdserverpb.Cluster/MemberRemove", RPC_UNARY, cluster_member_remove, NULL},
    {"/etcdserverpb.Cluster/MemberUpdate", RPC_UNARY, cluster_member_update, NULL},
    {"/etcdserverpb.Cluster/MemberPromote", RPC_UNARY, cluster_member_promote, NULL},
    {"/etcdserverpb.Watch/Watch", RPC_STREAM, watch_stream_msg, watch_stream_closed},
    {"/etcdserverpb.Lease/LeaseGrant", RPC_UNARY, lease_grant, NULL},
    {"/etcdserverpb.Lease/LeaseRevoke", RPC_UNARY, lease_revoke, NULL},
    {"/etcdserverpb.Lease/LeaseKeepAlive", RPC_STREAM, lease_keep_alive, NULL},
    {"/etcdserverpb.Lease/LeaseTimeToLive", RPC_UNARY, lease_time_to_live, NULL},
    {"/etcdserverpb.Lease/LeaseLeases", RPC_UNARY, lease_leases, NULL},
};

const rpc_method *rpc_find_method(const char *path, size_t len) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const char *p = methods[i].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0) return &methods[i];
    }
    return NULL;
}
