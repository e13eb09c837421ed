/* step_queue.h: long jobs done a step per loop turn (a Range reply built over several turns, a hash of
 * the whole store), the loop serving everyone else between two steps. A queue runs the step of its
 * first job on a libev timer, every `gap` seconds while it holds any; the step decides whether the job
 * stays first, goes last (the jobs take turns) or leaves. */
#ifndef CETCD_STEP_QUEUE_H
#define CETCD_STEP_QUEUE_H

#include <ev.h>
#include <stdbool.h>

/* Embedded in each job (the job is found from it with the usual offset arithmetic). */
typedef struct step_job {
    struct step_job *next;
} step_job;

typedef struct step_queue step_queue;
typedef void (*step_fn)(step_queue *q, step_job *first);

struct step_queue {
    step_job *head, **tail; /* tail == &head when empty */
    ev_timer tick;          /* running while the queue is not empty */
    double gap;
    step_fn step;
};

/* A queue that calls step(q, first job) every gap seconds while it holds a job. */
#define STEP_QUEUE_INIT(name, gap_seconds, step_function)                                                    \
    { .head = NULL, .tail = &(name).head, .gap = (gap_seconds), .step = (step_function) }

void step_queue_add(step_queue *q, step_job *j);    /* last */
void step_queue_remove(step_queue *q, step_job *j); /* wherever it is */
void step_queue_rotate(step_queue *q);              /* the first job goes last */

#endif
