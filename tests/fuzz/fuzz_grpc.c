/* fuzz_grpc.c: libFuzzer target for gRPC message framing (the 5-byte prefix, messages cut across DATA
 * frames, compressed flags, short and extra bytes at the end of a stream). The HTTP/2 around it is
 * well-formed so that every input reaches h2.c's framing code and the method it names.
 * Input: [method][options][chunk][body]. method picks a path of the method table (or an unknown one);
 * options: 1 ends the stream, 2 grpc-encoding gzip, 4 grpc-encoding identity, 8 grpc-timeout 0n,
 * 16 content-type application/grpc+proto; chunk is the DATA frame size (0: one frame); body is the
 * request stream's bytes as they would be on the wire (prefixed messages). */
#include <stdint.h>
#include <string.h>

#include "fuzz_server.h"

#define MAX_BODY 65000 /* within the stream's initial flow-control window */

static const char *const unknown_paths[] = {"/etcdserverpb.KV/Nope", "/nope", "/etcdserverpb.Nope/Range"};
#define N_UNKNOWN (sizeof unknown_paths / sizeof unknown_paths[0])

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_server_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t req[MAX_BODY + 8192];
    if (size < 3) return 0;
    size_t m = data[0] % (fz_n_methods + N_UNKNOWN);
    const char *path = m < fz_n_methods ? fz_methods[m] : unknown_paths[m - fz_n_methods];
    uint8_t opt = data[1];
    size_t chunk = data[2];
    const uint8_t *body = data + 3;
    size_t body_len = size - 3 < MAX_BODY ? size - 3 : MAX_BODY;
    char extra[256];
    size_t elen = 0;
#define EXTRA(n, v)                                                                                          \
    do {                                                                                                     \
        memcpy(extra + elen, n "\0" v, sizeof(n) + sizeof(v));                                               \
        elen += sizeof(n) + sizeof(v);                                                                       \
    } while (0)
    if (opt & 2) EXTRA("grpc-encoding", "gzip");
    if (opt & 4) EXTRA("grpc-encoding", "identity");
    if (opt & 8) EXTRA("grpc-timeout", "0n");
    if (opt & 16) EXTRA("content-type", "application/grpc+proto");
    size_t n = fz_grpc_request(req, sizeof req, path, extra, elen, body, body_len, chunk, opt & 1);
    if (n) fz_serve(req, n, 0);
    return 0;
}
