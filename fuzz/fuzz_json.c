/* Fuzz target for the JSON parser (libFuzzer; also built as a corpus replayer). An accepted
 * document is walked completely and every key looked up again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

int fuzz_verbose; /* set by replay_main -v: print why an input was rejected */

static void walk(const json_value *v) {
  size_t n = 0;
  for (const json_value *c = v->child; c; c = c->next, n++) {
    if (v->type == JSON_OBJECT) {
      if (!c->key || c->key[c->key_len] != '\0') abort();
      if (strlen(c->key) == c->key_len && !json_get(v, c->key)) abort();
    }
    walk(c);
  }
  if (n != v->count) abort();
  if (v->type == JSON_STRING && (v->str[v->str_len] != '\0' || !json_utf8_valid(v->str,
                                                                                 v->str_len)))
    abort();
  if (v->type == JSON_OBJECT) {
    const json_value *dup = NULL;
    json_find_duplicate(v, &dup, NULL);
  }
}

int fuzz_accepts(const uint8_t *data, size_t size) {
  json_doc *doc = NULL;
  effnet_error err = {{0}};
  json_options opt = {.max_bytes = (size_t)1 << 28};
  if (json_parse(&doc, (const char *)data, size, &opt, "fuzz.json", &err) != EFFNET_OK) {
    if (doc) abort();
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  walk(json_root(doc));
  json_free(doc);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
