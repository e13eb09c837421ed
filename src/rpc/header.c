/* header.c: fills the ResponseHeader of top-level responses from the server's identity (config.h);
 * kept apart so every service reports the same cluster, member and term. */
#include "header.h"
#include "config.h"

void response_header_fill(Etcdserverpb__ResponseHeader *h, int64_t rev) {
    etcdserverpb__response_header__init(h);
    h->cluster_id = g_config.cluster_id;
    h->member_id = g_config.member_id;
    h->revision = rev;
    h->raft_term = g_config.raft_term;
}
