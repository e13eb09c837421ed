/* header.c: fills the ResponseHeader of top-level responses from the server's identity (config.h);
 * kept apart so every service reports the same cluster, member and term. */
#include "header.h"
#include "config.h"
#include "pb_wire.h"

#include <stdbool.h>
#include <string.h>

void response_header_fill(Etcdserverpb__ResponseHeader *h, int64_t rev) {
    etcdserverpb__response_header__init(h);
    h->cluster_id = g_config.cluster_id;
    h->member_id = g_config.member_id;
    h->revision = rev;
    h->raft_term = g_config.raft_term;
}

/* The cluster and member ids packed once (their 20 bytes of varints cost more than the rest of a
 * put's reply), again if they ever change. */
static struct {
    uint64_t cluster_id, member_id;
    bool valid;
    size_t len;
    uint8_t bytes[22];
} ids;

size_t response_header_pack(uint8_t *buf, int64_t rev) {
    if (!ids.valid || ids.cluster_id != g_config.cluster_id || ids.member_id != g_config.member_id) {
        uint8_t *p = pb_put_int_field(ids.bytes, 0x08, (int64_t)g_config.cluster_id);
        p = pb_put_int_field(p, 0x10, (int64_t)g_config.member_id);
        ids.len = (size_t)(p - ids.bytes);
        ids.cluster_id = g_config.cluster_id;
        ids.member_id = g_config.member_id;
        ids.valid = true;
    }
    memcpy(buf, ids.bytes, ids.len);
    uint8_t *p = pb_put_int_field(buf + ids.len, 0x18, rev);
    p = pb_put_int_field(p, 0x20, (int64_t)g_config.raft_term);
    return (size_t)(p - buf);
}
