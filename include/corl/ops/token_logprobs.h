// Log-probability of each target token under logits, without a full log-softmax tensor.
//
// Forward: per chunk of rows, the row maximum m and log sum exp(x - m) over the vocabulary, and a
// gather of the target logit: logp = (x_target - m) - log sum exp(x - m), exact even for logits
// near 1e4 in float32. Only these two [N] tensors are kept for the backward pass. Backward, again a
// chunk of rows at a time:
//   d logp_n / d logits_n = onehot(target_n) - softmax(logits_n).
#pragma once

#include <torch/torch.h>

namespace corl::ops {

// logits [..., V] (float), targets [...] int64. A negative target (model::kIgnore) has no token
// to score: its log-prob is 0 and it passes no gradient. Returns [...] float32.
//
// CUDA logits of type float32, bfloat16 or float16 go to the fused kernels (kernels/
// token_logprobs.h) when the build has them: one pass per row with an online log-sum-exp, only
// [N] float32 log-sum-exps kept, chunk_rows unused. A target >= V is reported as
// std::out_of_range. With reuse_logits_for_grad, the backward pass writes the gradient over the
// logits' own buffer (no [N, V] allocation); only for logits that nothing reads after the forward
// pass. CPU tensors and float64 take the reference path below.
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                             int64_t chunk_rows = 2048, bool reuse_logits_for_grad = false);

// True when CUDA tensors reach the kernels in kernels/ (a build with nvcc and CUDA LibTorch).
bool cuda_kernels_built();

// Entropy of each row's distribution, [..., V] -> [...]; no gradient, chunked like the above.
torch::Tensor token_entropy(const torch::Tensor& logits, int64_t chunk_rows = 2048);

}  // namespace corl::ops
