/* The list of runs of a search: the paper's step-1 grid (compound), single-dimension scaling
 * (its Figure 3) and width scaling at fixed depth/resolution pairs (its Figure 4), each member
 * built from the base by effnet_scale_member (real rounding), repeated over seeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "search.h"

static void arch_signature(char *buf, size_t size, const effnet_spec *spec) {
  effnet_info info;
  effnet_error err = {{0}};
  buf[0] = 0;
  if (effnet_spec_describe(spec, 0, 0, &info, &err) != EFFNET_OK) return;
  size_t n = (size_t)snprintf(buf, size, "%d:%d:%d:%d", spec->family, info.input_h,
                              info.stem_channels, info.head_channels);
  for (int s = 0; s < info.num_stages && n < size; s++)
    n += (size_t)snprintf(buf + n, size - n, ":%dx%d", info.stages[s].out_channels,
                          info.stages[s].repeats);
}

static int push(search_plan *p, const char *mode, const effnet_candidate *c, uint64_t seed) {
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    search_run *r = realloc(p->runs, cap * sizeof *r);
    if (!r) return -1;
    p->runs = r;
    p->cap = cap;
  }
  search_run *r = &p->runs[p->count++];
  memset(r, 0, sizeof *r);
  snprintf(r->row.mode, sizeof r->row.mode, "%s", mode);
  r->row.alpha = c->alpha;
  r->row.beta = c->beta;
  r->row.gamma = c->gamma;
  r->row.width = c->spec.width;
  r->row.depth = c->spec.depth;
  r->row.resolution = c->spec.resolution;
  r->row.params = c->params;
  r->row.macs = c->macs;
  r->row.seed = seed;
  r->spec = c->spec;
  snprintf(r->key, sizeof r->key, "%s_a%.4g_b%.4g_g%.4g_s%llu", mode, c->alpha, c->beta,
           c->gamma, (unsigned long long)seed);
  arch_signature(r->arch, sizeof r->arch, &c->spec);
  return 0;
}

/* Adds candidate (alpha, beta, gamma) at phi 1 for every seed. */
static int add(search_plan *p, const search_options *o, const char *mode, double a, double b,
               double g) {
  effnet_candidate c;
  effnet_error err = {{0}};
  if (effnet_scale_member(&o->base, a, b, g, 1.0, &c, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet search: %s\n", err.message);
    return -1;
  }
  for (int s = 1; s <= o->seeds; s++)
    if (push(p, mode, &c, (uint64_t)s)) {
      fprintf(stderr, "effnet search: out of memory\n");
      return -1;
    }
  return 0;
}

static int parse_list(const char *text, double *v, int max, double lo, double hi,
                      const char *what) {
  int n = 0;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", text);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    if (n == max || !cli_double(tok, lo, hi, &v[n])) {
      fprintf(stderr, "effnet search: invalid %s '%s' (up to %d values in [%g, %g])\n", what,
              text, max, lo, hi);
      return -1;
    }
    n++;
  }
  if (n == 0) fprintf(stderr, "effnet search: empty %s\n", what);
  return n ? n : -1;
}

static int add_compound(search_plan *p, const search_options *o) {
  effnet_candidate *list = NULL;
  size_t count = 0;
  effnet_error err = {{0}};
  if (effnet_scale_grid(&o->base, &o->grid, &list, &count, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet search: %s\n", err.message);
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < count && !rc; i++)
    rc = add(p, o, "compound", list[i].alpha, list[i].beta, list[i].gamma);
  free(list);
  return rc;
}

static int add_single(search_plan *p, const search_options *o, const char *mode) {
  double m[32];
  int n = parse_list(o->multipliers, m, 32, 1.0, 10.0, "--multipliers");
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) {
    double a = !strcmp(mode, "depth") ? m[i] : 1, b = !strcmp(mode, "width") ? m[i] : 1;
    double g = !strcmp(mode, "resolution") ? m[i] : 1;
    if (add(p, o, mode, a, b, g)) return -1;
  }
  return 0;
}

/* Figure 4: width scaled at each fixed (depth, resolution) pair, "d:r,d:r,...". */
static int add_width_dr(search_plan *p, const search_options *o) {
  double m[32];
  int n = parse_list(o->multipliers, m, 32, 1.0, 10.0, "--multipliers");
  if (n < 0) return -1;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", o->pairs);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    double d, r;
    char *colon = strchr(tok, ':');
    if (!colon) goto bad;
    *colon = 0;
    if (!cli_double(tok, 1, 10, &d) || !cli_double(colon + 1, 1, 10, &r)) goto bad;
    char mode[32];
    snprintf(mode, sizeof mode, "width@d%.3gr%.3g", d, r);
    for (int i = -1; i < n; i++) /* i = -1: the pair itself at width 1 */
      if (add(p, o, mode, d, i < 0 ? 1.0 : m[i], r)) return -1;
  }
  return 0;
bad:
  fprintf(stderr, "effnet search: invalid --pairs '%s' (d:r,d:r,... with values in [1, 10])\n",
          o->pairs);
  return -1;
}

int search_plan_build(search_plan *p, const search_options *o) {
  memset(p, 0, sizeof *p);
  if (add(p, o, "base", 1, 1, 1)) return -1;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", o->modes);
  char *save = NULL;
  for (char *m = strtok_r(buf, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    int rc;
    if (!strcmp(m, "compound")) rc = add_compound(p, o);
    else if (!strcmp(m, "width") || !strcmp(m, "depth") || !strcmp(m, "resolution"))
      rc = add_single(p, o, m);
    else if (!strcmp(m, "width-dr")) rc = add_width_dr(p, o);
    else {
      fprintf(stderr, "effnet search: unknown mode '%s' (compound, width, depth, resolution, "
                      "width-dr)\n", m);
      rc = -1;
    }
    if (rc) return -1;
  }
  return 0;
}

void search_plan_free(search_plan *p) {
  free(p->runs);
  memset(p, 0, sizeof *p);
}
