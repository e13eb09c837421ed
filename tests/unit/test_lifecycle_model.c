/* test_lifecycle_model.c: the model of lifecycle_model.h: a plain in-memory record of every revision
 * held, built step by step as test_lifecycle.c issues them, trimmed as they are acknowledged and cut
 * back to what a crash left. It has no test suite of its own. */
#include "crashfs.h"
#include "lifecycle_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

model M;

char key_names[NKEYS][96];

mrev *rev_at(int64_t r) {
    return &M.revs[r - M.base];
}

void unref(mkv *kv) {
    if (kv && --kv->refs == 0) free(kv);
}

void free_rev(mrev *r) {
    for (int k = 0; k < NKEYS; k++)
        unref(r->live[k]);
    for (size_t i = 0; i < r->n_ev; i++)
        unref(r->ev[i].put);
    free(r->ev);
}

void model_init(void) {
    memset(&M, 0, sizeof M);
    M.revs = calloc(M.cap = 64, sizeof *M.revs);
    M.n = 1;
    M.base = M.tip.rev = M.acked_rev = 1;
    M.tip.compact = -1;
    M.views[0] = M.tip;
    M.n_views = 1;
}

void model_free(void) {
    for (size_t i = 0; i < M.n; i++)
        free_rev(&M.revs[i]);
    free(M.revs);
    memset(&M, 0, sizeof M);
}

/* A new revision, starting as a copy of the newest. */
mrev *model_new_rev(void) {
    if (M.n == M.cap) M.revs = realloc(M.revs, (M.cap *= 2) * sizeof *M.revs);
    mrev *prev = &M.revs[M.n - 1], *r = &M.revs[M.n++];
    *r = (mrev){0};
    for (int k = 0; k < NKEYS; k++)
        if ((r->live[k] = prev->live[k])) r->live[k]->refs++;
    M.tip.rev++;
    return r;
}

void model_event(mrev *r, int key, mkv *put) {
    r->ev = realloc(r->ev, (r->n_ev + 1) * sizeof *r->ev);
    r->ev[r->n_ev++] = (mevent){key, put};
    if (put) put->refs++;
}

void model_put(mrev *r, int key, const uint8_t *v, size_t vlen, int64_t lease) {
    mkv *old = r->live[key], *kv = malloc(sizeof *kv + vlen + 1);
    *kv = (mkv){.refs = 1, .key = key, .mod = M.tip.rev, .lease = lease, .vlen = vlen};
    kv->create = old ? old->create : M.tip.rev;
    kv->version = old ? old->version + 1 : 1;
    if (vlen) memcpy(kv->value, v, vlen);
    unref(old);
    r->live[key] = kv;
    model_event(r, key, kv);
}

void model_delete(mrev *r, int key) {
    unref(r->live[key]);
    r->live[key] = NULL;
    model_event(r, key, NULL);
}

int lease_index(const mview *v, int64_t id) {
    for (size_t i = 0; i < v->n_leases; i++)
        if (v->leases[i].id == id) return (int)i;
    return -1;
}

void model_grant(int64_t id, int64_t ttl) {
    size_t i = M.tip.n_leases++;
    for (; i > 0 && M.tip.leases[i - 1].id > id; i--)
        M.tip.leases[i] = M.tip.leases[i - 1];
    M.tip.leases[i] = (mlease){id, ttl};
}

void model_forget_lease(int64_t id) {
    int i = lease_index(&M.tip, id);
    memmove(&M.tip.leases[i], &M.tip.leases[i + 1], (M.tip.n_leases - (size_t)i - 1) * sizeof(mlease));
    M.tip.n_leases--;
}

/* An op issued after a crash cannot become durable: it gets no view. */
void model_op_done(void) {
    if (!crashfs_crashed()) M.views[M.n_views++] = M.tip;
}

int64_t held_from(const mview *v) {
    return v->compact > 1 ? v->compact : 1;
}

/* The ops so far are durable: revisions below the compaction are dropped. */
void model_ack(void) {
    M.views[0] = M.tip;
    M.n_views = 1;
    M.acked_rev = M.tip.rev;
    size_t drop = (size_t)(held_from(&M.tip) - M.base);
    for (size_t i = 0; i < drop; i++)
        free_rev(&M.revs[i]);
    memmove(M.revs, M.revs + drop, (M.n - drop) * sizeof *M.revs);
    M.n -= drop;
    M.base += (int64_t)drop;
}

bool same_view(const mview *a, const mview *b) {
    return a->rev == b->rev && a->compact == b->compact && a->n_leases == b->n_leases &&
           memcmp(a->leases, b->leases, a->n_leases * sizeof(mlease)) == 0;
}

void describe_view(char *out, size_t n, const mview *v) {
    int at =
        snprintf(out, n, "revision %ld, compacted at %ld, leases (id:ttl) {", (long)v->rev, (long)v->compact);
    for (size_t i = 0; i < v->n_leases && i < MAX_LEASES && at < (int)n; i++)
        at += snprintf(out + at, n - (size_t)at, "%s%ld:%ld", i ? "," : "", (long)v->leases[i].id,
                       (long)v->leases[i].ttl);
    if (at < (int)n) snprintf(out + at, n - (size_t)at, "}");
}

/* After a crash the store holds v: the ops after it were lost. */
void model_truncate(const mview *v) {
    while (M.base + (int64_t)M.n - 1 > v->rev)
        free_rev(&M.revs[--M.n]);
    if (!same_view(v, &M.tip)) M.hash_known = false; /* a lost revision's number will be reused */
    M.tip = *v;
}

/* Log bytes the live data needs at least: held changes, a record header per revision, leases. */
uint64_t live_bytes(const mview *v) {
    uint64_t total = 16 + 32 + 40 * v->n_leases;
    const mrev *first = rev_at(held_from(v));
    for (int k = 0; k < NKEYS; k++)
        if (first->live[k]) total += 24 + 5 + strlen(key_names[k]) + 28 + first->live[k]->vlen;
    for (int64_t r = held_from(v) + 1; r <= v->rev; r++) {
        const mrev *mr = rev_at(r);
        total += mr->n_ev ? 24 : 0;
        for (size_t i = 0; i < mr->n_ev; i++)
            total += 5 + strlen(key_names[mr->ev[i].key]) + (mr->ev[i].put ? 28 + mr->ev[i].put->vlen : 0);
    }
    return total;
}
