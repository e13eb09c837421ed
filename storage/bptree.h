/* bptree.h: an ordered map from byte-string keys to opaque pointers, kept as a B+ tree.
 * The MVCC index holds one entry per key here; leaves are linked so range scans are a walk.
 * Keys compare as unsigned bytes (memcmp, shorter first on a tie), exactly as etcd orders keys. */
#ifndef CETCD_BPTREE_H
#define CETCD_BPTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bptree bptree;

/* A key as the tree compares it: its length, then its bytes. */
typedef struct bkey {
    uint32_t len;
    uint8_t bytes[];
} bkey;

/* A position in the tree. Any insert or remove invalidates every iterator. */
typedef struct bptree_iter {
    const bptree *tree;
    void *leaf;
    int pos;
} bptree_iter;

bptree *bptree_new(void);
/* A tree whose leaves borrow each key from its value: key_of(value), which must not change or move
 * while the value is in the tree (inner nodes still hold copies). No key is copied per entry. Such a
 * tree takes its entries through bptree_get_or_add and bptree_append, not bptree_slot or bptree_put. */
bptree *bptree_new_keyed(const bkey *(*key_of)(const void *value));
/* Frees the tree; free_value (may be NULL) is called on every stored value. */
void bptree_free(bptree *t, void (*free_value)(void *));
size_t bptree_count(const bptree *t);

void *bptree_get(const bptree *t, const uint8_t *key, size_t len);
/* Inserts key (copied) or replaces its value. Returns the previous value, or NULL if the key is new. */
void *bptree_put(bptree *t, const uint8_t *key, size_t len, void *value);
/* The value slot of key, inserting the key (value NULL, *created true) if absent: one descent for
 * "find or add". The pointer is valid until the next insert or remove. */
void **bptree_slot(bptree *t, const uint8_t *key, size_t len, bool *created);
/* The value of key; if absent, make(key, len) makes one, which is inserted (*created true). */
void *bptree_get_or_add(bptree *t, const uint8_t *key, size_t len,
                        void *(*make)(const uint8_t *key, size_t len), bool *created);
/* Inserts key, which must be past every key in the tree (a load in order): no search while the last
 * leaf has room. */
void bptree_append(bptree *t, const uint8_t *key, size_t len, void *value);
/* Removes key. Returns its value, or NULL if absent. */
void *bptree_remove(bptree *t, const uint8_t *key, size_t len);

/* Positions it at the first key >= key (len 0: the first key). */
void bptree_seek(const bptree *t, const uint8_t *key, size_t len, bptree_iter *it);
bool bptree_iter_valid(const bptree_iter *it);
const uint8_t *bptree_iter_key(const bptree_iter *it, size_t *len);
void *bptree_iter_value(const bptree_iter *it);
void bptree_iter_next(bptree_iter *it);
/* Asks the CPU to fetch the key `ahead` places on (negative: back) in the same leaf: a hint, for walks
 * over many keys whose keys or values lie all over memory. */
void bptree_iter_prefetch(const bptree_iter *it, int ahead);
/* Backwards: positions it at the last key < key, or at the last key of all; prev moves to the key
 * before (each leaf crossed costs a descent from the root). Invalid once before the first key. */
void bptree_seek_before(const bptree *t, const uint8_t *key, size_t len, bptree_iter *it);
void bptree_seek_last(const bptree *t, bptree_iter *it);
void bptree_iter_prev(bptree_iter *it);

/* Bytes of memory held by the tree's nodes and keys (not values), for reports. */
size_t bptree_memory(const bptree *t);

/* Debug: verifies ordering, fill, equal leaf depth, the leaf chain, count and memory. O(n). */
bool bptree_check(const bptree *t);

#endif
