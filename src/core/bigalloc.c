/* Huge pages for the weights and the arena. With 4 KiB pages a forward pass walks the page
 * tables for every page of weights it streams (B0 224: 21 MB, 5000 pages, more than the
 * second-level TLB holds, and under a hypervisor each walk is a nested one); Debian's kernel
 * gives huge pages only to memory marked with madvise (transparent_hugepage "madvise"). On
 * the Zen 4 VM (seventeenth session, environment switch alternated in the same binary,
 * medians of 16-102 processes each): B0 224 one thread 9.528 -> 9.422 ms (the classifier
 * 0.173 -> 0.147, stage 6's 1x1 convs 1.729 -> 1.688), two threads 0.990 of the time on one
 * die and 0.989 on two, B3 300 one thread 41.89 -> 41.48, B7 600 level (803 ms). */
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
