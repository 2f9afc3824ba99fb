#include "corl/util/heap.h"

#include <malloc.h>  // defines: mallopt, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD

namespace corl::util {

bool keep_freed_memory() {
  // Blocks up to this size come from the heap, and return to it when freed; glibc refuses more.
  constexpr int kMmapThreshold = 32 << 20;
  // Free memory at the heap's top is given back to the kernel only past this much.
  constexpr int kTrimThreshold = 1 << 30;
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return mmap_set && trim_set;
}

}  // namespace corl::util
