/* step_queue.c: the queue of step_queue.h: a singly linked list with a tail pointer, and the libev
 * timer that runs its first job's step while it is not empty. */
#include "step_queue.h"

#include <assert.h>
#include <stddef.h>

static void on_tick(EV_P_ ev_timer *t, int revents) {
    (void)EV_A, (void)revents;
    step_queue *q = (step_queue *)((char *)t - offsetof(step_queue, tick));
    assert(q->head);
    q->step(q, q->head);
}

void step_queue_add(step_queue *q, step_job *j) {
    j->next = NULL;
    *q->tail = j;
    q->tail = &j->next;
    if (!ev_is_active(&q->tick)) {
        ev_timer_init(&q->tick, on_tick, 0., q->gap);
        ev_timer_start(EV_DEFAULT_ & q->tick);
    }
}

void step_queue_remove(step_queue *q, step_job *j) {
    step_job **p = &q->head;
    while (*p != j) {
        assert(*p);
        p = &(*p)->next;
    }
    *p = j->next;
    if (q->tail == &j->next) q->tail = p;
    j->next = NULL;
    if (!q->head) ev_timer_stop(EV_DEFAULT_ & q->tick);
}

void step_queue_rotate(step_queue *q) {
    step_job *first = q->head;
    assert(first);
    if (!first->next) return;
    step_queue_remove(q, first);
    step_queue_add(q, first);
}
