// keep_freed_memory: blocks a step frees come back to the next step without the kernel faulting
// their pages in again (include/corl/util/heap.h).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "corl/util/heap.h"

namespace {

volatile char sink;  // reads of the blocks, so that no allocation is optimised away

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Allocates `blocks` blocks of `bytes`, writes every byte, frees them all: one step's outputs.
void one_step(int blocks, size_t bytes) {
  std::vector<char*> held;
  for (int b = 0; b < blocks; ++b) {
    held.push_back(static_cast<char*>(std::malloc(bytes)));
    ASSERT_NE(held.back(), nullptr);
    std::memset(held.back(), b + 1, bytes);
    sink = held.back()[bytes - 1];
  }
  for (char* p : held) std::free(p);
}

TEST(Heap, FreedBlocksComeBackWithoutPageFaults) {
  ASSERT_TRUE(corl::util::keep_freed_memory());
  // Four 16 MiB blocks a step: 64 MiB, past glibc's default trim threshold once its dynamic
  // threshold has settled at 32 MiB, so the defaults give the top of the heap back every step.
  constexpr int kBlocks = 4;
  constexpr size_t kBytes = 16u << 20;
  one_step(kBlocks, kBytes);
  one_step(kBlocks, kBytes);
  const long before = minor_faults();
  one_step(kBlocks, kBytes);
  const long faults = minor_faults() - before;
  // 64 MiB faulted in afresh is every page of it (16,384 of 4 KiB); reused, none (a few for
  // gtest's own bookkeeping).
  const long pages = static_cast<long>(kBlocks * kBytes) / sysconf(_SC_PAGESIZE);
  EXPECT_LT(faults, pages / 100) << faults << " minor page faults for a step whose " << pages
                                 << " pages were all freed the step before";
}

}  // namespace
