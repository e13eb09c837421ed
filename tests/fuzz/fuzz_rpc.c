/* fuzz_rpc.c: libFuzzer target for every protobuf request through the real handlers: the first byte
 * picks a method of the method table, the rest is its request message, sent as one gRPC call to the
 * server over a store holding a few keys, a lease and a compaction (put back after each input).
 * Bidirectional streams (Watch, LeaseKeepAlive) stay open until the server has nothing left to say. */
#include <stdint.h>
#include <string.h>

#include "fuzz_server.h"

#define MAX_MSG 65000 /* within the stream's initial flow-control window */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_server_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t body[MAX_MSG + 5], req[MAX_MSG + 8192];
    if (size < 1) return 0;
    size_t m = data[0] % fz_n_methods;
    size_t len = size - 1 < MAX_MSG ? size - 1 : MAX_MSG;
    body[0] = 0;
    body[1] = (uint8_t)(len >> 24), body[2] = (uint8_t)(len >> 16), body[3] = (uint8_t)(len >> 8);
    body[4] = (uint8_t)len;
    memcpy(body + 5, data + 1, len);
    size_t n =
        fz_grpc_request(req, sizeof req, fz_methods[m], NULL, 0, body, len + 5, 0, !fz_method_is_stream(m));
    if (n) fz_serve(req, n, 0);
    return 0;
}
