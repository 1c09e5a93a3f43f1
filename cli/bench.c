/* effnet bench: latency and throughput of effnet_model_forward on random input (issue #4).
 *
 * Each timed run is one forward of the whole batch, timed with CLOCK_MONOTONIC; the report
 * gives the median and the minimum. The median is what comparisons use (the minimum shows
 * what a quiet machine can reach); --json adds every run's time in run order (runs_ms) for
 * statistics of one's own. The last line of the text output always ends with "median X ms",
 * so scripts can take it with `tail -n 1`. With two threads or more it also gives the round
 * trip of a cache line between two threads (effnet_thread_handoff_ns), measured after the
 * timed runs: what each hand-over of data between the cores costs at that moment. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef struct bench_args {
  cli_model_args model;
  const char *weights, *batch, *threads, *runs, *warmup, *size;
  int profile, json;
} bench_args;

typedef struct bench_result {
  double median_s, min_s, total_s; /* per batch; total over the timed runs */
  double *run_s;                   /* each timed run, in run order (owned) */
  effnet_profile profile;
  double handoff_ns; /* effnet_thread_handoff_ns() after the runs; NAN with one thread */
} bench_result;

static const char usage_line[] =
    "usage: effnet bench --model MODEL [--weights FILE] [--batch N] [--threads T] [--runs R]"
    " [--warmup W] [--size HxW|S] [--profile] [--json]";

static int fail_arg(const char *what, const char *value) {
  fprintf(stderr, "effnet bench: invalid %s '%s'\n", what, value);
  return 2;
}

static int parse_args(int argc, char **argv, bench_args *a) {
  struct { const char *name; const char **slot; } opts[] = {
      {"--weights", &a->weights}, {"--batch", &a->batch},   {"--threads", &a->threads},
      {"--runs", &a->runs},       {"--warmup", &a->warmup}, {"--size", &a->size},
  };
  for (int i = 0; i < argc; i++) {
    int r = cli_model_option(argc, argv, &i, &a->model);
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !r; k++)
      r = cli_value(argc, argv, &i, opts[k].name, opts[k].slot);
    if (r < 0) return 2;
    if (r) continue;
    if (cli_flag(argv[i], "--profile")) {
      a->profile = 1;
    } else if (cli_flag(argv[i], "--json")) {
      a->json = 1;
    } else if (argv[i][0] != '-' && !a->model.name) {
      a->model.name = argv[i];
    } else {
      fprintf(stderr, "effnet bench: unknown argument '%s' (%s)\n", argv[i], usage_line);
      return 2;
    }
  }
  return 0;
}

/* "HxW" or a single side "S". */
static int parse_size(const char *s, long *h, long *w) {
  const char *x = strchr(s, 'x');
  if (!x) {
    if (!cli_int(s, 1, 16384, h)) return 0;
    *w = *h;
    return 1;
  }
  char hs[32], ws[32];
  if (x - s >= (long)sizeof hs || strlen(x + 1) >= sizeof ws) return 0;
  snprintf(hs, sizeof hs, "%.*s", (int)(x - s), s);
  snprintf(ws, sizeof ws, "%s", x + 1);
  return cli_int(hs, 1, 16384, h) && cli_int(ws, 1, 16384, w);
}

/* The model to time: the weights file (variant inferred; --model is passed on as a hint such
 * as tf_efficientnet_b0), or a randomly initialised member. Prints errors; returns the exit
 * status (2 for bad arguments, 1 for a file or library failure). */
static int open_model(const bench_args *a, effnet_model **out) {
  effnet_error err = {{0}};
  *out = NULL;
  if (a->weights) {
    const cli_model_args *m = &a->model;
    if (m->phi || m->alpha || m->beta || m->gamma || m->width || m->depth || m->resolution ||
        m->classes || m->lite) {
      fprintf(stderr, "effnet bench: with --weights the model comes from the file; only --model"
                      " (a hint such as tf_efficientnet_b0) and --size may be given\n");
      return 2;
    }
    effnet_load_options opt = {0};
    opt.model = m->name;
    effnet_status st = effnet_model_load(out, a->weights, &opt, &err);
    if (st != EFFNET_OK) {
      fprintf(stderr, "effnet bench: %s\n", err.message);
      return st == EFFNET_E_ARGUMENT ? 2 : 1;
    }
    return 0;
  }
  effnet_spec spec;
  double phi;
  if (cli_model_spec(&a->model, &spec, &phi)) return 2;
  if (effnet_model_create(out, &spec, 1, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet bench: %s\n", err.message);
    return 1;
  }
  return 0;
}

/* Standard normal draws (xorshift64* + Box-Muller): the scale of a normalised image. */
static void fill_random(float *x, size_t count) {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < count; i += 2) {
    double u[2];
    for (int k = 0; k < 2; k++) {
      s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
      u[k] = ((s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
    }
    double r = sqrt(-2.0 * log(u[0] + 1e-300)), t = 6.283185307179586 * u[1];
    x[i] = (float)(r * cos(t));
    if (i + 1 < count) x[i + 1] = (float)(r * sin(t));
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Warm-up runs (first-call planning, page faults, caches) and then the timed runs. */
static int time_runs(effnet_model *m, const float *x, int n, int h, int w, float *logits,
                     long warmup, long runs, int profile, bench_result *res) {
  for (long r = 0; r < warmup; r++)
    if (effnet_model_forward(m, x, n, h, w, logits) != EFFNET_OK) goto fail;
  double *t = malloc((size_t)runs * sizeof *t);
  res->run_s = malloc((size_t)runs * sizeof *res->run_s);
  if (!t || !res->run_s) {
    free(t);
    fprintf(stderr, "effnet bench: out of memory\n");
    return 1;
  }
  if (profile) effnet_model_set_profiling(m, 1);
  res->total_s = 0;
  for (long r = 0; r < runs; r++) {
    double t0 = now_s();
    if (effnet_model_forward(m, x, n, h, w, logits) != EFFNET_OK) {
      free(t);
      goto fail;
    }
    t[r] = res->run_s[r] = now_s() - t0;
    res->total_s += t[r];
  }
  if (profile) {
    effnet_model_profile(m, &res->profile);
    effnet_model_set_profiling(m, 0);
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_double);
  res->min_s = t[0];
  res->median_s = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
  free(t);
  return 0;
fail:
  fprintf(stderr, "effnet bench: %s\n", effnet_model_error(m));
  return 1;
}

/* Peak resident memory of this process. Linux: VmHWM from /proc/self/status. Not getrusage's
 * ru_maxrss, which also keeps the high-water mark of the process that exec'ed us (a Python
 * parent holding 500 MiB of exported models made every child report 500 MiB). */
static double peak_rss_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f) {
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    fclose(f);
    if (kib >= 0) return kib / 1024.0;
  }
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

static void print_profile_text(const effnet_profile *p, long runs, double total_s) {
  double ops_s = 0;
  for (int k = 0; k < EFFNET_OP_KINDS; k++) ops_s += p->seconds[k];
  double other_s = total_s > ops_s ? total_s - ops_s : 0.0;
  printf("profile (mean over %ld timed runs; %% of the timed wall time):\n", runs);
  printf("  %-10s %10s %7s %9s %9s\n", "op", "ms/run", "%", "GFLOP/s", "calls/run");
  for (int k = 0; k < EFFNET_OP_KINDS; k++) {
    char rate[32] = "-";
    if (p->macs[k] > 0 && p->seconds[k] > 0)
      snprintf(rate, sizeof rate, "%.1f", 2.0 * (double)p->macs[k] / p->seconds[k] / 1e9);
    printf("  %-10s %10.3f %7.1f %9s %9.1f\n", effnet_op_kind_name((effnet_op_kind)k),
           1e3 * p->seconds[k] / runs, total_s > 0 ? 100.0 * p->seconds[k] / total_s : 0.0,
           rate, (double)p->calls[k] / runs);
  }
  printf("  %-10s %10.3f %7.1f %9s %9s\n", "other", 1e3 * other_s / runs,
         total_s > 0 ? 100.0 * other_s / total_s : 0.0, "-", "-");
}

/* Name of part `s` of a profile (effnet.h's EFFNET_PROFILE_STAGES). */
static void part_name(int s, char *out, size_t size) {
  if (s == 0) snprintf(out, size, "stem");
  else if (s == EFFNET_PROFILE_STAGES - 1) snprintf(out, size, "head");
  else snprintf(out, size, "stage%d", s);
}

static double part_seconds(const effnet_profile *p, int s) {
  double t = 0;
  for (int k = 0; k < EFFNET_OP_KINDS; k++) t += p->stage_seconds[s][k];
  return t;
}

/* The time of each part of the network, split into the op kinds that run there. */
static void print_stages_text(const effnet_profile *p, long runs, double total_s) {
  static const effnet_op_kind cols[] = {EFFNET_OP_FUSED, EFFNET_OP_POINTWISE,
                                        EFFNET_OP_DEPTHWISE, EFFNET_OP_SE};
  int ncols = (int)(sizeof cols / sizeof cols[0]);
  printf("profile by part of the network (ms/run; %% of the timed wall time):\n");
  printf("  %-8s %9s %6s", "part", "ms/run", "%");
  for (int c = 0; c < ncols; c++) printf(" %10s", effnet_op_kind_name(cols[c]));
  printf(" %10s\n", "rest");
  for (int s = 0; s < EFFNET_PROFILE_STAGES; s++) {
    char name[16];
    part_name(s, name, sizeof name);
    double t = part_seconds(p, s), rest = t;
    printf("  %-8s %9.3f %6.1f", name, 1e3 * t / runs, total_s > 0 ? 100.0 * t / total_s : 0.0);
    for (int c = 0; c < ncols; c++) {
      printf(" %10.3f", 1e3 * p->stage_seconds[s][cols[c]] / runs);
      rest -= p->stage_seconds[s][cols[c]];
    }
    printf(" %10.3f\n", 1e3 * (rest > 0 ? rest : 0.0) / runs);
  }
}

static void print_text(const char *name, const char *source, int n, int h, int w, int threads,
                       int64_t macs, long warmup, long runs, const bench_result *r, int profile) {
  double flops = 2.0 * (double)macs * n;
  printf("effnet bench: %s (%s)\n", name, source);
  const char *isa = effnet_kernel_isa(), *dense = effnet_dense_kernel_isa();
  printf("input: %dx3x%dx%d (NCHW), threads: %d, kernels: %s%s%s%s, BLAS kernels: OpenBLAS %s\n",
         n, h, w, threads, isa, strcmp(isa, dense) ? " (dense: " : "",
         strcmp(isa, dense) ? dense : "", strcmp(isa, dense) ? ")" : "", effnet_blas_core());
  printf("multiply-adds: %.4f G per image, %.4f G per batch\n", macs / 1e9, macs * (double)n / 1e9);
  printf("runs: %ld timed after %ld warm-up%s\n", runs, warmup,
         profile ? " (profiling on: its clock reads are included in the times, and a batch\n"
                   "  runs layer by layer on the whole team, not as image lanes)"
                 : "");
  printf("peak RSS: %.1f MiB\n", peak_rss_mib());
  if (!isnan(r->handoff_ns))
    printf("thread hand-off: %.0f ns (a cache line's round trip between two threads; where the "
           "CPUs sit on two dies, several times that of one)\n",
           r->handoff_ns);
  printf("  %-8s %10s %10s %10s %9s\n", "", "ms/batch", "ms/image", "images/s", "GFLOP/s");
  const char *label[2] = {"min", "median"};
  double t[2] = {r->min_s, r->median_s};
  for (int i = 0; i < 2; i++)
    printf("  %-8s %10.3f %10.3f %10.2f %9.1f\n", label[i], 1e3 * t[i], 1e3 * t[i] / n,
           n / t[i], flops / t[i] / 1e9);
  if (profile) {
    print_profile_text(&r->profile, runs, r->total_s);
    print_stages_text(&r->profile, runs, r->total_s);
  }
  printf("%s %dx3x%dx%d threads %d: min %.3f ms, median %.3f ms\n", name, n, h, w, threads,
         1e3 * r->min_s, 1e3 * r->median_s);
}

/* "stages": each part's ms per run, and its op kinds' (those that ran there). */
static void print_stages_json(const effnet_profile *p, long runs) {
  printf(", \"stages\": {");
  for (int s = 0; s < EFFNET_PROFILE_STAGES; s++) {
    char name[16];
    part_name(s, name, sizeof name);
    printf("%s\"%s\": {\"ms_per_run\": %.6f, \"kinds\": {", s ? ", " : "", name,
           1e3 * part_seconds(p, s) / runs);
    for (int k = 0, first = 1; k < EFFNET_OP_KINDS; k++) {
      if (p->stage_seconds[s][k] <= 0) continue;
      printf("%s\"%s\": %.6f", first ? "" : ", ", effnet_op_kind_name((effnet_op_kind)k),
             1e3 * p->stage_seconds[s][k] / runs);
      first = 0;
    }
    printf("}}");
  }
  printf("}");
}

static void print_json(const char *name, int random, int n, int h, int w, int threads,
                       int64_t macs, long warmup, long runs, const bench_result *r, int profile) {
  double flops = 2.0 * (double)macs * n;
  printf("{\"model\": \"%s\", \"weights\": \"%s\", \"batch\": %d, \"threads\": %d, \"h\": %d, "
         "\"w\": %d, \"macs\": %lld, \"macs_per_image\": %lld, \"runs\": %ld, \"warmup\": %ld, \"median_ms\": %.6f, "
         "\"min_ms\": %.6f, \"images_per_s\": %.17g, \"gflops\": %.6f, \"peak_rss_kib\": %.0f, "
         "\"isa\": \"%s\", \"dense_isa\": \"%s\"",
         name, random ? "random" : "file", n, threads, h, w, (long long)macs * n, (long long)macs, runs, warmup,
         1e3 * r->median_s, 1e3 * r->min_s, n / r->median_s, flops / r->median_s / 1e9,
         peak_rss_mib() * 1024.0, effnet_kernel_isa(), effnet_dense_kernel_isa());
  if (isnan(r->handoff_ns)) printf(", \"handoff_ns\": null");
  else printf(", \"handoff_ns\": %.1f", r->handoff_ns);
  printf(", \"runs_ms\": [");
  for (long i = 0; i < runs; i++) printf("%s%.6f", i ? ", " : "", 1e3 * r->run_s[i]);
  printf("]");
  if (profile) {
    const effnet_profile *p = &r->profile;
    double ops_s = 0;
    for (int k = 0; k < EFFNET_OP_KINDS; k++) ops_s += p->seconds[k];
    printf(", \"profile\": {");
    for (int k = 0; k < EFFNET_OP_KINDS; k++) {
      double gflops = p->macs[k] > 0 && p->seconds[k] > 0
                          ? 2.0 * (double)p->macs[k] / p->seconds[k] / 1e9 : 0.0;
      printf("%s\"%s\": {\"ms_per_run\": %.6f, \"percent\": %.3f, \"gflops\": %.3f, "
             "\"calls_per_run\": %.3f, \"macs_per_run\": %lld}",
             k ? ", " : "", effnet_op_kind_name((effnet_op_kind)k), 1e3 * p->seconds[k] / runs,
             r->total_s > 0 ? 100.0 * p->seconds[k] / r->total_s : 0.0, gflops,
             (double)p->calls[k] / runs, (long long)(p->macs[k] / runs));
    }
    printf(", \"other\": {\"ms_per_run\": %.6f}}",
           r->total_s > ops_s ? 1e3 * (r->total_s - ops_s) / runs : 0.0);
    print_stages_json(p, runs);
  }
  printf("}\n");
}

int cli_bench(int argc, char **argv) {
  bench_args a = {0};
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc;
  long batch = 1, threads = 0, runs = 20, warmup = 3, h = 0, w = 0;
  if (a.batch && !cli_int(a.batch, 1, 65536, &batch)) return fail_arg("--batch", a.batch);
  if (a.threads && !cli_int(a.threads, 1, 1024, &threads)) return fail_arg("--threads", a.threads);
  if (a.runs && !cli_int(a.runs, 1, 1000000, &runs)) return fail_arg("--runs", a.runs);
  if (a.warmup && !cli_int(a.warmup, 0, 1000000, &warmup)) return fail_arg("--warmup", a.warmup);
  if (a.size && !parse_size(a.size, &h, &w)) {
    fprintf(stderr, "effnet bench: invalid --size '%s' (expected HxW or S)\n", a.size);
    return 2;
  }

  effnet_model *m;
  if ((rc = open_model(&a, &m)) != 0) return rc;
  const effnet_spec *spec = effnet_model_spec(m);
  if (!a.size) h = w = spec->resolution;
  effnet_info info;
  effnet_error err = {{0}};
  if (effnet_spec_describe(spec, (int)h, (int)w, &info, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet bench: %s\n", err.message);
    effnet_model_free(m);
    return 1;
  }
  /* Refuse inputs the library would refuse, before allocating them. */
  double floats = (double)batch * 3 * h * w;
  if (floats > (double)(SIZE_MAX / sizeof(float)) / 4 || floats > 4e9) {
    fprintf(stderr, "effnet bench: input %ldx3x%ldx%ld is too large\n", batch, h, w);
    effnet_model_free(m);
    return 2;
  }
  bench_result res;
  memset(&res, 0, sizeof res);
  size_t count = (size_t)batch * 3 * (size_t)h * (size_t)w;
  float *x = malloc(count * sizeof *x);
  float *logits = malloc((size_t)batch * spec->num_classes * sizeof *logits);
  if (!x || !logits) {
    fprintf(stderr, "effnet bench: out of memory for a %ldx3x%ldx%ld input\n", batch, h, w);
    rc = 1;
    goto done;
  }
  fill_random(x, count);
  effnet_model_set_threads(m, (int)threads);
  int shown_threads = threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN);

  rc = time_runs(m, x, (int)batch, (int)h, (int)w, logits, warmup, runs, a.profile, &res);
  if (rc) goto done;
  res.handoff_ns = shown_threads >= 2 ? effnet_thread_handoff_ns() : NAN;
  const char *name = spec->name;
  if (a.json)
    print_json(name, !a.weights, (int)batch, (int)h, (int)w, shown_threads, info.macs, warmup,
               runs, &res, a.profile);
  else
    print_text(name, a.weights ? a.weights : "random weights: speed does not depend on values",
               (int)batch, (int)h, (int)w, shown_threads, info.macs, warmup, runs, &res,
               a.profile);
done:
  free(res.run_s);
  free(x);
  free(logits);
  effnet_model_free(m);
  return rc;
}
