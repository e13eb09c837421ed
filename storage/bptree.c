/* bptree.c: the B+ tree behind the MVCC key index (API in bptree.h).
 * Leaves hold key copies and values and are linked for scans (a keyed tree's leaves borrow the key
 * inside each value instead); inner nodes hold separator copies.
 * Removal borrows from or merges with a sibling, so a node it touches stays at least half full; an
 * insert past the last key of the last leaf splits off a leaf of its own, so that keys loaded in
 * order fill their leaves instead of halving them, and the leaf of the last insert is remembered (a
 * finger) so that such a load does not descend from the root for every key. */
#include "bptree.h"
#include "alloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { NODE_MAX = 64, NODE_MIN = NODE_MAX / 2, MAX_DEPTH = 32 };

typedef struct bp_node {
    int nkeys;
    bool is_leaf;
    bkey *keys[NODE_MAX];
} bp_node;

typedef struct bp_leaf {
    bp_node base;
    struct bp_leaf *next;
    void *values[NODE_MAX];
} bp_leaf;

/* children[i] holds the keys k with keys[i-1] <= k < keys[i]. */
typedef struct bp_inner {
    bp_node base;
    bp_node *children[NODE_MAX + 1];
} bp_inner;

struct bptree {
    bp_node *root;
    size_t count;
    size_t memory;
    bp_leaf *finger; /* the leaf of the last insert; NULL after any removal (a merge frees leaves) */
    const bkey *(*key_of)(const void *value); /* keyed trees: where a leaf's key lives; else NULL */
};

/* The inner nodes from the root down to a leaf's parent, and the child slot taken in each. */
typedef struct bp_path {
    bp_inner *nodes[MAX_DEPTH];
    int slots[MAX_DEPTH];
    int depth;
} bp_path;

/* ---- keys and nodes ---- */

static bkey *key_new(bptree *t, const uint8_t *bytes, size_t len) {
    assert(len <= UINT32_MAX); /* keys come in requests, under 2 GiB */
    bkey *k = xmalloc(sizeof(bkey) + len);
    k->len = (uint32_t)len;
    if (len) memcpy(k->bytes, bytes, len);
    t->memory += sizeof(bkey) + len;
    return k;
}

static bkey *key_copy(bptree *t, const bkey *k) {
    return key_new(t, k->bytes, k->len);
}

static void key_free(bptree *t, bkey *k) {
    t->memory -= sizeof(bkey) + k->len;
    free(k);
}

/* The key a new leaf entry holds: a copy, or in a keyed tree the value's own. */
static bkey *leaf_key(bptree *t, const uint8_t *bytes, size_t len, void *value) {
    if (!t->key_of) return key_new(t, bytes, len);
    bkey *k = (bkey *)t->key_of(value);
    assert(k->len == len && (len == 0 || memcmp(k->bytes, bytes, len) == 0));
    return k;
}

static void leaf_key_free(bptree *t, bkey *k) {
    if (!t->key_of) key_free(t, k);
}

static int key_cmp(const bkey *k, const uint8_t *key, size_t len) {
    size_t common = k->len < len ? k->len : len;
    int c = common ? memcmp(k->bytes, key, common) : 0;
    if (c) return c;
    return (k->len > len) - (k->len < len);
}

static bp_leaf *leaf_new(bptree *t) {
    bp_leaf *leaf = xmalloc(sizeof *leaf);
    leaf->base.nkeys = 0;
    leaf->base.is_leaf = true;
    leaf->next = NULL;
    t->memory += sizeof *leaf;
    return leaf;
}

static bp_inner *inner_new(bptree *t) {
    bp_inner *inner = xmalloc(sizeof *inner);
    inner->base.nkeys = 0;
    inner->base.is_leaf = false;
    t->memory += sizeof *inner;
    return inner;
}

static void node_free(bptree *t, bp_node *node) {
    t->memory -= node->is_leaf ? sizeof(bp_leaf) : sizeof(bp_inner);
    free(node);
}

/* ---- search ---- */

/* The first index whose key is >= key; *found says whether that key equals it. */
static int lower_bound(const bp_node *node, const uint8_t *key, size_t len, bool *found) {
    int lo = 0, hi = node->nkeys;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (key_cmp(node->keys[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < node->nkeys && key_cmp(node->keys[lo], key, len) == 0;
    return lo;
}

/* The child slot covering key: the number of separators <= key. */
static int child_slot(const bp_inner *inner, const uint8_t *key, size_t len) {
    int lo = 0, hi = inner->base.nkeys;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (key_cmp(inner->base.keys[mid], key, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Walks from the root to the leaf that covers key, recording the way in path (may be NULL). */
static bp_leaf *descend(const bptree *t, const uint8_t *key, size_t len, bp_path *path) {
    bp_node *node = t->root;
    int depth = 0;
    while (!node->is_leaf) {
        bp_inner *inner = (bp_inner *)node;
        int slot = child_slot(inner, key, len);
        if (path && depth < MAX_DEPTH) {
            path->nodes[depth] = inner;
            path->slots[depth] = slot;
        }
        depth++;
        node = inner->children[slot];
    }
    if (path) {
        if (depth > MAX_DEPTH) abort();
        path->depth = depth;
    }
    return (bp_leaf *)node;
}

/* ---- public lookups ---- */

bptree *bptree_new(void) {
    bptree *t = xmalloc(sizeof *t);
    t->count = 0;
    t->memory = sizeof *t;
    t->finger = NULL;
    t->key_of = NULL;
    t->root = &leaf_new(t)->base;
    return t;
}

bptree *bptree_new_keyed(const bkey *(*key_of)(const void *value)) {
    bptree *t = bptree_new();
    t->key_of = key_of;
    return t;
}

static void free_subtree(const bptree *t, bp_node *node, void (*free_value)(void *)) {
    bool owns_keys = !node->is_leaf || !t->key_of; /* a keyed leaf's keys go with its values */
    if (owns_keys)
        for (int i = 0; i < node->nkeys; i++)
            free(node->keys[i]);
    if (node->is_leaf) {
        bp_leaf *leaf = (bp_leaf *)node;
        for (int i = 0; i < node->nkeys; i++)
            if (free_value) free_value(leaf->values[i]);
    } else {
        bp_inner *inner = (bp_inner *)node;
        for (int i = 0; i <= node->nkeys; i++)
            free_subtree(t, inner->children[i], free_value);
    }
    free(node);
}

void bptree_free(bptree *t, void (*free_value)(void *)) {
    if (!t) return;
    free_subtree(t, t->root, free_value);
    free(t);
}

size_t bptree_count(const bptree *t) {
    return t->count;
}

size_t bptree_memory(const bptree *t) {
    return t->memory;
}

void *bptree_get(const bptree *t, const uint8_t *key, size_t len) {
    bp_leaf *leaf = descend(t, key, len, NULL);
    bool found;
    int pos = lower_bound(&leaf->base, key, len, &found);
    return found ? leaf->values[pos] : NULL;
}

/* ---- insertion ---- */

static void leaf_insert_at(bp_leaf *leaf, int pos, bkey *key, void *value) {
    int tail = leaf->base.nkeys - pos;
    memmove(&leaf->base.keys[pos + 1], &leaf->base.keys[pos], tail * sizeof(bkey *));
    memmove(&leaf->values[pos + 1], &leaf->values[pos], tail * sizeof(void *));
    leaf->base.keys[pos] = key;
    leaf->values[pos] = value;
    leaf->base.nkeys++;
}

static void inner_insert_at(bp_inner *inner, int slot, bkey *sep, bp_node *right) {
    int n = inner->base.nkeys;
    memmove(&inner->base.keys[slot + 1], &inner->base.keys[slot], (n - slot) * sizeof(bkey *));
    memmove(&inner->children[slot + 2], &inner->children[slot + 1], (n - slot) * sizeof(bp_node *));
    inner->base.keys[slot] = sep;
    inner->children[slot + 1] = right;
    inner->base.nkeys++;
}

static void insert_into_parent(bptree *t, bp_path *path, int level, bkey *sep, bp_node *right);

/* Splits a full inner node (path level `level`) while adding sep/right at slot, then pushes the
 * middle separator up. */
static void inner_split_insert(bptree *t, bp_path *path, int level, bkey *sep, bp_node *right) {
    bp_inner *left = path->nodes[level];
    int slot = path->slots[level];
    bkey *keys[NODE_MAX + 1];
    bp_node *kids[NODE_MAX + 2];
    memcpy(keys, left->base.keys, NODE_MAX * sizeof(bkey *));
    memcpy(kids, left->children, (NODE_MAX + 1) * sizeof(bp_node *));
    memmove(&keys[slot + 1], &keys[slot], (NODE_MAX - slot) * sizeof(bkey *));
    memmove(&kids[slot + 2], &kids[slot + 1], (NODE_MAX - slot) * sizeof(bp_node *));
    keys[slot] = sep;
    kids[slot + 1] = right;

    int mid = (NODE_MAX + 1) / 2, right_keys = NODE_MAX - mid;
    bp_inner *sibling = inner_new(t);
    memcpy(left->base.keys, keys, mid * sizeof(bkey *));
    memcpy(left->children, kids, (mid + 1) * sizeof(bp_node *));
    left->base.nkeys = mid;
    memcpy(sibling->base.keys, &keys[mid + 1], right_keys * sizeof(bkey *));
    memcpy(sibling->children, &kids[mid + 1], (right_keys + 1) * sizeof(bp_node *));
    sibling->base.nkeys = right_keys;
    insert_into_parent(t, path, level, keys[mid], &sibling->base);
}

/* The node at path level `level` (the root when 0, else the child of nodes[level-1]) has split
 * off `right`, whose keys are all >= sep. */
static void insert_into_parent(bptree *t, bp_path *path, int level, bkey *sep, bp_node *right) {
    if (level == 0) {
        bp_inner *root = inner_new(t);
        root->base.keys[0] = sep;
        root->children[0] = t->root;
        root->children[1] = right;
        root->base.nkeys = 1;
        t->root = &root->base;
        return;
    }
    bp_inner *parent = path->nodes[level - 1];
    if (parent->base.nkeys < NODE_MAX)
        inner_insert_at(parent, path->slots[level - 1], sep, right);
    else
        inner_split_insert(t, path, level - 1, sep, right);
}

/* Returns the leaf that got the key. Past the end of the last leaf the new leaf takes the key alone. */
static bp_leaf *leaf_split_insert(bptree *t, bp_path *path, bp_leaf *left, int pos, bkey *key, void *value) {
    bp_leaf *right = leaf_new(t);
    bool append = pos == NODE_MAX && !left->next;
    int keep = append ? NODE_MAX : NODE_MAX / 2, moved = NODE_MAX - keep;
    memcpy(right->base.keys, &left->base.keys[keep], moved * sizeof(bkey *));
    memcpy(right->values, &left->values[keep], moved * sizeof(void *));
    right->base.nkeys = moved;
    left->base.nkeys = keep;
    right->next = left->next;
    left->next = right;
    bp_leaf *into = pos < keep || (pos == keep && !append) ? left : right;
    leaf_insert_at(into, into == left ? pos : pos - keep, key, value);
    insert_into_parent(t, path, path->depth, key_copy(t, right->base.keys[0]), &right->base);
    return into;
}

/* The finger's leaf, if key belongs in it: between its first and last keys, or past its first key
 * when it is the last leaf. NULL otherwise. */
static bp_leaf *finger_for(const bptree *t, const uint8_t *key, size_t len) {
    bp_leaf *f = t->finger;
    if (!f || f->base.nkeys == 0 || key_cmp(f->base.keys[0], key, len) > 0) return NULL;
    if (f->next && key_cmp(f->base.keys[f->base.nkeys - 1], key, len) < 0) return NULL;
    return f;
}

/* The value slot of key, inserting key when absent with the value make(key, len), or else `given`. */
static void **slot_or_insert(bptree *t, const uint8_t *key, size_t len, bool *created,
                             void *(*make)(const uint8_t *key, size_t len), void *given) {
    bp_path path;
    bp_leaf *leaf = finger_for(t, key, len);
    bool found, descended = !leaf;
    if (!leaf) leaf = descend(t, key, len, &path);
    int pos = lower_bound(&leaf->base, key, len, &found);
    *created = !found;
    if (found) return &leaf->values[pos];
    if (leaf->base.nkeys == NODE_MAX && !descended) { /* a split needs the path */
        leaf = descend(t, key, len, &path);
        pos = lower_bound(&leaf->base, key, len, &found);
    }
    void *value = make ? make(key, len) : given;
    bkey *k = leaf_key(t, key, len, value);
    t->count++;
    if (leaf->base.nkeys < NODE_MAX) {
        leaf_insert_at(leaf, pos, k, value);
        t->finger = leaf;
        return &leaf->values[pos];
    }
    t->finger = leaf_split_insert(t, &path, leaf, pos, k, value);
    bool found_again;
    return &t->finger->values[lower_bound(&t->finger->base, key, len, &found_again)];
}

void **bptree_slot(bptree *t, const uint8_t *key, size_t len, bool *created) {
    assert(!t->key_of); /* a keyed entry needs its value (its key) at the insert */
    return slot_or_insert(t, key, len, created, NULL, NULL);
}

void *bptree_get_or_add(bptree *t, const uint8_t *key, size_t len,
                        void *(*make)(const uint8_t *key, size_t len), bool *created) {
    return *slot_or_insert(t, key, len, created, make, NULL);
}

void *bptree_put(bptree *t, const uint8_t *key, size_t len, void *value) {
    assert(!t->key_of); /* a keyed entry keeps its key: it is never replaced in place */
    bool created;
    void **slot = bptree_slot(t, key, len, &created);
    void *old = created ? NULL : *slot;
    *slot = value;
    return old;
}

void bptree_append(bptree *t, const uint8_t *key, size_t len, void *value) {
    bp_leaf *f = t->finger;
    if (f && !f->next && f->base.nkeys > 0 && f->base.nkeys < NODE_MAX) {
        assert(key_cmp(f->base.keys[f->base.nkeys - 1], key, len) < 0);
        leaf_insert_at(f, f->base.nkeys, leaf_key(t, key, len, value), value);
        t->count++;
        return;
    }
    bool created;
    slot_or_insert(t, key, len, &created, NULL, value);
    assert(created);
    (void)created;
}

/* ---- removal ---- */

static void leaf_remove_at(bp_leaf *leaf, int pos) {
    int tail = leaf->base.nkeys - pos - 1;
    memmove(&leaf->base.keys[pos], &leaf->base.keys[pos + 1], tail * sizeof(bkey *));
    memmove(&leaf->values[pos], &leaf->values[pos + 1], tail * sizeof(void *));
    leaf->base.nkeys--;
}

/* Drops keys[sep] and children[sep + 1] (the separator itself is not freed). */
static void inner_remove_at(bp_inner *inner, int sep) {
    int tail = inner->base.nkeys - sep - 1;
    memmove(&inner->base.keys[sep], &inner->base.keys[sep + 1], tail * sizeof(bkey *));
    memmove(&inner->children[sep + 1], &inner->children[sep + 2], tail * sizeof(bp_node *));
    inner->base.nkeys--;
}

static void replace_separator(bptree *t, bp_inner *parent, int sep, const bkey *new_first) {
    key_free(t, parent->base.keys[sep]);
    parent->base.keys[sep] = key_copy(t, new_first);
}

static void leaf_borrow_left(bptree *t, bp_inner *parent, int slot, bp_leaf *left, bp_leaf *leaf) {
    int last = left->base.nkeys - 1;
    leaf_insert_at(leaf, 0, left->base.keys[last], left->values[last]);
    left->base.nkeys--;
    replace_separator(t, parent, slot - 1, leaf->base.keys[0]);
}

static void leaf_borrow_right(bptree *t, bp_inner *parent, int slot, bp_leaf *leaf, bp_leaf *right) {
    leaf_insert_at(leaf, leaf->base.nkeys, right->base.keys[0], right->values[0]);
    leaf_remove_at(right, 0);
    replace_separator(t, parent, slot, right->base.keys[0]);
}

/* Moves all of right into left and drops right and separator `sep` from the parent. */
static void leaf_merge(bptree *t, bp_inner *parent, int sep, bp_leaf *left, bp_leaf *right) {
    int n = left->base.nkeys, m = right->base.nkeys;
    memcpy(&left->base.keys[n], right->base.keys, m * sizeof(bkey *));
    memcpy(&left->values[n], right->values, m * sizeof(void *));
    left->base.nkeys = n + m;
    left->next = right->next;
    node_free(t, &right->base);
    key_free(t, parent->base.keys[sep]);
    inner_remove_at(parent, sep);
}

static void inner_borrow_left(bp_inner *parent, int slot, bp_inner *left, bp_inner *node) {
    int n = node->base.nkeys, last = left->base.nkeys - 1;
    memmove(&node->base.keys[1], node->base.keys, n * sizeof(bkey *));
    memmove(&node->children[1], node->children, (n + 1) * sizeof(bp_node *));
    node->base.keys[0] = parent->base.keys[slot - 1];
    node->children[0] = left->children[last + 1];
    node->base.nkeys++;
    parent->base.keys[slot - 1] = left->base.keys[last];
    left->base.nkeys--;
}

static void inner_borrow_right(bp_inner *parent, int slot, bp_inner *node, bp_inner *right) {
    int n = node->base.nkeys, m = right->base.nkeys;
    node->base.keys[n] = parent->base.keys[slot];
    node->children[n + 1] = right->children[0];
    node->base.nkeys++;
    parent->base.keys[slot] = right->base.keys[0];
    memmove(right->base.keys, &right->base.keys[1], (m - 1) * sizeof(bkey *));
    memmove(right->children, &right->children[1], m * sizeof(bp_node *));
    right->base.nkeys--;
}

/* Pulls separator `sep` down into left, appends right, and drops right from the parent. */
static void inner_merge(bptree *t, bp_inner *parent, int sep, bp_inner *left, bp_inner *right) {
    int n = left->base.nkeys, m = right->base.nkeys;
    left->base.keys[n] = parent->base.keys[sep];
    memcpy(&left->base.keys[n + 1], right->base.keys, m * sizeof(bkey *));
    memcpy(&left->children[n + 1], right->children, (m + 1) * sizeof(bp_node *));
    left->base.nkeys = n + 1 + m;
    node_free(t, &right->base);
    inner_remove_at(parent, sep);
}

/* Restores the fill of the inner node at path level `level` after it lost a separator. */
static void rebalance_inner(bptree *t, bp_path *path, int level) {
    bp_inner *node = path->nodes[level];
    if (level == 0) {
        if (node->base.nkeys == 0) {
            t->root = node->children[0];
            node_free(t, &node->base);
        }
        return;
    }
    if (node->base.nkeys >= NODE_MIN) return;
    bp_inner *parent = path->nodes[level - 1];
    int slot = path->slots[level - 1];
    bp_inner *left = slot > 0 ? (bp_inner *)parent->children[slot - 1] : NULL;
    bp_inner *right = slot < parent->base.nkeys ? (bp_inner *)parent->children[slot + 1] : NULL;
    if (left && left->base.nkeys > NODE_MIN) {
        inner_borrow_left(parent, slot, left, node);
        return;
    }
    if (right && right->base.nkeys > NODE_MIN) {
        inner_borrow_right(parent, slot, node, right);
        return;
    }
    if (left)
        inner_merge(t, parent, slot - 1, left, node);
    else
        inner_merge(t, parent, slot, node, right);
    rebalance_inner(t, path, level - 1);
}

static void rebalance_leaf(bptree *t, bp_path *path, bp_leaf *leaf) {
    bp_inner *parent = path->nodes[path->depth - 1];
    int slot = path->slots[path->depth - 1];
    bp_leaf *left = slot > 0 ? (bp_leaf *)parent->children[slot - 1] : NULL;
    bp_leaf *right = slot < parent->base.nkeys ? (bp_leaf *)parent->children[slot + 1] : NULL;
    if (left && left->base.nkeys > NODE_MIN) {
        leaf_borrow_left(t, parent, slot, left, leaf);
        return;
    }
    if (right && right->base.nkeys > NODE_MIN) {
        leaf_borrow_right(t, parent, slot, leaf, right);
        return;
    }
    if (left)
        leaf_merge(t, parent, slot - 1, left, leaf);
    else
        leaf_merge(t, parent, slot, leaf, right);
    rebalance_inner(t, path, path->depth - 1);
}

void *bptree_remove(bptree *t, const uint8_t *key, size_t len) {
    t->finger = NULL;
    bp_path path;
    bp_leaf *leaf = descend(t, key, len, &path);
    bool found;
    int pos = lower_bound(&leaf->base, key, len, &found);
    if (!found) return NULL;
    void *old = leaf->values[pos];
    leaf_key_free(t, leaf->base.keys[pos]);
    leaf_remove_at(leaf, pos);
    t->count--;
    if (path.depth > 0 && leaf->base.nkeys < NODE_MIN) rebalance_leaf(t, &path, leaf);
    return old;
}

/* ---- iteration ---- */

static void skip_exhausted_leaves(bptree_iter *it) {
    while (it->leaf && it->pos >= ((bp_leaf *)it->leaf)->base.nkeys) {
        it->leaf = ((bp_leaf *)it->leaf)->next;
        it->pos = 0;
    }
}

void bptree_seek(const bptree *t, const uint8_t *key, size_t len, bptree_iter *it) {
    bp_leaf *leaf = descend(t, key, len, NULL);
    bool found;
    it->tree = t;
    it->leaf = leaf;
    it->pos = lower_bound(&leaf->base, key, len, &found);
    skip_exhausted_leaves(it);
}

bool bptree_iter_valid(const bptree_iter *it) {
    return it->leaf && it->pos < ((const bp_leaf *)it->leaf)->base.nkeys;
}

const uint8_t *bptree_iter_key(const bptree_iter *it, size_t *len) {
    const bkey *k = ((const bp_leaf *)it->leaf)->base.keys[it->pos];
    if (len) *len = k->len;
    return k->bytes;
}

void *bptree_iter_value(const bptree_iter *it) {
    return ((const bp_leaf *)it->leaf)->values[it->pos];
}

void bptree_iter_prefetch(const bptree_iter *it, int ahead) {
    const bp_leaf *leaf = it->leaf;
    if (!leaf || it->pos + ahead < 0 || it->pos + ahead >= leaf->base.nkeys) return;
    const char *key = (const char *)leaf->base.keys[it->pos + ahead];
    __builtin_prefetch(key);
    __builtin_prefetch(key + 64); /* a keyed tree's key lies in its value, which goes on past it */
}

void bptree_iter_next(bptree_iter *it) {
    if (!it->leaf) return;
    it->pos++;
    skip_exhausted_leaves(it);
}

/* The leaf before the one path leads to (the rightmost of the nearest subtree to its left), or NULL. */
static bp_leaf *leaf_before(const bp_path *path) {
    for (int d = path->depth - 1; d >= 0; d--) {
        if (path->slots[d] == 0) continue;
        bp_node *n = path->nodes[d]->children[path->slots[d] - 1];
        while (!n->is_leaf)
            n = ((bp_inner *)n)->children[n->nkeys];
        assert(n->nkeys > 0); /* only the root may be an empty leaf */
        return (bp_leaf *)n;
    }
    return NULL;
}

void bptree_seek_before(const bptree *t, const uint8_t *key, size_t len, bptree_iter *it) {
    bp_path path;
    bp_leaf *leaf = descend(t, key, len, &path);
    bool found;
    int pos = lower_bound(&leaf->base, key, len, &found);
    if (pos == 0) { /* every key here is >= key; the leaf before holds only smaller ones */
        leaf = leaf_before(&path);
        pos = leaf ? leaf->base.nkeys : 0;
    }
    *it = (bptree_iter){.tree = t, .leaf = leaf, .pos = pos - 1};
}

void bptree_seek_last(const bptree *t, bptree_iter *it) {
    bp_node *n = t->root;
    while (!n->is_leaf)
        n = ((bp_inner *)n)->children[n->nkeys];
    *it = (bptree_iter){.tree = t, .leaf = n->nkeys ? n : NULL, .pos = n->nkeys - 1};
}

void bptree_iter_prev(bptree_iter *it) {
    if (!it->leaf) return;
    if (it->pos > 0) {
        it->pos--;
        return;
    }
    const bkey *first = ((const bp_leaf *)it->leaf)->base.keys[0];
    bptree_seek_before(it->tree, first->bytes, first->len, it);
}

/* ---- structural check (debug, tests) ---- */

typedef struct check_state {
    int leaf_depth;
    const bp_leaf *prev_leaf;
    size_t count;
    size_t memory;
} check_state;

static int bkey_cmp(const bkey *a, const bkey *b) {
    return key_cmp(a, b->bytes, b->len);
}

/* Keys strictly ascending and within [lo, hi) (NULL: unbounded); also counts their memory. */
static bool check_keys(const bptree *t, const bp_node *node, const bkey *lo, const bkey *hi,
                       check_state *st) {
    bool owned = !node->is_leaf || !t->key_of;
    for (int i = 0; i < node->nkeys; i++) {
        const bkey *k = node->keys[i];
        if (i > 0 && bkey_cmp(node->keys[i - 1], k) >= 0) return false;
        if ((lo && bkey_cmp(k, lo) < 0) || (hi && bkey_cmp(k, hi) >= 0)) return false;
        if (owned) st->memory += sizeof(bkey) + k->len;
    }
    return true;
}

static bool check_leaf(const bp_leaf *leaf, int depth, check_state *st) {
    if (st->leaf_depth < 0) st->leaf_depth = depth;
    if (depth != st->leaf_depth) return false;
    if (st->prev_leaf ? st->prev_leaf->next != leaf : false) return false;
    st->prev_leaf = leaf;
    st->count += leaf->base.nkeys;
    st->memory += sizeof *leaf;
    return true;
}

static bool check_node(const bptree *t, const bp_node *node, int depth, const bkey *lo, const bkey *hi,
                       check_state *st) {
    bool is_root = depth == 0;
    /* the last leaf (no upper bound) may hold fewer: appends split off a leaf of one key */
    int min = is_root ? (node->is_leaf ? 0 : 1) : node->is_leaf && !hi ? 1 : NODE_MIN;
    if (node->nkeys < min || node->nkeys > NODE_MAX) return false;
    if (!check_keys(t, node, lo, hi, st)) return false;
    if (node->is_leaf) return check_leaf((const bp_leaf *)node, depth, st);
    const bp_inner *inner = (const bp_inner *)node;
    st->memory += sizeof *inner;
    for (int i = 0; i <= node->nkeys; i++) {
        const bkey *child_lo = i > 0 ? node->keys[i - 1] : lo;
        const bkey *child_hi = i < node->nkeys ? node->keys[i] : hi;
        if (!check_node(t, inner->children[i], depth + 1, child_lo, child_hi, st)) return false;
    }
    return true;
}

bool bptree_check(const bptree *t) {
    check_state st = {.leaf_depth = -1, .prev_leaf = NULL, .count = 0, .memory = sizeof *t};
    if (!check_node(t, t->root, 0, NULL, NULL, &st)) return false;
    if (st.prev_leaf && st.prev_leaf->next) return false;
    return st.count == t->count && st.memory == t->memory;
}
