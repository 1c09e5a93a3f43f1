/* safetensors reader and writer. The checks mirror the reference implementation
 * (huggingface/safetensors, safetensors/src/tensor.rs: validate()) and add what a C reader
 * needs on top: names without NUL bytes, a cap on the header's parsed size, and messages that
 * name the file and tensor. */
#include "io/safetensors.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"
#include "io/json.h"

/* The format's own limit on the JSON header (reference: MAX_HEADER_SIZE). */
#define ST_MAX_HEADER 100000000u
/* The parsed tree of a maximal header is ~10x its text; beyond this, refuse. */
#define ST_MAX_JSON_BYTES ((size_t)1 << 30)

typedef struct st_entry {
  st_tensor t; /* first, so st_tensor_at can hand out &entry->t */
  uint64_t begin, end;
  size_t index; /* position in the file, to keep sorting deterministic */
} st_entry;

struct st_file {
  io_map map; /* st_open only */
  json_doc *doc;
  const json_value *metadata;
  st_entry *entries;      /* file order */
  const st_entry **names; /* sorted by name, for st_find */
  size_t count;
};

/* Bits per element: F4 and F6 pack below a byte, so sizes are counted in bits as in the
 * reference, and a tensor's bit count must fill whole bytes. */
static const struct {
  const char *name;
  st_dtype dtype;
  unsigned bits;
} dtypes[] = {
  {"BOOL", ST_BOOL, 8},  {"U8", ST_U8, 8},     {"I8", ST_I8, 8},       {"I16", ST_I16, 16},
  {"U16", ST_U16, 16},   {"F16", ST_F16, 16},  {"BF16", ST_BF16, 16},  {"I32", ST_I32, 32},
  {"U32", ST_U32, 32},   {"F32", ST_F32, 32},  {"F64", ST_F64, 64},    {"I64", ST_I64, 64},
  {"U64", ST_U64, 64},   {"F8_E4M3", ST_OTHER, 8}, {"F8_E5M2", ST_OTHER, 8},
  {"F8_E8M0", ST_OTHER, 8}, {"F4", ST_OTHER, 4}, {"F6_E2M3", ST_OTHER, 6},
  {"F6_E3M2", ST_OTHER, 6}, {"C64", ST_OTHER, 64},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t st_dtype_size(st_dtype dtype) {
  if (dtype == ST_OTHER) return 0;
  for (size_t i = 0; i < N_DTYPES; i++)
    if (dtypes[i].dtype == dtype) return dtypes[i].bits / 8;
  return 0;
}

static const char *dtype_label(st_dtype dtype) {
  for (size_t i = 0; i < N_DTYPES; i++)
    if (dtypes[i].dtype == dtype && dtype != ST_OTHER) return dtypes[i].name;
  return "?";
}

/* A name made safe for a one-line message: control bytes become '?', long names are cut at
 * a UTF-8 boundary. */
static const char *show(const char *s, char buf[72]) {
  size_t n = 0;
  while (s[n] && n < 64) n++;
  int cut = s[n] != '\0';
  if (cut)
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  strcpy(buf + n, cut ? "..." : "");
  return buf;
}

/* ------------------------------------------------------------------ reading */

typedef struct ctx {
  const char *label;
  effnet_error *err;
  size_t data_len;
  const unsigned char *data;
} ctx;

static effnet_status tfail(const ctx *c, const char *name, const char *what) {
  char b[72];
  return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': %s", c->label, show(name, b), what);
}

static effnet_status parse_dtype(const ctx *c, const json_value *v, st_entry *e,
                                 unsigned *bits) {
  if (v->type != JSON_STRING) return tfail(c, e->t.name, "'dtype' is not a string");
  for (size_t i = 0; i < N_DTYPES; i++) {
    if (strcmp(v->str, dtypes[i].name) == 0 && v->str_len == strlen(dtypes[i].name)) {
      e->t.dtype = dtypes[i].dtype;
      e->t.dtype_name = v->str;
      *bits = dtypes[i].bits;
      return EFFNET_OK;
    }
  }
  char b1[72], b2[72];
  return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", c->label,
                 show(e->t.name, b1), show(v->str, b2));
}

static effnet_status parse_shape(const ctx *c, const json_value *v, st_entry *e) {
  if (v->type != JSON_ARRAY) return tfail(c, e->t.name, "'shape' is not an array");
  if (v->count > ST_MAX_DIMS) return tfail(c, e->t.name, "'shape' has more than 8 dimensions");
  int64_t numel = 1;
  int d = 0;
  for (const json_value *x = v->child; x; x = x->next, d++) {
    if (x->type != JSON_NUMBER || !x->is_int || x->integer < 0)
      return tfail(c, e->t.name, "'shape' holds something other than a non-negative integer");
    if (x->integer > 0 && numel > INT64_MAX / x->integer)
      return tfail(c, e->t.name, "'shape' overflows 64 bits");
    e->t.shape[d] = x->integer;
    numel *= x->integer;
  }
  e->t.ndim = d;
  e->t.numel = numel;
  return EFFNET_OK;
}

static effnet_status parse_offsets(const ctx *c, const json_value *v, st_entry *e,
                                   unsigned bits) {
  const json_value *b = json_at(v, 0), *x = json_at(v, 1);
  if (v->type != JSON_ARRAY || v->count != 2 || b->type != JSON_NUMBER || !b->is_int ||
      b->integer < 0 || x->type != JSON_NUMBER || !x->is_int || x->integer < 0)
    return tfail(c, e->t.name, "'data_offsets' is not a pair of non-negative integers");
  e->begin = (uint64_t)b->integer;
  e->end = (uint64_t)x->integer;
  char nb[72];
  const char *name = show(e->t.name, nb);
  if (e->begin > e->end)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64
                   ", %" PRIu64 ") run backwards", c->label, name, e->begin, e->end);
  if (e->end > c->data_len)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64
                   ", %" PRIu64 ") end beyond the %zu-byte data section (truncated file?)",
                   c->label, name, e->begin, e->end, c->data_len);
  /* numel < 2^63 and bits <= 64, so the product fits in 70 bits: split to stay in 64. */
  uint64_t n = (uint64_t)e->t.numel;
  if (n > UINT64_MAX / bits)
    return tfail(c, e->t.name, "byte size of the shape overflows 64 bits");
  uint64_t nbits = n * bits;
  if (nbits % 8 != 0)
    return tfail(c, e->t.name, "shape does not fill a whole number of bytes");
  if (e->end - e->begin != nbits / 8)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64
                   ", %" PRIu64 ") hold %" PRIu64 " bytes but shape and dtype %s need %" PRIu64,
                   c->label, name, e->begin, e->end, e->end - e->begin, e->t.dtype_name,
                   nbits / 8);
  e->t.nbytes = (size_t)(nbits / 8);
  e->t.data = c->data + e->begin;
  return EFFNET_OK;
}

static effnet_status parse_tensor(const ctx *c, const json_value *m, st_entry *e) {
  e->t.name = m->key;
  if (strlen(m->key) != m->key_len)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: a tensor name contains a NUL byte", c->label);
  if (m->type != JSON_OBJECT) return tfail(c, m->key, "entry is not an object");
  for (const json_value *k = m->child; k; k = k->next) {
    if (strcmp(k->key, "dtype") != 0 && strcmp(k->key, "shape") != 0 &&
        strcmp(k->key, "data_offsets") != 0) {
      char b1[72], b2[72];
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': unexpected key '%s'", c->label,
                     show(m->key, b1), show(k->key, b2));
    }
  }
  const json_value *dt = json_get(m, "dtype"), *sh = json_get(m, "shape"),
                   *of = json_get(m, "data_offsets");
  if (!dt || !sh || !of) return tfail(c, m->key, "needs 'dtype', 'shape' and 'data_offsets'");
  if (m->count != 3) return tfail(c, m->key, "repeats a key");
  unsigned bits = 0;
  effnet_status st = parse_dtype(c, dt, e, &bits);
  if (st == EFFNET_OK) st = parse_shape(c, sh, e);
  if (st == EFFNET_OK) st = parse_offsets(c, of, e, bits);
  return st;
}

static effnet_status parse_metadata(const ctx *c, const json_value *m) {
  if (m->type != JSON_OBJECT)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: __metadata__ is not an object", c->label);
  char b[72];
  for (const json_value *k = m->child; k; k = k->next) {
    if (k->type != JSON_STRING)
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: __metadata__ value of '%s' is a %s, not a "
                     "string", c->label, show(k->key, b), json_type_name(k->type));
    if (strlen(k->key) != k->key_len || strlen(k->str) != k->str_len)
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: __metadata__ holds a NUL byte", c->label);
  }
  const json_value *dup = NULL;
  effnet_status st = json_find_duplicate(m, &dup, c->err);
  if (st == EFFNET_OK && dup)
    st = en_fail(c->err, EFFNET_E_FORMAT, "%s: __metadata__ repeats key '%s'", c->label,
                 show(dup->key, b));
  return st;
}

static int by_offset(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const st_entry *const *)a)->t.name, (*(const st_entry *const *)b)->t.name);
}

/* The tensors must tile the data section exactly: a gap or overlap means the header lies. */
static effnet_status check_coverage(const ctx *c, st_file *f) {
  const st_entry **order = (const st_entry **)f->names; /* borrowed; re-sorted by name later */
  qsort(order, f->count, sizeof *order, by_offset);
  uint64_t covered = 0;
  char b1[72], b2[72];
  for (size_t i = 0; i < f->count; i++) {
    const st_entry *e = order[i];
    if (e->begin < covered)
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s' (data_offsets [%" PRIu64 ", %"
                     PRIu64 ")) overlaps tensor '%s'", c->label, show(e->t.name, b1), e->begin,
                     e->end, show(order[i - 1]->t.name, b2));
    if (e->begin > covered)
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: gap of %" PRIu64 " bytes in the data "
                     "section before tensor '%s' (offset %" PRIu64 ")", c->label,
                     e->begin - covered, show(e->t.name, b1), e->begin);
    covered = e->end;
  }
  if (covered != c->data_len)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: data section has %zu bytes but the tensors "
                   "cover only %" PRIu64, c->label, c->data_len, covered);
  return EFFNET_OK;
}

static effnet_status parse_entries(const ctx *c, st_file *f, const json_value *root) {
  size_t n = 0;
  for (const json_value *m = root->child; m; m = m->next) {
    if (strcmp(m->key, "__metadata__") == 0 && m->key_len == 12) {
      effnet_status st = parse_metadata(c, m);
      if (st != EFFNET_OK) return st;
      f->metadata = m;
      continue;
    }
    st_entry *e = &f->entries[n];
    e->index = n;
    effnet_status st = parse_tensor(c, m, e);
    if (st != EFFNET_OK) return st;
    f->names[n++] = e;
  }
  f->count = n;
  return EFFNET_OK;
}

static effnet_status parse_root(const ctx *c, st_file *f, const json_value *root) {
  if (root->type != JSON_OBJECT)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: header is not a JSON object", c->label);
  const json_value *dup = NULL;
  effnet_status st = json_find_duplicate(root, &dup, c->err);
  if (st != EFFNET_OK) return st;
  if (dup) {
    char b[72];
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: duplicate tensor name '%s'", c->label,
                   show(dup->key, b));
  }
  size_t n = root->count ? root->count : 1;
  f->entries = calloc(n, sizeof *f->entries);
  f->names = calloc(n, sizeof *f->names);
  if (!f->entries || !f->names)
    return en_fail(c->err, EFFNET_E_NOMEM, "%s: out of memory for %zu tensors", c->label, n);
  st = parse_entries(c, f, root);
  if (st == EFFNET_OK) st = check_coverage(c, f);
  if (st == EFFNET_OK) qsort(f->names, f->count, sizeof *f->names, by_name);
  return st;
}

/* Header length, checked against the format's cap and the real size before anything is
 * allocated. */
static effnet_status check_prefix(const unsigned char *b, size_t len, const char *label,
                                  effnet_error *err, size_t *hlen) {
  if (len < 8)
    return en_fail(err, EFFNET_E_FORMAT, "%s: file is %zu bytes, too short for the 8-byte "
                   "header length", label, len);
  uint64_t n = io_get_u64le(b);
  if (n > ST_MAX_HEADER)
    return en_fail(err, EFFNET_E_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of "
                   "%u bytes", label, n, ST_MAX_HEADER);
  if (n > len - 8)
    return en_fail(err, EFFNET_E_FORMAT, "%s: header length %" PRIu64 " exceeds the %zu bytes "
                   "that follow it", label, n, len - 8);
  if (n == 0 || b[8] != '{')
    return en_fail(err, EFFNET_E_FORMAT, "%s: header does not start with '{'", label);
  *hlen = (size_t)n;
  return EFFNET_OK;
}

effnet_status st_parse(st_file **out, const void *buf, size_t len, const char *label,
                       effnet_error *err) {
  if (out) *out = NULL;
  if (!label) label = "safetensors";
  if (!out || (!buf && len)) return en_fail(err, EFFNET_E_ARGUMENT, "%s: bad arguments", label);
  const unsigned char *b = buf;
  size_t hlen = 0;
  effnet_status st = check_prefix(b, len, label, err, &hlen);
  if (st != EFFNET_OK) return st;
  st_file *f = calloc(1, sizeof *f);
  if (!f) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", label);
  json_options opt = {.max_bytes = ST_MAX_JSON_BYTES, .base_offset = 8};
  st = json_parse(&f->doc, (const char *)b + 8, hlen, &opt, label, err);
  ctx c = {.label = label, .err = err, .data_len = len - 8 - hlen, .data = b + 8 + hlen};
  if (st == EFFNET_OK) st = parse_root(&c, f, json_root(f->doc));
  if (st != EFFNET_OK) {
    st_close(f);
    return st;
  }
  *out = f;
  return EFFNET_OK;
}

effnet_status st_open(st_file **out, const char *path, effnet_error *err) {
  if (out) *out = NULL;
  if (!out || !path) return en_fail(err, EFFNET_E_ARGUMENT, "st_open: bad arguments");
  io_map m;
  effnet_status st = io_map_file(&m, path, err);
  if (st != EFFNET_OK) return st;
  st = st_parse(out, m.data, m.len, path, err);
  if (st != EFFNET_OK) {
    io_unmap(&m);
    return st;
  }
  (*out)->map = m;
  return EFFNET_OK;
}

void st_close(st_file *f) {
  if (!f) return;
  json_free(f->doc);
  free(f->entries);
  free(f->names);
  io_unmap(&f->map);
  free(f);
}

size_t st_count(const st_file *f) { return f ? f->count : 0; }

const st_tensor *st_tensor_at(const st_file *f, size_t i) {
  return f && i < f->count ? &f->entries[i].t : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  if (!f || !name) return NULL;
  size_t lo = 0, hi = f->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, f->names[mid]->t.name);
    if (c == 0) return &f->names[mid]->t;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
  const json_value *v = f ? json_get(f->metadata, key) : NULL;
  return v ? v->str : NULL;
}

/* ------------------------------------------------------------------ conversion */

/* IEEE binary16 -> binary32 bit pattern, exact for every input (subnormals renormalised,
 * NaN payloads kept). */
static uint32_t half_bits(unsigned h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 31) return sign | 0x7F800000u | mant << 13;
  if (exp != 0) return sign | (exp + 112) << 23 | mant << 13;
  if (mant == 0) return sign;
  uint32_t e = 113;
  while (!(mant & 0x400)) {
    mant <<= 1;
    e--;
  }
  return sign | e << 23 | (mant & 0x3FF) << 13;
}

effnet_status st_to_f32(const st_tensor *t, float *dst, effnet_error *err) {
  if (!t || (t->numel > 0 && !dst))
    return en_fail(err, EFFNET_E_ARGUMENT, "st_to_f32: bad arguments");
  const unsigned char *p = t->data;
  size_t n = (size_t)t->numel;
  switch (t->dtype) {
    case ST_F32:
      for (size_t i = 0; i < n; i++) dst[i] = io_f32_from_bits(io_get_u32le(p + 4 * i));
      return EFFNET_OK;
    case ST_F16:
      for (size_t i = 0; i < n; i++) dst[i] = io_f32_from_bits(half_bits(io_get_u16le(p + 2 * i)));
      return EFFNET_OK;
    case ST_BF16: /* bfloat16 is the top half of a float32 */
      for (size_t i = 0; i < n; i++) dst[i] = io_f32_from_bits((uint32_t)io_get_u16le(p + 2 * i) << 16);
      return EFFNET_OK;
    case ST_F64:
      for (size_t i = 0; i < n; i++) {
        uint64_t u = io_get_u64le(p + 8 * i);
        double d;
        memcpy(&d, &u, sizeof d);
        dst[i] = io_narrow_f64(d);
      }
      return EFFNET_OK;
    default: {
      char b[72];
      return en_fail(err, EFFNET_E_SHAPE, "tensor '%s': dtype %s cannot be converted to float32",
                     show(t->name, b), t->dtype_name ? t->dtype_name : dtype_label(t->dtype));
    }
  }
}

/* ------------------------------------------------------------------ writing */

/* Text sink used twice: once with buf NULL to measure, once to fill. */
typedef struct sink {
  char *buf;
  size_t len;
} sink;

static void put(sink *s, const char *p, size_t n) {
  if (s->buf) memcpy(s->buf + s->len, p, n);
  s->len += n;
}

static void put_str(sink *s, const char *p) { put(s, p, strlen(p)); }

static void put_json_string(sink *s, const char *p) {
  put(s, "\"", 1);
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(s, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(s, esc, 6);
    } else {
      put(s, p, 1);
    }
  }
  put(s, "\"", 1);
}

static void put_u64(sink *s, uint64_t v) {
  char b[24];
  put(s, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, v));
}

static void emit_header(sink *s, const st_write_tensor *t, size_t count, const uint64_t *nbytes,
                        const char *const *kv, size_t pairs) {
  put_str(s, "{");
  if (pairs) {
    put_str(s, "\"__metadata__\":{");
    for (size_t i = 0; i < pairs; i++) {
      if (i) put_str(s, ",");
      put_json_string(s, kv[2 * i]);
      put_str(s, ":");
      put_json_string(s, kv[2 * i + 1]);
    }
    put_str(s, count ? "}," : "}");
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < count; i++) {
    if (i) put_str(s, ",");
    put_json_string(s, t[i].name);
    put_str(s, t[i].dtype == ST_F32 ? ":{\"dtype\":\"F32\",\"shape\":["
                                    : ":{\"dtype\":\"I64\",\"shape\":[");
    for (int d = 0; d < t[i].ndim; d++) {
      if (d) put_str(s, ",");
      put_u64(s, (uint64_t)t[i].shape[d]);
    }
    put_str(s, "],\"data_offsets\":[");
    put_u64(s, offset);
    put_str(s, ",");
    put_u64(s, offset += nbytes[i]);
    put_str(s, "]}");
  }
  put_str(s, "}");
}

static effnet_status check_write_tensor(const char *path, const st_write_tensor *t,
                                        uint64_t *nbytes, effnet_error *err) {
  if (!t->name || !json_utf8_valid(t->name, strlen(t->name)) ||
      strcmp(t->name, "__metadata__") == 0)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: a tensor name is NULL, not UTF-8 or reserved",
                   path);
  char b[72];
  if ((t->dtype != ST_F32 && t->dtype != ST_I64) || t->ndim < 0 || t->ndim > ST_MAX_DIMS)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: tensor '%s': dtype must be F32 or I64 and "
                   "rank 0..8", path, show(t->name, b));
  uint64_t numel = 1, size = st_dtype_size(t->dtype);
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] < 0 || (t->shape[d] > 0 && numel > INT64_MAX / (uint64_t)t->shape[d]))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s: tensor '%s': bad shape", path, show(t->name, b));
    numel *= (uint64_t)t->shape[d];
  }
  if (numel > SIZE_MAX / size || (numel > 0 && !t->data))
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: tensor '%s': data missing or too large", path,
                   show(t->name, b));
  *nbytes = numel * size;
  return EFFNET_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A repeated name in names[0..n) (any order), or NULL. names is reordered. */
static const char *find_repeat(const char **names, size_t n) {
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) return names[i];
  return NULL;
}

static effnet_status check_names(const char *path, const st_write_tensor *t, size_t count,
                                 const char *const *kv, size_t pairs, effnet_error *err) {
  for (size_t i = 0; i < 2 * pairs; i++)
    if (!kv[i] || !json_utf8_valid(kv[i], strlen(kv[i])))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s: metadata entry %zu is NULL or not UTF-8",
                     path, i / 2);
  size_t n = count > pairs ? count : pairs;
  const char **names = malloc((n ? n : 1) * sizeof *names);
  if (!names) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < count; i++) names[i] = t[i].name;
  const char *rep = find_repeat(names, count);
  const char *what = "tensor name";
  if (!rep) {
    for (size_t i = 0; i < pairs; i++) names[i] = kv[2 * i];
    rep = find_repeat(names, pairs);
    what = "metadata key";
  }
  char b[72];
  effnet_status st = rep ? en_fail(err, EFFNET_E_ARGUMENT, "%s: duplicate %s '%s'", path, what,
                                   show(rep, b))
                         : EFFNET_OK;
  free(names);
  return st;
}

static effnet_status write_file(const char *path, const char *header, size_t hlen, size_t padded,
                                const st_write_tensor *t, size_t count, const uint64_t *nbytes,
                                effnet_error *err) {
  io_atomic a;
  effnet_status st = io_atomic_open(&a, path, err);
  if (st != EFFNET_OK) return st;
  unsigned char len8[8];
  io_put_u64le(len8, padded);
  st = io_atomic_write(&a, len8, 8, err);
  if (st == EFFNET_OK) st = io_atomic_write(&a, header, hlen, err);
  for (size_t i = hlen; i < padded && st == EFFNET_OK; i++) st = io_atomic_write(&a, " ", 1, err);
  for (size_t i = 0; i < count && st == EFFNET_OK; i++) {
    size_t size = st_dtype_size(t[i].dtype);
    st = io_atomic_write_le(&a, t[i].data, (size_t)(nbytes[i] / size), size, err);
  }
  if (st == EFFNET_OK) return io_atomic_commit(&a, err);
  return st; /* io_atomic_write already removed the temp file */
}

effnet_status st_write(const char *path, const st_write_tensor *tensors, size_t count,
                       const char *const *metadata_kv, size_t metadata_pairs,
                       effnet_error *err) {
  if (!path || (count && !tensors) || (metadata_pairs && !metadata_kv))
    return en_fail(err, EFFNET_E_ARGUMENT, "st_write: bad arguments");
  uint64_t *nbytes = malloc((count ? count : 1) * sizeof *nbytes);
  if (!nbytes) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  effnet_status st = EFFNET_OK;
  for (size_t i = 0; i < count && st == EFFNET_OK; i++)
    st = check_write_tensor(path, &tensors[i], &nbytes[i], err);
  if (st == EFFNET_OK) st = check_names(path, tensors, count, metadata_kv, metadata_pairs, err);
  sink s = {0};
  if (st == EFFNET_OK) emit_header(&s, tensors, count, nbytes, metadata_kv, metadata_pairs);
  size_t padded = s.len + (8 - s.len % 8) % 8; /* 8 + padded is then a multiple of 8 */
  if (st == EFFNET_OK && padded > ST_MAX_HEADER)
    st = en_fail(err, EFFNET_E_LIMIT, "%s: header of %zu bytes exceeds the format's limit",
                 path, padded);
  if (st == EFFNET_OK) {
    s.buf = malloc(s.len);
    if (!s.buf) st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  }
  if (st == EFFNET_OK) {
    s.len = 0;
    emit_header(&s, tensors, count, nbytes, metadata_kv, metadata_pairs);
    st = write_file(path, s.buf, s.len, padded, tensors, count, nbytes, err);
  }
  free(s.buf);
  free(nbytes);
  return st;
}
