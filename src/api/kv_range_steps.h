/* kv_range_steps.h: a Range reply whose values are copied, or whose count is counted, over several
 * loop turns (kv_range_steps.c), and the end of a Range call, which drops such a reply if the client went. */
#ifndef CETCD_KV_RANGE_STEPS_H
#define CETCD_KV_RANGE_STEPS_H

#include <stddef.h>

#include "mvcc.h"
#include "reply_sink.h"
#include "rpc.h"

/* A reply with more value bytes than this is copied in steps of about as many. */
#define RANGE_STEP_BYTES ((size_t)2 << 20)

/* What a Range reply still waits for: its values (copy, mvcc_range_values_begin into the room the
 * call's output reserved, rpc_sink_reserve_encoded), its count (rest, mvcc_range_select), or both.
 * The reply begins at msg and has len bytes (with rest: all but the count, its last field). */
typedef struct range_rest {
    mv_values_copy *copy;
    mv_count_rest *rest;
    uint8_t *msg;
    size_t len;
} range_rest;

/* Takes over what r holds and commits the reply once its values are in and its count is known. out
 * must be a gRPC call's sink. */
void kv_range_steps_start(const reply_sink *out, const range_rest *r);
/* The method table's on_close of Range: a reply still being copied is dropped with its call. */
void kv_range_closed(rpc_call *call);

#endif
