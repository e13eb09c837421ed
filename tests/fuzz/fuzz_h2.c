/* fuzz_h2.c: libFuzzer target for the HTTP/2 connection input: the input is what a client sends after
 * the connection preface (frames, HPACK, gRPC bodies), served by the real server over a socketpair. */
#include <stdint.h>
#include <string.h>

#include "fuzz_server.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN (sizeof PREFACE - 1)
#define MAX_INPUT (1 << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_server_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t buf[PREFACE_LEN + MAX_INPUT];
    if (size > MAX_INPUT) size = MAX_INPUT;
    memcpy(buf, PREFACE, PREFACE_LEN);
    memcpy(buf + PREFACE_LEN, data, size);
    fz_serve(buf, PREFACE_LEN + size, 0);
    return 0;
}
