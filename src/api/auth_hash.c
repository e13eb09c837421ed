/* auth_hash.c: bcrypt hashing and checking with libxcrypt's crypt_r, on a few helper threads so the
 * loop never waits for one (auth_hash.h). Passwords are copied into the job and wiped once used.
 * libxcrypt is opened by the first hash, and a thread is started only when a job finds none idle, so a
 * server that never sees a password neither maps it nor has the threads' stacks (idle RSS, issue 16). */
#include "auth_hash.h"

#include <assert.h>
#include <crypt.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "dynlib.h"
#include "log_msg.h"

#define MAX_THREADS 4
#define MAX_QUEUED 1024 /* waiting jobs; past this a request is refused, not queued */

typedef struct hash_job {
    bool verify;
    char *password;
    char *hash; /* verify: the stored hash; make: the result */
    bool matched;
    auth_hash_done done;
    void *ctx;
    struct hash_job *next;
} hash_job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static hash_job *todo_head, *todo_tail, *done_head, *done_tail;
static size_t n_queued; /* jobs submitted and not yet handed back on the loop */
static size_t n_todo;   /* of those, not yet taken by a thread */
static int n_threads, n_idle, max_threads;
static struct ev_loop *hash_loop;
static ev_async done_watcher;
static int cost = -1;

int auth_hash_cost(void) {
    if (cost < 0) {
        cost = (int)g_config.bcrypt_cost;
        if (g_config.bcrypt_cost == 0) {
            cost = AUTH_BCRYPT_DEFAULT_COST;
        } else if (g_config.bcrypt_cost < 4 || g_config.bcrypt_cost > 31) {
            log_msg(LOG_WARN,
                    "--bcrypt-cost %llu is outside bcrypt's 4..31: using the default %d, as etcd does",
                    (unsigned long long)g_config.bcrypt_cost, AUTH_BCRYPT_DEFAULT_COST);
            cost = AUTH_BCRYPT_DEFAULT_COST;
        }
    }
    return cost;
}

static void wipe_free(char *s) {
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* --- libxcrypt, opened on first use (idle RSS, issue 16) --- */

#define CRYPT_SONAME "libcrypt.so.1"      /* Debian's libcrypt1, on every system (protected) */
#define CRYPT_SYMBOL_VERSION "XCRYPT_2.0" /* what the linker bound when the server linked -lcrypt */

static struct {
    __typeof__(crypt_r) *crypt_r;
    __typeof__(crypt_gensalt_rn) *crypt_gensalt_rn;
} xcrypt;
static pthread_once_t xcrypt_once = PTHREAD_ONCE_INIT;

static void xcrypt_open(void) {
    char err[300];
    void *h = dynlib_open(CRYPT_SONAME, "bcrypt needs", NULL, err, sizeof err);
    if (h) {
        xcrypt.crypt_r = (__typeof__(xcrypt.crypt_r))dlvsym(h, "crypt_r", CRYPT_SYMBOL_VERSION);
        xcrypt.crypt_gensalt_rn =
            (__typeof__(xcrypt.crypt_gensalt_rn))dlvsym(h, "crypt_gensalt_rn", CRYPT_SYMBOL_VERSION);
        if (!xcrypt.crypt_r || !xcrypt.crypt_gensalt_rn)
            snprintf(err, sizeof err,
                     "bcrypt needs %s, which cannot be loaded (crypt_r or crypt_gensalt_rn missing)",
                     CRYPT_SONAME);
    }
    if (!xcrypt.crypt_r || !xcrypt.crypt_gensalt_rn)
        log_msg(LOG_ERROR, "%s: passwords can be neither set nor checked", err);
}

/* True once libxcrypt's two functions are there; the first call, on a helper thread, opens it. */
static bool xcrypt_ready(void) {
    pthread_once(&xcrypt_once, xcrypt_open);
    return xcrypt.crypt_r && xcrypt.crypt_gensalt_rn;
}

/* --- the work, on any thread --- */

static char *make_hash(const char *password) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!xcrypt_ready() ||
        !xcrypt.crypt_gensalt_rn("$2b$", (unsigned long)auth_hash_cost(), NULL, 0, setting, sizeof setting))
        return NULL;
    struct crypt_data *data = xcalloc(1, sizeof *data);
    const char *h = xcrypt.crypt_r(password, setting, data);
    char *out = h && h[0] == '$' ? xstrdup(h) : NULL; /* a failure is "*0" or "*1" */
    explicit_bzero(data, sizeof *data);
    free(data);
    return out;
}

static bool check_hash(const char *password, const char *stored) {
    if (stored[0] != '$') return false; /* empty (etcd 3.5's passwordless change) or not bcrypt */
    if (!xcrypt_ready()) return false;
    struct crypt_data *data = xcalloc(1, sizeof *data);
    const char *h = xcrypt.crypt_r(password, stored, data);
    bool ok = false;
    if (h && h[0] == '$' && strlen(h) == strlen(stored)) {
        unsigned char diff = 0; /* compare every byte, whatever differs first */
        for (size_t i = 0; h[i]; i++)
            diff |= (unsigned char)(h[i] ^ stored[i]);
        ok = diff == 0;
    }
    explicit_bzero(data, sizeof *data);
    free(data);
    return ok;
}

static char *hash_string(const uint8_t *hash, size_t len) {
    char *s = xmalloc(len + 1);
    if (len) memcpy(s, hash, len);
    s[len] = '\0';
    return s;
}

/* --- the helper threads --- */

static void *worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!todo_head) {
            n_idle++;
            pthread_cond_wait(&wake, &lock);
            n_idle--;
        }
        hash_job *j = todo_head;
        todo_head = j->next;
        if (!todo_head) todo_tail = NULL;
        n_todo--;
        pthread_mutex_unlock(&lock);
        if (j->verify) {
            j->matched = check_hash(j->password, j->hash);
        } else {
            j->hash = make_hash(j->password);
        }
        wipe_free(j->password);
        j->password = NULL;
        pthread_mutex_lock(&lock);
        j->next = NULL;
        if (done_tail)
            done_tail->next = j;
        else
            done_head = j;
        done_tail = j;
        ev_async_send(hash_loop, &done_watcher);
    }
    return NULL;
}

/* On the loop: hands each finished job to its caller, oldest first. */
static void on_done(EV_P_ ev_async *w, int revents) {
    (void)EV_A, (void)w, (void)revents;
    pthread_mutex_lock(&lock);
    hash_job *list = done_head;
    done_head = done_tail = NULL;
    pthread_mutex_unlock(&lock);
    while (list) {
        hash_job *j = list;
        list = j->next;
        pthread_mutex_lock(&lock);
        n_queued--;
        pthread_mutex_unlock(&lock);
        j->done(j->ctx, j->verify ? NULL : j->hash, j->matched);
        free(j->hash);
        free(j);
    }
}

void auth_hash_start(struct ev_loop *loop) {
    hash_loop = loop;
    ev_async_init(&done_watcher, on_done);
    ev_async_start(loop, &done_watcher);
    auth_hash_cost(); /* warns now about a bad --bcrypt-cost */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    max_threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
}

/* Under lock, with a job just queued: one more thread when more jobs wait than threads are idle, up to
 * max_threads. False only when no thread runs at all and none can be started. */
static bool enough_threads(void) {
    if (n_todo <= (size_t)n_idle || n_threads >= max_threads) return true;
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) {
        log_msg(LOG_ERROR, "cannot start a password hashing thread (%d running)", n_threads);
        return n_threads > 0;
    }
    pthread_detach(t);
    n_threads++;
    return true;
}

size_t auth_hash_pending(void) {
    pthread_mutex_lock(&lock);
    size_t n = n_queued;
    pthread_mutex_unlock(&lock);
    return n;
}

static bool submit(hash_job *j) {
    pthread_mutex_lock(&lock);
    if (!hash_loop || n_queued >= MAX_QUEUED) {
        pthread_mutex_unlock(&lock);
        wipe_free(j->password);
        free(j->hash);
        free(j);
        return false;
    }
    if (todo_tail)
        todo_tail->next = j;
    else
        todo_head = j;
    todo_tail = j;
    n_todo++;
    if (!enough_threads()) { /* j is the only job: no thread ever started */
        assert(todo_head == j && n_todo == 1);
        todo_head = todo_tail = NULL;
        n_todo = 0;
        pthread_mutex_unlock(&lock);
        wipe_free(j->password);
        free(j->hash);
        free(j);
        return false;
    }
    n_queued++;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    return true;
}

bool auth_hash_make(const char *password, auth_hash_done done, void *ctx) {
    hash_job *j = xcalloc(1, sizeof *j);
    *j = (hash_job){.password = xstrdup(password), .done = done, .ctx = ctx};
    return submit(j);
}

bool auth_hash_verify(const char *password, const uint8_t *hash, size_t hash_len, auth_hash_done done,
                      void *ctx) {
    hash_job *j = xcalloc(1, sizeof *j);
    *j = (hash_job){.verify = true,
                    .password = xstrdup(password),
                    .hash = hash_string(hash, hash_len),
                    .done = done,
                    .ctx = ctx};
    return submit(j);
}
