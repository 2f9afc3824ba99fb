// CUDA paths of the ops, through the raw-pointer kernels in kernels/. Only the op entry points in
// include/corl/ops call these, and only for CUDA tensors in a build with CORL_WITH_KERNELS.
#pragma once

#include <torch/torch.h>

#include "corl/ops/group_advantages.h"
#include "corl/ops/grpo_loss.h"

namespace corl::ops::cuda {

// logits [..., V] float32/bfloat16/float16 on a CUDA device, targets [...] int64 on the same one.
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                             bool reuse_logits_for_grad);

// grouped: [groups, group_size] float64, contiguous, on a CUDA device. Returns [N] float32.
torch::Tensor group_advantages(const torch::Tensor& grouped, RewardScale scale, double eps);

// Arguments already checked by the reference path's rules; logp float32 on a CUDA device.
GrpoLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                   const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoLossOptions& options);

}  // namespace corl::ops::cuda
