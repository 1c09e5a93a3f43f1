/* Training data (see data.h). Two sources share one sampler:
 *  - IDX (Fashion-MNIST): all pixels stay in memory as uint8 (47 MB for the training set);
 *    a sample is a small float resize of a 28x28 grey image, with no allocation, because the
 *    trainer draws thousands of them per second on one core;
 *  - image folders: only relative paths and labels stay in memory (ImageNet-sized folders are
 *    fine); a sample decodes its file again and resizes with Pillow's resampler, so the
 *    pixels match torchvision's transforms on a PIL image for the same crop.
 * Every random choice comes from en_rng_make(seed, EN_STREAM_AUGMENT, index): a sample is a
 * pure function of (dataset, index, res, aug, seed), whatever thread draws it. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "image/image.h"
#include "train/data.h"

#define PATH_CAP 4096
#define IDX_CLASSES 10
#define IDX_MAX_SIDE 4096
#define IDX_MAX_COUNT 100000000u
#define IDX_MAX_BYTES ((uint64_t)1 << 34)
#define FOLDER_MAX_CLASSES 100000
#define FOLDER_MAX_FILES ((size_t)1 << 26)
#define FOLDER_MAX_DEPTH 16
#define SAMPLE_MAX_RES 4096
#define SAMPLE_MAX_PAD 4096

typedef enum ds_kind { DS_IDX, DS_FOLDER } ds_kind;

struct en_dataset {
  ds_kind kind;
  int64_t count;
  int classes;
  char **class_names;
  int32_t *labels;
  /* IDX */
  uint8_t *pixels;
  int rows, cols;
  /* folder: file i is root + "/" + paths + path_off[i] */
  char *root;
  char *paths;
  size_t *path_off;
};

void en_dataset_free(en_dataset *d) {
  if (!d) return;
  if (d->class_names)
    for (int c = 0; c < d->classes; c++) free(d->class_names[c]);
  free(d->class_names);
  free(d->labels);
  free(d->pixels);
  free(d->root);
  free(d->paths);
  free(d->path_off);
  free(d);
}

int64_t en_dataset_size(const en_dataset *d) { return d ? d->count : 0; }

int en_dataset_classes(const en_dataset *d) { return d ? d->classes : 0; }

const char *en_dataset_class_name(const en_dataset *d, int cls) {
  return d && cls >= 0 && cls < d->classes ? d->class_names[cls] : NULL;
}

int en_dataset_label(const en_dataset *d, int64_t index) {
  return d && index >= 0 && index < d->count ? d->labels[index] : -1;
}

static effnet_status set_class_names(en_dataset *d, const char *const *names, int n,
                                     effnet_error *err) {
  d->class_names = calloc((size_t)n, sizeof *d->class_names);
  if (!d->class_names) return en_fail(err, EFFNET_E_NOMEM, "dataset: out of memory");
  d->classes = n;
  for (int c = 0; c < n; c++)
    if (!(d->class_names[c] = strdup(names[c])))
      return en_fail(err, EFFNET_E_NOMEM, "dataset: out of memory");
  return EFFNET_OK;
}

/* ================================================================== IDX files */

static const char *const fashion_names[IDX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const digit_names[IDX_CLASSES] = {"0", "1", "2", "3", "4",
                                                     "5", "6", "7", "8", "9"};

/* The files cannot tell MNIST from Fashion-MNIST; the folder name usually does. Fashion
 * names are the default because Fashion-MNIST is the dataset this project trains on. */
static int looks_like_digits(const char *dir) {
  char low[PATH_CAP];
  size_t n = strlen(dir);
  if (n >= sizeof low) return 0;
  for (size_t i = 0; i <= n; i++)
    low[i] = (char)(dir[i] >= 'A' && dir[i] <= 'Z' ? dir[i] + 32 : dir[i]);
  return strstr(low, "mnist") && !strstr(low, "fashion");
}

typedef struct idx_file {
  char path[PATH_CAP];
  gzFile gz;
} idx_file;

/* gzread reads plain files transparently, so one reader serves both spellings. */
static effnet_status idx_open(idx_file *f, const char *dir, const char *base,
                              effnet_error *err) {
  struct stat sb;
  f->gz = NULL;
  if (snprintf(f->path, sizeof f->path, "%s/%s.gz", dir, base) >= (int)sizeof f->path)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: path too long", dir);
  if (stat(f->path, &sb) != 0) {
    snprintf(f->path, sizeof f->path, "%s/%s", dir, base);
    if (stat(f->path, &sb) != 0)
      return en_fail(err, EFFNET_E_IO, "%s/%s(.gz): cannot open: %s", dir, base,
                     strerror(errno));
  }
  if (!S_ISREG(sb.st_mode)) return en_fail(err, EFFNET_E_IO, "%s: not a regular file", f->path);
  if (!(f->gz = gzopen(f->path, "rb")))
    return en_fail(err, EFFNET_E_IO, "%s: cannot open: %s", f->path, strerror(errno));
  gzbuffer(f->gz, 1u << 17);
  return EFFNET_OK;
}

static void idx_close(idx_file *f) {
  if (f->gz) gzclose(f->gz);
  f->gz = NULL;
}

/* zlib's message without the "path: " it puts in front. */
static const char *idx_zmsg(idx_file *f) {
  int code;
  const char *msg = gzerror(f->gz, &code);
  if (code == Z_OK || !msg) return "end of file";
  size_t n = strlen(f->path);
  return !strncmp(msg, f->path, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg;
}

/* Up to n bytes into buf; *got < n at the end of the data. A truncated gzip stream is a
 * short read (zlib reports it through gzerror), corrupt compressed data an error. */
static effnet_status idx_read(idx_file *f, void *buf, size_t n, size_t *got, effnet_error *err) {
  size_t total = 0;
  while (total < n) {
    size_t want = n - total;
    unsigned chunk = want > (1u << 30) ? 1u << 30 : (unsigned)want;
    int r = gzread(f->gz, (char *)buf + total, chunk);
    if (r < 0) return en_fail(err, EFFNET_E_FORMAT, "%s: %s", f->path, idx_zmsg(f));
    if (r == 0) break;
    total += (size_t)r;
  }
  *got = total;
  return EFFNET_OK;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static effnet_status idx_header(idx_file *f, uint32_t magic, int ndims, uint32_t *dims,
                                effnet_error *err) {
  unsigned char h[16];
  size_t need = 4 + 4 * (size_t)ndims, got = 0;
  effnet_status st = idx_read(f, h, need, &got, err);
  if (st != EFFNET_OK) return st;
  if (got < need)
    return en_fail(err, EFFNET_E_FORMAT, "%s: truncated IDX header (%zu of %zu bytes: %s)",
                   f->path, got, need, idx_zmsg(f));
  if (be32(h) != magic)
    return en_fail(err, EFFNET_E_FORMAT, "%s: magic 0x%08x, expected 0x%08x (IDX %s)", f->path,
                   be32(h), magic, ndims == 3 ? "images" : "labels");
  for (int i = 0; i < ndims; i++) dims[i] = be32(h + 4 + 4 * i);
  if (dims[0] == 0 || dims[0] > IDX_MAX_COUNT)
    return en_fail(err, EFFNET_E_FORMAT, "%s: %u items (expected 1..%u)", f->path, dims[0],
                   IDX_MAX_COUNT);
  return EFFNET_OK;
}

/* Reads up to total bytes into a buffer that grows as data arrives, so a header that lies
 * about its size cannot make us allocate more than the file holds (plus one step). */
static effnet_status idx_fill(idx_file *f, uint64_t total, uint8_t **out, size_t *have,
                              effnet_error *err) {
  size_t cap = total < ((size_t)1 << 24) ? (size_t)total : (size_t)1 << 24, got = 0;
  uint8_t *buf = malloc(cap);
  effnet_status st = buf ? EFFNET_OK : EFFNET_E_NOMEM;
  *have = 0;
  while (st == EFFNET_OK) {
    st = idx_read(f, buf + *have, cap - *have, &got, err);
    *have += got;
    if (st != EFFNET_OK || *have < cap || cap == total) break;
    size_t ncap = (uint64_t)cap * 2 > total ? (size_t)total : cap * 2;
    uint8_t *nb = realloc(buf, ncap);
    if (!nb) st = EFFNET_E_NOMEM;
    else buf = nb, cap = ncap;
  }
  if (st == EFFNET_E_NOMEM) en_fail(err, st, "%s: out of memory", f->path);
  if (st != EFFNET_OK) free(buf);
  *out = st == EFFNET_OK ? buf : NULL;
  return st;
}

/* Exactly total bytes: fewer is a truncated file, more means the header and the data
 * disagree. */
static effnet_status idx_body(idx_file *f, uint64_t total, uint8_t **out, effnet_error *err) {
  size_t have, got = 0;
  unsigned char extra;
  effnet_status st = idx_fill(f, total, out, &have, err);
  if (st == EFFNET_OK && have < total)
    st = en_fail(err, EFFNET_E_FORMAT, "%s: truncated: %zu of %llu data bytes (%s)", f->path,
                 have, (unsigned long long)total, idx_zmsg(f));
  if (st == EFFNET_OK) st = idx_read(f, &extra, 1, &got, err);
  if (st == EFFNET_OK && got)
    st = en_fail(err, EFFNET_E_FORMAT, "%s: trailing bytes after %llu data bytes", f->path,
                 (unsigned long long)total);
  if (st != EFFNET_OK) {
    free(*out);
    *out = NULL;
  }
  return st;
}

static effnet_status idx_images(en_dataset *d, const char *dir, const char *base,
                                effnet_error *err) {
  idx_file f;
  uint32_t dims[3] = {0, 0, 0};
  effnet_status st = idx_open(&f, dir, base, err);
  if (st == EFFNET_OK) st = idx_header(&f, 0x00000803u, 3, dims, err);
  if (st == EFFNET_OK && (dims[1] < 1 || dims[1] > IDX_MAX_SIDE || dims[2] < 1 ||
                          dims[2] > IDX_MAX_SIDE))
    st = en_fail(err, EFFNET_E_FORMAT, "%s: image size %ux%u (expected sides 1..%d)", f.path,
                 dims[2], dims[1], IDX_MAX_SIDE);
  uint64_t total = st == EFFNET_OK ? (uint64_t)dims[0] * dims[1] * dims[2] : 0;
  if (st == EFFNET_OK && total > IDX_MAX_BYTES)
    st = en_fail(err, EFFNET_E_LIMIT, "%s: %llu pixel bytes exceed the %llu cap", f.path,
                 (unsigned long long)total, (unsigned long long)IDX_MAX_BYTES);
  if (st == EFFNET_OK) st = idx_body(&f, total, &d->pixels, err);
  idx_close(&f);
  if (st != EFFNET_OK) return st;
  d->count = dims[0];
  d->rows = (int)dims[1];
  d->cols = (int)dims[2];
  return EFFNET_OK;
}

static effnet_status idx_labels(en_dataset *d, const char *dir, const char *base,
                                const char *images_base, effnet_error *err) {
  idx_file f;
  uint32_t n = 0;
  uint8_t *raw = NULL;
  effnet_status st = idx_open(&f, dir, base, err);
  if (st == EFFNET_OK) st = idx_header(&f, 0x00000801u, 1, &n, err);
  if (st == EFFNET_OK && n != (uint64_t)d->count)
    st = en_fail(err, EFFNET_E_FORMAT, "%s: %u labels but %s has %lld images", f.path, n,
                 images_base, (long long)d->count);
  if (st == EFFNET_OK) st = idx_body(&f, n, &raw, err);
  for (uint32_t i = 0; st == EFFNET_OK && i < n; i++)
    if (raw[i] >= IDX_CLASSES)
      st = en_fail(err, EFFNET_E_FORMAT, "%s: label %u of item %u is not below %d", f.path,
                   raw[i], i, IDX_CLASSES);
  if (st == EFFNET_OK && !(d->labels = malloc((size_t)n * sizeof *d->labels)))
    st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", f.path);
  for (uint32_t i = 0; st == EFFNET_OK && i < n; i++) d->labels[i] = raw[i];
  free(raw);
  idx_close(&f);
  return st;
}

effnet_status en_dataset_open_idx(en_dataset **out, const char *dir, int train,
                                  effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "en_dataset_open_idx: NULL output");
  *out = NULL;
  if (!dir) return en_fail(err, EFFNET_E_ARGUMENT, "en_dataset_open_idx: NULL directory");
  en_dataset *d = calloc(1, sizeof *d);
  if (!d) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", dir);
  d->kind = DS_IDX;
  const char *images = train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
  const char *labels = train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
  effnet_status st = idx_images(d, dir, images, err);
  if (st == EFFNET_OK) st = idx_labels(d, dir, labels, images, err);
  if (st == EFFNET_OK)
    st = set_class_names(d, looks_like_digits(dir) ? digit_names : fashion_names, IDX_CLASSES,
                         err);
  if (st != EFFNET_OK) {
    en_dataset_free(d);
    return st;
  }
  *out = d;
  return EFFNET_OK;
}

/* ================================================================== image folders */

/* Strings in one arena addressed by offset (the arena moves as it grows), each with a tag
 * (the class of a file). */
typedef struct name_list {
  char *arena;
  size_t len, cap;
  size_t *off;
  int32_t *tag;
  size_t n, cap_n;
} name_list;

static void names_free(name_list *l) {
  free(l->arena);
  free(l->off);
  free(l->tag);
  memset(l, 0, sizeof *l);
}

static const char *names_at(const name_list *l, size_t i) { return l->arena + l->off[i]; }

static int names_push(name_list *l, const char *s, int32_t tag) {
  size_t k = strlen(s) + 1;
  if (l->len + k > l->cap) {
    size_t cap = l->cap ? l->cap : 4096;
    while (cap < l->len + k) cap *= 2;
    char *a = realloc(l->arena, cap);
    if (!a) return -1;
    l->arena = a, l->cap = cap;
  }
  if (l->n == l->cap_n) {
    size_t cap = l->cap_n ? l->cap_n * 2 : 256;
    size_t *off = realloc(l->off, cap * sizeof *off);
    if (!off) return -1;
    l->off = off;
    int32_t *tags = realloc(l->tag, cap * sizeof *tags);
    if (!tags) return -1;
    l->tag = tags, l->cap_n = cap;
  }
  memcpy(l->arena + l->len, s, k);
  l->off[l->n] = l->len;
  l->tag[l->n++] = tag;
  l->len += k;
  return 0;
}

static int is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                 !strcasecmp(dot, ".png"));
}

static int by_strcmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Entries of dir except dot files, sorted by strcmp: *sorted points into out's arena. */
static effnet_status list_dir(const char *dir, name_list *out, const char ***sorted,
                              effnet_error *err) {
  memset(out, 0, sizeof *out);
  *sorted = NULL;
  DIR *dh = opendir(dir);
  if (!dh) return en_fail(err, EFFNET_E_IO, "%s: cannot read directory: %s", dir, strerror(errno));
  struct dirent *e;
  int oom = 0;
  while (!oom && (e = readdir(dh)))
    if (e->d_name[0] != '.') oom = names_push(out, e->d_name, 0) != 0;
  closedir(dh);
  if (!oom && out->n && !(*sorted = malloc(out->n * sizeof **sorted))) oom = 1;
  if (oom) {
    names_free(out);
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory listing the directory", dir);
  }
  for (size_t i = 0; i < out->n; i++) (*sorted)[i] = names_at(out, i);
  if (out->n) qsort(*sorted, out->n, sizeof **sorted, by_strcmp);
  return EFFNET_OK;
}

/* Everything one open_folder call gathers before the dataset exists. */
typedef struct folder_scan {
  char class_root[PATH_CAP]; /* where the class list comes from */
  char file_root[PATH_CAP];  /* where this split's files are */
  int layout;                /* train/ + val/ subfolders */
  double frac;               /* holdout share without them */
  name_list classes;
  name_list files; /* "class/.../file", tag = class index */
  size_t *class_first, *class_count;
  uint8_t *keep; /* in the requested split, and decodable */
} folder_scan;

static void scan_free(folder_scan *s) {
  names_free(&s->classes);
  names_free(&s->files);
  free(s->class_first);
  free(s->class_count);
  free(s->keep);
}

static effnet_status join(char *buf, const char *a, const char *b, effnet_error *err) {
  if (snprintf(buf, PATH_CAP, "%s/%s", a, b) >= PATH_CAP)
    return en_fail(err, EFFNET_E_LIMIT, "%s/%s: path too long", a, b);
  return EFFNET_OK;
}

static effnet_status scan_layout(folder_scan *s, const char *dir, int split, effnet_error *err) {
  char train[PATH_CAP], val[PATH_CAP], validation[PATH_CAP];
  effnet_status st = join(train, dir, "train", err);
  if (st == EFFNET_OK) st = join(val, dir, "val", err);
  if (st == EFFNET_OK) st = join(validation, dir, "validation", err);
  if (st != EFFNET_OK) return st;
  const char *v = is_dir(val) ? val : is_dir(validation) ? validation : NULL;
  s->layout = is_dir(train) && v;
  snprintf(s->class_root, PATH_CAP, "%s", s->layout ? train : dir);
  snprintf(s->file_root, PATH_CAP, "%s", !s->layout ? dir : split ? train : v);
  return EFFNET_OK;
}

static effnet_status scan_classes(folder_scan *s, effnet_error *err) {
  name_list all;
  const char **sorted;
  char path[PATH_CAP];
  effnet_status st = list_dir(s->class_root, &all, &sorted, err);
  for (size_t i = 0; st == EFFNET_OK && i < all.n; i++) {
    st = join(path, s->class_root, sorted[i], err);
    if (st != EFFNET_OK || !is_dir(path)) continue;
    if (s->classes.n == FOLDER_MAX_CLASSES)
      st = en_fail(err, EFFNET_E_LIMIT, "%s: more than %d class folders", s->class_root,
                   FOLDER_MAX_CLASSES);
    else if (names_push(&s->classes, sorted[i], 0))
      st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", s->class_root);
  }
  free(sorted);
  names_free(&all);
  if (st == EFFNET_OK && s->classes.n == 0)
    st = en_fail(err, EFFNET_E_FORMAT, "%s: no class subfolders", s->class_root);
  return st;
}

static int class_index(const folder_scan *s, const char *name) {
  for (size_t c = 0; c < s->classes.n; c++)
    if (!strcmp(names_at(&s->classes, c), name)) return (int)c;
  return -1;
}

/* A validation folder with a class the training folder lacks would get no label. */
static effnet_status check_val_classes(const folder_scan *s, effnet_error *err) {
  name_list all;
  const char **sorted;
  char path[PATH_CAP];
  effnet_status st = list_dir(s->file_root, &all, &sorted, err);
  for (size_t i = 0; st == EFFNET_OK && i < all.n; i++) {
    st = join(path, s->file_root, sorted[i], err);
    if (st == EFFNET_OK && is_dir(path) && class_index(s, sorted[i]) < 0)
      st = en_fail(err, EFFNET_E_FORMAT, "%s: class folder '%s' is not in %s", s->file_root,
                   sorted[i], s->class_root);
  }
  free(sorted);
  names_free(&all);
  return st;
}

/* Image files under file_root/rel, recursively, in sorted order (torchvision's ImageFolder
 * walks subfolders too). The depth cap ends symlink loops. */
static effnet_status walk_class(folder_scan *s, const char *rel, int label, int depth,
                                effnet_error *err) {
  char dir[PATH_CAP], child[PATH_CAP], full[PATH_CAP];
  effnet_status st = join(dir, s->file_root, rel, err);
  name_list all;
  const char **sorted;
  if (st == EFFNET_OK) st = list_dir(dir, &all, &sorted, err);
  if (st != EFFNET_OK) return st;
  for (size_t i = 0; st == EFFNET_OK && i < all.n; i++) {
    struct stat sb;
    st = join(child, rel, sorted[i], err);
    if (st == EFFNET_OK) st = join(full, s->file_root, child, err);
    if (st != EFFNET_OK || stat(full, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode) && depth < FOLDER_MAX_DEPTH)
      st = walk_class(s, child, label, depth + 1, err);
    else if (S_ISREG(sb.st_mode) && is_image_name(sorted[i])) {
      if (s->files.n == FOLDER_MAX_FILES)
        st = en_fail(err, EFFNET_E_LIMIT, "%s: more than %zu images", s->file_root,
                     FOLDER_MAX_FILES);
      else if (names_push(&s->files, child, label))
        st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", s->file_root);
    }
  }
  free(sorted);
  names_free(&all);
  return st;
}

static effnet_status scan_files(folder_scan *s, effnet_error *err) {
  size_t nc = s->classes.n;
  s->class_first = calloc(nc, sizeof *s->class_first);
  s->class_count = calloc(nc, sizeof *s->class_count);
  if (!s->class_first || !s->class_count)
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", s->file_root);
  char dir[PATH_CAP];
  for (size_t c = 0; c < nc; c++) {
    const char *name = names_at(&s->classes, c);
    s->class_first[c] = s->files.n;
    effnet_status st = join(dir, s->file_root, name, err);
    if (st == EFFNET_OK && is_dir(dir)) st = walk_class(s, name, (int)c, 0, err);
    if (st != EFFNET_OK) return st;
    s->class_count[c] = s->files.n - s->class_first[c];
  }
  return EFFNET_OK;
}

/* FNV-1a of the path inside its class folder, then SplitMix64 to spread the bits. Renaming
 * a class folder does not move files between the splits. */
static uint64_t holdout_hash(const char *rel) {
  const char *p = strchr(rel, '/');
  uint64_t h = 0xcbf29ce484222325ull;
  for (p = p ? p + 1 : rel; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return en_mix64(h);
}

typedef struct hashed {
  uint64_t hash;
  size_t index;
} hashed;

static int by_hash(const void *a, const void *b) {
  const hashed *x = a, *y = b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Validation part of a class of n files: the round(n * frac) files of smallest hash, at
 * least one and at most n - 1 when frac > 0 and n >= 2, so that every class is in both parts
 * whenever it can be. Ranking (not thresholding) gives each class its exact share. */
static size_t holdout_count(size_t n, double frac) {
  if (n < 2) return 0;
  size_t k = (size_t)floor((double)n * frac + 0.5);
  if (frac > 0.0 && k < 1) k = 1;
  return k > n - 1 ? n - 1 : k;
}

static effnet_status mark_holdout(folder_scan *s, int split, double frac, effnet_error *err) {
  for (size_t c = 0; c < s->classes.n; c++) {
    size_t first = s->class_first[c], n = s->class_count[c];
    hashed *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", s->file_root);
    for (size_t i = 0; i < n; i++) {
      h[i].hash = holdout_hash(names_at(&s->files, first + i));
      h[i].index = first + i;
    }
    if (n) qsort(h, n, sizeof *h, by_hash);
    size_t k = holdout_count(n, frac);
    for (size_t i = 0; i < n; i++) s->keep[h[i].index] = (uint8_t)((i < k) == !split);
    free(h);
  }
  return EFFNET_OK;
}

/* Decode every kept file once, in parallel; the ones that fail are dropped. */
static int drop_undecodable(folder_scan *s) {
  long n = (long)s->files.n;
  int skipped = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : skipped)
  for (long i = 0; i < n; i++) {
    if (!s->keep[i]) continue;
    char path[PATH_CAP];
    effnet_image im;
    effnet_error e;
    int ok = join(path, s->file_root, names_at(&s->files, (size_t)i), &e) == EFFNET_OK &&
             effnet_image_load(&im, path, &e) == EFFNET_OK;
    if (ok) effnet_image_free(&im);
    else {
      s->keep[i] = 0;
      skipped++;
    }
  }
  return skipped;
}

/* Every class must have a file, and the training part a decodable image of every class; a
 * validation part may lack a class (a class of one file has no holdout). */
static effnet_status check_classes(const folder_scan *s, int split, effnet_error *err) {
  size_t total = 0;
  const char *part = split ? "training" : "validation";
  for (size_t c = 0; c < s->classes.n; c++) {
    size_t kept = 0, first = s->class_first[c];
    for (size_t i = 0; i < s->class_count[c]; i++) kept += s->keep[first + i];
    total += kept;
    if ((split || !s->layout) && s->class_count[c] == 0)
      return en_fail(err, EFFNET_E_FORMAT, "%s/%s: no image files (.jpg, .jpeg, .png)",
                     s->file_root, names_at(&s->classes, c));
    if (split && kept == 0)
      return en_fail(err, EFFNET_E_FORMAT, "%s/%s: no decodable image in the training part",
                     s->file_root, names_at(&s->classes, c));
  }
  if (total == 0 && !s->layout)
    return en_fail(err, EFFNET_E_FORMAT, "%s: no decodable image in the %s part (val_fraction %g)",
                   s->file_root, part, s->frac);
  if (total == 0)
    return en_fail(err, EFFNET_E_FORMAT, "%s: no decodable image in the %s part", s->file_root,
                   part);
  return EFFNET_OK;
}

static effnet_status build_folder(en_dataset *d, folder_scan *s, effnet_error *err) {
  size_t n = 0;
  for (size_t i = 0; i < s->files.n; i++) n += s->keep[i];
  d->kind = DS_FOLDER;
  d->count = (int64_t)n;
  d->labels = malloc(n * sizeof *d->labels);
  d->path_off = malloc(n * sizeof *d->path_off);
  d->root = strdup(s->file_root);
  const char **names = malloc(s->classes.n * sizeof *names);
  if (!d->labels || !d->path_off || !d->root || !names) {
    free(names);
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", s->file_root);
  }
  for (size_t i = 0, j = 0; i < s->files.n; i++)
    if (s->keep[i]) {
      d->labels[j] = s->files.tag[i];
      d->path_off[j++] = s->files.off[i];
    }
  d->paths = s->files.arena; /* the dropped files' names stay behind: not worth a copy */
  s->files.arena = NULL;
  for (size_t c = 0; c < s->classes.n; c++) names[c] = names_at(&s->classes, c);
  effnet_status st = set_class_names(d, names, (int)s->classes.n, err);
  free(names);
  return st;
}

static effnet_status open_folder(en_dataset *d, const char *dir, int split, double frac,
                                 int *skipped, effnet_error *err) {
  folder_scan s;
  memset(&s, 0, sizeof s);
  s.frac = frac;
  effnet_status st = scan_layout(&s, dir, split, err);
  if (st == EFFNET_OK) st = scan_classes(&s, err);
  if (st == EFFNET_OK && s.layout && !split) st = check_val_classes(&s, err);
  if (st == EFFNET_OK) st = scan_files(&s, err);
  if (st == EFFNET_OK && !(s.keep = malloc(s.files.n ? s.files.n : 1)))
    st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", dir);
  if (st == EFFNET_OK) {
    if (s.layout) memset(s.keep, 1, s.files.n);
    else st = mark_holdout(&s, split, frac, err);
  }
  if (st == EFFNET_OK) {
    int dropped = drop_undecodable(&s);
    if (skipped) *skipped = dropped;
    st = check_classes(&s, split, err);
  }
  if (st == EFFNET_OK) st = build_folder(d, &s, err);
  scan_free(&s);
  return st;
}

effnet_status en_dataset_open_folder(en_dataset **out, const char *dir, int split,
                                     double val_fraction, int *skipped, effnet_error *err) {
  if (skipped) *skipped = 0;
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "en_dataset_open_folder: NULL output");
  *out = NULL;
  if (!dir) return en_fail(err, EFFNET_E_ARGUMENT, "en_dataset_open_folder: NULL directory");
  if (split != 0 && split != 1)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: split %d (expected 1 = train, 0 = val)", dir,
                   split);
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: val_fraction %g outside [0, 1)", dir,
                   val_fraction);
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return en_fail(err, EFFNET_E_IO, "%s: cannot open: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return en_fail(err, EFFNET_E_IO, "%s: not a directory", dir);
  en_dataset *d = calloc(1, sizeof *d);
  if (!d) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", dir);
  effnet_status st = open_folder(d, dir, split, val_fraction, skipped, err);
  if (st != EFFNET_OK) {
    en_dataset_free(d);
    return st;
  }
  *out = d;
  return EFFNET_OK;
}

/* ================================================================== augmentation geometry */

/* A crop of the source, in source pixels; may reach outside it (PAD_CROP), where pixels
 * are 0. */
typedef struct box {
  int x, y, w, h;
} box;

/* torchvision RandomResizedCrop.get_params with ratio (3/4, 4/3): ten tries of a random
 * area and log-uniform aspect ratio, then a centre crop with the ratio clamped. Python's
 * round() halves to even, as nearbyint does in the default rounding mode. */
static box rrc_box(en_rng *r, int W, int H, double min_scale) {
  const double lo = log(3.0 / 4.0), hi = log(4.0 / 3.0), area = (double)W * H;
  for (int t = 0; t < 10; t++) {
    double target = area * (min_scale + (1.0 - min_scale) * en_rng_next_uniform(r));
    double ratio = exp(lo + (hi - lo) * en_rng_next_uniform(r));
    double w = nearbyint(sqrt(target * ratio)), h = nearbyint(sqrt(target / ratio));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      box b = {0, 0, (int)w, (int)h};
      b.y = (int)en_rng_below(r, (uint64_t)(H - b.h + 1));
      b.x = (int)en_rng_below(r, (uint64_t)(W - b.w + 1));
      return b;
    }
  }
  box b = {0, 0, W, H};
  double in_ratio = (double)W / H;
  if (in_ratio < 3.0 / 4.0) b.h = (int)nearbyint(W / (3.0 / 4.0));
  else if (in_ratio > 4.0 / 3.0) b.w = (int)nearbyint(H * (4.0 / 3.0));
  b.x = (W - b.w) / 2;
  b.y = (H - b.h) / 2;
  return b;
}

/* torchvision RandomCrop(size of the source, padding=pad): row offset first, then column. */
static box pad_crop_box(en_rng *r, int W, int H, int pad) {
  box b = {0, 0, W, H};
  b.y = (int)en_rng_below(r, (uint64_t)(2 * pad + 1)) - pad;
  b.x = (int)en_rng_below(r, (uint64_t)(2 * pad + 1)) - pad;
  return b;
}

/* The crop and the flip of one sample; NONE takes the whole source. */
static box draw_box(const en_augment *aug, en_rng *r, int W, int H, int *flip) {
  box b = {0, 0, W, H};
  if (aug->kind == EN_AUG_RRC) b = rrc_box(r, W, H, aug->min_scale);
  else if (aug->kind == EN_AUG_PAD_CROP) b = pad_crop_box(r, W, H, aug->pad);
  *flip = aug->kind != EN_AUG_NONE && aug->flip && en_rng_next_uniform(r) < 0.5f;
  return b;
}

/* ToTensor then Normalize in torch's float order, so that an unresampled pixel gives
 * exactly (p / 255 - mean) / std. */
static float norm_px(float v, const en_augment *aug, int c) {
  return (v / 255.0f - aug->mean[c]) / aug->std[c];
}

/* ================================================================== IDX sampler */

/* Pillow-style bilinear taps in float (triangle filter stretched when shrinking, weights
 * normalised over the samples that exist), for one axis: in -> out samples. */
typedef struct taps {
  int ksize;
  int *start, *count;
  float *w;
} taps;

static int taps_ksize(int in, int out) {
  double scale = (double)in / out;
  return (int)ceil(scale < 1.0 ? 1.0 : scale) * 2 + 1;
}

static void taps_fill(taps *t, int in, int out) {
  double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale, support = fs;
  for (int i = 0; i < out; i++) {
    double center = (i + 0.5) * scale, sum = 0.0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    lo = lo < 0 ? 0 : lo;
    hi = hi > in ? in : hi;
    int n = hi - lo < t->ksize ? hi - lo : t->ksize;
    float *w = t->w + (size_t)i * t->ksize;
    for (int k = 0; k < n; k++) {
      double x = fabs((lo + k - center + 0.5) / fs);
      w[k] = (float)(x < 1.0 ? 1.0 - x : 0.0);
      sum += w[k];
    }
    for (int k = 0; k < n; k++) w[k] = sum != 0.0 ? (float)(w[k] / sum) : w[k];
    t->start[i] = lo;
    t->count[i] = n < 0 ? 0 : n;
  }
}

/* One block holds both axes' taps and the horizontal pass; small samples (28 -> 224 still
 * fits) use the stack so the IDX sampler allocates nothing. */
#define GRAY_STACK_FLOATS 16384

typedef struct gray_work {
  taps tx, ty;
  float *tmp;
  void *heap;
} gray_work;

static size_t gray_floats(box b, int res, int *ksx, int *ksy) {
  *ksx = taps_ksize(b.w, res);
  *ksy = taps_ksize(b.h, res);
  return (size_t)res * (size_t)(*ksx + *ksy + 4) + (size_t)b.h * (size_t)res;
}

static int gray_work_init(gray_work *g, float *stack, box b, int res) {
  int ksx, ksy;
  size_t need = gray_floats(b, res, &ksx, &ksy);
  float *p = stack;
  g->heap = NULL;
  if (need > GRAY_STACK_FLOATS && !(p = g->heap = malloc(need * sizeof *p))) return -1;
  size_t r = (size_t)res;
  g->tx = (taps){ksx, (int *)p, (int *)p + r, p + 2 * r};
  p += 2 * r + r * (size_t)ksx;
  g->ty = (taps){ksy, (int *)p, (int *)p + r, p + 2 * r};
  p += 2 * r + r * (size_t)ksy;
  g->tmp = p;
  taps_fill(&g->tx, b.w, res);
  taps_fill(&g->ty, b.h, res);
  return 0;
}

/* Horizontal pass of crop rows [row0, row0 + rows) into tmp (res columns). */
static void gray_hpass(const uint8_t *px, int W, int H, box b, const taps *tx, int res,
                       int row0, int rows, float *tmp) {
  for (int y = 0; y < rows; y++) {
    int sy = b.y + row0 + y;
    float *o = tmp + (size_t)y * res;
    if (sy < 0 || sy >= H) {
      memset(o, 0, (size_t)res * sizeof *o);
      continue;
    }
    const uint8_t *line = px + (size_t)sy * W;
    for (int i = 0; i < res; i++) {
      const float *w = tx->w + (size_t)i * tx->ksize;
      int s = b.x + tx->start[i];
      float acc = 0.0f;
      for (int k = 0; k < tx->count[i]; k++)
        if ((unsigned)(s + k) < (unsigned)W) acc += w[k] * line[s + k];
      o[i] = acc;
    }
  }
}

/* Vertical pass, flip, normalisation, grey -> RGB. */
static void gray_vpass(const float *tmp, int row0, const taps *ty, int res, int flip,
                       const en_augment *aug, float *out) {
  for (int j = 0; j < res; j++) {
    const float *w = ty->w + (size_t)j * ty->ksize;
    const float *in = tmp + (size_t)(ty->start[j] - row0) * res;
    for (int i = 0; i < res; i++) {
      float acc = 0.0f;
      for (int k = 0; k < ty->count[j]; k++) acc += w[k] * in[(size_t)k * res + i];
      float *o = out + ((size_t)j * res + (size_t)(flip ? res - 1 - i : i)) * 3;
      for (int c = 0; c < 3; c++) o[c] = norm_px(acc, aug, c);
    }
  }
}

static effnet_status idx_sample(const en_dataset *d, int64_t index, float *out, int res,
                                const en_augment *aug, en_rng *r, effnet_error *err) {
  int W = d->cols, H = d->rows, flip;
  const uint8_t *px = d->pixels + (size_t)index * (size_t)W * (size_t)H;
  box b = draw_box(aug, r, W, H, &flip);
  float stack[GRAY_STACK_FLOATS];
  gray_work g;
  if (gray_work_init(&g, stack, b, res))
    return en_fail(err, EFFNET_E_NOMEM, "sample %lld: out of memory", (long long)index);
  int row0 = g.ty.start[0], rows = g.ty.start[res - 1] + g.ty.count[res - 1] - row0;
  gray_hpass(px, W, H, b, &g.tx, res, row0, rows, g.tmp);
  gray_vpass(g.tmp, row0, &g.ty, res, flip, aug, out);
  free(g.heap);
  return EFFNET_OK;
}

/* ================================================================== folder sampler */

static void put_rgb(const uint8_t *px, int res, int flip, const en_augment *aug, float *out) {
  for (int j = 0; j < res; j++)
    for (int i = 0; i < res; i++) {
      const uint8_t *p = px + ((size_t)j * res + i) * 3;
      float *o = out + ((size_t)j * res + (size_t)(flip ? res - 1 - i : i)) * 3;
      for (int c = 0; c < 3; c++) o[c] = norm_px(p[c], aug, c);
    }
}

/* Eval: exactly effnet_preprocess_image's torchvision resize-then-centre-crop (bicubic,
 * shorter side floor(res / crop_frac)), transposed from CHW to NHWC. */
static effnet_status folder_eval(const effnet_image *im, int res, const en_augment *aug,
                                 float *out, effnet_error *err) {
  effnet_preprocess p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "dataset eval");
  p.resize_shorter = (int)floor((double)res / (double)aug->crop_frac);
  p.crop_h = p.crop_w = res;
  p.interp = EFFNET_INTERP_BICUBIC;
  memcpy(p.mean, aug->mean, sizeof p.mean);
  memcpy(p.std, aug->std, sizeof p.std);
  size_t plane = (size_t)res * res;
  float *chw = malloc(plane * 3 * sizeof *chw);
  if (!chw) return en_fail(err, EFFNET_E_NOMEM, "sample: out of memory");
  effnet_status st = effnet_preprocess_image(im, &p, chw, err);
  for (size_t i = 0; st == EFFNET_OK && i < plane; i++)
    for (int c = 0; c < 3; c++) out[i * 3 + c] = chw[c * plane + i];
  free(chw);
  return st;
}

/* The crop as its own zero-padded RGB image (only PAD_CROP reaches outside the source). */
static uint8_t *padded_crop(const effnet_image *im, box b) {
  uint8_t *buf = calloc((size_t)b.w * b.h, 3);
  if (!buf) return NULL;
  int x0 = b.x < 0 ? 0 : b.x, x1 = b.x + b.w > im->width ? im->width : b.x + b.w;
  for (int y = 0; y < b.h && x1 > x0; y++) {
    int sy = b.y + y;
    if (sy < 0 || sy >= im->height) continue;
    memcpy(buf + ((size_t)y * b.w + (size_t)(x0 - b.x)) * 3,
           im->rgb + ((size_t)sy * im->width + x0) * 3, (size_t)(x1 - x0) * 3);
  }
  return buf;
}

/* RRC / PAD_CROP: crop, Pillow bilinear resize to res x res (torchvision's default for both
 * RandomResizedCrop and Resize), flip. */
static effnet_status folder_train(const effnet_image *im, int res, const en_augment *aug,
                                  en_rng *r, float *out, effnet_error *err) {
  int flip;
  box b = draw_box(aug, r, im->width, im->height, &flip);
  int inside = b.x >= 0 && b.y >= 0 && b.x + b.w <= im->width && b.y + b.h <= im->height;
  uint8_t *crop = inside ? NULL : padded_crop(im, b);
  uint8_t *dst = malloc((size_t)res * res * 3);
  effnet_status st = EFFNET_OK;
  if (!dst || (!inside && !crop)) st = en_fail(err, EFFNET_E_NOMEM, "sample: out of memory");
  if (st == EFFNET_OK) {
    size_t stride = inside ? (size_t)im->width * 3 : (size_t)b.w * 3;
    const uint8_t *px = inside ? im->rgb + (size_t)b.y * stride + (size_t)b.x * 3 : crop;
    img_view v = {px, b.w, b.h, stride};
    img_window all = {0, 0, res, res};
    st = img_resize_pil(v, res, res, all, EFFNET_INTERP_BILINEAR, dst, err);
  }
  if (st == EFFNET_OK) put_rgb(dst, res, flip, aug, out);
  free(crop);
  free(dst);
  return st;
}

static effnet_status folder_sample(const en_dataset *d, int64_t index, float *out, int res,
                                   const en_augment *aug, en_rng *r, effnet_error *err) {
  char path[PATH_CAP];
  effnet_status st = join(path, d->root, d->paths + d->path_off[index], err);
  effnet_image im;
  if (st == EFFNET_OK) st = effnet_image_load(&im, path, err);
  if (st != EFFNET_OK) return st;
  st = aug->kind == EN_AUG_NONE ? folder_eval(&im, res, aug, out, err)
                                : folder_train(&im, res, aug, r, out, err);
  effnet_image_free(&im);
  return st;
}

/* ================================================================== sampling */

static effnet_status check_augment(const en_dataset *d, int res, const en_augment *aug,
                                   effnet_error *err) {
  if (res < 1 || res > SAMPLE_MAX_RES)
    return en_fail(err, EFFNET_E_ARGUMENT, "sample: resolution %d outside [1, %d]", res,
                   SAMPLE_MAX_RES);
  for (int c = 0; c < 3; c++)
    if (!isfinite(aug->mean[c]) || !isfinite(aug->std[c]) || aug->std[c] == 0.0f)
      return en_fail(err, EFFNET_E_ARGUMENT, "sample: mean/std of channel %d unusable", c);
  switch (aug->kind) {
    case EN_AUG_NONE:
      if (d->kind == DS_FOLDER && !(aug->crop_frac > 0.0f && aug->crop_frac <= 1.0f))
        return en_fail(err, EFFNET_E_ARGUMENT, "sample: crop_frac %g outside (0, 1]",
                       (double)aug->crop_frac);
      return EFFNET_OK;
    case EN_AUG_RRC:
      if (!(aug->min_scale > 0.0f && aug->min_scale <= 1.0f))
        return en_fail(err, EFFNET_E_ARGUMENT, "sample: min_scale %g outside (0, 1]",
                       (double)aug->min_scale);
      return EFFNET_OK;
    case EN_AUG_PAD_CROP:
      if (aug->pad < 0 || aug->pad > SAMPLE_MAX_PAD)
        return en_fail(err, EFFNET_E_ARGUMENT, "sample: pad %d outside [0, %d]", aug->pad,
                       SAMPLE_MAX_PAD);
      return EFFNET_OK;
  }
  return en_fail(err, EFFNET_E_ARGUMENT, "sample: unknown augmentation %d", (int)aug->kind);
}

effnet_status en_dataset_sample(const en_dataset *d, int64_t index, float *out, int res,
                                const en_augment *aug, uint64_t seed, effnet_error *err) {
  if (!d || !out || !aug)
    return en_fail(err, EFFNET_E_ARGUMENT, "en_dataset_sample: NULL argument");
  if (index < 0 || index >= d->count)
    return en_fail(err, EFFNET_E_ARGUMENT, "sample: index %lld outside [0, %lld)",
                   (long long)index, (long long)d->count);
  effnet_status st = check_augment(d, res, aug, err);
  if (st != EFFNET_OK) return st;
  en_rng r = en_rng_make(seed, EN_STREAM_AUGMENT, (uint64_t)index);
  return d->kind == DS_IDX ? idx_sample(d, index, out, res, aug, &r, err)
                           : folder_sample(d, index, out, res, aug, &r, err);
}
