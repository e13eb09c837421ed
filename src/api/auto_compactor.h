/* auto_compactor.h: --auto-compaction-mode and --auto-compaction-retention, run as etcd's v3compactor
 * runs them (periodic: keep a time window of history; revision: keep a number of revisions), each
 * compaction issued as a Compact request from inside the server. */
#ifndef CETCD_AUTO_COMPACTOR_H
#define CETCD_AUTO_COMPACTOR_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum auto_compaction_mode { AC_OFF, AC_PERIODIC, AC_REVISION };

typedef struct auto_compaction {
    enum auto_compaction_mode mode;
    double period;           /* AC_PERIODIC: the retention, seconds (> 0) */
    int64_t revisions;       /* AC_REVISION: revisions kept behind the current one (> 0) */
    double interval;         /* AC_REVISION: seconds between checks (etcd's fixed 5 minutes by default) */
    char retention_text[64]; /* the retention as etcd logs it (Go's duration or the count) */
    bool revisions_from_duration; /* revision mode given a duration: etcd counts its nanoseconds */
} auto_compaction;

#define AUTO_COMPACTION_REVISION_INTERVAL 300.0 /* etcd's revInterval */

/* etcd's parsing of the two flags (embed.parseCompactionRetention and Config.Validate): mode is
 * "periodic", "revision", or NULL/"" (a config file that names none); retention is "0" (off), a whole
 * number (hours in periodic mode, revisions in revision mode) or a Go duration. interval is the
 * cetcd-only revision-mode period (0 for etcd's 5 minutes). False with a message in err where etcd
 * refuses to start (and for a negative duration, which etcd takes and then compacts without pause). */
bool auto_compaction_parse(const char *mode, const char *retention, double interval, auto_compaction *out,
                           char *err, size_t errlen);

/* Starts the compactor's timer on loop (nothing when s->mode is AC_OFF). s is copied. */
void auto_compactor_start(struct ev_loop *loop, const auto_compaction *s);

/* Go's time.Duration.String() of secs ("2s", "1h0m0s", "200ms") into buf. */
void auto_compaction_duration_text(double secs, char *buf, size_t cap);

#endif
