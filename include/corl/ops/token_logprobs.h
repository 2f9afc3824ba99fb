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
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                             int64_t chunk_rows = 2048);

// Entropy of each row's distribution, [..., V] -> [...]; no gradient, chunked like the above.
torch::Tensor token_entropy(const torch::Tensor& logits, int64_t chunk_rows = 2048);

}  // namespace corl::ops
