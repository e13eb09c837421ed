/* test_json.c: unit tests of src/gateway/json.c, the JSON reader and writer of the /v3 gateway: the tree it
 * builds, Go-like error messages for bad input, the depth bound, and string escaping as Go's
 * encoding/json writes it (HTML-safe, invalid UTF-8 as U+FFFD). */
#include "json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_value *parse_ok(const char *text) {
    char err[128] = "";
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    ck_assert_msg(v != NULL, "parse %s: %s", text, err);
    return v;
}

static void parse_fails(const char *text, const char *want_err) {
    char err[128] = "";
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    ck_assert_msg(v == NULL, "parse %s should fail", text);
    ck_assert_str_eq(err, want_err);
}

/* What json_write_string makes of s[0..len), NUL-terminated, malloc'd. */
static char *written(const char *s, size_t len) {
    sbuf b = {0};
    json_write_string(&b, s, len);
    char *out = malloc(sbuf_size(&b) + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, sbuf_head(&b), sbuf_size(&b));
    out[sbuf_size(&b)] = '\0';
    sbuf_free(&b);
    return out;
}

static void writes(const char *s, size_t len, const char *want) {
    char *got = written(s, len);
    ck_assert_str_eq(got, want);
    free(got);
}

/* n '[' then n ']'. */
static char *nested_arrays(size_t n) {
    char *s = malloc(2 * n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    return s;
}

START_TEST(test_tree) {
    json_value *v = parse_ok(" {\"a\": [1, \"x\", true, null, {\"b\": -2.5e+3}], \"a\": false}\r\n");
    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(v->n, 2); /* duplicate keys are kept, in order */
    ck_assert_str_eq(v->keys[0], "a");
    ck_assert_str_eq(v->keys[1], "a");
    const json_value *arr = v->items[0];
    ck_assert_int_eq(arr->type, JSON_ARRAY);
    ck_assert_uint_eq(arr->n, 5);
    ck_assert_int_eq(arr->items[0]->type, JSON_NUMBER);
    ck_assert_str_eq(arr->items[0]->str, "1");
    ck_assert_int_eq(arr->items[1]->type, JSON_STRING);
    ck_assert_str_eq(arr->items[1]->str, "x");
    ck_assert_int_eq(arr->items[2]->type, JSON_BOOL);
    ck_assert(arr->items[2]->boolean);
    ck_assert_int_eq(arr->items[3]->type, JSON_NULL);
    ck_assert_int_eq(arr->items[4]->type, JSON_OBJECT);
    ck_assert_str_eq(arr->items[4]->keys[0], "b");
    ck_assert_str_eq(arr->items[4]->items[0]->str, "-2.5e+3"); /* numbers keep their text */
    ck_assert_int_eq(v->items[1]->type, JSON_BOOL);
    ck_assert(!v->items[1]->boolean);
    json_free(v);
}
END_TEST

START_TEST(test_empty_containers) {
    json_value *v = parse_ok("[{}, [], \"\"]");
    ck_assert_uint_eq(v->n, 3);
    ck_assert_int_eq(v->items[0]->type, JSON_OBJECT);
    ck_assert_uint_eq(v->items[0]->n, 0);
    ck_assert_int_eq(v->items[1]->type, JSON_ARRAY);
    ck_assert_uint_eq(v->items[1]->n, 0);
    ck_assert_uint_eq(v->items[2]->str_len, 0);
    json_free(v);
}
END_TEST

/* \uXXXX with surrogate pairs; a lone surrogate becomes U+FFFD; \u0000 is kept inside str_len. */
START_TEST(test_string_escapes) {
    json_value *v = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    ck_assert_str_eq(v->str, "\"\\/\b\f\n\r\t");
    json_free(v);
    v = parse_ok("\"\\u00e9\\ud83d\\ude00\\ud800x\"");
    ck_assert_str_eq(v->str, "\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx");
    json_free(v);
    v = parse_ok("\"a\\u0000b\"");
    ck_assert_uint_eq(v->str_len, 3);
    ck_assert_mem_eq(v->str, "a\0b", 3);
    json_free(v);
}
END_TEST

START_TEST(test_errors) {
    parse_fails("", "unexpected EOF");
    parse_fails("{\"a\":", "unexpected EOF");
    parse_fails("\"abc", "unexpected EOF");
    parse_fails("x", "invalid character 'x' looking for beginning of value");
    parse_fails("{} x", "invalid character 'x' after top-level value");
    parse_fails("01", "invalid character '1' after top-level value");
    parse_fails("{\"a\" 1}", "invalid character '1' after object key");
    parse_fails("{\"a\":1 \"b\":2}", "invalid character '\"' after object key:value pair");
    parse_fails("[1 2]", "invalid character '2' after array element");
    parse_fails("\"\\q\"", "invalid character 'q' in string escape code");
    parse_fails("\"a\tb\"", "invalid character '\t' in string literal");
    parse_fails("1.x", "invalid character 'x' after decimal point in numeric literal");
    parse_fails("1e", "unexpected EOF");
    parse_fails("-a", "invalid character 'a' in numeric literal");
    parse_fails("trux", "invalid character 'x' in literal");
}
END_TEST

/* Hostile nesting is refused before it can exhaust the stack; ordinary nesting is fine. */
START_TEST(test_depth_bound) {
    char *ok = nested_arrays(500), *deep = nested_arrays(100000);
    json_value *v = parse_ok(ok);
    json_free(v);
    parse_fails(deep, "exceeded max depth");
    free(ok);
    free(deep);
}
END_TEST

START_TEST(test_write_escapes) {
    writes("plain", 5, "\"plain\"");
    writes("a\"b\\c\n\r\t", 8, "\"a\\\"b\\\\c\\n\\r\\t\"");
    writes("<>&", 3, "\"\\u003c\\u003e\\u0026\""); /* HTML-safe, as Go */
    writes("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    writes("a\0b", 3, "\"a\\u0000b\"");
    writes("", 0, "\"\"");
}
END_TEST

START_TEST(test_write_utf8) {
    writes("\xc3\xa9\xf0\x9f\x98\x80", 6, "\"\xc3\xa9\xf0\x9f\x98\x80\""); /* valid UTF-8 as is */
    writes("\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\"");           /* line separators */
    writes("\xff", 1, "\"\\ufffd\"");
    writes("\xc3", 1, "\"\\ufffd\"");                       /* truncated sequence */
    writes("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");            /* overlong */
    writes("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* an encoded surrogate */
}
END_TEST

START_TEST(test_write_raw) {
    sbuf b = {0};
    json_write_raw(&b, "{\"a\":");
    json_write_string(&b, "x", 1);
    json_write_raw(&b, "}");
    ck_assert_uint_eq(sbuf_size(&b), 9);
    ck_assert_mem_eq(sbuf_head(&b), "{\"a\":\"x\"}", 9);
    sbuf_free(&b);
}
END_TEST

Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *read = tcase_create("read");
    tcase_add_test(read, test_tree);
    tcase_add_test(read, test_empty_containers);
    tcase_add_test(read, test_string_escapes);
    tcase_add_test(read, test_errors);
    tcase_add_test(read, test_depth_bound);
    suite_add_tcase(s, read);
    TCase *write = tcase_create("write");
    tcase_add_test(write, test_write_escapes);
    tcase_add_test(write, test_write_utf8);
    tcase_add_test(write, test_write_raw);
    suite_add_tcase(s, write);
    return s;
}
