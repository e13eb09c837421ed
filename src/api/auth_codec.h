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

/* For snapshots in etcd's format: a saved blob as etcd's auth buckets, every entry once, each bucket
 * in key order: "auth" holds authEnabled ({1} or {0}, absent for a store that never had auth on) and
 * authRevision (8 bytes big-endian), "authUsers" maps a user name to its authpb.User and "authRoles" a
 * role name to its authpb.Role, the records etcd keeps. An empty blob is a new store (authRevision 1).
 * put returns < 0 to stop, which is returned; -1 if the blob does not read. */
typedef int (*auth_bucket_put)(void *ctx, const char *bucket, const uint8_t *key, size_t key_len,
                               const uint8_t *value, size_t value_len);
int auth_blob_to_buckets(const uint8_t *blob, size_t len, auth_bucket_put put, void *ctx);
/* And back, for a --restore of an etcd snapshot: the blob (malloc'd) holding those buckets' contents;
 * users and roles are the values of authUsers and authRoles in key order. NULL with why filled if a
 * record does not decode. */
uint8_t *auth_blob_from_buckets(bool enabled, uint64_t revision, const mv_bytes *users, size_t n_users,
                                const mv_bytes *roles, size_t n_roles, size_t *len, char *why, size_t whylen);

#endif
