/* effnet search / scale: the compound-scaling method as a tool (paper section 3.3, step 1 and
 * step 2; its Figures 3 and 4 as modes). Internal to the CLI. */
#ifndef EFFNET_CLI_SEARCH_H
#define EFFNET_CLI_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

/* ------------------------------------------------------------------ results.csv */

/* One finished run (a candidate trained with one seed). CSV columns, in this order:
 * mode,alpha,beta,gamma,width,depth,resolution,params,macs,seed,accuracy,seconds */
typedef struct search_row {
  char mode[32];        /* "compound", "width", "depth", "resolution", "width@d1.2r1.3", ... */
  double alpha, beta, gamma;
  double width, depth;  /* absolute multipliers of the B0/Lite0 table */
  int resolution;
  int64_t params, macs;
  uint64_t seed;
  double accuracy;      /* top-1 on the test split, [0, 1] */
  double seconds;       /* training + evaluation wall time */
} search_row;

#define SEARCH_CSV_HEADER "mode,alpha,beta,gamma,width,depth,resolution,params,macs,seed,accuracy,seconds"

/* Read path. A missing file gives 0 rows and status OK. A file that does not start with
 * SEARCH_CSV_HEADER (an empty file included), or any malformed line (wrong field count, an
 * empty line, CR or NUL bytes, a number that does not parse or is out of range, a mode with
 * characters outside [A-Za-z0-9@._-] or longer than 31), is EFFNET_E_FORMAT with
 * "path:LINE: reason" (the header is line 1); the file is never modified by reading. Ranges:
 * alpha, beta, gamma in [1, 10]; width, depth in (0, 100]; resolution 1..8192; params, macs,
 * seed >= 0; accuracy in [0, 1]; seconds >= 0. Numbers are plain decimals (no hex, inf, nan
 * or blanks). A last line without a trailing newline (a write cut by a crash) is ignored and
 * reported through *torn (may be NULL) so the caller can warn; search_csv_append then
 * rewrites the file without it. *rows is malloc'ed (NULL for 0 rows); the caller frees it.
 * More than 10 million rows or 1 GiB is EFFNET_E_LIMIT; unreadable is EFFNET_E_IO. */
effnet_status search_csv_read(const char *path, search_row **rows, size_t *count, int *torn,
                              effnet_error *err);

/* Append one row durably: the whole file (header, the rows already there, the new one) is
 * rewritten to a temp file, fsynced and renamed over path, so a crash leaves either the old or
 * the new file and never loses a finished row. rows/count: what is already there. Every row
 * is checked against the reader's rules first (EFFNET_E_ARGUMENT, file untouched), so the
 * file written always reads back. Doubles are written in their shortest exact form, seconds
 * with 3 decimals. */
effnet_status search_csv_append(const char *path, const search_row *rows, size_t count,
                                const search_row *row, effnet_error *err);

/* 1 if two rows describe the same run (mode, alpha, beta, gamma, width, depth, resolution,
 * seed; doubles compared to 1e-9). */
int search_row_same_run(const search_row *a, const search_row *b);

/* ------------------------------------------------------------------ PNG plots */

typedef struct plot_series {
  const char *label;    /* legend text (ASCII) */
  const double *x, *y;  /* count points */
  const double *y_err;  /* optional error bars (+-), may be NULL */
  size_t count;
  int connect;          /* 1: draw a line through the points in x order; 0: markers only */
} plot_series;

typedef struct plot_spec {
  const char *title, *x_label, *y_label; /* ASCII */
  int log_x;            /* logarithmic x axis (FLOPs) */
  const plot_series *series;
  size_t series_count;
  int marked_series, marked_index; /* a point drawn with a ring and "chosen" label; -1 none */
  int width, height;    /* pixels; 0: 900 x 600 */
} plot_spec;

/* Render to an 8-bit RGB PNG (libpng), written atomically (temp file + rename). Axes with
 * ticks and numeric tick labels, a legend, distinct colours and marker shapes per series.
 * Text uses an embedded bitmap font. Non-finite points are skipped; an empty plot still gets
 * axes and a "no data" note. Points with x <= 0 on a log axis and values beyond 1e150 are
 * skipped too. Series without a label are left out of the legend; labels are cut at 48
 * characters. Sizes: 160..4096 pixels a side (else EFFNET_E_ARGUMENT); text and line widths
 * grow with the image. Colours repeat after 8 series, with another marker. */
effnet_status plot_png(const char *path, const plot_spec *spec, effnet_error *err);

/* ------------------------------------------------------------------ the run list */

/* One unit of work: a member of the family trained with one seed. Self-contained (everything
 * needed to run it is here), so it can go to a local worker process now and to another
 * machine later. */
typedef struct search_run {
  search_row row;       /* filled except accuracy and seconds */
  effnet_spec spec;
  char key[160];        /* folder name under OUT/runs/ */
  char arch[256];       /* the built network (stem, head, stage channels and repeats, input
                           side): rounding maps some distinct (alpha, beta, gamma) to one
                           network, which is then trained once per seed */
} search_run;

typedef struct search_plan {
  search_run *runs;
  size_t count, cap;
} search_plan;

typedef struct search_options {
  const char *data, *out;
  effnet_spec base;
  const char *modes;       /* comma list: compound, width, depth, resolution, width-dr */
  effnet_grid grid;
  const char *multipliers; /* single-dimension modes: comma list (default 1.25,1.5,2,2.5) */
  const char *pairs;       /* width-dr: d:r pairs (default 1:1,1:1.3,2:1,2:1.3) */
  int seeds;
  int workers, threads;
  int epochs;              /* budget: epochs per run, or */
  int64_t steps;           /* budget: steps per run (wins when > 0) */
  int batch;
  const char *optimizer, *lr;
  int64_t eval_limit;
} search_options;

/* Builds the list for opt (every mode, the base as a reference, every seed); prints errors. */
int search_plan_build(search_plan *p, const search_options *opt);
void search_plan_free(search_plan *p);

/* Summary on stdout and the PNG plots in opt->out; returns the chosen compound candidate's
 * index into rows (or -1). */
int search_report(const search_options *opt, const search_row *rows, size_t count);

void search_usage_print(void);

/* Runs the plan in worker processes, appending to OUT/results.csv; 0 on success. */
int search_execute(const search_options *opt);

int cli_search(int argc, char **argv);
int cli_scale(int argc, char **argv);

#endif
