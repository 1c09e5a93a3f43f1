/* PyTorch checkpoint (.pth / .pt, torch.save) reader, safe on untrusted input.
 *
 * Two container formats:
 *  - zip (torch >= 1.6): <prefix>/data.pkl is the pickled object, each storage is the STORED
 *    entry <prefix>/data/<key>, <prefix>/byteorder (when present) says "little" or "big";
 *  - legacy (torch < 1.6, or _use_new_zipfile_serialization=False): pickles back to back
 *    (magic number, protocol version 1001, sys_info, the object, the list of storage keys),
 *    then per key a little-endian u64 element count and the raw elements.
 *
 * The object must be a state dict (dict / OrderedDict of name -> tensor), or a dict holding
 * one under "state_dict", "model", "model_state_dict" or "state_dict_ema" (the first of these,
 * in that order, that holds tensors). Values that are not tensors are skipped. The pickle is
 * never executed: only collections.OrderedDict, torch._utils._rebuild_tensor[_v2],
 * torch._utils._rebuild_parameter[_with_state], the torch.*Storage classes and a few inert
 * builtins (set, frozenset, _codecs.encode) may be named; any other global is refused.
 * Tensors must lie inside their storage; several may share one. A contiguous tensor's data
 * points into the file; a strided one (TF ports store permuted weights, e.g. HWIO convs) is
 * gathered into a C-order copy owned by the pth_file, within the input's size in total.
 * Big-endian files are refused. */
#ifndef EN_PTH_H
#define EN_PTH_H

#include <stddef.h>

#include "effnet.h"
#include "io/safetensors.h"

typedef struct pth_file pth_file;

/* Map and parse path. On failure *out = NULL and err names the file, and where it applies
 * the zip entry, pickle byte or tensor at fault. */
effnet_status pth_open(pth_file **out, const char *path, effnet_error *err);
/* Parse an in-memory image (not copied: buf must outlive the pth_file). label names it in
 * messages. Used by pth_open and by the fuzz target. */
effnet_status pth_parse(pth_file **out, const void *buf, size_t len, const char *label,
                        effnet_error *err);
void pth_close(pth_file *f); /* NULL is fine */

size_t pth_count(const pth_file *f);
/* Tensors in state-dict order, always in C order: data points into the file (not necessarily
 * aligned) at the tensor's first element, or at a copy for strided tensors (see
 * pth_tensor_is_copy). dtype_name is the safetensors spelling ("F32", "I64", ...). Valid until
 * pth_close. */
const st_tensor *pth_tensor_at(const pth_file *f, size_t i);
const st_tensor *pth_find(const pth_file *f, const char *name); /* NULL if absent */
/* Key of the top-level dict that held the state dict ("state_dict", ...), or "" when the
 * top-level object is the state dict itself. */
const char *pth_source_key(const pth_file *f);
/* "zip" or "legacy". */
const char *pth_format(const pth_file *f);
/* 1 if tensor i was strided in the file and its data is a C-order copy. */
int pth_tensor_is_copy(const pth_file *f, size_t i);

/* 1 if buf starts like a torch.save file: a zip local header, or a legacy file's first
 * pickle (PROTO, optional FRAME, then LONG1 holding torch's magic number). */
int pth_is_pth(const void *buf, size_t len);

#endif
