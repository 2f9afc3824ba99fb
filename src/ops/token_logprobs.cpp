#include "corl/ops/token_logprobs.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernel_dispatch.h"  // defines: cuda::token_logprobs

namespace corl::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Half-precision logits are summed over the vocabulary in float32; float64 stays float64 so that
// a double-precision check measures the op rather than the rounding.
torch::ScalarType compute_dtype(torch::ScalarType logits_dtype) {
  return logits_dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

std::string shape_string(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

void check_logits(const torch::Tensor& logits, int64_t chunk_rows, const char* op) {
  if (!logits.defined() || logits.dim() < 1 || !logits.is_floating_point()) {
    throw std::invalid_argument(std::string(op) + ": logits must be a floating tensor [..., V]");
  }
  if (logits.size(-1) < 1) {
    throw std::invalid_argument(std::string(op) + ": logits have an empty vocabulary, shape " +
                                shape_string(logits.sizes()));
  }
  if (chunk_rows < 1) {
    throw std::invalid_argument(std::string(op) + ": chunk_rows must be >= 1, got " +
                                std::to_string(chunk_rows));
  }
}

// Each row is scored relative to its largest logit m: logp = (x_t - m) - log sum exp(x - m). With
// logits near 1e4, float32 cannot hold m + log sum exp(x - m) to better than ~1e-3, so the two
// parts are kept apart rather than folded into one log-sum-exp.
struct RowNormaliser {
  torch::Tensor max;      // [rows, 1]
  torch::Tensor log_sum;  // [rows, 1] log sum exp(x - max)
};

RowNormaliser row_normaliser(const torch::Tensor& x) {
  torch::Tensor max = std::get<0>(x.max(-1, /*keepdim=*/true));
  return {max, torch::exp(x - max).sum(-1, /*keepdim=*/true).log()};
}

// Only the [N] row maxima and shifted log-sum-exps outlive the forward pass; the backward pass
// rebuilds each chunk's softmax from them, so no [N, V] tensor beyond the logits and their
// gradient is ever held.
struct TokenLogprobsFunction : public torch::autograd::Function<TokenLogprobsFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, int64_t chunk_rows) {
    const int64_t vocab = logits.size(-1);
    const auto dtype = compute_dtype(logits.scalar_type());
    const torch::Tensor flat = logits.reshape({-1, vocab});
    const torch::Tensor flat_targets = targets.reshape({-1, 1});
    const int64_t rows = flat.size(0);

    torch::Tensor logp = torch::empty(targets.sizes(), logits.options().dtype(torch::kFloat32));
    torch::Tensor flat_logp = logp.view({-1, 1});
    torch::Tensor max = torch::empty({rows, 1}, logits.options().dtype(dtype));
    torch::Tensor log_sum = torch::empty({rows, 1}, logits.options().dtype(dtype));
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t len = std::min(chunk_rows, rows - start);
      const torch::Tensor x = flat.narrow(0, start, len).to(dtype);
      const torch::Tensor t = flat_targets.narrow(0, start, len);
      const RowNormaliser norm = row_normaliser(x);
      // Ignored targets gather column 0 and are zeroed afterwards.
      const torch::Tensor picked = x.gather(1, t.clamp_min(0));
      flat_logp.narrow(0, start, len)
          .copy_((picked - norm.max - norm.log_sum).masked_fill_(t.lt(0), 0.0));
      max.narrow(0, start, len).copy_(norm.max);
      log_sum.narrow(0, start, len).copy_(norm.log_sum);
    }

    ctx->save_for_backward({logits, targets, max, log_sum});
    ctx->saved_data["chunk_rows"] = chunk_rows;
    return logp;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const torch::Tensor& targets = saved[1];
    const torch::Tensor& max = saved[2];
    const torch::Tensor& log_sum = saved[3];
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();

    const int64_t vocab = logits.size(-1);
    const auto dtype = max.scalar_type();
    const torch::Tensor flat = logits.reshape({-1, vocab});
    const torch::Tensor flat_targets = targets.reshape({-1, 1});
    const torch::Tensor grad = grad_outputs[0].reshape({-1, 1}).to(dtype);
    const int64_t rows = flat.size(0);

    torch::Tensor grad_logits = torch::empty({rows, vocab}, logits.options());
    for (int64_t start = 0; start < rows; start += chunk_rows) {
      const int64_t len = std::min(chunk_rows, rows - start);
      const torch::Tensor x = flat.narrow(0, start, len).to(dtype);
      const torch::Tensor t = flat_targets.narrow(0, start, len);
      const torch::Tensor g = grad.narrow(0, start, len).masked_fill(t.lt(0), 0.0);
      // d logp / d logits = onehot(target) - softmax(logits), scaled by the upstream gradient.
      torch::Tensor d = (x - max.narrow(0, start, len) - log_sum.narrow(0, start, len)).exp_();
      d.mul_(g.neg());
      d.scatter_add_(1, t.clamp_min(0), g);
      grad_logits.narrow(0, start, len).copy_(d);
    }
    return {grad_logits.view(logits.sizes()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                             int64_t chunk_rows, bool reuse_logits_for_grad) {
  check_logits(logits, chunk_rows, "token_logprobs");
  if (!targets.defined() || targets.sizes() != logits.sizes().slice(0, logits.dim() - 1)) {
    throw std::invalid_argument(
        "token_logprobs: targets must have the logits' shape without the vocabulary; logits " +
        shape_string(logits.sizes()) + ", targets " +
        (targets.defined() ? shape_string(targets.sizes()) : std::string("undefined")));
  }
  if (targets.scalar_type() != torch::kInt64) {
    throw std::invalid_argument("token_logprobs: targets must be int64");
  }
#ifdef CORL_WITH_KERNELS
  if (logits.is_cuda() && logits.scalar_type() != torch::kFloat64) {
    if (targets.device() != logits.device()) {
      throw std::invalid_argument("token_logprobs: targets must be on the logits' device");
    }
    return cuda::token_logprobs(logits, targets, reuse_logits_for_grad);
  }
#endif
  (void)reuse_logits_for_grad;  // the reference path always allocates the gradient
  return TokenLogprobsFunction::apply(logits, targets, chunk_rows);
}

torch::Tensor token_entropy(const torch::Tensor& logits, int64_t chunk_rows) {
  check_logits(logits, chunk_rows, "token_entropy");
  torch::NoGradGuard no_grad;
  const int64_t vocab = logits.size(-1);
  const auto dtype = compute_dtype(logits.scalar_type());
  const torch::Tensor flat = logits.reshape({-1, vocab});
  const int64_t rows = flat.size(0);

  torch::Tensor entropy = torch::empty(logits.sizes().slice(0, logits.dim() - 1),
                                       logits.options().dtype(torch::kFloat32));
  torch::Tensor flat_entropy = entropy.view({-1});
  for (int64_t start = 0; start < rows; start += chunk_rows) {
    const int64_t len = std::min(chunk_rows, rows - start);
    const torch::Tensor x = flat.narrow(0, start, len).to(dtype);
    const RowNormaliser norm = row_normaliser(x);
    const torch::Tensor shifted = x - norm.max;
    const torch::Tensor p = torch::exp(shifted - norm.log_sum);
    // H = log sum exp(x) - sum_v p_v x_v, both taken relative to the row maximum so that large
    // logits do not cancel. A masked-out logit (-inf) has p = 0 and adds 0, not 0 * inf.
    const torch::Tensor px = torch::where(p.gt(0), p * shifted, torch::zeros({}, p.options()));
    flat_entropy.narrow(0, start, len).copy_(norm.log_sum.squeeze(1) - px.sum(-1));
  }
  return entropy;
}

}  // namespace corl::ops
