#include "corl/reward/reward.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "corl/data/render.h"
#include "test_images.h"

namespace corl::reward {
namespace {

std::string error_of(const std::function<void()>& make) {
  try {
    make();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(RewardRegistry, NamesAreSortedAndSplitByTask) {
  EXPECT_EQ(reward_names(), (std::vector<std::string>{"accuracy", "cycle", "format", "geneval",
                                                      "options", "perception", "tim"}));
  for (const std::string name : {"cycle", "tim", "geneval"}) {
    EXPECT_TRUE(is_image_reward(name)) << name;
    EXPECT_FALSE(is_answer_reward(name)) << name;
    EXPECT_NE(make_image_reward(name, RewardOptions{}), nullptr) << name;
  }
  for (const std::string name : {"accuracy", "format", "perception", "options"}) {
    EXPECT_TRUE(is_answer_reward(name)) << name;
    EXPECT_FALSE(is_image_reward(name)) << name;
    EXPECT_NE(make_answer_reward(name, RewardOptions{}), nullptr) << name;
  }
  EXPECT_FALSE(is_image_reward("clip"));
  EXPECT_FALSE(is_answer_reward("Accuracy"));
}

TEST(RewardRegistry, UnknownNamesAreNamedWithTheKnownOnes) {
  EXPECT_EQ(
      error_of([] { make_image_reward("clip", RewardOptions{}); }),
      "unknown reward 'clip'; known: accuracy, cycle, format, geneval, options, perception, tim");
  EXPECT_EQ(
      error_of([] { make_answer_reward("acc", RewardOptions{}); }),
      "unknown reward 'acc'; known: accuracy, cycle, format, geneval, options, perception, tim");
}

TEST(RewardRegistry, RewardOfTheOtherTaskIsNamedAsSuch) {
  const std::string image_error = error_of([] { make_image_reward("accuracy", RewardOptions{}); });
  EXPECT_NE(image_error.find("'accuracy' is an image-to-text reward"), std::string::npos)
      << image_error;
  const std::string answer_error = error_of([] { make_answer_reward("cycle", RewardOptions{}); });
  EXPECT_NE(answer_error.find("'cycle' is a text-to-image reward"), std::string::npos)
      << answer_error;
}

using corl::testing::constant_image;
using corl::testing::noise_image;

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
  const cv::Mat image = noise_image(16, 2);
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
  const auto c =
      cycle_case("a red circle", "a blue circle", constant_image(16, 51), constant_image(16, 0));
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("f1", "rmse"))->score(c), 2.0 / 3.0 + 0.8,
              1e-9);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("jaccard", "rmse"))->score(c), 0.5 + 0.8,
              1e-9);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("jaccard", "ssim"))->score(c),
              0.5 + 0.0001 / 0.0401, 1e-6);
}

TEST(CycleReward, AnticorrelatedImageEarnsNothing) {
  const cv::Mat image = noise_image(32, 5);
  cv::Mat inverse;
  cv::bitwise_not(image, inverse);
  const auto c = cycle_case("a red circle", "a red circle", image, inverse);
  EXPECT_NEAR(make_image_reward("cycle", cycle_options("f1", "ssim"))->score(c), 1.0, 1e-12);
}

TEST(CycleReward, RealImageIsResizedToTheGeneratedOne) {
  // A flat 32 px real image stays flat at 16 px under area interpolation.
  const auto c =
      cycle_case("a red circle", "a red circle", constant_image(32, 51), constant_image(16, 0));
  EXPECT_NEAR(make_image_reward("cycle", RewardOptions{})->score(c), 1.0 + 0.8, 1e-9);
}

TEST(CycleReward, NoRealImageMeansNoImageCredit) {
  const auto c = cycle_case("a red circle", "a circle", cv::Mat(), constant_image(16, 0));
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
  c.image = constant_image(kResolution, 0);
  try {
    geneval->score(c);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "geneval reward: row has no scene spec");
  }
}

}  // namespace
}  // namespace corl::reward
