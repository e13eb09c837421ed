/* auth_codec.h: the auth model (auth_gate.h) as the one blob storage keeps durable (mvcc_auth_save):
 * a versioned header, then every user and role as etcd's own authpb.User and authpb.Role records, so
 * the blob can become etcd's authUsers and authRoles buckets as they are. */
#ifndef CETCD_AUTH_CODEC_H
#define CETCD_AUTH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc.h"

/* Replaces the model with the store's saved state (a new store: disabled, auth revision 1, as etcd
 * starts). False with why filled if the blob cannot be read (the model is then empty). */
bool auth_load(char *why, size_t whylen);
/* Writes the model to the store: the blob joins the current batch, so a reply sent after this waits
 * for it to be durable (the commit rule). On failure (over quota) the model goes back to the last
 * saved state and the error is returned. */
mv_err auth_save(void);

/* The encoding itself (tests and exports): a malloc'd blob, and its reading into the model. */
uint8_t *auth_encode(size_t *len);
bool auth_decode(const uint8_t *blob, size_t len, char *why, size_t whylen);

#endif
