// Group-relative advantages (GRPO), one warp per group, any group size:
//
//   A_i = (r_i - mean_g r) / (std_g r + eps)    std unbiased (G - 1); a lone rollout has std 0
//   A_i =  r_i - mean_g r                       (Dr.GRPO: scale_by_std = false)
//
// and exactly 0 for every member of a group whose rewards are all equal. Sums in float64, the
// advantages written as float32, as the LibTorch reference path does.
#pragma once

#include <cuda_runtime_api.h>  // defines: cudaStream_t, cudaError_t

#include <cstdint>

namespace corl::kernels {

// rewards: [groups * group_size] float64, consecutive groups; advantages: same length, float32.
cudaError_t group_advantages_forward(const double* rewards, int64_t groups, int64_t group_size,
                                     bool scale_by_std, double eps, float* advantages,
                                     cudaStream_t stream);

}  // namespace corl::kernels
