/* What a search found: per candidate the mean and spread of accuracy over seeds with its real
 * cost, the chosen compound candidate, and the plots (accuracy against real MACs per mode). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

typedef struct group {
  const search_row *first; /* mode, multipliers, cost */
  double mean, std;
  int n;
} group;

static int same_candidate(const search_row *a, const search_row *b) {
  return !strcmp(a->mode, b->mode) && fabs(a->alpha - b->alpha) < 1e-9 &&
         fabs(a->beta - b->beta) < 1e-9 && fabs(a->gamma - b->gamma) < 1e-9 &&
         fabs(a->width - b->width) < 1e-9 && fabs(a->depth - b->depth) < 1e-9 &&
         a->resolution == b->resolution;
}

/* Seeds of one candidate pooled: mean and sample standard deviation. */
static size_t group_rows(const search_row *rows, size_t count, group *g) {
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    size_t j = 0;
    while (j < n && !same_candidate(g[j].first, &rows[i])) j++;
    if (j == n) g[n++] = (group){&rows[i], 0, 0, 0};
    g[j].mean += rows[i].accuracy;
    g[j].n++;
  }
  for (size_t j = 0; j < n; j++) {
    g[j].mean /= g[j].n;
    double ss = 0;
    for (size_t i = 0; i < count; i++)
      if (same_candidate(g[j].first, &rows[i])) ss += pow(rows[i].accuracy - g[j].mean, 2);
    g[j].std = g[j].n > 1 ? sqrt(ss / (g[j].n - 1)) : 0.0;
  }
  return n;
}

static int by_mode_then_macs(const void *pa, const void *pb) {
  const group *a = pa, *b = pb;
  int m = strcmp(a->first->mode, b->first->mode);
  if (m) return m;
  return (a->first->macs > b->first->macs) - (a->first->macs < b->first->macs);
}

static void print_table(const group *g, size_t n, int64_t base_macs, int chosen) {
  printf("\n%-16s %6s %6s %6s %7s %7s %5s %10s %7s %9s %13s\n", "mode", "alpha", "beta",
         "gamma", "width", "depth", "res", "params", "MMACs", "x base", "top-1 %");
  for (size_t j = 0; j < n; j++) {
    const search_row *r = g[j].first;
    char acc[40];
    if (g[j].n > 1) snprintf(acc, sizeof acc, "%.2f +- %.2f", 100 * g[j].mean, 100 * g[j].std);
    else snprintf(acc, sizeof acc, "%.2f", 100 * g[j].mean);
    printf("%-16s %6.3g %6.3g %6.3g %7.4g %7.4g %5d %10lld %7.1f %9.2f %13s (n=%d)%s\n", r->mode,
           r->alpha, r->beta, r->gamma, r->width, r->depth, r->resolution, (long long)r->params,
           r->macs / 1e6, base_macs ? (double)r->macs / base_macs : 0.0, acc, g[j].n,
           (int)j == chosen ? "  <- chosen" : "");
  }
}

/* One plot series per mode among the groups (whose modes are in `modes`, prefix match). */
static void plot_modes(const search_options *o, const group *g, size_t n, const char *file,
                       const char *title, const char *const *modes, int chosen) {
  plot_series series[16];
  double *x = calloc(n * 3 + 1, sizeof *x), *y = x + n, *e = y + n;
  if (!x) return;
  size_t ns = 0, used = 0;
  int marked_series = -1, marked_index = -1;
  for (const char *const *m = modes; *m && ns < 16; m++) {
    size_t start = used;
    const char *label = NULL;
    for (size_t j = 0; j < n; j++) {
      const char *mode = g[j].first->mode;
      if (strncmp(mode, *m, strlen(*m))) continue;
      if (label && strcmp(label, mode)) continue; /* one series per exact mode */
      if (!label) label = mode;
      if ((int)j == chosen) marked_series = (int)ns, marked_index = (int)(used - start);
      x[used] = g[j].first->macs / 1e6;
      y[used] = 100 * g[j].mean;
      e[used++] = 100 * g[j].std;
    }
    if (used == start) continue;
    int connect = strcmp(label, "compound") != 0 && strcmp(label, "base") != 0;
    series[ns++] = (plot_series){label, x + start, y + start, e + start, used - start, connect};
    /* further width@dXrY modes: each its own series */
    if (!strcmp(*m, "width@")) {
      for (size_t j = 0; j < n && ns < 16; j++) {
        const char *mode = g[j].first->mode;
        if (strncmp(mode, "width@", 6) || !strcmp(mode, label)) continue;
        int seen = 0;
        for (size_t s = 0; s < ns; s++) seen |= !strcmp(series[s].label, mode);
        if (seen) continue;
        size_t st = used;
        for (size_t k = 0; k < n; k++)
          if (!strcmp(g[k].first->mode, mode)) {
            x[used] = g[k].first->macs / 1e6;
            y[used] = 100 * g[k].mean;
            e[used++] = 100 * g[k].std;
          }
        series[ns++] = (plot_series){mode, x + st, y + st, e + st, used - st, 1};
      }
    }
  }
  if (ns > 1) {
    char path[4200];
    snprintf(path, sizeof path, "%.3800s/%.100s", o->out, file);
    plot_spec spec = {title, "real multiply-adds (millions, log scale)", "top-1 accuracy (%)",
                      1, series, ns, marked_series, marked_index, 0, 0};
    effnet_error err = {{0}};
    if (plot_png(path, &spec, &err) != EFFNET_OK) fprintf(stderr, "effnet search: %s\n", err.message);
    else printf("plot: %s\n", path);
  }
  free(x);
}

int search_report(const search_options *o, const search_row *rows, size_t count) {
  group *g = calloc(count + 1, sizeof *g);
  if (!g) return -1;
  size_t n = group_rows(rows, count, g);
  qsort(g, n, sizeof *g, by_mode_then_macs);
  int chosen = -1;
  int64_t base_macs = 0;
  for (size_t j = 0; j < n; j++) {
    if (!strcmp(g[j].first->mode, "base")) base_macs = g[j].first->macs;
    if (!strcmp(g[j].first->mode, "compound") && (chosen < 0 || g[j].mean > g[chosen].mean))
      chosen = (int)j;
  }
  print_table(g, n, base_macs, chosen);
  if (chosen >= 0) {
    const search_row *c = g[chosen].first;
    printf("\nchosen: alpha %.3g, beta %.3g, gamma %.3g (top-1 %.2f%%, %d seed%s); step 2:\n"
           "  effnet scale --alpha %.3g --beta %.3g --gamma %.3g --phi 1..7 [BASE]\n", c->alpha,
           c->beta, c->gamma, 100 * g[chosen].mean, g[chosen].n, g[chosen].n == 1 ? "" : "s",
           c->alpha, c->beta, c->gamma);
  }
  static const char *const step1[] = {"base", "compound", NULL};
  static const char *const fig3[] = {"base", "width", "depth", "resolution", "compound", NULL};
  static const char *const fig4[] = {"compound", "width@", NULL};
  plot_modes(o, g, n, "search.png", "Step 1: candidates at phi = 1 (mean over seeds)", step1, chosen);
  plot_modes(o, g, n, "single_dimension.png", "Scaling one dimension vs compound (paper Fig. 3)", fig3, chosen);
  plot_modes(o, g, n, "width_at_depth_resolution.png", "Width scaling at fixed depth/resolution (paper Fig. 4)", fig4, chosen);
  free(g);
  return chosen;
}
