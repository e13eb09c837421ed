/* auth_checks.c: which permissions each KV and Lease request needs, in etcd's order (auth_checks.h).
 * With auth disabled every check passes at once, so a store without auth pays one branch per call. */
#include "auth_checks.h"

#include "store.h"

static mv_bytes b(ProtobufCBinaryData d) {
    return (mv_bytes){d.data, d.len};
}

static const mv_bytes NO_END = {0};

etcd_err auth_check_range(const auth_who *who, const Etcdserverpb__RangeRequest *r) {
    return auth_may_read(who, b(r->key), b(r->range_end));
}

/* etcd's checkLeasePuts: every key already on the lease must be writable (root: always). */
static etcd_err lease_keys_writable(const auth_who *who, int64_t lease) {
    if (!g_auth.enabled || lease == 0 || auth_may_admin(who) == AUTH_OK) return AUTH_OK;
    mv_arena *a = mv_arena_new();
    mv_bytes *keys = NULL;
    size_t n = mvcc_lease_keys(g_store, lease, a, &keys);
    etcd_err e = AUTH_OK;
    for (size_t i = 0; i < n && e == AUTH_OK; i++)
        e = auth_may_write(who, keys[i], NO_END);
    mv_arena_free(a);
    return e;
}

etcd_err auth_check_put(const auth_who *who, const Etcdserverpb__PutRequest *r) {
    etcd_err e = auth_may_write(who, b(r->key), NO_END);
    if (e == AUTH_OK) e = lease_keys_writable(who, r->lease);
    if (e == AUTH_OK && r->prev_kv) e = auth_may_read(who, b(r->key), NO_END);
    return e;
}

etcd_err auth_check_delete(const auth_who *who, const Etcdserverpb__DeleteRangeRequest *r) {
    etcd_err e = auth_may_write(who, b(r->key), b(r->range_end));
    if (e == AUTH_OK && r->prev_kv) e = auth_may_read(who, b(r->key), b(r->range_end));
    return e;
}

static etcd_err check_ops(const auth_who *who, Etcdserverpb__RequestOp **ops, size_t n) {
    etcd_err e = AUTH_OK;
    for (size_t i = 0; i < n && e == AUTH_OK; i++) {
        const Etcdserverpb__RequestOp *op = ops[i];
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
            e = auth_check_range(who, op->request_range);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            e = auth_check_put(who, op->request_put);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
            /* etcd checks the read of prev_kv first here */
            const Etcdserverpb__DeleteRangeRequest *d = op->request_delete_range;
            if (d->prev_kv) e = auth_may_read(who, b(d->key), b(d->range_end));
            if (e == AUTH_OK) e = auth_may_write(who, b(d->key), b(d->range_end));
            break;
        }
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
            e = auth_check_txn(who, op->request_txn);
            break;
        default:
            break;
        }
    }
    return e;
}

etcd_err auth_check_txn(const auth_who *who, const Etcdserverpb__TxnRequest *r) {
    if (!g_auth.enabled) return AUTH_OK;
    etcd_err e = AUTH_OK;
    for (size_t i = 0; i < r->n_compare && e == AUTH_OK; i++)
        e = auth_may_read(who, b(r->compare[i]->key), b(r->compare[i]->range_end));
    if (e == AUTH_OK) e = check_ops(who, r->success, r->n_success);
    if (e == AUTH_OK) e = check_ops(who, r->failure, r->n_failure);
    return e;
}

etcd_err auth_check_lease_revoke(const rpc_caller *caller, int64_t lease) {
    auth_who who;
    etcd_err e = auth_resolve(caller, &who);
    return e != AUTH_OK ? e : lease_keys_writable(&who, lease);
}

etcd_err auth_check_lease_keys(const rpc_caller *caller, int64_t lease) {
    if (!g_auth.enabled) return AUTH_OK;
    auth_who who;
    etcd_err e = auth_resolve(caller, &who);
    if (e != AUTH_OK) return e;
    if (!who.user) return ETCD_ERR_USER_EMPTY;
    mv_arena *a = mv_arena_new();
    mv_bytes *keys = NULL;
    size_t n = mvcc_lease_keys(g_store, lease, a, &keys);
    for (size_t i = 0; i < n && e == AUTH_OK; i++)
        e = auth_may_read(&who, keys[i], NO_END);
    mv_arena_free(a);
    return e;
}
