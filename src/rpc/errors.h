/* errors.h: etcd's gRPC errors (status code + exact message) in one place, so every service answers
 * with the strings clients match on (clientv3 maps them back to typed errors by text). */
#ifndef CETCD_ERRORS_H
#define CETCD_ERRORS_H

#include "mvcc.h"
#include "rpc.h"

typedef enum etcd_err {
    /* request validation and KV */
    ETCD_ERR_EMPTY_KEY,
    ETCD_ERR_KEY_NOT_FOUND,
    ETCD_ERR_VALUE_PROVIDED,
    ETCD_ERR_LEASE_PROVIDED,
    ETCD_ERR_TOO_MANY_OPS,
    ETCD_ERR_DUPLICATE_KEY,
    ETCD_ERR_INVALID_SORT_OPTION,
    ETCD_ERR_COMPACTED,
    ETCD_ERR_FUTURE_REV,
    ETCD_ERR_NO_SPACE,
    ETCD_ERR_REQUEST_TOO_LARGE,
    ETCD_ERR_TOO_MANY_REQUESTS,
    /* leases */
    ETCD_ERR_LEASE_NOT_FOUND,
    ETCD_ERR_LEASE_EXIST,
    ETCD_ERR_LEASE_TTL_TOO_LARGE,
    /* watch */
    ETCD_ERR_WATCH_CANCELED,
    /* cluster */
    ETCD_ERR_MEMBER_EXIST,
    ETCD_ERR_PEER_URL_EXIST,
    ETCD_ERR_MEMBER_NOT_ENOUGH_STARTED,
    ETCD_ERR_MEMBER_BAD_URLS,
    ETCD_ERR_MEMBER_NOT_FOUND,
    ETCD_ERR_MEMBER_NOT_LEARNER,
    ETCD_ERR_LEARNER_NOT_READY,
    ETCD_ERR_TOO_MANY_LEARNERS,
    ETCD_ERR_CLUSTER_ID_MISMATCH,
    /* auth */
    ETCD_ERR_ROOT_USER_NOT_EXIST,
    ETCD_ERR_ROOT_ROLE_NOT_EXIST,
    ETCD_ERR_USER_ALREADY_EXIST,
    ETCD_ERR_USER_EMPTY,
    ETCD_ERR_USER_NOT_FOUND,
    ETCD_ERR_ROLE_ALREADY_EXIST,
    ETCD_ERR_ROLE_NOT_FOUND,
    ETCD_ERR_ROLE_EMPTY,
    ETCD_ERR_AUTH_FAILED,
    ETCD_ERR_PERMISSION_NOT_GIVEN,
    ETCD_ERR_PERMISSION_DENIED,
    ETCD_ERR_ROLE_NOT_GRANTED,
    ETCD_ERR_PERMISSION_NOT_GRANTED,
    ETCD_ERR_AUTH_NOT_ENABLED,
    ETCD_ERR_INVALID_AUTH_TOKEN,
    ETCD_ERR_INVALID_AUTH_MGMT,
    ETCD_ERR_AUTH_OLD_REVISION,
    /* server state */
    ETCD_ERR_NO_LEADER,
    ETCD_ERR_NOT_LEADER,
    ETCD_ERR_NOT_CAPABLE,
    ETCD_ERR_STOPPED,
    ETCD_ERR_TIMEOUT,
    ETCD_ERR_UNHEALTHY,
    ETCD_ERR_CORRUPT,
    ETCD_ERR_NOT_SUPPORTED_FOR_LEARNER,
    ETCD_ERR_BAD_LEADER_TRANSFEREE,
    /* downgrade */
    ETCD_ERR_WRONG_DOWNGRADE_VERSION_FORMAT,
    ETCD_ERR_INVALID_DOWNGRADE_TARGET_VERSION,
    ETCD_ERR_CLUSTER_VERSION_UNAVAILABLE,
    ETCD_ERR_DOWNGRADE_IN_PROCESS,
    ETCD_ERR_NO_INFLIGHT_DOWNGRADE,
    ETCD_ERR_UNKNOWN_METHOD, /* a Downgrade action etcd does not know */
    /* cetcd's own: the log failed, the server is stopping */
    ETCD_ERR_STORAGE_IO,
    ETCD_ERR_COUNT
} etcd_err;

/* The gRPC status code and exact message of an etcd error. */
int etcd_err_code(etcd_err e);
const char *etcd_err_message(etcd_err e);

/* The etcd error for a storage error (e must not be MV_OK). */
etcd_err etcd_err_from_mv(mv_err e);

/* Finish a call with an etcd error. */
void rpc_fail(rpc_call *call, etcd_err e);
/* Finish a call with the etcd error for a storage error. */
void rpc_fail_mv(rpc_call *call, mv_err e);

#endif
