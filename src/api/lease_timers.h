/* lease_timers.h: when each lease expires. A min-heap of deadlines (monotonic seconds) with an index
 * from lease id to heap slot, so setting, moving or dropping one deadline costs O(log n) however many
 * leases there are; one ev_timer is armed for the earliest deadline. The heap knows nothing of the
 * store: on expiry it calls the function given to lease_timers_start (svc_lease.c revokes there). */
#ifndef CETCD_LEASE_TIMERS_H
#define CETCD_LEASE_TIMERS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------- the heap as a value (unit-testable without a loop) ---------- */

typedef struct lease_heap_item {
    double deadline;
    int64_t id;
} lease_heap_item;

typedef struct lease_heap_slot {
    int64_t id;
    uint32_t pos;  /* index in items */
    uint32_t used; /* 0 = empty slot */
} lease_heap_slot;

typedef struct lease_heap {
    lease_heap_item *items; /* items[0] has the earliest deadline */
    size_t n, cap;
    lease_heap_slot *slots; /* open addressing, linear probing, backward-shift deletion */
    size_t n_slots;         /* a power of two, 0 before the first insert */
} lease_heap;

void lease_heap_free(lease_heap *h);
/* Inserts id with deadline, or moves its deadline if it is already there. */
void lease_heap_set(lease_heap *h, int64_t id, double deadline);
/* Drops id; false if it was not there. */
bool lease_heap_remove(lease_heap *h, int64_t id);
/* id's deadline; false if not there. */
bool lease_heap_get(const lease_heap *h, int64_t id, double *deadline);
/* The earliest deadline and its lease; false if the heap is empty. */
bool lease_heap_peek(const lease_heap *h, int64_t *id, double *deadline);
static inline size_t lease_heap_count(const lease_heap *h) {
    return h->n;
}

/* ---------- the server's one set of lease timers ---------- */

/* The monotonic clock, in seconds, that deadlines are measured on. */
double lease_timers_now(void);

void lease_timers_set(int64_t id, double deadline);
void lease_timers_remove(int64_t id);
bool lease_timers_get(int64_t id, double *deadline);
size_t lease_timers_count(void);
/* Every (id, deadline), in heap order (not sorted). */
const lease_heap_item *lease_timers_items(size_t *n);

/* Called for each lease whose deadline has passed, after it left the heap. It may set or remove
 * timers (including re-adding id). */
typedef void (*lease_expire_fn)(int64_t id);
/* Starts firing expiries on loop (nothing fires before this). At most `budget` leases expire per
 * loop turn, so a burst of expiries never keeps the loop from serving clients. */
void lease_timers_start(struct ev_loop *loop, lease_expire_fn fn, unsigned budget);
/* Stops the timer and forgets every deadline. */
void lease_timers_reset(void);

#endif
