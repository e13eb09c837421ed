/* fuzz_server.h: the server the network fuzz targets feed: the real server.c, h2.c, http1.c, method
 * table, services and store (in a temp dir, fsync off), driven one connection per input over a
 * socketpair, with the store put back to the same small data set after every input that changed it. */
#ifndef CETCD_FUZZ_SERVER_H
#define CETCD_FUZZ_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* Once, before the first input: flags, the store, watch, commit hooks, lease and compaction drivers.
 * The store is made in a fresh dir under $TMPDIR (or /dev/shm, else /tmp) and removed at exit. */
void fz_server_init(void);

/* One client connection: writes data to the server (chunk bytes per write with a loop turn in
 * between; 0 = all at once), runs the loop until the server has nothing left to do for it, half-closes,
 * and runs it until the server has closed the connection (every reply read and thrown away). Then
 * puts the store back if the input changed it. Aborts if the server never closes the connection. */
void fz_serve(const uint8_t *data, size_t len, size_t chunk);

/* After an input that did not go through fz_serve: commits its writes and puts the store back. */
void fz_finish_input(void);

/* The gRPC methods of src/net/methods.c, in its order: fuzz inputs pick one by index. */
extern const char *const fz_methods[];
extern const size_t fz_n_methods;
/* Whether fz_methods[i] is a bidirectional stream (its request is not ended by the client). */
int fz_method_is_stream(size_t i);

/* Builds the client's side of one gRPC call over HTTP/2 into out (cap bytes): preface, SETTINGS,
 * HEADERS for path (with extra literal headers, "name\0value\0" pairs, may be NULL) and the body as
 * DATA frames of at most chunk bytes (0 = as large as HTTP/2 allows), the last with END_STREAM if end_stream.
 * Returns the length, or 0 if it does not fit. */
size_t fz_grpc_request(uint8_t *out, size_t cap, const char *path, const char *extra, size_t extra_len,
                       const uint8_t *body, size_t body_len, size_t chunk, int end_stream);

#endif
