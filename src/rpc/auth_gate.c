/* auth_gate.c: the auth model in memory (users, roles, enabled, revision), the simple tokens and the
 * checks every service makes, following etcd's auth/store.go and auth/simple_token.go (see
 * auth_gate.h). Persistence and the Auth RPCs are src/api/svc_auth.c's. */
#include "auth_gate.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "config.h"
#include "log_msg.h"

#define ROOT "root"
#define DEFAULT_TOKEN_TTL 300.0 /* etcd's simpleTokenTTLDefault */
#define TOKEN_LETTERS 16        /* etcd's defaultSimpleTokenLength */

auth_model g_auth;

/* ---------- the model ---------- */

static int by_name(const void *key, const void *elem) {
    /* users and roles both start with their name */
    return strcmp(key, *(char *const *)elem);
}

/* Where name is, or would go, in a sorted array of n records of size sz that start with a name. */
static size_t name_index(const void *base, size_t n, size_t sz, const char *name, bool *found) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = by_name(name, (const char *)base + mid * sz);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

auth_user *auth_user_find(const char *name) {
    bool found;
    size_t i = name_index(g_auth.users, g_auth.n_users, sizeof *g_auth.users, name, &found);
    return found ? &g_auth.users[i] : NULL;
}

auth_role *auth_role_find(const char *name) {
    bool found;
    size_t i = name_index(g_auth.roles, g_auth.n_roles, sizeof *g_auth.roles, name, &found);
    return found ? &g_auth.roles[i] : NULL;
}

auth_user *auth_add_user(const char *name) {
    bool found;
    size_t i = name_index(g_auth.users, g_auth.n_users, sizeof *g_auth.users, name, &found);
    g_auth.users = xrealloc(g_auth.users, (g_auth.n_users + 1) * sizeof *g_auth.users);
    memmove(&g_auth.users[i + 1], &g_auth.users[i], (g_auth.n_users - i) * sizeof *g_auth.users);
    g_auth.n_users++;
    g_auth.users[i] = (auth_user){.name = xstrdup(name)};
    return &g_auth.users[i];
}

auth_role *auth_add_role(const char *name) {
    bool found;
    size_t i = name_index(g_auth.roles, g_auth.n_roles, sizeof *g_auth.roles, name, &found);
    g_auth.roles = xrealloc(g_auth.roles, (g_auth.n_roles + 1) * sizeof *g_auth.roles);
    memmove(&g_auth.roles[i + 1], &g_auth.roles[i], (g_auth.n_roles - i) * sizeof *g_auth.roles);
    g_auth.n_roles++;
    g_auth.roles[i] = (auth_role){.name = xstrdup(name)};
    return &g_auth.roles[i];
}

void auth_user_free(auth_user *u) {
    free(u->name);
    free(u->password);
    for (size_t i = 0; i < u->n_roles; i++)
        free(u->roles[i]);
    free(u->roles);
    auth_perm_set_free(&u->read);
    auth_perm_set_free(&u->write);
    *u = (auth_user){0};
}

void auth_role_free(auth_role *r) {
    free(r->name);
    for (size_t i = 0; i < r->n_perms; i++) {
        free(r->perms[i].key);
        free(r->perms[i].range_end);
    }
    free(r->perms);
    *r = (auth_role){0};
}

void auth_remove_user(const char *name) {
    bool found;
    size_t i = name_index(g_auth.users, g_auth.n_users, sizeof *g_auth.users, name, &found);
    if (!found) return;
    auth_user_free(&g_auth.users[i]);
    memmove(&g_auth.users[i], &g_auth.users[i + 1], (g_auth.n_users - i - 1) * sizeof *g_auth.users);
    g_auth.n_users--;
}

void auth_remove_role(const char *name) {
    bool found;
    size_t i = name_index(g_auth.roles, g_auth.n_roles, sizeof *g_auth.roles, name, &found);
    if (!found) return;
    auth_role_free(&g_auth.roles[i]);
    memmove(&g_auth.roles[i], &g_auth.roles[i + 1], (g_auth.n_roles - i - 1) * sizeof *g_auth.roles);
    g_auth.n_roles--;
}

bool auth_user_has_role(const auth_user *u, const char *role) {
    for (size_t i = 0; i < u->n_roles; i++)
        if (strcmp(u->roles[i], role) == 0) return true;
    return false;
}

void auth_model_clear(void) {
    for (size_t i = 0; i < g_auth.n_users; i++)
        auth_user_free(&g_auth.users[i]);
    for (size_t i = 0; i < g_auth.n_roles; i++)
        auth_role_free(&g_auth.roles[i]);
    free(g_auth.users);
    free(g_auth.roles);
    g_auth = (auth_model){0};
}

/* etcd's getMergedPerms: the user's roles in order (a role that does not exist grants nothing), each
 * role's permissions in order. */
static void merge_perms(auth_user *u) {
    auth_perm_set_free(&u->read);
    auth_perm_set_free(&u->write);
    for (size_t i = 0; i < u->n_roles; i++) {
        const auth_role *r = auth_role_find(u->roles[i]);
        for (size_t j = 0; r && j < r->n_perms; j++) {
            const auth_perm *p = &r->perms[j];
            if (p->type == AUTH_READ || p->type == AUTH_READWRITE)
                auth_perm_set_add(&u->read, p->key, p->key_len, p->range_end, p->end_len);
            if (p->type == AUTH_WRITE || p->type == AUTH_READWRITE)
                auth_perm_set_add(&u->write, p->key, p->key_len, p->range_end, p->end_len);
        }
    }
}

void auth_refresh(void) {
    for (size_t i = 0; i < g_auth.n_users; i++)
        merge_perms(&g_auth.users[i]);
}

/* ---------- simple tokens ---------- */

typedef struct token_entry {
    char *token, *user;
    double expires; /* loop time */
    struct token_entry *next;
} token_entry;

static token_entry **buckets;
static size_t n_buckets, n_tokens;
static uint64_t token_index;
static ev_timer sweeper;
static bool sweeper_on;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static double token_ttl(void) {
    return g_config.auth_token_ttl ? (double)g_config.auth_token_ttl : DEFAULT_TOKEN_TTL;
}

static void entry_free(token_entry *e) {
    free(e->token);
    free(e->user);
    free(e);
}

/* Removes the entries for which drop says so (all of them if drop is NULL). */
static void tokens_remove_if(bool (*drop)(const token_entry *, const void *), const void *arg) {
    for (size_t b = 0; b < n_buckets; b++) {
        for (token_entry **p = &buckets[b]; *p;) {
            token_entry *e = *p;
            if (drop && !drop(e, arg)) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            entry_free(e);
            n_tokens--;
        }
    }
    if (n_tokens == 0 && sweeper_on) {
        ev_timer_stop(EV_DEFAULT_ & sweeper);
        sweeper_on = false;
    }
}

static bool is_expired(const token_entry *e, const void *now) {
    return *(const double *)now > e->expires;
}

/* etcd's keeper looks once a second for tokens past their time. */
static void on_sweep(EV_P_ ev_timer *t, int revents) {
    (void)t, (void)revents;
    double now = ev_now(EV_A);
    tokens_remove_if(is_expired, &now);
}

static void grow_buckets(void) {
    size_t n = n_buckets ? 2 * n_buckets : 64;
    token_entry **nb = xcalloc(n, sizeof *nb);
    for (size_t b = 0; b < n_buckets; b++) {
        while (buckets[b]) {
            token_entry *e = buckets[b];
            buckets[b] = e->next;
            size_t at = hash_str(e->token) & (n - 1);
            e->next = nb[at];
            nb[at] = e;
        }
    }
    free(buckets);
    buckets = nb;
    n_buckets = n;
}

static token_entry *token_find(const char *token) {
    if (!n_buckets) return NULL;
    for (token_entry *e = buckets[hash_str(token) & (n_buckets - 1)]; e; e = e->next)
        if (strcmp(e->token, token) == 0) return e;
    return NULL;
}

/* 16 letters of [a-zA-Z] from the kernel's random source (etcd uses crypto/rand). */
static void random_letters(char *out) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t have = 0;
    while (have < TOKEN_LETTERS) {
        uint8_t buf[32];
        if (getrandom(buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
            log_msg(LOG_ERROR, "getrandom failed: cannot make an auth token");
            abort();
        }
        for (size_t i = 0; i < sizeof buf && have < TOKEN_LETTERS; i++)
            if (buf[i] < 4 * 52) out[have++] = letters[buf[i] % 52]; /* unbiased */
    }
    out[have] = '\0';
}

const char *auth_token_assign(const char *user) {
    if (n_tokens >= 2 * n_buckets) grow_buckets();
    char token[TOKEN_LETTERS + 24];
    do {
        char prefix[TOKEN_LETTERS + 1];
        random_letters(prefix);
        snprintf(token, sizeof token, "%s.%llu", prefix, (unsigned long long)++token_index);
    } while (token_find(token));
    token_entry *e = xcalloc(1, sizeof *e);
    e->token = xstrdup(token);
    e->user = xstrdup(user);
    e->expires = ev_now(EV_DEFAULT) + token_ttl();
    size_t at = hash_str(token) & (n_buckets - 1);
    e->next = buckets[at];
    buckets[at] = e;
    n_tokens++;
    if (!sweeper_on) {
        ev_timer_init(&sweeper, on_sweep, 1.0, 1.0);
        ev_timer_start(EV_DEFAULT_ & sweeper);
        sweeper_on = true;
    }
    return e->token;
}

static bool of_user(const token_entry *e, const void *user) {
    return strcmp(e->user, user) == 0;
}

void auth_tokens_drop_user(const char *user) {
    tokens_remove_if(of_user, user);
}

void auth_tokens_clear(void) {
    tokens_remove_if(NULL, NULL);
}

size_t auth_token_count(void) {
    return n_tokens;
}

/* etcd's tokenSimple.info: the user of a live token, whose time starts again. */
static const char *token_user(const char *token) {
    token_entry *e = token_find(token);
    if (!e) return NULL;
    double now = ev_now(EV_DEFAULT);
    if (now > e->expires) return NULL; /* the sweep has not run yet */
    e->expires = now + token_ttl();
    return e->user;
}

/* ---------- the checks ---------- */

etcd_err auth_resolve(const rpc_caller *caller, auth_who *who) {
    *who = (auth_who){0};
    if (caller && caller->token) {
        const char *user = token_user(caller->token);
        if (!user) return ETCD_ERR_INVALID_AUTH_TOKEN;
        *who = (auth_who){user, g_auth.revision};
    } else if (caller && caller->cert_cn) { /* etcd's AuthInfoFromTLS, used when no token is sent */
        *who = (auth_who){caller->cert_cn, g_auth.revision};
    }
    return AUTH_OK;
}

static bool is_root(const auth_user *u) {
    return auth_user_has_role(u, ROOT);
}

/* etcd's isOpPermitted. */
static etcd_err may(const auth_who *who, mv_bytes key, mv_bytes end, bool write) {
    if (!g_auth.enabled) return AUTH_OK;
    if (who->revision == 0) return ETCD_ERR_USER_EMPTY;
    if (who->revision < g_auth.revision) return ETCD_ERR_AUTH_OLD_REVISION;
    const auth_user *u = auth_user_find(who->user);
    if (!u) return ETCD_ERR_PERMISSION_DENIED;
    if (is_root(u)) return AUTH_OK;
    const auth_perm_set *set = write ? &u->write : &u->read;
    return auth_perm_set_allows(set, key.data, key.len, end.data, end.len) ? AUTH_OK
                                                                           : ETCD_ERR_PERMISSION_DENIED;
}

etcd_err auth_may_read(const auth_who *who, mv_bytes key, mv_bytes range_end) {
    return may(who, key, range_end, false);
}

etcd_err auth_may_write(const auth_who *who, mv_bytes key, mv_bytes range_end) {
    return may(who, key, range_end, true);
}

etcd_err auth_may_admin(const auth_who *who) {
    if (!g_auth.enabled) return AUTH_OK;
    if (!who->user || !*who->user) return ETCD_ERR_USER_EMPTY;
    const auth_user *u = auth_user_find(who->user);
    if (!u) return ETCD_ERR_USER_NOT_FOUND;
    return is_root(u) ? AUTH_OK : ETCD_ERR_PERMISSION_DENIED;
}

etcd_err auth_check_admin(const rpc_caller *caller) {
    auth_who who;
    etcd_err e = auth_resolve(caller, &who);
    return e != AUTH_OK ? e : auth_may_admin(&who);
}

const char *auth_check_maintenance(const rpc_caller *caller) {
    switch (auth_check_admin(caller)) {
    case AUTH_OK:
        return NULL;
    case ETCD_ERR_INVALID_AUTH_TOKEN:
        return "auth: invalid auth token";
    case ETCD_ERR_USER_EMPTY:
        return "auth: user name is empty";
    case ETCD_ERR_USER_NOT_FOUND:
        return "auth: user not found";
    default:
        return "auth: permission denied";
    }
}

/* grpc-go's codes.Code.String(), for the text of a status. */
static const char *code_name(int code) {
    static const char *names[] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : "Unknown";
}

const char *auth_watch_denied(const rpc_caller *caller, mv_bytes key, mv_bytes range_end) {
    static const uint8_t zero = 0;
    static char reason[160];
    if (key.len == 0) key = (mv_bytes){&zero, 1};
    auth_who who;
    etcd_err e = auth_resolve(caller, &who);
    if (e == AUTH_OK) e = auth_may_read(&who, key, range_end);
    if (e == AUTH_OK) return NULL;
    /* etcd words every other failure as permission denied */
    if (e != ETCD_ERR_INVALID_AUTH_TOKEN && e != ETCD_ERR_AUTH_OLD_REVISION && e != ETCD_ERR_USER_EMPTY)
        e = ETCD_ERR_PERMISSION_DENIED;
    snprintf(reason, sizeof reason, "rpc error: code = %s desc = %s", code_name(etcd_err_code(e)),
             etcd_err_message(e));
    return reason;
}
