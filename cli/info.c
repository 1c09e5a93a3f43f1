/* effnet info: the generated architecture, its parameters, multiply-adds and memory. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Nominal phi of a named member (B_k, Lite_k), -1 when it has none (L2, custom). */
static double nominal_phi(const effnet_spec *s) {
  const char *n = s->name;
  if (!strncmp(n, "tf_", 3)) n += 3;
  if (n[0] == 'b' && n[1] >= '0' && n[1] <= '9' && !n[2]) return n[1] - '0';
  if (!strncmp(n, "lite", 4) && n[4] >= '0' && n[4] <= '9' && !n[5]) return n[4] - '0';
  return -1.0;
}

static void print_text(const effnet_spec *s, const effnet_info *in, double ratio, double phi) {
  printf("EfficientNet %s: %s family, width %.4g, depth %.4g, input %dx%d, %d classes\n",
         s->name, s->family == EFFNET_FAMILY_LITE ? "Lite" : "B", s->width, s->depth,
         in->input_h, in->input_w, in->num_classes);
  printf("%-5s %-22s %6s %6s %6s %6s %6s %7s %4s %11s\n", "stage", "operator", "expand",
         "kernel", "stride", "in", "out", "repeats", "SE", "output");
  printf("%-5d %-22s %6s %6d %6d %6d %6d %7d %4s %5dx%-5d\n", 1, "conv3x3 (stem)", "-", 3, 2, 3,
         in->stem_channels, 1, "-", in->stem_h, in->stem_w);
  for (int i = 0; i < in->num_stages; i++) {
    const effnet_stage_info *st = &in->stages[i];
    char op[32], se[16];
    snprintf(op, sizeof op, "MBConv%d k%dx%d%s", st->expand, st->kernel, st->kernel,
             st->se_channels ? " +SE" : "");
    snprintf(se, sizeof se, "%d", st->se_channels);
    printf("%-5d %-22s %6d %6d %6d %6d %6d %7d %4s %5dx%-5d\n", i + 2, op, st->expand,
           st->kernel, st->stride, st->in_channels, st->out_channels, st->repeats,
           st->se_channels ? se : "-", st->out_h, st->out_w);
  }
  int last = in->stages[in->num_stages - 1].out_channels;
  const effnet_stage_info *ls = &in->stages[in->num_stages - 1];
  printf("%-5d %-22s %6s %6d %6d %6d %6d %7d %4s %5dx%-5d\n", in->num_stages + 2,
         "conv1x1, pool, FC", "-", 1, 1, last, in->head_channels, 1, "-", ls->out_h, ls->out_w);
  printf("blocks: %d\n", in->num_blocks);
  printf("parameters: %lld (%.3f M), plus %lld BN statistics\n", (long long)in->params,
         in->params / 1e6, (long long)in->buffers);
  printf("multiply-adds: %lld (%.3f G)\n", (long long)in->macs, in->macs / 1e9);
  printf("activation memory (batch 1): %.2f MiB\n", in->activation_bytes / 1048576.0);
  if (phi >= 0)
    printf("FLOPs vs %s: %.3fx; compound scaling predicts 2^%g = %.3fx (drift %.3f from rounding"
           " and resolution)\n", s->family == EFFNET_FAMILY_LITE ? "Lite0" : "B0", ratio, phi,
           pow(2.0, phi), ratio / pow(2.0, phi));
  else
    printf("FLOPs vs %s: %.3fx\n", s->family == EFFNET_FAMILY_LITE ? "Lite0" : "B0", ratio);
}

static void print_json(const effnet_spec *s, const effnet_info *in, double ratio, double phi) {
  printf("{\"name\": \"%s\", \"family\": \"%s\", \"width\": %.17g, \"depth\": %.17g, "
         "\"resolution\": %d, \"input_h\": %d, \"input_w\": %d, \"num_classes\": %d, "
         "\"params\": %lld, \"bn_buffers\": %lld, \"macs\": %lld, \"activation_bytes\": %lld, "
         "\"blocks\": %d, \"stem\": %d, \"stem_h\": %d, \"stem_w\": %d, \"head\": %d, "
         "\"flops_vs_base\": %.6f, ",
         s->name, s->family == EFFNET_FAMILY_LITE ? "lite" : "b", s->width, s->depth,
         s->resolution, in->input_h, in->input_w, in->num_classes, (long long)in->params,
         (long long)in->buffers, (long long)in->macs, (long long)in->activation_bytes,
         in->num_blocks, in->stem_channels, in->stem_h, in->stem_w, in->head_channels, ratio);
  if (phi >= 0) printf("\"phi\": %.17g, \"flops_vs_2_pow_phi\": %.6f, ", phi, ratio / pow(2.0, phi));
  printf("\"stages\": [");
  for (int i = 0; i < in->num_stages; i++) {
    const effnet_stage_info *st = &in->stages[i];
    printf("%s{\"expand\": %d, \"kernel\": %d, \"stride\": %d, \"in_channels\": %d, "
           "\"channels\": %d, \"repeats\": %d, \"se_channels\": %d, \"out_h\": %d, "
           "\"out_w\": %d}", i ? ", " : "", st->expand, st->kernel, st->stride,
           st->in_channels, st->out_channels, st->repeats, st->se_channels, st->out_h, st->out_w);
  }
  printf("]}\n");
}

static int parse_size(const char *s, long *h, long *w) {
  char hs[32], ws[32];
  const char *x = strchr(s, 'x');
  if (!x || x - s >= (long)sizeof hs || strlen(x + 1) >= sizeof ws) return 0;
  snprintf(hs, sizeof hs, "%.*s", (int)(x - s), s);
  snprintf(ws, sizeof ws, "%s", x + 1);
  return cli_int(hs, 1, 16384, h) && cli_int(ws, 1, 16384, w);
}

int cli_info(int argc, char **argv) {
  cli_model_args m = {0};
  int json = 0;
  const char *size = NULL;
  for (int i = 0; i < argc; i++) {
    int r = cli_model_option(argc, argv, &i, &m);
    if (r < 0) return 2;
    if (r) continue;
    if ((r = cli_value(argc, argv, &i, "--size", &size)) != 0) {
      if (r < 0) return 2;
    } else if (cli_flag(argv[i], "--json")) {
      json = 1;
    } else if (argv[i][0] != '-' && !m.name) {
      m.name = argv[i];
    } else {
      fprintf(stderr, "effnet info: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  effnet_spec spec;
  double phi;
  if (cli_model_spec(&m, &spec, &phi)) return 2;
  if (phi < 0) phi = nominal_phi(&spec);
  long h = spec.resolution, w = spec.resolution;
  if (size && !parse_size(size, &h, &w)) {
    fprintf(stderr, "effnet info: invalid --size '%s' (expected HxW)\n", size);
    return 2;
  }
  effnet_info info, base_info;
  effnet_spec base;
  effnet_error err = {{0}};
  effnet_spec_custom(&base, spec.family, 1.0, 1.0, 224, NULL);
  base.num_classes = spec.num_classes;
  if (effnet_spec_describe(&spec, (int)h, (int)w, &info, &err) != EFFNET_OK ||
      effnet_spec_describe(&base, 224, 224, &base_info, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet info: %s\n", err.message);
    return 1;
  }
  double ratio = (double)info.macs / (double)base_info.macs;
  if (json) print_json(&spec, &info, ratio, phi);
  else print_text(&spec, &info, ratio, phi);
  return 0;
}
