/* kv_check.h: the checks a KV request passes before it reaches the store, as etcd's gRPC layer makes
 * them (kv_check.c); svc_kv.c calls them in etcd's order. */
#ifndef CETCD_KV_CHECK_H
#define CETCD_KV_CHECK_H

#include "errors.h"
#include "mvcc.h"
#include "rpc.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No error" for the checks, which otherwise return the etcd error to answer with. */
#define KV_VALID ETCD_ERR_COUNT

etcd_err kv_check_range(const Etcdserverpb__RangeRequest *r);
etcd_err kv_check_put(const Etcdserverpb__PutRequest *r);
etcd_err kv_check_delete(const Etcdserverpb__DeleteRangeRequest *r);
/* Empty keys, empty ops and op counts: each branch may hold max_ops operations; a nested txn gets what
 * its parent's widest list left over. */
etcd_err kv_check_txn(const Etcdserverpb__TxnRequest *r, long long max_ops);
/* etcd serves a txn of ranges only as a read; anything else is a write. */
bool kv_txn_is_read_only(const Etcdserverpb__TxnRequest *r);
/* A put meets another put or a delete of the same branch as etcd's checkIntervals refuses. */
bool kv_branch_has_duplicates(Etcdserverpb__RequestOp **ops, size_t n);

typedef enum kv_depth_scan { KV_SCAN_OK, KV_SCAN_TOO_DEEP, KV_SCAN_MALFORMED } kv_depth_scan;
/* A TxnRequest's nesting depth read from its bytes, so decoding cannot overflow the stack. */
kv_depth_scan kv_scan_txn_depth(const uint8_t *msg, size_t len);

#endif
