// Autograd functions around kernels/ for CUDA tensors. Compiled to nothing without
// CORL_WITH_KERNELS (no CUDA compiler, or a LibTorch without CUDA).
#include "kernel_dispatch.h"

#include "corl/ops/token_logprobs.h"  // declares: cuda_kernels_built

#ifdef CORL_WITH_KERNELS

#include <ATen/cuda/CUDAContext.h>  // defines: at::cuda::getCurrentCUDAStream
#include <c10/cuda/CUDAGuard.h>     // defines: c10::cuda::CUDAGuard

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "group_advantages.h"  // kernels/: group_advantages_forward
#include "grpo_loss.h"         // kernels/: grpo_loss_forward, grpo_loss_backward
#include "token_logprobs.h"    // kernels/: token_logprobs_forward, token_logprobs_backward

namespace corl::ops::cuda {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_launch(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) +
                             ": CUDA kernel failed: " + cudaGetErrorString(status));
  }
}

cudaStream_t stream_of(const torch::Tensor& t) {
  return at::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

kernels::ScalarType kernel_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return kernels::ScalarType::kFloat32;
    case torch::kBFloat16:
      return kernels::ScalarType::kBFloat16;
    case torch::kFloat16:
      return kernels::ScalarType::kFloat16;
    default:
      throw std::invalid_argument(
          std::string("token_logprobs: no CUDA kernel for logits of type ") + c10::toString(type));
  }
}

// Rows of the logits as one [rows, V] matrix with unit column stride, without a copy when the
// leading dimensions already collapse (a row stride larger than V is fine).
torch::Tensor as_rows(const torch::Tensor& logits) {
  torch::Tensor flat = logits.reshape({-1, logits.size(-1)});
  if (flat.stride(1) != 1) flat = flat.contiguous();
  return flat;
}

struct TokenLogprobsFunction : public torch::autograd::Function<TokenLogprobsFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, bool reuse_logits_for_grad) {
    const c10::cuda::CUDAGuard guard(logits.device());
    const cudaStream_t stream = stream_of(logits);
    const torch::Tensor flat = as_rows(logits);
    const torch::Tensor flat_targets = targets.reshape({-1}).contiguous();
    const int64_t rows = flat.size(0);
    const int64_t vocab = flat.size(1);
    const auto f32 = logits.options().dtype(torch::kFloat32);
    torch::Tensor logp = torch::empty({rows}, f32);
    torch::Tensor lse = torch::empty({rows}, f32);
    torch::Tensor bad_row = torch::empty({1}, logits.options().dtype(torch::kInt64));
    auto* bad = reinterpret_cast<unsigned long long*>(bad_row.data_ptr<int64_t>());
    check_launch(kernels::token_logprobs_reset_bad_row(bad, stream), "token_logprobs");
    check_launch(
        kernels::token_logprobs_forward(flat.data_ptr(), kernel_type(flat.scalar_type()), rows,
                                        vocab, flat.stride(0), flat_targets.data_ptr<int64_t>(),
                                        logp.data_ptr<float>(), lse.data_ptr<float>(), bad, stream),
        "token_logprobs");
    // The kernel marks a target beyond the vocabulary instead of reading out of bounds; the one
    // synchronisation here turns the mark into the caller's error.
    const auto first_bad = static_cast<uint64_t>(bad_row.item<int64_t>());
    if (first_bad != std::numeric_limits<uint64_t>::max()) {
      const auto row = static_cast<int64_t>(first_bad);
      throw std::out_of_range("token_logprobs: target " +
                              std::to_string(flat_targets[row].item<int64_t>()) + " at row " +
                              std::to_string(row) + " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
    }
    ctx->save_for_backward({flat, flat_targets, lse});
    ctx->saved_data["reuse"] =
        reuse_logits_for_grad && flat.data_ptr() == logits.data_ptr() && flat.is_contiguous();
    ctx->saved_data["sizes"] = logits.sizes();
    return logp.view(targets.sizes());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& flat = saved[0];
    const torch::Tensor& flat_targets = saved[1];
    const torch::Tensor& lse = saved[2];
    const bool reuse = ctx->saved_data["reuse"].toBool();
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const c10::cuda::CUDAGuard guard(flat.device());
    const torch::Tensor grad = grad_outputs[0].reshape({-1}).to(torch::kFloat32).contiguous();
    // In place: the gradient overwrites the logits, so no rows x vocab buffer is allocated.
    torch::Tensor grad_logits = reuse ? flat : torch::empty(flat.sizes(), flat.options());
    check_launch(kernels::token_logprobs_backward(
                     flat.data_ptr(), kernel_type(flat.scalar_type()), flat.size(0), flat.size(1),
                     flat.stride(0), flat_targets.data_ptr<int64_t>(), lse.data_ptr<float>(),
                     grad.data_ptr<float>(), grad_logits.data_ptr(), stream_of(flat)),
                 "token_logprobs backward");
    return {grad_logits.view(sizes), torch::Tensor(), torch::Tensor()};
  }
};

kernels::GrpoLossConfig kernel_config(const GrpoLossOptions& options) {
  kernels::GrpoLossConfig config;
  config.epsilon_low = options.epsilon_low;
  config.epsilon_high = options.epsilon_high;
  config.beta = options.beta;
  switch (options.aggregation) {
    case Aggregation::kTokenMean:
      config.aggregation = kernels::GrpoAggregation::kTokenMean;
      break;
    case Aggregation::kSeqMeanTokenMean:
      config.aggregation = kernels::GrpoAggregation::kSeqMeanTokenMean;
      break;
    case Aggregation::kSeqMeanTokenSumNorm:
      config.aggregation = kernels::GrpoAggregation::kSeqMeanTokenSumNorm;
      break;
  }
  config.length = options.max_completion_length;
  config.normaliser = options.normaliser;
  return config;
}

kernels::GrpoLossInputs kernel_inputs(const torch::Tensor& logp, const torch::Tensor& old_logp,
                                      const torch::Tensor& ref_logp,
                                      const torch::Tensor& advantages,
                                      const torch::Tensor& weight) {
  return {logp.data_ptr<float>(),
          old_logp.data_ptr<float>(),
          ref_logp.numel() > 0 ? ref_logp.data_ptr<float>() : nullptr,
          advantages.data_ptr<float>(),
          weight.data_ptr<float>(),
          logp.size(0),
          logp.size(1)};
}

// Outputs that are not the loss itself: the per-token losses and the statistics.
struct GrpoLossSideOutputs {
  torch::Tensor per_token;
  torch::Tensor stats;  // [4] float64 on the device
};

struct GrpoLossFunction : public torch::autograd::Function<GrpoLossFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logp,
                               const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                               const torch::Tensor& advantages, const torch::Tensor& weight,
                               const GrpoLossOptions& options, GrpoLossSideOutputs* side) {
    const c10::cuda::CUDAGuard guard(logp.device());
    const auto f32 = logp.options().dtype(torch::kFloat32);
    const auto f64 = logp.options().dtype(torch::kFloat64);
    const int64_t rows = logp.size(0);
    torch::Tensor per_token = torch::empty(logp.sizes(), f32);
    torch::Tensor row_loss = torch::empty({rows}, f32);
    torch::Tensor row_weight = torch::empty({rows}, f32);
    torch::Tensor row_stats = torch::empty({rows, 4}, f64);
    torch::Tensor loss = torch::empty({}, f32);
    torch::Tensor denominator = torch::empty({1}, f32);
    torch::Tensor stats = torch::empty({4}, f64);
    const kernels::GrpoLossOutputs out{per_token.data_ptr<float>(),  row_loss.data_ptr<float>(),
                                       row_weight.data_ptr<float>(), row_stats.data_ptr<double>(),
                                       loss.data_ptr<float>(),       denominator.data_ptr<float>(),
                                       stats.data_ptr<double>()};
    check_launch(
        kernels::grpo_loss_forward(kernel_inputs(logp, old_logp, ref_logp, advantages, weight),
                                   kernel_config(options), out, stream_of(logp)),
        "grpo_loss");
    side->per_token = per_token;
    side->stats = stats;
    ctx->save_for_backward({logp, old_logp, ref_logp, advantages, weight, row_weight, denominator});
    ctx->saved_data["epsilon_low"] = options.epsilon_low;
    ctx->saved_data["epsilon_high"] = options.epsilon_high;
    ctx->saved_data["beta"] = options.beta;
    ctx->saved_data["aggregation"] = static_cast<int64_t>(options.aggregation);
    ctx->saved_data["length"] = options.max_completion_length;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& logp = saved[0];
    GrpoLossOptions options;
    options.epsilon_low = ctx->saved_data["epsilon_low"].toDouble();
    options.epsilon_high = ctx->saved_data["epsilon_high"].toDouble();
    options.beta = ctx->saved_data["beta"].toDouble();
    options.aggregation = static_cast<Aggregation>(ctx->saved_data["aggregation"].toInt());
    options.max_completion_length = ctx->saved_data["length"].toInt();
    const c10::cuda::CUDAGuard guard(logp.device());
    const torch::Tensor grad_loss = grad_outputs[0].reshape({1}).to(torch::kFloat32).contiguous();
    torch::Tensor grad_logp = torch::empty(logp.sizes(), logp.options());
    check_launch(kernels::grpo_loss_backward(
                     kernel_inputs(logp, saved[1], saved[2], saved[3], saved[4]),
                     kernel_config(options), saved[5].data_ptr<float>(), saved[6].data_ptr<float>(),
                     grad_loss.data_ptr<float>(), grad_logp.data_ptr<float>(), stream_of(logp)),
                 "grpo_loss backward");
    return {grad_logp,       torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                             bool reuse_logits_for_grad) {
  return TokenLogprobsFunction::apply(logits, targets, reuse_logits_for_grad);
}

torch::Tensor group_advantages(const torch::Tensor& grouped, RewardScale scale, double eps) {
  const c10::cuda::CUDAGuard guard(grouped.device());
  const torch::Tensor r = grouped.contiguous();
  torch::Tensor advantages = torch::empty({r.numel()}, r.options().dtype(torch::kFloat32));
  check_launch(kernels::group_advantages_forward(r.data_ptr<double>(), r.size(0), r.size(1),
                                                 scale == RewardScale::kGroup, eps,
                                                 advantages.data_ptr<float>(), stream_of(r)),
               "group_advantages");
  return advantages;
}

GrpoLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                   const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoLossOptions& options) {
  // Side inputs follow logp to its device, as float32 (masks may be bool, advantages float64).
  const auto f32 = [&](const torch::Tensor& t) {
    return t.defined() ? t.detach().to(logp.device(), torch::kFloat32).contiguous() : t;
  };
  // Without a KL term the reference is an empty tensor, never an undefined one: autograd's
  // Function::apply records every tensor argument's device, and an undefined tensor has none.
  const torch::Tensor ref = options.beta > 0.0
                                ? f32(ref_logp)
                                : torch::empty({0}, logp.options().dtype(torch::kFloat32));
  GrpoLossSideOutputs side;
  GrpoLoss out;
  out.loss = GrpoLossFunction::apply(logp.contiguous(), f32(old_logp), ref, f32(advantages),
                                     f32(mask), options, &side);
  out.per_token = side.per_token;
  // One copy to the host for all four statistics (the reference path syncs once per statistic).
  const torch::Tensor stats = side.stats.cpu();
  const double* s = stats.data_ptr<double>();
  out.kl = options.beta > 0.0 ? s[0] : 0.0;
  out.clip_low = s[1];
  out.clip_high = s[2];
  out.clip_fraction = out.clip_low + out.clip_high;
  out.tokens = static_cast<int64_t>(s[3]);
  return out;
}

}  // namespace corl::ops::cuda

#endif  // CORL_WITH_KERNELS

namespace corl::ops {

bool cuda_kernels_built() {
#ifdef CORL_WITH_KERNELS
  return true;
#else
  return false;
#endif
}

}  // namespace corl::ops
