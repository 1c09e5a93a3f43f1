/* effnet command-line tool: shared helpers. The CLI uses only the public API. */
#ifndef EFFNET_CLI_H
#define EFFNET_CLI_H

#include "effnet.h"

/* Matches argv[*i] against --name (as "--name VALUE" or "--name=VALUE"). On a match stores
 * the value, advances *i past it and returns 1; returns -1 when the value is missing. */
int cli_value(int argc, char **argv, int *i, const char *name, const char **value);
int cli_flag(const char *arg, const char *name);

/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_int(const char *s, long lo, long hi, long *out);
int cli_double(const char *s, double lo, double hi, double *out);

/* Model selection shared by the commands: a name, or --phi/--alpha/--beta/--gamma, or
 * --width/--depth[/--resolution][--lite], plus --classes. */
typedef struct cli_model_args {
  const char *name;
  const char *phi, *alpha, *beta, *gamma;
  const char *width, *depth, *resolution, *classes;
  int lite;
} cli_model_args;

/* Consumes a model option at argv[*i]; returns 1 if it was one, 0 if not, -1 on error. */
int cli_model_option(int argc, char **argv, int *i, cli_model_args *m);
/* Builds the spec; prints the error and returns non-zero on failure. */
int cli_model_spec(const cli_model_args *m, effnet_spec *spec, double *phi_out);

int cli_info(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_convert(int argc, char **argv);

#endif
