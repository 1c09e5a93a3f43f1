/* File plumbing shared by the readers and writers of src/io: whole-file read-only mapping
 * and the atomic-replace writer (temp file, fsync, rename, fsync of the directory). */
#ifndef EN_IOFILE_H
#define EN_IOFILE_H

#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "effnet.h"

typedef struct io_map {
  const void *data; /* NULL for an empty file */
  size_t len;
  int mapped;       /* 1: munmap on release; 0: malloc'ed copy (mmap failed) */
} io_map;

/* Map path read-only; falls back to reading it into memory when mmap is refused. Only
 * regular files are accepted. Errors are EFFNET_E_IO and name the path. */
effnet_status io_map_file(io_map *out, const char *path, effnet_error *err);
void io_unmap(io_map *m);

/* Atomic replacement of path: writes go to path.tmp.PID; io_atomic_commit makes them durable
 * and renames over path; io_atomic_abort removes the temp file. After any failure of
 * io_atomic_write or io_atomic_commit the temp file is already gone. */
typedef struct io_atomic {
  FILE *fp;
  char *tmp;
  const char *path;
} io_atomic;

effnet_status io_atomic_open(io_atomic *a, const char *path, effnet_error *err);
effnet_status io_atomic_write(io_atomic *a, const void *data, size_t n, effnet_error *err);
/* count elements of elem_size (1, 2, 4 or 8) bytes from host order to little-endian. */
effnet_status io_atomic_write_le(io_atomic *a, const void *data, size_t count, size_t elem_size,
                                 effnet_error *err);
effnet_status io_atomic_commit(io_atomic *a, effnet_error *err);
void io_atomic_abort(io_atomic *a);

/* Little-endian encoders for writers: byte order on disk never depends on the host. */
void io_put_u16le(unsigned char *p, unsigned v);
void io_put_u32le(unsigned char *p, uint32_t v);
void io_put_u64le(unsigned char *p, uint64_t v);
uint64_t io_get_u64le(const unsigned char *p);

/* Float conversions shared by the readers of float tensors (safetensors, .npy). */
static inline float io_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Out-of-range double -> float conversion is undefined in C; saturate to infinity as IEEE
 * rounding would. */
static inline float io_narrow_f64(double d) {
  if (d > FLT_MAX) return INFINITY;
  if (d < -FLT_MAX) return -INFINITY;
  return (float)d;
}
uint32_t io_get_u32le(const unsigned char *p);
unsigned io_get_u16le(const unsigned char *p);

#endif
