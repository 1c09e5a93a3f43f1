/* .npy reader and writer. Format: numpy/lib/format.py (NEP 1): magic "\x93NUMPY", major and
 * minor version bytes, a little-endian header length (u16 in 1.0, u32 in 2.0 and 3.0), then a
 * Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces
 * and a final '\n', then the raw data.
 *
 * Status codes: a malformed or lying file is EFFNET_E_FORMAT; a well-formed array this reader
 * does not handle (other dtypes, Fortran order, > 8 dims, other versions) EFFNET_E_UNSUPPORTED;
 * a real file above NPY_MAX_ELEMENTS EFFNET_E_LIMIT. */
#include "io/npy.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ------------------------------------------------------------------ header dict */

typedef struct header {
  char descr[40]; /* kept (cut) for the message even when unsupported */
  int structured; /* descr was a list: a structured dtype */
  int fortran;
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  unsigned seen;  /* bit per key, to catch missing and repeated keys */
} header;

typedef struct cursor {
  const unsigned char *s;
  size_t len, pos;
  size_t base; /* file offset of s[0], for messages */
  const char *label;
  effnet_error *err;
} cursor;

static effnet_status hfail(const cursor *c, const char *what) {
  return en_fail(c->err, EFFNET_E_FORMAT, "%s: malformed .npy header at byte %zu: %s", c->label,
                 c->base + c->pos, what);
}

static void skip(cursor *c) {
  while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' ||
                             c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
    c->pos++;
}

/* Consume ch (after spaces) if it is next. */
static int eat(cursor *c, char ch) {
  skip(c);
  if (c->pos < c->len && c->s[c->pos] == (unsigned char)ch) {
    c->pos++;
    return 1;
  }
  return 0;
}

/* A quoted Python string without escapes; up to cap-1 bytes are copied to out. */
static effnet_status pystr(cursor *c, char *out, size_t cap) {
  skip(c);
  if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"'))
    return hfail(c, "expected a quoted string");
  unsigned char q = c->s[c->pos++];
  size_t n = 0;
  while (c->pos < c->len && c->s[c->pos] != q) {
    unsigned char ch = c->s[c->pos];
    if (ch == '\\' || ch < 0x20) return hfail(c, "escapes and control characters unsupported");
    if (n + 1 < cap) out[n++] = (char)ch;
    c->pos++;
  }
  if (c->pos >= c->len) return hfail(c, "unterminated string");
  c->pos++;
  out[n] = '\0';
  return EFFNET_OK;
}

static int word(cursor *c, const char *w) {
  size_t n = strlen(w);
  skip(c);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, w, n) != 0) return 0;
  c->pos += n;
  return 1;
}

/* A non-negative Python int, with the 'L' suffix Python 2 numpy wrote for longs. */
static effnet_status pyint(cursor *c, int64_t *out) {
  skip(c);
  size_t start = c->pos;
  int64_t v = 0;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
    int d = c->s[c->pos++] - '0';
    if (v > (INT64_MAX - d) / 10) return hfail(c, "dimension does not fit in 64 bits");
    v = v * 10 + d;
  }
  if (c->pos == start) return hfail(c, "expected a non-negative integer in 'shape'");
  if (c->pos < c->len && c->s[c->pos] == 'L') c->pos++;
  *out = v;
  return EFFNET_OK;
}

/* (), (5,), (2, 3), (2, 3,): a tuple; (5) is an int in Python and numpy rejects it. */
static effnet_status shape_tuple(cursor *c, header *h) {
  if (!eat(c, '(')) return hfail(c, "'shape' is not a tuple");
  int n = 0, comma = 0;
  while (!eat(c, ')')) {
    if (n > 0 && !comma) return hfail(c, "expected ',' or ')' in 'shape'");
    if (n == NPY_MAX_DIMS)
      return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: more than %d dimensions not supported",
                     c->label, NPY_MAX_DIMS);
    effnet_status st = pyint(c, &h->shape[n++]);
    if (st != EFFNET_OK) return st;
    comma = eat(c, ',');
  }
  if (n == 1 && !comma) return hfail(c, "'shape' (n) is an int, not a tuple: write (n,)");
  h->ndim = n;
  return EFFNET_OK;
}

/* Skips a nested list/tuple value (a structured dtype's descr) so the message can say what
 * it is instead of "malformed". */
static effnet_status skip_nested(cursor *c) {
  int depth = 0;
  do {
    if (c->pos >= c->len) return hfail(c, "unterminated list");
    unsigned char ch = c->s[c->pos++];
    if (ch == '[' || ch == '(') depth++;
    else if (ch == ']' || ch == ')') depth--;
  } while (depth > 0);
  return EFFNET_OK;
}

static effnet_status dict_value(cursor *c, header *h, const char *key) {
  static const char *const keys[] = {"descr", "fortran_order", "shape"};
  int k = 0;
  while (k < 3 && strcmp(key, keys[k]) != 0) k++;
  if (k == 3) return hfail(c, "unexpected key (need exactly descr, fortran_order, shape)");
  if (h->seen & (1u << k)) return hfail(c, "repeated key");
  h->seen |= 1u << k;
  if (k == 0) {
    skip(c);
    if (c->pos < c->len && c->s[c->pos] == '[') {
      h->structured = 1;
      return skip_nested(c);
    }
    return pystr(c, h->descr, sizeof h->descr);
  }
  if (k == 1) {
    if (word(c, "True")) h->fortran = 1;
    else if (!word(c, "False")) return hfail(c, "'fortran_order' is not True or False");
    return EFFNET_OK;
  }
  return shape_tuple(c, h);
}

static effnet_status parse_dict(cursor *c, header *h) {
  if (!eat(c, '{')) return hfail(c, "header is not a dict");
  while (!eat(c, '}')) {
    char key[32];
    effnet_status st = pystr(c, key, sizeof key);
    if (st == EFFNET_OK && !eat(c, ':')) st = hfail(c, "expected ':'");
    if (st == EFFNET_OK) st = dict_value(c, h, key);
    if (st != EFFNET_OK) return st;
    if (!eat(c, ',')) {
      if (eat(c, '}')) break;
      return hfail(c, "expected ',' or '}'");
    }
  }
  skip(c); /* numpy pads with spaces and ends with '\n' */
  if (c->pos != c->len) return hfail(c, "unexpected text after the dict");
  if (h->seen != 7) return hfail(c, "header lacks one of descr, fortran_order, shape");
  return EFFNET_OK;
}

/* ------------------------------------------------------------------ reading */

static void format_shape(const header *h, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < h->ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, d ? ", %" PRId64 : "%" PRId64, h->shape[d]);
  if (n < cap) snprintf(buf + n, cap - n, h->ndim == 1 ? ",)" : ")");
}

/* Version, header length and the header's bytes: c covers the dict text, *data_at the data. */
static effnet_status read_preamble(const unsigned char *b, size_t len, cursor *c,
                                   size_t *data_at) {
  if (len < 8 || memcmp(b, npy_magic, 6) != 0)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: not a .npy file (bad magic)", c->label);
  int major = b[6], minor = b[7];
  if ((major < 1 || major > 3) || minor != 0)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: .npy format version %d.%d not supported",
                   c->label, major, minor);
  size_t start = major == 1 ? 10 : 12;
  if (len < start)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: file ends inside the .npy preamble", c->label);
  size_t hlen = major == 1 ? io_get_u16le(b + 8) : io_get_u32le(b + 8);
  if (hlen > len - start)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: header length %zu exceeds the %zu bytes that "
                   "follow it", c->label, hlen, len - start);
  c->s = b + start;
  c->len = hlen;
  c->base = start;
  *data_at = start + hlen;
  return EFFNET_OK;
}

static effnet_status check_dtype(const cursor *c, const header *h, size_t *itemsize) {
  if (h->structured)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: structured dtype not supported: need "
                   "little-endian float32 ('<f4')", c->label);
  if (strcmp(h->descr, "<f4") == 0) *itemsize = 4;
  else if (strcmp(h->descr, "<f8") == 0) *itemsize = 8;
  else
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: dtype '%s' not supported: need "
                   "little-endian float32 ('<f4')", c->label, h->descr);
  if (h->fortran)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: fortran_order True not supported: need "
                   "C order", c->label);
  return EFFNET_OK;
}

/* The shape's byte size against the bytes really present, before any allocation. */
static effnet_status check_size(const cursor *c, const header *h, size_t itemsize,
                                size_t available, int64_t *numel) {
  char shape[200];
  format_shape(h, shape, sizeof shape);
  int64_t n = 1;
  for (int d = 0; d < h->ndim; d++) {
    if (h->shape[d] > 0 && n > INT64_MAX / h->shape[d])
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: shape %s overflows 64 bits", c->label, shape);
    n *= h->shape[d];
  }
  int huge = n > INT64_MAX / (int64_t)itemsize;
  if (huge || (uint64_t)n * itemsize > available)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: data truncated: shape %s of '%s' needs %s%"
                   PRIu64 " bytes, file has %zu", c->label, shape, h->descr, huge ? "over " : "",
                   huge ? (uint64_t)INT64_MAX : (uint64_t)n * itemsize, available);
  if (n > NPY_MAX_ELEMENTS)
    return en_fail(c->err, EFFNET_E_LIMIT, "%s: %" PRId64 " elements exceed the cap of %" PRId64,
                   c->label, n, NPY_MAX_ELEMENTS);
  *numel = n;
  return EFFNET_OK;
}

static void convert(float *dst, const unsigned char *src, size_t n, size_t itemsize) {
  if (itemsize == 4) {
    for (size_t i = 0; i < n; i++) dst[i] = io_f32_from_bits(io_get_u32le(src + 4 * i));
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t u = (uint64_t)io_get_u32le(src + 8 * i) | (uint64_t)io_get_u32le(src + 8 * i + 4) << 32;
    double d;
    memcpy(&d, &u, sizeof d);
    dst[i] = io_narrow_f64(d);
  }
}

effnet_status npy_parse(npy_array *out, const void *buf, size_t len, const char *label,
                        effnet_error *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!label) label = "npy";
  if (!out || (!buf && len)) return en_fail(err, EFFNET_E_ARGUMENT, "%s: bad arguments", label);
  const unsigned char *b = buf;
  cursor c = {.label = label, .err = err};
  header h = {{0}, 0, 0, 0, {0}, 0};
  size_t data_at = 0, itemsize = 0;
  int64_t numel = 0;
  effnet_status st = read_preamble(b, len, &c, &data_at);
  if (st == EFFNET_OK) st = parse_dict(&c, &h);
  if (st == EFFNET_OK) st = check_dtype(&c, &h, &itemsize);
  if (st == EFFNET_OK) st = check_size(&c, &h, itemsize, len - data_at, &numel);
  if (st != EFFNET_OK) return st;
  float *data = malloc((numel ? (size_t)numel : 1) * sizeof *data);
  if (!data) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory for %" PRId64 " floats",
                            label, numel);
  convert(data, b + data_at, (size_t)numel, itemsize);
  out->ndim = h.ndim;
  memcpy(out->shape, h.shape, sizeof h.shape);
  out->numel = numel;
  out->data = data;
  return EFFNET_OK;
}

effnet_status npy_read(npy_array *out, const char *path, effnet_error *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || !path) return en_fail(err, EFFNET_E_ARGUMENT, "npy_read: bad arguments");
  io_map m;
  effnet_status st = io_map_file(&m, path, err);
  if (st != EFFNET_OK) return st;
  st = npy_parse(out, m.data, m.len, path, err);
  io_unmap(&m);
  return st;
}

void npy_free(npy_array *a) {
  if (!a) return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------ writing */

/* Version 1.0 header, padded with spaces so the data starts at a multiple of 64 (what numpy
 * writes, so readers may map the data aligned). Returns the header length. */
static size_t make_header(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, cap, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int d = 0; d < ndim; d++)
    n += (size_t)snprintf(buf + n, cap - n, d ? ", %" PRId64 : "%" PRId64, shape[d]);
  n += (size_t)snprintf(buf + n, cap - n, ndim == 1 ? ",), }" : "), }");
  size_t total = (10 + n + 1 + 63) / 64 * 64; /* magic+version+u16, dict, '\n' */
  while (10 + n + 1 < total) buf[n++] = ' ';
  buf[n++] = '\n';
  return n;
}

effnet_status npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                        effnet_error *err) {
  if (!path || ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape))
    return en_fail(err, EFFNET_E_ARGUMENT, "npy_write: bad arguments");
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0 || (shape[d] > 0 && numel > INT64_MAX / shape[d]))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s: bad shape", path);
    numel *= shape[d];
  }
  if (numel > NPY_MAX_ELEMENTS) /* the reader would refuse the file */
    return en_fail(err, EFFNET_E_LIMIT, "%s: %" PRId64 " elements exceed the cap", path, numel);
  if (numel > 0 && !data) return en_fail(err, EFFNET_E_ARGUMENT, "%s: data is NULL", path);
  /* 8 dims of up to 19 digits plus the fixed text stay far below 512 bytes. */
  char hdr[512];
  size_t hlen = make_header(hdr, sizeof hdr, ndim, shape);
  unsigned char pre[10];
  memcpy(pre, npy_magic, 6);
  pre[6] = 1;
  pre[7] = 0;
  io_put_u16le(pre + 8, (unsigned)hlen);
  io_atomic a;
  effnet_status st = io_atomic_open(&a, path, err);
  if (st == EFFNET_OK) st = io_atomic_write(&a, pre, sizeof pre, err);
  if (st == EFFNET_OK) st = io_atomic_write(&a, hdr, hlen, err);
  if (st == EFFNET_OK) st = io_atomic_write_le(&a, data, (size_t)numel, sizeof(float), err);
  if (st == EFFNET_OK) st = io_atomic_commit(&a, err);
  return st;
}
