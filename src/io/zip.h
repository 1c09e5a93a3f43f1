/* Read-only view of a ZIP archive held in memory (APPNOTE.TXT 6.3.x), enough for torch.save
 * checkpoints: end of central directory with its ZIP64 records, central directory entries
 * (with ZIP64 extra fields) and local headers. Nothing is decompressed: callers take the
 * bytes of STORED entries in place. Every offset and size is checked against the buffer. */
#ifndef EN_ZIP_H
#define EN_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

typedef struct zip_entry {
  const char *name; /* points into the archive, not NUL-terminated */
  size_t name_len;
  uint64_t local_offset, csize, usize;
  unsigned method, flags;
} zip_entry;

typedef struct zip_archive {
  const unsigned char *buf;
  size_t len;
  zip_entry *entries; /* central directory order */
  zip_entry **sorted; /* by name, for zip_find */
  size_t count;
} zip_archive;

#define ZIP_MAX_ENTRIES ((size_t)1 << 24)

/* Index the archive at buf[0..len) (not copied). label names it in messages. Duplicate
 * names are refused, so a lookup cannot pick one of two different payloads. */
effnet_status zip_open(zip_archive *z, const void *buf, size_t len, const char *label,
                       effnet_error *err);
void zip_close(zip_archive *z);

/* Entry with exactly this name, or NULL. */
const zip_entry *zip_find(const zip_archive *z, const char *name, size_t name_len);

/* The bytes of a STORED, unencrypted entry, located through its local header. Compressed
 * entries give EFFNET_E_UNSUPPORTED. */
effnet_status zip_stored_data(const zip_archive *z, const zip_entry *e, const void **data,
                              const char *label, effnet_error *err);

#endif
