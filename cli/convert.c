/* effnet convert: any weight file effnet reads -> effnet's safetensors (timm names, the spec,
 * padding and BN epsilon in the metadata, so later loads need no flags). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *model = NULL, *padding = NULL, *eps = NULL;
  for (int i = 0; i < argc; i++) {
    int r = cli_value(argc, argv, &i, "--model", &model);
    if (!r) r = cli_value(argc, argv, &i, "--padding", &padding);
    if (!r) r = cli_value(argc, argv, &i, "--output", &out);
    if (!r) r = cli_value(argc, argv, &i, "--bn-eps", &eps);
    if (!r) r = cli_value(argc, argv, &i, "--weights", &in);
    if (r < 0) return 2;
    if (r) continue;
    if (argv[i][0] != '-' && !in) in = argv[i];
    else if (argv[i][0] != '-' && !out) out = argv[i];
    else {
      fprintf(stderr, "effnet convert: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!in || !out) {
    fprintf(stderr, "usage: effnet convert IN OUT.safetensors [--model NAME] "
                    "[--padding same|symmetric] [--bn-eps E]\n");
    return 2;
  }
  effnet_load_options opt = {model, EFFNET_PAD_AUTO, 0.0f};
  if (padding && !strcmp(padding, "same")) opt.padding = EFFNET_PAD_TF_SAME;
  else if (padding && !strcmp(padding, "symmetric")) opt.padding = EFFNET_PAD_SYMMETRIC;
  else if (padding) {
    fprintf(stderr, "effnet convert: --padding must be 'same' or 'symmetric'\n");
    return 2;
  }
  double eps_value = 0.0;
  if (eps && !cli_double(eps, 1e-12, 0.5, &eps_value)) {
    fprintf(stderr, "effnet convert: invalid --bn-eps '%s'\n", eps);
    return 2;
  }
  opt.bn_eps = (float)eps_value;
  effnet_error err = {{0}};
  effnet_model *m = NULL;
  if (effnet_model_load(&m, in, &opt, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet convert: %s\n", err.message);
    return 1;
  }
  int rc = 0;
  if (effnet_model_save(m, out) != EFFNET_OK) {
    fprintf(stderr, "effnet convert: %s\n", effnet_model_error(m));
    rc = 1;
  } else {
    const effnet_spec *s = effnet_model_spec(m);
    printf("%s -> %s: %s (width %g, depth %g, %d classes, %s padding, BN eps %g)\n", in, out,
           s->name, s->width, s->depth, s->num_classes,
           s->padding == EFFNET_PAD_TF_SAME ? "TF-SAME" : "symmetric", s->bn_eps);
  }
  effnet_model_free(m);
  return rc;
}
