#include <gtest/gtest.h>

#include "corl/reward/reward.h"
#include "corl/reward/text_image_matching.h"

namespace corl::reward {
namespace {

torch::Tensor rows(std::vector<std::vector<double>> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  const int64_t h = static_cast<int64_t>(values[0].size());
  auto t = torch::empty({n, h}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < h; ++j) t[i][j] = values[i][j];
  }
  return t;
}

TEST(TimMatching, OrthogonalIdenticalOpposite) {
  EXPECT_NEAR(text_image_matching(rows({{1, 0}}), rows({{0, 2}})), 0.0, 1e-12);
  EXPECT_NEAR(text_image_matching(rows({{1, 2, 3}, {-4, 0, 1}}), rows({{1, 2, 3}, {-4, 0, 1}})),
              1.0, 1e-12);
  EXPECT_NEAR(text_image_matching(rows({{1, 0}}), rows({{-5, 0}})), -1.0, 1e-12);
}

TEST(TimMatching, HandWorkedTwoByTwo) {
  // Image rows e1, e2; text rows (1, 1)/sqrt2 and e1 after normalising.
  // cos = [[1/sqrt2, 1], [1/sqrt2, 0]].
  // Image -> text: max per row (1, 1/sqrt2), mean (1 + 1/sqrt2) / 2.
  // Text -> image: max per column (1/sqrt2, 1), the same mean.
  const double expected = (1.0 + 1.0 / std::sqrt(2.0)) / 2.0;
  EXPECT_NEAR(text_image_matching(rows({{1, 0}, {0, 1}}), rows({{1, 1}, {3, 0}})), expected, 1e-12);
}

TEST(TimMatching, DirectionsWeighEqually) {
  // Two image tokens e1, e2, one text token 3 e1: cos = [[1], [0]].
  // Image -> text: (1 + 0) / 2; text -> image: 1. Half their sum: 0.75.
  EXPECT_NEAR(text_image_matching(rows({{1, 0}, {0, 1}}), rows({{3, 0}})), 0.75, 1e-12);
  EXPECT_NEAR(text_image_matching(rows({{3, 0}}), rows({{1, 0}, {0, 1}})), 0.75, 1e-12);
}

TEST(TimMatching, FloatInputsAndZeroRows) {
  // A zero row stays zero under normalisation: cosine 0 to everything, never NaN.
  const auto image = rows({{0, 0}, {1, 0}}).to(torch::kFloat32);
  const auto text = rows({{2, 0}}).to(torch::kBFloat16);
  // cos = [[0], [1]]: image -> text 1/2, text -> image 1, so 3/4.
  EXPECT_NEAR(text_image_matching(image, text), 0.75, 1e-6);
}

TEST(TimMatching, RejectsEmptyOrMismatchedStates) {
  EXPECT_THROW(text_image_matching(torch::Tensor(), rows({{1, 0}})), std::invalid_argument);
  EXPECT_THROW(text_image_matching(torch::empty({0, 2}), rows({{1, 0}})), std::invalid_argument);
  EXPECT_THROW(text_image_matching(rows({{1, 0}}), torch::empty({0, 2})), std::invalid_argument);
  EXPECT_THROW(text_image_matching(rows({{1, 0}}), rows({{1, 0, 0}})), std::invalid_argument);
  EXPECT_THROW(text_image_matching(torch::ones({2}), rows({{1, 0}})), std::invalid_argument);
}

TEST(TimMatching, RewardNeedsHiddenStates) {
  const auto tim = make_image_reward("tim", RewardOptions{});
  EXPECT_TRUE(tim->needs_hidden());
  EXPECT_FALSE(tim->needs_caption());
  ImageCase c;
  c.image_hidden = rows({{1, 0}, {0, 1}});
  c.text_hidden = rows({{3, 0}});
  EXPECT_NEAR(tim->score(c), 0.75, 1e-12);
  EXPECT_THROW(tim->score(ImageCase{}), std::invalid_argument);
}

}  // namespace
}  // namespace corl::reward
