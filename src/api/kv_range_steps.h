/* kv_range_steps.h: a large Range reply whose values are copied over several loop turns
 * (kv_range_steps.c), and the end of a Range call, which drops such a reply if the client went. */
#ifndef CETCD_KV_RANGE_STEPS_H
#define CETCD_KV_RANGE_STEPS_H

#include <stddef.h>

#include "mvcc.h"
#include "reply_sink.h"
#include "rpc.h"

/* A reply with more value bytes than this is copied in steps of about as many. */
#define RANGE_STEP_BYTES ((size_t)2 << 20)

/* Takes over copy (mvcc_range_values_begin into the room out reserved, rpc_sink_reserve_encoded) and
 * commits the reply of len bytes once the last value is in. out must be a gRPC call's sink. */
void kv_range_steps_start(const reply_sink *out, mv_values_copy *copy, size_t len);
/* The method table's on_close of Range: a reply still being copied is dropped with its call. */
void kv_range_closed(rpc_call *call);

#endif
