/* header.h: the ResponseHeader every etcd response carries (cluster, member, revision, raft term),
 * filled the same way by every service. */
#ifndef CETCD_HEADER_H
#define CETCD_HEADER_H

#include "rpc.pb-c.h"
#include <stddef.h>
#include <stdint.h>

/* Initialises h as the header of a top-level response at store revision rev. */
void response_header_fill(Etcdserverpb__ResponseHeader *h, int64_t rev);

/* The same header packed as protobuf-c packs it (fields in order, zeros left out) into buf, which
 * holds RESPONSE_HEADER_MAX_BYTES; returns its length. */
#define RESPONSE_HEADER_MAX_BYTES 44
size_t response_header_pack(uint8_t *buf, int64_t rev);

#endif
