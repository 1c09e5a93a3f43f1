/* plot_png (see search.h): scatter/line plots rendered on an RGB canvas and encoded with
 * libpng. Every shape (line, marker, ring) is drawn from its signed distance to the pixel
 * centre, which gives antialiased edges of any thickness from one small routine. Text uses
 * the bitmap font of plot_font.c, magnified with the image so it stays readable. */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"
#include "search.h"

const unsigned char *plot_font_glyph(int c); /* plot_font.c */

#define PLOT_MIN_SIDE 160
#define PLOT_MAX_SIDE 4096
#define PLOT_MAX_TICKS 96
#define PLOT_LABEL_MAX 48 /* legend text is cut here so the box stays inside the plot */

typedef struct colour {
  unsigned char r, g, b;
} colour;

static const colour WHITE = {255, 255, 255}, INK = {30, 30, 30}, SOFT = {70, 70, 70},
                    GRID = {230, 230, 230}, FRAME = {110, 110, 110}, BORDER = {200, 200, 200};
/* Distinct hues that stay apart for the common colour-vision deficiencies; beyond 8 series the
 * colours repeat with a different marker. */
static const colour PALETTE[8] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                  {214, 39, 40},  {148, 103, 189}, {140, 86, 75},
                                  {227, 119, 194}, {23, 190, 207}};

typedef struct canvas {
  unsigned char *rgb;
  int w, h;
  int cx0, cy0, cx1, cy1; /* clip rectangle, end exclusive */
} canvas;

/* ------------------------------------------------------------------ pixels and shapes */

static void blend(canvas *c, int x, int y, colour k, double a) {
  if (!(a > 0) || x < c->cx0 || y < c->cy0 || x >= c->cx1 || y >= c->cy1) return;
  if (a > 1) a = 1;
  unsigned char *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
  const int v[3] = {k.r, k.g, k.b};
  for (int i = 0; i < 3; i++) p[i] = (unsigned char)lround(p[i] + (v[i] - p[i]) * a);
}

static void fill_rect(canvas *c, int x0, int y0, int x1, int y1, colour k, double a) {
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) blend(c, x, y, k, a);
}

static void clip_all(canvas *c) {
  c->cx0 = c->cy0 = 0;
  c->cx1 = c->w;
  c->cy1 = c->h;
}

enum { SHAPE_SEGMENT, SHAPE_DISC, SHAPE_RING, SHAPE_POLY };

typedef struct shape {
  int kind;
  double ax, ay, bx, by; /* segment ends; the centre of a disc or ring is (ax, ay) */
  double r;              /* segment half width, disc or ring radius */
  double hw;             /* ring half thickness */
  int n;                 /* polygon vertices, absolute coordinates */
  double px[12], py[12];
} shape;

static double segment_distance(double x, double y, double ax, double ay, double bx, double by) {
  double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
  double t = l2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / l2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return hypot(x - ax - t * dx, y - ay - t * dy);
}

/* Exact signed distance to a simple polygon: nearest edge, sign from the even-odd rule. */
static double polygon_distance(const shape *s, double x, double y) {
  double d = INFINITY;
  int inside = 0;
  for (int i = 0, j = s->n - 1; i < s->n; j = i++) {
    d = fmin(d, segment_distance(x, y, s->px[j], s->py[j], s->px[i], s->py[i]));
    if ((s->py[i] > y) != (s->py[j] > y) &&
        x < (s->px[j] - s->px[i]) * (y - s->py[i]) / (s->py[j] - s->py[i]) + s->px[i])
      inside = !inside;
  }
  return inside ? -d : d;
}

static double shape_distance(const shape *s, double x, double y) {
  switch (s->kind) {
    case SHAPE_SEGMENT: return segment_distance(x, y, s->ax, s->ay, s->bx, s->by) - s->r;
    case SHAPE_DISC: return hypot(x - s->ax, y - s->ay) - s->r;
    case SHAPE_RING: return fabs(hypot(x - s->ax, y - s->ay) - s->r) - s->hw;
    default: return polygon_distance(s, x, y);
  }
}

static void shape_bounds(const shape *s, double b[4]) {
  if (s->kind == SHAPE_POLY) {
    b[0] = b[2] = s->px[0];
    b[1] = b[3] = s->py[0];
    for (int i = 1; i < s->n; i++) {
      b[0] = fmin(b[0], s->px[i]), b[2] = fmax(b[2], s->px[i]);
      b[1] = fmin(b[1], s->py[i]), b[3] = fmax(b[3], s->py[i]);
    }
    return;
  }
  double e = s->r + s->hw;
  int seg = s->kind == SHAPE_SEGMENT;
  double bx = seg ? s->bx : s->ax, by = seg ? s->by : s->ay;
  b[0] = fmin(s->ax, bx) - e, b[2] = fmax(s->ax, bx) + e;
  b[1] = fmin(s->ay, by) - e, b[3] = fmax(s->ay, by) + e;
}

/* double -> int without the undefined behaviour of converting an out-of-range value. */
static int clampi(double v, int lo, int hi) { return v >= hi ? hi : v > lo ? (int)v : lo; }

/* Coverage of a pixel = how far its centre lies inside the edge, clamped to [0, 1]. */
static void paint(canvas *c, const shape *s, colour k, double alpha) {
  double b[4];
  shape_bounds(s, b);
  if (!(isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]))) return;
  int x0 = clampi(floor(b[0]) - 1, c->cx0, c->cx1), x1 = clampi(ceil(b[2]) + 2, c->cx0, c->cx1);
  int y0 = clampi(floor(b[1]) - 1, c->cy0, c->cy1), y1 = clampi(ceil(b[3]) + 2, c->cy0, c->cy1);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      double cover = 0.5 - shape_distance(s, x + 0.5, y + 0.5);
      if (cover > 0) blend(c, x, y, k, alpha * fmin(cover, 1));
    }
}

static void line(canvas *c, double x0, double y0, double x1, double y1, double half, colour k,
                 double alpha) {
  shape s = {SHAPE_SEGMENT, x0, y0, x1, y1, half, 0, 0, {0}, {0}};
  paint(c, &s, k, alpha);
}

static void ring(canvas *c, double x, double y, double r, double half, colour k) {
  shape s = {SHAPE_RING, x, y, 0, 0, r, half, 0, {0}, {0}};
  paint(c, &s, k, 1);
}

/* Marker kinds: circle, square, triangle up, diamond, triangle down, star, plus, cross. The
 * polygons are in units of the radius; sizes are tuned so every kind looks equally heavy. */
static int marker_polygon(int kind, double *px, double *py) {
  static const double square[] = {-.85, -.85, .85, -.85, .85, .85, -.85, .85};
  static const double up[] = {0, -1.25, 1.15, .8, -1.15, .8};
  static const double diamond[] = {0, -1.25, 1.2, 0, 0, 1.25, -1.2, 0};
  static const double plus[] = {-.38, -1.2, .38, -1.2, .38, -.38, 1.2, -.38, 1.2, .38, .38, .38,
                                .38, 1.2, -.38, 1.2, -.38, .38, -1.2, .38, -1.2, -.38, -.38, -.38};
  const double *v = kind == 1 ? square : kind == 2 || kind == 4 ? up : kind == 3 ? diamond : plus;
  int n = kind == 1 || kind == 3 ? 4 : kind == 2 || kind == 4 ? 3 : 12;
  if (kind == 5) { /* star: alternate outer and inner radius */
    for (int i = 0; i < 10; i++) {
      double a = -M_PI / 2 + i * M_PI / 5, r = i % 2 ? 0.6 : 1.45;
      px[i] = r * cos(a), py[i] = r * sin(a);
    }
    return 10;
  }
  for (int i = 0; i < n; i++) {
    double x = v[2 * i], y = v[2 * i + 1];
    if (kind == 4) y = -y;                        /* triangle down */
    if (kind == 7) px[i] = (x - y) * M_SQRT1_2, py[i] = (x + y) * M_SQRT1_2; /* cross */
    else px[i] = x, py[i] = y;
  }
  return n;
}

static void marker(canvas *c, int kind, double x, double y, double r, colour k) {
  shape s = {SHAPE_DISC, x, y, 0, 0, r, 0, 0, {0}, {0}};
  if (kind % 8 != 0) {
    s.kind = SHAPE_POLY;
    s.n = marker_polygon(kind % 8, s.px, s.py);
    for (int i = 0; i < s.n; i++) s.px[i] = x + r * s.px[i], s.py[i] = y + r * s.py[i];
  }
  paint(c, &s, k, 1);
}

/* ------------------------------------------------------------------ text */

static int text_width(const char *t, int s) {
  size_t n = strlen(t);
  return n ? (int)n * 6 * s - s : 0;
}

/* (x, y): top-left of the first glyph; rotated text runs upwards from (x, y) = its bottom-left
 * corner, glyph tops facing left. */
static void draw_text(canvas *c, int x, int y, const char *t, int s, colour k, int rotated) {
  for (int i = 0; t[i]; i++) {
    const unsigned char *g = plot_font_glyph((unsigned char)t[i]);
    for (int gy = 0; gy < 9; gy++)
      for (int gx = 0; gx < 5; gx++) {
        if (!(g[gy] >> (4 - gx) & 1)) continue;
        int u = (i * 6 + gx) * s, v = gy * s;
        if (rotated) fill_rect(c, x + v, y - u - s, x + v + s, y - u, k, 1);
        else fill_rect(c, x + u, y + v, x + u + s, y + v + s, k, 1);
      }
  }
}

/* ------------------------------------------------------------------ axes and ticks */

typedef struct axis {
  double lo, hi;
  int log;
  double p0, p1; /* pixel positions of lo and hi */
} axis;

typedef struct tick {
  double v;
  int major; /* gridline and label */
  char label[24];
} tick;

typedef struct ticks {
  tick t[PLOT_MAX_TICKS];
  int n;
} ticks;

static double axis_px(const axis *a, double v) {
  double f = a->log ? log10(v) : v, lo = a->log ? log10(a->lo) : a->lo;
  double hi = a->log ? log10(a->hi) : a->hi;
  return a->p0 + (a->p1 - a->p0) * (f - lo) / (hi - lo);
}

/* %g without the padded exponent ("2e+06" -> "2e6"). */
static void format_value(char *buf, size_t size, double v, int decimals) {
  if (decimals >= 0 && decimals <= 6 && fabs(v) < 1e6) snprintf(buf, size, "%.*f", decimals, v);
  else snprintf(buf, size, "%.4g", v);
  char *e = strchr(buf, 'e');
  if (!e) return;
  char *d = e + 1;
  if (*d == '+') memmove(d, d + 1, strlen(d));
  if (*d == '-') d++;
  while (d[0] == '0' && d[1]) memmove(d, d + 1, strlen(d));
}

static void add_tick(ticks *t, double v, int major, int decimals) {
  if (t->n >= PLOT_MAX_TICKS) return;
  tick *k = &t->t[t->n++];
  k->v = v;
  k->major = major;
  format_value(k->label, sizeof k->label, v, decimals);
}

/* 1-2-5 steps, at most 7 intervals over the range. */
static void linear_ticks(const axis *a, ticks *t) {
  double raw = (a->hi - a->lo) / 7, m = pow(10, floor(log10(raw))), f = raw / m;
  double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * m;
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  double k0 = ceil(a->lo / step - 1e-9), k1 = floor(a->hi / step + 1e-9);
  for (int i = 0; k0 + i <= k1 && i < PLOT_MAX_TICKS; i++) {
    double v = (k0 + i) * step;
    add_tick(t, fabs(v) < step * 1e-9 ? 0 : v, 1, decimals);
  }
}

/* Ticks at m * 10^e for each mantissa m in the range; adds them when t is non-NULL. */
static int log_pass(const axis *a, const int *mant, int nm, ticks *t, int major) {
  int n = 0;
  for (int e = (int)floor(log10(a->lo)) - 1; e <= (int)ceil(log10(a->hi)); e++)
    for (int i = 0; i < nm; i++) {
      double v = mant[i] * pow(10, e);
      if (v < a->lo * (1 - 1e-12) || v > a->hi * (1 + 1e-12)) continue;
      n++;
      if (t) add_tick(t, v, major, e < 0 ? -e : 0);
    }
  return n;
}

/* Decades when the axis spans two or more; below that also 2 and 5 (then every mantissa,
 * then plain linear steps) so that at least three values are labelled. */
static void log_ticks(const axis *a, ticks *t) {
  static const int one[] = {1}, minor9[] = {2, 3, 4, 5, 6, 7, 8, 9}, ofs[] = {1, 2, 5},
                   minor6[] = {3, 4, 6, 7, 8, 9}, all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  double span = log10(a->hi) - log10(a->lo);
  if (span >= 2) {
    log_pass(a, one, 1, t, 1);
    if (span <= 8) log_pass(a, minor9, 8, t, 0);
  } else if (log_pass(a, ofs, 3, NULL, 1) >= 3) {
    log_pass(a, ofs, 3, t, 1);
    log_pass(a, minor6, 6, t, 0);
  } else if (log_pass(a, all, 9, NULL, 1) >= 3) {
    log_pass(a, all, 9, t, 1);
  } else {
    linear_ticks(a, t);
  }
}

static int by_value(const void *pa, const void *pb) {
  const tick *a = pa, *b = pb;
  return (a->v > b->v) - (a->v < b->v);
}

static void make_ticks(const axis *a, ticks *t) {
  t->n = 0;
  if (a->log) log_ticks(a, t);
  else linear_ticks(a, t);
  qsort(t->t, (size_t)t->n, sizeof t->t[0], by_value);
}

/* Labels that would collide with the previous one (or leave the image) lose their label and
 * gridline, keeping a small tick. */
static void thin_labels(const axis *a, ticks *t, int s, int vertical, int limit) {
  double last = -INFINITY;
  for (int i = 0; i < t->n; i++) {
    tick *k = &t->t[i];
    if (!k->major) continue;
    double p = axis_px(a, k->v), half = vertical ? 4.5 * s : text_width(k->label, s) / 2.0;
    double from = vertical ? -p : p; /* y pixels grow downwards: walk them upwards */
    if (from - half < last || (!vertical && (p - half < 0 || p + half > limit))) {
      k->major = 0;
      continue;
    }
    last = from + half + 3 * s;
  }
}

/* ------------------------------------------------------------------ data */

/* Values beyond 1e150 are skipped like non-finite ones: the axis span must stay finite. */
#define PLOT_HUGE 1e150

static int usable(const plot_spec *sp, const plot_series *se, size_t i) {
  return fabs(se->x[i]) < PLOT_HUGE && fabs(se->y[i]) < PLOT_HUGE && (!sp->log_x || se->x[i] > 0);
}

static double error_of(const plot_series *se, size_t i) {
  return se->y_err && se->y_err[i] > 0 && se->y_err[i] < PLOT_HUGE ? se->y_err[i] : 0;
}

/* Data limits padded by a margin; returns the number of drawable points. */
static size_t data_axes(const plot_spec *sp, axis *ax, axis *ay) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  size_t n = 0;
  for (size_t s = 0; s < sp->series_count; s++)
    for (size_t i = 0; i < sp->series[s].count; i++) {
      const plot_series *se = &sp->series[s];
      if (!usable(sp, se, i)) continue;
      double x = sp->log_x ? log10(se->x[i]) : se->x[i], e = error_of(se, i);
      x0 = fmin(x0, x), x1 = fmax(x1, x);
      y0 = fmin(y0, se->y[i] - e), y1 = fmax(y1, se->y[i] + e);
      n++;
    }
  if (!n) x0 = 0, x1 = sp->log_x ? 3 : 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-12 * fmax(1, fabs(x0))) { /* one x value: a decade's fifth either side */
    double d = sp->log_x ? 0.2 : fmax(fabs(x0) * 0.1, 0.5);
    x0 -= d, x1 += d;
  }
  if (y1 - y0 < 1e-12 * fmax(1, fabs(y0)))
    y0 -= fmax(fabs(y0) * 0.1, 0.5), y1 += fmax(fabs(y1) * 0.1, 0.5);
  double px = (x1 - x0) * 0.06, py = (y1 - y0) * 0.08;
  ax->lo = x0 - px, ax->hi = x1 + px, ax->log = sp->log_x;
  if (sp->log_x) ax->lo = pow(10, ax->lo), ax->hi = pow(10, ax->hi);
  ay->lo = y0 - py, ay->hi = y1 + py, ay->log = 0;
  return n;
}

typedef struct pt {
  double x, y;
} pt;

static int by_x(const void *pa, const void *pb) {
  const pt *a = pa, *b = pb;
  return (a->x > b->x) - (a->x < b->x);
}

/* A series' drawable points in pixels, in x order. */
static size_t series_points(const plot_spec *sp, size_t s, const axis *ax, const axis *ay,
                            pt *out) {
  const plot_series *se = &sp->series[s];
  size_t n = 0;
  for (size_t i = 0; i < se->count; i++)
    if (usable(sp, se, i)) out[n++] = (pt){axis_px(ax, se->x[i]), axis_px(ay, se->y[i])};
  qsort(out, n, sizeof *out, by_x);
  return n;
}

/* ------------------------------------------------------------------ the figure */

typedef struct figure {
  const plot_spec *sp;
  canvas c;
  int s;            /* text scale and unit of every size */
  int L, T, R, B;   /* plot area, end exclusive */
  axis ax, ay;
  ticks tx, ty;
  size_t points;
  pt *buf;          /* scratch for one series */
} figure;

static colour series_colour(size_t i) { return PALETTE[i % 8]; }
static int series_marker(size_t i) { return (int)((i + i / 8) % 8); }
static const char *text_or_empty(const char *t) { return t ? t : ""; }

static void layout(figure *f) {
  const plot_spec *sp = f->sp;
  int s = f->s, yw = 0;
  for (int i = 0; i < f->ty.n; i++)
    if (f->ty.t[i].major && text_width(f->ty.t[i].label, s) > yw)
      yw = text_width(f->ty.t[i].label, s);
  f->T = 6 * s + (*text_or_empty(sp->title) ? 15 * s : 4 * s);
  f->L = 5 * s + (*text_or_empty(sp->y_label) ? 13 * s : 0) + yw + 5 * s;
  f->R = f->c.w - 14 * s;
  f->B = f->c.h - (14 * s + (*text_or_empty(sp->x_label) ? 13 * s : 0) + 5 * s);
  f->ax.p0 = f->L, f->ax.p1 = f->R;
  f->ay.p0 = f->B, f->ay.p1 = f->T;
}

static void draw_grid(figure *f) {
  for (int i = 0; i < f->tx.n; i++)
    if (f->tx.t[i].major) {
      int x = (int)lround(axis_px(&f->ax, f->tx.t[i].v));
      fill_rect(&f->c, x, f->T, x + 1, f->B, GRID, 1);
    }
  for (int i = 0; i < f->ty.n; i++)
    if (f->ty.t[i].major) {
      int y = (int)lround(axis_px(&f->ay, f->ty.t[i].v));
      fill_rect(&f->c, f->L, y, f->R, y + 1, GRID, 1);
    }
}

static void draw_series(figure *f, size_t k) {
  const plot_series *se = &f->sp->series[k];
  colour col = series_colour(k);
  double s = f->s;
  for (size_t i = 0; i < se->count; i++) { /* error bars under everything else */
    double e = error_of(se, i);
    if (!usable(f->sp, se, i) || e <= 0) continue;
    double x = axis_px(&f->ax, se->x[i]), y0 = axis_px(&f->ay, se->y[i] - e);
    double y1 = axis_px(&f->ay, se->y[i] + e);
    line(&f->c, x, y0, x, y1, 0.4 * s, col, 0.8);
    line(&f->c, x - 2.5 * s, y0, x + 2.5 * s, y0, 0.4 * s, col, 0.8);
    line(&f->c, x - 2.5 * s, y1, x + 2.5 * s, y1, 0.4 * s, col, 0.8);
  }
  size_t n = series_points(f->sp, k, &f->ax, &f->ay, f->buf);
  for (size_t i = 1; se->connect && i < n; i++)
    line(&f->c, f->buf[i - 1].x, f->buf[i - 1].y, f->buf[i].x, f->buf[i].y, 0.6 * s, col, 1);
  for (size_t i = 0; i < n; i++)
    marker(&f->c, series_marker(k), f->buf[i].x, f->buf[i].y, 2.4 * s, col);
}

/* A ring around the chosen point and its label, on a light patch so lines do not cross it. */
static void draw_marked(figure *f) {
  const plot_spec *sp = f->sp;
  if (sp->marked_series < 0 || (size_t)sp->marked_series >= sp->series_count) return;
  const plot_series *se = &sp->series[sp->marked_series];
  if (sp->marked_index < 0 || (size_t)sp->marked_index >= se->count) return;
  if (!usable(sp, se, (size_t)sp->marked_index)) return;
  double x = axis_px(&f->ax, se->x[sp->marked_index]), y = axis_px(&f->ay, se->y[sp->marked_index]);
  int s = f->s, r = 6 * s, w = text_width("chosen", s);
  ring(&f->c, x, y, r, 0.6 * s, INK);
  int tx = (int)x + r + 3 * s, ty = (int)y - 4 * s;
  if (tx + w > f->R - s) tx = (int)x - r - 3 * s - w;
  if (ty < f->T + s) ty = (int)y + r;
  fill_rect(&f->c, tx - s, ty - s, tx + w + s, ty + 8 * s, WHITE, 0.75);
  draw_text(&f->c, tx, ty, "chosen", s, INK, 0);
}

static void draw_axes(figure *f) {
  canvas *c = &f->c;
  int s = f->s, th = s > 1 ? s / 2 : 1;
  fill_rect(c, f->L - 1, f->T - 1, f->R + 1, f->T, FRAME, 1);
  fill_rect(c, f->L - 1, f->B, f->R + 1, f->B + 1, FRAME, 1);
  fill_rect(c, f->L - 1, f->T - 1, f->L, f->B + 1, FRAME, 1);
  fill_rect(c, f->R, f->T - 1, f->R + 1, f->B + 1, FRAME, 1);
  for (int i = 0; i < f->tx.n; i++) {
    const tick *k = &f->tx.t[i];
    int x = (int)lround(axis_px(&f->ax, k->v)), len = k->major ? 3 * s : 2 * s;
    fill_rect(c, x - th / 2, f->B + 1, x - th / 2 + th, f->B + 1 + len, FRAME, 1);
    if (k->major)
      draw_text(c, x - text_width(k->label, s) / 2, f->B + 5 * s, k->label, s, SOFT, 0);
  }
  for (int i = 0; i < f->ty.n; i++) {
    const tick *k = &f->ty.t[i];
    int y = (int)lround(axis_px(&f->ay, k->v));
    fill_rect(c, f->L - 1 - 3 * s, y - th / 2, f->L - 1, y - th / 2 + th, FRAME, 1);
    if (k->major)
      draw_text(c, f->L - 5 * s - text_width(k->label, s), y - 7 * s / 2, k->label, s, SOFT, 0);
  }
}

static void draw_titles(figure *f) {
  const plot_spec *sp = f->sp;
  int s = f->s;
  const char *title = text_or_empty(sp->title), *xl = text_or_empty(sp->x_label);
  const char *yl = text_or_empty(sp->y_label);
  int tw = text_width(title, s), x = (f->L + f->R - tw) / 2;
  if (x + tw > f->c.w - 4 * s) x = f->c.w - 4 * s - tw;
  if (x < 4 * s) x = 4 * s;
  draw_text(&f->c, x, 6 * s, title, s, INK, 0);
  if (s > 1) draw_text(&f->c, x + 1, 6 * s, title, s, INK, 0); /* bold */
  int xw = text_width(xl, s);
  draw_text(&f->c, (f->L + f->R - xw) / 2, f->B + 18 * s, xl, s, INK, 0);
  int yw = text_width(yl, s), yb = (f->T + f->B + yw) / 2;
  if (yb > f->c.h - 2 * s) yb = f->c.h - 2 * s;
  draw_text(&f->c, 5 * s, yb, yl, s, INK, 1);
  if (!f->points) {
    const char *note = "no data";
    draw_text(&f->c, (f->L + f->R - text_width(note, s)) / 2, (f->T + f->B) / 2 - 4 * s, note,
              s, SOFT, 0);
  }
}

/* ------------------------------------------------------------------ legend */

typedef struct legend {
  int x, y, w, h, row;
} legend;

static void legend_label(const plot_series *se, char *buf) {
  snprintf(buf, PLOT_LABEL_MAX + 1, "%s", text_or_empty(se->label));
}

/* Data points (and samples along lines) inside the box; the chosen point counts heavily. */
static double legend_overlap(figure *f, const legend *g) {
  double hits = 0;
  for (size_t k = 0; k < f->sp->series_count; k++) {
    size_t n = series_points(f->sp, k, &f->ax, &f->ay, f->buf);
    for (size_t i = 0; i < n; i++)
      for (int j = 0; j < (f->sp->series[k].connect && i + 1 < n ? 8 : 1); j++) {
        double x = f->buf[i].x + (j ? (f->buf[i + 1].x - f->buf[i].x) * j / 8 : 0);
        double y = f->buf[i].y + (j ? (f->buf[i + 1].y - f->buf[i].y) * j / 8 : 0);
        hits += x > g->x - f->s && x < g->x + g->w + f->s && y > g->y - f->s &&
                y < g->y + g->h + f->s;
      }
  }
  const plot_spec *sp = f->sp;
  if (sp->marked_series >= 0 && (size_t)sp->marked_series < sp->series_count) {
    const plot_series *se = &sp->series[sp->marked_series];
    if (sp->marked_index >= 0 && (size_t)sp->marked_index < se->count &&
        usable(sp, se, (size_t)sp->marked_index)) {
      double x = axis_px(&f->ax, se->x[sp->marked_index]);
      double y = axis_px(&f->ay, se->y[sp->marked_index]), m = 14 * f->s;
      hits += 1000 * (x > g->x - m && x < g->x + g->w + m && y > g->y - m && y < g->y + g->h + m);
    }
  }
  return hits;
}

static void draw_legend(figure *f) {
  const plot_spec *sp = f->sp;
  int s = f->s, rows = 0, tw = 0;
  char label[PLOT_LABEL_MAX + 1];
  for (size_t k = 0; k < sp->series_count; k++) {
    legend_label(&sp->series[k], label);
    if (!*label) continue;
    rows++;
    if (text_width(label, s) > tw) tw = text_width(label, s);
  }
  if (!rows) return;
  legend g = {0, 0, 4 * s + 14 * s + 3 * s + tw + 4 * s, 8 * s + rows * 11 * s - 2 * s, 11 * s};
  legend tl = g, br = g;
  tl.x = f->L + 4 * s, tl.y = f->T + 4 * s;
  br.x = f->R - 4 * s - g.w, br.y = f->B - 4 * s - g.h;
  g = legend_overlap(f, &br) < legend_overlap(f, &tl) ? br : tl;
  fill_rect(&f->c, g.x, g.y, g.x + g.w, g.y + g.h, WHITE, 0.88);
  fill_rect(&f->c, g.x, g.y, g.x + g.w, g.y + 1, BORDER, 1);
  fill_rect(&f->c, g.x, g.y + g.h - 1, g.x + g.w, g.y + g.h, BORDER, 1);
  fill_rect(&f->c, g.x, g.y, g.x + 1, g.y + g.h, BORDER, 1);
  fill_rect(&f->c, g.x + g.w - 1, g.y, g.x + g.w, g.y + g.h, BORDER, 1);
  int y = g.y + 4 * s;
  for (size_t k = 0; k < sp->series_count; k++) {
    legend_label(&sp->series[k], label);
    if (!*label) continue;
    double cx = g.x + 11 * s, cy = y + 3.5 * s;
    if (sp->series[k].connect)
      line(&f->c, g.x + 4 * s, cy, g.x + 18 * s, cy, 0.6 * s, series_colour(k), 1);
    marker(&f->c, series_marker(k), cx, cy, 2.4 * s, series_colour(k));
    draw_text(&f->c, g.x + 21 * s, y, label, s, INK, 0);
    y += g.row;
  }
}

/* ------------------------------------------------------------------ PNG encoding */

typedef struct png_sink {
  jmp_buf jump;
  png_structp png;
  png_infop info;
  unsigned char *data;
  size_t len, cap;
  int out_of_memory;
  char message[200];
} png_sink;

static void sink_error(png_structp png, png_const_charp msg) {
  png_sink *k = png_get_error_ptr(png);
  snprintf(k->message, sizeof k->message, "%s", msg);
  longjmp(k->jump, 1);
}

static void sink_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void sink_write(png_structp png, png_bytep bytes, size_t n) {
  png_sink *k = png_get_io_ptr(png);
  if (n > k->cap - k->len) {
    size_t cap = k->cap ? k->cap : 1 << 16;
    while (n > cap - k->len) cap *= 2;
    unsigned char *grown = realloc(k->data, cap);
    if (!grown) {
      k->out_of_memory = 1;
      png_error(png, "out of memory");
    }
    k->data = grown;
    k->cap = cap;
  }
  memcpy(k->data + k->len, bytes, n);
  k->len += n;
}

static void sink_flush(png_structp png) { (void)png; }

/* png and info live in the sink, not in locals, so the longjmp cannot clobber them. */
static effnet_status encode_png(const canvas *c, png_sink *k, const char *path,
                                effnet_error *err) {
  k->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, k, sink_error, sink_warning);
  k->info = k->png ? png_create_info_struct(k->png) : NULL;
  if (!k->info) {
    png_destroy_write_struct(&k->png, NULL);
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory starting libpng", path);
  }
  if (setjmp(k->jump)) {
    png_destroy_write_struct(&k->png, &k->info);
    return en_fail(err, k->out_of_memory ? EFFNET_E_NOMEM : EFFNET_E_IO,
                   "%s: PNG encoding failed: %s", path, k->message);
  }
  png_set_write_fn(k->png, k, sink_write, sink_flush);
  png_set_IHDR(k->png, k->info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(k->png, k->info);
  for (int y = 0; y < c->h; y++) png_write_row(k->png, c->rgb + (size_t)y * (size_t)c->w * 3);
  png_write_end(k->png, k->info);
  png_destroy_write_struct(&k->png, &k->info);
  return EFFNET_OK;
}

static effnet_status write_png(const canvas *c, const char *path, effnet_error *err) {
  png_sink *k = calloc(1, sizeof *k);
  if (!k) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  effnet_status st = encode_png(c, k, path, err);
  io_atomic a;
  if (st == EFFNET_OK) st = io_atomic_open(&a, path, err);
  if (st == EFFNET_OK) st = io_atomic_write(&a, k->data, k->len, err);
  if (st == EFFNET_OK) st = io_atomic_commit(&a, err); /* both remove the temp file on failure */
  free(k->data);
  free(k);
  return st;
}

/* ------------------------------------------------------------------ entry point */

static effnet_status check_spec(const char *path, const plot_spec *sp, int *w, int *h,
                                effnet_error *err) {
  if (!path || !sp) return en_fail(err, EFFNET_E_ARGUMENT, "plot: no path or no plot");
  *w = sp->width ? sp->width : 900;
  *h = sp->height ? sp->height : 600;
  if (*w < PLOT_MIN_SIDE || *h < PLOT_MIN_SIDE || *w > PLOT_MAX_SIDE || *h > PLOT_MAX_SIDE)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: plot size %dx%d is outside %d..%d", path, *w,
                   *h, PLOT_MIN_SIDE, PLOT_MAX_SIDE);
  if (sp->series_count && !sp->series)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s: series_count without series", path);
  for (size_t i = 0; i < sp->series_count; i++)
    if (sp->series[i].count && (!sp->series[i].x || !sp->series[i].y))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s: series %zu has no x or y values", path, i);
  return EFFNET_OK;
}

static void render(figure *f) {
  canvas *c = &f->c;
  memset(c->rgb, 255, (size_t)c->w * (size_t)c->h * 3);
  clip_all(c);
  f->points = data_axes(f->sp, &f->ax, &f->ay);
  make_ticks(&f->ax, &f->tx);
  make_ticks(&f->ay, &f->ty);
  layout(f); /* the y labels' width sets the left margin; only then are pixels known */
  thin_labels(&f->ax, &f->tx, f->s, 0, c->w);
  thin_labels(&f->ay, &f->ty, f->s, 1, c->h);
  c->cx0 = f->L, c->cy0 = f->T, c->cx1 = f->R, c->cy1 = f->B;
  draw_grid(f);
  for (size_t k = 0; k < f->sp->series_count; k++) draw_series(f, k);
  clip_all(c);
  draw_marked(f);
  draw_axes(f);
  draw_titles(f);
  draw_legend(f);
}

effnet_status plot_png(const char *path, const plot_spec *spec, effnet_error *err) {
  figure f;
  memset(&f, 0, sizeof f);
  f.sp = spec;
  effnet_status st = check_spec(path, spec, &f.c.w, &f.c.h, err);
  if (st != EFFNET_OK) return st;
  size_t most = 1;
  for (size_t i = 0; i < spec->series_count; i++)
    if (spec->series[i].count > most) most = spec->series[i].count;
  f.s = (int)fmax(1, fmin(f.c.w / 450, f.c.h / 300));
  f.c.rgb = malloc((size_t)f.c.w * (size_t)f.c.h * 3);
  f.buf = most <= SIZE_MAX / sizeof *f.buf ? malloc(most * sizeof *f.buf) : NULL;
  if (!f.c.rgb || !f.buf) st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  if (st == EFFNET_OK) {
    render(&f);
    st = write_png(&f.c, path, err);
  }
  free(f.c.rgb);
  free(f.buf);
  return st;
}
