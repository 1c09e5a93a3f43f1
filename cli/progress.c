/* A progress bar on stderr, only when stderr is a terminal (never in pipes or logs). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, size_t total, const char *unit) {
  p->total = total;
  p->done = 0;
  p->unit = unit;
  p->start = now();
  p->enabled = total > 1 && isatty(STDERR_FILENO);
  p->shown = 0;
}

void cli_progress_clear(cli_progress *p) {
  if (p->enabled && p->shown) fputs("\r\033[K", stderr);
  p->shown = 0;
}

void cli_progress_update(cli_progress *p, size_t done) {
  p->done = done;
  if (!p->enabled) return;
  double elapsed = now() - p->start, rate = elapsed > 0 ? done / elapsed : 0.0;
  int width = 30, fill = p->total ? (int)(width * done / p->total) : width;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  double eta = rate > 0 ? (p->total - done) / rate : 0.0;
  fprintf(stderr, "\r\033[K[%s] %zu/%zu %s, %.1f %s/s, ETA %.0f s", bar, done, p->total,
          p->unit, rate, p->unit, eta);
  fflush(stderr);
  p->shown = 1;
}
