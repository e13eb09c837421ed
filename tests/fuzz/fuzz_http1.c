/* fuzz_http1.c: libFuzzer target for HTTP/1.1 and the JSON gateway. Input: [mode][bytes].
 * mode < 0x80: the bytes are what a client sends on a connection, served by the real server over a
 * socketpair, mode bytes per read (0: all at once; at most MAX_WRITES reads), so that requests are cut
 * anywhere.
 * mode >= 0x80: the bytes are a JSON body POSTed to gateway route (mode & 0x7f), handed straight to
 * http_api_serve (no socket), so that the fuzzer spends its time in json.c and pbjson.c (a streaming
 * route's stream is closed at once, as when its client goes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_server.h"
#include "http_api.h"

/* The JSON gateway's paths: src/gateway/http_api.c's table, then gw_stream.c's (the Makefile extracts
 * them into fz_routes.h), so that every route, streams included, can be fed directly. */
static const char *const routes[] = {
#include "fz_routes.h"
};
#define N_ROUTES (sizeof routes / sizeof routes[0])
#define MAX_WRITES 64 /* a longer input is cut into bigger pieces: each write costs a loop turn */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_server_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] < 0x80) {
        size_t chunk = data[0];
        if (chunk && (size - 1) / chunk > MAX_WRITES) chunk = (size - 1) / MAX_WRITES + 1;
        fz_serve(data + 1, size - 1, chunk);
        return 0;
    }
    http_api_req req = {.method = "POST",
                        .path = routes[(data[0] & 0x7f) % N_ROUTES],
                        .query = "",
                        .body = data + 1,
                        .body_len = size - 1};
    http_api_resp resp = {0};
    http_api_serve(&req, &resp);
    if (resp.stream) http_api_stream_closed(resp.stream); /* as if the client went at once */
    sbuf_free(&resp.body);
    fz_finish_input();
    return 0;
}
