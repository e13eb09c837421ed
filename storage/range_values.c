/* range_values.c: reading the values of a Range's result, neighbours in the log with one read, either
 * into the result's arena (mvcc_range) or straight into the caller's reply (mvcc_range_values), and
 * then possibly over several loop turns, so that one large list does not hold the loop (issue 16). */
#include "alloc.h"
#include "mvcc_internal.h"
#include "radix_sort.h"
#include "storage_io.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_BYTES (1u << 20)
#define RUN_MAX_GAP 4096u
#define COPY_MAX_FILES 8 /* segment files a copy over several turns holds open */

/* A value to read, by its place in the log, and where it goes (an mv_bytes to point at the read
 * bytes, or the destination to copy them to). */
typedef struct value_ref {
    value_place place;
    void *out;
} value_ref;

static int by_place(const void *x, const void *y) {
    const value_place *a = &((const value_ref *)x)->place, *b = &((const value_ref *)y)->place;
    if (a->segment != b->segment) return a->segment < b->segment ? -1 : 1;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

static uint64_t place_key(const value_place *p) {
    return (uint64_t)p->segment << 32 | p->offset;
}

/* radix_sort by place_key: a third of qsort's time for 100k values out of log order. */
static void radix_by_place(value_ref *v, size_t n) {
    radix_item *items = xmalloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (radix_item){place_key(&v[i].place), &v[i]};
    radix_sort(items, n);
    value_ref *sorted = xmalloc(n * sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = *(const value_ref *)items[i].ptr;
    memcpy(v, sorted, n * sizeof *v);
    free(sorted);
    free(items);
}

/* A freshly written prefix is already in log order: no sort then. */
static void sort_by_place(value_ref *v, size_t n) {
    for (size_t i = 1; i < n; i++) {
        if (by_place(&v[i - 1], &v[i]) <= 0) continue;
        if (n < 1024) return qsort(v, n, sizeof *v, by_place);
        return radix_by_place(v, n);
    }
}

/* How many refs from i on one read can serve: same segment, small gaps (never more gap than
 * value bytes, so a run's buffer holds at most twice the values), at most max bytes (but one value
 * at least). */
static size_t run_length(const value_ref *v, size_t n, size_t i, uint64_t max, uint64_t *bytes) {
    const value_place *first = &v[i].place;
    uint64_t end = first->offset + first->length, values = first->length, gaps = 0;
    size_t j = i + 1;
    for (; j < n; j++) {
        const value_place *p = &v[j].place;
        if (p->segment != first->segment || p->offset < end) break;
        uint64_t gap = p->offset - end;
        if (gap > RUN_MAX_GAP || gaps + gap > values + p->length) break;
        if (p->offset + p->length - first->offset > max) break;
        gaps += gap;
        values += p->length;
        end = p->offset + p->length;
    }
    *bytes = end - first->offset;
    return j - i;
}

static log_place run_place(const value_ref *first, uint64_t bytes) {
    return (log_place){
        .segment = first->place.segment, .offset = first->place.offset, .length = (uint32_t)bytes};
}

static void read_run(mvcc *s, value_ref *v, size_t n, uint64_t bytes, mv_arena *a) {
    log_place run = run_place(v, bytes);
    uint8_t *buf = arena_alloc_raw(a, bytes); /* the run is read over it at once */
    int rc = n > 1 ? log_read(s->log, run, buf) : -EINVAL;
    for (size_t k = 0; k < n; k++) {
        mv_bytes *out = v[k].out;
        *out = (mv_bytes){buf + (v[k].place.offset - run.offset), v[k].place.length};
        if (rc == 0) continue;
        /* one value, or a run that crosses into the batch in flight: one read each */
        uint8_t *dst = arena_alloc_raw(a, v[k].place.length);
        if (log_read(s->log, value_log_place(v[k].place), dst) != 0) value_read_failed();
        out->data = dst;
    }
}

void read_values(mvcc *s, const candidate *c, size_t n, mv_kv *out, mv_arena *a) {
    value_ref *v = xmalloc((n ? n : 1) * sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].value.data)
            out[i].value = c[i].value;
        else if ((c[i].entry->flags & REV_PENDING) || c[i].entry->value.length == 0)
            out[i].value = read_value(s, c[i].entry, a);
        else
            v[m++] = (value_ref){c[i].entry->value, &out[i].value};
    }
    sort_by_place(v, m);
    for (size_t i = 0; i < m;) {
        uint64_t bytes;
        size_t k = run_length(v, m, i, RUN_MAX_BYTES, &bytes);
        read_run(s, v + i, k, bytes, a);
        i += k;
    }
    free(v);
}

/* --- copying the values into the caller's reply, at once or in steps (mv_values_copy) --- */

struct mv_values_copy {
    mvcc *s;
    value_ref *v; /* in log order; out is the destination */
    size_t n, next;
    uint8_t *scratch;
    size_t n_files; /* 0: read through the log, in the same turn as begin */
    struct {
        uint32_t segment;
        int fd; /* our own descriptor: a rewrite or removal of the segment since does not affect it */
    } files[COPY_MAX_FILES];
};

/* The values not read from a file now: in memory (sorting by value read them), in the write being
 * built, or in the log's batch not yet written. Copied at once; the rest become refs. */
static void copy_from_memory(mv_values_copy *c, const mv_range_resp *r, uint8_t *const *dst) {
    const candidate *cand = r->selected;
    mv_arena *tmp = NULL;
    for (size_t i = 0; i < r->n_kvs; i++) {
        const rev_entry *e = cand[i].entry;
        if (r->kvs[i].value.len == 0) continue; /* keys_only, or an empty value */
        assert(r->kvs[i].value.len == e->value.length);
        if (cand[i].value.data) {
            memcpy(dst[i], cand[i].value.data, e->value.length);
        } else if ((e->flags & REV_PENDING) || !log_in_file(c->s->log, value_log_place(e->value))) {
            if (!tmp) tmp = arena_new();
            memcpy(dst[i], read_value(c->s, e, tmp).data, e->value.length);
        } else {
            c->v[c->n++] = (value_ref){e->value, dst[i]};
        }
    }
    arena_free(tmp);
}

/* Opens our own descriptor of each segment the refs read; false if more than COPY_MAX_FILES. */
static bool open_files(mv_values_copy *c) {
    for (size_t i = 0; i < c->n; i++) {
        uint32_t seg = c->v[i].place.segment;
        if (c->n_files && c->files[c->n_files - 1].segment == seg) continue;
        if (c->n_files == COPY_MAX_FILES) return false;
        int fd = log_open_segment_file(c->s->log, seg);
        if (fd < 0) value_read_failed();
        c->files[c->n_files].segment = seg;
        c->files[c->n_files++].fd = fd;
    }
    return true;
}

static void close_files(mv_values_copy *c) {
    for (size_t i = 0; i < c->n_files; i++)
        sio_close(c->files[i].fd);
    c->n_files = 0;
}

static mv_values_copy *copy_begin(mvcc *s, const mv_range_resp *r, uint8_t *const *dst) {
    assert(r->selected || r->n_kvs == 0);
    mv_values_copy *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->v = xmalloc((r->n_kvs ? r->n_kvs : 1) * sizeof *c->v);
    copy_from_memory(c, r, dst);
    sort_by_place(c->v, c->n);
    return c;
}

mv_values_copy *mvcc_range_values_begin(mvcc *s, const mv_range_resp *r, uint8_t *const *dst) {
    mv_values_copy *c = copy_begin(s, r, dst);
    if (open_files(c)) return c;
    close_files(c);
    mvcc_range_values_step(c, SIZE_MAX); /* too many files to hold: all of it now */
    return c;
}

/* Reads a run (or, for a single value, the value straight to its place), by our own descriptor of the
 * segment or through the log. 0 or -errno. */
static int read_place(mv_values_copy *c, log_place p, uint8_t *dst) {
    if (c->n_files == 0) return log_read(c->s->log, p, dst);
    size_t f = 0;
    while (c->files[f].segment != p.segment)
        f++;
    assert(f < c->n_files);
    return sio_read_all(c->files[f].fd, dst, p.length, p.offset);
}

static void copy_run(mv_values_copy *c, size_t i, size_t k, uint64_t bytes) {
    if (k > 1 && !c->scratch) c->scratch = xmalloc(RUN_MAX_BYTES);
    log_place run = run_place(&c->v[i], bytes);
    int rc = k > 1 ? read_place(c, run, c->scratch) : -EINVAL;
    for (size_t j = i; j < i + k; j++) {
        const value_place *p = &c->v[j].place;
        if (rc == 0) /* else one value, or a run that crosses into the batch in flight */
            memcpy(c->v[j].out, c->scratch + (p->offset - run.offset), p->length);
        else if (read_place(c, value_log_place(*p), c->v[j].out) != 0)
            value_read_failed();
    }
}

bool mvcc_range_values_step(mv_values_copy *c, size_t budget) {
    size_t done = 0;
    while (c->next < c->n && done < budget) {
        uint64_t bytes;
        size_t left = budget - done;
        size_t k = run_length(c->v, c->n, c->next, left < RUN_MAX_BYTES ? left : RUN_MAX_BYTES, &bytes);
        copy_run(c, c->next, k, bytes);
        c->next += k;
        done += bytes;
    }
    return c->next == c->n;
}

void mvcc_range_values_end(mv_values_copy *c) {
    if (!c) return;
    close_files(c);
    free(c->scratch);
    free(c->v);
    free(c);
}

void mvcc_range_values(mvcc *s, const mv_range_resp *r, uint8_t *const *dst) {
    mv_values_copy *c = copy_begin(s, r, dst);
    mvcc_range_values_step(c, SIZE_MAX);
    mvcc_range_values_end(c);
}
