/* Huge pages for the folded weights. With 4 KiB pages a forward pass walks the page tables for
 * every page of weights it streams (B0 224: 21 MB, 5000 pages, more than the second-level TLB
 * holds, and under a hypervisor each walk is a nested one); Debian's kernel gives huge pages
 * only to memory marked with madvise (transparent_hugepage "madvise"). On the Zen 4 VM
 * (seventeenth session, builds alternated, medians of 40-102 processes each): B0 224 one
 * thread 9.675 -> 9.553 ms (the classifier 0.192 -> 0.159, stage 6's 1x1 convs 1.762 ->
 * 1.696, its SE gates 0.112 -> 0.098), two threads 0.986 of the time on one die and 0.988 on
 * two; B3 300 0.990 and B7 600 level with the arena on huge pages too. The arena stays on small
 * pages: there they gained B0 another 0.4 % but cost 10-33 MiB of resident memory (a huge page
 * is resident whole once touched, and the arena's buffers are sized for the largest tensor). */
#include "core/bigalloc.h"

#include <stdlib.h>
#include <sys/mman.h>

void *en_big_alloc(size_t bytes) {
  size_t huge = (size_t)2 << 20;
  if (bytes < huge) return aligned_alloc(64, (bytes + 63) / 64 * 64);
  size_t size = (bytes + huge - 1) / huge * huge; /* aligned_alloc: a multiple of the alignment */
  void *p = aligned_alloc(huge, size);
#ifdef MADV_HUGEPAGE
  if (p) (void)madvise(p, size, MADV_HUGEPAGE); /* a hint: refused, the pages stay small */
#endif
  return p;
}
