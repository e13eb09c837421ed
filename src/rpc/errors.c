/* errors.c: the table of etcd's gRPC errors (codes and strings as in etcd's api/v3rpc/rpctypes) and
 * the mapping from storage errors to them. One place, so no service spells a message differently. */
#include "errors.h"

typedef struct etcd_error_def {
    int code;
    const char *message;
} etcd_error_def;

static const etcd_error_def etcd_errors[ETCD_ERR_COUNT] = {
    [ETCD_ERR_EMPTY_KEY] = {GRPC_INVALID_ARGUMENT, "etcdserver: key is not provided"},
    [ETCD_ERR_KEY_NOT_FOUND] = {GRPC_INVALID_ARGUMENT, "etcdserver: key not found"},
    [ETCD_ERR_VALUE_PROVIDED] = {GRPC_INVALID_ARGUMENT, "etcdserver: value is provided"},
    [ETCD_ERR_LEASE_PROVIDED] = {GRPC_INVALID_ARGUMENT, "etcdserver: lease is provided"},
    [ETCD_ERR_TOO_MANY_OPS] = {GRPC_INVALID_ARGUMENT, "etcdserver: too many operations in txn request"},
    [ETCD_ERR_DUPLICATE_KEY] = {GRPC_INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"},
    [ETCD_ERR_INVALID_SORT_OPTION] = {GRPC_INVALID_ARGUMENT, "etcdserver: invalid sort option"},
    [ETCD_ERR_COMPACTED] = {GRPC_OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"},
    [ETCD_ERR_FUTURE_REV] = {GRPC_OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"},
    [ETCD_ERR_NO_SPACE] = {GRPC_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
    [ETCD_ERR_REQUEST_TOO_LARGE] = {GRPC_INVALID_ARGUMENT, "etcdserver: request is too large"},
    [ETCD_ERR_TOO_MANY_REQUESTS] = {GRPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests"},

    [ETCD_ERR_LEASE_NOT_FOUND] = {GRPC_NOT_FOUND, "etcdserver: requested lease not found"},
    [ETCD_ERR_LEASE_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: lease already exists"},
    [ETCD_ERR_LEASE_TTL_TOO_LARGE] = {GRPC_OUT_OF_RANGE, "etcdserver: too large lease TTL"},

    [ETCD_ERR_WATCH_CANCELED] = {GRPC_CANCELLED, "etcdserver: watch canceled"},

    [ETCD_ERR_MEMBER_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: member ID already exist"},
    [ETCD_ERR_PEER_URL_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"},
    [ETCD_ERR_MEMBER_NOT_ENOUGH_STARTED] = {GRPC_FAILED_PRECONDITION,
                                            "etcdserver: re-configuration failed due to not enough "
                                            "started members"},
    [ETCD_ERR_MEMBER_BAD_URLS] = {GRPC_INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"},
    [ETCD_ERR_MEMBER_NOT_FOUND] = {GRPC_NOT_FOUND, "etcdserver: member not found"},
    [ETCD_ERR_MEMBER_NOT_LEARNER] = {GRPC_FAILED_PRECONDITION,
                                     "etcdserver: can only promote a learner member"},
    [ETCD_ERR_LEARNER_NOT_READY] = {GRPC_FAILED_PRECONDITION,
                                    "etcdserver: can only promote a learner member which is in sync with "
                                    "leader"},
    [ETCD_ERR_TOO_MANY_LEARNERS] = {GRPC_FAILED_PRECONDITION,
                                    "etcdserver: too many learner members in cluster"},
    [ETCD_ERR_CLUSTER_ID_MISMATCH] = {GRPC_FAILED_PRECONDITION, "etcdserver: cluster ID mismatch"},

    [ETCD_ERR_ROOT_USER_NOT_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: root user does not exist"},
    [ETCD_ERR_ROOT_ROLE_NOT_EXIST] = {GRPC_FAILED_PRECONDITION,
                                      "etcdserver: root user does not have root role"},
    [ETCD_ERR_USER_ALREADY_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: user name already exists"},
    [ETCD_ERR_USER_EMPTY] = {GRPC_INVALID_ARGUMENT, "etcdserver: user name is empty"},
    [ETCD_ERR_USER_NOT_FOUND] = {GRPC_FAILED_PRECONDITION, "etcdserver: user name not found"},
    [ETCD_ERR_ROLE_ALREADY_EXIST] = {GRPC_FAILED_PRECONDITION, "etcdserver: role name already exists"},
    [ETCD_ERR_ROLE_NOT_FOUND] = {GRPC_FAILED_PRECONDITION, "etcdserver: role name not found"},
    [ETCD_ERR_ROLE_EMPTY] = {GRPC_INVALID_ARGUMENT, "etcdserver: role name is empty"},
    [ETCD_ERR_AUTH_FAILED] = {GRPC_INVALID_ARGUMENT,
                              "etcdserver: authentication failed, invalid user ID or password"},
    [ETCD_ERR_PERMISSION_NOT_GIVEN] = {GRPC_INVALID_ARGUMENT, "etcdserver: permission not given"},
    [ETCD_ERR_PERMISSION_DENIED] = {GRPC_PERMISSION_DENIED, "etcdserver: permission denied"},
    [ETCD_ERR_ROLE_NOT_GRANTED] = {GRPC_FAILED_PRECONDITION, "etcdserver: role is not granted to the user"},
    [ETCD_ERR_PERMISSION_NOT_GRANTED] = {GRPC_FAILED_PRECONDITION,
                                         "etcdserver: permission is not granted to the role"},
    [ETCD_ERR_AUTH_NOT_ENABLED] = {GRPC_FAILED_PRECONDITION, "etcdserver: authentication is not enabled"},
    [ETCD_ERR_INVALID_AUTH_TOKEN] = {GRPC_UNAUTHENTICATED, "etcdserver: invalid auth token"},
    [ETCD_ERR_INVALID_AUTH_MGMT] = {GRPC_INVALID_ARGUMENT, "etcdserver: invalid auth management"},
    [ETCD_ERR_AUTH_OLD_REVISION] = {GRPC_INVALID_ARGUMENT, "etcdserver: revision of auth store is old"},

    [ETCD_ERR_NO_LEADER] = {GRPC_UNAVAILABLE, "etcdserver: no leader"},
    [ETCD_ERR_NOT_LEADER] = {GRPC_FAILED_PRECONDITION, "etcdserver: not leader"},
    [ETCD_ERR_NOT_CAPABLE] = {GRPC_FAILED_PRECONDITION, "etcdserver: not capable"},
    [ETCD_ERR_STOPPED] = {GRPC_UNAVAILABLE, "etcdserver: server stopped"},
    [ETCD_ERR_TIMEOUT] = {GRPC_UNAVAILABLE, "etcdserver: request timed out"},
    [ETCD_ERR_UNHEALTHY] = {GRPC_UNAVAILABLE, "etcdserver: unhealthy cluster"},
    [ETCD_ERR_CORRUPT] = {GRPC_DATA_LOSS, "etcdserver: corrupt cluster"},
    [ETCD_ERR_NOT_SUPPORTED_FOR_LEARNER] = {GRPC_FAILED_PRECONDITION,
                                            "etcdserver: rpc not supported for learner"},
    [ETCD_ERR_BAD_LEADER_TRANSFEREE] = {GRPC_FAILED_PRECONDITION, "etcdserver: bad leader transferee"},

    [ETCD_ERR_WRONG_DOWNGRADE_VERSION_FORMAT] = {GRPC_INVALID_ARGUMENT,
                                                 "etcdserver: wrong downgrade target version format"},
    [ETCD_ERR_INVALID_DOWNGRADE_TARGET_VERSION] = {GRPC_INVALID_ARGUMENT,
                                                   "etcdserver: invalid downgrade target version"},
    [ETCD_ERR_CLUSTER_VERSION_UNAVAILABLE] = {GRPC_UNAVAILABLE,
                                              "etcdserver: cluster version not found during downgrade"},
    [ETCD_ERR_DOWNGRADE_IN_PROCESS] = {GRPC_FAILED_PRECONDITION,
                                       "etcdserver: cluster has a downgrade job in progress"},
    [ETCD_ERR_NO_INFLIGHT_DOWNGRADE] = {GRPC_FAILED_PRECONDITION, "etcdserver: no inflight downgrade job"},
    /* not in rpctypes' table: togRPCError answers it as codes.Unknown with the error's text */
    [ETCD_ERR_UNKNOWN_METHOD] = {GRPC_UNKNOWN, "etcdserver: unknown method"},

    /* etcd has no such error: a failing disk makes it panic. Clients see the server go away. */
    [ETCD_ERR_STORAGE_IO] = {GRPC_UNAVAILABLE, "etcdserver: server stopped"},
};

static const etcd_err mv_to_etcd[] = {
    [MV_ERR_COMPACTED] = ETCD_ERR_COMPACTED,
    [MV_ERR_FUTURE_REV] = ETCD_ERR_FUTURE_REV,
    [MV_ERR_EMPTY_KEY] = ETCD_ERR_EMPTY_KEY,
    [MV_ERR_DUPLICATE_KEY] = ETCD_ERR_DUPLICATE_KEY,
    [MV_ERR_TOO_MANY_OPS] = ETCD_ERR_TOO_MANY_OPS,
    [MV_ERR_NO_SPACE] = ETCD_ERR_NO_SPACE,
    [MV_ERR_LEASE_NOT_FOUND] = ETCD_ERR_LEASE_NOT_FOUND,
    [MV_ERR_KEY_NOT_FOUND] = ETCD_ERR_KEY_NOT_FOUND,
    [MV_ERR_VALUE_PROVIDED] = ETCD_ERR_VALUE_PROVIDED,
    [MV_ERR_LEASE_PROVIDED] = ETCD_ERR_LEASE_PROVIDED,
    [MV_ERR_LEASE_EXISTS] = ETCD_ERR_LEASE_EXIST,
    [MV_ERR_IO] = ETCD_ERR_STORAGE_IO,
};

int etcd_err_code(etcd_err e) {
    if ((unsigned)e >= ETCD_ERR_COUNT || etcd_errors[e].message == NULL) return GRPC_INTERNAL;
    return etcd_errors[e].code;
}

const char *etcd_err_message(etcd_err e) {
    if ((unsigned)e >= ETCD_ERR_COUNT || etcd_errors[e].message == NULL) return "etcdserver: internal error";
    return etcd_errors[e].message;
}

etcd_err etcd_err_from_mv(mv_err e) {
    size_t n = sizeof mv_to_etcd / sizeof mv_to_etcd[0];
    if (e <= MV_OK || (size_t)e >= n)
        return ETCD_ERR_STORAGE_IO; /* unknown storage failure: treat as fatal */
    return mv_to_etcd[e];
}

void rpc_fail(rpc_call *call, etcd_err e) {
    rpc_finish(call, etcd_err_code(e), etcd_err_message(e));
}

void rpc_fail_mv(rpc_call *call, mv_err e) {
    rpc_fail(call, etcd_err_from_mv(e));
}
