/* replay_map.h: the key → history map used while the log is replayed at start-up. A hash table
 * finds a key with a probe or two, where the B+ tree descends through pointers to keys; once the log
 * is read, the keys are sorted and handed to the tree in order, which fills its leaves. */
#ifndef CETCD_REPLAY_MAP_H
#define CETCD_REPLAY_MAP_H

#include "bptree.h"
#include "keyhist.h"

#include <stddef.h>
#include <stdint.h>

typedef struct replay_map replay_map;

replay_map *replay_map_new(void);
/* The history of key, created empty if the key is new. */
keyhist *replay_map_history(replay_map *m, const uint8_t *key, size_t len);
/* Starts loading the table slot of key into the cache: for a key a few records ahead of replay. */
void replay_map_prefetch(const replay_map *m, const uint8_t *key, size_t len);
size_t replay_map_count(const replay_map *m);
/* Moves every key and its history into index (which must be empty), in key order, and frees m. */
void replay_map_load(replay_map *m, bptree *index);
/* Frees m and the histories still in it (a failed open). */
void replay_map_free(replay_map *m);

#endif
