#include "corl/ops/group_advantages.h"

#include <stdexcept>
#include <string>

#include "kernel_dispatch.h"  // defines: cuda::group_advantages

namespace corl::ops {
namespace {

// rewards as [groups, group_size] float64, after checking that they split into whole groups.
torch::Tensor grouped(const torch::Tensor& rewards, int64_t group_size, const char* op) {
  if (!rewards.defined() || rewards.dim() != 1) {
    throw std::invalid_argument(
        std::string(op) + ": rewards must be a 1-D tensor, got " +
        (rewards.defined() ? std::to_string(rewards.dim()) + "-D" : std::string("undefined")));
  }
  if (!rewards.is_floating_point()) {
    throw std::invalid_argument(std::string(op) + ": rewards must be floating point");
  }
  if (group_size < 1) {
    throw std::invalid_argument(std::string(op) + ": group_size must be >= 1, got " +
                                std::to_string(group_size));
  }
  const int64_t n = rewards.size(0);
  if (n % group_size != 0) {
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(n) +
                                " rewards do not split into groups of " +
                                std::to_string(group_size));
  }
  return rewards.to(torch::kFloat64).reshape({n / group_size, group_size});
}

}  // namespace

torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t group_size, RewardScale scale,
                               double eps) {
  if (eps < 0.0) {
    throw std::invalid_argument("group_advantages: eps must be >= 0, got " + std::to_string(eps));
  }
  const torch::Tensor r = grouped(rewards, group_size, "group_advantages");
#ifdef CORL_WITH_KERNELS
  // The kernel knows the group's spread and none; the batch's takes the reference path.
  if (r.is_cuda() && scale != RewardScale::kBatch) return cuda::group_advantages(r, scale, eps);
#endif
  torch::Tensor advantages = r - r.mean(1, /*keepdim=*/true);
  if (scale == RewardScale::kBatch) {
    // PPO Lite / TRL scale_rewards "batch": unbiased std over every reward, mean still per group.
    const double std = r.numel() > 1 ? r.std().item<double>() : 0.0;
    advantages = advantages / (std + eps);
  } else if (scale == RewardScale::kGroup) {
    // Unbiased (G - 1) std as in the reference implementation; a lone rollout has no spread.
    const torch::Tensor std = group_size > 1 ? r.std(1, /*unbiased=*/true, /*keepdim=*/true)
                                             : torch::zeros({r.size(0), 1}, r.options());
    advantages = advantages / (std + eps);
  }
  // Equal rewards give a mean that can differ from them by a rounding error; such groups carry no
  // signal and get exactly 0 (also keeps eps == 0 from producing 0 / 0).
  const torch::Tensor flat = r.amax(1, /*keepdim=*/true).eq(r.amin(1, /*keepdim=*/true));
  advantages = advantages.masked_fill(flat, 0.0);
  return advantages.reshape({-1}).to(torch::kFloat32);
}

torch::Tensor zero_spread_groups(const torch::Tensor& rewards, int64_t group_size,
                                 double tolerance) {
  const torch::Tensor r = grouped(rewards, group_size, "zero_spread_groups");
  return (r.amax(1) - r.amin(1)).le(tolerance);
}

}  // namespace corl::ops
