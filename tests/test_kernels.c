/* Every fast kernel against the reference kernel on random shapes: odd channel counts,
 * stride 1 and 2, kernels 1/3/5, non-square inputs, symmetric and TF-SAME padding, batch > 1.
 * Tolerance: 1e-5 relative to the output scale; the kernels differ only in summation order
 * (float32 eps 6e-8 times sqrt of the reduction length stays well below it). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/vec16.h"
#include "kernels/vexp.h"
#include "testutil.h"

static uint64_t rng = 0x1234567ull;

static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static int irand(int lo, int hi) { return lo + (int)((frand() + 1.0f) * 0.5f * (hi - lo + 1)) % (hi - lo + 1); }

static float *randv(size_t n) {
  float *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = frand();
  return v;
}

/* randv on a 64-byte boundary (malloc's large blocks sit 16 bytes past a page): output buffers
 * the depthwise kernels may write with non-temporal stores, which need aligned vectors */
static float *randv64(size_t n) {
  float *v = aligned_alloc(64, (n * sizeof *v + 63) / 64 * 64 + 64);
  for (size_t i = 0; i < n; i++) v[i] = frand();
  return v;
}

static double rel_err(const float *a, const float *b, size_t n) {
  double max_diff = 0.0, scale = 1e-6;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > max_diff || d != d) max_diff = d != d ? INFINITY : d;
    if (fabs(b[i]) > scale) scale = fabs(b[i]);
  }
  return max_diff / scale;
}

static en_conv_desc random_desc(int depthwise) {
  en_conv_desc d;
  static const int kernels[] = {1, 3, 5};
  d.n = irand(1, 3);
  d.h = irand(1, 19);
  d.w = irand(1, 23);
  d.cin = depthwise ? irand(1, 37) : irand(1, 13);
  d.cout = depthwise ? d.cin : irand(1, 29);
  d.kernel = kernels[irand(depthwise ? 1 : 0, 2)];
  d.stride = irand(1, 2);
  int pb, pr;
  effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
  en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
  d.oh = en_conv_out(d.h, d.stride);
  d.ow = en_conv_out(d.w, d.stride);
  d.act = (en_act)irand(0, 2);
  return d;
}

static void test_conv(void) {
  for (int t = 0; t < 200; t++) {
    en_conv_desc d = random_desc(0);
    if (t % 4 == 0) { /* the stem: RGB, 3x3, stride 2, 30-80 output channels (two+ panels) */
      int pb, pr;
      effnet_padding pad = t % 8 ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
      d.cin = 3, d.kernel = 3, d.stride = 2, d.cout = irand(30, 80);
      d.h = irand(1, 41), d.w = irand(1, 37);
      en_padding(pad, d.h, 3, 2, &d.pad_top, &pb);
      en_padding(pad, d.w, 3, 2, &d.pad_left, &pr);
      d.oh = en_conv_out(d.h, 2), d.ow = en_conv_out(d.w, 2);
    }
    size_t in_n = (size_t)d.n * d.h * d.w * d.cin, out_n = (size_t)d.n * d.oh * d.ow * d.cout;
    float *in = randv(in_n), *w = randv((size_t)d.cout * d.kernel * d.kernel * d.cin);
    float *bias = randv(d.cout), *a = randv(out_n), *b = randv(out_n);
    float *scratch = randv(en_conv_scratch_floats(&d));
    en_kernels_ref.conv(a, in, w, bias, &d, NULL);
    en_kernels_fast.conv(b, in, w, bias, &d, scratch);
    CHECK_MSG(rel_err(b, a, out_n) < 1e-5, "conv n%d %dx%d %d->%d k%d s%d: %g", d.n, d.h, d.w,
              d.cin, d.cout, d.kernel, d.stride, rel_err(b, a, out_n));
    /* dense (the stem op): packed weights, direct below EN_DENSE_TAPS taps, against the naive
     * conv; without bias every third case */
    int taps = d.kernel * d.kernel * d.cin;
    float *packed = randv(en_gemm_packed_floats(taps, d.cout)), *c = randv(out_n);
    en_gemm_pack(packed, w, taps, d.cout);
    const float *bias_or_null = t % 3 ? bias : NULL;
    if (!bias_or_null) en_kernels_ref.conv(a, in, w, NULL, &d, NULL);
    en_kernels_ref.dense(b, in, packed, bias_or_null, &d, scratch);
    en_kernels_fast.dense(c, in, packed, bias_or_null, &d, scratch);
    CHECK_MSG(rel_err(b, a, out_n) < 1e-5 && rel_err(c, a, out_n) < 1e-5,
              "dense n%d %dx%d %d->%d k%d s%d taps %d: ref %g fast %g", d.n, d.h, d.w, d.cin,
              d.cout, d.kernel, d.stride, taps, rel_err(b, a, out_n), rel_err(c, a, out_n));
    free(in), free(w), free(bias), free(a), free(b), free(scratch), free(packed), free(c);
  }
}

/* Whether the fast depthwise (fused: with the expand) gives the same bits, outputs and pooled
 * sums, on one thread and on three (images split in row bands, channel groups), as got and
 * gpool from the default team. */
static int same_on_1_and_3_threads(const en_conv_desc *d, const float *in, const float *w,
                                   const float *bias, const float *got, const float *gpool,
                                   int cin, const float *packed, const float *eb) {
  size_t on = (size_t)d->n * d->oh * d->ow * d->cout, pn = (size_t)d->n * d->cout;
  float *o = randv64(on), *pool = randv(pn);
  float *scratch = randv(packed ? en_expand_depthwise_scratch(d, 3) : 0);
  int previous = omp_get_max_threads(), same = 1;
  for (int threads = 1; threads <= 3; threads += 2) {
    omp_set_num_threads(threads);
    if (packed)
      en_kernels_fast.expand_depthwise(o, pool, in, cin, packed, eb, w, bias, d, NULL, scratch);
    else
      en_kernels_fast.depthwise(o, in, w, bias, d, pool);
    same = same && !memcmp(o, got, on * sizeof *o) && !memcmp(pool, gpool, pn * sizeof *pool);
  }
  omp_set_num_threads(previous);
  free(o), free(pool), free(scratch);
  return same;
}

static void test_depthwise(void) {
  for (int t = 0; t < 240; t++) {
    en_conv_desc d = random_desc(1);
    en_dw_stream_least = t % 2; /* odd cases: outputs written with non-temporal stores */
    /* every third case has the wide channel counts of real blocks (many 16-channel blocks, a
     * ragged last one), where the fast kernel fuses the pooling instead of a second pass */
    static const int wide[] = {48, 96, 100, 144, 232};
    if (t % 3 == 0) d.cin = d.cout = wide[irand(0, 4)];
    if (t % 8 == 5) { /* images too big for the small-image kernel: the row kernel, whose whole
                       * blocks go pixel group by pixel group in runs of up to 32 */
      static const int big[] = {32, 100, 264, 520, 600};
      int pb, pr;
      effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
      d.n = irand(1, 2), d.h = irand(41, 60), d.w = irand(41, 70);
      d.cin = d.cout = big[irand(0, 4)];
      en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
      en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
      d.oh = en_conv_out(d.h, d.stride), d.ow = en_conv_out(d.w, d.stride);
    }
    size_t in_n = (size_t)d.n * d.h * d.w * d.cin, out_n = (size_t)d.n * d.oh * d.ow * d.cout;
    float *in = randv(in_n), *w = randv((size_t)d.kernel * d.kernel * d.cin);
    float *bias = randv(d.cin), *a = randv(out_n), *b = randv64(out_n);
    float *pa = randv((size_t)d.n * d.cin), *pb = randv((size_t)d.n * d.cin);
    en_kernels_ref.depthwise(a, in, w, bias, &d, pa);
    en_kernels_fast.depthwise(b, in, w, bias, &d, pb);
    CHECK_MSG(rel_err(b, a, out_n) < 1e-5, "depthwise n%d %dx%d c%d k%d s%d", d.n, d.h, d.w,
              d.cin, d.kernel, d.stride);
    CHECK_MSG(rel_err(pb, pa, (size_t)d.n * d.cin) < 1e-5, "depthwise pool c%d", d.cin);
    CHECK_MSG(same_on_1_and_3_threads(&d, in, w, bias, b, pb, 0, NULL, NULL),
              "depthwise n%d %dx%d c%d k%d s%d: thread count changes the result", d.n, d.h, d.w,
              d.cin, d.kernel, d.stride);
    free(in), free(w), free(bias), free(a), free(b), free(pa), free(pb);
  }
  en_dw_stream_least = 0;
}

static void test_pointwise_linear_pool_add(void) {
  for (int t = 0; t < 100; t++) {
    int64_t rows = irand(1, 300);
    /* every fifth: more input channels than one KC block (gemm.c), so tiles resume partial sums */
    int cin = t % 5 == 0 ? irand(385, 1200) : irand(1, 70), cout = irand(1, 70);
    en_act act = (en_act)irand(0, 3);
    float *in = randv((size_t)rows * cin), *w = randv((size_t)cout * cin), *bias = randv(cout);
    float *a = randv((size_t)rows * cout), *b = randv((size_t)rows * cout);
    en_kernels_ref.pointwise(a, in, w, bias, rows, cin, cout, act);
    en_kernels_fast.pointwise(b, in, w, bias, rows, cin, cout, act);
    CHECK_MSG(rel_err(b, a, (size_t)rows * cout) < 1e-5, "pointwise %lld x %d -> %d",
              (long long)rows, cin, cout);
    int n = irand(1, rows < 4 ? (int)rows : 4); /* rows of `in` used as n inputs */
    float *la = randv((size_t)n * (cin + cout)), *lb = randv((size_t)n * (cin + cout));
    en_kernels_ref.linear(la, in, w, bias, n, cin, cout);
    en_kernels_fast.linear(lb, in, w, bias, n, cin, cout);
    CHECK(rel_err(lb, la, (size_t)n * cout) < 1e-5);
    int64_t hw = rows / n;
    en_kernels_ref.pool(la, in, n, hw, cin);
    en_kernels_fast.pool(lb, in, n, hw, cin);
    CHECK(rel_err(lb, la, (size_t)n * cin) < 1e-5);
    free(la), free(lb);
    memcpy(a, in, (size_t)rows * sizeof(float));
    memcpy(b, in, (size_t)rows * sizeof(float));
    en_kernels_ref.add(a, w, rows < cout * cin ? rows : cout * cin);
    en_kernels_fast.add(b, w, rows < cout * cin ? rows : cout * cin);
    CHECK(rel_err(b, a, (size_t)rows) == 0.0);
    free(in), free(w), free(bias), free(a), free(b);
  }
}

static void test_se(void) {
  for (int t = 0; t < 100; t++) {
    int n = irand(1, 3), C = irand(1, 67), se = irand(1, 17);
    if (t % 10 == 0) C = irand(600, 1200), se = irand(25, 50); /* late stages: split over threads */
    int64_t hw = irand(1, 50);
    size_t xn = (size_t)n * hw * C;
    float *x = randv(xn), *xa = malloc(xn * sizeof *xa), *xb = malloc(xn * sizeof *xb);
    float *pool = randv((size_t)n * C), *w1 = randv((size_t)se * C), *b1 = randv(se);
    float *w2 = randv((size_t)se * C), *b2 = randv(C), *scratch = randv((size_t)se + C);
    memcpy(xa, x, xn * sizeof *x);
    memcpy(xb, x, xn * sizeof *x);
    en_act act = irand(0, 1) ? EN_ACT_SWISH : EN_ACT_RELU6;
    en_kernels_ref.se(xa, pool, w1, b1, w2, b2, n, hw, C, se, act, scratch);
    en_kernels_fast.se(xb, pool, w1, b1, w2, b2, n, hw, C, se, act, scratch);
    CHECK_MSG(rel_err(xb, xa, xn) < 1e-5, "se n%d C%d se%d hw%lld", n, C, se, (long long)hw);
    free(x), free(xa), free(xb), free(pool), free(w1), free(b1), free(w2), free(b2), free(scratch);
  }
}

/* The packed GEMM: the reference (which reads the packed layout) against ref pointwise on the
 * plain weights plus a residual, then the fast kernel against the reference. Shapes cover the
 * micro-kernel's row and panel tails, more input channels than one KC block (384), the
 * split over panel groups (few rows, many output channels) and row blocks sized by the L2
 * (weights of megabytes). */
static void test_gemm(void) {
  for (int t = 0; t < 160; t++) {
    int64_t rows = t % 4 == 0 ? irand(1, 13) : irand(1, 400);
    int cin = t % 5 == 0 ? irand(380, 1200) : irand(1, 70);
    int cout = t % 4 == 0 ? irand(60, 340) : irand(1, 70);
    if (t == 7 || t == 87) /* weights beyond a quarter of the L2: few large row blocks */
      rows = irand(300, 700), cin = irand(400, 600), cout = irand(1100, 1400);
    if (t == 47 || t == 127) { /* input beyond EN_MEMORY_L2S L2s: the first panel prefetches
                                  * its rows and each row block the next one's, for one K block
                                  * (47) or the first of several (127) */
      cin = t == 47 ? irand(180, 230) : irand(400, 600), cout = irand(17, 40);
      rows = EN_MEMORY_L2S * en_l2_bytes() / ((int64_t)cin * (int64_t)sizeof(float)) +
             irand(1, 2000);
    }
    if (t == 27 || t == 107) /* one row block of an odd panel count, no activation: equal
                              * shares of work, a panel cut between threads by rows */
      rows = irand(64, 140), cin = irand(100, 300), cout = irand(209, 240);
    en_act act = t == 27 || t == 107 ? EN_ACT_NONE : (en_act)irand(0, 3);
    size_t on = (size_t)rows * cout;
    float *in = randv((size_t)rows * cin), *w = randv((size_t)cout * cin), *bias = randv(cout);
    float *res = randv(on), *plain = randv(on), *a = randv(on), *b = randv(on);
    float *packed = randv(en_gemm_packed_floats(cin, cout));
    en_gemm_pack(packed, w, cin, cout);
    const float *bias_or_null = t % 3 == 1 ? NULL : bias, *res_or_null = t % 2 ? res : NULL;
    en_kernels_ref.pointwise(plain, in, w, bias_or_null, rows, cin, cout, act);
    if (res_or_null)
      for (size_t i = 0; i < on; i++) plain[i] += res[i];
    en_kernels_ref.gemm(a, in, packed, bias_or_null, res_or_null, rows, cin, cout, act);
    en_kernels_fast.gemm(b, in, packed, bias_or_null, res_or_null, rows, cin, cout, act);
    CHECK_MSG(rel_err(a, plain, on) < 1e-6, "gemm ref vs pointwise %lld x %d -> %d",
              (long long)rows, cin, cout);
    CHECK_MSG(rel_err(b, a, on) < 1e-5, "gemm fast %lld x %d -> %d act %d: %g", (long long)rows,
              cin, cout, act, rel_err(b, a, on));
    /* each output element is summed by one thread in one order (gemm.c): the same bits on one
     * thread and on three (runs of panels or row blocks of unequal length) */
    int previous = omp_get_max_threads();
    for (int nt = 1; nt <= 3; nt += 2) {
      omp_set_num_threads(nt);
      memset(plain, 0xff, on * sizeof *plain); /* NaN: no element left from before */
      en_kernels_fast.gemm(plain, in, packed, bias_or_null, res_or_null, rows, cin, cout, act);
      CHECK_MSG(!memcmp(plain, b, on * sizeof *b), "gemm fast %lld x %d -> %d act %d: %d threads",
                (long long)rows, cin, cout, act, nt);
    }
    omp_set_num_threads(previous);
    free(in), free(w), free(bias), free(res), free(plain), free(a), free(b), free(packed);
  }
}

/* en_gemm_pack_transposed(w) == en_gemm_pack of the explicit transpose, bit for bit. */
static void test_pack_transposed(void) {
  for (int t = 0; t < 40; t++) {
    int cin = t % 4 == 0 ? irand(200, 700) : irand(1, 70), cout = irand(1, 90);
    size_t nf = en_gemm_packed_floats(cout, cin);
    float *w = randv((size_t)cout * cin), *wt = randv((size_t)cout * cin);
    float *a = randv(nf), *b = randv(nf);
    for (int co = 0; co < cout; co++)
      for (int ci = 0; ci < cin; ci++) wt[(size_t)ci * cout + co] = w[(size_t)co * cin + ci];
    en_gemm_pack(a, wt, cout, cin);
    en_gemm_pack_transposed(b, w, cin, cout);
    CHECK_MSG(memcmp(a, b, nf * sizeof *a) == 0, "pack_transposed cin %d cout %d", cin, cout);
    free(w), free(wt), free(a), free(b);
  }
}

/* se_gate + gate folded into packed projection weights == se (scales x) + plain GEMM. */
static void test_se_gate_folded(void) {
  for (int t = 0; t < 40; t++) {
    int n = irand(1, 3), C = irand(1, 67), se = irand(1, 17), cout = irand(1, 40);
    int64_t hw = irand(1, 50);
    size_t xn = (size_t)n * hw * C, on = (size_t)n * hw * cout;
    float *x = randv(xn), *pool = randv((size_t)n * C), *w1 = randv((size_t)se * C);
    float *b1 = randv(se), *w2 = randv((size_t)se * C), *b2 = randv(C);
    float *scratch = randv((size_t)se + C), *gate = randv((size_t)n * C);
    float *pw = randv((size_t)cout * C), *packed = randv(en_gemm_packed_floats(C, cout));
    float *gated = randv(en_gemm_packed_floats(C, cout)), *want = randv(on), *got = randv(on);
    en_gemm_pack(packed, pw, C, cout);
    const en_kernels *ks[] = {&en_kernels_ref, &en_kernels_fast};
    for (int k = 0; k < 2; k++) {
      ks[k]->se_gate(gate, pool, w1, b1, w2, b2, n, hw, C, se, EN_ACT_SWISH, scratch);
      for (int b = 0; b < n; b++) {
        en_gemm_pack_scaled(gated, packed, gate + (size_t)b * C, C, cout);
        ks[k]->gemm(got + (size_t)b * hw * cout, x + (size_t)b * hw * C, gated, NULL, NULL, hw,
                    C, cout, EN_ACT_NONE);
      }
      ks[k]->se(x, pool, w1, b1, w2, b2, n, hw, C, se, EN_ACT_SWISH, scratch);
      ks[k]->gemm(want, x, packed, NULL, NULL, (int64_t)n * hw, C, cout, EN_ACT_NONE);
      CHECK_MSG(rel_err(got, want, on) < 1e-5, "%s: gate folded into weights n%d C%d -> %d",
                ks[k]->name, n, C, cout);
    }
    free(x), free(pool), free(w1), free(b1), free(w2), free(b2), free(scratch), free(gate);
    free(pw), free(packed), free(gated), free(want), free(got);
  }
}

/* The fused expand + depthwise (ring of expanded rows per thread, bands per image) against the
 * reference's expand GEMM into a full tensor then depthwise: outputs and SE pooled sums. */
static void test_expand_depthwise(void) {
  for (int t = 0; t < 120; t++) {
    en_conv_desc d = random_desc(1);
    en_dw_stream_least = t % 2; /* odd cases: outputs written with non-temporal stores */
    d.h = irand(1, 40), d.w = irand(1, 40);
    static const int wide[] = {24, 96, 100, 144};
    d.cin = d.cout = t % 3 == 0 ? wide[irand(0, 3)] : irand(1, 40);
    if (t % 10 == 9) { /* a late stage at batch 1: threads share the image by channel groups */
      d.n = 1, d.h = d.w = 14, d.kernel = 5, d.stride = 1 + t % 20 / 10;
      d.cin = d.cout = t % 20 == 9 ? 104 : 672;
    }
    effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
    int pb, pr;
    en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
    en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
    d.oh = en_conv_out(d.h, d.stride);
    d.ow = en_conv_out(d.w, d.stride);
    int cin = irand(1, 20), mid = d.cin;
    if (t % 30 == 28) { /* expand weights over a quarter of the L2 (up to 4.8 MiB): an image
                         * one thread computes alone runs in channel groups (mbconv.c) */
      d.h = d.w = irand(5, 9), d.kernel = 5, d.stride = 1, d.n = irand(1, 3);
      effnet_padding same = EFFNET_PAD_SYMMETRIC;
      int pb0, pr0;
      en_padding(same, d.h, 5, 1, &d.pad_top, &pb0);
      en_padding(same, d.w, 5, 1, &d.pad_left, &pr0);
      d.oh = en_conv_out(d.h, 1), d.ow = en_conv_out(d.w, 1);
      cin = irand(290, 310), mid = d.cin = d.cout = irand(1000, 1100);
    }
    size_t xn = (size_t)d.n * d.h * d.w * cin, on = (size_t)d.n * d.oh * d.ow * mid;
    float *x = randv(xn), *ew = randv((size_t)mid * cin), *eb = randv(mid);
    float *packed = randv(en_gemm_packed_floats(cin, mid)), *dw = randv((size_t)d.kernel * d.kernel * mid);
    float *db = randv(mid), *a = randv(on), *b = randv64(on), *pa = randv((size_t)d.n * mid);
    float *pb2 = randv((size_t)d.n * mid), *expanded = randv((size_t)d.n * d.h * d.w * mid);
    float *scratch = randv(en_expand_depthwise_scratch(&d, omp_get_max_threads()));
    en_gemm_pack(packed, ew, cin, mid);
    en_kernels_ref.expand_depthwise(a, pa, x, cin, packed, eb, dw, db, &d, expanded, scratch);
    en_kernels_fast.expand_depthwise(b, pb2, x, cin, packed, eb, dw, db, &d, NULL, scratch);
    CHECK_MSG(rel_err(b, a, on) < 1e-5, "expand+depthwise n%d %dx%d %d->%d k%d s%d act%d: %g",
              d.n, d.h, d.w, cin, mid, d.kernel, d.stride, d.act, rel_err(b, a, on));
    CHECK_MSG(rel_err(pb2, pa, (size_t)d.n * mid) < 1e-5, "expand+depthwise pool n%d c%d", d.n, mid);
    CHECK_MSG(same_on_1_and_3_threads(&d, x, dw, db, b, pb2, cin, packed, eb),
              "expand+depthwise n%d %dx%d %d->%d: thread count changes the result", d.n, d.h,
              d.w, cin, mid);
    free(x), free(ew), free(eb), free(packed), free(dw), free(db), free(a), free(b), free(pa);
    free(pb2), free(expanded), free(scratch);
  }
  en_dw_stream_least = 0;
}

/* ---- planes ---- */

/* Floats in planes q of C channels: the planes and the rows of zeros after them. */
static size_t planes_floats(const en_planes *q, int C) {
  return (size_t)q->block * (C / EN_PLANE_LANES) +
         (size_t)(q->pad_top + 1) * q->cols * EN_PLANE_LANES;
}

/* Planes for d's input, zeroed, as small as en_planes_fit allows, or (more) with up to 2 more
 * pixels of padding and a row and a column more (planes shared by windows of several sizes). */
static en_planes zero_planes(const en_conv_desc *d, int more) {
  int rows, cols, top = d->pad_top + (more ? irand(0, 2) : 0);
  int left = d->pad_left + (more ? irand(0, 2) : 0);
  en_planes_shape(d, &rows, &cols);
  rows = rows - d->pad_top > top + d->h ? rows - d->pad_top : top + d->h;
  cols = cols - d->pad_left > left + d->w ? cols - d->pad_left : left + d->w;
  en_planes q = {NULL, NULL, 0, rows + (more ? irand(0, 1) : 0),
                 cols + (more ? irand(0, 1) : 0), top, left};
  q.block = (int64_t)d->n * q.rows * q.cols * EN_PLANE_LANES;
  size_t floats = planes_floats(&q, d->cin);
  q.data = aligned_alloc(64, floats * sizeof(float));
  memset(q.data, 0, floats * sizeof(float));
  int64_t *at = malloc((size_t)d->n * d->h * d->w * sizeof *at);
  en_planes_index(at, &q, d->n, d->h, d->w);
  q.at = at;
  return q;
}

/* The NHWC tensor in planes q (n, h, w, C of d); returns how many floats other than the
 * images' pixels are not zero. */
static int64_t from_planes(float *x, const en_planes *q, const en_conv_desc *d) {
  int64_t pixels = (int64_t)d->n * d->h * d->w, stray = 0, L = EN_PLANE_LANES;
  size_t floats = planes_floats(q, d->cin);
  char *image = calloc(floats / L, 1);
  for (int64_t r = 0; r < pixels; r++)
    for (int c = 0; c < d->cin; c++) {
      x[r * d->cin + c] = q->data[c / L * q->block + q->at[r] + c % L];
      image[(c / L * q->block + q->at[r]) / L] = 1;
    }
  for (size_t f = 0; f < floats; f++) stray += !image[f / L] && q->data[f] != 0.0f;
  free(image);
  return stray;
}

/* Random small depthwise convs with C a multiple of 16 that the planes apply to. */
static en_conv_desc random_planes_desc(int t) {
  en_conv_desc d;
  do {
    d = random_desc(1);
    d.h = irand(1, 16), d.w = irand(1, 16);
    d.cin = d.cout = EN_PLANE_LANES * (t % 7 == 6 ? irand(40, 45) : irand(1, 6));
    effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
    int pb, pr, rows, cols;
    en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
    en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
    d.oh = en_conv_out(d.h, d.stride), d.ow = en_conv_out(d.w, d.stride);
    if (en_planes_shape(&d, &rows, &cols)) return d;
  } while (1);
}

/* gemm_planes and depthwise_planes against the NHWC kernels: the fast ones the same bits as
 * the fast NHWC pair where the CPU has them (en_fast_planes_pay), the reference's as the NHWC
 * reference; nothing written outside the images; the same bits on one thread and on three. */
static void test_planes(void) {
  for (int t = 0; t < 120; t++) {
    en_conv_desc d = random_planes_desc(t);
    int cin = t % 5 == 0 ? irand(380, 500) : irand(1, 120), C = d.cin;
    en_act act = (en_act)irand(0, 2);
    int64_t rows = (int64_t)d.n * d.h * d.w;
    size_t xn = (size_t)rows * C, on = (size_t)d.n * d.oh * d.ow * C, pn = (size_t)d.n * C;
    float *x = randv((size_t)rows * cin), *ew = randv((size_t)C * cin), *eb = randv(C);
    float *packed = randv(en_gemm_packed_floats(cin, C)), *e = randv(xn), *got = randv(xn);
    float *dw = randv((size_t)d.kernel * d.kernel * C), *db = randv(C);
    float *a = randv64(on), *b = randv64(on), *pa = randv(pn), *pb = randv(pn);
    const float *bias = t % 4 == 3 ? NULL : eb;
    en_gemm_pack(packed, ew, cin, C);
    en_planes fast = zero_planes(&d, t % 2), ref = fast;
    ref.data = aligned_alloc(64, planes_floats(&fast, C) * sizeof(float));
    memset(ref.data, 0, planes_floats(&fast, C) * sizeof(float));
    int pays = en_fast_planes_pay(&d);
    /* the expand */
    en_kernels_ref.gemm_planes(&ref, x, packed, bias, rows, cin, C, act);
    en_kernels_ref.gemm(e, x, packed, bias, NULL, rows, cin, C, act);
    CHECK_MSG(from_planes(got, &ref, &d) == 0 && !memcmp(got, e, xn * sizeof *e),
              "gemm_planes ref n%d %dx%d %d->%d", d.n, d.h, d.w, cin, C);
    if (pays) en_kernels_fast.gemm(e, x, packed, bias, NULL, rows, cin, C, act);
    for (int threads = 3; threads >= 1; threads -= 2) {
      int previous = omp_get_max_threads();
      omp_set_num_threads(threads);
      en_kernels_fast.gemm_planes(&fast, x, packed, bias, rows, cin, C, act);
      omp_set_num_threads(previous);
      CHECK_MSG(from_planes(got, &fast, &d) == 0 && !memcmp(got, e, xn * sizeof *e),
                "gemm_planes fast n%d %dx%d %d->%d act %d pays %d, %d threads", d.n, d.h, d.w,
                cin, C, act, pays, threads);
    }
    /* the depthwise conv over each planes' content */
    from_planes(got, &ref, &d);
    en_kernels_ref.depthwise(a, got, dw, db, &d, pa);
    en_kernels_ref.depthwise_planes(b, &ref, dw, db, &d, pb);
    CHECK_MSG(!memcmp(a, b, on * sizeof *a) && !memcmp(pa, pb, pn * sizeof *pa),
              "depthwise_planes ref n%d %dx%d c%d k%d s%d", d.n, d.h, d.w, C, d.kernel, d.stride);
    from_planes(got, &fast, &d);
    if (pays) en_kernels_fast.depthwise(a, got, dw, db, &d, pa);
    else en_kernels_ref.depthwise(a, got, dw, db, &d, pa);
    for (int threads = 3; threads >= 1; threads -= 2) {
      int previous = omp_get_max_threads();
      omp_set_num_threads(threads);
      en_kernels_fast.depthwise_planes(b, &fast, dw, db, &d, pb);
      omp_set_num_threads(previous);
      CHECK_MSG(!memcmp(a, b, on * sizeof *a) && !memcmp(pa, pb, pn * sizeof *pa),
                "depthwise_planes fast n%d %dx%d c%d k%d s%d pays %d, %d threads", d.n, d.h,
                d.w, C, d.kernel, d.stride, pays, threads);
    }
    free(x), free(ew), free(eb), free(packed), free(e), free(got), free(dw), free(db), free(a);
    free(b), free(pa), free(pb), free(fast.data), free(ref.data), free((void *)fast.at);
  }
}

/* A random stem (RGB 3x3 stride 2, as test_conv's) and the depthwise conv d over its output
 * (window 3 or 5, stride 1 or 2, the stem's channels). */
static en_conv_desc random_stem(en_conv_desc *d, int t) {
  en_conv_desc sd = random_desc(0);
  effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  int pb, pr;
  sd.cin = 3, sd.kernel = 3, sd.stride = 2, sd.act = (en_act)irand(0, 2);
  sd.cout = t % 4 == 0 ? 32 : t % 4 == 1 ? 40 : irand(1, 70);
  sd.h = t % 10 == 9 ? 96 : irand(1, 61), sd.w = t % 10 == 9 ? 64 : irand(1, 57);
  en_padding(pad, sd.h, 3, 2, &sd.pad_top, &pb);
  en_padding(pad, sd.w, 3, 2, &sd.pad_left, &pr);
  sd.oh = en_conv_out(sd.h, 2), sd.ow = en_conv_out(sd.w, 2);
  *d = sd;
  d->h = sd.oh, d->w = sd.ow, d->cin = d->cout = sd.cout;
  d->kernel = irand(0, 3) ? 3 : 5, d->stride = irand(0, 3) ? 1 : 2, d->act = sd.act;
  en_padding(pad, d->h, d->kernel, d->stride, &d->pad_top, &pb);
  en_padding(pad, d->w, d->kernel, d->stride, &d->pad_left, &pr);
  d->oh = en_conv_out(d->h, d->stride), d->ow = en_conv_out(d->w, d->stride);
  return sd;
}

/* The stem fused with the first depthwise conv (rings of stem rows per thread, bands per
 * image) against the reference's stem into a full tensor then depthwise: outputs and pooled
 * sums; the same bits on one thread and on three; without pooling every fourth case. */
static void test_stem_depthwise(void) {
  for (int t = 0; t < 160; t++) {
    en_conv_desc d, sd = random_stem(&d, t);
    en_dw_stream_least = t % 2; /* odd cases: outputs written with non-temporal stores */
    int C = sd.cout, threads = omp_get_max_threads() > 3 ? omp_get_max_threads() : 3;
    size_t in = (size_t)sd.n * sd.h * sd.w * 3, mid = (size_t)sd.n * sd.oh * sd.ow * C;
    size_t on = (size_t)d.n * d.oh * d.ow * C, pn = (size_t)d.n * C;
    float *img = randv(in), *w = randv((size_t)27 * C), *sb = randv(C);
    float *packed = randv(en_gemm_packed_floats(27, C));
    float *dw = randv((size_t)d.kernel * d.kernel * C);
    float *db = randv(C), *a = randv(on), *b = randv64(on), *c = randv64(on), *stem = randv(mid);
    float *pa = randv(pn), *pb = randv(pn), *pc = randv(pn);
    float *scratch = randv(en_stem_depthwise_scratch(&sd, &d, threads));
    en_gemm_pack(packed, w, 27, C);
    int pool = t % 4 != 3;
    const float *bias = t % 5 == 4 ? NULL : sb;
    en_kernels_ref.stem_depthwise(a, pool ? pa : NULL, img, packed, bias, &sd, dw, db, &d, stem,
                                  scratch);
    en_kernels_fast.stem_depthwise(b, pool ? pb : NULL, img, packed, bias, &sd, dw, db, &d,
                                   stem, scratch);
    CHECK_MSG(rel_err(b, a, on) < 1e-5 && (!pool || rel_err(pb, pa, pn) < 1e-5),
              "stem+depthwise n%d %dx%d ->%d k%d s%d act%d: %g, pool %g", sd.n, sd.h, sd.w, C,
              d.kernel, d.stride, d.act, rel_err(b, a, on), pool ? rel_err(pb, pa, pn) : 0.0);
    int previous = omp_get_max_threads(), same = 1;
    for (int nt = 1; nt <= 3; nt += 2) {
      omp_set_num_threads(nt);
      en_kernels_fast.stem_depthwise(c, pool ? pc : NULL, img, packed, bias, &sd, dw, db, &d,
                                     stem, scratch);
      same = same && !memcmp(c, b, on * sizeof *c) && (!pool || !memcmp(pc, pb, pn * sizeof *pc));
    }
    omp_set_num_threads(previous);
    CHECK_MSG(same, "stem+depthwise n%d %dx%d ->%d: thread count changes the result", sd.n,
              sd.h, sd.w, C);
    free(img), free(w), free(sb), free(packed), free(dw), free(db), free(a), free(b), free(c);
    free(stem), free(pa), free(pb), free(pc), free(scratch);
  }
  en_dw_stream_least = 0;
}

/* The reference kernels themselves against hand-computed values. */
static void test_reference_by_hand(void) {
  CHECK(fabsf(en_activate(1.0f, EN_ACT_SWISH) - 0.7310585786f) < 1e-7f);
  CHECK(en_activate(-7.0f, EN_ACT_RELU6) == 0.0f && en_activate(7.0f, EN_ACT_RELU6) == 6.0f);
  CHECK(fabsf(en_activate(0.0f, EN_ACT_SIGMOID) - 0.5f) < 1e-7f);
  CHECK(en_activate(-1000.0f, EN_ACT_SWISH) == 0.0f);
  /* 3x3 input, 3x3 kernel of ones, stride 2, TF-SAME: total pad = 1, all after */
  float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], out[4];
  for (int i = 0; i < 9; i++) w[i] = 1.0f;
  en_conv_desc d = {1, 3, 3, 1, 1, 3, 2, 0, 0, 2, 2, EN_ACT_NONE};
  int pb;
  en_padding(EFFNET_PAD_TF_SAME, 4, 3, 2, &d.pad_top, &pb);
  CHECK(d.pad_top == 0 && pb == 1); /* even input: the extra pixel goes after */
  en_padding(EFFNET_PAD_TF_SAME, 3, 3, 2, &d.pad_top, &pb);
  CHECK(d.pad_top == 1 && pb == 1); /* odd input: symmetric */
  d.pad_top = d.pad_left = 1;
  en_kernels_ref.conv(out, in, w, NULL, &d, NULL);
  CHECK(out[0] == 1 + 2 + 4 + 5 && out[1] == 2 + 3 + 5 + 6 && out[3] == 5 + 6 + 8 + 9);
  en_kernels_ref.depthwise(out, in, w, NULL, &d, NULL);
  CHECK(out[0] == 12 && out[2] == 4 + 5 + 7 + 8);
}

/* The vectorisable exp of the fast epilogues against libm over its whole clamped range.
 * Bound: 4e-7 relative (about 3 ulp); swish/sigmoid inherit it. */
static void test_vexp(void) {
  double worst = 0.0, worst_swish = 0.0;
  for (int i = 0; i <= 2000000; i++) {
    float x = -87.0f + 175.0f * (float)i / 2000000.0f;
    double e = fabs((double)en_vexpf(x) / (double)expf(x) - 1.0);
    if (e > worst) worst = e;
    float sw = en_activate(x, EN_ACT_SWISH);
    double es = fabs((double)en_vswish(x) - sw) / (fabs(sw) > 1e-30 ? fabs(sw) : 1e-30);
    if (fabs(sw) > 1e-30 && es > worst_swish) worst_swish = es;
  }
  CHECK_MSG(worst < 4e-7, "vexp max rel err %g", worst);
  CHECK_MSG(worst_swish < 4e-7, "vswish max rel err %g", worst_swish);
  CHECK(en_vswish(-1000.0f) == 0.0f || fabsf(en_vswish(-1000.0f)) < 1e-30f);
  CHECK(en_vswish(1000.0f) == 1000.0f);
  /* NaN (a diverged model) stays NaN through swish, with no undefined int conversion inside */
  CHECK(isnan(en_vswish(NAN)));
  CHECK(isfinite(en_vexpf(NAN)));
  CHECK(en_vsigmoid(-200.0f) >= 0.0f && en_vsigmoid(-200.0f) < 1e-37f);
  CHECK(en_vsigmoid(200.0f) == 1.0f);
}

/* en_vact's swish as each ISA's kernels compile it (the AVX-512 one with a table and vrcp14ps
 * or a divide, the AVX2 one with a divide), over count floats (a multiple of 16). */
#define SWISH_ARRAY(suffix, isa)                                                         \
  static void swish_##suffix(float *y, const float *x, int count) {                     \
    for (int i = 0; i < count; i += EN_LANES)                                            \
      en_vstore(y + i, en_vact(en_vload(x + i, EN_LANES), EN_ACT_SWISH, isa), EN_LANES); \
  }
#if EN_X86_TARGETS
EN_TARGET_AVX512 __attribute__((flatten)) SWISH_ARRAY(avx512, EN_ISA_AVX512)
EN_TARGET_AVX2 __attribute__((flatten)) SWISH_ARRAY(avx2, EN_ISA_AVX2)
#endif
SWISH_ARRAY(portable, EN_ISA_PORTABLE)

/* Every ISA's vector swish that this CPU runs, against double: 4e-7 relative wherever the
 * result is above 1e-30 (as en_vswish), the limits at +-1000, inf and NaN. */
static void check_vector_swish(void (*fn)(float *, const float *, int), const char *name) {
  enum { N = 1 << 16 };
  static float x[N], y[N];
  double worst = 0.0;
  for (int pass = 0; pass < 32; pass++) {
    for (int i = 0; i < N; i++) x[i] = -100.0f + 200.0f * (float)(pass * N + i) / (32.0f * N);
    fn(y, x, N);
    for (int i = 0; i < N; i++) {
      double sw = (double)x[i] / (1.0 + exp(-(double)x[i]));
      if (fabs(sw) > 1e-30) {
        double e = fabs((double)y[i] - sw) / fabs(sw);
        if (e > worst) worst = e;
      } else {
        CHECK_MSG(fabsf(y[i]) < 1e-29f, "%s swish(%g) = %g", name, x[i], y[i]);
      }
    }
  }
  CHECK_MSG(worst < 4e-7, "%s vector swish max rel err %g", name, worst);
  float special[16] = {-1000.0f, 1000.0f, INFINITY, NAN, 0.0f, -0.0f, 1e-30f, -1e-30f,
                       87.0f,    -87.0f,  88.7f,    -88.7f, 80.0f, -80.0f, 1.0f, -1.0f};
  float out[16];
  fn(out, special, 16);
  CHECK_MSG(fabsf(out[0]) < 1e-30f, "%s swish(-1000) = %g", name, out[0]);
  CHECK_MSG(out[1] == 1000.0f && out[2] == INFINITY, "%s swish(1000), swish(inf)", name);
  CHECK_MSG(isnan(out[3]), "%s swish(NaN) = %g", name, out[3]);
  CHECK_MSG(out[4] == 0.0f && out[5] == 0.0f, "%s swish(0)", name);
  for (int i = 6; i < 16; i++) {
    double sw = (double)special[i] / (1.0 + exp(-(double)special[i]));
    double bound = fabs(sw) > 1e-30 ? 4e-7 * fabs(sw) : 1e-29;
    CHECK_MSG(fabs(out[i] - sw) <= bound, "%s swish(%g) = %g, not %g", name, special[i], out[i],
              sw);
  }
}

static void test_vector_swish(void) {
  check_vector_swish(swish_portable, "portable");
#if EN_X86_TARGETS
  if (en_cpu_runs(EN_ISA_AVX2)) check_vector_swish(swish_avx2, "avx2");
  if (en_cpu_runs(EN_ISA_AVX512)) {
    /* both ends of the AVX-512 swish whatever this CPU's default (isa.h, set by en_isa) */
    en_isa();
    int divides = en_swish_divides;
    en_swish_divides = 0;
    check_vector_swish(swish_avx512, "avx512 estimate");
    en_swish_divides = 1;
    check_vector_swish(swish_avx512, "avx512 divide");
    en_swish_divides = divides;
  }
#endif
}

int main(void) {
  test_vexp();
  test_vector_swish();
  test_reference_by_hand();
  test_conv();
  test_depthwise();
  test_pointwise_linear_pool_add();
  test_se();
  test_gemm();
  test_pack_transposed();
  test_se_gate_folded();
  test_expand_depthwise();
  test_planes();
  test_stem_depthwise();
  return TEST_SUMMARY();
}
