#include <gtest/gtest.h>

#include <cmath>

#include "corl/model/linear.h"
#include "corl/ops/packed_linear.h"

namespace corl::ops {
namespace {

// |computed - exact| per element, against the float64 product, and the bound of a float32 dot
// product of length K summed in any order: gamma_K = K u / (1 - K u) times sum_k |x_k w_k|
// (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1), with u = 2^-24.
struct Error {
  double worst_ratio;  // max over elements of |computed - exact| / bound (<= 1 when within it)
};

Error against_float64(const torch::Tensor& computed, const torch::Tensor& x,
                      const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto x64 = x.to(torch::kFloat64);
  const auto w64 = weight.to(torch::kFloat64);
  auto exact = torch::matmul(x64, w64.t());
  auto magnitude = torch::matmul(x64.abs(), w64.abs().t());
  if (bias.defined()) {
    exact = exact + bias.to(torch::kFloat64);
    magnitude = magnitude + bias.to(torch::kFloat64).abs();
  }
  const double k = static_cast<double>(weight.size(1)) + 1.0;  // + 1: the bias' addition
  const double u = std::ldexp(1.0, -24);
  const auto bound = magnitude * (k * u / (1.0 - k * u)) + 1e-30;
  const auto ratio = (computed.to(torch::kFloat64) - exact).abs() / bound;
  return {ratio.max().item<double>()};
}

// Skips where this LibTorch has no MKL (the packed path then never applies).
#define REQUIRE_MKL()                                                                           \
  if (!PackedLinear::applies(torch::ones({1, 1}), torch::ones({1, 1}))) {                       \
    GTEST_SKIP() << "this LibTorch has no MKL packed GEMM; every product takes the plain path"; \
  }

TEST(PackedLinear, EqualsTheProductWithinFloatRoundingForEveryRowCount) {
  REQUIRE_MKL();
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto weight = torch::randn({96, 80});
  const auto bias = torch::randn({96});
  PackedLinear packed;
  for (int64_t rows : {1, 2, 3, 8, 16, 17, 32}) {
    const auto x = torch::randn({rows, 80});
    for (const auto& b : {torch::Tensor(), bias}) {
      const auto y = packed(x, weight, b);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, 96}));
      EXPECT_LE(against_float64(y, x, weight, b).worst_ratio, 1.0)
          << rows << " rows" << (b.defined() ? ", with bias" : "");
    }
  }
  EXPECT_EQ(packed.packs(), 7);  // once per row count; the bias needs no new pack
}

TEST(PackedLinear, LeadingDimensionsAreRows) {
  REQUIRE_MKL();
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  const auto weight = torch::randn({24, 40});
  const auto x = torch::randn({2, 1, 3, 40});  // 6 rows
  PackedLinear packed;
  const auto y = packed(x, weight);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 1, 3, 24}));
  EXPECT_LE(against_float64(y, x, weight, {}).worst_ratio, 1.0);
  EXPECT_EQ(packed.packs(), 1);
}

TEST(PackedLinear, RepacksOnlyWhenTheWeightOrRowCountChanges) {
  REQUIRE_MKL();
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  auto weight = torch::randn({32, 16});
  const auto x = torch::randn({4, 16});
  PackedLinear packed;
  packed(x, weight);
  packed(x * 2.0, weight);
  EXPECT_EQ(packed.packs(), 1);

  weight.add_(1.0);  // an optimizer step writes in place: the old pack would be stale
  const auto y = packed(x, weight);
  EXPECT_EQ(packed.packs(), 2);
  EXPECT_LE(against_float64(y, x, weight, {}).worst_ratio, 1.0);

  const auto other = torch::randn({32, 16});  // another tensor, same shape
  EXPECT_LE(against_float64(packed(x, other), x, other, {}).worst_ratio, 1.0);
  EXPECT_EQ(packed.packs(), 3);

  packed(torch::randn({5, 16}), other);
  EXPECT_EQ(packed.packs(), 4);
}

TEST(PackedLinear, GradientsAndLargeProductsTakeThePlainPath) {
  torch::manual_seed(3);
  const auto weight = torch::randn({8, 6}).requires_grad_();
  const auto x = torch::randn({3, 6});
  PackedLinear packed;
  const auto y = packed(x, weight);
  y.sum().backward();
  // d sum(x W^T) / dW = ones^T x: each row of the gradient is the column sums of x.
  EXPECT_TRUE(torch::allclose(weight.grad(), x.sum(0).expand({8, 6}), 1e-6, 1e-6));
  {
    torch::NoGradGuard no_grad;
    packed(torch::randn({kPackedLinearMaxRows + 1, 6}), weight.detach());
    packed(torch::randn({4, 6}, torch::kFloat64), weight.detach().to(torch::kFloat64));
  }
  EXPECT_EQ(packed.packs(), 0);
}

TEST(PackedLinear, ModelLinearPacksOnlyWithoutGradient) {
  REQUIRE_MKL();
  torch::manual_seed(4);
  model::Linear layer(torch::nn::LinearOptions(20, 12).bias(true));
  const auto x = torch::randn({4, 20});
  const auto trained = layer(x);  // gradient recorded: torch::nn::Linear's own product
  EXPECT_TRUE(trained.requires_grad());
  EXPECT_EQ(layer->packed.packs(), 0);
  torch::NoGradGuard no_grad;
  const auto sampled = layer(x);
  EXPECT_EQ(layer->packed.packs(), 1);
  EXPECT_LE(against_float64(sampled, x, layer->weight, layer->bias).worst_ratio, 1.0);
}

}  // namespace
}  // namespace corl::ops
