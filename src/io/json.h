/* Strict JSON (RFC 8259) parser for untrusted headers: the safetensors header and HF
 * config.json.
 *
 * The document is parsed twice: a first pass validates it and counts the nodes and string
 * bytes, so the whole tree then lives in exactly one allocation whose size is known (and can
 * be capped) before it is made. Rejected: invalid UTF-8 (overlong forms, UTF-8-encoded
 * surrogates, > U+10FFFF), raw control characters in strings, lone \u surrogates, leading
 * zeros, non-finite numbers, nesting deeper than JSON_MAX_DEPTH, and anything after the value
 * except whitespace (safetensors pads its header with spaces). Duplicate keys are kept, in
 * file order, for the caller to judge (json_find_duplicate). */
#ifndef EN_JSON_H
#define EN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

#define JSON_MAX_DEPTH 64

typedef enum json_type {
  JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_type;

typedef struct json_value json_value;
struct json_value {
  json_type type;
  size_t offset;      /* byte offset of the value in its file (see json_options.base_offset) */
  const char *key;    /* member name (NUL-terminated) when this value is in an object */
  size_t key_len;     /* bytes, excluding the NUL; the key may hold "\u0000" */
  const char *str;    /* JSON_STRING: unescaped UTF-8, NUL-terminated */
  size_t str_len;     /* bytes, excluding the terminator */
  double number;      /* JSON_NUMBER */
  int is_int;         /* JSON_NUMBER written without fraction/exponent and within int64 */
  int64_t integer;    /* valid when is_int */
  size_t count;       /* JSON_ARRAY / JSON_OBJECT: number of elements / members */
  json_value *child;  /* first element / member, in file order */
  json_value *next;   /* next sibling */
};

typedef struct json_doc json_doc;

typedef struct json_options {
  size_t max_bytes;   /* cap on the document's allocation, 0 = none (EFFNET_E_LIMIT) */
  size_t base_offset; /* where the text starts in its file, so messages give file offsets */
} json_options;

/* Parse text[0..len). opt may be NULL. On failure *out = NULL and err reads
 * "<label>: invalid JSON at byte N: <reason>" (EFFNET_E_FORMAT), or reports the cap
 * (EFFNET_E_LIMIT) or an allocation failure (EFFNET_E_NOMEM). */
effnet_status json_parse(json_doc **out, const char *text, size_t len, const json_options *opt,
                         const char *label, effnet_error *err);
void json_free(json_doc *doc);
const json_value *json_root(const json_doc *doc);
/* Bytes of the document's single allocation (what max_bytes is compared with). */
size_t json_doc_bytes(const json_doc *doc);

/* First member of obj named key (a C string), NULL if absent or obj is not an object. */
const json_value *json_get(const json_value *obj, const char *key);
/* Element i of an array (linear walk), NULL when out of range. */
const json_value *json_at(const json_value *arr, size_t i);
/* The first member of obj whose key repeats an earlier member's key, or NULL: *dup.
 * Sorts a temporary index, so it is O(n log n) even for hostile headers. */
effnet_status json_find_duplicate(const json_value *obj, const json_value **dup,
                                  effnet_error *err);
const char *json_type_name(json_type type);

/* 1 if s[0..len) is well-formed UTF-8 by the rules the parser applies. Writers use it so they
 * never produce a file the reader refuses. */
int json_utf8_valid(const char *s, size_t len);

#endif
