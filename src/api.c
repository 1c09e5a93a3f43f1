/* The public API: thin wrappers that check arguments, keep the per-handle error message and
 * delegate to the modules. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "infer/infer.h"
#include "model/model.h"

effnet_status en_model_new(effnet_model **out, const effnet_spec *spec, effnet_error *err) {
  *out = NULL;
  effnet_model *m = calloc(1, sizeof *m);
  if (!m) return en_fail(err, EFFNET_E_NOMEM, "out of memory (model)");
  effnet_status st = en_arch_build(&m->arch, spec, err);
  if (st == EFFNET_OK) st = en_params_build(&m->params, &m->arch, err);
  if (st != EFFNET_OK) {
    effnet_model_free(m);
    return st;
  }
  if (m->arch.spec.padding == EFFNET_PAD_AUTO) m->arch.spec.padding = EFFNET_PAD_SYMMETRIC;
  if (m->arch.spec.bn_eps == 0.0f) m->arch.spec.bn_eps = 1e-5f;
  m->kernels = &en_kernels_fast;
  m->threads = omp_get_num_procs();
  *out = m;
  return EFFNET_OK;
}

effnet_status effnet_model_create(effnet_model **out, const effnet_spec *spec, uint64_t seed,
                                  effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_model_create: NULL out");
  *out = NULL;
  if (!spec) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_model_create: NULL spec");
  effnet_status st = en_model_new(out, spec, err);
  if (st == EFFNET_OK) en_params_init(&(*out)->params, seed);
  return st;
}

effnet_status effnet_model_load(effnet_model **out, const char *path,
                                const effnet_load_options *options, effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_model_load: NULL out");
  *out = NULL;
  if (!path) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_model_load: NULL path");
  return en_weights_load(out, path, options, err);
}

effnet_status effnet_model_save(effnet_model *m, const char *path) {
  if (!m) return EFFNET_E_ARGUMENT;
  if (!path) return en_fail(&m->error, EFFNET_E_ARGUMENT, "effnet_model_save: NULL path");
  return en_weights_save(m, path, &m->error);
}

void effnet_model_free(effnet_model *m) {
  if (!m) return;
  en_params_free(&m->params);
  en_folded_free(&m->folded);
  en_plan_free(&m->plan);
  for (int i = 0; i < m->lane_count; i++) en_plan_free(&m->lanes[i]);
  free(m->lanes);
  free(m);
}

const char *effnet_model_error(const effnet_model *m) { return m ? m->error.message : ""; }

const effnet_spec *effnet_model_spec(const effnet_model *m) { return m ? &m->arch.spec : NULL; }

const char *effnet_model_preprocess(const effnet_model *m) {
  return m && m->preprocess[0] ? m->preprocess : "timm";
}

effnet_status effnet_model_set_threads(effnet_model *m, int threads) {
  if (!m) return EFFNET_E_ARGUMENT;
  m->threads = threads > 0 ? threads : omp_get_num_procs();
  return EFFNET_OK;
}

void effnet_model_set_feature_hook(effnet_model *m, effnet_feature_fn fn, void *user) {
  if (!m) return;
  m->hook = fn;
  m->hook_user = fn ? user : NULL;
}

static effnet_status check_input(effnet_model *m, const float *input, int n, int h, int w,
                                 const float *logits) {
  if (!input || !logits)
    return en_fail(&m->error, EFFNET_E_ARGUMENT, "effnet_model_forward: NULL buffer");
  if (n < 1 || h < 1 || w < 1)
    return en_fail(&m->error, EFFNET_E_SHAPE, "input shape (%d, 3, %d, %d) must be positive", n,
                   h, w);
  if (n > EN_MAX_BATCH || h > EN_MAX_SIDE || w > EN_MAX_SIDE)
    return en_fail(&m->error, EFFNET_E_LIMIT,
                   "input shape (%d, 3, %d, %d) exceeds the caps (batch %d, side %d)", n, h, w,
                   EN_MAX_BATCH, EN_MAX_SIDE);
  return EFFNET_OK;
}

/* Image lanes (infer.h en_forward) for a batch of n: one per thread when every thread gets an
 * image, for the fast kernels only (the reference path stays the plain oracle), without a
 * feature hook (it sees whole-batch tensors) or profiling (per-op times of one team). B0 224,
 * batch 8, two threads: 4-6 % faster than the batch path (same process, alternating); one
 * lane on one thread (images one at a time) was 3-6 % slower than the batch, so one thread
 * runs lanes only for the split batch (split_block). 0: the batch path. */
static int lane_count(const effnet_model *m, int n) {
  if (m->threads < 2 || n < m->threads || m->hook || m->profiling) return 0;
  return m->kernels == &en_kernels_fast ? m->threads : 0;
}

static effnet_status prepare_lanes(effnet_model *m, int lanes, int h, int w) {
  if (m->lane_count < lanes) {
    en_plan *more = realloc(m->lanes, (size_t)lanes * sizeof *more);
    if (!more) return en_fail(&m->error, EFFNET_E_NOMEM, "out of memory (image lanes)");
    memset(more + m->lane_count, 0, (size_t)(lanes - m->lane_count) * sizeof *more);
    m->lanes = more;
    m->lane_count = lanes;
  }
  for (int i = 0; i < lanes; i++) {
    effnet_status st =
        en_plan_prepare(&m->lanes[i], &m->arch, 1, h, w, 1, EN_MAX_ARENA_BYTES, &m->error);
    if (st != EFFNET_OK) return st;
  }
  return EFFNET_OK;
}

/* The block at which a batch of n is split (en_split_block) for the fast kernels, without a
 * feature hook or profiling (as image lanes): 0 for none. The images run through the blocks
 * before it as image lanes (one on one thread). B0 224, batch 8, split at block 9 against
 * none, the two alternating in one process (30-60 rounds, median of per-round ratios): AVX2
 * 0.95-0.96 on one thread (positions 5 to 12 alike; all 16 blocks per image 0.97), 0.96-0.98
 * on two (against image lanes); AVX-512 0.98 and 0.99. B3 300, batch 4, one thread: 0.98-0.99.
 * One thread's peak RSS went down (87 -> 64 MiB: the batch arena's early buffers are never
 * touched), two threads' up (62 -> 69). */
static int split_block(const effnet_model *m, int n, int h, int w) {
  if (n < 2 || m->hook || m->profiling || m->kernels != &en_kernels_fast) return 0;
  if (m->threads > 1 && !lane_count(m, n)) return 0;
  return en_split_block(&m->arch, h, w);
}

effnet_status effnet_model_forward(effnet_model *m, const float *input, int n, int h, int w,
                                   float *logits) {
  if (!m) return EFFNET_E_ARGUMENT;
  m->error.message[0] = 0;
  effnet_status st = check_input(m, input, n, h, w, logits);
  if (st != EFFNET_OK) return st;
  if (!m->folded_valid) { /* refolding after the parameters changed (training evaluates) */
    en_folded_free(&m->folded);
    st = en_fold(&m->folded, &m->arch, &m->params, m->arch.spec.bn_eps, &m->error);
    if (st != EFFNET_OK) return st;
    m->folded_valid = 1;
  }
  int split = split_block(m, n, h, w), lanes = lane_count(m, n);
  if (split && !lanes) lanes = 1;
  st = lanes ? prepare_lanes(m, lanes, h, w) : EFFNET_OK;
  if (st == EFFNET_OK && (!lanes || split))
    st = en_plan_prepare(&m->plan, &m->arch, n, h, w, m->threads, EN_MAX_ARENA_BYTES, &m->error);
  if (st != EFFNET_OK) return st;
  en_forward_args args = {&m->arch,
                          &m->folded,
                          m->kernels,
                          &m->plan,
                          lanes ? m->lanes : NULL,
                          lanes,
                          n,
                          split,
                          m->arch.spec.padding,
                          m->hook,
                          m->hook_user,
                          m->profiling ? &m->profile : NULL};
  int previous = omp_get_max_threads();
  omp_set_num_threads(m->threads);
  en_forward(&args, input, logits);
  omp_set_num_threads(previous);
  return EFFNET_OK;
}

effnet_status effnet_spec_describe(const effnet_spec *spec, int h, int w, effnet_info *out,
                                   effnet_error *err) {
  if (!spec || !out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_spec_describe: NULL argument");
  en_arch *a = malloc(sizeof *a);
  if (!a) return en_fail(err, EFFNET_E_NOMEM, "out of memory");
  effnet_status st = en_arch_build(a, spec, err);
  if (st != EFFNET_OK) {
    free(a);
    return st;
  }
  memset(out, 0, sizeof *out);
  out->input_h = h > 0 ? h : spec->resolution;
  out->input_w = w > 0 ? w : spec->resolution;
  out->stem_channels = a->stem_ch;
  out->head_channels = a->head_ch;
  out->num_classes = a->num_classes;
  out->num_stages = EN_NUM_STAGES;
  out->num_blocks = a->num_blocks;
  int H = en_conv_out(out->input_h, 2), W = en_conv_out(out->input_w, 2);
  out->stem_h = H;
  out->stem_w = W;
  for (int s = 0; s < EN_NUM_STAGES; s++) {
    const en_block *b = &a->blocks[a->stage_first[s]];
    effnet_stage_info *si = &out->stages[s];
    H = en_conv_out(H, b->stride);
    W = en_conv_out(W, b->stride);
    *si = (effnet_stage_info){b->expand, b->kernel, b->stride, b->in_ch, b->out_ch,
                              a->stage_repeats[s], b->se_ch, H, W};
  }
  en_arch_counts(a, out->input_h, out->input_w, &out->params, &out->buffers, &out->macs);
  size_t floats = 0;
  st = en_plan_size(a, 1, out->input_h, out->input_w, 1, (size_t)-1, &floats, err);
  out->activation_bytes = (int64_t)(floats * sizeof(float));
  free(a);
  return st;
}

/* ---------------------------------------------------------------- .npy */

#include "io/npy.h"

effnet_status effnet_npy_read(const char *path, effnet_tensor *out, effnet_error *err) {
  if (!path || !out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_npy_read: NULL argument");
  memset(out, 0, sizeof *out);
  npy_array a;
  effnet_status st = npy_read(&a, path, err);
  if (st != EFFNET_OK) return st;
  out->ndim = a.ndim;
  for (int i = 0; i < a.ndim; i++) out->shape[i] = a.shape[i];
  out->data = a.data;
  return EFFNET_OK;
}

effnet_status effnet_npy_write(const char *path, const effnet_tensor *t, effnet_error *err) {
  if (!path || !t || (!t->data && t->ndim > 0) || t->ndim < 0 || t->ndim > EFFNET_TENSOR_MAX_DIMS)
    return en_fail(err, EFFNET_E_ARGUMENT, "effnet_npy_write: bad argument");
  return npy_write(path, t->data, t->ndim, t->shape, err);
}

void effnet_tensor_free(effnet_tensor *t) {
  if (!t) return;
  free(t->data);
  memset(t, 0, sizeof *t);
}

effnet_status effnet_model_use_reference(effnet_model *m, int on) {
  if (!m) return EFFNET_E_ARGUMENT;
  m->kernels = on ? &en_kernels_ref : &en_kernels_fast;
  return EFFNET_OK;
}

effnet_status effnet_model_set_profiling(effnet_model *m, int on) {
  if (!m) return EFFNET_E_ARGUMENT;
  m->profiling = on != 0;
  memset(&m->profile, 0, sizeof m->profile);
  return EFFNET_OK;
}

effnet_status effnet_model_profile(const effnet_model *m, effnet_profile *out) {
  if (!m || !out) return EFFNET_E_ARGUMENT;
  *out = m->profile;
  return EFFNET_OK;
}

const char *effnet_op_kind_name(effnet_op_kind kind) {
  static const char *names[EFFNET_OP_KINDS] = {"layout", "stem", "pointwise", "depthwise",
                                               "se", "add", "pool", "linear", "expand+dw",
                                               "stem+dw"};
  return kind >= 0 && kind < EFFNET_OP_KINDS ? names[kind] : "?";
}
