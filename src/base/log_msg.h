/* log_msg.h: the server's one logger, filtered by --log-level: plain lines on stderr, or with
 * --logger=zap etcd's JSON lines ({"level","ts","caller","msg"}) to the --log-outputs, so that log
 * pipelines that read etcd read cetcd. Every module logs through it so the format changes in one place. */
#ifndef CETCD_LOG_MSG_H
#define CETCD_LOG_MSG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the threshold from etcd's level names (debug, info, warn, error, panic, fatal); false if unknown. */
bool log_set_level(const char *name);
/* --logger (zap: JSON lines; capnslog or unset: plain lines) and --log-outputs (a comma list of
 * stderr, stdout, default (stderr) or file paths, appended to). False with a message in err. */
bool log_set_output(const char *logger, const char *outputs, char *err, size_t errlen);
/* log_msg(level, fmt, ...): the caller's file and line go into the JSON's "caller". */
#define log_msg(level, ...) log_msg_at(__FILE__, __LINE__, level, __VA_ARGS__)
void log_msg_at(const char *file, int line, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
