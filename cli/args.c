#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_flag(const char *arg, const char *name) { return strcmp(arg, name) == 0; }

int cli_value(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  const char *arg = argv[*i];
  if (strncmp(arg, name, n) != 0) return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != 0) return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "effnet: option %s needs a value\n", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

int cli_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

int cli_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

int cli_model_option(int argc, char **argv, int *i, cli_model_args *m) {
  struct { const char *name; const char **slot; } opts[] = {
      {"--model", &m->name},   {"--phi", &m->phi},       {"--alpha", &m->alpha},
      {"--beta", &m->beta},    {"--gamma", &m->gamma},   {"--width", &m->width},
      {"--depth", &m->depth},  {"--resolution", &m->resolution}, {"--classes", &m->classes},
  };
  if (cli_flag(argv[*i], "--lite")) {
    m->lite = 1;
    return 1;
  }
  for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
    int r = cli_value(argc, argv, i, opts[k].name, opts[k].slot);
    if (r) return r;
  }
  return 0;
}

static int bad(const char *what, const char *value) {
  fprintf(stderr, "effnet: invalid %s '%s'\n", what, value);
  return 1;
}

static int base_spec(const cli_model_args *m, effnet_spec *spec, double *phi, effnet_error *err) {
  effnet_status st;
  if (m->phi) {
    double a = 1.2, b = 1.1, g = 1.15; /* paper section 4, step 1 */
    if (!cli_double(m->phi, 0, 20, phi)) return bad("--phi", m->phi);
    if (m->alpha && !cli_double(m->alpha, 1, 10, &a)) return bad("--alpha", m->alpha);
    if (m->beta && !cli_double(m->beta, 1, 10, &b)) return bad("--beta", m->beta);
    if (m->gamma && !cli_double(m->gamma, 1, 10, &g)) return bad("--gamma", m->gamma);
    st = effnet_spec_compound(spec, *phi, a, b, g, err);
  } else if (m->width || m->depth) {
    double w = 1.0, d = 1.0;
    long r = 224;
    if (m->width && !cli_double(m->width, 1e-6, 1e6, &w)) return bad("--width", m->width);
    if (m->depth && !cli_double(m->depth, 1e-6, 1e6, &d)) return bad("--depth", m->depth);
    if (m->resolution && !cli_int(m->resolution, 1, 8192, &r))
      return bad("--resolution", m->resolution);
    st = effnet_spec_custom(spec, m->lite ? EFFNET_FAMILY_LITE : EFFNET_FAMILY_B, w, d, (int)r,
                            err);
  } else if (m->name) {
    st = effnet_spec_from_name(spec, m->name, err);
  } else {
    fprintf(stderr, "effnet: no model given (a name such as b0, or --phi, or --width/--depth)\n");
    return 1;
  }
  if (st != EFFNET_OK) {
    fprintf(stderr, "effnet: %s\n", err->message);
    return 1;
  }
  return 0;
}

int cli_model_spec(const cli_model_args *m, effnet_spec *spec, double *phi) {
  effnet_error err = {{0}};
  *phi = -1.0;
  if (base_spec(m, spec, phi, &err)) return 1;
  long v;
  if (m->resolution) {
    if (!cli_int(m->resolution, 1, 8192, &v)) return bad("--resolution", m->resolution);
    spec->resolution = (int)v;
  }
  if (m->classes) {
    if (!cli_int(m->classes, 1, 1000000, &v)) return bad("--classes", m->classes);
    spec->num_classes = (int)v;
  }
  return 0;
}
