/* snapshot_etcd.h: snapshots in etcd's format, both ways. Out: the store as the bbolt database an etcd
 * backend holds (buckets key, meta, lease, members, cluster, alarm, auth...), produced in slices so the
 * loop never stalls. In: such a database (from a real etcd) read into a new cetcd data dir. */
#ifndef CETCD_SNAPSHOT_ETCD_H
#define CETCD_SNAPSHOT_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "mvcc.h"

/* --- out --- */
/* A consistent view of the store's durable state (mvcc_export) written as etcd's bbolt file. Two
 * passes: the first counts the pages (etcd_snap_prepare, in slices), the second emits them in file
 * order (etcd_snap_read); memory stays at one page per tree level and the pages being handed out. */
typedef struct etcd_snap etcd_snap;
etcd_snap *etcd_snap_begin(mvcc *s, char *err, size_t errlen);
/* Works for about budget_us: 1 while counting goes on, 0 once the size is known, -errno. */
int etcd_snap_prepare(etcd_snap *e, uint64_t budget_us);
uint64_t etcd_snap_size(const etcd_snap *e); /* the database's bytes, once prepared */
int64_t etcd_snap_revision(const etcd_snap *e);
/* Copies up to n bytes of the database; the count, 0 at the end, or -errno. Bounded work per call. */
long etcd_snap_read(etcd_snap *e, uint8_t *buf, size_t n);
void etcd_snap_end(etcd_snap *e);

/* --- in --- */
/* Is this a bbolt database (a valid meta page at the start)? */
int etcd_db_detect(const uint8_t *d, uint64_t size);
/* Checks all of an etcd database (d, size: without the sha256 trailer) and builds a cetcd store from it
 * in dir (missing or empty): every revision held, the compaction revision, the leases. 0, or -1 with err
 * set; nothing is built unless the whole file checked out. */
int etcd_db_import(const uint8_t *d, uint64_t size, const char *dir, char *err, size_t errlen);

#endif
