/* auth_codec.c: the auth model to and from the blob the store keeps (auth_codec.h). Version 1:
 *
 *     "CAUT" | u32 version (1) | u8 enabled | 3 zero bytes | u64 auth revision
 *     | u32 users | u32 roles | per user: u32 length, authpb.User | per role: u32 length, authpb.Role
 *
 * little-endian. A blob that does not read back whole is refused: the server never starts with less
 * auth than it had. */
#include "auth_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.pb-c.h"
#include "auth_gate.h"
#include "store.h"

#define MAGIC "CAUT"
#define VERSION 1
#define HEADER_BYTES 28

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---------- encode ---------- */

typedef struct out_buf {
    uint8_t *p;
    size_t len, cap;
} out_buf;

static uint8_t *out_extend(out_buf *o, size_t n) {
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->p = xrealloc(o->p, o->cap);
    }
    uint8_t *at = o->p + o->len;
    o->len += n;
    return at;
}

static void out_record(out_buf *o, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    put_u32(out_extend(o, 4), (uint32_t)n);
    protobuf_c_message_pack(m, out_extend(o, n));
}

static void encode_user(out_buf *o, const auth_user *u) {
    Authpb__User pu = AUTHPB__USER__INIT;
    Authpb__UserAddOptions opts = AUTHPB__USER_ADD_OPTIONS__INIT;
    pu.name = (ProtobufCBinaryData){strlen(u->name), (uint8_t *)u->name};
    pu.password = (ProtobufCBinaryData){u->password_len, u->password};
    pu.n_roles = u->n_roles;
    pu.roles = u->roles;
    opts.no_password = u->no_password;
    pu.options = &opts;
    out_record(o, &pu.base);
}

static void encode_role(out_buf *o, const auth_role *r) {
    Authpb__Role pr = AUTHPB__ROLE__INIT;
    Authpb__Permission *perms = xcalloc(r->n_perms ? r->n_perms : 1, sizeof *perms);
    Authpb__Permission **ptrs = xcalloc(r->n_perms ? r->n_perms : 1, sizeof *ptrs);
    for (size_t i = 0; i < r->n_perms; i++) {
        authpb__permission__init(&perms[i]);
        perms[i].permtype = (Authpb__Permission__Type)r->perms[i].type;
        perms[i].key = (ProtobufCBinaryData){r->perms[i].key_len, r->perms[i].key};
        perms[i].range_end = (ProtobufCBinaryData){r->perms[i].end_len, r->perms[i].range_end};
        ptrs[i] = &perms[i];
    }
    pr.name = (ProtobufCBinaryData){strlen(r->name), (uint8_t *)r->name};
    pr.n_keypermission = r->n_perms;
    pr.keypermission = ptrs;
    out_record(o, &pr.base);
    free(perms);
    free(ptrs);
}

uint8_t *auth_encode(size_t *len) {
    out_buf o = {0};
    uint8_t *h = out_extend(&o, HEADER_BYTES);
    memcpy(h, MAGIC, 4);
    put_u32(h + 4, VERSION);
    h[8] = g_auth.enabled;
    h[9] = h[10] = h[11] = 0;
    put_u64(h + 12, g_auth.revision);
    put_u32(h + 20, (uint32_t)g_auth.n_users);
    put_u32(h + 24, (uint32_t)g_auth.n_roles);
    for (size_t i = 0; i < g_auth.n_users; i++)
        encode_user(&o, &g_auth.users[i]);
    for (size_t i = 0; i < g_auth.n_roles; i++)
        encode_role(&o, &g_auth.roles[i]);
    *len = o.len;
    return o.p;
}

/* ---------- decode ---------- */

static char *name_string(ProtobufCBinaryData b) {
    char *s = xmalloc(b.len + 1);
    if (b.len) memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    return s;
}

static uint8_t *dup_bytes(ProtobufCBinaryData b) {
    if (!b.len) return NULL;
    uint8_t *p = xmalloc(b.len);
    memcpy(p, b.data, b.len);
    return p;
}

static bool decode_user(const Authpb__User *pu) {
    char *name = name_string(pu->name);
    bool fresh = strlen(name) == pu->name.len && !auth_user_find(name);
    if (fresh) {
        auth_user *u = auth_add_user(name);
        u->password = dup_bytes(pu->password);
        u->password_len = pu->password.len;
        u->no_password = pu->options && pu->options->no_password;
        u->n_roles = pu->n_roles;
        u->roles = xcalloc(pu->n_roles ? pu->n_roles : 1, sizeof *u->roles);
        for (size_t i = 0; i < pu->n_roles; i++)
            u->roles[i] = xstrdup(pu->roles[i]);
    }
    free(name);
    return fresh;
}

static bool decode_role(const Authpb__Role *pr) {
    char *name = name_string(pr->name);
    bool fresh = strlen(name) == pr->name.len && !auth_role_find(name);
    if (fresh) {
        auth_role *r = auth_add_role(name);
        r->n_perms = pr->n_keypermission;
        r->perms = xcalloc(r->n_perms ? r->n_perms : 1, sizeof *r->perms);
        for (size_t i = 0; i < r->n_perms; i++) {
            const Authpb__Permission *p = pr->keypermission[i];
            r->perms[i] = (auth_perm){.type = (int)p->permtype,
                                      .key = dup_bytes(p->key),
                                      .key_len = p->key.len,
                                      .range_end = dup_bytes(p->range_end),
                                      .end_len = p->range_end.len};
            if (p->permtype > AUTHPB__PERMISSION__TYPE__READWRITE) fresh = false;
        }
    }
    free(name);
    return fresh;
}

/* Reads one length-prefixed record at *at as d, then adds it to the model. */
static bool decode_record(const uint8_t *blob, size_t len, size_t *at, bool user) {
    if (len - *at < 4) return false;
    uint32_t n = get_u32(blob + *at);
    *at += 4;
    if (len - *at < n) return false;
    const ProtobufCMessageDescriptor *d = user ? &authpb__user__descriptor : &authpb__role__descriptor;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, blob + *at);
    *at += n;
    if (!m) return false;
    bool ok = user ? decode_user((Authpb__User *)m) : decode_role((Authpb__Role *)m);
    protobuf_c_message_free_unpacked(m, NULL);
    return ok;
}

bool auth_decode(const uint8_t *blob, size_t len, char *why, size_t whylen) {
    auth_model_clear();
    if (len < HEADER_BYTES || memcmp(blob, MAGIC, 4) != 0) {
        snprintf(why, whylen, "the saved auth state is not cetcd's (%zu bytes)", len);
        return false;
    }
    if (get_u32(blob + 4) != VERSION) {
        snprintf(why, whylen, "the saved auth state has version %u; this cetcd reads version %d",
                 get_u32(blob + 4), VERSION);
        return false;
    }
    g_auth.enabled = blob[8] != 0;
    g_auth.revision = get_u64(blob + 12);
    uint32_t users = get_u32(blob + 20), roles = get_u32(blob + 24);
    size_t at = HEADER_BYTES;
    bool ok = true;
    for (uint32_t i = 0; ok && i < users; i++)
        ok = decode_record(blob, len, &at, true);
    for (uint32_t i = 0; ok && i < roles; i++)
        ok = decode_record(blob, len, &at, false);
    if (!ok || at != len) {
        auth_model_clear();
        snprintf(why, whylen, "the saved auth state is damaged (%zu bytes)", len);
        return false;
    }
    auth_refresh();
    return true;
}

/* ---------- etcd's auth buckets ---------- */

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The name (field 1) of an authpb.User or authpb.Role record; false if it does not decode. */
static bool record_name(const uint8_t *rec, size_t n, bool user, uint8_t **name, size_t *name_len) {
    const ProtobufCMessageDescriptor *d = user ? &authpb__user__descriptor : &authpb__role__descriptor;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, rec);
    if (!m) return false;
    ProtobufCBinaryData b = user ? ((Authpb__User *)m)->name : ((Authpb__Role *)m)->name;
    *name = xmalloc(b.len + 1);
    if (b.len) memcpy(*name, b.data, b.len);
    *name_len = b.len;
    protobuf_c_message_free_unpacked(m, NULL);
    return true;
}

int auth_blob_to_buckets(const uint8_t *blob, size_t len, auth_bucket_put put, void *ctx) {
    uint8_t rev[8];
    if (len == 0) {
        put_be64(rev, 1);
        return put(ctx, "auth", (const uint8_t *)"authRevision", 12, rev, 8);
    }
    if (len < HEADER_BYTES || memcmp(blob, MAGIC, 4) != 0 || get_u32(blob + 4) != VERSION) return -1;
    uint8_t enabled = blob[8] != 0;
    put_be64(rev, get_u64(blob + 12));
    int rc = put(ctx, "auth", (const uint8_t *)"authEnabled", 11, &enabled, 1);
    if (rc >= 0) rc = put(ctx, "auth", (const uint8_t *)"authRevision", 12, rev, 8);
    uint32_t counts[2] = {get_u32(blob + 20), get_u32(blob + 24)};
    size_t at = HEADER_BYTES;
    for (int kind = 0; kind < 2 && rc >= 0; kind++) {
        for (uint32_t i = 0; i < counts[kind] && rc >= 0; i++) {
            if (len - at < 4 || len - at - 4 < get_u32(blob + at)) return -1;
            size_t n = get_u32(blob + at);
            const uint8_t *rec = blob + at + 4;
            at += 4 + n;
            uint8_t *name;
            size_t name_len;
            if (!record_name(rec, n, kind == 0, &name, &name_len)) return -1;
            rc = put(ctx, kind == 0 ? "authUsers" : "authRoles", name, name_len, rec, n);
            free(name);
        }
    }
    return rc < 0 ? rc : at == len ? 0 : -1;
}

uint8_t *auth_blob_from_buckets(bool enabled, uint64_t revision, const mv_bytes *users, size_t n_users,
                                const mv_bytes *roles, size_t n_roles, size_t *len, char *why,
                                size_t whylen) {
    out_buf o = {0};
    uint8_t *h = out_extend(&o, HEADER_BYTES);
    memcpy(h, MAGIC, 4);
    put_u32(h + 4, VERSION);
    h[8] = enabled;
    h[9] = h[10] = h[11] = 0;
    put_u64(h + 12, revision);
    put_u32(h + 20, (uint32_t)n_users);
    put_u32(h + 24, (uint32_t)n_roles);
    for (int kind = 0; kind < 2; kind++) {
        const mv_bytes *recs = kind == 0 ? users : roles;
        for (size_t i = 0; i < (kind == 0 ? n_users : n_roles); i++) {
            uint8_t *name;
            size_t name_len;
            if (!record_name(recs[i].data, recs[i].len, kind == 0, &name, &name_len)) {
                snprintf(why, whylen, "%s bucket: record %zu is not an authpb.%s",
                         kind == 0 ? "authUsers" : "authRoles", i, kind == 0 ? "User" : "Role");
                free(o.p);
                return NULL;
            }
            free(name);
            put_u32(out_extend(&o, 4), (uint32_t)recs[i].len);
            if (recs[i].len) memcpy(out_extend(&o, recs[i].len), recs[i].data, recs[i].len);
        }
    }
    *len = o.len;
    return o.p;
}

bool auth_load(char *why, size_t whylen) {
    mv_bytes saved = mvcc_auth_state(g_store);
    if (saved.len == 0) {
        auth_model_clear();
        g_auth.revision = 1; /* etcd's NewAuthStore commits revision 1 */
        return true;
    }
    return auth_decode(saved.data, saved.len, why, whylen);
}

mv_err auth_save(void) {
    size_t len;
    uint8_t *blob = auth_encode(&len);
    mv_err err = mvcc_auth_save(g_store, blob, len);
    free(blob);
    if (err != MV_OK) {
        char why[160];
        if (!auth_load(why, sizeof why)) auth_model_clear(); /* the saved state read at start */
    }
    return err;
}
