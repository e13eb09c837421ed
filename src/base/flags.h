/* flags.h: command-line and ETCD_* environment parsing into g_config, with etcd's flag names, and
 * the parser of listen URLs that both flag validation and the listeners use. */
#ifndef CETCD_FLAGS_H
#define CETCD_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CETCD_SELF_VERSION "0.1.0"

/* Fills cfg from the environment and argv. Returns -1 to go on, or an exit code (0 after --help or
 * --version, 2 after a bad flag, with one line already printed on stderr). */
int flags_parse(int argc, char **argv, config *cfg);

/* Go's time.ParseDuration ("10m", "1.5s", "1h30m", "100ms", "0") into seconds. False if s is not one. */
bool flags_parse_duration(const char *s, double *secs);

/* One listen URL, "http://host:port" or "https://host:port". host is empty for "all addresses". */
typedef struct listen_url {
    bool tls; /* https:// */
    char host[256];
    char port[16];
} listen_url;

/* Parses one URL of a comma list (url points at it, len is its length). False with err filled. */
bool url_parse(const char *url, size_t len, listen_url *out, char *err, size_t errlen);

#endif
