/* results.csv: the search's durable record of finished runs (see search.h).
 *
 * The file is the only state a resumed search has, so reading is strict (a damaged file is
 * refused with its line number rather than half-used) and every write replaces the whole file
 * atomically. Rows are validated before they are written so the writer can never produce a
 * file the reader refuses. Numbers use the C locale: the CLI never calls setlocale. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/iofile.h"
#include "search.h"

#define CSV_FIELDS 12
#define CSV_MAX_ROWS 10000000u
#define CSV_MAX_BYTES (1u << 30)
/* Longest number field: a double printed with %.3f can take 313 characters. */
#define CSV_MAX_FIELD 400

static const char *const field_names[CSV_FIELDS] = {
    "mode", "alpha", "beta", "gamma", "width", "depth", "resolution",
    "params", "macs", "seed", "accuracy", "seconds"};

/* ------------------------------------------------------------------ validation */

static int mode_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '@' || c == '.' || c == '_' || c == '-';
}

static int in_range(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

/* Ranges shared by reader and writer; writes "reason" on failure. */
static int row_valid(const search_row *r, char *reason, size_t size) {
  size_t n = strnlen(r->mode, sizeof r->mode);
  if (n == 0 || n >= sizeof r->mode) return snprintf(reason, size, "mode is empty or too long"), 0;
  for (size_t i = 0; i < n; i++)
    if (!mode_char(r->mode[i]))
      return snprintf(reason, size, "mode has a character outside [A-Za-z0-9@._-]"), 0;
  const double abg[3] = {r->alpha, r->beta, r->gamma};
  for (int i = 0; i < 3; i++)
    if (!in_range(abg[i], 1, 10))
      return snprintf(reason, size, "%s %g is outside [1, 10]", field_names[1 + i], abg[i]), 0;
  if (!in_range(r->width, 0, 100) || r->width == 0)
    return snprintf(reason, size, "width %g is outside (0, 100]", r->width), 0;
  if (!in_range(r->depth, 0, 100) || r->depth == 0)
    return snprintf(reason, size, "depth %g is outside (0, 100]", r->depth), 0;
  if (r->resolution < 1 || r->resolution > 8192)
    return snprintf(reason, size, "resolution %d is outside [1, 8192]", r->resolution), 0;
  if (r->params < 0 || r->macs < 0)
    return snprintf(reason, size, "params and macs must be >= 0"), 0;
  if (!in_range(r->accuracy, 0, 1))
    return snprintf(reason, size, "accuracy %g is outside [0, 1]", r->accuracy), 0;
  if (!in_range(r->seconds, 0, INFINITY))
    return snprintf(reason, size, "seconds %g is not a finite number >= 0", r->seconds), 0;
  return 1;
}

int search_row_same_run(const search_row *a, const search_row *b) {
  const double eps = 1e-9;
  return strncmp(a->mode, b->mode, sizeof a->mode) == 0 && fabs(a->alpha - b->alpha) <= eps &&
         fabs(a->beta - b->beta) <= eps && fabs(a->gamma - b->gamma) <= eps &&
         fabs(a->width - b->width) <= eps && fabs(a->depth - b->depth) <= eps &&
         a->resolution == b->resolution && a->seed == b->seed;
}

/* ------------------------------------------------------------------ reading */

/* A field as a NUL-terminated copy; 0 if it does not fit. */
static int field_copy(const char *s, size_t n, char *buf) {
  if (n == 0 || n >= CSV_MAX_FIELD) return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return 1;
}

/* strtod accepts leading blanks, hex, "inf" and "nan"; the file holds only plain decimals. */
static int parse_double(const char *s, size_t n, double *out) {
  char buf[CSV_MAX_FIELD];
  if (!field_copy(s, n, buf) || strspn(buf, "0123456789.eE+-") != n) return 0;
  char *end;
  *out = strtod(buf, &end);
  return end == buf + n && isfinite(*out);
}

/* Digits only: strtoull would wrap "-1" and strtoll skips blanks. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
  char buf[CSV_MAX_FIELD];
  if (!field_copy(s, n, buf) || strspn(buf, "0123456789") != n) return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(buf, &end, 10);
  if (errno == ERANGE || end != buf + n || v > max) return 0;
  *out = v;
  return 1;
}

static int parse_fields(const char *const *f, const size_t *len, search_row *r, char *reason,
                        size_t size) {
  memset(r, 0, sizeof *r);
  if (len[0] >= sizeof r->mode) return snprintf(reason, size, "mode is too long"), 0;
  memcpy(r->mode, f[0], len[0]);
  double *dst[CSV_FIELDS] = {NULL, &r->alpha, &r->beta, &r->gamma, &r->width, &r->depth};
  dst[10] = &r->accuracy;
  dst[11] = &r->seconds;
  uint64_t u[CSV_FIELDS] = {0};
  for (int i = 1; i < CSV_FIELDS; i++) {
    int ok = dst[i] ? parse_double(f[i], len[i], dst[i])
                    : parse_u64(f[i], len[i], i == 9 ? UINT64_MAX : INT64_MAX, &u[i]);
    if (!ok)
      return snprintf(reason, size, "%s: '%.*s' is not a valid number", field_names[i],
                      len[i] > 40 ? 40 : (int)len[i], f[i]), 0;
  }
  if (u[6] < 1 || u[6] > 8192)
    return snprintf(reason, size, "resolution %.*s is outside [1, 8192]", (int)len[6], f[6]), 0;
  r->resolution = (int)u[6];
  r->params = (int64_t)u[7];
  r->macs = (int64_t)u[8];
  r->seed = u[9];
  return row_valid(r, reason, size);
}

/* One line without its '\n'; 0 with a reason if malformed. */
static int parse_line(const char *s, size_t n, search_row *r, char *reason, size_t size) {
  if (memchr(s, '\r', n))
    return snprintf(reason, size, "carriage return (CRLF line ends are not accepted)"), 0;
  if (memchr(s, '\0', n)) return snprintf(reason, size, "NUL byte"), 0;
  const char *f[CSV_FIELDS];
  size_t len[CSV_FIELDS];
  int k = 0;
  const char *p = s, *end = s + n;
  for (;;) {
    const char *c = memchr(p, ',', (size_t)(end - p));
    const char *stop = c ? c : end;
    if (k < CSV_FIELDS) {
      f[k] = p;
      len[k] = (size_t)(stop - p);
    }
    k++;
    if (!c) break;
    p = c + 1;
  }
  if (k != CSV_FIELDS)
    return snprintf(reason, size, "expected %d fields, found %d", CSV_FIELDS, k), 0;
  return parse_fields(f, len, r, reason, size);
}

static effnet_status parse_file(const char *path, const char *data, size_t len,
                                search_row **rows, size_t *count, int *torn,
                                effnet_error *err) {
  size_t hlen = strlen(SEARCH_CSV_HEADER);
  const char *nl = len ? memchr(data, '\n', len) : NULL;
  size_t first = nl ? (size_t)(nl - data) : len;
  if (first == hlen + 1 && data[hlen] == '\r' && !memcmp(data, SEARCH_CSV_HEADER, hlen))
    return en_fail(err, EFFNET_E_FORMAT, "%s:1: CRLF line ends are not accepted", path);
  if (first != hlen || memcmp(data, SEARCH_CSV_HEADER, hlen) != 0)
    return en_fail(err, EFFNET_E_FORMAT, "%s:1: expected the header '%s'", path,
                   SEARCH_CSV_HEADER);
  if (!nl) return EFFNET_OK;
  size_t lines = 0;
  for (const char *p = nl + 1; p < data + len && (p = memchr(p, '\n', (size_t)(data + len - p)));
       p++)
    lines++;
  if (lines > CSV_MAX_ROWS)
    return en_fail(err, EFFNET_E_LIMIT, "%s: more than %u rows", path, CSV_MAX_ROWS);
  search_row *out = malloc((lines ? lines : 1) * sizeof *out);
  if (!out) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory for %zu rows", path, lines);
  size_t n = 0, line = 2; /* the header is line 1 */
  for (const char *p = nl + 1; p < data + len; line++) {
    const char *e = memchr(p, '\n', (size_t)(data + len - p));
    if (!e) { /* a write cut short: never a finished row, since rows are written whole */
      if (torn) *torn = 1;
      break;
    }
    char reason[200];
    if (!parse_line(p, (size_t)(e - p), &out[n], reason, sizeof reason)) {
      free(out);
      return en_fail(err, EFFNET_E_FORMAT, "%s:%zu: %s", path, line, reason);
    }
    n++;
    p = e + 1;
  }
  *rows = out;
  *count = n;
  return EFFNET_OK;
}

effnet_status search_csv_read(const char *path, search_row **rows, size_t *count, int *torn,
                              effnet_error *err) {
  *rows = NULL;
  *count = 0;
  if (torn) *torn = 0;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT) return EFFNET_OK; /* a fresh search */
    return en_fail(err, EFFNET_E_IO, "%s: cannot stat: %s", path, strerror(errno));
  }
  if (S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > CSV_MAX_BYTES)
    return en_fail(err, EFFNET_E_LIMIT, "%s: larger than the 1 GiB limit", path);
  io_map m;
  effnet_status st = io_map_file(&m, path, err);
  if (st != EFFNET_OK) return st;
  if (m.len > CSV_MAX_BYTES) /* grew since the stat */
    st = en_fail(err, EFFNET_E_LIMIT, "%s: larger than the 1 GiB limit", path);
  else
    st = parse_file(path, m.data, m.len, rows, count, torn, err);
  io_unmap(&m);
  return st;
}

/* ------------------------------------------------------------------ writing */

/* The shortest %g that reads back to the same double: exact and still readable. */
static void format_double(char *buf, size_t size, double v) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}

static int format_row(const search_row *r, char *line, size_t size) {
  char d[5][32], acc[32];
  const double v[5] = {r->alpha, r->beta, r->gamma, r->width, r->depth};
  for (int i = 0; i < 5; i++) format_double(d[i], sizeof d[i], v[i]);
  format_double(acc, sizeof acc, r->accuracy);
  int n = snprintf(line, size, "%s,%s,%s,%s,%s,%s,%d,%lld,%lld,%llu,%s,%.3f\n", r->mode, d[0],
                   d[1], d[2], d[3], d[4], r->resolution, (long long)r->params,
                   (long long)r->macs, (unsigned long long)r->seed, acc, r->seconds);
  return n > 0 && (size_t)n < size ? n : -1;
}

effnet_status search_csv_append(const char *path, const search_row *rows, size_t count,
                                const search_row *row, effnet_error *err) {
  if (count >= CSV_MAX_ROWS)
    return en_fail(err, EFFNET_E_LIMIT, "%s: already holds the maximum of %u rows", path,
                   CSV_MAX_ROWS);
  char reason[200];
  for (size_t i = 0; i <= count; i++) {
    const search_row *r = i < count ? &rows[i] : row;
    if (!row_valid(r, reason, sizeof reason))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s: %s row %zu: %s", path,
                     i < count ? "existing" : "new", i + 1, reason);
  }
  io_atomic a;
  effnet_status st = io_atomic_open(&a, path, err);
  if (st != EFFNET_OK) return st;
  st = io_atomic_write(&a, SEARCH_CSV_HEADER "\n", strlen(SEARCH_CSV_HEADER) + 1, err);
  size_t total = strlen(SEARCH_CSV_HEADER) + 1;
  for (size_t i = 0; i <= count && st == EFFNET_OK; i++) {
    char line[1024];
    int n = format_row(i < count ? &rows[i] : row, line, sizeof line);
    total += n > 0 ? (size_t)n : 0;
    if (n < 0 || total > CSV_MAX_BYTES) {
      io_atomic_abort(&a);
      return en_fail(err, EFFNET_E_LIMIT, "%s: row %zu does not fit the file limits", path,
                     i + 1);
    }
    st = io_atomic_write(&a, line, (size_t)n, err);
  }
  /* io_atomic_write has already removed the temp file when it failed */
  return st == EFFNET_OK ? io_atomic_commit(&a, err) : st;
}
