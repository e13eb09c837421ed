/* methods.c: the one table of gRPC methods: path → kind and handler. Adding a method is one row here
 * plus its handler; a path not in the table is answered UNIMPLEMENTED by the transport. */
#include "kv_range_steps.h"
#include "rpc.h"
#include "svc_auth.h"
#include "svc_cluster.h"
#include "svc_election.h"
#include "svc_kv.h"
#include "svc_lease.h"
#include "svc_lock.h"
#include "svc_maint.h"
#include "svc_watch.h"
#include <string.h>

static const rpc_method methods[] = {
    {"/etcdserverpb.KV/Range", RPC_UNARY, kv_range, kv_range_closed},
    {"/etcdserverpb.KV/Put", RPC_UNARY, kv_put, NULL},
    {"/etcdserverpb.KV/DeleteRange", RPC_UNARY, kv_delete_range, NULL},
    {"/etcdserverpb.KV/Txn", RPC_UNARY, kv_txn, NULL},
    {"/etcdserverpb.KV/Compact", RPC_UNARY, kv_compact, NULL},
    {"/etcdserverpb.Maintenance/Status", RPC_UNARY, maint_status, NULL},
    {"/etcdserverpb.Maintenance/Alarm", RPC_UNARY, maint_alarm, NULL},
    {"/etcdserverpb.Maintenance/Defragment", RPC_UNARY, maint_defragment, maint_defragment_closed},
    {"/etcdserverpb.Maintenance/Hash", RPC_UNARY, maint_hash, maint_hash_call_closed},
    {"/etcdserverpb.Maintenance/HashKV", RPC_UNARY, maint_hashkv, maint_hash_call_closed},
    {"/etcdserverpb.Maintenance/Snapshot", RPC_SERVER_STREAM, maint_snapshot, maint_snapshot_closed},
    {"/etcdserverpb.Maintenance/MoveLeader", RPC_UNARY, maint_move_leader, NULL},
    {"/etcdserverpb.Maintenance/Downgrade", RPC_UNARY, maint_downgrade, NULL},
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
    {"/etcdserverpb.Auth/AuthEnable", RPC_UNARY, auth_enable, NULL},
    {"/etcdserverpb.Auth/AuthDisable", RPC_UNARY, auth_disable, NULL},
    {"/etcdserverpb.Auth/AuthStatus", RPC_UNARY, auth_status, NULL},
    {"/etcdserverpb.Auth/Authenticate", RPC_UNARY, auth_authenticate, auth_hashing_call_closed},
    {"/etcdserverpb.Auth/UserAdd", RPC_UNARY, auth_user_add, auth_hashing_call_closed},
    {"/etcdserverpb.Auth/UserGet", RPC_UNARY, auth_user_get, NULL},
    {"/etcdserverpb.Auth/UserList", RPC_UNARY, auth_user_list, NULL},
    {"/etcdserverpb.Auth/UserDelete", RPC_UNARY, auth_user_delete, NULL},
    {"/etcdserverpb.Auth/UserChangePassword", RPC_UNARY, auth_user_change_password, auth_hashing_call_closed},
    {"/etcdserverpb.Auth/UserGrantRole", RPC_UNARY, auth_user_grant_role, NULL},
    {"/etcdserverpb.Auth/UserRevokeRole", RPC_UNARY, auth_user_revoke_role, NULL},
    {"/etcdserverpb.Auth/RoleAdd", RPC_UNARY, auth_role_add, NULL},
    {"/etcdserverpb.Auth/RoleGet", RPC_UNARY, auth_role_get, NULL},
    {"/etcdserverpb.Auth/RoleList", RPC_UNARY, auth_role_list, NULL},
    {"/etcdserverpb.Auth/RoleDelete", RPC_UNARY, auth_role_delete, NULL},
    {"/etcdserverpb.Auth/RoleGrantPermission", RPC_UNARY, auth_role_grant_permission, NULL},
    {"/etcdserverpb.Auth/RoleRevokePermission", RPC_UNARY, auth_role_revoke_permission, NULL},
    {"/v3lockpb.Lock/Lock", RPC_UNARY, lock_lock, lock_lock_closed},
    {"/v3lockpb.Lock/Unlock", RPC_UNARY, lock_unlock, NULL},
    {"/v3electionpb.Election/Campaign", RPC_UNARY, election_campaign, election_campaign_closed},
    {"/v3electionpb.Election/Proclaim", RPC_UNARY, election_proclaim, NULL},
    {"/v3electionpb.Election/Leader", RPC_UNARY, election_leader, NULL},
    {"/v3electionpb.Election/Observe", RPC_SERVER_STREAM, election_observe, election_observe_closed},
    {"/v3electionpb.Election/Resign", RPC_UNARY, election_resign, NULL},
};

const rpc_method *rpc_find_method(const char *path, size_t len) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const char *p = methods[i].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0) return &methods[i];
    }
    return NULL;
}
