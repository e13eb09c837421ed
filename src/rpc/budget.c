/* budget.c: the reply budget of budget.h. One request runs at a time on the loop, so the budget
 * of the running request is one value, set by the transport before each handler. */
#include "budget.h"

#include <stdio.h>

static size_t current = REPLY_MAX_BYTES;

void reply_budget_begin(size_t held_bytes) {
    size_t free_bytes = held_bytes < REPLY_POOL_BYTES ? REPLY_POOL_BYTES - held_bytes : 0;
    current = free_bytes < REPLY_MAX_BYTES ? free_bytes : REPLY_MAX_BYTES;
    if (current < REPLY_MIN_BYTES) current = REPLY_MIN_BYTES;
}

size_t reply_budget(void) {
    return current;
}

const char *reply_budget_message(void) {
    static char text[160];
    snprintf(text, sizeof text,
             "cetcd: reply larger than the %zu bytes it may take now; ask for fewer keys (limit, "
             "keys_only, a narrower range)",
             current);
    return text;
}
