/* keyhist.h: one key's history of revisions, oldest first, as etcd's keyIndex keeps it.
 * Each entry is a put (with the place of its value in the log) or a tombstone ending a generation. */
#ifndef CETCD_KEYHIST_H
#define CETCD_KEYHIST_H

#include "log.h"
#include <stdbool.h>
#include <stdint.h>

enum rev_flags {
    REV_TOMBSTONE = 1, /* a delete: ends the key's current generation */
    REV_PENDING = 2,   /* value still in the write being built; place.offset is relative to its payload */
};

typedef struct rev_entry {
    int64_t main_rev;
    int64_t create_revision;
    int64_t version;
    int64_t lease;
    log_place value;
    uint32_t sub_rev;
    uint32_t flags;
} rev_entry;

typedef struct keyhist {
    rev_entry *revs; /* &one while the history fits in it */
    uint32_t count, capacity;
    rev_entry one; /* most keys hold one revision: it lives here, in the same allocation */
} keyhist;

keyhist *keyhist_new(void);
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
/* Log bytes of one change of a key of key_len (shared with mvcc's accounting). */
uint64_t keyhist_change_bytes(size_t key_len, const rev_entry *e);

#endif
