/* Allocation of the folded inference weights on transparent huge pages where the kernel offers
 * them on request. */
#ifndef EN_BIGALLOC_H
#define EN_BIGALLOC_H

#include <stddef.h>

/* `bytes` aligned to 64 bytes, and from 2 MiB on aligned to 2 MiB, rounded up to whole 2 MiB
 * pages and marked for huge pages (madvise, Linux); NULL when out of memory. free() releases
 * it. */
void *en_big_alloc(size_t bytes);

#endif
