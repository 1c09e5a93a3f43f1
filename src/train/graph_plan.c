/* The training arena: every tensor backward needs, carved from one allocation in the order
 * the forward pass produces them. Sizing and carving run the same code (carve with a NULL base
 * only counts), so the two cannot disagree. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/graph.h"
#include "train/tkernels.h"

typedef struct carver {
  float *base;
  size_t used; /* floats */
} carver;

static float *carve(carver *c, int64_t floats) {
  float *p = c->base ? c->base + c->used : NULL;
  c->used += ((size_t)floats + 15) / 16 * 16; /* 64-byte alignment for every tensor */
  return p;
}

static void carve_unit(carver *c, en_tunit *u, int64_t rows, int channels) {
  u->x = carve(c, rows * channels);
  u->mean = carve(c, channels);
  u->var = carve(c, channels);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Carves the block tensors; returns the largest activation (floats) it saw. */
static int64_t carve_block(carver *c, const en_block *b, en_tblock *t, int n, int h, int w) {
  int64_t rows_in = (int64_t)n * h * w;
  t->h = h;
  t->w = w;
  t->oh = en_conv_out(h, b->stride);
  t->ow = en_conv_out(w, b->stride);
  int64_t rows_out = (int64_t)n * t->oh * t->ow;
  memset(&t->expand, 0, sizeof t->expand);
  t->expanded = NULL;
  if (b->expand != 1) {
    carve_unit(c, &t->expand, rows_in, b->mid_ch);
    t->expanded = carve(c, rows_in * b->mid_ch);
  }
  carve_unit(c, &t->dw, rows_out, b->mid_ch);
  t->dw_act = carve(c, rows_out * b->mid_ch);
  t->se_out = t->pool = t->hidden = t->gate = NULL;
  if (b->se_ch) {
    t->se_out = carve(c, rows_out * b->mid_ch);
    t->pool = carve(c, (int64_t)n * b->mid_ch);
    t->hidden = carve(c, (int64_t)n * b->se_ch);
    t->gate = carve(c, (int64_t)n * b->mid_ch);
  }
  carve_unit(c, &t->project, rows_out, b->out_ch);
  t->out = carve(c, rows_out * b->out_ch);
  t->keep = carve(c, n);
  t->dw_w = carve(c, (int64_t)b->kernel * b->kernel * b->mid_ch);
  t->dw_g = carve(c, (int64_t)b->kernel * b->kernel * b->mid_ch);
  return max64(rows_in * b->mid_ch, max64(rows_out * b->mid_ch, rows_out * b->out_ch));
}

/* The largest packed 1x1 weights (either orientation) of any layer, classifier included, or
 * the partial weight gradients of the threads beyond the first (their number at planning time,
 * at most 15), whichever is more. */
static size_t packed_floats(const en_arch *a) {
  int last = a->blocks[a->num_blocks - 1].out_ch, threads = omp_get_max_threads();
  size_t m = en_pointwise_scratch_floats(last, a->head_ch), wmax = (size_t)last * a->head_ch;
  size_t fc = en_pointwise_scratch_floats(a->head_ch, a->num_classes);
  size_t stem = en_gemm_packed_floats(27, a->stem_ch);
  m = fc > m ? fc : m;
  m = stem > m ? stem : m;
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    size_t e = en_pointwise_scratch_floats(b->in_ch, b->mid_ch);
    size_t p = en_pointwise_scratch_floats(b->mid_ch, b->out_ch);
    m = e > m ? e : m;
    m = p > m ? p : m;
    size_t we = (size_t)b->in_ch * b->mid_ch, wp = (size_t)b->mid_ch * b->out_ch;
    wmax = we > wmax ? we : wmax;
    wmax = wp > wmax ? wp : wmax;
  }
  size_t partials = (size_t)((threads < 16 ? threads : 16) - 1) * wmax;
  return partials > m ? partials : m;
}

/* The stem's scratch: its patches (one image) or its weight gradient's partial sums. */
static size_t stem_scratch(int n, int h, int w, int stem_ch) {
  en_conv_desc d = {n, h, w, 3, stem_ch, 3, 2, 0, 0, en_conv_out(h, 2), en_conv_out(w, 2),
                    EN_ACT_NONE};
  size_t a = en_conv_scratch_floats(&d), b = en_conv_backward_weight_scratch(&d);
  return a > b ? a : b;
}

static void carve_all(carver *c, en_tgraph *g, const en_arch *a, int n, int h, int w) {
  g->stem_h = en_conv_out(h, 2);
  g->stem_w = en_conv_out(w, 2);
  int64_t rows = (int64_t)n * g->stem_h * g->stem_w;
  carve_unit(c, &g->stem, rows, a->stem_ch);
  g->stem_act = carve(c, rows * a->stem_ch);
  g->stem_w_ohwi = carve(c, (int64_t)a->stem_ch * 27);
  g->stem_g = carve(c, (int64_t)a->stem_ch * 27);
  int64_t largest = rows * a->stem_ch;
  int bh = g->stem_h, bw = g->stem_w, widest = a->head_ch;
  for (int i = 0; i < a->num_blocks; i++) {
    en_tblock *t = g->blocks ? &g->blocks[i] : &(en_tblock){0};
    largest = max64(largest, carve_block(c, &a->blocks[i], t, n, bh, bw));
    bh = t->oh;
    bw = t->ow;
    if (a->blocks[i].mid_ch > widest) widest = a->blocks[i].mid_ch;
  }
  rows = (int64_t)n * bh * bw;
  carve_unit(c, &g->head, rows, a->head_ch);
  g->head_act = carve(c, rows * a->head_ch);
  largest = max64(largest, rows * a->head_ch);
  g->pooled = carve(c, (int64_t)n * a->head_ch);
  g->dropped = carve(c, (int64_t)n * a->head_ch);
  g->drop_mask = carve(c, (int64_t)n * a->head_ch);
  g->logits = carve(c, (int64_t)n * a->num_classes);
  g->dlogits = carve(c, (int64_t)n * a->num_classes);
  for (int k = 0; k < 3; k++) g->grads[k] = carve(c, largest);
  g->packed_floats = packed_floats(a);
  g->packed = carve(c, (int64_t)g->packed_floats);
  g->stem_scratch = carve(c, (int64_t)stem_scratch(n, h, w, a->stem_ch));
  g->se_scratch = carve(c, (int64_t)n * (2 * widest + 2 * widest));
}

size_t en_tgraph_bytes(const en_arch *arch, int max_n, int h, int w) {
  en_tgraph g;
  memset(&g, 0, sizeof g);
  carver c = {NULL, 0};
  carve_all(&c, &g, arch, max_n, h, w);
  return c.used * sizeof(float);
}

effnet_status en_tgraph_init(en_tgraph *g, const en_arch *arch, const en_params *params,
                             int max_n, int h, int w, size_t max_bytes, effnet_error *err) {
  memset(g, 0, sizeof *g);
  if (max_n < 1 || h < 1 || w < 1 || h > 16384 || w > 16384 || max_n > 65536)
    return en_fail(err, EFFNET_E_ARGUMENT, "training batch %d of %dx%d is out of range", max_n,
                   h, w);
  size_t bytes = en_tgraph_bytes(arch, max_n, h, w);
  if (bytes > max_bytes)
    return en_fail(err, EFFNET_E_LIMIT,
                   "training batch %d at %dx%d needs %.2f GiB of activations (limit %.2f GiB): "
                   "use a smaller --batch or resolution", max_n, h, w, bytes / 1073741824.0,
                   max_bytes / 1073741824.0);
  g->arch = arch;
  g->max_n = max_n;
  g->h = h;
  g->w = w;
  g->blocks = calloc((size_t)arch->num_blocks, sizeof *g->blocks);
  g->arena = aligned_alloc(64, (bytes + 63) / 64 * 64);
  g->grad_floats = params->total;
  g->grad = aligned_alloc(64, ((size_t)params->total * sizeof(float) + 63) / 64 * 64);
  if (!g->blocks || !g->arena || !g->grad) {
    en_tgraph_free(g);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory for the training arena (%.2f GiB)",
                   bytes / 1073741824.0);
  }
  memset(g->grad, 0, (size_t)params->total * sizeof(float));
  carver c = {g->arena, 0};
  carve_all(&c, g, arch, max_n, h, w);
  g->arena_floats = c.used;
  return EFFNET_OK;
}

void en_tgraph_free(en_tgraph *g) {
  if (!g) return;
  free(g->arena);
  free(g->blocks);
  free(g->grad);
  memset(g, 0, sizeof *g);
}
