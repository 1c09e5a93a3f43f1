#include "io/json.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct json_doc {
  json_value *root;
  size_t bytes;
  /* the nodes, then the string bytes, follow in the same allocation */
};

/* One recursive-descent parser run twice over the same text: with build = 0 it only
 * validates and counts, with build = 1 it fills the buffers sized by the first run. Both runs
 * take identical paths, so the second cannot fail where the first succeeded. */
typedef struct parser {
  const unsigned char *s;
  size_t len, pos, base;
  int depth, build;
  size_t nodes, str_bytes;
  json_value *node_buf;
  char *str_buf;
  json_value scratch; /* target of every write during the counting run */
  const char *label;
  effnet_error *err;
} parser;

static effnet_status value(parser *p, json_value *v);

static effnet_status perr(parser *p, size_t at, const char *reason) {
  return en_fail(p->err, EFFNET_E_FORMAT, "%s: invalid JSON at byte %zu: %s", p->label,
                 p->base + at, reason);
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static json_value *new_node(parser *p) {
  p->nodes++;
  if (!p->build) return &p->scratch;
  json_value *v = &p->node_buf[p->nodes - 1];
  memset(v, 0, sizeof *v);
  return v;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table), 0 if ill-formed. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3;
  else if (c >= 0xF0 && c <= 0xF4) n = 4;
  else return 0;
  if (c == 0xE0) lo = 0xA0;      /* overlong */
  else if (c == 0xED) hi = 0x9F; /* U+D800..DFFF encoded directly */
  else if (c == 0xF0) lo = 0x90; /* overlong */
  else if (c == 0xF4) hi = 0x8F; /* beyond U+10FFFF */
  if (avail < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return n;
}

int json_utf8_valid(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq(u + i, len - i);
    if (n == 0) return 0;
    i += n;
  }
  return 1;
}

static int hex4(const unsigned char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v * 16 + d;
  }
  *out = v;
  return 1;
}

static size_t utf8_encode(unsigned cp, unsigned char *o) {
  if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* \uXXXX at p->pos (just past the backslash and 'u'), joining a surrogate pair. */
static effnet_status unicode_escape(parser *p, unsigned *cp) {
  size_t at = p->pos - 2;
  if (p->len - p->pos < 4 || !hex4(p->s + p->pos, cp)) return perr(p, at, "bad \\u escape");
  p->pos += 4;
  if (*cp >= 0xDC00 && *cp <= 0xDFFF) return perr(p, at, "lone low surrogate in \\u escape");
  if (*cp < 0xD800 || *cp > 0xDBFF) return EFFNET_OK;
  unsigned lo;
  if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
      !hex4(p->s + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
    return perr(p, at, "high surrogate not followed by a low surrogate");
  p->pos += 6;
  *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
  return EFFNET_OK;
}

/* One escape sequence (p->pos at the backslash); its UTF-8 goes to o, length to *n. */
static effnet_status escape(parser *p, unsigned char *o, size_t *n) {
  size_t at = p->pos;
  if (p->len - p->pos < 2) return perr(p, at, "unterminated string");
  unsigned char c = p->s[p->pos + 1];
  p->pos += 2;
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = c ? strchr(from, c) : NULL;
  if (hit) {
    o[0] = (unsigned char)to[hit - from];
    *n = 1;
    return EFFNET_OK;
  }
  if (c != 'u') return perr(p, at, "invalid escape sequence");
  unsigned cp = 0; /* set by unicode_escape on success; 0 keeps gcc's flow analysis quiet */
  effnet_status st = unicode_escape(p, &cp);
  if (st != EFFNET_OK) return st;
  *n = utf8_encode(cp, o);
  return EFFNET_OK;
}

/* String at p->pos (the opening quote). Unescaped bytes plus a NUL go to the string buffer. */
static effnet_status string(parser *p, const char **out, size_t *out_len) {
  size_t start = p->pos++;
  char *dst = p->build ? p->str_buf + p->str_bytes : NULL;
  size_t n = 0;
  for (;;) {
    if (p->pos >= p->len) return perr(p, start, "unterminated string");
    unsigned char c = p->s[p->pos];
    unsigned char tmp[4];
    size_t k = 0;
    if (c == '"') break;
    if (c < 0x20) return perr(p, p->pos, "control character in string");
    if (c == '\\') {
      effnet_status st = escape(p, tmp, &k);
      if (st != EFFNET_OK) return st;
      if (dst) memcpy(dst + n, tmp, k);
    } else {
      k = utf8_seq(p->s + p->pos, p->len - p->pos);
      if (k == 0) return perr(p, p->pos, "invalid UTF-8 in string");
      if (dst) memcpy(dst + n, p->s + p->pos, k);
      p->pos += k;
    }
    n += k;
  }
  p->pos++;
  if (dst) {
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
  }
  p->str_bytes += n + 1;
  return EFFNET_OK;
}

/* strtod on a NUL-terminated copy of the token, with '.' swapped for the current locale's
 * decimal point: JSON numbers are locale-free but strtod is not. */
static effnet_status to_double(parser *p, size_t start, size_t len, double *out) {
  const char *dp = localeconv()->decimal_point;
  if (!dp || !*dp) dp = ".";
  size_t dplen = strlen(dp);
  char small[128];
  char *buf = small;
  if (len + dplen + 1 > sizeof small) {
    buf = malloc(len + dplen + 1);
    if (!buf) return en_fail(p->err, EFFNET_E_NOMEM, "%s: out of memory parsing JSON", p->label);
  }
  size_t j = 0;
  for (size_t i = 0; i < len; i++) {
    if (p->s[start + i] == '.') {
      memcpy(buf + j, dp, dplen);
      j += dplen;
    } else {
      buf[j++] = (char)p->s[start + i];
    }
  }
  buf[j] = '\0';
  *out = strtod(buf, NULL);
  if (buf != small) free(buf);
  if (!isfinite(*out)) return perr(p, start, "number out of range");
  return EFFNET_OK;
}

static size_t digits(parser *p) {
  size_t n = 0;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++, n++;
  return n;
}

/* Exact int64 value of an integral token, if it has one. */
static int token_int64(const unsigned char *s, size_t len, int64_t *out) {
  int neg = s[0] == '-';
  uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (size_t i = (size_t)neg; i < len; i++) {
    unsigned d = s[i] - '0';
    if (mag > (limit - d) / 10) return 0;
    mag = mag * 10 + d;
  }
  *out = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
  return 1;
}

static effnet_status number(parser *p, json_value *v) {
  size_t start = p->pos;
  int integral = 1;
  if (p->s[p->pos] == '-') p->pos++;
  if (p->pos < p->len && p->s[p->pos] == '0') {
    p->pos++;
    if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
      return perr(p, start, "leading zeros are not allowed");
  } else if (digits(p) == 0) {
    return perr(p, start, "invalid number");
  }
  if (p->pos < p->len && p->s[p->pos] == '.') {
    p->pos++;
    integral = 0;
    if (digits(p) == 0) return perr(p, start, "invalid number: no digits after '.'");
  }
  if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    integral = 0;
    if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (digits(p) == 0) return perr(p, start, "invalid number: no digits in exponent");
  }
  size_t len = p->pos - start;
  v->type = JSON_NUMBER;
  v->is_int = integral && token_int64(p->s + start, len, &v->integer);
  if (v->is_int) { /* int64 -> double rounds to nearest, as strtod would */
    v->number = (double)v->integer;
    return EFFNET_OK;
  }
  return to_double(p, start, len, &v->number);
}

static effnet_status literal(parser *p, json_value *v, const char *word, json_type type) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return perr(p, p->pos, "invalid literal");
  p->pos += n;
  v->type = type;
  return EFFNET_OK;
}

static void append(json_value *parent, json_value **last, json_value *child) {
  if (*last) (*last)->next = child;
  else parent->child = child;
  *last = child;
  parent->count++;
}

/* After an element or member: ',' (1), the closing bracket (0), or an error (-1). */
static int separator(parser *p, unsigned char close) {
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ',') {
    p->pos++;
    return 1;
  }
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
    return 0;
  }
  return -1;
}

static effnet_status array(parser *p, json_value *v) {
  v->type = JSON_ARRAY;
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ']') {
    p->pos++;
    return EFFNET_OK;
  }
  json_value *last = NULL;
  for (;;) {
    json_value *c = new_node(p);
    effnet_status st = value(p, c);
    if (st != EFFNET_OK) return st;
    append(v, &last, c);
    int sep = separator(p, ']');
    if (sep == 0) return EFFNET_OK;
    if (sep < 0) return perr(p, p->pos, "expected ',' or ']' in array");
  }
}

static effnet_status member(parser *p, json_value *obj, json_value **last) {
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != '"') return perr(p, p->pos, "expected a string key");
  json_value *c = new_node(p);
  effnet_status st = string(p, &c->key, &c->key_len);
  if (st != EFFNET_OK) return st;
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != ':') return perr(p, p->pos, "expected ':' after key");
  p->pos++;
  st = value(p, c);
  if (st != EFFNET_OK) return st;
  append(obj, last, c);
  return EFFNET_OK;
}

static effnet_status object(parser *p, json_value *v) {
  v->type = JSON_OBJECT;
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
    return EFFNET_OK;
  }
  json_value *last = NULL;
  for (;;) {
    effnet_status st = member(p, v, &last);
    if (st != EFFNET_OK) return st;
    int sep = separator(p, '}');
    if (sep == 0) return EFFNET_OK;
    if (sep < 0) return perr(p, p->pos, "expected ',' or '}' in object");
  }
}

static effnet_status container(parser *p, json_value *v) {
  if (p->depth >= JSON_MAX_DEPTH) return perr(p, p->pos, "nesting deeper than 64 levels");
  p->depth++;
  effnet_status st = p->s[p->pos] == '[' ? array(p, v) : object(p, v);
  p->depth--;
  return st;
}

static effnet_status value(parser *p, json_value *v) {
  skip_ws(p);
  if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input");
  v->offset = p->base + p->pos;
  unsigned char c = p->s[p->pos];
  switch (c) {
    case '{': case '[': return container(p, v);
    case '"': v->type = JSON_STRING; return string(p, &v->str, &v->str_len);
    case 't': return literal(p, v, "true", JSON_TRUE);
    case 'f': return literal(p, v, "false", JSON_FALSE);
    case 'n': return literal(p, v, "null", JSON_NULL);
    default: break;
  }
  if (c == '-' || (c >= '0' && c <= '9')) return number(p, v);
  return perr(p, p->pos, "unexpected character");
}

static effnet_status document(parser *p) {
  effnet_status st = value(p, new_node(p));
  if (st != EFFNET_OK) return st;
  skip_ws(p);
  if (p->pos != p->len) return perr(p, p->pos, "unexpected data after the JSON value");
  return EFFNET_OK;
}

/* Bytes for the doc header, nodes and strings, or 0 on size_t overflow. */
static size_t doc_size(size_t nodes, size_t str_bytes) {
  size_t head = (sizeof(json_doc) + sizeof(json_value) - 1) / sizeof(json_value);
  if (nodes > SIZE_MAX / sizeof(json_value) - head) return 0;
  size_t n = (head + nodes) * sizeof(json_value);
  if (str_bytes > SIZE_MAX - n) return 0;
  return n + str_bytes;
}

effnet_status json_parse(json_doc **out, const char *text, size_t len, const json_options *opt,
                         const char *label, effnet_error *err) {
  if (out) *out = NULL;
  if (!label) label = "JSON";
  if (!out || (!text && len)) return en_fail(err, EFFNET_E_ARGUMENT, "%s: bad arguments", label);
  parser p = {.s = (const unsigned char *)text, .len = len, .label = label, .err = err};
  if (opt) p.base = opt->base_offset;
  effnet_status st = document(&p);
  if (st != EFFNET_OK) return st;
  size_t total = doc_size(p.nodes, p.str_bytes);
  if (total == 0 || (opt && opt->max_bytes && total > opt->max_bytes))
    return en_fail(err, EFFNET_E_LIMIT, "%s: JSON document of %zu values needs more than the "
                   "%zu bytes allowed", label, p.nodes, opt ? opt->max_bytes : SIZE_MAX);
  json_doc *doc = malloc(total);
  if (!doc) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory (%zu bytes) for JSON", label,
                           total);
  size_t head = (sizeof(json_doc) + sizeof(json_value) - 1) / sizeof(json_value);
  parser b = {.s = p.s, .len = len, .base = p.base, .build = 1, .label = label, .err = err};
  b.node_buf = (json_value *)(void *)doc + head;
  b.str_buf = (char *)(b.node_buf + p.nodes);
  st = document(&b);
  if (st != EFFNET_OK) { /* unreachable: both runs take the same path */
    free(doc);
    return st;
  }
  doc->root = b.node_buf;
  doc->bytes = total;
  *out = doc;
  return EFFNET_OK;
}

void json_free(json_doc *doc) { free(doc); }

const json_value *json_root(const json_doc *doc) { return doc ? doc->root : NULL; }

size_t json_doc_bytes(const json_doc *doc) { return doc ? doc->bytes : 0; }

const json_value *json_get(const json_value *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
  size_t n = strlen(key);
  for (const json_value *m = obj->child; m; m = m->next)
    if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
  return NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
  if (!arr || arr->type != JSON_ARRAY) return NULL;
  const json_value *e = arr->child;
  while (e && i--) e = e->next;
  return e;
}

/* Orders members by key bytes, then by position, so equal keys sit together in file order. */
static int key_order(const void *a, const void *b) {
  const json_value *x = *(const json_value *const *)a, *y = *(const json_value *const *)b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

effnet_status json_find_duplicate(const json_value *obj, const json_value **dup,
                                  effnet_error *err) {
  *dup = NULL;
  if (!obj || obj->type != JSON_OBJECT || obj->count < 2) return EFFNET_OK;
  const json_value **idx = malloc(obj->count * sizeof *idx);
  if (!idx) return en_fail(err, EFFNET_E_NOMEM, "out of memory checking JSON keys");
  size_t n = 0;
  for (const json_value *m = obj->child; m; m = m->next) idx[n++] = m;
  qsort(idx, n, sizeof *idx, key_order);
  for (size_t i = 1; i < n; i++) {
    const json_value *a = idx[i - 1], *b = idx[i];
    if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
        (!*dup || b->offset < (*dup)->offset))
      *dup = b;
  }
  free(idx);
  return EFFNET_OK;
}

const char *json_type_name(json_type type) {
  switch (type) {
    case JSON_NULL: return "null";
    case JSON_FALSE: case JSON_TRUE: return "boolean";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
  }
  return "unknown";
}
