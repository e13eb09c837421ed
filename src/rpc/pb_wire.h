/* pb_wire.h: the few protobuf wire-format pieces cetcd writes by hand, where a reply is packed without
 * building a message first (a large Range, a watch id in front of shared events, a Put's reply), and read by
 * hand where a request is decoded without protobuf-c (a Put). One tag byte per field: field numbers below 16.
 * proto3 leaves a zero or empty field out. */
#ifndef CETCD_PB_WIRE_H
#define CETCD_PB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

size_t pb_varint_size(uint64_t v);
uint8_t *pb_put_varint(uint8_t *p, uint64_t v);
/* A varint field (tag byte, value): its bytes, 0 when v is 0. */
size_t pb_int_field_size(int64_t v);
uint8_t *pb_put_int_field(uint8_t *p, unsigned tag, int64_t v);
/* A length-delimited field of len bytes, whole: its bytes, 0 when len is 0. */
size_t pb_bytes_field_size(size_t len);
/* Its tag byte and length; the len bytes follow. Written even when len is 0. */
uint8_t *pb_put_bytes_head(uint8_t *p, unsigned tag, size_t len);
/* Reads a varint of at most max_bytes (1..10) from [*p, end) into *v and moves *p past it; false
 * when it runs past end or is longer than max_bytes. */
bool pb_get_varint(const uint8_t **p, const uint8_t *end, unsigned max_bytes, uint64_t *v);

#endif
