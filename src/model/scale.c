/* Compound scaling as an operation on any base (paper section 3.3): a member is the base with
 * depth x alpha^phi, width x beta^phi, resolution x gamma^phi, and its real cost comes from the
 * same rounding rules (round_filters, ceil of repeats) the family uses, which is why the real
 * FLOPs factor drifts from the nominal (alpha * beta^2 * gamma^2)^phi. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/arch.h"

static effnet_status cost(const effnet_spec *spec, int64_t *params, int64_t *macs,
                          effnet_error *err) {
  en_arch *a = malloc(sizeof *a);
  if (!a) return en_fail(err, EFFNET_E_NOMEM, "out of memory");
  effnet_status st = en_arch_build(a, spec, err);
  int64_t buffers;
  if (st == EFFNET_OK) en_arch_counts(a, spec->resolution, spec->resolution, params, &buffers, macs);
  free(a);
  return st;
}

effnet_status effnet_scale_member(const effnet_spec *base, double alpha, double beta,
                                  double gamma, double phi, effnet_candidate *out,
                                  effnet_error *err) {
  if (!base || !out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_scale_member: NULL argument");
  if (!(alpha >= 1.0 && beta >= 1.0 && gamma >= 1.0 && alpha <= 10 && beta <= 10 && gamma <= 10))
    return en_fail(err, EFFNET_E_ARGUMENT, "alpha, beta, gamma must be in [1, 10] (got %g, %g, %g)",
                   alpha, beta, gamma);
  if (!(phi >= 0.0 && phi <= 20.0)) return en_fail(err, EFFNET_E_ARGUMENT, "phi %g outside [0, 20]", phi);
  memset(out, 0, sizeof *out);
  out->alpha = alpha;
  out->beta = beta;
  out->gamma = gamma;
  out->phi = phi;
  double res = floor(base->resolution * pow(gamma, phi) + 0.5);
  if (!(res >= 1 && res <= 8192))
    return en_fail(err, EFFNET_E_ARGUMENT, "resolution %d x %g^%g is out of range", base->resolution,
                   gamma, phi);
  effnet_spec s = *base;
  effnet_status st = effnet_spec_custom(&s, base->family, base->width * pow(beta, phi),
                                        base->depth * pow(alpha, phi), (int)res, err);
  if (st != EFFNET_OK) return st;
  s.num_classes = base->num_classes;
  s.padding = base->padding;
  s.bn_eps = base->bn_eps;
  out->spec = s;
  int64_t base_params, base_macs;
  st = cost(base, &base_params, &base_macs, err);
  if (st == EFFNET_OK) st = cost(&s, &out->params, &out->macs, err);
  if (st != EFFNET_OK) return st;
  out->nominal = pow(alpha * beta * beta * gamma * gamma, phi);
  out->flops_ratio = (double)out->macs / (double)base_macs;
  return EFFNET_OK;
}

static int steps_to(double max, double step) { return (int)floor((max - 1.0) / step + 1e-9); }

effnet_status effnet_scale_grid(const effnet_spec *base, const effnet_grid *g,
                                effnet_candidate **out, size_t *count, effnet_error *err) {
  if (!out || !count || !base || !g) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_scale_grid: NULL argument");
  *out = NULL;
  *count = 0;
  if (!(g->step > 0) || !(g->alpha_max >= 1) || !(g->beta_max >= 1) || !(g->gamma_max >= 1) ||
      g->alpha_max > 10 || g->beta_max > 10 || g->gamma_max > 10 || !(g->target > 0) ||
      !(g->tolerance >= 0))
    return en_fail(err, EFFNET_E_ARGUMENT, "grid: step > 0, maxima in [1, 10], target > 0 and "
                   "tolerance >= 0 are required");
  int na = steps_to(g->alpha_max, g->step) + 1, nb = steps_to(g->beta_max, g->step) + 1;
  int nc = steps_to(g->gamma_max, g->step) + 1;
  if ((double)na * nb * nc > 100000)
    return en_fail(err, EFFNET_E_LIMIT, "grid of %d x %d x %d points is too large (100000 max)", na, nb, nc);
  effnet_candidate *list = malloc((size_t)na * nb * nc * sizeof *list);
  if (!list) return en_fail(err, EFFNET_E_NOMEM, "out of memory (grid)");
  size_t n = 0;
  double closest = INFINITY;
  effnet_status st = EFFNET_OK;
  for (int i = 0; i < na && st == EFFNET_OK; i++)
    for (int j = 0; j < nb && st == EFFNET_OK; j++)
      for (int k = 0; k < nc && st == EFFNET_OK; k++) {
        double a = 1 + i * g->step, b = 1 + j * g->step, c = 1 + k * g->step;
        double nominal = a * b * b * c * c;
        /* the nominal value bounds nothing about the real one, so the real constraint has to
         * build every point; the nominal one skips the build of points that cannot pass */
        if (!g->real_flops && fabs(nominal / g->target - 1) > g->tolerance) {
          closest = fmin(closest, fabs(nominal / g->target - 1));
          continue;
        }
        st = effnet_scale_member(base, a, b, c, 1.0, &list[n], err);
        if (st != EFFNET_OK) break;
        double value = g->real_flops ? list[n].flops_ratio : nominal;
        double off = fabs(value / g->target - 1);
        closest = fmin(closest, off);
        if (off <= g->tolerance) n++;
      }
  if (st == EFFNET_OK && n == 0)
    st = en_fail(err, EFFNET_E_ARGUMENT, "no grid point meets the %s constraint %g +- %g%% "
                 "(closest is %.1f%% off): widen --tolerance or the grid",
                 g->real_flops ? "real-FLOPs" : "alpha*beta^2*gamma^2", g->target,
                 100 * g->tolerance, 100 * closest);
  if (st != EFFNET_OK) {
    free(list);
    return st;
  }
  *out = list;
  *count = n;
  return EFFNET_OK;
}
