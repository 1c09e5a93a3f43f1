/* Kernel-level benchmark behind the GEMM choice (README, "Speed"): our packed GEMM with its
 * fused bias + swish epilogue against OpenBLAS sgemm followed by the bias + swish pass it needs,
 * on the 1x1 conv shapes of EfficientNet-B0 at 224 px (batch 1), and the depthwise kernel on
 * B0's depthwise shapes. Times are the minimum of R runs (the least disturbed one) after a
 * warm-up, alternating the two GEMMs so both see the same machine state.
 *
 *   build/tools/bench_kernels [--threads T] [--runs R]
 *
 * Not a test: nothing here is asserted. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "effnet.h"
#include "kernels/kernels.h"
#include "model/arch.h"

static float *random_floats(size_t n) {
  float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (!p) {
    fprintf(stderr, "bench_kernels: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  return p;
}

/* (rows, cin, cout) of B0's expand, project and head convs at 224 px, batch 1 */
static const int gemm_shapes[][3] = {
    {12544, 32, 16},  {12544, 16, 96},  {3136, 96, 24},   {3136, 24, 144},  {3136, 144, 24},
    {784, 144, 40},   {784, 40, 240},   {784, 240, 40},   {196, 240, 80},   {196, 80, 480},
    {196, 480, 80},   {196, 480, 112},  {196, 112, 672},  {196, 672, 112},  {49, 672, 192},
    {49, 192, 1152},  {49, 1152, 192},  {49, 1152, 320},  {49, 320, 1280}};

static void bench_gemm(int runs) {
  printf("1x1 conv as GEMM (rows x cin -> cout), + bias + swish, GFLOP/s (2 x MACs / min time)\n");
  printf("%7s %5s %5s  %9s %9s  %s\n", "rows", "cin", "cout", "effnet", "OpenBLAS", "ratio");
  double total_own = 0, total_blas = 0;
  for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++) {
    int M = gemm_shapes[s][0], K = gemm_shapes[s][1], N = gemm_shapes[s][2];
    float *a = random_floats((size_t)M * K), *w = random_floats((size_t)N * K);
    float *b = random_floats((size_t)N), *o = random_floats((size_t)M * N);
    float *packed = random_floats(en_gemm_packed_floats(K, N));
    en_gemm_pack(packed, w, K, N);
    double own = 1e30, blas = 1e30;
    for (int r = 0; r < runs + 2; r++) {
      double t0 = omp_get_wtime();
      en_kernels_fast.gemm(o, a, packed, b, NULL, M, K, N, EN_ACT_SWISH);
      double t1 = omp_get_wtime();
      en_kernels_fast.pointwise(o, a, w, b, M, K, N, EN_ACT_SWISH); /* sgemm + bias/act pass */
      double t2 = omp_get_wtime();
      if (r >= 2 && t1 - t0 < own) own = t1 - t0;
      if (r >= 2 && t2 - t1 < blas) blas = t2 - t1;
    }
    double flop = 2.0 * M * K * N;
    printf("%7d %5d %5d  %9.1f %9.1f  %.2f\n", M, K, N, flop / own * 1e-9, flop / blas * 1e-9,
           blas / own);
    total_own += own, total_blas += blas;
    free(a), free(w), free(b), free(o), free(packed);
  }
  printf("all shapes: effnet %.2f ms, OpenBLAS + pass %.2f ms (%.2fx)\n\n", total_own * 1e3,
         total_blas * 1e3, total_blas / total_own);
}

/* (side, channels, kernel, stride) of B0's depthwise convs at 224 px */
static const int dw_shapes[][4] = {{112, 32, 3, 1}, {112, 96, 3, 2}, {56, 144, 3, 1},
                                   {56, 144, 5, 2}, {28, 240, 5, 1}, {28, 240, 3, 2},
                                   {14, 480, 3, 1}, {14, 480, 5, 1}, {14, 672, 5, 1},
                                   {14, 672, 5, 2}, {7, 1152, 5, 1}, {7, 1152, 3, 1}};

static void bench_depthwise(int runs) {
  printf("depthwise + bias + swish + SE pooling sums, GFLOP/s (2 x MACs / min time)\n");
  printf("%5s %5s %2s %2s  %9s %9s\n", "side", "C", "k", "s", "GFLOP/s", "ms");
  double total = 0;
  for (size_t s = 0; s < sizeof dw_shapes / sizeof dw_shapes[0]; s++) {
    int H = dw_shapes[s][0], C = dw_shapes[s][1], k = dw_shapes[s][2], st = dw_shapes[s][3];
    en_conv_desc d = {1, H, H, C, C, k, st, 0, 0, 0, 0, EN_ACT_SWISH};
    int after;
    en_padding(EFFNET_PAD_SYMMETRIC, H, k, st, &d.pad_top, &after);
    en_padding(EFFNET_PAD_SYMMETRIC, H, k, st, &d.pad_left, &after);
    d.oh = d.ow = en_conv_out(H, st);
    float *in = random_floats((size_t)H * H * C), *w = random_floats((size_t)k * k * C);
    float *b = random_floats((size_t)C), *o = random_floats((size_t)d.oh * d.ow * C);
    float *pool = random_floats((size_t)C);
    double best = 1e30;
    for (int r = 0; r < runs + 2; r++) {
      double t0 = omp_get_wtime();
      en_kernels_fast.depthwise(o, in, w, b, &d, pool);
      double t = omp_get_wtime() - t0;
      if (r >= 2 && t < best) best = t;
    }
    printf("%5d %5d %2d %2d  %9.1f %9.3f\n", H, C, k, st, 2.0 * d.oh * d.ow * C * k * k / best * 1e-9,
           best * 1e3);
    total += best;
    free(in), free(w), free(b), free(o), free(pool);
  }
  printf("all shapes: %.2f ms\n", total * 1e3);
}

int main(int argc, char **argv) {
  int threads = 1, runs = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
  }
  if (threads < 1 || runs < 1 || argc % 2 == 0) {
    fprintf(stderr, "usage: bench_kernels [--threads T] [--runs R]\n");
    return 2;
  }
  /* as the CLI does: OpenBLAS 0.3.21 picks SSE3 kernels on CPUs newer than it unless told */
  const char *hint = effnet_blas_coretype_hint();
  if (hint && !getenv("OPENBLAS_CORETYPE")) {
    setenv("OPENBLAS_CORETYPE", hint, 1);
    execv("/proc/self/exe", argv);
  }
  omp_set_num_threads(threads);
  const char *isa = getenv("EFFNET_ISA");
  printf("threads %d, runs %d (min), GEMM micro-kernel: %s, OpenBLAS kernels: %s\n\n", threads,
         runs, isa ? isa : "widest this CPU has", effnet_blas_core());
  bench_gemm(runs);
  bench_depthwise(runs);
  return 0;
}
