#include "corl/ops/packed_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>  // defines: c10::Dispatcher, c10::TypedOperatorHandle

#include <optional>

namespace corl::ops {
namespace {

using ReorderSignature = at::Tensor(const at::Tensor&, int64_t);
using LinearSignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                   const std::optional<at::Tensor>&, int64_t);

struct MklLinear {
  std::optional<c10::TypedOperatorHandle<ReorderSignature>> reorder;
  std::optional<c10::TypedOperatorHandle<LinearSignature>> linear;
};

// LibTorch registers these operators only when it is built with MKL (the x86-64 wheels are).
// mkl::_mkl_linear multiplies through the packed weight only when the rows equal the count it was
// packed for, and otherwise falls back to the unpacked product.
const MklLinear& mkl_linear() {
  static const MklLinear found = [] {
    MklLinear ops;
    auto& dispatcher = c10::Dispatcher::singleton();
    const auto reorder = dispatcher.findSchema({"mkl::_mkl_reorder_linear_weight", ""});
    const auto linear = dispatcher.findSchema({"mkl::_mkl_linear", ""});
    if (reorder && linear && reorder->hasKernelForDispatchKey(c10::DispatchKey::CPU) &&
        linear->hasKernelForDispatchKey(c10::DispatchKey::CPU)) {
      ops.reorder = reorder->typed<ReorderSignature>();
      ops.linear = linear->typed<LinearSignature>();
    }
    return ops;
  }();
  return found;
}

bool cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 &&
         t.layout() == torch::kStrided;
}

}  // namespace

bool PackedLinear::applies(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!cpu_float(x) || !cpu_float(weight) || weight.dim() != 2 || x.dim() < 1) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) return false;
  const int64_t inputs = x.size(-1);
  if (inputs == 0 || inputs != weight.size(1) || weight.size(0) == 0) return false;
  const int64_t rows = x.numel() / inputs;
  return rows >= 1 && rows <= kPackedLinearMaxRows && mkl_linear().linear.has_value();
}

torch::Tensor PackedLinear::operator()(const torch::Tensor& x, const torch::Tensor& weight,
                                       const torch::Tensor& bias) {
  if (!applies(x, weight) || (bias.defined() && !cpu_float(bias))) {
    return torch::nn::functional::linear(x, weight, bias);
  }
  const int64_t rows = x.numel() / x.size(-1);
  const int64_t version = weight._version();
  if (!weight_.is_same(weight) || version_ != version || rows_ != rows) {
    packed_ = mkl_linear().reorder->call(weight.detach(), rows);
    weight_ = weight;
    version_ = version;
    rows_ = rows;
    ++packs_;
  }
  const std::optional<at::Tensor> b = bias.defined() ? std::optional(bias.detach()) : std::nullopt;
  return mkl_linear().linear->call(x, packed_, weight.detach(), b, rows);
}

}  // namespace corl::ops
