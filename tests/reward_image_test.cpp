#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "corl/data/render.h"
#include "corl/reward/reward.h"

namespace corl::reward {
namespace {

cv::Mat constant(int side, int value) {
  return cv::Mat(side, side, CV_8UC3, cv::Scalar(value, value, value));
}

cv::Mat noise(int side, std::uint64_t seed) {
  cv::Mat image(side, side, CV_8UC3);
  cv::RNG(seed).fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

// SSIM of two flat images of grey levels a and b: no variance, so only the luminance term of
// Wang et al. eq. 13 is left, (2ab + C1) / (a^2 + b^2 + C1) with C1 = 0.01^2.
double flat_ssim(double a, double b) {
  const double c1 = 1e-4;
  return (2 * a * b + c1) / (a * a + b * b + c1);
}

TEST(RewardImageRmse, ConstantImages) {
  EXPECT_NEAR(image_rmse(constant(8, 0), constant(8, 51)), 0.2, 1e-12);  // 51 / 255
  EXPECT_DOUBLE_EQ(image_rmse(constant(8, 0), constant(8, 255)), 1.0);
  EXPECT_DOUBLE_EQ(image_rmse(noise(16, 1), noise(16, 1)), 0.0);
}

TEST(RewardImageRmse, HalfThePixelsFullyWrong) {
  // Left half black vs white, right half equal: mean squared error 1/2, RMSE sqrt(1/2).
  cv::Mat a = constant(8, 0);
  cv::Mat b = constant(8, 0);
  b(cv::Rect(0, 0, 4, 8)).setTo(cv::Scalar(255, 255, 255));
  EXPECT_NEAR(image_rmse(a, b), std::sqrt(0.5), 1e-12);
}

TEST(RewardImageRmse, OneChannelDiffering) {
  // Red differs by 255 everywhere, green and blue agree: MSE over channels 1/3.
  const cv::Mat a = constant(4, 0);
  const cv::Mat b(4, 4, CV_8UC3, cv::Scalar(255, 0, 0));
  EXPECT_NEAR(image_rmse(a, b), std::sqrt(1.0 / 3.0), 1e-12);
}

TEST(RewardImageRmse, RejectsMismatchedImages) {
  EXPECT_THROW(image_rmse(constant(8, 0), constant(9, 0)), std::invalid_argument);
  EXPECT_THROW(image_rmse(cv::Mat(), constant(8, 0)), std::invalid_argument);
  EXPECT_THROW(image_rmse(cv::Mat(8, 8, CV_8UC1, cv::Scalar(0)), cv::Mat(8, 8, CV_8UC1)),
               std::invalid_argument);
}

TEST(RewardImageSsim, IdenticalImagesScoreOne) {
  EXPECT_NEAR(image_ssim(noise(32, 3), noise(32, 3)), 1.0, 1e-9);
  EXPECT_NEAR(image_ssim(constant(16, 90), constant(16, 90)), 1.0, 1e-9);
}

TEST(RewardImageSsim, FlatImagesKeepOnlyTheLuminanceTerm) {
  // Grey 51 / 255 = 0.2 against black: C1 / (0.04 + C1) = 0.0001 / 0.0401.
  EXPECT_NEAR(image_ssim(constant(16, 0), constant(16, 51)), 0.0001 / 0.0401, 1e-6);
  EXPECT_NEAR(image_ssim(constant(16, 51), constant(16, 102)), flat_ssim(0.2, 0.4), 1e-6);
}

TEST(RewardImageSsim, InverseScoresBelowZero) {
  const cv::Mat image = noise(32, 5);
  cv::Mat inverse;
  cv::bitwise_not(image, inverse);
  EXPECT_LT(image_ssim(image, inverse), 0.0);
}

TEST(RewardImageSsim, SymmetricAndBelowOneForADegradedImage) {
  const cv::Mat image = noise(32, 9);
  cv::Mat blurred;
  cv::GaussianBlur(image, blurred, cv::Size(0, 0), 1.0);
  const double forward = image_ssim(image, blurred);
  EXPECT_NEAR(forward, image_ssim(blurred, image), 1e-12);
  EXPECT_LT(forward, 0.9);
  EXPECT_GT(forward, -1.0);
}

TEST(RewardImageSsim, RejectsMismatchedImages) {
  EXPECT_THROW(image_ssim(constant(8, 0), constant(16, 0)), std::invalid_argument);
}

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

ImageCase cycle_case(const std::string& prompt, const std::string& caption, cv::Mat real,
                     cv::Mat image) {
  ImageCase c;
  c.prompt = prompt;
  c.caption = caption;
  c.real_image = std::move(real);
  c.image = std::move(image);
  return c;
}

RewardOptions cycle_options(const std::string& text, const std::string& image) {
  RewardOptions options;
  options.cycle_text = text;
  options.cycle_image = image;
  return options;
}

TEST(CycleReward, PerfectCaptionAndImageScoreTwo) {
  const cv::Mat image = noise(16, 2);
  const auto c = cycle_case("a red circle", "A red circle.", image, image.clone());
  for (const std::string text : {"f1", "jaccard"}) {
    for (const std::string metric : {"rmse", "ssim"}) {
      const auto cycle = make_image_reward("cycle", cycle_options(text, metric));
      EXPECT_TRUE(cycle->needs_caption());
      EXPECT_FALSE(cycle->needs_hidden());
      EXPECT_NEAR(cycle->score(c), 2.0, 1e-9) << text << " " << metric;
    }
  }
}

TEST(CycleReward, HandWorkedPartialCase) {
  // Caption "a blue circle" vs prompt "a red circle": common {a, circle} = 2 of 3 words each,
  // so F1 = 2/3; Jaccard = 2 / |{a, red, blue, circle}| = 1/2.
  // Generated black vs real grey 51: RMSE 0.2, image part 0.8; SSIM of flat images
  // C1 / (0.04 + C1) = 0.0001 / 0.0401.
  const auto c = cycle_case("a red circle", "a blue circle", constant(16, 51), constant(16, 0));
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("f1", "rmse"))->score(c), 2.0 / 3.0 + 0.8,
              1e-9);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("jaccard", "rmse"))->score(c), 0.5 + 0.8,
              1e-9);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("jaccard", "ssim"))->score(c),
              0.5 + 0.0001 / 0.0401, 1e-6);
}

TEST(CycleReward, AnticorrelatedImageEarnsNothing) {
  const cv::Mat image = noise(32, 5);
  cv::Mat inverse;
  cv::bitwise_not(image, inverse);
  const auto c = cycle_case("a red circle", "a red circle", image, inverse);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("f1", "ssim"))->score(c), 1.0, 1e-12);
}

TEST(CycleReward, RealImageIsResizedToTheGeneratedOne) {
  // A flat 32 px real image stays flat at 16 px under area interpolation.
  const auto c = cycle_case("a red circle", "a red circle", constant(32, 51), constant(16, 0));
  EXPECT_NEAR(make_image_reward("cycle", RewardOptions{})->score(c), 1.0 + 0.8, 1e-9);
}

TEST(CycleReward, NoRealImageMeansNoImageCredit) {
  const auto c = cycle_case("a red circle", "a circle", cv::Mat(), constant(16, 0));
  // F1: common {a, circle} = 2; P = 2/2, R = 2/3, F1 = 2 (2/3) / (5/3) = 4/5.
  EXPECT_NEAR(make_image_reward("cycle", RewardOptions{})->score(c), 0.8, 1e-12);
}

TEST(CycleReward, RejectsUnknownMetrics) {
  EXPECT_THROW(make_image_reward("cycle", cycle_options("bleu", "rmse")), std::invalid_argument);
  EXPECT_THROW(make_image_reward("cycle", cycle_options("f1", "lpips")), std::invalid_argument);
}

constexpr int kResolution = 64;

data::Object object(data::Shape shape, data::Color color, double x, double y) {
  return {shape, color, x, y, 0.1};
}

data::PromptSpec spec_of(data::Category category, std::vector<data::Requirement> include) {
  data::PromptSpec spec;
  spec.category = category;
  spec.include = std::move(include);
  return spec;
}

double geneval_score(const data::PromptSpec& spec, const data::Scene& scene, bool partial,
                     bool exclusive = true) {
  RewardOptions options;
  options.geneval_partial = partial;
  options.judge.exclusive = exclusive;
  ImageCase c;
  c.spec = &spec;
  c.image = data::render(scene, kResolution);
  return make_image_reward("geneval", options)->score(c);
}

using data::Color;
using data::Shape;

TEST(GenevalReward, MatchingSceneScoresOne) {
  const auto spec = spec_of(data::Category::kColors, {{Shape::kCircle, 1, Color::kRed}});
  const data::Scene scene{{object(Shape::kCircle, Color::kRed, 0.5, 0.5)}};
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, true), 1.0);
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, false), 1.0);
}

TEST(GenevalReward, ExtraObjectFailsTheExclusiveRule) {
  // The count check holds (2 red circles found, at least 2 asked: 1), times the share of
  // detected objects claimed (2 of 3): partial credit 2/3; correctness 0.
  const auto spec = spec_of(data::Category::kCounting, {{Shape::kCircle, 2, Color::kRed}});
  const data::Scene scene{{object(Shape::kCircle, Color::kRed, 0.2, 0.2),
                           object(Shape::kCircle, Color::kRed, 0.8, 0.2),
                           object(Shape::kSquare, Color::kBlue, 0.5, 0.75)}};
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, true), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, false), 0.0);
  // GenEval's own rule lets clutter pass.
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, false, /*exclusive=*/false), 1.0);
}

TEST(GenevalReward, WrongColour) {
  // Asked: a red circle and a blue square; shown: a green circle and a blue square.
  // Checks: red circle 1/2 (a circle, green: half right), blue square 1: 3/4; both detected
  // objects are claimed (the green circle by its half credit): 3/4.
  const auto spec = spec_of(data::Category::kTwoObject,
                            {{Shape::kCircle, 1, Color::kRed}, {Shape::kSquare, 1, Color::kBlue}});
  const data::Scene scene{{object(Shape::kCircle, Color::kGreen, 0.25, 0.5),
                           object(Shape::kSquare, Color::kBlue, 0.75, 0.5)}};
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, true), 0.75);
  EXPECT_DOUBLE_EQ(geneval_score(spec, scene, false), 0.0);
}

TEST(GenevalReward, RowWithoutSpecIsAnError) {
  const auto geneval = make_image_reward("geneval", RewardOptions{});
  EXPECT_FALSE(geneval->needs_caption());
  EXPECT_FALSE(geneval->needs_hidden());
  ImageCase c;
  c.image = constant(kResolution, 0);
  try {
    geneval->score(c);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "geneval reward: row has no scene spec");
  }
}

}  // namespace
}  // namespace corl::reward
