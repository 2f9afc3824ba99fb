// Group-relative advantages (GRPO): each reward compared with the others of its group.
#pragma once

#include <torch/torch.h>

namespace corl::ops {

enum class RewardScale {
  kGroup,  // (r - mean_g) / (std_g + eps), std unbiased as in the paper's code (TRL's default)
  kNone,   // r - mean_g (Dr.GRPO: no division by the spread)
  kBatch,  // (r - mean_g) / (std_batch + eps): the spread of all the rewards given (TRL "batch")
};

// rewards [N] with N a multiple of group_size, consecutive groups. Returns [N] float32. Under
// kBatch, `rewards` must be the whole step's (every rank's), since the spread is theirs.
torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t group_size, RewardScale scale,
                               double eps = 1e-4);

// [N / group_size] bool: groups whose rewards are all equal (max - min <= tolerance). Their
// advantages are 0 and they carry no signal; dynamic sampling drops them.
torch::Tensor zero_spread_groups(const torch::Tensor& rewards, int64_t group_size,
                                 double tolerance = 1e-9);

}  // namespace corl::ops
