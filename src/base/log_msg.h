/* log_msg.h: the server's one logger: plain lines on stderr, filtered by --log-level.
 * Kept tiny on purpose; every module logs through it so the format can change in one place. */
#ifndef CETCD_LOG_MSG_H
#define CETCD_LOG_MSG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the threshold from etcd's level names (debug, info, warn, error, panic, fatal); false if unknown. */
bool log_set_level(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
