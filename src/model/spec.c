/* Named members of the family and the two ways to make new ones (literal compound scaling and
 * explicit multipliers). Coefficients: TF efficientnet_builder.efficientnet_params and
 * lite/efficientnet_lite_builder.py (same numbers in timm and lukemelas). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "model/arch.h"

typedef struct named_variant {
  const char *name;
  effnet_family family;
  double width, depth;
  int resolution;
  double dropout;
} named_variant;

static const named_variant variants[] = {
    {"b0", EFFNET_FAMILY_B, 1.0, 1.0, 224, 0.2},
    {"b1", EFFNET_FAMILY_B, 1.0, 1.1, 240, 0.2},
    {"b2", EFFNET_FAMILY_B, 1.1, 1.2, 260, 0.3},
    {"b3", EFFNET_FAMILY_B, 1.2, 1.4, 300, 0.3},
    {"b4", EFFNET_FAMILY_B, 1.4, 1.8, 380, 0.4},
    {"b5", EFFNET_FAMILY_B, 1.6, 2.2, 456, 0.4},
    {"b6", EFFNET_FAMILY_B, 1.8, 2.6, 528, 0.5},
    {"b7", EFFNET_FAMILY_B, 2.0, 3.1, 600, 0.5},
    {"b8", EFFNET_FAMILY_B, 2.2, 3.6, 672, 0.5},
    {"l2", EFFNET_FAMILY_B, 4.3, 5.3, 800, 0.5},
    {"lite0", EFFNET_FAMILY_LITE, 1.0, 1.0, 224, 0.2},
    {"lite1", EFFNET_FAMILY_LITE, 1.0, 1.1, 240, 0.2},
    {"lite2", EFFNET_FAMILY_LITE, 1.1, 1.2, 260, 0.3},
    {"lite3", EFFNET_FAMILY_LITE, 1.2, 1.4, 280, 0.3},
    {"lite4", EFFNET_FAMILY_LITE, 1.4, 1.8, 300, 0.3},
};

static void spec_defaults(effnet_spec *s) {
  memset(s, 0, sizeof *s);
  s->family = EFFNET_FAMILY_B;
  s->width = 1.0;
  s->depth = 1.0;
  s->resolution = 224;
  s->dropout = 0.2;
  s->drop_path = 0.2; /* TF survival_prob 0.8, torchvision stochastic_depth_prob 0.2 */
  s->num_classes = 1000;
  s->padding = EFFNET_PAD_AUTO;
}

/* Strip a known prefix; returns the rest or NULL. Case-insensitive. */
static const char *strip_prefix(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  return strncasecmp(s, prefix, n) == 0 ? s + n : NULL;
}

effnet_status effnet_spec_from_name(effnet_spec *out, const char *name, effnet_error *err) {
  if (!out || !name) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_spec_from_name: NULL argument");
  const char *base = name;
  int tf = 0;
  const char *rest;
  if ((rest = strip_prefix(base, "tf_efficientnet_"))) { base = rest; tf = 1; }
  else if ((rest = strip_prefix(base, "tf-efficientnet-"))) { base = rest; tf = 1; }
  else if ((rest = strip_prefix(base, "efficientnet_"))) base = rest;
  else if ((rest = strip_prefix(base, "efficientnet-"))) base = rest;
  else if ((rest = strip_prefix(base, "efficientnet"))) base = rest;
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    if (strcasecmp(base, variants[i].name) != 0) continue;
    spec_defaults(out);
    snprintf(out->name, sizeof out->name, "%s%s", tf ? "tf_" : "", variants[i].name);
    out->family = variants[i].family;
    out->width = variants[i].width;
    out->depth = variants[i].depth;
    out->resolution = variants[i].resolution;
    out->dropout = variants[i].dropout;
    if (tf) {
      out->padding = EFFNET_PAD_TF_SAME;
      out->bn_eps = 1e-3f;
    }
    return EFFNET_OK;
  }
  return en_fail(err, EFFNET_E_ARGUMENT,
                 "unknown model '%s' (expected b0..b8, l2, lite0..lite4, optionally prefixed "
                 "efficientnet_ or tf_efficientnet_)", name);
}

static effnet_status check_multipliers(double width, double depth, int resolution,
                                       effnet_error *err) {
  if (!(width > 0.0 && width <= EN_MAX_WIDTH))
    return en_fail(err, EFFNET_E_ARGUMENT, "width multiplier %g outside (0, %g]", width,
                   EN_MAX_WIDTH);
  if (!(depth > 0.0 && depth <= EN_MAX_DEPTH))
    return en_fail(err, EFFNET_E_ARGUMENT, "depth multiplier %g outside (0, %g]", depth,
                   EN_MAX_DEPTH);
  if (resolution < 1 || resolution > 8192)
    return en_fail(err, EFFNET_E_ARGUMENT, "resolution %d outside [1, 8192]", resolution);
  return EFFNET_OK;
}

effnet_status effnet_spec_custom(effnet_spec *out, effnet_family family, double width,
                                 double depth, int resolution, effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_spec_custom: NULL spec");
  if (family != EFFNET_FAMILY_B && family != EFFNET_FAMILY_LITE)
    return en_fail(err, EFFNET_E_ARGUMENT, "unknown family %d", (int)family);
  effnet_status st = check_multipliers(width, depth, resolution, err);
  if (st != EFFNET_OK) return st;
  spec_defaults(out);
  snprintf(out->name, sizeof out->name, "custom");
  out->family = family;
  out->width = width;
  out->depth = depth;
  out->resolution = resolution;
  return EFFNET_OK;
}

effnet_status effnet_spec_compound(effnet_spec *out, double phi, double alpha, double beta,
                                   double gamma, effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_spec_compound: NULL spec");
  if (!(phi >= 0.0 && phi <= 20.0))
    return en_fail(err, EFFNET_E_ARGUMENT, "phi %g outside [0, 20]", phi);
  if (!(alpha >= 1.0 && beta >= 1.0 && gamma >= 1.0))
    return en_fail(err, EFFNET_E_ARGUMENT,
                   "alpha, beta, gamma must be >= 1 (got %g, %g, %g)", alpha, beta, gamma);
  double depth = pow(alpha, phi), width = pow(beta, phi);
  double res = floor(224.0 * pow(gamma, phi) + 0.5);
  if (!(res <= 8192.0))
    return en_fail(err, EFFNET_E_ARGUMENT, "resolution 224*%g^%g is too large", gamma, phi);
  effnet_status st = effnet_spec_custom(out, EFFNET_FAMILY_B, width, depth, (int)res, err);
  if (st != EFFNET_OK) return st;
  snprintf(out->name, sizeof out->name, "phi%g", phi);
  /* dropout rises linearly 0.2 (B0) -> 0.5 (B7, phi ~ 7) in the paper's recipe */
  out->dropout = fmin(0.5, 0.2 + 0.3 * phi / 7.0);
  return EFFNET_OK;
}
