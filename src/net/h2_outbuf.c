/* h2_outbuf.c: the output buffer of a call (its framed reply messages), and the one large buffer kept
 * for the next large reply. A list of tens of MB written into a fresh buffer has every page faulted in,
 * zeroed, and unmapped again when it is freed: a quarter of the server's time for back-to-back lists. */
#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "alloc.h"
#include "h2_internal.h"

#if !H2_KEEP_FREED
#include <sanitizer/asan_interface.h> /* the spare is poisoned while kept: a use of it is still caught */
#define SPARE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SPARE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SPARE_POISON(p, n) ((void)(p), (void)(n))
#define SPARE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A buffer of SPARE_MIN_BYTES..SPARE_MAX_BYTES that a call is done with becomes the spare, replacing
 * the one before (one at most). Its pages are marked MADV_FREE, so the kernel takes them back when it
 * needs memory. It goes to the next message of at least SPARE_MIN_BYTES that fits it and fills at
 * least a quarter of it; such a message that does not, or SPARE_IDLE seconds without one, frees it. */
#define SPARE_MIN_BYTES ((size_t)4 << 20)
#define SPARE_MAX_BYTES ((size_t)256 << 20)
#define SPARE_IDLE 30.

static struct {
    uint8_t *buf;
    size_t cap;
    ev_timer idle;
    bool timer_ready;
} spare;

static void spare_free(void) {
    if (!spare.buf) return;
    SPARE_UNPOISON(spare.buf, spare.cap);
    free(spare.buf);
    spare.buf = NULL;
    spare.cap = 0;
    ev_timer_stop(EV_DEFAULT_ & spare.idle);
}

static void on_spare_idle(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)t, (void)revents;
    spare_free();
}

/* out (empty) gives its buffer to the spare, or back to the allocator. */
static void spare_keep(sbuf *out) {
    assert(sbuf_size(out) == 0 && out->cap >= SPARE_MIN_BYTES);
    if (out->cap > SPARE_MAX_BYTES) return sbuf_free(out);
    spare_free();
    spare.buf = out->data;
    spare.cap = out->cap;
    *out = (sbuf){0};
    uintptr_t page = 4096, from = ((uintptr_t)spare.buf + page - 1) & ~(page - 1),
              to = ((uintptr_t)spare.buf + spare.cap) & ~(page - 1);
    if (to > from) madvise((void *)from, to - from, MADV_FREE);
    SPARE_POISON(spare.buf, spare.cap);
    if (!spare.timer_ready) {
        ev_timer_init(&spare.idle, on_spare_idle, SPARE_IDLE, 0.);
        spare.timer_ready = true;
    }
    assert(!ev_is_active(&spare.idle));
    ev_timer_set(&spare.idle, SPARE_IDLE, 0.); /* libev keeps a stopped timer's remaining time */
    ev_timer_start(EV_DEFAULT_ & spare.idle);
}

void outbuf_prepare(sbuf *out, size_t n) {
    if (sbuf_size(out) != 0 || n < SPARE_MIN_BYTES) return; /* appended to, or small: sbuf grows it */
    sbuf_free(out);
    if (spare.buf && n <= spare.cap && n >= spare.cap / 4) {
        SPARE_UNPOISON(spare.buf, spare.cap);
        out->data = spare.buf;
        out->cap = spare.cap;
        spare.buf = NULL;
        spare.cap = 0;
        ev_timer_stop(EV_DEFAULT_ & spare.idle);
        return;
    }
    spare_free();                                  /* too small for this message, or much bigger */
    out->cap = (n + n / 8 + 4095) & ~(size_t)4095; /* room for the next list to have grown a little */
    out->data = xmalloc(out->cap);
}

void outbuf_take(sbuf *out, size_t n) {
    assert(n <= sbuf_size(out));
    if (n < sbuf_size(out) || out->cap < SPARE_MIN_BYTES) return sbuf_consume(out, n);
    out->off = out->len = 0;
    spare_keep(out);
}

void outbuf_release(sbuf *out) {
    out->off = out->len = 0;
    if (out->cap >= SPARE_MIN_BYTES) return spare_keep(out);
    call_buf_empty(out);
}
