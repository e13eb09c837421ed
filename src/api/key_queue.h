/* key_queue.h: what Lock and Election share, after etcd's client concurrency package as its Lock and
 * Election servers use it: a key per lease under "<name>/", contenders ordered by create revision,
 * and the wait until every older key under the name is gone (etcd's waitDeletes), each step a call of
 * the KV service so that clients of the services and of KV (etcdctl lock, elect) exclude each other. */
#ifndef CETCD_KEY_QUEUE_H
#define CETCD_KEY_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "key_waits.h"
#include "later_call.h"
#include "local_call.h"
#include "rpc.h"
#include "rpc.pb-c.h"

/* etcd's concurrency.defaultSessionTTL: a request with lease 0 gets a new lease of this TTL. */
#define KQ_SESSION_TTL 60

/* A byte string owned by its holder. */
typedef struct kq_bytes {
    uint8_t *data;
    size_t len;
} kq_bytes;

kq_bytes kq_bytes_copy(const void *data, size_t len);
void kq_bytes_free(kq_bytes *b);
ProtobufCBinaryData kq_pb(kq_bytes b);

/* "<name>/" and "<name>/<lease in lowercase hex>" (Go's %x of an int64, so -1 is "-1"). */
kq_bytes kq_prefix(ProtobufCBinaryData name);
kq_bytes kq_lease_key(kq_bytes prefix, int64_t lease);

/* etcd's NewSession: lease 0 gets a new lease of KQ_SESSION_TTL; any other is used as it is. False
 * with r's error if the grant failed. */
bool kq_session(int64_t *lease, local_result *r);

/* KV calls (r holds the answer; false with r's error on failure). */
bool kq_first_created(kq_bytes prefix, local_result *r); /* oldest key under prefix, if any */
bool kq_get(kq_bytes key, local_result *r);
/* Txn: if key's create revision is rev, put value (with lease) or, with value NULL, delete key. */
bool kq_if_created(kq_bytes key, int64_t rev, const ProtobufCBinaryData *value, int64_t lease,
                   local_result *r);
/* etcd's claim (Mutex.tryAcquire, Election.Campaign): Txn{if key's create revision is 0: put
 * key=value with the lease; else: get key}, both then getting the oldest key under prefix if
 * with_first (kq_txn_range(r, 1)). */
bool kq_claim(kq_bytes prefix, kq_bytes key, ProtobufCBinaryData value, int64_t lease, bool with_first,
              local_result *r);
/* After a kq_claim: our key's create revision; *existing is the key as it was if the claim found it
 * (the same lease claimed before), else NULL. */
int64_t kq_claimed_rev(const local_result *r, const Mvccpb__KeyValue **existing);
/* Deletes key from a loop job, later (a close handler may not write): etcd's cleanup of a canceled
 * Lock (rev 0: a plain delete) or Campaign (only if key's create revision is still rev), on behalf of
 * caller (copied: the call is gone by then). */
void kq_delete_later(kq_bytes key, int64_t rev, const rpc_caller *caller);

/* The answers of a Txn / Range kept in a local_result. */
const Etcdserverpb__TxnResponse *kq_txn(const local_result *r);
const Etcdserverpb__RangeResponse *kq_range(const local_result *r);
const Etcdserverpb__RangeResponse *kq_txn_range(const local_result *r, size_t i); /* NULL if not */

/* Answers with an error of an inner call: as etcd's servers pass their client's error on, the code
 * is UNKNOWN and the message the inner one. */
void kq_fail(const reply_sink *out, const char *message);

/* ---------- waiting for the older keys to go ---------- */

typedef enum kq_state { KQ_WAIT, KQ_TURN, KQ_LOST, KQ_ERROR } kq_state;

typedef struct key_queue key_queue;
/* The wait ended (KQ_TURN: no older key is left, r holds a Range of our key with the header to
 * answer with; KQ_LOST: our key is gone; KQ_ERROR: r holds the error). The waits are gone already. */
typedef void (*kq_done_fn)(key_queue *q, kq_state st, local_result *r);

struct key_queue {
    later_call *lc; /* the waiting call, whose caller the later steps run as */
    kq_bytes prefix, key;
    int64_t rev; /* our key's create revision */
    key_wait *older, *own;
    kq_bytes older_key;
    loop_job job;
    kq_done_fn done;
};

/* Checks at once and returns KQ_TURN, KQ_LOST or KQ_ERROR with r filled, or KQ_WAIT: then the queue
 * waits (for deletes of the next older key, or of our own, which ends the wait early as KQ_LOST) and
 * calls done from a loop job when the state changes. prefix and key are copied. */
kq_state key_queue_start(key_queue *q, later_call *lc, kq_bytes prefix, kq_bytes key, int64_t rev,
                         kq_done_fn done, local_result *r);
/* Stops waiting, if it still does, and frees the queue's copies: call it once for every start. */
void key_queue_stop(key_queue *q);

#endif
