/* pbjson.h: protobuf-c messages ⇄ JSON exactly as etcd's grpc-gateway (jsonpb, OrigName, no defaults):
 * proto field names, 64-bit integers as strings, bytes as base64, enums by name. Driven by protobuf-c
 * descriptors, so every etcd message converts without per-message code. */
#ifndef CETCD_PBJSON_H
#define CETCD_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "json.h"
#include "sbuf.h"

/* Builds a message of type d from a JSON object (proto or lowerCamel field names; unknown fields are
 * ignored, as the gateway does). Free it with protobuf_c_message_free_unpacked(msg, NULL).
 * NULL with a message in err on a type mismatch. */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const json_value *v, char *err,
                                size_t errlen);
/* A unary request's body decoded as d: one JSON object, or, for an empty body, an empty request (the
 * gateway decodes io.EOF so). NULL with a message in err. */
ProtobufCMessage *pbjson_decode_body(const ProtobufCMessageDescriptor *d, const uint8_t *body, size_t len,
                                     char *err, size_t errlen);
/* Appends msg as JSON, omitting fields that hold their default value. */
void pbjson_encode(sbuf *out, const ProtobufCMessage *msg);

#endif
