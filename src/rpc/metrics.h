/* metrics.h: the server's Prometheus metrics under etcd's names (so dashboards and alerts written for
 * etcd work): counters the services and transport bump, and the /metrics text rendering. */
#ifndef CETCD_METRICS_H
#define CETCD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mvcc.h"
#include "sbuf.h"

/* KV operations, counted as etcd's mvcc layer does (etcd_mvcc_{range,put,delete,txn}_total). */
void metrics_kv(unsigned ranges, unsigned puts, unsigned deletes);
/* A Txn's executed operations (nested ones included); etcd counts a txn when it ran more than one. */
void metrics_kv_txn(const mv_txn_resp *r);

/* gRPC: a call to a known method finished with code (grpc_server_handled_total). kind is rpc_kind. */
void metrics_grpc_handled(const char *path, int kind, int code);
void metrics_grpc_received(size_t bytes);
void metrics_grpc_sent(size_t bytes);

/* mvcc_commit, timed into etcd_disk_wal_fsync_duration_seconds when it synced. */
int metrics_timed_commit(mvcc *s);
/* One fdatasync done on the sync thread took seconds. */
void metrics_observe_fsync(const mvcc *s, double seconds);

/* Group commit's gathering (commit.c): a batch held back for more writers; timed_out when the wait
 * ended on its timer rather than with the writers expected (cetcd_commit_gather_*_total: cetcd only). */
void metrics_gather(int timed_out);

/* One turn of the event loop, from waking up to about to wait again, took seconds
 * (cetcd_loop_turn_duration_seconds and cetcd_loop_turn_longest_seconds: cetcd's own, no etcd name). */
void metrics_loop_turn(double seconds);

/* /health outcomes (etcd_server_health_success / _failures). */
void metrics_health(int ok);

/* The Prometheus text exposition of everything. */
void metrics_render(sbuf *out);

#endif
