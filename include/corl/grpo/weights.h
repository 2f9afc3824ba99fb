// Weights of the GRPO policy term per token, as pure functions (verl's core_algos is the model):
// the entropy mask and the sampler/trainer correction, both as TRL's GRPOTrainer defines them.
// grpo/batch.cpp gathers their inputs over ranks and multiplies them into StepBatch::weight_*.
#pragma once

#include <torch/torch.h>

#include <string>

#include "corl/dist/process_group.h"

namespace corl::grpo {

// top_entropy_quantile rho (Wang et al. 2025, "Beyond the 80/20 rule"; TRL get_high_entropy_mask):
// the (1 - rho) quantile, linearly interpolated as torch.quantile, of `entropies` (the step's
// masked tokens, every rank's). `entropies` must not be empty.
double entropy_threshold(const torch::Tensor& entropies, double rho);

// [N, T] bool: tokens in `mask` whose entropy is >= threshold.
torch::Tensor high_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask,
                                double threshold);

// The entropy mask of one task's tokens [N, T] as the updates apply it: the threshold is the
// (1 - rho) quantile of the masked tokens of the `trained` rollouts ([N] bool: the groups
// dynamic sampling keeps), pooled over every rank; a group that is dropped does not move it.
// With no such token anywhere, nothing is kept. Collective.
struct EntropyMask {
  torch::Tensor keep;       // [N, T] bool
  double kept_share = 0.0;  // of the trained rollouts' masked tokens, over every rank
};
EntropyMask trained_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask,
                                 const torch::Tensor& trained, double rho,
                                 dist::ProcessGroup& group);

// The sampler/trainer correction (TRL vllm_importance_sampling_mode, _cap): with
// d_it = (old_logp - sampler_logp) m_it, the ratio r = exp(d_it) (token_*) or
// exp(sum_t d_it) (sequence_*, one per rollout), then min(r, cap) (*_truncate) or r with every
// r > cap set to 0 (*_mask).
struct SamplerCorrection {
  torch::Tensor weight;  // [N, T] (token modes) or [N, 1] (sequence modes), float64
  torch::Tensor ratio;   // the same before the cap
  torch::Tensor over;    // bool, where ratio > cap
  bool sequence = false;
};
SamplerCorrection sampler_correction(const torch::Tensor& old_logp,
                                     const torch::Tensor& sampler_logp, const torch::Tensor& mask,
                                     const std::string& mode, double cap);

}  // namespace corl::grpo
