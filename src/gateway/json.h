/* json.h: a small JSON reader (into a tree) and writer helpers for the HTTP/1.1 gateway, which speaks
 * the same JSON as etcd's grpc-gateway; no JSON library is needed for so little. */
#ifndef CETCD_JSON_H
#define CETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    bool boolean;
    char *str; /* STRING: decoded UTF-8, NUL-terminated; NUMBER: the literal's text */
    size_t str_len;
    json_value **items; /* ARRAY elements, OBJECT values */
    char **keys;        /* OBJECT keys (decoded, NUL-terminated) */
    size_t n;
};

/* Parses one JSON document (whitespace around it allowed). NULL with a Go-like message in err. */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_value *v);

/* JSON string literal for s[0..len), escaped as Go's encoding/json does (HTML-safe). */
void json_write_string(sbuf *out, const char *s, size_t len);
void json_write_raw(sbuf *out, const char *s);

#endif
