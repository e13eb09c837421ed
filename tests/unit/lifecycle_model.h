/* lifecycle_model.h: the in-memory model the lifecycle test (test_lifecycle.c) checks the store
 * against: every revision still held, its events, the leases, and what each acknowledged or pending
 * step leaves; the model itself is test_lifecycle_model.c. */
#ifndef CETCD_LIFECYCLE_MODEL_H
#define CETCD_LIFECYCLE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NKEYS 24
#define MAX_LEASES 12
#define MAX_PENDING 4 /* ops issued before a commit */

/* ---------- the model: the state and the events of every revision held ---------- */

typedef struct mkv {
    int refs, key;
    int64_t create, mod, version, lease;
    size_t vlen;
    uint8_t value[];
} mkv;

typedef struct mevent {
    int key;
    mkv *put; /* NULL: a delete */
} mevent;

typedef struct mrev {
    mkv *live[NKEYS];
    mevent *ev;
    size_t n_ev;
} mrev;

typedef struct mlease {
    int64_t id, ttl;
} mlease;

/* What the store must show: its revision, compaction and leases; key state comes from revs. */
typedef struct mview {
    int64_t rev, compact;
    mlease leases[MAX_LEASES];
    size_t n_leases;
} mview;

typedef struct model {
    mrev *revs; /* revs[i] is revision base + i, up to tip.rev */
    size_t n, cap;
    int64_t base, acked_rev;
    mview tip;                    /* after every op issued */
    mview views[MAX_PENDING + 1]; /* [0] acknowledged, then after each op not yet committed */
    size_t n_views;
    bool hash_known; /* HashKV seen for (hash_rev, hash_compact) */
    int64_t hash_rev, hash_compact;
    uint32_t hash;
} model;

extern model M;
extern char key_names[NKEYS][96];

mrev *rev_at(int64_t r);
void unref(mkv *kv);
void free_rev(mrev *r);
void model_init(void);
void model_free(void);
mrev *model_new_rev(void);
void model_event(mrev *r, int key, mkv *put);
void model_put(mrev *r, int key, const uint8_t *v, size_t vlen, int64_t lease);
void model_delete(mrev *r, int key);
int lease_index(const mview *v, int64_t id);
void model_grant(int64_t id, int64_t ttl);
void model_forget_lease(int64_t id);
void model_op_done(void);
void model_ack(void);
bool same_view(const mview *a, const mview *b);
void describe_view(char *out, size_t n, const mview *v);
void model_truncate(const mview *v);
int64_t held_from(const mview *v);   /* the oldest revision v holds */
uint64_t live_bytes(const mview *v); /* log bytes v's live data needs at least */

#endif
