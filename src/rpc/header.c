/* header.c: fills the ResponseHeader of top-level responses from the server's identity (config.h);
 * kept apart so every service reports the same cluster, member and term. */
#include "header.h"
#include "config.h"
#include "pb_wire.h"

void response_header_fill(Etcdserverpb__ResponseHeader *h, int64_t rev) {
    etcdserverpb__response_header__init(h);
    h->cluster_id = g_config.cluster_id;
    h->member_id = g_config.member_id;
    h->revision = rev;
    h->raft_term = g_config.raft_term;
}

size_t response_header_pack(uint8_t *buf, int64_t rev) {
    uint8_t *p = pb_put_int_field(buf, 0x08, (int64_t)g_config.cluster_id);
    p = pb_put_int_field(p, 0x10, (int64_t)g_config.member_id);
    p = pb_put_int_field(p, 0x18, rev);
    p = pb_put_int_field(p, 0x20, (int64_t)g_config.raft_term);
    return (size_t)(p - buf);
}
