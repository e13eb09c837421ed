/* keyhist.h: one key's history of revisions, oldest first, as etcd's keyIndex keeps it.
 * Each entry is a put (with the place of its value in the log) or a tombstone ending a generation. */
#ifndef CETCD_KEYHIST_H
#define CETCD_KEYHIST_H

#include "bptree.h"
#include "log.h"
#include <stdbool.h>
#include <stdint.h>

enum rev_flags {
    REV_TOMBSTONE = 1, /* a delete: ends the key's current generation */
    REV_PENDING = 2,   /* value still in the write being built; value.offset is relative to its payload */
};

/* Where a value lives: a log_place in 12 bytes. Segment files stay under 4 GiB (a segment rolls at
 * 64 MiB and a record is at most --max-request-bytes, under 2 GiB), so an offset fits 32 bits. */
typedef struct value_place {
    uint32_t segment;
    uint32_t length;
    uint32_t offset;
} value_place;

#define REV_SUB_BITS 28
#define REV_SUB_MAX ((1u << REV_SUB_BITS) - 1) /* changes in one revision: a txn or a DeleteRange */

/* One change of a key: 48 bytes, as millions of them are held (docs/architecture.md, memory). */
typedef struct rev_entry {
    int64_t main_rev;
    int64_t create_revision;
    int64_t version;
    int64_t lease;
    value_place value;
    uint32_t sub_rev : REV_SUB_BITS;
    uint32_t flags : 32 - REV_SUB_BITS;
} rev_entry;

/* A key and its history in one allocation (keyhist_new): this header, the key as a bkey (what the
 * B+ tree compares: the index's leaves borrow it), then, 8-byte aligned, either the one entry most
 * keys hold (count <= 1) or a pointer to an array of entries, as many as the power of two at or above
 * count. A 16-byte key with one entry takes 72 bytes, an 80-byte malloc chunk. */
typedef struct keyhist {
    uint32_t count;
} keyhist;

keyhist *keyhist_new(const uint8_t *key, size_t len);
/* The key, as the index's leaves hold it (bptree_new_keyed). */
const bkey *keyhist_key(const keyhist *kh);
const bkey *keyhist_key_of(const void *kh); /* the same, as a bptree key_of */
void keyhist_free(void *kh);
/* The newest entry, tombstone or not; NULL if the history is empty. */
rev_entry *keyhist_newest(const keyhist *kh);
/* The live entry at revision rev (the newest with main_rev <= rev), NULL if absent or deleted then. */
rev_entry *keyhist_at(const keyhist *kh, int64_t rev);
/* Appends an entry; returns a pointer valid until the next append to this history. */
rev_entry *keyhist_append(keyhist *kh, const rev_entry *e);
/* Drops history below rev as etcd's compaction does: keeps the newest entry <= rev unless it is a
 * tombstone. Returns true when nothing is left (the key can leave the index). */
bool keyhist_compact(keyhist *kh, int64_t rev, size_t key_len, uint64_t *dropped_bytes);
/* Is e (an entry of kh) still held after a compaction at compact_rev? Above it, yes; at or below,
 * only the newest such entry, and only if it is not a tombstone (etcd's rule). Lets readers see the
 * compacted history while the index is pruned in slices. */
bool keyhist_holds(const keyhist *kh, const rev_entry *e, int64_t compact_rev);
/* The entry written at (main_rev, sub_rev), or NULL. */
rev_entry *keyhist_find(const keyhist *kh, int64_t main_rev, uint32_t sub_rev);
/* The entries, oldest first: keyhist_count of them. Valid until the next append or compaction. */
rev_entry *keyhist_entries(keyhist *kh);
static inline uint32_t keyhist_count(const keyhist *kh) {
    return kh->count;
}
/* The log_place of a value, and the value_place of a log_place (which must be under 4 GiB). */
static inline log_place value_log_place(value_place v) {
    return (log_place){.segment = v.segment, .length = v.length, .offset = v.offset};
}
value_place value_place_of(log_place where);
/* Log bytes of one change of a key of key_len (shared with mvcc's accounting). */
uint64_t keyhist_change_bytes(size_t key_len, const rev_entry *e);

#endif
