/* methods.c: the one table of gRPC methods: path → kind and handler. Adding a method is one row here
 * plus its handler; a path not in the table is answered UNIMPLEMENTED by the transport. */
#include "rpc.h"
#include "svc_kv.h"
#include <string.h>

static const rpc_method methods[] = {
    {"/etcdserverpb.KV/Range", RPC_UNARY, kv_range, NULL},
    {"/etcdserverpb.KV/Put", RPC_UNARY, kv_put, NULL},
    {"/etcdserverpb.KV/DeleteRange", RPC_UNARY, kv_delete_range, NULL},
    {"/etcdserverpb.KV/Txn", RPC_UNARY, kv_txn, NULL},
    {"/etcdserverpb.KV/Compact", RPC_UNARY, kv_compact, NULL},
};

const rpc_method *rpc_find_method(const char *path, size_t len) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const char *p = methods[i].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0) return &methods[i];
    }
    return NULL;
}
