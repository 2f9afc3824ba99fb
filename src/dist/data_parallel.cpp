#include "corl/dist/data_parallel.h"

#include <algorithm>

namespace corl::dist {

void bind(config::Schema& s, DistSection& d) {
  s.add("dist.backend", &d.backend,
        "Data-parallel communication: gloo (CPU tensors), nccl (GPU tensors), auto (nccl on a GPU, "
        "else gloo); used when started with --nproc or torchrun-style RANK/WORLD_SIZE")
      .choices({"auto", "gloo", "nccl"});
  s.add("dist.timeout_s", &d.timeout_s,
        "Seconds to wait for every rank to arrive and for each collective: a missing or dead "
        "peer ends the run with an error after this long")
      .range(1, 86400);
  s.add("dist.bucket_mb", &d.bucket_mb, "Gradient all-reduce bucket size in MiB")
      .range(0.01, 4096.0);
  s.add("dist.check_weights", &d.check_weights,
        "After every update, check that each rank's weights are bitwise rank 0's (one small "
        "all-gather)");
  s.add("dist.zero_stage", &d.zero_stage,
        "ZeRO sharding over the ranks (dist/zero.h): 0 every rank holds the whole AdamW state; 1 "
        "each rank keeps AdamW's moments of its 1/W of the parameters; 2 also only its 1/W of the "
        "reduced gradients. Stage 3 (sharded weights) is not implemented")
      .range(0, 2);
}

std::vector<int64_t> rank_groups(int64_t per_rank, int rank, int world) {
  std::vector<int64_t> groups;
  for (int64_t j = 0; j < per_rank; ++j) groups.push_back(j * world + rank);
  return groups;
}

std::vector<std::vector<int64_t>> micro_batches(const std::vector<int64_t>& kept,
                                                int accumulation) {
  std::vector<int64_t> groups;
  for (int64_t g = 0; g < static_cast<int64_t>(kept.size()); ++g) {
    if (kept[g] != 0) groups.push_back(g);
  }
  const int64_t n = static_cast<int64_t>(groups.size());
  const int64_t count = std::min<int64_t>(accumulation, n);
  std::vector<std::vector<int64_t>> out;
  for (int64_t m = 0; m < count; ++m) {
    const int64_t g0 = n * m / count;
    const int64_t g1 = n * (m + 1) / count;
    out.emplace_back(groups.begin() + g0, groups.begin() + g1);
  }
  return out;
}

}  // namespace corl::dist
