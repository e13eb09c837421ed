/* config_file.h: --config-file, etcd's YAML configuration (parsed with libyaml), with etcd's keys:
 * the flag names, and client-transport-security / peer-transport-security for the TLS files. */
#ifndef CETCD_CONFIG_FILE_H
#define CETCD_CONFIG_FILE_H

#include "config.h"

/* Sets cfg's fields from the file through set (a flag's name and value, as on the command line;
 * -1 when taken, else an exit code). Returns -1, or 2 after one line on stderr. */
int config_file_load(const char *path, config *cfg,
                     int (*set)(config *cfg, const char *name, const char *value));

#endif
