/* kv_wire.h: a Put read and answered straight on the protobuf wire, without protobuf-c's unpack,
 * allocations and free for the request or its message building for the reply: the put is the hot
 * path of a write load. Anything unusual falls back to protobuf-c, so the answers stay the same. */
#ifndef CETCD_KV_WIRE_H
#define CETCD_KV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.pb-c.h"

/* Decodes msg into *req (key and value pointing into msg) when it holds only PutRequest's fields
 * 1-6, each once, with their wire types and varints of at most 9 bytes; false otherwise, *req then
 * unspecified: protobuf-c decides about such a message. */
bool put_request_decode(const uint8_t *msg, size_t len, Etcdserverpb__PutRequest *req);

/* A PutResponse with its header at revision rev and no prev_kv, as protobuf-c packs it, into buf of
 * PUT_REPLY_MAX_BYTES; returns its length. */
#define PUT_REPLY_MAX_BYTES 48
size_t put_reply_pack(uint8_t *buf, int64_t rev);

#endif
