/* JSON parser edge cases: grammar, numbers, strings and UTF-8, limits, messages. */
#include <locale.h>
#include <stdint.h>
#include <string.h>

#include "io/json.h"
#include "testutil.h"

static effnet_error err;

static json_doc *parse(const char *text) {
  json_doc *doc = NULL;
  if (json_parse(&doc, text, strlen(text), NULL, "t.json", &err) != EFFNET_OK) return NULL;
  return doc;
}

static effnet_status status_of(const char *text, size_t len) {
  json_doc *doc = (json_doc *)1;
  effnet_status st = json_parse(&doc, text, len, NULL, "t.json", &err);
  if (st != EFFNET_OK) CHECK(doc == NULL);
  json_free(doc);
  return st;
}

static int rejects(const char *text) { return status_of(text, strlen(text)) == EFFNET_E_FORMAT; }

static void test_objects(void) {
  json_doc *doc = parse(" {\"b\": 1, \"a\": [true, false, null], \"c\": {\"d\": \"e\"}} ");
  CHECK(doc != NULL);
  if (!doc) return;
  const json_value *r = json_root(doc);
  CHECK_EQ_INT(r->type, JSON_OBJECT);
  CHECK_EQ_INT(r->count, 3);
  /* members keep file order */
  CHECK(strcmp(r->child->key, "b") == 0);
  CHECK(strcmp(r->child->next->key, "a") == 0);
  CHECK(strcmp(r->child->next->next->key, "c") == 0);
  const json_value *a = json_get(r, "a");
  CHECK(a && a->type == JSON_ARRAY && a->count == 3);
  CHECK_EQ_INT(json_at(a, 0)->type, JSON_TRUE);
  CHECK_EQ_INT(json_at(a, 1)->type, JSON_FALSE);
  CHECK_EQ_INT(json_at(a, 2)->type, JSON_NULL);
  CHECK(json_at(a, 3) == NULL);
  CHECK(strcmp(json_get(json_get(r, "c"), "d")->str, "e") == 0);
  CHECK(json_get(r, "zz") == NULL);
  CHECK(json_get(a, "a") == NULL); /* not an object */
  CHECK_EQ_INT(json_get(r, "b")->offset, 7);
  const json_value *dup = (const json_value *)1;
  CHECK_EQ_INT(json_find_duplicate(r, &dup, &err), EFFNET_OK);
  CHECK(dup == NULL);
  json_free(doc);

  doc = parse("{\"a\": 1, \"b\": 2, \"a\": 3, \"b\": 4, \"a\": 5}");
  CHECK(doc != NULL);
  if (!doc) return;
  r = json_root(doc);
  CHECK_EQ_INT(json_get(r, "a")->integer, 1); /* the first of repeated keys */
  CHECK_EQ_INT(json_find_duplicate(r, &dup, &err), EFFNET_OK);
  CHECK(dup && strcmp(dup->key, "a") == 0 && dup->integer == 3);
  json_free(doc);

  doc = parse("{\"\": {}, \"x\": [], \"y\": [{}]}");
  CHECK(doc && json_root(doc)->count == 3 && json_get(json_root(doc), "")->count == 0);
  json_free(doc);
}

static void test_numbers(void) {
  json_doc *doc = parse("[0, -0, 42, -7, 9223372036854775807, -9223372036854775808, "
                        "9223372036854775808, 1.5, -2.5e-3, 1E+2, 4.0, 1e-400, 123456789012]");
  CHECK(doc != NULL);
  if (!doc) return;
  const json_value *r = json_root(doc);
  CHECK(json_at(r, 0)->is_int && json_at(r, 0)->integer == 0);
  CHECK(json_at(r, 1)->is_int && json_at(r, 1)->integer == 0);
  CHECK(json_at(r, 2)->is_int && json_at(r, 2)->integer == 42 && json_at(r, 2)->number == 42);
  CHECK(json_at(r, 3)->is_int && json_at(r, 3)->integer == -7);
  CHECK(json_at(r, 4)->is_int && json_at(r, 4)->integer == INT64_MAX);
  CHECK(json_at(r, 5)->is_int && json_at(r, 5)->integer == INT64_MIN);
  CHECK(!json_at(r, 6)->is_int && json_at(r, 6)->number == 9223372036854775808.0);
  CHECK(!json_at(r, 7)->is_int && json_at(r, 7)->number == 1.5);
  CHECK(json_at(r, 8)->number == -2.5e-3);
  CHECK(!json_at(r, 9)->is_int && json_at(r, 9)->number == 100);
  CHECK(!json_at(r, 10)->is_int); /* 4.0 is written as a real: not an integer */
  CHECK(json_at(r, 11)->number == 0);
  CHECK(json_at(r, 12)->integer == 123456789012LL);
  json_free(doc);

  /* a token longer than the on-stack buffer */
  char longnum[260];
  longnum[0] = '1';
  memset(longnum + 1, '0', 199);
  strcpy(longnum + 200, ".5e-100");
  doc = parse(longnum);
  CHECK(doc && !json_root(doc)->is_int && fabs(json_root(doc)->number / 1e99 - 1) < 1e-12);
  json_free(doc);

  /* strtod follows LC_NUMERIC; JSON must not (skipped where no comma locale exists) */
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
    doc = parse("[1.5, 2.25e1]");
    CHECK(doc && json_at(json_root(doc), 0)->number == 1.5 &&
          json_at(json_root(doc), 1)->number == 22.5);
    json_free(doc);
    setlocale(LC_NUMERIC, "C");
  }

  CHECK(rejects("01"));
  CHECK(rejects("-01"));
  CHECK(rejects("+1"));
  CHECK(rejects("1."));
  CHECK(rejects(".5"));
  CHECK(rejects("-"));
  CHECK(rejects("1e"));
  CHECK(rejects("1e+"));
  CHECK(rejects("1e400"));
  CHECK(rejects("-1e400"));
  CHECK(rejects("NaN"));
  CHECK(rejects("Infinity"));
  CHECK(rejects("0x10"));
}

static void test_strings(void) {
  json_doc *doc = parse("[\"\", \"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u4E2D\\ud83d\\ude00\","
                        " \"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"a\\u0000b\"]");
  CHECK(doc != NULL);
  if (!doc) return;
  const json_value *r = json_root(doc);
  CHECK(json_at(r, 0)->str_len == 0 && json_at(r, 0)->str[0] == '\0');
  CHECK(strcmp(json_at(r, 1)->str, "\"\\/\b\f\n\r\t") == 0);
  CHECK(strcmp(json_at(r, 2)->str, "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80") == 0);
  CHECK(strcmp(json_at(r, 3)->str, "caf\xc3\xa9 \xf0\x9f\x98\x80") == 0);
  CHECK_EQ_INT(json_at(r, 4)->str_len, 3); /* embedded NUL kept; callers compare lengths */
  CHECK(memcmp(json_at(r, 4)->str, "a\0b", 4) == 0);
  json_free(doc);

  CHECK(rejects("\"abc"));
  CHECK(rejects("\"a\nb\""));
  CHECK(rejects("\"a\x01\""));
  CHECK(rejects("\"\\x\""));
  CHECK(rejects("\"\\u12\""));
  CHECK(rejects("\"\\u12g4\""));
  CHECK(rejects("\"\\ud800\""));
  CHECK(rejects("\"\\ud800\\u0041\""));
  CHECK(rejects("\"\\udc00\""));
  CHECK(rejects("\"\x80\""));
  CHECK(rejects("\"\xc0\xaf\""));         /* overlong '/' */
  CHECK(rejects("\"\xe0\x80\xaf\""));     /* overlong */
  CHECK(rejects("\"\xed\xa0\x80\""));     /* UTF-8-encoded surrogate */
  CHECK(rejects("\"\xf4\x90\x80\x80\"")); /* > U+10FFFF */
  CHECK(rejects("\"\xf5\x80\x80\x80\""));
  CHECK(rejects("\"\xe4\xb8\""));
  CHECK(rejects("'a'"));
  CHECK(json_utf8_valid("caf\xc3\xa9", 5));
  CHECK(!json_utf8_valid("\xc3", 1));
  CHECK(!json_utf8_valid("\xed\xbf\xbf", 3));
}

static void test_structure(void) {
  CHECK(rejects(""));
  CHECK(rejects("   "));
  CHECK(rejects("[1,]"));
  CHECK(rejects("{\"a\":1,}"));
  CHECK(rejects("{\"a\" 1}"));
  CHECK(rejects("{1:2}"));
  CHECK(rejects("[1 2]"));
  CHECK(rejects("{} {}"));
  CHECK(rejects("[1] x"));
  CHECK(rejects("tru"));
  CHECK(rejects("nul"));
  CHECK(rejects("// c\n1"));
  CHECK_EQ_INT(status_of("[1]\0", 4), EFFNET_E_FORMAT);
  /* trailing whitespace is fine: safetensors pads its header with spaces */
  json_doc *doc = parse("{\"a\":\"b\"}    \n\t\r ");
  CHECK(doc != NULL);
  json_free(doc);
  doc = parse("  7  ");
  CHECK(doc && json_root(doc)->type == JSON_NUMBER && json_root(doc)->integer == 7);
  json_free(doc);

  char deep[200];
  memset(deep, '[', 64);
  memset(deep + 64, ']', 64);
  deep[128] = '\0';
  doc = parse(deep);
  CHECK(doc != NULL); /* exactly JSON_MAX_DEPTH levels */
  json_free(doc);
  memset(deep, '[', 65);
  memset(deep + 65, ']', 65);
  deep[130] = '\0';
  CHECK(rejects(deep));
  CHECK(strstr(err.message, "nesting") != NULL);
}

static void test_messages_and_limits(void) {
  CHECK(rejects("{\"a\": [1, 2,, 3]}"));
  CHECK_MSG(strstr(err.message, "t.json") && strstr(err.message, "byte 12"), "%s", err.message);
  json_doc *doc = NULL;
  json_options opt = {.base_offset = 8};
  CHECK_EQ_INT(json_parse(&doc, "{\"a\": x}", 8, &opt, "m.safetensors", &err), EFFNET_E_FORMAT);
  CHECK_MSG(strstr(err.message, "m.safetensors") && strstr(err.message, "byte 14"), "%s",
            err.message);
  CHECK(json_parse(&doc, NULL, 0, NULL, NULL, &err) == EFFNET_E_FORMAT);
  CHECK(json_parse(NULL, "1", 1, NULL, NULL, &err) == EFFNET_E_ARGUMENT);

  const char *big = "[1,2,3,4,5,6,7,8,9,10]";
  CHECK_EQ_INT(json_parse(&doc, big, strlen(big), NULL, "t", &err), EFFNET_OK);
  size_t need = json_doc_bytes(doc);
  CHECK(need > 0);
  json_free(doc);
  opt = (json_options){.max_bytes = need};
  CHECK_EQ_INT(json_parse(&doc, big, strlen(big), &opt, "t", &err), EFFNET_OK);
  json_free(doc);
  opt.max_bytes = need - 1;
  CHECK_EQ_INT(json_parse(&doc, big, strlen(big), &opt, "t", &err), EFFNET_E_LIMIT);
  CHECK(doc == NULL);
  json_free(NULL);
  CHECK(json_root(NULL) == NULL);
  CHECK(strcmp(json_type_name(JSON_OBJECT), "object") == 0);
}

int main(void) {
  test_objects();
  test_numbers();
  test_strings();
  test_structure();
  test_messages_and_limits();
  return TEST_SUMMARY();
}
