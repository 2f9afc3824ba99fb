#include "corl/reward/text_image_matching.h"

#include <stdexcept>

namespace corl::reward {
namespace {

// Rows scaled to unit length as torch.nn.functional.normalize does: x / max(||x||, eps), so a
// zero row stays zero instead of dividing by zero.
torch::Tensor unit_rows(const torch::Tensor& x) {
  constexpr double kEps = 1e-8;
  return x / x.norm(2, /*dim=*/1, /*keepdim=*/true).clamp_min(kEps);
}

}  // namespace

// 1/2 (mean_i max_j cos(I_i, T_j) + mean_j max_i cos(I_i, T_j)).
double text_image_matching(const torch::Tensor& image_hidden, const torch::Tensor& text_hidden) {
  if (!image_hidden.defined() || !text_hidden.defined() || image_hidden.dim() != 2 ||
      text_hidden.dim() != 2 || image_hidden.size(0) == 0 || text_hidden.size(0) == 0 ||
      image_hidden.size(1) == 0 || image_hidden.size(1) != text_hidden.size(1)) {
    throw std::invalid_argument(
        "text_image_matching: needs non-empty [n, H] image and [m, H] text hidden states with "
        "one H");
  }
  // A reward is a number, never part of the graph; double so bf16 states do not round the score.
  const torch::Tensor image = unit_rows(image_hidden.detach().to(torch::kFloat64));
  const torch::Tensor text = unit_rows(text_hidden.detach().to(torch::kFloat64));
  const torch::Tensor cosine = image.matmul(text.t());  // [n, m]
  const torch::Tensor image_to_text = std::get<0>(cosine.max(/*dim=*/1)).mean();
  const torch::Tensor text_to_image = std::get<0>(cosine.max(/*dim=*/0)).mean();
  return 0.5 * (image_to_text + text_to_image).item<double>();
}

}  // namespace corl::reward
