/* Weight files: safetensors with torchvision, timm or lukemelas tensor names (effnet writes
 * timm names). The architecture is recovered from the tensor shapes, so any member of the
 * family loads without flags; padding and BN epsilon follow from the source of the weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/hfconfig.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "model/model.h"

/* Where tensors come from: a safetensors file or a PyTorch checkpoint, behind one face. */
typedef struct en_source {
  st_file *st;
  pth_file *pth;
} en_source;

static const st_tensor *src_find(const en_source *f, const char *name) {
  return f->st ? st_find(f->st, name) : pth_find(f->pth, name);
}

static size_t src_count(const en_source *f) { return f->st ? st_count(f->st) : pth_count(f->pth); }

static const st_tensor *src_at(const en_source *f, size_t i) {
  return f->st ? st_tensor_at(f->st, i) : pth_tensor_at(f->pth, i);
}

static const char *src_metadata(const en_source *f, const char *key) {
  return f->st ? st_metadata(f->st, key) : NULL;
}

/* The container is told by its first bytes, not its name. */
static effnet_status src_open(en_source *f, const char *path, effnet_error *err) {
  unsigned char head[64];
  size_t got = 0;
  FILE *fp = fopen(path, "rb");
  if (fp) {
    got = fread(head, 1, sizeof head, fp);
    fclose(fp);
  }
  memset(f, 0, sizeof *f);
  if (got > 0 && pth_is_pth(head, got)) return pth_open(&f->pth, path, err);
  return st_open(&f->st, path, err);
}

static void src_close(en_source *f) {
  st_close(f->st);
  pth_close(f->pth);
}

/* What the file says about the architecture, before any spec is chosen. */
typedef struct survey {
  en_naming naming;
  int stem_ch, head_ch, num_classes, fc_in;
  int has_se;
  int repeats[EN_NUM_STAGES];
  int stage_out[EN_NUM_STAGES];
} survey;

static int dim0(const en_source *f, const char *name, int *value) {
  const st_tensor *t = src_find(f, name);
  if (!t || t->ndim < 1 || t->shape[0] > 1 << 24) return 0;
  *value = (int)t->shape[0];
  return 1;
}

static int exists(const en_source *f, const char *name) { return src_find(f, name) != NULL; }

static effnet_status detect_naming(const en_source *f, const char *path, en_naming *naming,
                                   effnet_error *err) {
  if (exists(f, "conv_stem.weight")) *naming = EN_NAMING_TIMM;
  else if (exists(f, "features.0.0.weight")) *naming = EN_NAMING_TORCHVISION;
  else if (exists(f, "_conv_stem.weight")) *naming = EN_NAMING_LUKEMELAS;
  else
    return en_fail(err, EFFNET_E_MISSING,
                   "%s: no EfficientNet stem tensor (looked for conv_stem.weight, "
                   "features.0.0.weight, _conv_stem.weight)", path);
  return EFFNET_OK;
}

/* timm / torchvision: blocks are addressed by (stage, index); count them per stage. */
static void survey_staged(const en_source *f, survey *s) {
  char name[128];
  for (int st = 0; st < EN_NUM_STAGES; st++) {
    int j = 0;
    for (;; j++) {
      if (s->naming == EN_NAMING_TIMM)
        snprintf(name, sizeof name, "blocks.%d.%d.conv_dw.weight", st, j);
      else
        snprintf(name, sizeof name, "features.%d.%d.block.0.0.weight", st + 1, j);
      if (!exists(f, name)) break;
    }
    s->repeats[st] = j;
    if (s->naming == EN_NAMING_TIMM)
      snprintf(name, sizeof name, "blocks.%d.0.%s.weight", st, st == 0 ? "conv_pw" : "conv_pwl");
    else
      snprintf(name, sizeof name, "features.%d.0.block.%d.0.weight", st + 1, st == 0 ? 2 : 3);
    if (!dim0(f, name, &s->stage_out[st])) s->stage_out[st] = 0;
  }
  s->has_se = s->naming == EN_NAMING_TIMM ? exists(f, "blocks.0.0.se.conv_reduce.weight")
                                          : exists(f, "features.1.0.block.1.fc1.weight");
}

/* lukemelas: blocks by global index; stages are runs of equal (out channels, kernel, expand). */
static void survey_global(const en_source *f, survey *s) {
  char name[128];
  int stage = -1, prev_out = -1, prev_k = -1, prev_expand = -1;
  for (int g = 0; g < EN_MAX_BLOCKS; g++) {
    snprintf(name, sizeof name, "_blocks.%d._depthwise_conv.weight", g);
    const st_tensor *dw = src_find(f, name);
    if (!dw) break;
    int out = 0, k = dw->ndim == 4 ? (int)dw->shape[2] : 0;
    snprintf(name, sizeof name, "_blocks.%d._project_conv.weight", g);
    dim0(f, name, &out);
    snprintf(name, sizeof name, "_blocks.%d._expand_conv.weight", g);
    int expand = exists(f, name);
    if (out != prev_out || k != prev_k || expand != prev_expand) {
      if (++stage >= EN_NUM_STAGES) {
        stage = EN_NUM_STAGES; /* more runs than stages: reported by the caller */
        break;
      }
      s->stage_out[stage] = out;
    }
    s->repeats[stage]++;
    prev_out = out, prev_k = k, prev_expand = expand;
  }
  s->has_se = exists(f, "_blocks.0._se_reduce.weight");
}

static effnet_status survey_file(const en_source *f, const char *path, survey *s,
                                 effnet_error *err) {
  memset(s, 0, sizeof *s);
  effnet_status st = detect_naming(f, path, &s->naming, err);
  if (st != EFFNET_OK) return st;
  static const char *stem[] = {"conv_stem.weight", "features.0.0.weight", "_conv_stem.weight"};
  static const char *head[] = {"conv_head.weight", "features.8.0.weight", "_conv_head.weight"};
  static const char *fc[] = {"classifier.weight", "classifier.1.weight", "_fc.weight"};
  dim0(f, stem[s->naming], &s->stem_ch);
  if (!dim0(f, head[s->naming], &s->head_ch))
    return en_fail(err, EFFNET_E_MISSING, "%s: tensor %s is missing", path, head[s->naming]);
  const st_tensor *t = src_find(f, fc[s->naming]);
  if (!t)
    return en_fail(err, EFFNET_E_MISSING, "%s: tensor %s (classifier) is missing", path,
                   fc[s->naming]);
  if (t->ndim != 2 || t->shape[0] < 1 || t->shape[0] > EN_MAX_CLASSES || t->shape[1] > 1 << 24)
    return en_fail(err, EFFNET_E_SHAPE, "%s: tensor %s has an unusable shape for a classifier",
                   path, fc[s->naming]);
  s->num_classes = (int)t->shape[0];
  s->fc_in = (int)t->shape[1];
  if (s->naming == EN_NAMING_LUKEMELAS) survey_global(f, s);
  else survey_staged(f, s);
  return EFFNET_OK;
}

/* ---------------------------------------------------------------- spec inference */

static int matches_width(const survey *s, effnet_family family, double w) {
  int lite = family == EFFNET_FAMILY_LITE;
  if (!lite && (en_round_filters(32, w) != s->stem_ch || en_round_filters(1280, w) != s->head_ch))
    return 0;
  for (int i = 0; i < EN_NUM_STAGES; i++)
    if (en_round_filters(en_base_stages[i].out_ch, w) != s->stage_out[i]) return 0;
  return 1;
}

static int matches_depth(const survey *s, effnet_family family, double d) {
  for (int i = 0; i < EN_NUM_STAGES; i++) {
    int fixed = family == EFFNET_FAMILY_LITE && (i == 0 || i == EN_NUM_STAGES - 1);
    int want = fixed ? en_base_stages[i].repeats : en_round_repeats(en_base_stages[i].repeats, d);
    if (want != s->repeats[i]) return 0;
  }
  return 1;
}

/* Smallest-step-last grid search so the reported multiplier is the roundest that fits. */
static int search_multiplier(const survey *s, effnet_family family, int is_depth, double *out) {
  static const double per_unit[] = {20.0, 100.0, 1000.0, 10000.0}; /* steps 0.05 .. 1e-4 */
  double max = is_depth ? EN_MAX_DEPTH : EN_MAX_WIDTH;
  for (size_t k = 0; k < sizeof per_unit / sizeof per_unit[0]; k++) {
    long count = (long)(max * per_unit[k]);
    for (long i = 1; i <= count; i++) {
      double v = i / per_unit[k]; /* the double a user would get typing the decimal */
      if (is_depth ? matches_depth(s, family, v) : matches_width(s, family, v)) {
        *out = v;
        return 1;
      }
    }
  }
  return 0;
}

static const char *official_names[] = {"b0", "b1", "b2", "b3", "b4", "b5", "b6",
                                        "b7", "b8", "l2", "lite0", "lite1", "lite2", "lite3",
                                        "lite4"};

static effnet_status infer_spec(const survey *s, const char *path, effnet_spec *spec,
                                effnet_error *err) {
  effnet_family family = s->has_se ? EFFNET_FAMILY_B : EFFNET_FAMILY_LITE;
  for (size_t i = 0; i < sizeof official_names / sizeof official_names[0]; i++) {
    effnet_spec cand;
    effnet_spec_from_name(&cand, official_names[i], NULL);
    if (cand.family == family && matches_width(s, family, cand.width) &&
        matches_depth(s, family, cand.depth)) {
      *spec = cand;
      return EFFNET_OK;
    }
  }
  double w, d;
  if (!search_multiplier(s, family, 0, &w) || !search_multiplier(s, family, 1, &d))
    return en_fail(err, EFFNET_E_SHAPE,
                   "%s: tensor shapes fit no EfficientNet%s member (stem %d, head %d, stage "
                   "channels %d,%d,%d,%d,%d,%d,%d, repeats %d,%d,%d,%d,%d,%d,%d); pass --model",
                   path, family == EFFNET_FAMILY_LITE ? "-Lite" : "", s->stem_ch, s->head_ch,
                   s->stage_out[0], s->stage_out[1], s->stage_out[2], s->stage_out[3],
                   s->stage_out[4], s->stage_out[5], s->stage_out[6], s->repeats[0],
                   s->repeats[1], s->repeats[2], s->repeats[3], s->repeats[4], s->repeats[5],
                   s->repeats[6]);
  return effnet_spec_custom(spec, family, w, d, 224, err);
}

/* ---------------------------------------------------------------- metadata */

static int meta_double(const en_source *f, const char *key, double *v) {
  const char *s = src_metadata(f, key);
  char *end;
  if (!s) return 0;
  double x = strtod(s, &end);
  if (end == s || *end) return 0;
  *v = x;
  return 1;
}

/* effnet's own files carry the spec; returns 1 when present and valid. */
static int spec_from_metadata(const en_source *f, effnet_spec *spec) {
  const char *family = src_metadata(f, "effnet.family"), *name = src_metadata(f, "effnet.name");
  double w, d, r, eps;
  if (!family || !meta_double(f, "effnet.width", &w) || !meta_double(f, "effnet.depth", &d) ||
      !meta_double(f, "effnet.resolution", &r) || r < 1 || r > 8192)
    return 0;
  effnet_family fam = strcmp(family, "lite") == 0 ? EFFNET_FAMILY_LITE : EFFNET_FAMILY_B;
  if (effnet_spec_custom(spec, fam, w, d, (int)r, NULL) != EFFNET_OK) return 0;
  if (name) snprintf(spec->name, sizeof spec->name, "%s", name);
  const char *pad = src_metadata(f, "effnet.padding");
  if (pad) spec->padding = strcmp(pad, "same") == 0 ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  if (meta_double(f, "effnet.bn_eps", &eps) && eps > 0 && eps < 1) spec->bn_eps = (float)eps;
  return 1;
}

/* ---------------------------------------------------------------- loading */

static effnet_status copy_tensors(effnet_model *m, const en_source *f, en_naming naming,
                                  const char *path, effnet_error *err) {
  char name[128];
  for (int i = 0; i < m->params.count; i++) {
    const en_param *e = &m->params.table[i];
    en_param_name(&m->arch, e, naming, name, sizeof name);
    const st_tensor *t = src_find(f, name);
    if (!t) return en_fail(err, EFFNET_E_MISSING, "%s: tensor %s is missing", path, name);
    int ok = t->ndim == e->ndim;
    for (int d = 0; ok && d < e->ndim; d++) ok = t->shape[d] == e->shape[d];
    if (!ok) {
      char want[64], got[64];
      int wl = 0, gl = 0;
      for (int d = 0; d < e->ndim; d++) wl += snprintf(want + wl, sizeof want - wl, "%s%d", d ? "," : "", e->shape[d]);
      for (int d = 0; d < t->ndim && gl < 48; d++) gl += snprintf(got + gl, sizeof got - gl, "%s%lld", d ? "," : "", (long long)t->shape[d]);
      if (e->ndim == 0) want[0] = 0;
      if (t->ndim == 0) got[0] = 0;
      return en_fail(err, EFFNET_E_SHAPE, "%s: tensor %s has shape (%s), the model needs (%s)",
                     path, name, got, want);
    }
    effnet_status st = st_to_f32(t, en_param_ptr(&m->params, i), err);
    if (st != EFFNET_OK) return st;
  }
  return EFFNET_OK;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Tensors a model does not own: BN num_batches_tracked counters, and the training state
 * (optimizer moments, EMA) that effnet checkpoints carry under "train." so that a checkpoint
 * loads directly for inference. */
static int foreign(const char *name) {
  return ends_with(name, "num_batches_tracked") || strncmp(name, EN_TRAIN_PREFIX, strlen(EN_TRAIN_PREFIX)) == 0;
}

/* Every other tensor of the file must be used. */
static effnet_status check_extras(const effnet_model *m, const en_source *f, en_naming naming,
                                  const char *path, effnet_error *err) {
  size_t expected = 0;
  for (size_t i = 0; i < src_count(f); i++)
    if (!foreign(src_at(f, i)->name)) expected++;
  if (expected == (size_t)m->params.count) return EFFNET_OK;
  char name[128];
  for (size_t i = 0; i < src_count(f); i++) {
    const char *have = src_at(f, i)->name;
    if (foreign(have)) continue;
    int used = 0;
    for (int j = 0; j < m->params.count && !used; j++) {
      en_param_name(&m->arch, &m->params.table[j], naming, name, sizeof name);
      used = strcmp(name, have) == 0;
    }
    if (!used)
      return en_fail(err, EFFNET_E_MISSING, "%s: unexpected tensor %s (not part of %s)", path,
                     have, m->arch.spec.name);
  }
  return en_fail(err, EFFNET_E_MISSING, "%s: %zu tensors for a model of %d", path, expected,
                 m->params.count);
}

/* Padding / eps from the source when the caller and the file leave them open. */
static void resolve_source(effnet_spec *spec, const survey *s, int tf_hint) {
  int torchvision_tf_weights = s->naming == EN_NAMING_TORCHVISION &&
      (!strcmp(spec->name, "b5") || !strcmp(spec->name, "b6") || !strcmp(spec->name, "b7"));
  /* TF-SAME padding (asked for, hinted or implied by lukemelas names) marks a TF port, and
   * every TF port was trained with BN eps 1e-3 */
  int tf = tf_hint || s->naming == EN_NAMING_LUKEMELAS || spec->padding == EFFNET_PAD_TF_SAME;
  if (spec->padding == EFFNET_PAD_AUTO)
    spec->padding = tf ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  /* torchvision runs its lukemelas-ported B5..B7 with symmetric padding but eps 1e-3 */
  if (spec->bn_eps == 0.0f) spec->bn_eps = tf || torchvision_tf_weights ? 1e-3f : 1e-5f;
}

static effnet_status choose_spec(const en_source *f, const survey *s, const char *path,
                                 const effnet_load_options *opt, effnet_spec *spec,
                                 effnet_error *err) {
  int tf_hint = 0;
  char arch_name[64];
  if (opt && opt->model && *opt->model) {
    effnet_status st = effnet_spec_from_name(spec, opt->model, err);
    if (st != EFFNET_OK) return st;
    tf_hint = spec->padding == EFFNET_PAD_TF_SAME;
  } else if (spec_from_metadata(f, spec)) {
    /* the file's own description */
  } else {
    effnet_status st = infer_spec(s, path, spec, err);
    if (st != EFFNET_OK) return st;
    /* a hub config.json only tells the source (tf_ or not); the shapes stay the authority */
    if (s->naming == EN_NAMING_TIMM && en_hfconfig_architecture(path, arch_name, sizeof arch_name))
      tf_hint = strncmp(arch_name, "tf_", 3) == 0;
    if (tf_hint && strcmp(spec->name, "custom")) {
      char tf_name[sizeof spec->name];
      snprintf(tf_name, sizeof tf_name, "tf_%.50s", spec->name);
      memcpy(spec->name, tf_name, sizeof tf_name);
    }
  }
  spec->num_classes = s->num_classes;
  if (opt && opt->padding != EFFNET_PAD_AUTO) spec->padding = opt->padding;
  if (opt && opt->bn_eps > 0.0f) spec->bn_eps = opt->bn_eps;
  resolve_source(spec, s, tf_hint);
  return EFFNET_OK;
}

/* A hub folder (model.safetensors + config.json) is named by its directory. */
static const char *weights_file(const char *path, char *buf, size_t size) {
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return path;
  size_t n = strlen(path);
  int slash = n > 0 && path[n - 1] == '/';
  if (snprintf(buf, size, "%s%smodel.safetensors", path, slash ? "" : "/") >= (int)size)
    return path;
  return buf;
}

/* The preprocessing the weights were trained with follows from their source too. */
static void choose_preprocess(effnet_model *m, const en_source *f, const survey *s) {
  const char *recorded = src_metadata(f, "effnet.preprocess"), *preset;
  if (recorded) preset = recorded;
  else if (s->naming == EN_NAMING_TORCHVISION) preset = "torchvision";
  else if (s->naming == EN_NAMING_TIMM) preset = "timm";
  else preset = m->arch.spec.family == EFFNET_FAMILY_LITE ? "lite" : "tf";
  snprintf(m->preprocess, sizeof m->preprocess, "%s", preset);
}

effnet_status en_weights_load(effnet_model **out, const char *dir_or_file,
                              const effnet_load_options *opt, effnet_error *err) {
  *out = NULL;
  char buf[4096];
  const char *path = weights_file(dir_or_file, buf, sizeof buf);
  en_source src, *f = &src;
  effnet_status st = src_open(f, path, err);
  if (st != EFFNET_OK) return st;
  survey s;
  effnet_spec spec;
  effnet_model *m = NULL;
  st = survey_file(f, path, &s, err);
  if (st == EFFNET_OK) st = choose_spec(f, &s, path, opt, &spec, err);
  if (st == EFFNET_OK) st = en_model_new(&m, &spec, err);
  if (st == EFFNET_OK) st = copy_tensors(m, f, s.naming, path, err);
  if (st == EFFNET_OK) st = check_extras(m, f, s.naming, path, err);
  if (st == EFFNET_OK) choose_preprocess(m, f, &s);
  src_close(f);
  if (st != EFFNET_OK) {
    effnet_model_free(m);
    return st;
  }
  *out = m;
  return EFFNET_OK;
}

/* ---------------------------------------------------------------- saving */

effnet_status en_weights_save(const effnet_model *m, const char *path, effnet_error *err) {
  return en_weights_save_ext(m, path, NULL, NULL, 0, NULL, 0, err);
}

effnet_status en_weights_save_ext(const effnet_model *m, const char *path, const float *data,
                                  const st_write_tensor *extra, size_t extra_count,
                                  const char *const *extra_meta, size_t extra_pairs,
                                  effnet_error *err) {
  const en_params *p = &m->params;
  if (!data) data = p->data;
  int bn_count = 0;
  for (int i = 0; i < p->count; i++) bn_count += p->table[i].field == EN_F_VAR;
  size_t n = (size_t)p->count + bn_count;
  st_write_tensor *ts = calloc(n + extra_count, sizeof *ts);
  char *names = calloc(n, 128);
  int64_t *zeros = calloc(1, sizeof *zeros);
  const char **meta = calloc(2 * (9 + extra_pairs), sizeof *meta);
  if (!ts || !names || !zeros || !meta) {
    free(ts), free(names), free(zeros), free(meta);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory saving %s", path);
  }
  size_t k = 0;
  for (int i = 0; i < p->count; i++, k++) {
    const en_param *e = &p->table[i];
    en_param_name(&m->arch, e, EN_NAMING_TIMM, names + k * 128, 128);
    ts[k] = (st_write_tensor){names + k * 128, ST_F32, e->ndim, {0}, data + e->offset};
    for (int d = 0; d < e->ndim; d++) ts[k].shape[d] = e->shape[d];
    if (e->field == EN_F_VAR) { /* timm's BN modules also carry num_batches_tracked */
      char layer[128];
      snprintf(layer, sizeof layer, "%s", names + k * 128);
      layer[strlen(layer) - strlen("running_var")] = 0;
      k++;
      snprintf(names + k * 128, 128, "%.100snum_batches_tracked", layer);
      ts[k] = (st_write_tensor){names + k * 128, ST_I64, 0, {0}, zeros};
    }
  }
  if (extra_count) memcpy(ts + n, extra, extra_count * sizeof *ts);
  const effnet_spec *sp = &m->arch.spec;
  char w[32], d[32], r[32], eps[32];
  snprintf(w, sizeof w, "%.17g", sp->width);
  snprintf(d, sizeof d, "%.17g", sp->depth);
  snprintf(r, sizeof r, "%d", sp->resolution);
  snprintf(eps, sizeof eps, "%.9g", sp->bn_eps);
  const char *base[] = {"format", "pt", "effnet.name", sp->name,
                        "effnet.family", sp->family == EFFNET_FAMILY_LITE ? "lite" : "b",
                        "effnet.width", w, "effnet.depth", d, "effnet.resolution", r,
                        "effnet.padding", sp->padding == EFFNET_PAD_TF_SAME ? "same" : "symmetric",
                        "effnet.bn_eps", eps, "effnet.preprocess", effnet_model_preprocess(m)};
  size_t pairs = sizeof base / sizeof base[0] / 2;
  memcpy(meta, base, sizeof base);
  if (extra_pairs) memcpy(meta + 2 * pairs, extra_meta, 2 * extra_pairs * sizeof *meta);
  effnet_status st = st_write(path, ts, n + extra_count, meta, pairs + extra_pairs, err);
  free(ts), free(names), free(zeros), free(meta);
  return st;
}
