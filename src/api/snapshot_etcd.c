/* snapshot_etcd.c: etcd's backend layout (etcd-io/etcd server/mvcc and server/storage/schema) over the
 * bbolt writer and reader. The key bucket maps a revision key (8-byte big-endian main revision, '_',
 * 8-byte big-endian sub revision, and 't' for a tombstone) to an mvccpb.KeyValue (a tombstone holds
 * the key only); lease maps an 8-byte big-endian id to a leasepb.Lease; meta holds consistent_index
 * and the scheduled and finished compaction revisions (revision keys too). */
#include "snapshot_etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "auth_codec.h"
#include "bbolt_read.h"
#include "bbolt_write.h"
#include "kv.pb-c.h"
#include "lease.pb-c.h"
#include "sbuf.h"

#define REV_KEY_LEN 17
#define CLUSTER_VERSION "3.4.0" /* what an etcd 3.4 backend says; etcd sets its own on start */

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void rev_key(uint8_t out[REV_KEY_LEN + 1], int64_t main_rev, int64_t sub) {
    put_be64(out, (uint64_t)main_rev);
    out[8] = '_';
    put_be64(out + 9, (uint64_t)sub);
    out[REV_KEY_LEN] = 't';
}

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------- out ---------- */

/* The buckets written as trees of their own pages, in file order after the four head pages: three
 * whose entries are in memory (the auth records and the leases), counted at the start, then key, whose
 * entries stream from the export and are counted in slices. */
enum { TREE_ROLES, TREE_USERS, TREE_LEASE, N_MEM_TREES };
enum { PHASE_COUNT, PHASE_MEM, PHASE_KEYS, PHASE_DONE };

typedef struct kv_list {
    bb_kv *kvs;
    size_t n, cap;
} kv_list;

struct etcd_snap {
    mv_export *x;
    int phase;
    const mv_lease_info *leases;
    size_t n_leases;
    kv_list roles, users, auth; /* from the auth state (auth_codec.h), copies */
    int mem_tree;               /* emitting: which in-memory tree, and its next entry */
    size_t next;
    uint64_t root[N_MEM_TREES]; /* from the count */
    uint64_t end[N_MEM_TREES];  /* the page after each */
    bb_tree tree;               /* the tree being counted or emitted */
    uint64_t key_root, pages;
    uint8_t *enc; /* an encoded value */
    size_t enc_cap;
    sbuf out; /* pages ready to be read */
    int64_t revision, compact_revision;
};

static void on_page(void *ctx, const uint8_t *page, size_t len) {
    sbuf_append(&((etcd_snap *)ctx)->out, page, len);
}

static size_t encode(etcd_snap *e, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > e->enc_cap) {
        free(e->enc);
        e->enc_cap = n * 2 + 64;
        e->enc = xmalloc(e->enc_cap);
    }
    return protobuf_c_message_pack(m, e->enc);
}

static int add_lease(etcd_snap *e, const mv_lease_info *l) {
    Leasepb__Lease lp = LEASEPB__LEASE__INIT;
    lp.id = l->id;
    lp.ttl = l->ttl;
    uint8_t key[8];
    put_be64(key, (uint64_t)l->id);
    size_t n = encode(e, &lp.base);
    return bb_tree_add(&e->tree, key, sizeof key, e->enc, n);
}

/* Adds entry i of in-memory tree t: 1 added, 0 past the end, -1 refused. */
static int add_mem(etcd_snap *e, int t, size_t i) {
    if (t == TREE_LEASE) return i < e->n_leases ? (add_lease(e, &e->leases[i]) < 0 ? -1 : 1) : 0;
    const kv_list *l = t == TREE_ROLES ? &e->roles : &e->users;
    if (i >= l->n) return 0;
    return bb_tree_add(&e->tree, l->kvs[i].k, l->kvs[i].klen, l->kvs[i].v, l->kvs[i].vlen) < 0 ? -1 : 1;
}

static int collect_auth(void *ctx, const char *bucket, const uint8_t *key, size_t key_len,
                        const uint8_t *value, size_t value_len) {
    etcd_snap *e = ctx;
    kv_list *l = strcmp(bucket, "authRoles") == 0   ? &e->roles
                 : strcmp(bucket, "authUsers") == 0 ? &e->users
                                                    : &e->auth;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->kvs = xrealloc(l->kvs, l->cap * sizeof *l->kvs);
    }
    uint8_t *k = xmalloc(key_len + value_len + 1);
    memcpy(k, key, key_len);
    if (value_len) memcpy(k + key_len, value, value_len);
    l->kvs[l->n++] = (bb_kv){k, k + key_len, key_len, value_len};
    return 0;
}

static void free_list(kv_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->kvs[i].k);
    free(l->kvs);
}

static int add_change(etcd_snap *e, const mv_change *c) {
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.key = (ProtobufCBinaryData){c->key.len, (uint8_t *)c->key.data};
    if (!c->tombstone) {
        kv.create_revision = c->create_revision;
        kv.mod_revision = c->mod_revision;
        kv.version = c->version;
        kv.value = (ProtobufCBinaryData){c->value.len, (uint8_t *)c->value.data};
        kv.lease = c->lease;
    }
    uint8_t key[REV_KEY_LEN + 1];
    rev_key(key, c->mod_revision, c->sub_revision);
    size_t n = encode(e, &kv.base);
    return bb_tree_add(&e->tree, key, c->tombstone ? REV_KEY_LEN + 1 : REV_KEY_LEN, e->enc, n);
}

/* The in-memory trees are counted at once, the key tree then in slices. */
static int count_mem_trees(etcd_snap *e) {
    uint64_t at = BB_HEAD_PAGES;
    for (int t = 0; t < N_MEM_TREES; t++) {
        bb_tree_init(&e->tree, at, NULL, NULL);
        int rc;
        for (size_t i = 0; (rc = add_mem(e, t, i)) == 1; i++)
            continue;
        at = e->end[t] = bb_tree_finish(&e->tree, &e->root[t]);
        bb_tree_free(&e->tree);
        if (rc < 0) return -1;
    }
    bb_tree_init(&e->tree, at, NULL, NULL);
    return 0;
}

etcd_snap *etcd_snap_begin(mvcc *s, char *err, size_t errlen) {
    mv_export *x = mvcc_export_begin(s, err, errlen);
    if (!x) return NULL;
    etcd_snap *e = xcalloc(1, sizeof *e);
    e->x = x;
    e->n_leases = mvcc_export_leases(x, &e->leases);
    mv_bytes auth = mvcc_export_auth_state(x);
    if (auth_blob_to_buckets(auth.data, auth.len, collect_auth, e) < 0 || count_mem_trees(e) < 0) {
        snprintf(err, errlen, "snapshot: the auth state or a lease does not fit etcd's format");
        etcd_snap_end(e);
        return NULL;
    }
    return e;
}

/* The four pages every file starts with: metas, freelist, and the root bucket's leaf of buckets. */
static int write_head(etcd_snap *e) {
    uint8_t ci[8], compact[REV_KEY_LEN + 1];
    put_be64(ci, (uint64_t)e->revision); /* etcd's raft index; restore sets its own */
    rev_key(compact, e->compact_revision, 0);
    bb_kv meta[3] = {{"consistent_index", ci, 16, 8}};
    size_t n_meta = 1;
    if (e->compact_revision > 0) {
        meta[n_meta++] = (bb_kv){"finishedCompactRev", compact, 18, REV_KEY_LEN};
        meta[n_meta++] = (bb_kv){"scheduledCompactRev", compact, 19, REV_KEY_LEN};
    }
    bb_kv cluster[1] = {{"clusterVersion", CLUSTER_VERSION, 14, strlen(CLUSTER_VERSION)}};
    uint8_t v_empty[64], v_auth[256], v_cluster[128], v_meta[512], v_key[16], v_lease[16], v_roles[16],
        v_users[16];
    size_t l_empty = bb_inline_bucket(v_empty, sizeof v_empty, NULL, 0);
    size_t l_auth = bb_inline_bucket(v_auth, sizeof v_auth, e->auth.kvs, e->auth.n);
    size_t l_cluster = bb_inline_bucket(v_cluster, sizeof v_cluster, cluster, 1);
    size_t l_meta = bb_inline_bucket(v_meta, sizeof v_meta, meta, n_meta);
    bb_bucket_ref(v_key, e->key_root);
    bb_bucket_ref(v_lease, e->root[TREE_LEASE]);
    bb_bucket_ref(v_roles, e->root[TREE_ROLES]);
    bb_bucket_ref(v_users, e->root[TREE_USERS]);
    if (!l_auth || !l_meta) return -EIO;
#define B(name, v, l) {name, v, sizeof name - 1, l}
    bb_kv buckets[] = {B("alarm", v_empty, l_empty),
                       B("auth", v_auth, l_auth),
                       B("authRoles", v_roles, 16),
                       B("authUsers", v_users, 16),
                       B("cluster", v_cluster, l_cluster),
                       B("key", v_key, 16),
                       B("lease", v_lease, 16),
                       B("members", v_empty, l_empty),
                       B("members_removed", v_empty, l_empty),
                       B("meta", v_meta, l_meta)};
#undef B
    uint8_t head[BB_HEAD_PAGES * BB_PAGE_SIZE];
    if (bb_head_pages(head, e->pages, 2, buckets, sizeof buckets / sizeof *buckets) < 0) return -EIO;
    sbuf_append(&e->out, head, sizeof head);
    return 0;
}

int etcd_snap_prepare(etcd_snap *e, uint64_t budget_us) {
    if (e->phase != PHASE_COUNT) return 0;
    uint64_t until = now_us() + budget_us;
    for (unsigned i = 1;; i++) {
        mv_change c;
        int rc = mvcc_export_next(e->x, &c);
        if (rc < 0) return rc;
        if (rc == 0) break;
        if (add_change(e, &c) < 0) return -EPROTO; /* out of order, or a key bbolt cannot hold */
        if (i % 256 == 0 && now_us() >= until) return 1;
    }
    e->pages = bb_tree_finish(&e->tree, &e->key_root);
    bb_tree_free(&e->tree);
    e->revision = mvcc_export_revision(e->x);
    e->compact_revision = mvcc_export_compact_revision(e->x);
    mvcc_export_rewind(e->x);
    int rc = write_head(e);
    if (rc < 0) return rc;
    bb_tree_init(&e->tree, BB_HEAD_PAGES, on_page, e);
    e->phase = PHASE_MEM;
    return 0;
}

uint64_t etcd_snap_size(const etcd_snap *e) {
    return e->pages * BB_PAGE_SIZE;
}

int64_t etcd_snap_revision(const etcd_snap *e) {
    return e->revision;
}

/* One step of the second pass: a lease or a change into the tree (pages land in e->out). */
static int emit_step(etcd_snap *e) {
    uint64_t root;
    if (e->phase == PHASE_MEM) {
        int t = e->mem_tree, rc = add_mem(e, t, e->next++);
        if (rc != 0) return rc < 0 ? -EPROTO : 0;
        if (bb_tree_finish(&e->tree, &root) != e->end[t] || root != e->root[t]) return -EIO;
        bb_tree_free(&e->tree);
        bb_tree_init(&e->tree, e->end[t], on_page, e);
        e->next = 0;
        if (++e->mem_tree == N_MEM_TREES) e->phase = PHASE_KEYS;
        return 0;
    }
    mv_change c;
    int rc = mvcc_export_next(e->x, &c);
    if (rc < 0) return rc;
    if (rc == 1) return add_change(e, &c) < 0 ? -EPROTO : 0;
    /* the pass must match the count: the export is a fixed view, so anything else is a bug */
    if (bb_tree_finish(&e->tree, &root) != e->pages || root != e->key_root) return -EIO;
    bb_tree_free(&e->tree);
    e->phase = PHASE_DONE;
    return 0;
}

long etcd_snap_read(etcd_snap *e, uint8_t *buf, size_t n) {
    if (e->phase == PHASE_COUNT) return -EAGAIN;
    while (sbuf_size(&e->out) < n && e->phase != PHASE_DONE) {
        int rc = emit_step(e);
        if (rc < 0) return rc;
    }
    size_t m = sbuf_size(&e->out) < n ? sbuf_size(&e->out) : n;
    memcpy(buf, sbuf_head(&e->out), m);
    sbuf_consume(&e->out, m);
    return (long)m;
}

void etcd_snap_end(etcd_snap *e) {
    if (!e) return;
    mvcc_export_end(e->x);
    bb_tree_free(&e->tree);
    sbuf_free(&e->out);
    free_list(&e->roles);
    free_list(&e->users);
    free_list(&e->auth);
    free(e->enc);
    free(e);
}

/* ---------- in ---------- */

int etcd_db_detect(const uint8_t *d, uint64_t size) {
    bb_db db;
    char err[8];
    return size >= 64 && bb_open(&db, d, size, err, sizeof err) == 0;
}

typedef struct import_state {
    bb_db db;
    bb_bucket key, lease, meta;
    bool have_lease;
    uint8_t *auth_blob; /* the auth buckets as cetcd's auth state; NULL if auth was never used */
    size_t auth_len;
    int64_t compact_revision;
    uint64_t changes, leases;
    int64_t last_rev;
    char *err;
    size_t errlen;
} import_state;

__attribute__((format(printf, 2, 3))) static int import_fail(import_state *st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A revision key (17 bytes, or 18 with 't'): main and sub, or -1 if malformed. */
static int parse_rev_key(const uint8_t *k, size_t klen, int64_t *main_rev, int64_t *sub, bool *tombstone) {
    if ((klen != REV_KEY_LEN && klen != REV_KEY_LEN + 1) || k[8] != '_') return -1;
    if (klen == REV_KEY_LEN + 1 && k[REV_KEY_LEN] != 't') return -1;
    uint64_t m = get_be64(k), s = get_be64(k + 9);
    if (m < 1 || m > INT64_MAX || s > UINT32_MAX) return -1;
    *main_rev = (int64_t)m;
    *sub = (int64_t)s;
    *tombstone = klen == REV_KEY_LEN + 1;
    return 0;
}

static int meta_rev(import_state *st, const char *name, int64_t *rev) {
    const uint8_t *v;
    size_t vlen;
    *rev = -1;
    int rc = bb_get(&st->db, &st->meta, name, &v, &vlen, st->err, st->errlen);
    if (rc < 0) return -1;
    if (rc == 0) return 0;
    int64_t sub;
    bool t;
    if (parse_rev_key(v, vlen, rev, &sub, &t) < 0 || t)
        return import_fail(st, "meta %s: not a revision", name);
    return 0;
}

/* The values of a bucket, in key order (pointers into the file), into a growing array. */
static int bucket_values(import_state *st, const bb_bucket *b, const char *name, mv_bytes **out, size_t *n) {
    bb_cursor c;
    bb_cursor_init(&c, &st->db, b);
    const uint8_t *k, *v;
    size_t klen, vlen, cap = 0;
    uint32_t flags;
    int rc;
    while ((rc = bb_cursor_next(&c, &k, &klen, &v, &vlen, &flags)) == 1) {
        if (*n == cap) *out = xrealloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
        (*out)[(*n)++] = (mv_bytes){v, vlen};
    }
    if (rc < 0) import_fail(st, "%s bucket: %s", name, c.err);
    bb_cursor_free(&c);
    return rc;
}

/* etcd's auth, authUsers and authRoles buckets, as cetcd's auth state (auth_codec.h). */
static int read_auth(import_state *st, const bb_bucket *root) {
    bb_bucket auth, users, roles;
    int ra = bb_bucket_find(&st->db, root, "auth", &auth, st->err, st->errlen);
    int ru = ra < 0 ? -1 : bb_bucket_find(&st->db, root, "authUsers", &users, st->err, st->errlen);
    int rr = ru < 0 ? -1 : bb_bucket_find(&st->db, root, "authRoles", &roles, st->err, st->errlen);
    if (rr < 0) return -1;
    bool enabled = false;
    uint64_t revision = 1;
    const uint8_t *v;
    size_t vlen;
    if (ra == 1) {
        int rc = bb_get(&st->db, &auth, "authEnabled", &v, &vlen, st->err, st->errlen);
        if (rc < 0) return -1;
        if (rc == 1 && (vlen != 1 || v[0] > 1)) return import_fail(st, "auth bucket: a bad authEnabled");
        enabled = rc == 1 && v[0] == 1;
        rc = bb_get(&st->db, &auth, "authRevision", &v, &vlen, st->err, st->errlen);
        if (rc < 0) return -1;
        if (rc == 1 && vlen != 8) return import_fail(st, "auth bucket: a bad authRevision");
        if (rc == 1) revision = get_be64(v);
    }
    mv_bytes *u = NULL, *r = NULL;
    size_t nu = 0, nr = 0;
    int rc = 0;
    if (ru == 1) rc = bucket_values(st, &users, "authUsers", &u, &nu);
    if (rc >= 0 && rr == 1) rc = bucket_values(st, &roles, "authRoles", &r, &nr);
    if (rc >= 0 && (enabled || revision > 1 || nu || nr)) {
        char why[160] = "";
        st->auth_blob =
            auth_blob_from_buckets(enabled, revision, u, nu, r, nr, &st->auth_len, why, sizeof why);
        if (!st->auth_blob) rc = import_fail(st, "%s", why);
    }
    free(u);
    free(r);
    return rc < 0 ? -1 : 0;
}

static int open_buckets(import_state *st, const uint8_t *d, uint64_t size) {
    if (bb_open(&st->db, d, size, st->err, st->errlen) < 0) return -1;
    bb_bucket root;
    bb_root_bucket(&st->db, &root);
    int rc = bb_bucket_find(&st->db, &root, "key", &st->key, st->err, st->errlen);
    if (rc <= 0) return rc < 0 ? -1 : import_fail(st, "no \"key\" bucket: not an etcd v3 database");
    rc = bb_bucket_find(&st->db, &root, "meta", &st->meta, st->err, st->errlen);
    if (rc <= 0) return rc < 0 ? -1 : import_fail(st, "no \"meta\" bucket: not an etcd v3 database");
    rc = bb_bucket_find(&st->db, &root, "lease", &st->lease, st->err, st->errlen);
    if (rc < 0) return -1;
    st->have_lease = rc == 1;
    if (read_auth(st, &root) < 0) return -1;
    int64_t finished, scheduled;
    if (meta_rev(st, "finishedCompactRev", &finished) < 0 ||
        meta_rev(st, "scheduledCompactRev", &scheduled) < 0)
        return -1;
    /* a compaction scheduled but not finished is finished by etcd when it opens the file: so here */
    st->compact_revision = scheduled > finished ? scheduled : finished;
    return 0;
}

/* Walks the lease bucket; with b, grants each lease in the builder. */
static int walk_leases(import_state *st, mv_builder *b) {
    if (!st->have_lease) return 0;
    bb_cursor c;
    bb_cursor_init(&c, &st->db, &st->lease);
    const uint8_t *k, *v;
    size_t klen, vlen;
    uint32_t flags;
    int rc;
    while ((rc = bb_cursor_next(&c, &k, &klen, &v, &vlen, &flags)) == 1) {
        Leasepb__Lease *l = leasepb__lease__unpack(NULL, vlen, v);
        int64_t id = klen == 8 ? (int64_t)get_be64(k) : 0;
        bool ok = l && !(flags & 1) && klen == 8 && l->id == id && id != 0 && l->ttl >= 0;
        int64_t ttl = l ? l->ttl : 0;
        if (l) leasepb__lease__free_unpacked(l, NULL);
        if (!ok) {
            rc = import_fail(st, "lease bucket: a malformed lease (key of %zu bytes)", klen);
            break;
        }
        st->leases++;
        if (b && mvcc_build_lease(b, id, ttl) < 0) {
            rc = import_fail(st, "lease %" PRId64 ": %s", id, mvcc_build_error(b));
            break;
        }
    }
    if (rc < 0 && c.err[0]) import_fail(st, "lease bucket: %s", c.err);
    bb_cursor_free(&c);
    return rc < 0 ? -1 : 0;
}

/* Walks the key bucket, checking each entry; with b, feeds each change to the builder. */
static int walk_keys(import_state *st, mv_builder *b) {
    bb_cursor c;
    bb_cursor_init(&c, &st->db, &st->key);
    const uint8_t *k, *v;
    size_t klen, vlen;
    uint32_t flags;
    int rc;
    st->changes = 0;
    st->last_rev = 1;
    while ((rc = bb_cursor_next(&c, &k, &klen, &v, &vlen, &flags)) == 1) {
        int64_t main_rev, sub;
        bool tomb;
        if ((flags & 1) || parse_rev_key(k, klen, &main_rev, &sub, &tomb) < 0) {
            rc = import_fail(st, "key bucket: a key that is not a revision (%zu bytes)", klen);
            break;
        }
        Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(NULL, vlen, v);
        bool ok = kv && kv->key.len > 0 && main_rev >= 2;
        if (ok && !tomb)
            ok = kv->mod_revision == main_rev && kv->create_revision >= 1 &&
                 kv->create_revision <= main_rev && kv->version >= 1 && kv->lease >= 0;
        if (!ok) {
            if (kv) mvccpb__key_value__free_unpacked(kv, NULL);
            rc = import_fail(st, "key bucket: a malformed key-value at revision %" PRId64 ".%" PRId64,
                             main_rev, sub);
            break;
        }
        st->changes++;
        st->last_rev = main_rev;
        if (b) {
            mv_change ch = {.key = {kv->key.data, kv->key.len},
                            .mod_revision = main_rev,
                            .sub_revision = (uint32_t)sub,
                            .tombstone = tomb};
            if (!tomb) {
                ch.value = (mv_bytes){kv->value.data, kv->value.len};
                ch.create_revision = kv->create_revision;
                ch.version = kv->version;
                ch.lease = kv->lease;
            }
            if (mvcc_build_change(b, &ch) < 0) rc = import_fail(st, "%s", mvcc_build_error(b));
        }
        mvccpb__key_value__free_unpacked(kv, NULL);
        if (rc < 0) break;
    }
    if (rc < 0 && c.err[0]) import_fail(st, "key bucket: %s", c.err);
    bb_cursor_free(&c);
    return rc < 0 ? -1 : 0;
}

int etcd_db_import(const uint8_t *d, uint64_t size, const char *dir, char *err, size_t errlen) {
    import_state st = {.err = err, .errlen = errlen};
    /* the whole file is checked before anything is written */
    int rc =
        open_buckets(&st, d, size) < 0 || walk_leases(&st, NULL) < 0 || walk_keys(&st, NULL) < 0 ? -1 : 0;
    mv_builder *b = rc < 0 ? NULL : mvcc_build_begin(dir, st.compact_revision, err, errlen);
    if (!b) {
        free(st.auth_blob);
        return -1;
    }
    if (walk_leases(&st, b) < 0)
        rc = -1;
    else if (st.auth_blob && mvcc_build_auth_state(b, st.auth_blob, st.auth_len) < 0)
        rc = import_fail(&st, "auth state: %s", mvcc_build_error(b));
    else if (walk_keys(&st, b) < 0)
        rc = -1;
    free(st.auth_blob);
    char ferr[256] = "";
    if (mvcc_build_finish(b, ferr, sizeof ferr) < 0 && rc == 0) {
        snprintf(err, errlen, "%s", ferr);
        rc = -1;
    }
    return rc;
}
