/* budget.c: the reply budget of budget.h. One request runs at a time on the loop, so the budget
 * of the running request is one value, set by the transport before each handler. */
#include "budget.h"

#include <assert.h>
#include <stdbool.h>

#include <stdint.h>
#include <stdio.h>

#include "config.h"

static size_t current = REPLY_MAX_BYTES_DEFAULT;
static bool begun; /* outside a transport's run, the budget is the flag's */

static size_t flag_or(uint64_t flag, size_t fallback) {
    return flag ? (size_t)(flag < SIZE_MAX ? flag : SIZE_MAX) : fallback;
}

size_t reply_budget_for(size_t held_bytes) {
    size_t max = flag_or(g_config.max_reply_bytes, REPLY_MAX_BYTES_DEFAULT);
    size_t pool = flag_or(g_config.max_reply_pool_bytes, REPLY_POOL_BYTES_DEFAULT);
    assert(pool >= max); /* flags.c refuses a pool below the per-reply limit */
    size_t free_bytes = held_bytes < pool ? pool - held_bytes : 0;
    size_t budget = free_bytes < max ? free_bytes : max;
    return budget < REPLY_MIN_BYTES ? REPLY_MIN_BYTES : budget;
}

void reply_budget_begin(size_t held_bytes) {
    current = reply_budget_for(held_bytes);
    begun = true;
}

size_t reply_budget(void) {
    return begun ? current : flag_or(g_config.max_reply_bytes, REPLY_MAX_BYTES_DEFAULT);
}

const char *reply_budget_message_of(size_t budget) {
    static char text[160];
    snprintf(text, sizeof text,
             "cetcd: reply larger than the %zu bytes it may take now; ask for fewer keys (limit, "
             "keys_only, a narrower range)",
             budget);
    return text;
}

const char *reply_budget_message(void) {
    return reply_budget_message_of(current);
}
