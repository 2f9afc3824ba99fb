#include "corl/ops/grpo_loss.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernel_dispatch.h"  // defines: cuda::grpo_loss

namespace corl::ops {
namespace {

std::string shape_string(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(t.size(i));
  }
  return out + "]";
}

void check_like(const torch::Tensor& t, const torch::Tensor& logp, const char* name) {
  if (!t.defined() || t.sizes() != logp.sizes()) {
    throw std::invalid_argument(std::string("grpo_loss: ") + name + " has shape " +
                                shape_string(t) + ", logp has " + shape_string(logp));
  }
}

void check_arguments(const torch::Tensor& logp, const torch::Tensor& old_logp,
                     const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                     const torch::Tensor& mask, const GrpoLossOptions& options) {
  if (!logp.defined() || logp.dim() != 2 || !logp.is_floating_point()) {
    throw std::invalid_argument("grpo_loss: logp must be a floating [B, T] tensor, got " +
                                shape_string(logp));
  }
  check_like(old_logp, logp, "old_logp");
  check_like(mask, logp, "mask");
  if (!advantages.defined() || advantages.dim() != 1 || advantages.size(0) != logp.size(0)) {
    throw std::invalid_argument("grpo_loss: advantages has shape " + shape_string(advantages) +
                                ", expected [" + std::to_string(logp.size(0)) + "] (logp " +
                                shape_string(logp) + ")");
  }
  if (options.beta < 0.0 || options.epsilon_low < 0.0 || options.epsilon_high < 0.0) {
    throw std::invalid_argument("grpo_loss: beta, epsilon_low and epsilon_high must be >= 0");
  }
  if (options.max_completion_length < 0) {
    throw std::invalid_argument("grpo_loss: max_completion_length must be >= 0, got " +
                                std::to_string(options.max_completion_length));
  }
  const auto& w = options.policy_weight;
  if (w.defined() && (w.dim() != 2 || w.size(0) != logp.size(0) ||
                      (w.size(1) != 1 && w.size(1) != logp.size(1)))) {
    throw std::invalid_argument("grpo_loss: policy_weight has shape " + shape_string(w) +
                                ", expected [B, T] or [B, 1] (logp " + shape_string(logp) + ")");
  }
  if (options.beta > 0.0) {
    if (!ref_logp.defined()) {
      throw std::invalid_argument("grpo_loss: beta > 0 needs ref_logp, which is undefined");
    }
    check_like(ref_logp, logp, "ref_logp");
  }
}

}  // namespace

GrpoLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                   const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoLossOptions& options) {
  check_arguments(logp, old_logp, ref_logp, advantages, mask, options);
#ifdef CORL_WITH_KERNELS
  // The fused kernel has one ratio per token and no weights: GSPO and weighted policy terms take
  // the reference path below on CUDA too.
  const bool fused = !options.sequence_level && !options.policy_weight.defined();
  if (fused && logp.is_cuda() && logp.scalar_type() == torch::kFloat32) {
    return cuda::grpo_loss(logp, old_logp, ref_logp, advantages, mask, options);
  }
#endif
  const auto dtype = logp.scalar_type();
  const torch::Tensor weight = mask.detach().to(dtype);
  const torch::Tensor active = weight.ne(0);
  const torch::Tensor a = advantages.detach().to(dtype).unsqueeze(1);
  const torch::Tensor zero = torch::zeros({}, logp.options());

  // Positions outside the mask may hold anything (0 for ignored targets, stale old_logp); their
  // log-ratio is pinned to 0 before exp so that an overflow there cannot reach the sum as
  // inf * 0 = NaN, nor the gradient through the unselected branch of a where.
  torch::Tensor log_ratio = torch::where(active, logp - old_logp.detach().to(dtype), zero);
  GrpoLoss out;
  if (options.sequence_level) {
    // GSPO: the log-ratio's mean over the rollout's own tokens (ragged lengths), one per row; a
    // row without tokens gets 0, which its zero weight then drops.
    const torch::Tensor row_log_ratio = (log_ratio * weight).sum(1, /*keepdim=*/true) /
                                        weight.sum(1, /*keepdim=*/true).clamp_min(1.0);
    log_ratio = row_log_ratio.expand_as(logp);
    out.sequence_ratio = torch::exp(row_log_ratio.detach()).squeeze(1);
  }
  const torch::Tensor ratio = torch::exp(log_ratio);
  const torch::Tensor clipped = ratio.clamp(1.0 - options.epsilon_low, 1.0 + options.epsilon_high);
  torch::Tensor per_token = -torch::min(ratio * a, clipped * a);
  if (options.policy_weight.defined()) {
    per_token = per_token * options.policy_weight.detach().to(logp.device(), dtype);
  }

  const torch::Tensor token_norm = weight.sum().clamp_min(1.0);
  // The statistics are reported in double, whatever precision the loss is computed in.
  const double token_count = std::max(1.0, weight.sum(torch::kFloat64).item<double>());
  if (options.beta > 0.0) {
    // k3 estimator (Schulman 2020): unbiased for KL(pi || ref), always >= 0.
    const torch::Tensor d = torch::where(active, ref_logp.detach().to(dtype) - logp, zero);
    const torch::Tensor kl = torch::exp(d) - d - 1.0;
    per_token = per_token + options.beta * kl;
    out.kl = (kl.detach() * weight).sum(torch::kFloat64).item<double>() / token_count;
  }
  per_token = per_token * weight;

  if (options.normaliser > 0.0) {
    // A share of a larger batch: its numerator over the whole batch's count.
    switch (options.aggregation) {
      case Aggregation::kTokenMean:
      case Aggregation::kSeqMeanTokenSumNorm:
        out.loss = per_token.sum() / options.normaliser;
        break;
      case Aggregation::kSeqMeanTokenMean:
        out.loss = (per_token.sum(1) / weight.sum(1).clamp_min(1.0)).sum() / options.normaliser;
        break;
    }
  } else {
    switch (options.aggregation) {
      case Aggregation::kTokenMean:
        out.loss = per_token.sum() / token_norm;
        break;
      case Aggregation::kSeqMeanTokenMean: {
        // A row without tokens sums to 0 and is left out of the count, so it contributes nothing;
        // with no rows at all the loss is a 0 still connected to logp.
        const torch::Tensor row_weight = weight.sum(1);
        const torch::Tensor row_mean = per_token.sum(1) / row_weight.clamp_min(1.0);
        const torch::Tensor rows = row_weight.gt(0).sum().to(dtype).clamp_min(1.0);
        out.loss = row_mean.sum() / rows;
        break;
      }
      case Aggregation::kSeqMeanTokenSumNorm: {
        const int64_t length =
            options.max_completion_length > 0 ? options.max_completion_length : logp.size(1);
        const double norm = static_cast<double>(std::max<int64_t>(1, logp.size(0) * length));
        out.loss = per_token.sum() / norm;
        break;
      }
    }
  }
  out.per_token = per_token.detach();

  {
    // The clipped branch is the min, and so takes the gradient (which is 0 there), only where
    // the ratio left the trust region in the direction the advantage pushes it.
    torch::NoGradGuard no_grad;
    const torch::Tensor low = ratio.lt(1.0 - options.epsilon_low) & a.lt(0);
    const torch::Tensor high = ratio.gt(1.0 + options.epsilon_high) & a.gt(0);
    out.clip_low = (low * weight).sum(torch::kFloat64).item<double>() / token_count;
    out.clip_high = (high * weight).sum(torch::kFloat64).item<double>() / token_count;
    out.clip_fraction = out.clip_low + out.clip_high;
    out.tokens = active.sum().item<int64_t>();
  }
  return out;
}

}  // namespace corl::ops
