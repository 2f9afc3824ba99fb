// The process heap's policy for large blocks. LibTorch on the CPU allocates each op's output
// afresh; under glibc's defaults, freed blocks of a few MiB go back to the kernel (the heap's top
// trimmed, or the block unmapped), and the next step's allocation of the same size faults every
// page in again, zeroed by the kernel: half a GRPO step's page faults (docs/benchmarks.md).
// Results do not change, only where the bytes come from.
#pragma once

namespace corl::util {

// Keeps freed blocks up to 32 MiB (glibc's largest threshold) in the heap for reuse, and freed
// memory at the heap's top mapped. Call once, first thing in main; returns false where the C
// library refused a setting (the defaults then stay).
bool keep_freed_memory();

}  // namespace corl::util
