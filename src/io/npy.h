/* NumPy .npy reader/writer for float32 arrays (format versions 1.0, 2.0, 3.0).
 * The reader accepts little-endian '<f4' (and '<f8', converted), C order only; anything else
 * (big-endian, fortran_order True, other dtypes, object arrays, truncated data, a header that
 * lies about the shape) is rejected with a message naming the file. */
#ifndef EN_NPY_H
#define EN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

#define NPY_MAX_DIMS 8
/* Cap on elements accepted from an untrusted file (4 GiB of float32). */
#define NPY_MAX_ELEMENTS ((int64_t)1 << 30)

typedef struct npy_array {
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  int64_t numel;
  float *data; /* malloc'ed; release with npy_free */
} npy_array;

effnet_status npy_read(npy_array *out, const char *path, effnet_error *err);
/* In-memory variant (fuzz target). label names the source in messages. */
effnet_status npy_parse(npy_array *out, const void *buf, size_t len, const char *label,
                        effnet_error *err);
void npy_free(npy_array *a);

/* Write float32 C-order array atomically (temp file + fsync + rename). */
effnet_status npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                        effnet_error *err);

#endif
