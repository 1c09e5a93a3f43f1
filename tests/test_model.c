/* Model-level tests through the public API (plus the internal writer to forge bad files):
 * naming, rounding rules, save/load round trips in every tensor-naming convention, batch and
 * thread invariance, fast vs reference kernels, and the error paths for bad weights/inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bigalloc.h"
#include "infer/infer.h"
#include "io/safetensors.h"
#include "kernels/isa.h"
#include "model/model.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/effnet_test_model_XXXXXX";

static const char *tmp(const char *name) {
  static char path[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
  return path[k];
}

static double max_rel(const float *a, const float *b, size_t n) {
  double d = 0, s = 1e-12;
  for (size_t i = 0; i < n; i++) {
    if (fabs((double)a[i] - b[i]) > d || a[i] != a[i]) d = a[i] != a[i] ? INFINITY : fabs((double)a[i] - b[i]);
    if (fabs(b[i]) > s) s = fabs(b[i]);
  }
  return d / s;
}

static float *random_input(int n, int h, int w, unsigned seed) {
  float *x = malloc((size_t)n * 3 * h * w * sizeof *x);
  for (size_t i = 0; i < (size_t)n * 3 * h * w; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return x;
}

static effnet_model *tiny(effnet_family family, int classes, uint64_t seed) {
  effnet_spec s;
  effnet_model *m = NULL;
  effnet_spec_custom(&s, family, 0.25, 0.34, 64, NULL);
  s.num_classes = classes;
  CHECK(effnet_model_create(&m, &s, seed, NULL) == EFFNET_OK);
  /* non-trivial BN statistics so folding is exercised */
  for (int i = 0; i < m->params.count; i++) {
    en_param *e = &m->params.table[i];
    float *d = en_param_ptr(&m->params, i);
    for (int64_t j = 0; j < e->numel && e->ndim == 1; j++) {
      float r = (float)((j * 7919 + i * 104729) % 1000) / 1000.0f;
      if (e->field == EN_F_VAR) d[j] = 0.5f + r;
      else if (e->field == EN_F_MEAN) d[j] = r - 0.5f;
      else if (e->role != EN_R_FC && e->field == EN_F_WEIGHT) d[j] = 0.7f + 0.6f * r;
      else d[j] = 0.2f * (r - 0.5f);
    }
  }
  return m;
}

static void test_names_and_rounding(void) {
  effnet_spec s;
  effnet_error err;
  CHECK(effnet_spec_from_name(&s, "B3", NULL) == EFFNET_OK && s.resolution == 300);
  CHECK(effnet_spec_from_name(&s, "efficientnet-b7", NULL) == EFFNET_OK && s.depth == 3.1);
  CHECK(effnet_spec_from_name(&s, "tf_efficientnet_lite2", NULL) == EFFNET_OK &&
        s.family == EFFNET_FAMILY_LITE && s.padding == EFFNET_PAD_TF_SAME && s.bn_eps == 1e-3f);
  CHECK(effnet_spec_from_name(&s, "efficientnet_l2", NULL) == EFFNET_OK && s.width == 4.3);
  CHECK(effnet_spec_from_name(&s, "b9", &err) == EFFNET_E_ARGUMENT && strstr(err.message, "b9"));
  CHECK(effnet_spec_from_name(&s, "", &err) == EFFNET_E_ARGUMENT);
  CHECK(effnet_spec_custom(&s, EFFNET_FAMILY_B, 0.0, 1.0, 224, &err) == EFFNET_E_ARGUMENT);
  CHECK(effnet_spec_custom(&s, EFFNET_FAMILY_B, 1.0, 1e9, 224, &err) == EFFNET_E_ARGUMENT);
  CHECK(effnet_spec_compound(&s, 1.0, 0.9, 1.1, 1.15, &err) == EFFNET_E_ARGUMENT);
  CHECK(effnet_spec_compound(&s, 1.0, 1.2, 1.1, 1.15, NULL) == EFFNET_OK &&
        s.resolution == 258 && fabs(s.width - 1.1) < 1e-12 && fabs(s.depth - 1.2) < 1e-12);
  /* rounding (TF round_filters): nearest multiple of 8, never below 90% of the target */
  CHECK_EQ_INT(en_round_filters(32, 1.1), 32);
  CHECK_EQ_INT(en_round_filters(16, 1.2), 24); /* 19.2 -> 16 is < 90%: +8 */
  CHECK_EQ_INT(en_round_filters(1280, 4.3), 5504);
  CHECK_EQ_INT(en_round_filters(16, 0.1), 8);
  CHECK_EQ_INT(en_round_repeats(4, 3.1), 13);
  CHECK_EQ_INT(en_round_repeats(1, 1.4), 2);
  /* ImageNet tables: names and synsets in the checkpoints' class order */
  CHECK(!strcmp(effnet_imagenet_class(281), "tabby") && !strcmp(effnet_imagenet_class(967), "espresso"));
  CHECK(!strcmp(effnet_imagenet_synset(0), "n01440764") && effnet_imagenet_synset(1000) == NULL);
  CHECK_EQ_INT(effnet_imagenet_synset_index("n02123045"), 281);
  CHECK_EQ_INT(effnet_imagenet_synset_index("n15075141"), 999);
  CHECK_EQ_INT(effnet_imagenet_synset_index("n00000000"), -1);
  CHECK_EQ_INT(effnet_imagenet_synset_index(NULL), -1);
  effnet_info info;
  effnet_spec_from_name(&s, "b0", NULL);
  CHECK(effnet_spec_describe(&s, 0, 0, &info, NULL) == EFFNET_OK);
  CHECK_EQ_INT(info.params, 5288548);
  CHECK_EQ_INT(info.macs, 385814752);
  CHECK_EQ_INT(info.stages[5].se_channels, 28);
  CHECK_EQ_INT(info.stages[6].out_h, 7);
  effnet_spec_from_name(&s, "lite3", NULL);
  CHECK(effnet_spec_describe(&s, 0, 0, &info, NULL) == EFFNET_OK);
  CHECK_EQ_INT(info.stem_channels, 32);
  CHECK_EQ_INT(info.head_channels, 1280);
  CHECK_EQ_INT(info.stages[0].repeats, 1);
  CHECK_EQ_INT(info.stages[6].repeats, 1);
  CHECK_EQ_INT(info.stages[0].se_channels, 0);
}

/* Write m's tensors under another naming convention (what torchvision / lukemelas ship). */
static void save_as(const effnet_model *m, en_naming naming, const char *path) {
  const en_params *p = &m->params;
  st_write_tensor *ts = calloc((size_t)p->count, sizeof *ts);
  char(*names)[128] = calloc((size_t)p->count, 128);
  for (int i = 0; i < p->count; i++) {
    en_param_name(&m->arch, &p->table[i], naming, names[i], 128);
    ts[i].name = names[i];
    ts[i].dtype = ST_F32;
    ts[i].ndim = p->table[i].ndim;
    for (int d = 0; d < ts[i].ndim; d++) ts[i].shape[d] = p->table[i].shape[d];
    ts[i].data = en_param_ptr(p, i);
  }
  CHECK(st_write(path, ts, (size_t)p->count, NULL, 0, NULL) == EFFNET_OK);
  free(ts);
  free(names);
}

static void test_round_trips(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 7, 1), *back = NULL;
  int n = 2, h = 37, w = 50;
  float *x = random_input(n, h, w, 5), want[14], got[14];
  CHECK(effnet_model_forward(m, x, n, h, w, want) == EFFNET_OK);
  CHECK(effnet_model_save(m, tmp("own.safetensors")) == EFFNET_OK);
  CHECK(effnet_model_load(&back, tmp("own.safetensors"), NULL, NULL) == EFFNET_OK);
  CHECK(back && back->arch.num_blocks == m->arch.num_blocks && back->arch.spec.num_classes == 7);
  CHECK(effnet_model_forward(back, x, n, h, w, got) == EFFNET_OK);
  CHECK(max_rel(got, want, 14) == 0.0);
  effnet_model_free(back);
  static const en_naming namings[] = {EN_NAMING_TORCHVISION, EN_NAMING_LUKEMELAS};
  for (int k = 0; k < 2; k++) {
    save_as(m, namings[k], tmp("other.safetensors"));
    effnet_error err = {{0}};
    CHECK_MSG(effnet_model_load(&back, tmp("other.safetensors"), NULL, &err) == EFFNET_OK, "%s",
              err.message);
    if (!back) continue;
    CHECK(fabs(back->arch.spec.width - 0.25) < 1e-9 && back->arch.num_blocks == m->arch.num_blocks);
    /* lukemelas files are TF ports: SAME padding and eps 1e-3 follow from the names */
    CHECK(back->arch.spec.padding ==
          (namings[k] == EN_NAMING_LUKEMELAS ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC));
    back->arch.spec.padding = EFFNET_PAD_SYMMETRIC;
    back->arch.spec.bn_eps = m->arch.spec.bn_eps;
    CHECK(effnet_model_forward(back, x, n, h, w, got) == EFFNET_OK);
    CHECK(max_rel(got, want, 14) == 0.0);
    effnet_model_free(back);
  }
  effnet_model_free(m);
  free(x);
}

static void test_invariances(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 2);
  int h = 45, w = 31;
  float *x = random_input(3, h, w, 9), batch[15], single[15], ref[15];
  CHECK(effnet_model_forward(m, x, 3, h, w, batch) == EFFNET_OK);
  for (int b = 0; b < 3; b++)
    CHECK(effnet_model_forward(m, x + (size_t)b * 3 * h * w, 1, h, w, single + 5 * b) == EFFNET_OK);
  CHECK_MSG(max_rel(single, batch, 15) < 1e-5, "batch vs single %g", max_rel(single, batch, 15));
  effnet_model_set_threads(m, 1);
  CHECK(effnet_model_forward(m, x, 3, h, w, single) == EFFNET_OK);
  CHECK_MSG(max_rel(single, batch, 15) < 1e-5, "1 vs 2 threads %g", max_rel(single, batch, 15));
  effnet_model_use_reference(m, 1);
  CHECK(effnet_model_forward(m, x, 3, h, w, ref) == EFFNET_OK);
  CHECK_MSG(max_rel(ref, batch, 15) < 1e-5, "reference vs fast %g", max_rel(ref, batch, 15));
  /* TF-SAME changes the result on even sides, so the switch is really applied */
  m->arch.spec.padding = EFFNET_PAD_TF_SAME;
  CHECK(effnet_model_forward(m, x, 3, h, w, single) == EFFNET_OK);
  CHECK(max_rel(single, ref, 15) > 1e-4);
  effnet_model_free(m);
  free(x);
  m = tiny(EFFNET_FAMILY_LITE, 3, 3);
  x = random_input(1, 1, 1, 4); /* a 1x1 image still runs: every stage is 1x1 */
  CHECK(effnet_model_forward(m, x, 1, 1, 1, single) == EFFNET_OK);
  CHECK(single[0] == single[0]);
  effnet_model_free(m);
  free(x);
}

static void count_hook(void *user, const char *name, const float *data, int n, int h, int w,
                       int c) {
  (void)name, (void)data, (void)n, (void)h, (void)w, (void)c;
  ++*(int *)user;
}

/* A batch of at least one image per thread runs as image lanes (src/infer/forward.c), one
 * image per thread through the whole network; a feature hook forces the batch path. Both give
 * the same logits, to the bit, for uneven splits (5 images on 2 and 3 threads) too. */
static void test_image_lanes(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 8);
  int n = 5, h = 38, w = 45, calls = 0;
  float *x = random_input(n, h, w, 17), lanes[25], batch[25];
  for (int threads = 2; threads <= 3; threads++) {
    CHECK(effnet_model_set_threads(m, threads) == EFFNET_OK);
    effnet_model_set_feature_hook(m, NULL, NULL);
    CHECK(effnet_model_forward(m, x, n, h, w, lanes) == EFFNET_OK);
    CHECK_EQ_INT(m->lane_count, threads);
    effnet_model_set_feature_hook(m, count_hook, &calls);
    CHECK(effnet_model_forward(m, x, n, h, w, batch) == EFFNET_OK);
    CHECK_MSG(max_rel(lanes, batch, 25) == 0.0, "lanes vs batch on %d threads: %g", threads,
              max_rel(lanes, batch, 25));
  }
  CHECK(calls > 0);
  effnet_model_free(m);
  free(x);
}

/* en_plan_place (infer.h) at its least capacity, pixels * c + c + 32 floats: the tensor stays
 * inside the buffer and 64-byte aligned, for any row and channel count. */
static void test_placement_bounds(void) {
  static float buf[(1 << 16) + 64] __attribute__((aligned(64)));
  unsigned seed = 3;
  int bad = 0;
  for (int i = 0; i < 100000; i++) {
    seed = seed * 1103515245u + 12345u;
    int c = 1 + (int)((seed >> 8) % 3000);
    seed = seed * 1103515245u + 12345u;
    int64_t most = ((1 << 16) - c - 32) / c, pixels = 1 + (int64_t)((seed >> 8) % (unsigned)most);
    size_t cap = (size_t)(pixels * c + c + 32);
    float *at = en_plan_place(buf, cap, pixels, c);
    bad += at < buf || at + pixels * c > buf + cap || (uintptr_t)at % 64 != 0;
  }
  CHECK_EQ_INT(bad, 0);
}

typedef struct placed {
  const effnet_model *m;
  int bad, seen;
} placed;

/* Whether a tensor lies inside the plan buffer that holds its start, 64-byte aligned. */
static void placement_hook(void *user, const char *name, const float *data, int n, int h, int w,
                           int c) {
  placed *pl = user;
  const en_plan *p = &pl->m->plan;
  const float *bufs[] = {p->ping, p->pong, p->expanded, p->dw};
  size_t caps[] = {p->ping_cap, p->ping_cap, p->expanded_cap, p->dw_cap};
  int inside = 0;
  for (int i = 0; i < 4; i++)
    if (data >= bufs[i] && data < bufs[i] + caps[i])
      inside = data + (size_t)n * h * w * c <= bufs[i] + caps[i];
  pl->bad += !inside || (uintptr_t)data % 64 != 0;
  pl->seen++;
  (void)name;
}

/* Every emitted tensor (stem, stage outputs, head) inside its buffer in the batch path, for
 * odd and even sides, one to three images, one and two threads. */
static void test_placement_in_plan(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 4);
  int shapes[][3] = {{1, 45, 31}, {2, 32, 32}, {3, 17, 60}, {1, 1, 1}, {1, 64, 9}};
  placed pl = {m, 0, 0};
  float logits[15];
  effnet_model_set_feature_hook(m, placement_hook, &pl);
  for (int threads = 1; threads <= 2; threads++) {
    CHECK(effnet_model_set_threads(m, threads) == EFFNET_OK);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      float *x = random_input(shapes[i][0], shapes[i][1], shapes[i][2], 5 + (unsigned)i);
      CHECK(effnet_model_forward(m, x, shapes[i][0], shapes[i][1], shapes[i][2], logits) ==
            EFFNET_OK);
      free(x);
    }
  }
  CHECK(pl.seen > 20);
  CHECK_EQ_INT(pl.bad, 0);
  effnet_model_free(m);
}

/* The folded weights' allocator: 64-byte alignment below 2 MiB, 2 MiB from there on, every
 * byte writable (ASan checks the bounds in the sanitizer build). */
static void test_big_alloc(void) {
  size_t sizes[] = {1, 100, ((size_t)2 << 20) - 4, (size_t)2 << 20, ((size_t)5 << 20) + 12};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = en_big_alloc(sizes[i]);
    CHECK(p != NULL);
    if (!p) continue;
    uintptr_t align = sizes[i] >= ((size_t)2 << 20) ? (uintptr_t)2 << 20 : 64;
    CHECK_MSG((uintptr_t)p % align == 0, "en_big_alloc(%zu): %p", sizes[i], (void *)p);
    memset(p, 0x5a, sizes[i]);
    CHECK(p[0] == 0x5a && p[sizes[i] - 1] == 0x5a);
    free(p);
  }
}

/* On one thread a batch is split (en_split_block): each image through the early blocks alone,
 * the late ones for the whole batch; a feature hook forces the plain batch path. Same logits
 * to the bit, with the split inside the network. B0 224 splits at block 9 (14 x 14, 112
 * channels: from there on a block's weights outweigh one image's activations); at 512 x 512
 * only the head and the classifier run for the whole batch. */
static void test_batch_split(void) {
  effnet_spec s;
  effnet_model *b0 = NULL;
  CHECK(effnet_spec_from_name(&s, "b0", NULL) == EFFNET_OK);
  CHECK(effnet_model_create(&b0, &s, 3, NULL) == EFFNET_OK);
  CHECK_EQ_INT(en_split_block(&b0->arch, 224, 224), 9);
  CHECK_EQ_INT(b0->arch.blocks[9].in_ch, 112);
  CHECK_EQ_INT(en_split_block(&b0->arch, 512, 512), b0->arch.num_blocks);
  effnet_model_free(b0);
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 9);
  int n = 3, h = 57, w = 50, calls = 0, at = en_split_block(&m->arch, h, w);
  CHECK_MSG(at > 0 && at < m->arch.num_blocks, "split at %d of %d", at, m->arch.num_blocks);
  float *x = random_input(n, h, w, 23), split[15], batch[15];
  effnet_model_set_feature_hook(m, count_hook, &calls);
  CHECK(effnet_model_forward(m, x, n, h, w, batch) == EFFNET_OK);
  CHECK(calls > 0);
  effnet_model_set_feature_hook(m, NULL, NULL);
  for (int threads = 1; threads <= 2; threads++) { /* two: the early blocks as image lanes */
    CHECK(effnet_model_set_threads(m, threads) == EFFNET_OK);
    CHECK(effnet_model_forward(m, x, n, h, w, split) == EFFNET_OK);
    CHECK_EQ_INT(m->lane_count, threads); /* one thread: lanes only for the split */
    CHECK_MSG(max_rel(split, batch, 15) == 0.0, "split vs batch on %d threads: %g", threads,
              max_rel(split, batch, 15));
  }
  effnet_model_free(m);
  free(x);
}

/* The small depthwise convs' inputs in planes (infer.h's plane sets): the same logits, to the
 * bit, as with the planes taken away (NHWC and a tile fill), batch of one and of three; and B0
 * 224's sets: one per size, padded for the widest window on it (14 x 14: k3, k5 and k5 stride 2
 * share planes of 16 x 16, the image at 2, 2, its bottom and right margins the next plane's top
 * and the next row's left), where they fit EN_MEMORY_L2S L2s. */
static void test_plane_sets(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 12);
  int h = 120, w = 100;
  float *x = random_input(3, h, w, 31), with[15], without[15];
  for (int n = 1; n <= 3; n += 2) {
    CHECK(effnet_model_forward(m, x, n, h, w, with) == EFFNET_OK);
    int sets = m->plan.set_count, written = 0;
    CHECK_MSG(sets > 0, "no plane sets for %d images of %d x %d", n, h, w);
    for (int i = 0; i < sets; i++) /* the first pixel's 16 channels, where the CPU uses them */
      for (int c = 0; c < EN_PLANE_LANES; c++)
        written += m->plan.sets[i].planes.data[m->plan.sets[i].planes.at[0] + c] != 0.0f;
    int fast = (en_isa() == EN_ISA_AVX512 || en_isa() == EN_ISA_AVX2) &&
               en_dense_isa() != EN_ISA_PORTABLE;
    CHECK_MSG((written > 0) == fast, "planes written: %d floats", written);
    m->plan.set_count = 0;
    CHECK(effnet_model_forward(m, x, n, h, w, without) == EFFNET_OK);
    m->plan.set_count = sets;
    CHECK_MSG(max_rel(with, without, 5 * (size_t)n) == 0.0, "planes change the logits: %g",
              max_rel(with, without, 5 * (size_t)n));
  }
  effnet_model_free(m);
  free(x);
  effnet_spec s;
  CHECK(effnet_spec_from_name(&s, "b0", NULL) == EFFNET_OK);
  CHECK(effnet_model_create(&m, &s, 5, NULL) == EFFNET_OK);
  effnet_model_set_threads(m, 1);
  x = random_input(1, 224, 224, 7);
  float *logits = malloc(1000 * sizeof *logits);
  CHECK(effnet_model_forward(m, x, 1, 224, 224, logits) == EFFNET_OK);
  int64_t most = EN_MEMORY_L2S * en_l2_bytes();
  int expect = (most >= 672 * 16 * 16 * 4) + (most >= 1152 * 9 * 9 * 4);
  CHECK_EQ_INT(m->plan.set_count, expect);
  for (int i = 0; i < m->plan.set_count; i++) {
    const en_plane_set *set = &m->plan.sets[i];
    int side = set->h == 14 ? 16 : 9;
    CHECK_MSG(set->h == set->w && (set->h == 14 || set->h == 7) &&
                  set->channels == (set->h == 14 ? 672 : 1152) && set->planes.rows == side &&
                  set->planes.cols == side && set->planes.pad_top == 2 &&
                  set->planes.pad_left == 2,
              "B0 plane set %d: %d x %d, %d channels, planes %d x %d at %d, %d", i, set->h,
              set->w, set->channels, set->planes.rows, set->planes.cols, set->planes.pad_top,
              set->planes.pad_left);
  }
  effnet_model_free(m);
  free(x), free(logits);
}

/* The profile's multiply-adds must add up to the analytic count (per image, times batch). */
static void check_profile(effnet_model *m, int n, int h, int w) {
  float *x = random_input(n, h, w, 11), y[20];
  effnet_info info;
  CHECK(effnet_spec_describe(effnet_model_spec(m), h, w, &info, NULL) == EFFNET_OK);
  CHECK(effnet_model_set_profiling(m, 1) == EFFNET_OK);
  CHECK(effnet_model_forward(m, x, n, h, w, y) == EFFNET_OK);
  effnet_profile prof;
  CHECK(effnet_model_profile(m, &prof) == EFFNET_OK);
  int64_t macs = 0;
  for (int k = 0; k < EFFNET_OP_KINDS; k++) {
    macs += prof.macs[k];
    CHECK(prof.seconds[k] >= 0.0);
  }
  CHECK_MSG(macs == n * info.macs, "profile macs %lld vs %lld", (long long)macs,
            (long long)(n * info.macs));
  /* the stem runs alone, or fused with the first block's depthwise conv (en_fuse_stem) */
  int fused = en_fuse_stem(&m->arch);
  CHECK_EQ_INT(prof.calls[EFFNET_OP_STEM_DW], fused);
  CHECK_EQ_INT(prof.calls[EFFNET_OP_STEM], !fused);
  CHECK_EQ_INT(prof.calls[EFFNET_OP_DEPTHWISE] + prof.calls[EFFNET_OP_STEM_DW],
               m->arch.num_blocks);
  CHECK_EQ_INT(prof.calls[EFFNET_OP_SE], m->arch.num_blocks);
  /* the parts split each kind's time: they add up to it, and a kind has time only in the parts
   * where it runs (the stem, alone or fused, in part 0, blocks in 1..7, the classifier in the
   * head) */
  for (int k = 0; k < EFFNET_OP_KINDS; k++) {
    double sum = 0;
    for (int s = 0; s < EFFNET_PROFILE_STAGES; s++) sum += prof.stage_seconds[s][k];
    CHECK_MSG(fabs(sum - prof.seconds[k]) <= 1e-9 * prof.seconds[k] + 1e-12,
              "kind %d: parts %g vs %g s", k, sum, prof.seconds[k]);
  }
  for (int s = 0; s < EFFNET_PROFILE_STAGES; s++) {
    int stem = s == 0, head = s == EFFNET_PROFILE_STAGES - 1;
    if (!stem) CHECK(prof.stage_seconds[s][EFFNET_OP_STEM] == 0.0);
    if (!stem) CHECK(prof.stage_seconds[s][EFFNET_OP_STEM_DW] == 0.0);
    if (!head) CHECK(prof.stage_seconds[s][EFFNET_OP_LINEAR] == 0.0);
    if (stem || head) CHECK(prof.stage_seconds[s][EFFNET_OP_SE] == 0.0);
  }
  effnet_model_set_profiling(m, 0);
  free(x);
}

/* A model whose first block has no skip connection (width 0.5: 16 stem channels, 8 out). */
static effnet_model *stem_fused(uint64_t seed) {
  effnet_spec s;
  effnet_model *m = NULL;
  effnet_spec_custom(&s, EFFNET_FAMILY_B, 0.5, 0.34, 64, NULL);
  s.num_classes = 4;
  CHECK(effnet_model_create(&m, &s, seed, NULL) == EFFNET_OK);
  return m;
}

static void test_profile(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 7); /* width 0.25: the first block has a skip */
  CHECK(!en_fuse_stem(&m->arch));
  check_profile(m, 2, 40, 56);
  effnet_model_free(m);
  m = stem_fused(7);
  CHECK(en_fuse_stem(&m->arch));
  check_profile(m, 2, 40, 56);
  check_profile(m, 1, 33, 30);
  effnet_model_free(m);
  CHECK(!strcmp(effnet_op_kind_name(EFFNET_OP_SE), "se"));
  CHECK(!strcmp(effnet_op_kind_name(EFFNET_OP_STEM_DW), "stem+dw"));
}

/* The stem fused with the first depthwise conv (no hook) against the two apart (a feature hook
 * turns the fusion off: it shows the stem's output), on one and two threads, batch 1 (two
 * threads share the image in row bands) and 3 (image lanes on two threads): the same logits to
 * float rounding. */
static void test_stem_fusion(void) {
  effnet_model *m = stem_fused(12);
  int calls = 0;
  for (int n = 1; n <= 3; n += 2) {
    float *x = random_input(n, 47, 61, 29), fused[12], apart[12];
    for (int threads = 1; threads <= 2; threads++) {
      CHECK(effnet_model_set_threads(m, threads) == EFFNET_OK);
      effnet_model_set_feature_hook(m, NULL, NULL);
      CHECK(effnet_model_forward(m, x, n, 47, 61, fused) == EFFNET_OK);
      effnet_model_set_feature_hook(m, count_hook, &calls);
      CHECK(effnet_model_forward(m, x, n, 47, 61, apart) == EFFNET_OK);
      CHECK_MSG(max_rel(fused, apart, (size_t)n * 4) < 1e-5, "stem fused vs apart n %d, %d "
                "threads: %g", n, threads, max_rel(fused, apart, (size_t)n * 4));
    }
    free(x);
  }
  CHECK(calls > 0);
  effnet_model_free(m);
}

#if defined(__x86_64__) || defined(__SSE2__)
#include <omp.h>
#include <xmmintrin.h>

static void csr_in_hook(void *user, const char *name, const float *data, int n, int h, int w,
                        int c) {
  (void)name, (void)data, (void)n, (void)h, (void)w, (void)c;
  *(unsigned *)user &= _mm_getcsr();
}

/* The forward pass flushes subnormals (FTZ + DAZ, src/infer/forward.c) while it runs, and
 * leaves every thread's MXCSR as it found it. */
static void test_denormal_mode(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 5, 3);
  float *x = random_input(2, 32, 32, 5), y[10];
  unsigned before = _mm_getcsr(), during = ~0u;
  effnet_model_set_feature_hook(m, csr_in_hook, &during);
  CHECK(effnet_model_forward(m, x, 2, 32, 32, y) == EFFNET_OK);
  CHECK_MSG((during & 0x8040u) == 0x8040u, "MXCSR during the forward pass: %#x", during);
  CHECK_MSG(_mm_getcsr() == before, "MXCSR after: %#x, before %#x", _mm_getcsr(), before);
  int leaked = 0;
#pragma omp parallel reduction(+ : leaked)
  leaked += (_mm_getcsr() & 0x8040u) != (before & 0x8040u);
  CHECK_MSG(leaked == 0, "%d threads kept flush-to-zero", leaked);
  effnet_model_free(m);
  free(x);
}
#else
static void test_denormal_mode(void) {}
#endif

static void test_forward_errors(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 4, 4);
  float x[3 * 8 * 8] = {0}, y[4];
  CHECK(effnet_model_forward(m, x, 0, 8, 8, y) == EFFNET_E_SHAPE);
  CHECK(strstr(effnet_model_error(m), "(0, 3, 8, 8)") != NULL);
  CHECK(effnet_model_forward(m, x, 1, 8, 100000, y) == EFFNET_E_LIMIT);
  CHECK(effnet_model_forward(m, NULL, 1, 8, 8, y) == EFFNET_E_ARGUMENT);
  effnet_model_free(m);
  effnet_model_free(NULL);
  CHECK(effnet_model_forward(NULL, x, 1, 8, 8, y) == EFFNET_E_ARGUMENT);
}

/* Files that lie: one tensor missing, one extra, a wrong shape, a wrong dtype. */
static void test_bad_weights(void) {
  effnet_model *m = tiny(EFFNET_FAMILY_B, 3, 6), *out = (effnet_model *)1;
  const en_params *p = &m->params;
  int count = p->count;
  st_write_tensor *ts = calloc((size_t)count + 1, sizeof *ts);
  char(*names)[128] = calloc((size_t)count + 1, 128);
  int64_t ints[64] = {0};
  for (int i = 0; i < count; i++) {
    en_param_name(&m->arch, &p->table[i], EN_NAMING_TIMM, names[i], 128);
    ts[i] = (st_write_tensor){names[i], ST_F32, p->table[i].ndim, {0}, en_param_ptr(p, i)};
    for (int d = 0; d < ts[i].ndim; d++) ts[i].shape[d] = p->table[i].shape[d];
  }
  effnet_error err = {{0}};
  const char *path = tmp("bad.safetensors");
  /* missing: drop the last block's depthwise BN variance */
  int victim = p->blocks[m->arch.num_blocks - 1].dw_bn.var;
  st_write_tensor saved = ts[victim];
  ts[victim] = ts[count - 1];
  st_write(path, ts, (size_t)count - 1, NULL, 0, NULL);
  CHECK(effnet_model_load(&out, path, NULL, &err) == EFFNET_E_MISSING && out == NULL);
  CHECK_MSG(strstr(err.message, names[victim]) && strstr(err.message, path), "%s", err.message);
  ts[victim] = saved;
  /* extra */
  snprintf(names[count], 128, "blocks.0.0.surprise");
  ts[count] = ts[0];
  ts[count].name = names[count];
  st_write(path, ts, (size_t)count + 1, NULL, 0, NULL);
  CHECK(effnet_model_load(&out, path, NULL, &err) == EFFNET_E_MISSING);
  CHECK_MSG(strstr(err.message, "surprise") != NULL, "%s", err.message);
  /* wrong shape */
  ts[p->fc_b].shape[0] = 2;
  st_write(path, ts, (size_t)count, NULL, 0, NULL);
  CHECK(effnet_model_load(&out, path, NULL, &err) == EFFNET_E_SHAPE);
  CHECK_MSG(strstr(err.message, "classifier.bias") != NULL, "%s", err.message);
  ts[p->fc_b].shape[0] = 3;
  /* wrong dtype: an integer tensor where floats belong */
  st_write_tensor keep = ts[p->fc_b];
  ts[p->fc_b].dtype = ST_I64;
  ts[p->fc_b].data = ints;
  st_write(path, ts, (size_t)count, NULL, 0, NULL);
  CHECK(effnet_model_load(&out, path, NULL, &err) == EFFNET_E_SHAPE);
  CHECK_MSG(strstr(err.message, "classifier.bias") != NULL, "%s", err.message);
  ts[p->fc_b] = keep;
  /* a model name that does not fit the file */
  st_write(path, ts, (size_t)count, NULL, 0, NULL);
  effnet_load_options opt = {"b0", EFFNET_PAD_AUTO, 0.0f};
  CHECK(effnet_model_load(&out, path, &opt, &err) == EFFNET_E_SHAPE);
  opt.model = "b99";
  CHECK(effnet_model_load(&out, path, &opt, &err) == EFFNET_E_ARGUMENT);
  CHECK(effnet_model_load(&out, tmp("absent.safetensors"), NULL, &err) == EFFNET_E_IO);
  CHECK(strstr(err.message, "absent.safetensors") != NULL);
  /* not an EfficientNet at all */
  st_write(path, ts + 5, 3, NULL, 0, NULL);
  CHECK(effnet_model_load(&out, path, NULL, &err) == EFFNET_E_MISSING);
  free(ts);
  free(names);
  effnet_model_free(m);
}

int main(void) {
  if (!mkdtemp(tmpdir)) return 1;
  test_names_and_rounding();
  test_round_trips();
  test_invariances();
  test_image_lanes();
  test_placement_bounds();
  test_placement_in_plan();
  test_big_alloc();
  test_batch_split();
  test_plane_sets();
  test_profile();
  test_stem_fusion();
  test_denormal_mode();
  test_forward_errors();
  test_bad_weights();
  const char *files[] = {"own.safetensors", "other.safetensors", "bad.safetensors"};
  for (size_t i = 0; i < 3; i++) unlink(tmp(files[i]));
  rmdir(tmpdir);
  return TEST_SUMMARY();
}
