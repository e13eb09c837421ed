/* budget.h: how much memory the reply being built may take, counted while it is built, so that no
 * request can make the server build a reply that does not fit (issue 11). The transport sets the
 * budget before it runs a handler, from what replies already hold; services hand it to storage
 * (mv_range_req.max_bytes) and answer RESOURCE_EXHAUSTED when a result would pass it. */
#ifndef CETCD_BUDGET_H
#define CETCD_BUDGET_H

#include <stddef.h>

/* etcd's maxSendBytes (math.MaxInt32, v3rpc/grpc.go): no gRPC message may be larger. */
#define GRPC_MAX_SEND_BYTES ((size_t)0x7fffffff)
/* cetcd's own limits (etcd has none below the one above), set by flags: one reply's results may take
 * --max-reply-bytes (default below; an unpaged list of more, e.g. 100k Kubernetes objects of 1 KiB,
 * is refused unless the flag is raised: page it), all replies held in the server (built, not yet
 * handed to a socket) --max-reply-pool-bytes together... */
#define REPLY_MAX_BYTES_DEFAULT ((size_t)64 << 20)
#define REPLY_POOL_BYTES_DEFAULT ((size_t)512 << 20)
/* ...and a request may always use this much, whatever the others hold. */
#define REPLY_MIN_BYTES ((size_t)1 << 20)

/* The budget of a reply while the server holds held_bytes of other replies. */
size_t reply_budget_for(size_t held_bytes);
/* Sets the budget of the next handler run from the reply bytes the server holds now. */
void reply_budget_begin(size_t held_bytes);
/* The budget of the request being run (--max-reply-bytes outside a transport's run). */
size_t reply_budget(void);
/* The message answered with RESOURCE_EXHAUSTED when a result passes the budget: the running
 * request's, or (of) one found earlier, for a reply refused in a later loop turn. */
const char *reply_budget_message(void);
const char *reply_budget_message_of(size_t budget);

#endif
