/* replay_map.c: the key → history map of start-up replay (API in replay_map.h). Replay of a large
 * log was mostly B+ tree descents, each a chain of cache misses through key pointers; here a key is an
 * open-addressing probe on its hash, and the tree is built once, from the keys in sorted order. */
#include "replay_map.h"
#include "alloc.h"
#include "radix_sort.h"

#include <assert.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

/* A slot of the table, 8 bytes so that a large table misses the cache less: 0 when empty, else the top
 * 32 bits of the key's hash (its tag, which also picks the slot) above the key's index in `hists`
 * plus one. `hists` lists the histories (each holds its key) in the order the keys came. */
typedef uint64_t slot;

static uint32_t slot_tag(slot sl) {
    return (uint32_t)(sl >> 32);
}

static size_t slot_index(slot sl) {
    return (size_t)(sl & UINT32_MAX) - 1;
}

static slot make_slot(uint32_t tag, size_t index) {
    assert(index + 1 <= UINT32_MAX); /* up to 4G keys */
    return (uint64_t)tag << 32 | (index + 1);
}

static uint32_t key_tag(const uint8_t *key, size_t len) {
    return (uint32_t)(XXH3_64bits(key, len) >> 32);
}

struct replay_map {
    slot *slots;
    size_t mask; /* slots - 1, a power of two less one */
    size_t count;
    keyhist **hists; /* count of them */
    size_t cap_hists;
};

replay_map *replay_map_new(void) {
    replay_map *m = xcalloc(1, sizeof *m);
    m->mask = 1023;
    m->slots = xcalloc(m->mask + 1, sizeof *m->slots);
    return m;
}

size_t replay_map_count(const replay_map *m) {
    return m->count;
}

static size_t add_history(replay_map *m, keyhist *kh) {
    if (m->count == m->cap_hists) {
        m->cap_hists = m->cap_hists ? m->cap_hists * 2 : 8192;
        m->hists = xrealloc(m->hists, m->cap_hists * sizeof *m->hists);
    }
    m->hists[m->count] = kh;
    return m->count++;
}

/* A table of n slots. Probes land at random: on a large table each one missed the TLB too, so the
 * kernel is asked for huge pages (a hint, as malloc's own mmap is not storage's I/O). */
static slot *new_slots(size_t n) {
    slot *slots = xcalloc(n, sizeof *slots);
    size_t bytes = n * sizeof *slots, page = 4096;
    uintptr_t from = ((uintptr_t)slots + page - 1) & ~(uintptr_t)(page - 1);
    if (bytes >= (4u << 20)) madvise((void *)from, bytes - (from - (uintptr_t)slots), MADV_HUGEPAGE);
    return slots;
}

static void grow(replay_map *m) {
    size_t old_n = m->mask + 1, n = old_n * 2;
    slot *old = m->slots;
    m->slots = new_slots(n);
    m->mask = n - 1;
    assert(m->mask <= UINT32_MAX); /* the tag picks the slot */
    for (size_t i = 0; i < old_n; i++) {
        if (!old[i]) continue;
        size_t j = slot_tag(old[i]) & m->mask;
        while (m->slots[j])
            j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
}

void replay_map_prefetch(const replay_map *m, const uint8_t *key, size_t len) {
    __builtin_prefetch(&m->slots[key_tag(key, len) & m->mask]);
}

keyhist *replay_map_history(replay_map *m, const uint8_t *key, size_t len) {
    assert(len <= UINT32_MAX);
    uint32_t tag = key_tag(key, len);
    size_t i = tag & m->mask;
    for (; m->slots[i]; i = (i + 1) & m->mask) {
        if (slot_tag(m->slots[i]) != tag) continue;
        keyhist *kh = m->hists[slot_index(m->slots[i])];
        const bkey *k = keyhist_key(kh);
        if (k->len == len && (len == 0 || memcmp(k->bytes, key, len) == 0)) return kh;
    }
    keyhist *kh = keyhist_new(key, len);
    m->slots[i] = make_slot(tag, add_history(m, kh));
    if (m->count * 2 > m->mask + 1) grow(m); /* at most half full: probes stay short */
    return kh;
}

/* ---------- sorting ---------- */

/* A key to sort (a radix_item): key holds 8 bytes after the prefix every key shares, big-endian and
 * zero-padded, so that most comparisons are of two integers in the array rather than of bytes behind a
 * pointer; ptr is its history. */
static int compare_keys(const void *a, const void *b) {
    const radix_item *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    const bkey *xk = keyhist_key(x->ptr), *yk = keyhist_key(y->ptr);
    uint32_t common = xk->len < yk->len ? xk->len : yk->len;
    int c = common ? memcmp(xk->bytes, yk->bytes, common) : 0;
    return c ? c : (xk->len > yk->len) - (xk->len < yk->len);
}

/* Length of the prefix shared by every key. */
static size_t shared_prefix(const replay_map *m) {
    size_t shared = SIZE_MAX;
    const uint8_t *first = NULL;
    for (size_t h = 0; h < m->count && shared; h++) {
        const bkey *k = keyhist_key(m->hists[h]);
        if (!first) {
            first = k->bytes;
            shared = k->len;
        }
        size_t n = k->len < shared ? k->len : shared, i = 0;
        while (i < n && k->bytes[i] == first[i])
            i++;
        shared = i;
    }
    return shared == SIZE_MAX ? 0 : shared;
}

static uint64_t head_of(const uint8_t *bytes, uint32_t len, size_t skip) {
    uint64_t head = 0;
    for (size_t i = 0; i < 8; i++)
        head = head << 8 | (skip + i < len ? bytes[skip + i] : 0);
    return head;
}

/* Sorts by the full key: heads first, then each run of equal heads by its bytes. */
static void sort_items(radix_item *items, size_t n) {
    radix_sort(items, n);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && items[j].key == items[i].key)
            j++;
        if (j - i > 1) qsort(items + i, j - i, sizeof *items, compare_keys);
        i = j;
    }
}

enum { PREFETCH_AHEAD = 16 };

void replay_map_load(replay_map *m, bptree *index) {
    assert(bptree_count(index) == 0);
    free(m->slots); /* hists alone lists every key */
    m->slots = NULL;
    size_t skip = shared_prefix(m), n = m->count;
    radix_item *items = xmalloc((n ? n : 1) * sizeof *items);
    for (size_t h = 0; h < n; h++) {
        const bkey *k = keyhist_key(m->hists[h]);
        items[h] = (radix_item){head_of(k->bytes, k->len, skip), m->hists[h]};
    }
    sort_items(items, n);
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) __builtin_prefetch(items[i + PREFETCH_AHEAD].ptr);
        keyhist *kh = items[i].ptr;
        const bkey *k = keyhist_key(kh);
        assert(i == 0 || compare_keys(&items[i - 1], &items[i]) < 0);
        bptree_append(index, k->bytes, k->len, kh);
    }
    free(items);
    free(m->hists);
    free(m);
    malloc_trim(0); /* the table, the list and the sort were freed in the heap's middle: give them back */
}

void replay_map_free(replay_map *m) {
    if (!m) return;
    for (size_t h = 0; h < m->count; h++)
        keyhist_free(m->hists[h]);
    free(m->slots);
    free(m->hists);
    free(m);
}
