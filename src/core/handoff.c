/* effnet_thread_handoff_ns (effnet.h): two OpenMP threads pass a cache line back and forth.
 *
 * Why: on the 2-vCPU Zen 4 VM of sessions 11-14 the two vCPUs sometimes sat on one die and
 * sometimes on two, for seconds to minutes at a time. In the two-die phases B0 on two threads
 * took 8.0-8.8 ms instead of 5.1-5.6, ONNX Runtime as much longer, while one thread kept its
 * speed on either vCPU. A table of two-thread timings is only readable next to this number;
 * `effnet bench` prints it, and scripts/bench_ort.py puts it in its tables. */
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "effnet.h"

#define ROUND_TRIPS 2000 /* per batch: 0.1-0.8 ms */
#define BATCHES 15
#define STOP (-1)
#define PATIENCE_NS 1e9 /* in all: a partner descheduled for that long ends the measurement */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Thread 0: writes an odd value (a question), waits for it plus one (the answer), and times each
 * batch of round trips after a first one for warm-up. Ends with STOP, which also tells thread 1.
 * Returns the batches timed; *trips and *spent: every completed round trip and its time, for a
 * measurement cut short. */
static int lead(int *flag, double *batch_ns, long *trips, double *spent) {
  double start = now_ns();
  int batches = 0, v = 0;
  for (int b = -1; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < ROUND_TRIPS; i++) {
      v += 2;
      __atomic_store_n(flag, v - 1, __ATOMIC_RELEASE);
      for (unsigned spin = 1; __atomic_load_n(flag, __ATOMIC_ACQUIRE) != v; spin++)
        if (spin % 4096 == 0 && now_ns() - start > PATIENCE_NS) goto stop;
      ++*trips;
    }
    if (b >= 0) batch_ns[batches++] = (now_ns() - t0) / ROUND_TRIPS;
  }
stop:
  *spent = now_ns() - start;
  __atomic_store_n(flag, STOP, __ATOMIC_RELEASE);
  return batches;
}

/* Thread 1: answers each question until STOP (compare-and-swap, so that an answer never
 * overwrites STOP). */
static void follow(int *flag) {
  for (;;) {
    int v = __atomic_load_n(flag, __ATOMIC_ACQUIRE);
    if (v == STOP) return;
    if (v & 1)
      __atomic_compare_exchange_n(flag, &v, v + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  }
}

double effnet_thread_handoff_ns(void) {
  if (omp_get_num_procs() < 2) return 0.0; /* the pair would share a CPU and spin in turns */
  _Alignas(64) int flag[16] = {0};          /* a cache line of its own */
  double batch_ns[BATCHES], spent = 0.0;
  long trips = 0;
  int batches = -1;
#pragma omp parallel num_threads(2)
  {
    if (omp_get_num_threads() == 2) {
      if (omp_get_thread_num() == 0) batches = lead(&flag[0], batch_ns, &trips, &spent);
      else follow(&flag[0]);
    }
  }
  if (batches < 0) return 0.0; /* a team of one thread */
  if (batches == 0) return trips ? spent / (double)trips : -1.0;
  qsort(batch_ns, (size_t)batches, sizeof batch_ns[0], cmp_double);
  return batch_ns[batches / 2];
}
