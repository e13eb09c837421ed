/* xxh3.c: xxhash's implementation, from its own header, compiled here with the rest of storage rather
 * than linked from libxxhash.a, whose one object brings all 27 KB of XXH32/64/XXH3/XXH128 into the
 * text an idle server maps; with -ffunction-sections only XXH3-64 and its streaming form are kept. */
#define XXH_STATIC_LINKING_ONLY
#define XXH_IMPLEMENTATION
#include <xxhash.h>
