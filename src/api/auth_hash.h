/* auth_hash.h: bcrypt for the Auth service, from libxcrypt (crypt_r with "$2b$" settings made by
 * crypt_gensalt_rn), never hand-written. A hash takes 50-150 ms at etcd's default cost 10, so calls
 * (gRPC and the JSON gateway's alike) hash on helper threads and get the result back on the loop. */
#ifndef CETCD_AUTH_HASH_H
#define CETCD_AUTH_HASH_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_BCRYPT_DEFAULT_COST 10 /* etcd's bcrypt.DefaultCost */

/* Readies the hashing (threads start with the first jobs that find none idle); results are delivered
 * on loop. */
void auth_hash_start(struct ev_loop *loop);
/* --bcrypt-cost, or etcd's default when unset or outside bcrypt's 4..31 (warned once at start). */
int auth_hash_cost(void);

/* A finished job, on the loop: for a hash, hash is the new bcrypt string (NULL if it failed) and
 * matched is unused; for a verification, matched says whether the password fits. */
typedef void (*auth_hash_done)(void *ctx, const char *hash, bool matched);

/* Queue a hash of password (copied) at auth_hash_cost(). False when too many jobs wait (the caller
 * answers "too many requests"); done is then never called. */
bool auth_hash_make(const char *password, auth_hash_done done, void *ctx);
/* Queue a check of password against a stored bcrypt hash (both copied). */
bool auth_hash_verify(const char *password, const uint8_t *hash, size_t hash_len, auth_hash_done done,
                      void *ctx);

/* Jobs queued or running whose result the loop has not taken yet. */
size_t auth_hash_pending(void);

#endif
