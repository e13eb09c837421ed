/* json.c: a strict recursive-descent JSON parser producing a small tree, and string escaping for the
 * writer side; used by the /v3/ JSON gateway so that no JSON library is needed. Depth is bounded so
 * hostile input cannot exhaust the stack. */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define MAX_DEPTH 512

typedef struct parser {
    const char *p, *end;
    char *err;
    size_t errlen;
    bool failed;
} parser;

static json_value *parse_value(parser *ps, int depth);

static void fail_at(parser *ps, const char *context) {
    if (ps->failed) return;
    ps->failed = true;
    if (ps->p >= ps->end)
        snprintf(ps->err, ps->errlen, "unexpected EOF");
    else
        snprintf(ps->err, ps->errlen, "invalid character '%c' %s", *ps->p, context);
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static json_value *new_value(json_type t) {
    json_value *v = xcalloc(1, sizeof *v);
    v->type = t;
    return v;
}

void json_free(json_value *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *ps, uint32_t *out) {
    if (ps->end - ps->p < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) return false;
        v = v << 4 | (uint32_t)d;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static void put_utf8(sbuf *b, uint32_t cp) {
    uint8_t u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (uint8_t)(0xc0 | cp >> 6), u[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (uint8_t)(0xe0 | cp >> 12), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)),
        u[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (uint8_t)(0xf0 | cp >> 18), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f)),
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (cp & 0x3f)), n = 4;
    sbuf_append(b, u, n);
}

/* \uXXXX, with surrogate pairs; a lone surrogate becomes U+FFFD as in Go. */
static bool read_unicode_escape(parser *ps, sbuf *b) {
    uint32_t cp, lo;
    if (!read_hex4(ps, &cp)) return false;
    if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
        const char *save = ps->p;
        ps->p += 2;
        if (read_hex4(ps, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            put_utf8(b, 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00));
            return true;
        }
        ps->p = save;
    }
    put_utf8(b, cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp);
    return true;
}

static bool read_escape(parser *ps, sbuf *b) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (ps->p >= ps->end) return false;
    char c = *ps->p++;
    if (c == 'u') return read_unicode_escape(ps, b);
    const char *hit = strchr(from, c);
    if (!hit || !c) {
        ps->p--;
        return false;
    }
    sbuf_append(b, &to[hit - from], 1);
    return true;
}

/* At the opening quote. Returns a malloc'd NUL-terminated string. */
static char *parse_string(parser *ps, size_t *len) {
    sbuf b = {0};
    ps->p++;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            fail_at(ps, "in string literal");
            break;
        }
        if (c == '\\') {
            ps->p++;
            if (!read_escape(ps, &b)) {
                fail_at(ps, "in string escape code");
                break;
            }
            continue;
        }
        sbuf_append(&b, ps->p++, 1);
    }
    if (!ps->failed && ps->p >= ps->end) fail_at(ps, "");
    if (ps->failed) {
        sbuf_free(&b);
        return NULL;
    }
    ps->p++;
    *len = sbuf_size(&b);
    char *s = xmalloc(*len + 1);
    if (*len) memcpy(s, sbuf_head(&b), *len);
    s[*len] = '\0';
    sbuf_free(&b);
    return s;
}

static void skip_digits(parser *ps) {
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
}

static bool at_digit(const parser *ps) {
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static json_value *parse_number(parser *ps) {
    const char *start = ps->p;
    if (*ps->p == '-') ps->p++;
    if (!at_digit(ps)) return fail_at(ps, "in numeric literal"), NULL;
    if (*ps->p == '0')
        ps->p++;
    else
        skip_digits(ps);
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (!at_digit(ps)) return fail_at(ps, "after decimal point in numeric literal"), NULL;
        skip_digits(ps);
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (!at_digit(ps)) return fail_at(ps, "in exponent of numeric literal"), NULL;
        skip_digits(ps);
    }
    json_value *v = new_value(JSON_NUMBER);
    v->str_len = (size_t)(ps->p - start);
    v->str = xmalloc(v->str_len + 1);
    memcpy(v->str, start, v->str_len);
    v->str[v->str_len] = '\0';
    return v;
}

static json_value *parse_literal(parser *ps, const char *word, json_type t, bool b) {
    size_t n = strlen(word);
    for (size_t i = 0; i < n; i++, ps->p++) {
        if (ps->p >= ps->end || *ps->p != word[i]) return fail_at(ps, "in literal"), NULL;
    }
    json_value *v = new_value(t);
    v->boolean = b;
    return v;
}

static void push(json_value *v, char *key, json_value *item) {
    v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
    if (!v->items) abort();
    if (v->type == JSON_OBJECT) {
        v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
        if (!v->keys) abort();
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
}

/* Parses "[ ... ]" or "{ ... }"; at the opening bracket. */
static json_value *parse_container(parser *ps, int depth, bool object) {
    json_value *v = new_value(object ? JSON_OBJECT : JSON_ARRAY);
    char close = object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) return ps->p++, v;
    for (;;) {
        char *key = NULL;
        if (object) {
            skip_ws(ps);
            size_t klen;
            if (ps->p >= ps->end || *ps->p != '"') break;
            if (!(key = parse_string(ps, &klen))) break;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                fail_at(ps, "after object key");
                break;
            }
            ps->p++;
        }
        json_value *item = parse_value(ps, depth + 1);
        if (!item) {
            free(key);
            break;
        }
        push(v, key, item);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) return ps->p++, v;
        break;
    }
    fail_at(ps, object ? "after object key:value pair" : "after array element");
    json_free(v);
    return NULL;
}

static json_value *parse_value(parser *ps, int depth) {
    skip_ws(ps);
    if (depth > MAX_DEPTH) {
        snprintf(ps->err, ps->errlen, "exceeded max depth");
        ps->failed = true;
        return NULL;
    }
    if (ps->p >= ps->end) return fail_at(ps, ""), NULL;
    switch (*ps->p) {
    case '{':
        return parse_container(ps, depth, true);
    case '[':
        return parse_container(ps, depth, false);
    case '"': {
        size_t len;
        char *s = parse_string(ps, &len);
        if (!s) return NULL;
        json_value *v = new_value(JSON_STRING);
        v->str = s;
        v->str_len = len;
        return v;
    }
    case 't':
        return parse_literal(ps, "true", JSON_BOOL, true);
    case 'f':
        return parse_literal(ps, "false", JSON_BOOL, false);
    case 'n':
        return parse_literal(ps, "null", JSON_NULL, false);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        fail_at(ps, "looking for beginning of value");
        return NULL;
    }
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen) {
    parser ps = {text, text + len, err, errlen, false};
    json_value *v = parse_value(&ps, 0);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        fail_at(&ps, "after top-level value");
        json_free(v);
        return NULL;
    }
    return v;
}

/* --- writer --- */

void json_write_raw(sbuf *out, const char *s) {
    sbuf_append(out, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t need = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (need == 0 || need > n) return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (need == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (need == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return need;
}

void json_write_string(sbuf *out, const char *str, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    sbuf_append(out, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            sbuf_append(out, esc, 2), i++;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            sbuf_append(out, esc, 2), i++;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(esc, "\\u00", 4), esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            sbuf_append(out, esc, 6), i++;
        } else if (c < 0x80) {
            sbuf_append(out, &s[i++], 1);
        } else {
            size_t n = utf8_len(s + i, len - i);
            bool line_sep = n == 3 && s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8;
            if (n == 0)
                json_write_raw(out, "\\ufffd"), i++;
            else if (line_sep)
                json_write_raw(out, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029"), i += 3;
            else
                sbuf_append(out, s + i, n), i += n;
        }
    }
    sbuf_append(out, "\"", 1);
}
