/* change.h: the payload of a write record: the changes of one main revision, in sub-revision order.
 * One decoder for replay, history and log compaction, so the three always agree on the format.
 *   put:     'P', u32 key length, key, i64 lease, i64 create revision, i64 version, u32 value length, value
 *   delete:  'D', u32 key length, key
 *   sub-rev: 'S', u32 sub-revision of the next change (written by log compaction when it drops
 *            changes of a revision, so the ones kept keep their sub-revision; see docs/architecture.md)
 *   revoke:  'R', i64 lease id: the revision is the revocation of that lease (its deletes and the end
 *            of the lease in one record, so a torn write never leaves a revoke half done) */
#ifndef CETCD_CHANGE_H
#define CETCD_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum change_kind { CHANGE_PUT = 'P', CHANGE_DELETE = 'D', CHANGE_SUBREV = 'S', CHANGE_REVOKE = 'R' };

#define CHANGE_KEY_AT 5u      /* kind byte and key length come first */
#define CHANGE_PUT_FIELDS 28u /* lease, create revision, version, value length */
#define CHANGE_SUBREV_BYTES 5u
#define CHANGE_REVOKE_BYTES 9u

typedef struct change {
    int kind; /* CHANGE_PUT or CHANGE_DELETE */
    uint32_t sub_rev;
    const uint8_t *key;
    size_t key_len;
    int64_t lease, create_revision, version; /* puts only */
    const uint8_t *value;
    size_t value_len;
    size_t at, bytes; /* where the change starts in the payload, and its size */
    size_t value_at;  /* where its value starts in the payload (puts) */
} change;

typedef struct change_iter {
    const uint8_t *payload;
    size_t len, at;
    uint32_t next_sub;
    int64_t revoked_lease; /* set once a revoke marker was passed; 0 if none */
} change_iter;

void change_iter_init(change_iter *it, const uint8_t *payload, size_t len);
/* 1 with the next change in *c, 0 at the end, -1 if the payload is malformed. */
int change_next(change_iter *it, change *c);
/* Encodes a change (the formats above; for CHANGE_SUBREV the marker of c->sub_rev) at the end of
 * *buf (grown as needed); returns its size. */
size_t change_encode(uint8_t **buf, size_t *len, size_t *cap, const change *c);
/* Encode the markers into out (CHANGE_SUBREV_BYTES, CHANGE_REVOKE_BYTES). */
void change_encode_subrev(uint8_t *out, uint32_t sub);
void change_encode_revoke(uint8_t *out, int64_t lease);

#endif
