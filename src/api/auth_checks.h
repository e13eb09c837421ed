/* auth_checks.h: the permission checks of KV and Lease requests, as etcd's authApplierV3
 * (server/etcdserver/apply/auth.go) makes them: which key or range each operation needs to read or
 * write. The caller is resolved first (auth_resolve in auth_gate.h); each returns AUTH_OK or the
 * error to answer with. */
#ifndef CETCD_AUTH_CHECKS_H
#define CETCD_AUTH_CHECKS_H

#include <stdint.h>

#include "auth_gate.h"
#include "rpc.pb-c.h"

/* Read on [key, range_end). */
etcd_err auth_check_range(const auth_who *who, const Etcdserverpb__RangeRequest *r);
/* Write on the key; write on every key of the lease it attaches (whoever cannot revoke that lease may
 * not add to it); read on the key for prev_kv. */
etcd_err auth_check_put(const auth_who *who, const Etcdserverpb__PutRequest *r);
/* Write on [key, range_end), read on it too for prev_kv. */
etcd_err auth_check_delete(const auth_who *who, const Etcdserverpb__DeleteRangeRequest *r);
/* Read on every compare's range, then each op of both branches as above, nested txns included (as
 * etcd main: 3.4 and 3.5 skip the ops of a nested txn). */
etcd_err auth_check_txn(const auth_who *who, const Etcdserverpb__TxnRequest *r);
/* LeaseRevoke: write on every key of the lease (the root role may always). */
etcd_err auth_check_lease_revoke(const rpc_caller *caller, int64_t lease);
/* LeaseTimeToLive with keys (etcd 3.5): a user, with read on every key of the lease. */
etcd_err auth_check_lease_keys(const rpc_caller *caller, int64_t lease);

#endif
