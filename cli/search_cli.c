/* effnet search and effnet scale: argument parsing. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "search.h"

static int parse_grid(const char *s, effnet_grid *g) {
  return sscanf(s, "%lf,%lf,%lf,%lf", &g->alpha_max, &g->beta_max, &g->gamma_max, &g->step) == 4 &&
         g->step > 0 && g->alpha_max >= 1 && g->beta_max >= 1 && g->gamma_max >= 1;
}

static int search_number(int argc, char **argv, int *i, search_options *o, const char **grid) {
  const char *v = NULL;
  struct { const char *name; const char **slot; } strs[] = {
      {"--data", &o->data}, {"--out", &o->out}, {"--mode", &o->modes},
      {"--multipliers", &o->multipliers}, {"--pairs", &o->pairs}, {"--optimizer", &o->optimizer},
      {"--lr", &o->lr}, {"--grid", grid}};
  for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
    int r = cli_value(argc, argv, i, strs[k].name, strs[k].slot);
    if (r) return r;
  }
  struct { const char *name; long lo, hi; int *slot; } ints[] = {
      {"--seeds", 1, 100, &o->seeds}, {"--workers", 1, 256, &o->workers},
      {"--threads", 1, 1024, &o->threads}, {"--epochs", 0, 100000, &o->epochs},
      {"--batch", 1, 65536, &o->batch}};
  for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
    int r = cli_value(argc, argv, i, ints[k].name, &v);
    if (!r) continue;
    long x;
    if (r < 0 || !cli_int(v, ints[k].lo, ints[k].hi, &x)) {
      if (r > 0) fprintf(stderr, "effnet search: invalid %s '%s'\n", ints[k].name, v);
      return -1;
    }
    *ints[k].slot = (int)x;
    return 1;
  }
  struct { const char *name; long long lo; int64_t *slot; } longs[] = {
      {"--steps", 0, &o->steps}, {"--eval-limit", 1, &o->eval_limit}};
  for (size_t k = 0; k < 2; k++) {
    int r = cli_value(argc, argv, i, longs[k].name, &v);
    if (!r) continue;
    long x;
    if (r < 0 || !cli_int(v, (long)longs[k].lo, 1000000000000L, &x)) {
      if (r > 0) fprintf(stderr, "effnet search: invalid %s '%s'\n", longs[k].name, v);
      return -1;
    }
    *longs[k].slot = x;
    return 1;
  }
  struct { const char *name; double lo, hi; double *slot; } dbl[] = {
      {"--target", 1e-3, 1e3, &o->grid.target}, {"--tolerance", 0, 10, &o->grid.tolerance}};
  for (size_t k = 0; k < 2; k++) {
    int r = cli_value(argc, argv, i, dbl[k].name, &v);
    if (!r) continue;
    if (r < 0 || !cli_double(v, dbl[k].lo, dbl[k].hi, dbl[k].slot)) {
      if (r > 0) fprintf(stderr, "effnet search: invalid %s '%s'\n", dbl[k].name, v);
      return -1;
    }
    return 1;
  }
  if (cli_flag(argv[*i], "--real-flops")) {
    o->grid.real_flops = 1;
    return 1;
  }
  return 0;
}

static void search_defaults(search_options *o) {
  memset(o, 0, sizeof *o);
  o->modes = "compound";
  o->grid = (effnet_grid){1.4, 1.3, 1.3, 0.1, 2.0, 0.1, 0};
  o->multipliers = "1.5,2,2.5,3";
  o->pairs = "1:1,1:1.3,2:1,2:1.3";
  o->seeds = 1;
  o->workers = 1;
  o->epochs = 1;
  o->batch = 64;
}

int cli_search(int argc, char **argv) {
  search_options o;
  search_defaults(&o);
  cli_model_args m = {0};
  const char *grid = NULL;
  for (int i = 0; i < argc; i++) {
    if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
      search_usage_print();
      return 0;
    }
    int r = cli_model_option(argc, argv, &i, &m);
    if (!r) r = search_number(argc, argv, &i, &o, &grid);
    if (r < 0) return 2;
    if (!r) {
      fprintf(stderr, "effnet search: unknown option '%s' (effnet search --help)\n", argv[i]);
      return 2;
    }
  }
  if (!o.data || !o.out) {
    fprintf(stderr, "effnet search: --data and --out are required (effnet search --help)\n");
    return 2;
  }
  if (strlen(o.out) > 3800) {
    fprintf(stderr, "effnet search: --out path too long\n");
    return 2;
  }
  if (grid && !parse_grid(grid, &o.grid)) {
    fprintf(stderr, "effnet search: invalid --grid '%s' (AMAX,BMAX,GMAX,STEP; maxima >= 1, step > 0)\n", grid);
    return 2;
  }
  if (o.steps == 0 && o.epochs == 0) {
    fprintf(stderr, "effnet search: the budget is zero: give --epochs E or --steps S (> 0)\n");
    return 2;
  }
  double phi;
  if (cli_model_spec(&m, &o.base, &phi)) return 2;
  /* costs are those of the model actually trained: the data's class count */
  effnet_error err = {{0}};
  if (effnet_data_classes(o.data, &o.base.num_classes, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet search: %s\n", err.message);
    return 1;
  }
  if (!o.threads) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cores > o.workers ? (int)(cores / o.workers) : 1;
  }
  return search_execute(&o);
}

/* ------------------------------------------------------------------ effnet scale */

static int parse_phis(const char *s, double *phis, int max) {
  const char *dots = strstr(s, "..");
  if (dots) { /* A..B: every integer step from A to B */
    char left[64];
    double a, b;
    snprintf(left, sizeof left, "%.*s", (int)(dots - s < 63 ? dots - s : 63), s);
    if (!cli_double(left, 0, 20, &a) || !cli_double(dots + 2, 0, 20, &b) || b < a) return -1;
    int n = 0;
    for (double p = a; p <= b + 1e-9 && n < max; p += 1) phis[n++] = p;
    return n;
  }
  int n = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *t = strtok(buf, ","); t && n < max; t = strtok(NULL, ","))
    if (!cli_double(t, 0, 20, &phis[n++])) return -1;
  return n;
}

/* The chosen compound candidate of a results.csv: best mean accuracy over seeds. */
static int from_results(const char *path, double *a, double *b, double *g) {
  search_row *rows = NULL;
  size_t count = 0;
  effnet_error err = {{0}};
  if (search_csv_read(path, &rows, &count, NULL, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet scale: %s\n", err.message);
    return -1;
  }
  double best = -1;
  for (size_t i = 0; i < count; i++) {
    if (strcmp(rows[i].mode, "compound")) continue;
    double sum = 0;
    int n = 0;
    for (size_t j = 0; j < count; j++)
      if (!strcmp(rows[j].mode, "compound") && fabs(rows[j].alpha - rows[i].alpha) < 1e-9 &&
          fabs(rows[j].beta - rows[i].beta) < 1e-9 && fabs(rows[j].gamma - rows[i].gamma) < 1e-9)
        sum += rows[j].accuracy, n++;
    if (sum / n > best) best = sum / n, *a = rows[i].alpha, *b = rows[i].beta, *g = rows[i].gamma;
  }
  free(rows);
  if (best < 0) {
    fprintf(stderr, "effnet scale: %s has no compound runs\n", path);
    return -1;
  }
  printf("from %s: alpha %.3g, beta %.3g, gamma %.3g (top-1 %.2f%%)\n", path, *a, *b, *g, 100 * best);
  return 0;
}

static void print_member(const effnet_candidate *c, const effnet_candidate *base, int json) {
  effnet_info info;
  effnet_error err = {{0}};
  if (effnet_spec_describe(&c->spec, 0, 0, &info, &err) != EFFNET_OK) return;
  if (json) {
    printf("{\"phi\": %g, \"width\": %.17g, \"depth\": %.17g, \"resolution\": %d, "
           "\"stem\": %d, \"head\": %d, \"channels\": [", c->phi, c->spec.width, c->spec.depth,
           c->spec.resolution, info.stem_channels, info.head_channels);
    for (int s = 0; s < info.num_stages; s++) printf("%s%d", s ? ", " : "", info.stages[s].out_channels);
    printf("], \"repeats\": [");
    for (int s = 0; s < info.num_stages; s++) printf("%s%d", s ? ", " : "", info.stages[s].repeats);
    printf("], \"params\": %lld, \"macs\": %lld, \"nominal_flops_x\": %.6g, \"real_flops_x\": %.6g}\n",
           (long long)c->params, (long long)c->macs, c->nominal, (double)c->macs / base->macs);
    return;
  }
  char ch[96] = "", rep[64] = "";
  for (int s = 0; s < info.num_stages; s++) {
    size_t l = strlen(ch), r = strlen(rep);
    snprintf(ch + l, sizeof ch - l, "%s%d", s ? "," : "", info.stages[s].out_channels);
    snprintf(rep + r, sizeof rep - r, "%s%d", s ? "," : "", info.stages[s].repeats);
  }
  printf("%4g %7.4g %7.4g %5d %4d %5d %-28s %-16s %11lld %9.1f %8.2f %8.2f\n", c->phi,
         c->spec.width, c->spec.depth, c->spec.resolution, info.stem_channels,
         info.head_channels, ch, rep, (long long)c->params, c->macs / 1e6, c->nominal,
         (double)c->macs / base->macs);
}

int cli_scale(int argc, char **argv) {
  cli_model_args m = {0};
  const char *a_s = NULL, *b_s = NULL, *g_s = NULL, *phi_s = "1..7", *from = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (cli_flag(argv[i], "--json")) { json = 1; continue; }
    int r = 0;
    struct { const char *name; const char **slot; } o[] = {
        {"--alpha", &a_s}, {"--beta", &b_s}, {"--gamma", &g_s}, {"--phis", &phi_s}, {"--from", &from}};
    for (size_t k = 0; k < 5 && !r; k++) r = cli_value(argc, argv, &i, o[k].name, o[k].slot);
    if (!r && strcmp(argv[i], "--phi") == 0) r = cli_value(argc, argv, &i, "--phi", &phi_s);
    if (!r) r = cli_model_option(argc, argv, &i, &m);
    if (r < 0) return 2;
    if (!r) {
      fprintf(stderr, "usage: effnet scale (--alpha A --beta B --gamma G | --from DIR/results.csv)\n"
                      "                    [--phi 1..7 | --phis 1,2,3] [BASE: --model NAME | --width W --depth D [--resolution R] [--lite]] [--json]\n");
      return 2;
    }
  }
  double a = 1.2, b = 1.1, g = 1.15, phis[64];
  if (from && from_results(from, &a, &b, &g)) return 1;
  if (!from && ((a_s && !cli_double(a_s, 1, 10, &a)) || (b_s && !cli_double(b_s, 1, 10, &b)) ||
                (g_s && !cli_double(g_s, 1, 10, &g)))) {
    fprintf(stderr, "effnet scale: alpha, beta, gamma must be numbers in [1, 10]\n");
    return 2;
  }
  int n = parse_phis(phi_s, phis, 64);
  if (n <= 0) {
    fprintf(stderr, "effnet scale: invalid --phi '%s' (e.g. 1..7 or 0,1,2)\n", phi_s);
    return 2;
  }
  effnet_spec base;
  double unused;
  if (!m.name && !m.width && !m.depth && !m.phi) m.name = "b0";
  if (cli_model_spec(&m, &base, &unused)) return 2;
  effnet_candidate b0c, c;
  effnet_error err = {{0}};
  if (effnet_scale_member(&base, 1, 1, 1, 0, &b0c, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet scale: %s\n", err.message);
    return 1;
  }
  if (!json)
    printf("alpha %.4g, beta %.4g, gamma %.4g on %s (width %g, depth %g, %d px)\n"
           "%4s %7s %7s %5s %4s %5s %-28s %-16s %11s %9s %8s %8s\n", a, b, g, base.name,
           base.width, base.depth, base.resolution, "phi", "width", "depth", "res", "stem",
           "head", "stage channels", "stage repeats", "params", "MMACs", "nominal", "real x");
  for (int i = 0; i < n; i++) {
    if (effnet_scale_member(&base, a, b, g, phis[i], &c, &err) != EFFNET_OK) {
      fprintf(stderr, "effnet scale: %s\n", err.message);
      return 1;
    }
    print_member(&c, &b0c, json);
  }
  if (!json)
    printf("train a member: effnet train --width W --depth D --resolution R%s --data DATA --out DIR\n",
           base.family == EFFNET_FAMILY_LITE ? " --lite" : "");
  return 0;
}
