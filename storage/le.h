/* le.h: little-endian integers in byte buffers, the one encoding every on-disk format of cetcd
 * (log records, change payloads, lease records, snapshots) uses. */
#ifndef CETCD_LE_H
#define CETCD_LE_H

#include <stdint.h>

static inline void le_put(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t le_get(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint32_t le_u32(const uint8_t *p) {
    return (uint32_t)le_get(p, 4);
}

static inline int64_t le_i64(const uint8_t *p) {
    return (int64_t)le_get(p, 8);
}

#endif
