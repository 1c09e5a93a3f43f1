/* PyTorch checkpoint reader: see pth.h. The semantics mirror torch/serialization.py (torch
 * 1.13: _load for zip archives, _legacy_load for the old format) and torch/_utils.py
 * (_rebuild_tensor_v2, _rebuild_parameter), with torch's own load-time checks: storage
 * element counts must match the file, tensors must fit their storage. */
#include "io/pth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"
#include "io/pickle.h"
#include "io/zip.h"

/* Kinds of PK_EXT values this host creates; u.i is an index into the table each names. */
enum { PX_GLOBAL = 1, PX_STORAGE_TYPE, PX_STORAGE, PX_TENSOR, PX_INERT };

/* Allow-listed callables (PX_GLOBAL). */
enum {
  G_ORDERED_DICT, G_REBUILD_V1, G_REBUILD_V2, G_REBUILD_PARAM, G_REBUILD_PARAM_STATE, G_INERT
};

static const struct {
  const char *module, *name;
  int id;
} globals[] = {
  {"collections", "OrderedDict", G_ORDERED_DICT},
  {"torch._utils", "_rebuild_tensor", G_REBUILD_V1},
  {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2},
  {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM},
  {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE},
  /* values that may sit beside a state dict; they become inert placeholders */
  {"builtins", "set", G_INERT}, {"builtins", "frozenset", G_INERT},
  {"__builtin__", "set", G_INERT}, {"__builtin__", "frozenset", G_INERT},
  {"_codecs", "encode", G_INERT}, /* how protocol 2 spells a bytes object in Python 3 */
};
#define N_GLOBALS (sizeof globals / sizeof globals[0])

/* torch.<X>Storage (PX_STORAGE_TYPE). Complex and quantized storages are recognised, so the
 * data section of a legacy file can still be walked, but their tensors are refused. */
static const struct {
  const char *name;
  st_dtype dtype;
  const char *dtype_name;
  size_t itemsize;
} storages[] = {
  {"FloatStorage", ST_F32, "F32", 4},      {"DoubleStorage", ST_F64, "F64", 8},
  {"HalfStorage", ST_F16, "F16", 2},       {"BFloat16Storage", ST_BF16, "BF16", 2},
  {"LongStorage", ST_I64, "I64", 8},       {"IntStorage", ST_I32, "I32", 4},
  {"ShortStorage", ST_I16, "I16", 2},      {"CharStorage", ST_I8, "I8", 1},
  {"ByteStorage", ST_U8, "U8", 1},         {"BoolStorage", ST_BOOL, "BOOL", 1},
  {"ComplexFloatStorage", ST_OTHER, NULL, 8}, {"ComplexDoubleStorage", ST_OTHER, NULL, 16},
  {"QInt8Storage", ST_OTHER, NULL, 1},     {"QUInt8Storage", ST_OTHER, NULL, 1},
  {"QInt32Storage", ST_OTHER, NULL, 4},    {"QUInt4x2Storage", ST_OTHER, NULL, 1},
  {"QUInt2x4Storage", ST_OTHER, NULL, 1},
};
#define N_STORAGES (sizeof storages / sizeof storages[0])

/* The state dict may sit under one of these keys of a training checkpoint, in this order. */
static const char *const nested_keys[] = {"state_dict", "model", "model_state_dict",
                                          "state_dict_ema"};
#define N_NESTED (sizeof nested_keys / sizeof nested_keys[0])

/* Storage keys are decimal numbers in every torch version; tensor names are module paths.
 * Capping both keeps each lookup and copy cheap even when a hostile pickle reuses one long
 * memoised string for thousands of entries. */
#define PTH_MAX_KEY 128
#define PTH_MAX_NAME 1024

/* torch/serialization.py MAGIC_NUMBER 0x1950a86a20f9469cfc6c, as LONG1 stores it. */
static const unsigned char legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                               0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL 1001

/* One persistent id ('storage', type, key, location, numel[, view]). Legacy files may name a
 * view (view_key, offset, size) of the storage; zip files never do. */
typedef struct pth_ref {
  const char *key;
  size_t key_len;
  int type;
  int64_t numel;
  int has_view;
  int64_t view_offset, view_numel;
} pth_ref;

/* Problems found while rebuilding a tensor are reported only if the tensor is in the state
 * dict, where its name is known (optimizer state beside it may be anything). */
enum { P_NONE, P_RANK, P_NEG_SIZE, P_OVERFLOW, P_STRIDE_RANK, P_NEG_STRIDE, P_NEG_OFFSET };

typedef struct pth_rec {
  size_t ref;
  int64_t offset, numel;
  size_t ndim;
  int64_t shape[ST_MAX_DIMS];
  int64_t stride[ST_MAX_DIMS]; /* 0 where the size is 1: such strides are meaningless */
  int contiguous;              /* torch's is_contiguous() */
  int problem;
} pth_rec;

/* A legacy storage's raw bytes, located by walking the data section. */
typedef struct legacy_key {
  const char *key;
  size_t key_len;
  int type;
  const unsigned char *data;
  uint64_t count;
} legacy_key;

typedef struct parse_ctx {
  const char *label;
  effnet_error *err;
  pk_vm *vm;
  char pickle_label[384];
  pth_ref *refs;
  size_t nrefs, refs_cap;
  pth_rec *recs;
  size_t nrecs, recs_cap;
  int is_zip;
  zip_archive zip;
  const char *prefix; /* zip top folder, e.g. "archive" */
  size_t prefix_len;
  char *scratch; /* zip entry names being looked up */
  size_t scratch_cap;
  legacy_key *keys; /* sorted by key */
  size_t nkeys;
  size_t input_len; /* caps the strided copies and the tensor names, which real files keep
                       well below it */
  size_t copied;    /* bytes of strided copies so far */
} parse_ctx;

/* A strided tensor gets a C-order copy, since st_tensor (and st_to_f32) have no strides. */
typedef struct pth_entry {
  st_tensor t; /* first, so pth_tensor_at can hand out &entry->t */
  void *copy;
} pth_entry;

struct pth_file {
  io_map map; /* pth_open only */
  pth_entry *entries;
  const st_tensor **sorted;
  char *names;
  size_t count;
  const char *source_key;
  const char *format;
};

static const char *show(const char *s, size_t n, char *buf, size_t size) {
  pk_val v = {.tag = PK_STR, .len = n, .u.s = s};
  return pk_show(&v, buf, size);
}

static int key_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

/* ------------------------------------------------------------------ pickle host */

static effnet_status find_class(void *vctx, pk_vm *vm, const pk_val *module,
                                const pk_val *name, pk_val *out) {
  (void)vctx;
  for (size_t i = 0; i < N_GLOBALS; i++) {
    if (pk_str_is(module, globals[i].module) && pk_str_is(name, globals[i].name)) {
      *out = (pk_val){.tag = PK_EXT, .ext = PX_GLOBAL, .u.i = globals[i].id};
      return EFFNET_OK;
    }
  }
  for (size_t i = 0; i < N_STORAGES && pk_str_is(module, "torch"); i++) {
    if (pk_str_is(name, storages[i].name)) {
      *out = (pk_val){.tag = PK_EXT, .ext = PX_STORAGE_TYPE, .u.i = (int64_t)i};
      return EFFNET_OK;
    }
  }
  char m[80], n[80];
  return pk_fail(vm, EFFNET_E_UNSUPPORTED,
                 "global %s.%s is not allowed (only state dicts of tensors are read; nothing in "
                 "the file is executed)", pk_show(module, m, sizeof m), pk_show(name, n, sizeof n));
}

static int is_ext(const pk_val *v, uint32_t kind) { return v->tag == PK_EXT && v->ext == kind; }

static effnet_status grow_table(parse_ctx *c, void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return EFFNET_OK;
  size_t want = *cap ? 2 * *cap : 64;
  effnet_status st = pk_charge(c->vm, (want - *cap) * elem);
  if (st != EFFNET_OK) return st;
  void *p = realloc(*arr, want * elem);
  if (!p) return pk_fail(c->vm, EFFNET_E_NOMEM, "out of memory");
  *arr = p;
  *cap = want;
  return EFFNET_OK;
}

/* OrderedDict() from protocol 2+, or OrderedDict([[k, v], ...]) as Python 2 pickled it. */
static effnet_status make_dict(pk_vm *vm, const pk_obj *args, pk_val *out) {
  effnet_status st = pk_new(vm, PK_DICT, 0, out);
  if (st != EFFNET_OK || args->n == 0) return st;
  const pk_val *items = &args->items[0];
  if (args->n != 1 || (items->tag != PK_LIST && items->tag != PK_TUPLE))
    return pk_fail(vm, EFFNET_E_FORMAT, "OrderedDict arguments are not a list of pairs");
  for (size_t i = 0; i < items->u.o->n && st == EFFNET_OK; i++) {
    const pk_val *pair = &items->u.o->items[i];
    if ((pair->tag != PK_LIST && pair->tag != PK_TUPLE) || pair->u.o->n != 2)
      return pk_fail(vm, EFFNET_E_FORMAT, "OrderedDict item is not a pair");
    st = pk_push_item(vm, out->u.o, &pair->u.o->items[0]);
    if (st == EFFNET_OK) st = pk_push_item(vm, out->u.o, &pair->u.o->items[1]);
  }
  return st;
}

/* Shape, strides and contiguity of a tensor. torch's is_contiguous: dims of size 1 may have
 * any stride, and an empty tensor is contiguous. */
static void set_geometry(pth_rec *r, const pk_obj *size, const pk_obj *stride) {
  r->ndim = size->n;
  r->numel = 1;
  if (size->n > ST_MAX_DIMS) {
    r->problem = P_RANK;
    return;
  }
  if (stride->n != size->n) {
    r->problem = P_STRIDE_RANK;
    return;
  }
  for (size_t d = 0; d < size->n; d++) {
    int64_t s = size->items[d].u.i;
    r->shape[d] = s;
    r->stride[d] = s == 1 ? 0 : stride->items[d].u.i;
    if (s < 0) r->problem = P_NEG_SIZE;
    else if (r->stride[d] < 0) r->problem = P_NEG_STRIDE;
    else if (s && r->numel > INT64_MAX / s) r->problem = P_OVERFLOW;
    else r->numel *= s;
  }
  int64_t expect = 1;
  r->contiguous = 1;
  for (size_t d = size->n; d-- > 0 && r->numel && !r->problem;) {
    if (r->shape[d] == 1) continue;
    if (r->stride[d] != expect) r->contiguous = 0;
    expect *= r->shape[d];
  }
}

/* Only called on tuples of at most ST_MAX_DIMS items: a memoised huge tuple passed to many
 * rebuilds must not be scanned each time. */
static int is_int_tuple(const pk_val *v) {
  for (size_t i = 0; i < v->u.o->n; i++)
    if (v->u.o->items[i].tag != PK_INT) return 0;
  return 1;
}

/* _rebuild_tensor(storage, storage_offset, size, stride) and _rebuild_tensor_v2(storage,
 * storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
static effnet_status rebuild_tensor(parse_ctx *c, int id, const pk_obj *args, pk_val *out) {
  size_t n = args->n;
  if (id == G_REBUILD_V1 ? n != 4 : n != 6 && n != 7)
    return pk_fail(c->vm, EFFNET_E_FORMAT, "tensor rebuilt with %zu arguments", n);
  const pk_val *a = args->items;
  int small = a[2].tag == PK_TUPLE && a[3].tag == PK_TUPLE && a[2].u.o->n <= ST_MAX_DIMS &&
              a[3].u.o->n <= ST_MAX_DIMS;
  if (!is_ext(&a[0], PX_STORAGE) || a[1].tag != PK_INT || a[2].tag != PK_TUPLE ||
      a[3].tag != PK_TUPLE || (small && (!is_int_tuple(&a[2]) || !is_int_tuple(&a[3]))))
    return pk_fail(c->vm, EFFNET_E_FORMAT,
                   "tensor arguments are not (storage, offset, size tuple, stride tuple)");
  effnet_status st = grow_table(c, (void **)&c->recs, &c->recs_cap, c->nrecs, sizeof *c->recs);
  if (st != EFFNET_OK) return st;
  pth_rec *r = &c->recs[c->nrecs];
  memset(r, 0, sizeof *r);
  r->ref = (size_t)a[0].u.i;
  r->offset = a[1].u.i;
  set_geometry(r, a[2].u.o, a[3].u.o);
  if (!r->problem && r->offset < 0) r->problem = P_NEG_OFFSET;
  *out = (pk_val){.tag = PK_EXT, .ext = PX_TENSOR, .u.i = (int64_t)c->nrecs++};
  return EFFNET_OK;
}

/* _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the tensor itself. */
static effnet_status rebuild_parameter(parse_ctx *c, int id, const pk_obj *args, pk_val *out) {
  size_t want = id == G_REBUILD_PARAM ? 3 : 4;
  if (args->n != want || !is_ext(&args->items[0], PX_TENSOR))
    return pk_fail(c->vm, EFFNET_E_FORMAT, "parameter rebuilt without a tensor");
  *out = args->items[0];
  return EFFNET_OK;
}

static effnet_status host_call(void *vctx, pk_vm *vm, pk_call_kind kind, const pk_val *fn,
                               const pk_val *args, pk_val *out) {
  parse_ctx *c = vctx;
  if (!is_ext(fn, PX_GLOBAL)) return pk_fail(vm, EFFNET_E_FORMAT, "call of a non-callable");
  int id = (int)fn->u.i;
  if (id == G_ORDERED_DICT) return make_dict(vm, args->u.o, out);
  if (id == G_INERT) {
    *out = (pk_val){.tag = PK_EXT, .ext = PX_INERT};
    return EFFNET_OK;
  }
  if (kind != PK_CALL_REDUCE) return pk_fail(vm, EFFNET_E_FORMAT, "NEWOBJ on a function");
  if (id == G_REBUILD_V1 || id == G_REBUILD_V2) return rebuild_tensor(c, id, args->u.o, out);
  return rebuild_parameter(c, id, args->u.o, out);
}

/* Legacy view metadata: None, or (view_key, offset, size). */
static int read_view(pth_ref *r, const pk_val *v) {
  if (v->tag == PK_NONE) return 1;
  if (v->tag != PK_TUPLE || v->u.o->n != 3 || v->u.o->items[0].tag != PK_STR ||
      v->u.o->items[1].tag != PK_INT || v->u.o->items[2].tag != PK_INT)
    return 0;
  r->has_view = 1;
  r->view_offset = v->u.o->items[1].u.i;
  r->view_numel = v->u.o->items[2].u.i;
  return 1;
}

/* ('storage', storage_type, key, location, numel[, view_metadata]). */
static effnet_status persistent_load(void *vctx, pk_vm *vm, const pk_val *pid, pk_val *out) {
  parse_ctx *c = vctx;
  const pk_val *a = pid->tag == PK_TUPLE ? pid->u.o->items : NULL;
  size_t n = a ? pid->u.o->n : 0;
  pth_ref r = {0};
  if ((n != 5 && n != 6) || !pk_str_is(&a[0], "storage") || !is_ext(&a[1], PX_STORAGE_TYPE) ||
      a[2].tag != PK_STR || a[3].tag != PK_STR || a[4].tag != PK_INT || a[4].u.i < 0 ||
      (n == 6 && !read_view(&r, &a[5])))
    return pk_fail(vm, EFFNET_E_FORMAT, "persistent id is not a torch storage reference");
  if (a[2].len > PTH_MAX_KEY)
    return pk_fail(vm, EFFNET_E_LIMIT, "storage key longer than %d bytes", PTH_MAX_KEY);
  effnet_status st = grow_table(c, (void **)&c->refs, &c->refs_cap, c->nrefs, sizeof *c->refs);
  if (st != EFFNET_OK) return st;
  r.key = a[2].u.s;
  r.key_len = a[2].len;
  r.type = (int)a[1].u.i;
  r.numel = a[4].u.i;
  c->refs[c->nrefs] = r;
  *out = (pk_val){.tag = PK_EXT, .ext = PX_STORAGE, .u.i = (int64_t)c->nrefs++};
  return EFFNET_OK;
}

static effnet_status run_pickle(parse_ctx *c, const unsigned char *p, size_t n, const char *what,
                                size_t *consumed, pk_val *result) {
  snprintf(c->pickle_label, sizeof c->pickle_label, "%s: %s", c->label, what);
  return pk_run(c->vm, p, n, c->pickle_label, consumed, result);
}

/* ------------------------------------------------------------------ zip container */

static effnet_status zip_entry_data(parse_ctx *c, const char *suffix, const char *key,
                                    size_t key_len, const zip_entry **e, const void **data) {
  size_t sl = strlen(suffix), need = c->prefix_len + 1 + sl + key_len;
  if (need > c->scratch_cap) {
    char *p = realloc(c->scratch, need);
    if (!p) return en_fail(c->err, EFFNET_E_NOMEM, "%s: out of memory", c->label);
    c->scratch = p;
    c->scratch_cap = need;
  }
  memcpy(c->scratch, c->prefix, c->prefix_len);
  c->scratch[c->prefix_len] = '/';
  memcpy(c->scratch + c->prefix_len + 1, suffix, sl);
  if (key_len) memcpy(c->scratch + c->prefix_len + 1 + sl, key, key_len);
  *e = zip_find(&c->zip, c->scratch, need);
  *data = NULL;
  if (!*e) return EFFNET_OK;
  return zip_stored_data(&c->zip, *e, data, c->label, c->err);
}

static effnet_status check_byteorder(parse_ctx *c) {
  const zip_entry *e;
  const void *d;
  effnet_status st = zip_entry_data(c, "byteorder", NULL, 0, &e, &d);
  if (st != EFFNET_OK || !e) return st;
  if (e->usize == 6 && memcmp(d, "little", 6) == 0) return EFFNET_OK;
  if (e->usize == 3 && memcmp(d, "big", 3) == 0)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: big-endian checkpoint", c->label);
  return en_fail(c->err, EFFNET_E_FORMAT, "%s: byteorder entry is neither 'little' nor 'big'",
                 c->label);
}

/* torch's PyTorchStreamReader takes the archive's folder from its first entry's name. */
static effnet_status zip_prefix(parse_ctx *c) {
  const zip_entry *first = c->zip.count ? &c->zip.entries[0] : NULL;
  const char *slash = first ? memchr(first->name, '/', first->name_len) : NULL;
  if (!slash) return en_fail(c->err, EFFNET_E_FORMAT, "%s: zip archive without a top folder "
                             "(not written by torch.save)", c->label);
  c->prefix = first->name;
  c->prefix_len = (size_t)(slash - first->name);
  return EFFNET_OK;
}

static effnet_status load_zip(parse_ctx *c, const void *buf, size_t len, pk_val *obj) {
  c->is_zip = 1;
  effnet_status st = zip_open(&c->zip, buf, len, c->label, c->err);
  if (st == EFFNET_OK) st = zip_prefix(c);
  if (st == EFFNET_OK) st = check_byteorder(c);
  const zip_entry *e = NULL;
  const void *pkl = NULL;
  if (st == EFFNET_OK) st = zip_entry_data(c, "data.pkl", NULL, 0, &e, &pkl);
  if (st != EFFNET_OK) return st;
  char nm[80];
  if (!e) return en_fail(c->err, EFFNET_E_FORMAT, "%s: no %s/data.pkl in the archive", c->label,
                         show(c->prefix, c->prefix_len, nm, sizeof nm));
  size_t used;
  return run_pickle(c, pkl, (size_t)e->usize, "data.pkl", &used, obj);
}

/* ------------------------------------------------------------------ legacy container */

static effnet_status legacy_header(parse_ctx *c, const unsigned char *p, size_t len,
                                   size_t *pos) {
  pk_val v;
  size_t used;
  effnet_status st = run_pickle(c, p, len, "magic number", &used, &v);
  if (st != EFFNET_OK) return st;
  if (v.tag != PK_BIGINT || v.len != sizeof legacy_magic ||
      memcmp(v.u.s, legacy_magic, sizeof legacy_magic) != 0)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: wrong magic number", c->label);
  *pos = used;
  if ((st = run_pickle(c, p + *pos, len - *pos, "protocol version", &used, &v)) != EFFNET_OK)
    return st;
  if (v.tag != PK_INT || v.u.i != LEGACY_PROTOCOL)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: legacy protocol version is not %d",
                   c->label, LEGACY_PROTOCOL);
  *pos += used;
  return EFFNET_OK;
}

/* sys_info: {'protocol_version': 1001, 'little_endian': bool, 'type_sizes': {...}}. */
static effnet_status legacy_sys_info(parse_ctx *c, const pk_val *info) {
  if (info->tag != PK_DICT)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: sys_info is not a dict", c->label);
  for (size_t i = 0; i + 1 < info->u.o->n; i += 2) {
    const pk_val *v = &info->u.o->items[i + 1];
    if (pk_str_is(&info->u.o->items[i], "little_endian") && !(v->tag == PK_BOOL && v->u.i))
      return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: big-endian checkpoint", c->label);
  }
  return EFFNET_OK;
}

static int ref_ptr_cmp(const void *a, const void *b) {
  const pth_ref *x = *(const pth_ref *const *)a, *y = *(const pth_ref *const *)b;
  return key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* A storage's type, from any reference to its key (order: refs sorted by key). */
static const pth_ref *ref_by_key(const parse_ctx *c, const pth_ref *const *order,
                                 const pk_val *key) {
  pth_ref want = {.key = key->u.s, .key_len = key->len};
  const pth_ref *wp = &want;
  const pth_ref *const *hit = c->nrefs ? bsearch(&wp, order, c->nrefs, sizeof *order,
                                                 ref_ptr_cmp) : NULL;
  return hit ? *hit : NULL;
}

static effnet_status walk_key(parse_ctx *c, const pth_ref *const *order, const pk_val *key,
                              const unsigned char *p, size_t len, size_t *pos, legacy_key *out) {
  char nm[80];
  const pth_ref *r = key->tag == PK_STR ? ref_by_key(c, order, key) : NULL;
  if (!r)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: storage key '%s' is listed but never used",
                   c->label, pk_show(key, nm, sizeof nm));
  size_t item = storages[r->type].itemsize;
  if (len - *pos < 8)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: truncated before storage '%s'", c->label,
                   pk_show(key, nm, sizeof nm));
  uint64_t count = io_get_u64le(p + *pos);
  *pos += 8;
  if (count > (len - *pos) / item)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: storage '%s' declares %llu elements of %zu "
                   "bytes, only %zu bytes left", c->label, pk_show(key, nm, sizeof nm),
                   (unsigned long long)count, item, len - *pos);
  *out = (legacy_key){key->u.s, key->len, r->type, p + *pos, count};
  *pos += (size_t)count * item;
  return EFFNET_OK;
}

static int legacy_key_cmp(const void *a, const void *b) {
  const legacy_key *x = a, *y = b;
  return key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* After the key list come, in its order, each storage's u64 element count and elements. */
static effnet_status legacy_storages(parse_ctx *c, const pk_val *list, const unsigned char *p,
                                     size_t len, size_t pos) {
  if (list->tag != PK_LIST && list->tag != PK_TUPLE)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: storage key list is not a list", c->label);
  size_t n = list->u.o->n;
  const pth_ref **order = NULL;
  effnet_status st = pk_charge(c->vm, c->nrefs * sizeof *order + n * sizeof *c->keys);
  if (st != EFFNET_OK) return st;
  if ((c->nrefs && !(order = malloc(c->nrefs * sizeof *order))) ||
      (n && !(c->keys = malloc(n * sizeof *c->keys)))) {
    free((void *)order);
    return en_fail(c->err, EFFNET_E_NOMEM, "%s: out of memory", c->label);
  }
  for (size_t i = 0; i < c->nrefs; i++) order[i] = &c->refs[i];
  if (c->nrefs) qsort(order, c->nrefs, sizeof *order, ref_ptr_cmp);
  for (c->nkeys = 0; c->nkeys < n && st == EFFNET_OK; c->nkeys++)
    st = walk_key(c, order, &list->u.o->items[c->nkeys], p, len, &pos, &c->keys[c->nkeys]);
  free((void *)order);
  if (st != EFFNET_OK) return st;
  if (n) qsort(c->keys, n, sizeof *c->keys, legacy_key_cmp);
  for (size_t i = 1; i < n; i++) {
    if (legacy_key_cmp(&c->keys[i - 1], &c->keys[i]) == 0) {
      char nm[80];
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: storage key '%s' is listed twice", c->label,
                     show(c->keys[i].key, c->keys[i].key_len, nm, sizeof nm));
    }
  }
  return EFFNET_OK;
}

static effnet_status load_legacy(parse_ctx *c, const unsigned char *p, size_t len, pk_val *obj) {
  size_t pos = 0, used = 0;
  pk_val info, keys;
  effnet_status st = legacy_header(c, p, len, &pos);
  if (st == EFFNET_OK) st = run_pickle(c, p + pos, len - pos, "sys_info", &used, &info);
  if (st == EFFNET_OK) st = legacy_sys_info(c, &info);
  if (st != EFFNET_OK) return st;
  pos += used;
  char what[64];
  snprintf(what, sizeof what, "object pickle at byte %zu", pos);
  if ((st = run_pickle(c, p + pos, len - pos, what, &used, obj)) != EFFNET_OK) return st;
  pos += used;
  snprintf(what, sizeof what, "storage key pickle at byte %zu", pos);
  if ((st = run_pickle(c, p + pos, len - pos, what, &used, &keys)) != EFFNET_OK) return st;
  return legacy_storages(c, &keys, p, len, pos + used);
}

/* ------------------------------------------------------------------ storages of tensors */

typedef struct storage_span {
  const unsigned char *base;
  int64_t numel;
} storage_span;

static effnet_status zip_storage(parse_ctx *c, const pth_ref *r, const char *name,
                                 storage_span *s) {
  const zip_entry *e;
  const void *d;
  char nm[80], key[80];
  effnet_status st = zip_entry_data(c, "data/", r->key, r->key_len, &e, &d);
  if (st != EFFNET_OK) return st;
  show(r->key, r->key_len, key, sizeof key);
  if (!e)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': storage entry data/%s is missing",
                   c->label, show(name, strlen(name), nm, sizeof nm), key);
  size_t item = storages[r->type].itemsize;
  if ((uint64_t)r->numel > UINT64_MAX / item || e->usize != (uint64_t)r->numel * item)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': storage data/%s holds %llu bytes, "
                   "not %lld elements of %zu bytes", c->label,
                   show(name, strlen(name), nm, sizeof nm), key, (unsigned long long)e->usize,
                   (long long)r->numel, item);
  *s = (storage_span){d, r->numel};
  return EFFNET_OK;
}

static effnet_status legacy_storage(parse_ctx *c, const pth_ref *r, const char *name,
                                    storage_span *s) {
  legacy_key want = {.key = r->key, .key_len = r->key_len};
  const legacy_key *k = c->nkeys ? bsearch(&want, c->keys, c->nkeys, sizeof *c->keys,
                                           legacy_key_cmp) : NULL;
  char nm[80], key[80];
  show(name, strlen(name), nm, sizeof nm);
  show(r->key, r->key_len, key, sizeof key);
  if (!k)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': storage '%s' has no data in the "
                   "file", c->label, nm, key);
  if (storages[k->type].itemsize != storages[r->type].itemsize ||
      k->count != (uint64_t)r->numel)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': storage '%s' holds %llu "
                   "elements, its reference says %lld %s", c->label, nm, key,
                   (unsigned long long)k->count, (long long)r->numel, storages[r->type].name);
  *s = (storage_span){k->data, r->numel};
  return EFFNET_OK;
}

static effnet_status apply_view(parse_ctx *c, const pth_ref *r, const char *name,
                                storage_span *s) {
  if (!r->has_view) return EFFNET_OK;
  if (r->view_offset < 0 || r->view_numel < 0 || r->view_offset > s->numel ||
      r->view_numel > s->numel - r->view_offset) {
    char nm[80];
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s': storage view (%lld elements at "
                   "%lld) outside its %lld-element storage", c->label,
                   show(name, strlen(name), nm, sizeof nm), (long long)r->view_numel,
                   (long long)r->view_offset, (long long)s->numel);
  }
  s->base += (size_t)r->view_offset * storages[r->type].itemsize;
  s->numel = r->view_numel;
  return EFFNET_OK;
}

static effnet_status record_problem(parse_ctx *c, const pth_rec *r, const char *name) {
  static const char *const why[] = {
    [P_RANK] = "has more than 8 dimensions",
    [P_NEG_SIZE] = "has a negative size",
    [P_OVERFLOW] = "has more elements than fit in 64 bits",
    [P_STRIDE_RANK] = "has a stride tuple of a different rank than its size",
    [P_NEG_STRIDE] = "has a negative stride",
    [P_NEG_OFFSET] = "has a negative storage offset",
  };
  char nm[80];
  effnet_status st = r->problem == P_RANK ? EFFNET_E_LIMIT : EFFNET_E_FORMAT;
  return en_fail(c->err, st, "%s: tensor '%s' %s", c->label,
                 show(name, strlen(name), nm, sizeof nm), why[r->problem]);
}

/* Last element a strided tensor reaches, or -1 on overflow. Strides are >= 0 here. */
static int64_t strided_extent(const pth_rec *r) {
  int64_t last = r->offset;
  for (size_t d = 0; d < r->ndim; d++) {
    if (r->shape[d] > 1 && r->stride[d] > (INT64_MAX - last) / (r->shape[d] - 1)) return -1;
    last += (r->shape[d] - 1) * r->stride[d];
  }
  return last;
}

/* Gather a strided tensor into C order. TF-converted checkpoints (e.g. the efficientnet-lite
 * ports) store permuted weights this way; expanded tensors (stride 0) are strided too. All
 * copies together may not exceed the input's size, so memory stays linear in the file. */
static effnet_status copy_strided(parse_ctx *c, const pth_rec *r, const storage_span *s,
                                  size_t item, pth_entry *e) {
  st_tensor *t = &e->t;
  char nm[80];
  show(t->name, strlen(t->name), nm, sizeof nm);
  int64_t last = strided_extent(r);
  if (last < 0 || last >= s->numel)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s' (strided, from offset %lld) "
                   "overruns its %lld-element storage", c->label, nm, (long long)r->offset,
                   (long long)s->numel);
  if (t->nbytes > c->input_len - c->copied)
    return en_fail(c->err, EFFNET_E_LIMIT, "%s: tensor '%s': strided tensors would need more "
                   "memory than the file's size", c->label, nm);
  unsigned char *dst = malloc(t->nbytes);
  if (!dst) return en_fail(c->err, EFFNET_E_NOMEM, "%s: tensor '%s': out of memory", c->label, nm);
  c->copied += t->nbytes;
  int64_t idx[ST_MAX_DIMS] = {0}, src = r->offset;
  for (int64_t k = 0; k < r->numel; k++) {
    memcpy(dst + (size_t)k * item, s->base + (size_t)src * item, item);
    for (size_t d = r->ndim; d-- > 0;) { /* odometer step over the C-order index */
      src += r->stride[d];
      if (++idx[d] < r->shape[d]) break;
      src -= r->stride[d] * r->shape[d];
      idx[d] = 0;
    }
  }
  e->copy = dst;
  t->data = dst;
  return EFFNET_OK;
}

static effnet_status resolve_tensor(parse_ctx *c, const pth_rec *r, pth_entry *e) {
  st_tensor *t = &e->t;
  if (r->problem) return record_problem(c, r, t->name);
  const pth_ref *ref = &c->refs[r->ref];
  char nm[80];
  show(t->name, strlen(t->name), nm, sizeof nm);
  if (storages[ref->type].dtype == ST_OTHER)
    return en_fail(c->err, EFFNET_E_UNSUPPORTED, "%s: tensor '%s' has unsupported storage %s",
                   c->label, nm, storages[ref->type].name);
  storage_span s = {0};
  effnet_status st = c->is_zip ? zip_storage(c, ref, t->name, &s)
                               : legacy_storage(c, ref, t->name, &s);
  if (st == EFFNET_OK) st = apply_view(c, ref, t->name, &s);
  if (st != EFFNET_OK) return st;
  size_t item = storages[ref->type].itemsize;
  t->dtype = storages[ref->type].dtype;
  t->dtype_name = storages[ref->type].dtype_name;
  t->ndim = (int)r->ndim;
  memcpy(t->shape, r->shape, sizeof t->shape);
  t->numel = r->numel;
  t->nbytes = (size_t)r->numel * item;
  t->data = s.base;
  if (r->numel == 0) return EFFNET_OK;
  if (r->contiguous) {
    if (r->offset > s.numel || r->numel > s.numel - r->offset)
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s' (%lld elements at offset %lld) "
                     "overruns its %lld-element storage", c->label, nm, (long long)r->numel,
                     (long long)r->offset, (long long)s.numel);
    t->data = s.base + (size_t)r->offset * item;
    return EFFNET_OK;
  }
  return copy_strided(c, r, &s, item, e);
}

/* ------------------------------------------------------------------ the state dict */

static int is_tensor_dict(const pk_val *v) {
  if (v->tag != PK_DICT) return 0;
  for (size_t i = 1; i < v->u.o->n; i += 2)
    if (is_ext(&v->u.o->items[i], PX_TENSOR)) return 1;
  return 0;
}

/* Value of the last pair with this key, as Python's dict keeps it, or NULL. */
static const pk_val *dict_get(const pk_obj *d, const char *key) {
  const pk_val *hit = NULL;
  for (size_t i = 0; i + 1 < d->n; i += 2)
    if (pk_str_is(&d->items[i], key)) hit = &d->items[i + 1];
  return hit;
}

static effnet_status pick_state_dict(parse_ctx *c, const pk_val *obj, const pk_obj **sd,
                                     const char **source) {
  if (obj->tag != PK_DICT)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: the checkpoint holds no dict (a whole pickled "
                   "model?); save model.state_dict() instead", c->label);
  for (size_t k = 0; k < N_NESTED; k++) {
    const pk_val *v = dict_get(obj->u.o, nested_keys[k]);
    if (v && is_tensor_dict(v)) {
      *sd = v->u.o;
      *source = nested_keys[k];
      return EFFNET_OK;
    }
  }
  if (obj->u.o->n && !is_tensor_dict(obj))
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: no tensors in the top-level dict nor under "
                   "'state_dict', 'model', 'model_state_dict' or 'state_dict_ema'", c->label);
  *sd = obj->u.o;
  *source = "";
  return EFFNET_OK;
}

static int tensor_name_cmp(const void *a, const void *b) {
  return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

static effnet_status alloc_tables(parse_ctx *c, pth_file *f, const pk_obj *sd) {
  size_t names = 0;
  for (size_t i = 0; i + 1 < sd->n; i += 2) {
    const pk_val *key = &sd->items[i];
    if (key->tag != PK_STR || !is_ext(&sd->items[i + 1], PX_TENSOR)) continue;
    char nm[80];
    if (key->len > PTH_MAX_NAME)
      return en_fail(c->err, EFFNET_E_LIMIT, "%s: tensor name '%s' longer than %d bytes",
                     c->label, pk_show(key, nm, sizeof nm), PTH_MAX_NAME);
    f->count++;
    names += key->len + 1; /* no overflow: count and length are both bounded */
  }
  /* Each name of a real state dict is spelled out once in the pickle. A memoised name reused
   * by many entries (duplicates, refused later anyway) could otherwise cost far more memory
   * and sorting time than the input's size. */
  if (names > c->input_len)
    return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor names total more bytes than the file "
                   "(names repeat)", c->label);
  effnet_status st = pk_charge(c->vm, names + f->count * (sizeof(pth_entry) + sizeof(void *)));
  if (st != EFFNET_OK) return st;
  f->entries = calloc(f->count ? f->count : 1, sizeof *f->entries);
  f->sorted = calloc(f->count ? f->count : 1, sizeof *f->sorted);
  f->names = malloc(names ? names : 1);
  if (!f->entries || !f->sorted || !f->names)
    return en_fail(c->err, EFFNET_E_NOMEM, "%s: out of memory for %zu tensors", c->label,
                   f->count);
  return EFFNET_OK;
}

static effnet_status fill_tensors(parse_ctx *c, pth_file *f, const pk_obj *sd) {
  char *name = f->names;
  size_t k = 0;
  for (size_t i = 0; i + 1 < sd->n; i += 2) {
    const pk_val *key = &sd->items[i], *v = &sd->items[i + 1];
    if (key->tag != PK_STR || !is_ext(v, PX_TENSOR)) continue;
    char nm[80];
    if (memchr(key->u.s, '\0', key->len))
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor name '%s' contains a NUL byte",
                     c->label, pk_show(key, nm, sizeof nm));
    memcpy(name, key->u.s, key->len);
    name[key->len] = '\0';
    pth_entry *e = &f->entries[k];
    e->t.name = name;
    name += key->len + 1;
    effnet_status st = resolve_tensor(c, &c->recs[v->u.i], e);
    if (st != EFFNET_OK) return st;
    f->sorted[k++] = &e->t;
  }
  if (f->count) qsort(f->sorted, f->count, sizeof *f->sorted, tensor_name_cmp);
  for (size_t i = 1; i < f->count; i++) {
    if (strcmp(f->sorted[i - 1]->name, f->sorted[i]->name) == 0) {
      char nm[80];
      return en_fail(c->err, EFFNET_E_FORMAT, "%s: tensor '%s' appears twice", c->label,
                     show(f->sorted[i]->name, strlen(f->sorted[i]->name), nm, sizeof nm));
    }
  }
  return EFFNET_OK;
}

static effnet_status build_file(parse_ctx *c, const pk_val *obj, pth_file *f) {
  const pk_obj *sd = NULL;
  effnet_status st = pick_state_dict(c, obj, &sd, &f->source_key);
  if (st == EFFNET_OK) st = alloc_tables(c, f, sd);
  if (st == EFFNET_OK) st = fill_tensors(c, f, sd);
  return st;
}

/* ------------------------------------------------------------------ public */

int pth_is_pth(const void *buf, size_t len) {
  const unsigned char *b = buf;
  if (len >= 4 && memcmp(b, "PK\3\4", 4) == 0) return 1;
  if (len < 2 || b[0] != 0x80 || b[1] < 2 || b[1] > 5) return 0;
  size_t p = 2;
  if (len > p && b[p] == 0x95) p += 9; /* FRAME */
  return len >= p + 12 && b[p] == 0x8a && b[p + 1] == sizeof legacy_magic &&
         memcmp(b + p + 2, legacy_magic, sizeof legacy_magic) == 0;
}

static void ctx_free(parse_ctx *c) {
  pk_vm_free(c->vm);
  zip_close(&c->zip);
  free(c->refs);
  free(c->recs);
  free(c->scratch);
  free(c->keys);
}

effnet_status pth_parse(pth_file **out, const void *buf, size_t len, const char *label,
                        effnet_error *err) {
  *out = NULL;
  if (!label) label = "checkpoint";
  if (!buf || !pth_is_pth(buf, len))
    return en_fail(err, EFFNET_E_FORMAT, "%s: not a torch.save checkpoint (neither a zip "
                   "archive nor the legacy magic number)", label);
  parse_ctx c = {.label = label, .err = err, .input_len = len};
  pk_host host = {&c, find_class, host_call, persistent_load};
  pth_file *f = calloc(1, sizeof *f);
  effnet_status st = f ? pk_vm_create(&c.vm, &host, err)
                       : en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", label);
  int zip = memcmp(buf, "PK", 2) == 0;
  pk_val obj;
  if (st == EFFNET_OK) st = zip ? load_zip(&c, buf, len, &obj) : load_legacy(&c, buf, len, &obj);
  if (st == EFFNET_OK) st = build_file(&c, &obj, f);
  ctx_free(&c);
  if (st != EFFNET_OK) {
    pth_close(f);
    return st;
  }
  f->format = zip ? "zip" : "legacy";
  *out = f;
  return EFFNET_OK;
}

effnet_status pth_open(pth_file **out, const char *path, effnet_error *err) {
  *out = NULL;
  io_map map;
  effnet_status st = io_map_file(&map, path, err);
  if (st != EFFNET_OK) return st;
  if ((st = pth_parse(out, map.data, map.len, path, err)) != EFFNET_OK) {
    io_unmap(&map);
    return st;
  }
  (*out)->map = map;
  return EFFNET_OK;
}

void pth_close(pth_file *f) {
  if (!f) return;
  io_unmap(&f->map);
  for (size_t i = 0; f->entries && i < f->count; i++) free(f->entries[i].copy);
  free(f->entries);
  free(f->sorted);
  free(f->names);
  free(f);
}

size_t pth_count(const pth_file *f) { return f ? f->count : 0; }

const st_tensor *pth_tensor_at(const pth_file *f, size_t i) {
  return f && i < f->count ? &f->entries[i].t : NULL;
}

const st_tensor *pth_find(const pth_file *f, const char *name) {
  if (!f || !name || f->count == 0) return NULL;
  st_tensor key = {.name = name};
  const st_tensor *kp = &key;
  const st_tensor **hit = bsearch(&kp, f->sorted, f->count, sizeof *f->sorted, tensor_name_cmp);
  return hit ? *hit : NULL;
}

const char *pth_source_key(const pth_file *f) { return f ? f->source_key : NULL; }

const char *pth_format(const pth_file *f) { return f ? f->format : NULL; }

int pth_tensor_is_copy(const pth_file *f, size_t i) {
  return f && i < f->count && f->entries[i].copy != NULL;
}
