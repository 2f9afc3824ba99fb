#include "corl/grpo/weights.h"

#include <stdexcept>
#include <vector>

namespace corl::grpo {

double entropy_threshold(const torch::Tensor& entropies, double rho) {
  if (entropies.numel() == 0) throw std::invalid_argument("entropy_threshold: no tokens");
  return torch::quantile(entropies.to(torch::kFloat64).reshape(-1), 1.0 - rho).item<double>();
}

torch::Tensor high_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask,
                                double threshold) {
  return entropy.to(torch::kFloat64).ge(threshold) & mask.gt(0);
}

EntropyMask trained_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask,
                                 const torch::Tensor& trained, double rho,
                                 dist::ProcessGroup& group) {
  const auto counted = mask.gt(0) & trained.to(torch::kBool).unsqueeze(1);
  const auto pooled = dist::gather_ragged(group, entropy.masked_select(counted));
  EntropyMask out;
  out.keep = pooled.numel() == 0
                 ? torch::zeros_like(mask, torch::kBool)
                 : high_entropy_mask(entropy, mask, entropy_threshold(pooled, rho));
  std::vector<torch::Tensor> counts{torch::tensor(
      {(out.keep & counted).sum().item<double>(), counted.sum().item<double>()}, torch::kDouble)};
  group.all_reduce_sum(counts);
  const auto c = counts[0];
  out.kept_share = c[1].item<double>() > 0.0 ? c[0].item<double>() / c[1].item<double>() : 0.0;
  return out;
}

SamplerCorrection sampler_correction(const torch::Tensor& old_logp,
                                     const torch::Tensor& sampler_logp, const torch::Tensor& mask,
                                     const std::string& mode, double cap) {
  SamplerCorrection out;
  out.sequence = mode == "sequence_truncate" || mode == "sequence_mask";
  const bool truncate = mode == "token_truncate" || mode == "sequence_truncate";
  if (!truncate && mode != "token_mask" && mode != "sequence_mask") {
    throw std::invalid_argument("sampler_correction: unknown mode '" + mode + "'");
  }
  const auto m = mask.to(torch::kFloat64);
  const auto d = (old_logp.to(torch::kFloat64) - sampler_logp.to(torch::kFloat64)) * m;
  out.ratio = torch::exp(out.sequence ? d.sum(1, /*keepdim=*/true) : d);
  out.over = out.ratio.gt(cap);
  out.weight = truncate ? out.ratio.clamp_max(cap) : out.ratio.masked_fill(out.over, 0.0);
  return out;
}

}  // namespace corl::grpo
