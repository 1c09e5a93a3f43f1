/* ZIP reader: see zip.h. Field offsets are those of APPNOTE.TXT sections 4.3.7 (local file
 * header), 4.3.12 (central directory header), 4.3.14-4.3.16 (ZIP64 end of central directory
 * record and locator, end of central directory) and 4.5.3 (ZIP64 extended information). */
#include "io/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_SIZE 22
#define LOCATOR64_SIZE 20
#define EOCD64_SIZE 56
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535

typedef struct cd_info {
  uint64_t offset, size, count;
  size_t end; /* the central directory must end at or before this offset */
} cd_info;

static const char *show(const char *s, size_t n, char *buf, size_t size) {
  size_t k = n < size - 1 ? n : size - 1;
  for (size_t i = 0; i < k; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  buf[k] = '\0';
  return buf;
}

/* The end of central directory record is the last thing in the file, followed only by its
 * own comment, so scan backwards for a signature whose comment length reaches the end. */
static effnet_status find_eocd(const zip_archive *z, size_t *pos, const char *label,
                               effnet_error *err) {
  if (z->len < EOCD_SIZE) return en_fail(err, EFFNET_E_FORMAT, "%s: too short for a zip", label);
  size_t last = z->len - EOCD_SIZE;
  size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
  for (size_t p = last + 1; p-- > first;) {
    if (io_get_u32le(z->buf + p) == SIG_EOCD &&
        p + EOCD_SIZE + io_get_u16le(z->buf + p + 20) == z->len) {
      *pos = p;
      return EFFNET_OK;
    }
  }
  return en_fail(err, EFFNET_E_FORMAT,
                 "%s: no zip end-of-central-directory record (truncated or not a zip)", label);
}

static effnet_status read_eocd64(const zip_archive *z, size_t locator, cd_info *cd,
                                 const char *label, effnet_error *err) {
  const unsigned char *l = z->buf + locator;
  uint64_t off = io_get_u64le(l + 8);
  if (io_get_u32le(l + 4) != 0 || io_get_u32le(l + 16) > 1)
    return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: multi-disk zip archive", label);
  if (off > locator || locator - off < EOCD64_SIZE)
    return en_fail(err, EFFNET_E_FORMAT, "%s: ZIP64 end record offset %llu out of range", label,
                   (unsigned long long)off);
  const unsigned char *r = z->buf + off;
  if (io_get_u32le(r) != SIG_EOCD64)
    return en_fail(err, EFFNET_E_FORMAT, "%s: bad ZIP64 end record signature", label);
  if (io_get_u32le(r + 16) != 0 || io_get_u32le(r + 20) != 0 ||
      io_get_u64le(r + 24) != io_get_u64le(r + 32))
    return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: multi-disk zip archive", label);
  cd->count = io_get_u64le(r + 32);
  cd->size = io_get_u64le(r + 40);
  cd->offset = io_get_u64le(r + 48);
  cd->end = (size_t)off;
  return EFFNET_OK;
}

static effnet_status read_directory_info(const zip_archive *z, cd_info *cd, const char *label,
                                         effnet_error *err) {
  size_t pos = 0;
  effnet_status st = find_eocd(z, &pos, label, err);
  if (st != EFFNET_OK) return st;
  const unsigned char *e = z->buf + pos;
  if (pos >= LOCATOR64_SIZE && io_get_u32le(e - LOCATOR64_SIZE) == SIG_LOCATOR64) {
    st = read_eocd64(z, pos - LOCATOR64_SIZE, cd, label, err);
  } else {
    if (io_get_u16le(e + 4) != 0 || io_get_u16le(e + 6) != 0 ||
        io_get_u16le(e + 8) != io_get_u16le(e + 10))
      return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: multi-disk zip archive", label);
    cd->count = io_get_u16le(e + 10);
    cd->size = io_get_u32le(e + 12);
    cd->offset = io_get_u32le(e + 16);
    cd->end = pos;
  }
  if (st != EFFNET_OK) return st;
  if (cd->offset > cd->end || cd->size > cd->end - cd->offset)
    return en_fail(err, EFFNET_E_FORMAT,
                   "%s: central directory (offset %llu, %llu bytes) past the end of its %zu-byte "
                   "region", label, (unsigned long long)cd->offset, (unsigned long long)cd->size,
                   cd->end);
  if (cd->count > cd->size / CENTRAL_SIZE || cd->count > ZIP_MAX_ENTRIES)
    return en_fail(err, EFFNET_E_FORMAT, "%s: %llu entries cannot fit a %llu-byte directory",
                   label, (unsigned long long)cd->count, (unsigned long long)cd->size);
  return EFFNET_OK;
}

/* ZIP64 extended information: 8-byte values replace, in this order, the uncompressed size,
 * compressed size and local header offset that the 32-bit fields mark as 0xFFFFFFFF. */
static int apply_zip64_extra(zip_entry *en, const unsigned char *x, size_t n) {
  while (n >= 4) {
    unsigned id = io_get_u16le(x), size = io_get_u16le(x + 2);
    if (size > n - 4) return 0;
    if (id == 1) {
      uint64_t *fields[3] = {&en->usize, &en->csize, &en->local_offset};
      size_t used = 0;
      for (int i = 0; i < 3; i++) {
        if (*fields[i] != 0xFFFFFFFFu) continue;
        if (size - used < 8) return 0;
        *fields[i] = io_get_u64le(x + 4 + used);
        used += 8;
      }
      return 1;
    }
    x += 4 + size;
    n -= 4 + size;
  }
  return 1;
}

static effnet_status read_entry(const zip_archive *z, size_t *p, size_t end, zip_entry *en,
                                const char *label, effnet_error *err) {
  if (end - *p < CENTRAL_SIZE || io_get_u32le(z->buf + *p) != SIG_CENTRAL)
    return en_fail(err, EFFNET_E_FORMAT, "%s: bad central directory entry at byte %zu", label,
                   *p);
  const unsigned char *c = z->buf + *p;
  size_t n = io_get_u16le(c + 28), x = io_get_u16le(c + 30), k = io_get_u16le(c + 32);
  if (end - *p - CENTRAL_SIZE < n + x + k)
    return en_fail(err, EFFNET_E_FORMAT, "%s: central directory entry at byte %zu overruns "
                   "the directory", label, *p);
  *en = (zip_entry){.name = (const char *)c + CENTRAL_SIZE, .name_len = n,
                    .local_offset = io_get_u32le(c + 42), .csize = io_get_u32le(c + 20),
                    .usize = io_get_u32le(c + 24), .method = io_get_u16le(c + 10),
                    .flags = io_get_u16le(c + 8)};
  if (!apply_zip64_extra(en, c + CENTRAL_SIZE + n, x)) {
    char buf[80];
    return en_fail(err, EFFNET_E_FORMAT, "%s: entry '%s': malformed ZIP64 extra field", label,
                   show(en->name, n, buf, sizeof buf));
  }
  *p += CENTRAL_SIZE + n + x + k;
  return EFFNET_OK;
}

static int by_name(const void *a, const void *b) {
  const zip_entry *x = *(zip_entry *const *)a, *y = *(zip_entry *const *)b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static effnet_status sort_entries(zip_archive *z, const char *label, effnet_error *err) {
  if (z->count == 0) return EFFNET_OK;
  z->sorted = malloc(z->count * sizeof *z->sorted);
  if (!z->sorted) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", label);
  for (size_t i = 0; i < z->count; i++) z->sorted[i] = &z->entries[i];
  qsort(z->sorted, z->count, sizeof *z->sorted, by_name);
  for (size_t i = 1; i < z->count; i++) {
    if (by_name(&z->sorted[i - 1], &z->sorted[i]) == 0) {
      char buf[80];
      return en_fail(err, EFFNET_E_FORMAT, "%s: entry '%s' appears twice", label,
                     show(z->sorted[i]->name, z->sorted[i]->name_len, buf, sizeof buf));
    }
  }
  return EFFNET_OK;
}

effnet_status zip_open(zip_archive *z, const void *buf, size_t len, const char *label,
                       effnet_error *err) {
  memset(z, 0, sizeof *z);
  z->buf = buf;
  z->len = len;
  cd_info cd = {0};
  effnet_status st = read_directory_info(z, &cd, label, err);
  if (st != EFFNET_OK) return st;
  if (cd.count && !(z->entries = calloc((size_t)cd.count, sizeof *z->entries)))
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", label);
  size_t p = (size_t)cd.offset, end = (size_t)(cd.offset + cd.size);
  for (z->count = 0; z->count < cd.count && st == EFFNET_OK; z->count++)
    st = read_entry(z, &p, end, &z->entries[z->count], label, err);
  if (st == EFFNET_OK) st = sort_entries(z, label, err);
  if (st != EFFNET_OK) zip_close(z);
  return st;
}

void zip_close(zip_archive *z) {
  free(z->entries);
  free(z->sorted);
  z->entries = NULL;
  z->sorted = NULL;
  z->count = 0;
}

const zip_entry *zip_find(const zip_archive *z, const char *name, size_t name_len) {
  zip_entry key = {.name = name, .name_len = name_len};
  const zip_entry *kp = &key;
  if (z->count == 0) return NULL;
  zip_entry **hit = bsearch(&kp, z->sorted, z->count, sizeof *z->sorted, by_name);
  return hit ? *hit : NULL;
}

effnet_status zip_stored_data(const zip_archive *z, const zip_entry *e, const void **data,
                              const char *label, effnet_error *err) {
  char nm[80];
  show(e->name, e->name_len, nm, sizeof nm);
  if (e->flags & 1)
    return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: entry '%s' is encrypted", label, nm);
  if (e->method != 0)
    return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: entry '%s' is compressed (method %u); "
                   "torch.save writes uncompressed (STORED) entries", label, nm, e->method);
  if (e->csize != e->usize)
    return en_fail(err, EFFNET_E_FORMAT, "%s: stored entry '%s' has sizes %llu and %llu", label,
                   nm, (unsigned long long)e->csize, (unsigned long long)e->usize);
  uint64_t off = e->local_offset;
  if (off > z->len || z->len - off < LOCAL_SIZE || io_get_u32le(z->buf + off) != SIG_LOCAL)
    return en_fail(err, EFFNET_E_FORMAT, "%s: entry '%s': no local header at byte %llu", label,
                   nm, (unsigned long long)off);
  const unsigned char *l = z->buf + off;
  size_t n = io_get_u16le(l + 26), x = io_get_u16le(l + 28);
  if (n != e->name_len || z->len - off - LOCAL_SIZE < n ||
      memcmp(l + LOCAL_SIZE, e->name, n) != 0 || io_get_u16le(l + 8) != e->method)
    return en_fail(err, EFFNET_E_FORMAT, "%s: entry '%s': local header disagrees with the "
                   "central directory", label, nm);
  uint64_t begin = off + LOCAL_SIZE + n + x;
  if (begin > z->len || e->csize > z->len - begin)
    return en_fail(err, EFFNET_E_FORMAT, "%s: entry '%s' (%llu bytes at %llu) runs past the "
                   "end of the %zu-byte file", label, nm, (unsigned long long)e->csize,
                   (unsigned long long)begin, z->len);
  *data = z->buf + begin;
  return EFFNET_OK;
}
