/* change.h: the payload of a write record: the changes of one main revision, in sub-revision order.
 * One decoder for replay, history and log compaction, so the three always agree on the format.
 *   put:     'P', u32 key length, key, i64 lease, i64 create revision, i64 version, u32 value length, value
 *   delete:  'D', u32 key length, key
 *   sub-rev: 'S', u32 sub-revision of the next change (written by log compaction when it drops
 *            changes of a revision, so the ones kept keep their sub-revision; see docs/architecture.md) */
#ifndef CETCD_CHANGE_H
#define CETCD_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum change_kind { CHANGE_PUT = 'P', CHANGE_DELETE = 'D', CHANGE_SUBREV = 'S' };

#define CHANGE_KEY_AT 5u          /* kind byte and key length come first */
#define CHANGE_PUT_FIELDS 28u     /* lease, create revision, version, value length */
#define CHANGE_SUBREV_BYTES 5u

typedef struct change {
    int kind; /* CHANGE_PUT or CHANGE_DELETE */
    uint32_t sub_rev;
    const uint8_t *key;
    size_t key_len;
    int64_t lease, create_revision, version; /* puts only */
    const uint8_t *value;
    size_t value_len;
    size_t at, bytes;   /* where the change starts in the payload, and its size */
    size_t value_at;    /* where its value starts in the payload (puts) */
} change;

typedef struct change_iter {
    const uint8_t *payload;
    size_t len, at;
    uint32_t next_sub;
} change_iter;

void change_iter_init(change_iter *it, const uint8_t *payload, size_t len);
/* 1 with the next change in *c, 0 at the end, -1 if the payload is malformed. */
int change_next(change_iter *it, change *c);
/* Encodes the sub-revision marker into out (CHANGE_SUBREV_BYTES). */
void change_encode_subrev(uint8_t *out, uint32_t sub);

#endif
