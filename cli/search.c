/* effnet search: trains every run of the plan in worker processes (each an `effnet train` of
 * its own, in OUT/runs/KEY, resumable by itself), appends each finished run to OUT/results.csv
 * at once and durably, skips runs already there when started again, then reports. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "search.h"

void search_usage_print(void) {
  printf("usage: effnet search --data DATA --out DIR BASE [options]\n"
         "  BASE: --model NAME | --width W --depth D [--lite]  [--resolution R]\n"
         "  --mode compound,width,depth,resolution,width-dr  (default compound)\n"
         "  --grid AMAX,BMAX,GMAX,STEP (default 1.4,1.3,1.3,0.1)  --target 2  --tolerance 0.1\n"
         "  --real-flops        constrain the real MACs ratio instead of alpha*beta^2*gamma^2\n"
         "  --multipliers LIST  single-dimension and width-dr modes (default 1.5,2,2.5,3)\n"
         "  --pairs D:R,...     width-dr mode (default 1:1,1:1.3,2:1,2:1.3, paper Figure 4)\n"
         "  --epochs E | --steps S   the budget of every run (default 1 epoch)\n"
         "  --seeds N  --workers W  --threads T (per worker)  --batch B  --optimizer O  --lr LR\n"
         "  --eval-limit N      evaluate each run on the first N test images\n");
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ workers */

typedef struct slot {
  pid_t pid;
  size_t run;
  double start;
} slot;

static void fmt_num(char *buf, size_t size, double v) { snprintf(buf, size, "%.17g", v); }

/* exec `effnet train` for one run; never returns. Output goes to DIR/train.log. */
static void exec_run(const search_options *o, const search_run *r, const char *dir) {
  char log[4200], w[32], d[32], res[16], seed[24], threads[16], batch[16], budget[24], lim[24];
  snprintf(log, sizeof log, "%.4000s/train.log", dir);
  FILE *f = freopen(log, "a", stdout);
  if (f) dup2(fileno(stdout), STDERR_FILENO);
  fmt_num(w, sizeof w, r->spec.width);
  fmt_num(d, sizeof d, r->spec.depth);
  snprintf(res, sizeof res, "%d", r->spec.resolution);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->row.seed);
  snprintf(threads, sizeof threads, "%d", o->threads);
  snprintf(batch, sizeof batch, "%d", o->batch);
  snprintf(lim, sizeof lim, "%lld", (long long)o->eval_limit);
  const char *argv[48];
  int n = 0;
  char ckpt[4200];
  snprintf(ckpt, sizeof ckpt, "%.4000s/checkpoint.safetensors", dir);
  int resume = access(ckpt, R_OK) == 0;
  argv[n++] = "effnet";
  argv[n++] = "train";
  argv[n++] = "--data", argv[n++] = o->data;
  argv[n++] = "--out", argv[n++] = dir;
  if (resume) argv[n++] = "--resume";
  argv[n++] = "--width", argv[n++] = w;
  argv[n++] = "--depth", argv[n++] = d;
  argv[n++] = "--resolution", argv[n++] = res;
  if (o->base.family == EFFNET_FAMILY_LITE) argv[n++] = "--lite";
  argv[n++] = "--seed", argv[n++] = seed;
  argv[n++] = "--threads", argv[n++] = threads;
  argv[n++] = "--batch", argv[n++] = batch;
  if (o->steps > 0) {
    snprintf(budget, sizeof budget, "%lld", (long long)o->steps);
    argv[n++] = "--max-steps", argv[n++] = budget;
    argv[n++] = "--epochs", argv[n++] = "100000";
  } else {
    snprintf(budget, sizeof budget, "%d", o->epochs);
    argv[n++] = "--epochs", argv[n++] = budget;
  }
  if (o->eval_limit > 0) argv[n++] = "--eval-limit", argv[n++] = lim;
  if (o->optimizer) argv[n++] = "--optimizer", argv[n++] = o->optimizer;
  if (o->lr) argv[n++] = "--lr", argv[n++] = o->lr;
  argv[n] = NULL;
  execv("/proc/self/exe", (char *const *)argv);
  fprintf(stderr, "effnet search: cannot run effnet train: %s\n", strerror(errno));
  _exit(127);
}

static int start_run(const search_options *o, const search_run *r, slot *s, size_t index) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%.3800s/runs/%.160s", o->out, r->key);
  char runs[4200];
  snprintf(runs, sizeof runs, "%.3800s/runs", o->out);
  mkdir(runs, 0777);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "effnet search: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "effnet search: fork failed: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) exec_run(o, r, dir);
  s->pid = pid;
  s->run = index;
  s->start = now();
  return 0;
}

/* The finished run's accuracy (last log.jsonl line) and time (all its lines: a run resumed
 * over several sessions counts each session's work once). */
static int collect(const search_options *o, search_run *r) {
  char path[4200], line[1024], last[1024] = "";
  snprintf(path, sizeof path, "%.3800s/runs/%.160s/log.jsonl", o->out, r->key);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  double seconds = 0;
  while (fgets(line, sizeof line, f)) {
    memcpy(last, line, sizeof line);
    const char *sec = strstr(line, "\"seconds\": ");
    if (sec) seconds += strtod(sec + 11, NULL);
  }
  fclose(f);
  const char *acc = strstr(last, "\"test_acc\": ");
  if (!acc) return -1;
  r->row.accuracy = strtod(acc + 12, NULL);
  r->row.seconds = seconds;
  return 0;
}

/* ------------------------------------------------------------------ the loop */

typedef struct state {
  const search_options *o;
  search_plan *plan;
  search_row *rows;
  size_t count;
  char csv[4200];
  size_t total, done, failed;
  double start;
} state;

static int finished(const state *st, const search_run *r) {
  for (size_t i = 0; i < st->count; i++)
    if (search_row_same_run(&st->rows[i], &r->row)) return 1;
  return 0;
}

static int record(state *st, search_run *r) {
  effnet_error err = {{0}};
  if (search_csv_append(st->csv, st->rows, st->count, &r->row, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet search: %s\n", err.message);
    return -1;
  }
  search_row *grown = realloc(st->rows, (st->count + 1) * sizeof *grown);
  if (!grown) return -1;
  st->rows = grown;
  st->rows[st->count++] = r->row;
  return 0;
}

static void progress(const state *st, const search_run *r, int ok) {
  double elapsed = now() - st->start;
  double eta = st->done ? elapsed / st->done * (st->total - st->done) : 0;
  if (ok)
    printf("[%zu/%zu] %-16s a %.3g b %.3g g %.3g (w %.3g d %.3g r %d, %.1f MMACs) seed %llu: "
           "top-1 %.2f%% in %.0f s; ETA %.0f s\n", st->done, st->total, r->row.mode,
           r->row.alpha, r->row.beta, r->row.gamma, r->row.width, r->row.depth,
           r->row.resolution, r->row.macs / 1e6, (unsigned long long)r->row.seed,
           100 * r->row.accuracy, r->row.seconds, eta);
  else
    printf("[%zu/%zu] %s FAILED (see %s/runs/%s/train.log)\n", st->done, st->total, r->key,
           st->o->out, r->key);
  fflush(stdout);
}

static int reap(state *st, slot *slots, int workers) {
  int status;
  pid_t pid = wait(&status);
  if (pid < 0) return -1;
  for (int k = 0; k < workers; k++) {
    if (slots[k].pid != pid) continue;
    slots[k].pid = 0;
    search_run *r = &st->plan->runs[slots[k].run];
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && collect(st->o, r) == 0;
    st->done++;
    if (ok && record(st, r)) return -1;
    if (!ok) st->failed++;
    progress(st, r, ok);
  }
  return 0;
}

/* The earlier run of the plan that trains the same network with the same seed, or -1. */
static long twin_of(const state *st, size_t index) {
  const search_run *r = &st->plan->runs[index];
  for (size_t i = 0; i < index; i++) {
    const search_run *q = &st->plan->runs[i];
    if (r->arch[0] && !strcmp(q->arch, r->arch) && q->row.seed == r->row.seed) return (long)i;
  }
  return -1;
}

/* A row for r from its finished twin's (same network, same seed: same result). */
static int copy_twin(state *st, size_t index, long twin) {
  search_run *r = &st->plan->runs[index], *t = &st->plan->runs[twin];
  for (size_t i = 0; i < st->count; i++)
    if (search_row_same_run(&st->rows[i], &t->row)) {
      r->row.accuracy = st->rows[i].accuracy;
      r->row.seconds = 0.0;
      st->done++;
      if (record(st, r)) return -1;
      printf("[%zu/%zu] %-16s a %.3g b %.3g g %.3g seed %llu: the same network as %s "
             "after rounding: top-1 %.2f%%, not trained again\n", st->done, st->total,
             r->row.mode, r->row.alpha, r->row.beta, r->row.gamma,
             (unsigned long long)r->row.seed, t->key, 100 * r->row.accuracy);
      return 1;
    }
  return 0; /* twin not finished yet */
}

/* Starts what can start now (a run whose twin is still training waits for it); -1 on error. */
static int fill(state *st, slot *slots, unsigned char *started, int *active) {
  const search_options *o = st->o;
  for (size_t i = 0; i < st->plan->count && *active < o->workers; i++) {
    search_run *r = &st->plan->runs[i];
    if (started[i]) continue;
    if (finished(st, r)) {
      started[i] = 1;
      continue;
    }
    long twin = twin_of(st, i);
    if (twin >= 0) {
      int c = copy_twin(st, i, twin);
      if (c < 0) return -1;
      if (c > 0) started[i] = 1;
      if (c > 0 || started[twin]) continue;
    }
    int k = 0;
    while (slots[k].pid) k++;
    if (start_run(o, r, &slots[k], i)) return -1;
    started[i] = 1;
    (*active)++;
  }
  return 0;
}

static int run_all(state *st) {
  const search_options *o = st->o;
  slot *slots = calloc((size_t)o->workers, sizeof *slots);
  unsigned char *started = calloc(st->plan->count + 1, 1);
  int active = 0, rc = (!slots || !started) ? -1 : 0;
  while (!rc) {
    rc = fill(st, slots, started, &active);
    if (rc || active == 0) break;
    if (reap(st, slots, o->workers)) rc = -1;
    active = 0;
    for (int k = 0; k < o->workers; k++) active += slots[k].pid != 0;
  }
  free(slots);
  free(started);
  return rc;
}

static int prepare_out(state *st) {
  const search_options *o = st->o;
  struct stat sb;
  if (mkdir(o->out, 0777) != 0 && (stat(o->out, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    fprintf(stderr, "effnet search: cannot create the output folder %s: %s\n", o->out,
            strerror(errno));
    return -1;
  }
  char probe[4200];
  snprintf(probe, sizeof probe, "%.3800s/.write-test", o->out);
  FILE *f = fopen(probe, "w");
  if (!f) {
    fprintf(stderr, "effnet search: the output folder %s is not writable: %s\n", o->out,
            strerror(errno));
    return -1;
  }
  fclose(f);
  remove(probe);
  snprintf(st->csv, sizeof st->csv, "%.3800s/results.csv", o->out);
  int torn = 0;
  effnet_error err = {{0}};
  if (search_csv_read(st->csv, &st->rows, &st->count, &torn, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet search: %s (the file is left as it is: fix or move it)\n",
            err.message);
    return -1;
  }
  if (torn) fprintf(stderr, "effnet search: %s: ignoring a torn last line\n", st->csv);
  return 0;
}

int search_execute(const search_options *o) {
  search_plan plan;
  if (search_plan_build(&plan, o)) {
    search_plan_free(&plan);
    return 1;
  }
  state st = {o, &plan, NULL, 0, "", 0, 0, 0, now()};
  int rc = prepare_out(&st);
  for (size_t i = 0; !rc && i < plan.count; i++) st.total += !finished(&st, &plan.runs[i]);
  if (!rc) {
    printf("effnet search: %zu runs (%zu already in %s), %d worker%s x %d thread%s\n",
           plan.count, plan.count - st.total, st.csv, o->workers, o->workers == 1 ? "" : "s",
           o->threads, o->threads == 1 ? "" : "s");
    fflush(stdout);
    rc = run_all(&st);
  }
  if (!rc) search_report(o, st.rows, st.count);
  if (!rc && st.failed) {
    fprintf(stderr, "effnet search: %zu run%s failed; run the same command again to retry\n",
            st.failed, st.failed == 1 ? "" : "s");
    rc = 1;
  }
  free(st.rows);
  search_plan_free(&plan);
  return rc ? 1 : 0;
}
