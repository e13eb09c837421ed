/* log_msg.c: writes one line per message at or above the --log-level threshold: a timestamped
 * plain line on stderr, or with --logger=zap etcd's JSON line to each of the --log-outputs. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log_msg.h"

#define MAX_OUTPUTS 4

static enum log_level threshold = LOG_INFO;
static bool json;
static FILE *outputs[MAX_OUTPUTS];
static int n_outputs;

bool log_set_level(const char *name) {
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {{"debug", LOG_DEBUG}, {"info", LOG_INFO},   {"warn", LOG_WARN},
                  {"error", LOG_ERROR}, {"panic", LOG_ERROR}, {"fatal", LOG_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(name, levels[i].name) == 0) {
            threshold = levels[i].level;
            return true;
        }
    }
    return false;
}

static FILE *open_output(const char *name, size_t len, char *err, size_t errlen) {
    char path[1024];
    if (len >= sizeof path) return snprintf(err, errlen, "--log-outputs: a path is too long"), NULL;
    memcpy(path, name, len);
    path[len] = '\0';
    if (strcmp(path, "stderr") == 0 || strcmp(path, "default") == 0) return stderr;
    if (strcmp(path, "stdout") == 0) return stdout;
    FILE *f = fopen(path, "ae");
    if (!f) snprintf(err, errlen, "--log-outputs %s: %s", path, strerror(errno));
    if (f) setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

bool log_set_output(const char *logger, const char *list, char *err, size_t errlen) {
    if (logger && *logger && strcmp(logger, "zap") != 0 && strcmp(logger, "capnslog") != 0) {
        snprintf(err, errlen, "invalid value \"%s\" for --logger (zap or capnslog)", logger);
        return false;
    }
    json = logger && strcmp(logger, "zap") == 0;
    n_outputs = 0;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n_outputs == MAX_OUTPUTS) return snprintf(err, errlen, "--log-outputs: at most 4"), false;
        if (!(outputs[n_outputs++] = open_output(p, len, err, errlen))) return false;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}

/* s as the inside of a JSON string. */
static void json_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void log_msg_at(const char *file, int line, enum log_level level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < threshold) return;
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    char stamp[32], msg[2048];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!json) {
        fprintf(stderr, "%s.%06ldZ %s cetcd: %s\n", stamp, now.tv_nsec / 1000, names[level], msg);
        return;
    }
    const char *caller = strstr(file, "src/");
    caller = caller ? caller + 4 : file;
    for (int i = 0; i < (n_outputs ? n_outputs : 1); i++) {
        FILE *f = n_outputs ? outputs[i] : stderr;
        fprintf(f, "{\"level\":\"%s\",\"ts\":\"%s.%03ldZ\",\"caller\":\"%s:%d\",\"msg\":\"", names[level],
                stamp, now.tv_nsec / 1000000, caller, line);
        json_escape(f, msg);
        fputs("\"}\n", f);
    }
}
