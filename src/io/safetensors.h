/* safetensors reader (mmap, fully validated) and atomic writer.
 * Format: u64 little-endian header length N, N bytes of JSON (object: name -> {dtype, shape,
 * data_offsets:[begin,end)}, optional "__metadata__": {str: str}), then the data section.
 * Validation follows the reference implementation: header <= 100,000,000 bytes, begins with
 * '{', offsets inside the data section, end - begin == numel * dtype size, tensors cover the
 * data section without gaps or overlap, no duplicate names, shapes non-negative, rank <= 8. */
#ifndef EN_SAFETENSORS_H
#define EN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype {
  ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32, ST_F64,
  ST_I64, ST_U64, ST_OTHER /* recognised but unsupported (F8_*, C64, ...): size unknown */
} st_dtype;

typedef struct st_tensor {
  const char *name;         /* NUL-terminated, owned by the st_file */
  st_dtype dtype;
  const char *dtype_name;   /* as written in the file, e.g. "F32" */
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  int64_t numel;
  const void *data;         /* points into the mapping; not necessarily aligned */
  size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Map and validate path. On failure *out = NULL and err names the file and the fault. */
effnet_status st_open(st_file **out, const char *path, effnet_error *err);
/* Parse an in-memory image (not copied: buf must outlive the st_file). label names it in
 * messages. Used by st_open and by the fuzz target. */
effnet_status st_parse(st_file **out, const void *buf, size_t len, const char *label,
                       effnet_error *err);
void st_close(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, size_t i);   /* file order */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_metadata(const st_file *f, const char *key);  /* NULL if absent */
size_t st_dtype_size(st_dtype dtype);                       /* 0 for ST_OTHER */

/* Convert a tensor of any float dtype (F32, F16, BF16, F64) to float32 into dst (numel
 * floats). Returns EFFNET_E_SHAPE (message names the tensor) for non-float dtypes. */
effnet_status st_to_f32(const st_tensor *t, float *dst, effnet_error *err);

/* Writer: tensors are F32 (data = float*) or I64 (data = int64_t*). The header is padded with
 * spaces so the data section starts at a multiple of 8. Written atomically: path.tmp.PID,
 * fwrite, fflush, fsync, rename, fsync of the directory; on failure the old file at path is
 * untouched and the temp file removed. */
typedef struct st_write_tensor {
  const char *name;
  st_dtype dtype; /* ST_F32 or ST_I64 */
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  const void *data;
} st_write_tensor;

effnet_status st_write(const char *path, const st_write_tensor *tensors, size_t count,
                       const char *const *metadata_kv, size_t metadata_pairs,
                       effnet_error *err);

#endif
