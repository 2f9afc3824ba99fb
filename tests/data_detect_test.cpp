#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <random>

#include "corl/data/detect.h"
#include "corl/data/render.h"

namespace corl::data {
namespace {

constexpr int kResolution = 64;
constexpr double kPixel = 1.0 / kResolution;

// The degradations a generated image shows, in the strengths a VQ decoder's output has at 64 px.
cv::Mat blurred(const cv::Mat& image) {
  cv::Mat out;
  cv::GaussianBlur(image, out, cv::Size(0, 0), 0.8);
  return out;
}

cv::Mat noisy(const cv::Mat& image, std::uint64_t seed) {
  cv::RNG rng(seed);
  cv::Mat noise(image.size(), CV_16SC3);
  rng.fill(noise, cv::RNG::NORMAL, 0, 10);
  cv::Mat wide;
  image.convertTo(wide, CV_16SC3);
  wide += noise;
  cv::Mat out;
  wide.convertTo(out, CV_8UC3);  // saturates at 0 and 255
  return out;
}

// Positions within 1.6 px (blur moves a triangle's half-brightness apex), sizes within 1.6 px.
void expect_same(const Object& found, const Object& drawn, const std::string& context) {
  EXPECT_EQ(name(found.shape), name(drawn.shape)) << context;
  EXPECT_EQ(name(found.color), name(drawn.color)) << context;
  EXPECT_NEAR(found.x, drawn.x, 1.6 * kPixel) << context;
  EXPECT_NEAR(found.y, drawn.y, 1.6 * kPixel) << context;
  EXPECT_NEAR(found.size, drawn.size, 1.6 * kPixel) << context;
}

TEST(Detect, BlackImageHasNoObjects) {
  EXPECT_TRUE(detect(render(Scene{}, kResolution)).objects.empty());
}

TEST(Detect, RejectsAnythingButRgb8) {
  EXPECT_THROW(detect(cv::Mat(8, 8, CV_8U, cv::Scalar(0))), std::invalid_argument);
  EXPECT_THROW(detect(cv::Mat()), std::invalid_argument);
}

TEST(Detect, EveryShapeInEveryColour) {
  for (Shape shape : kAllShapes) {
    for (Color color : kAllColors) {
      const Object drawn{shape, color, 0.43, 0.57, 0.11};
      const cv::Mat image = render(Scene{{drawn}}, kResolution);
      const std::string context = name(color) + " " + name(shape);
      for (const auto& [variant, seen] :
           {std::pair{"clean", image}, std::pair{"blurred", blurred(image)},
            std::pair{"blurred+noise", noisy(blurred(image), 7)}}) {
        const Scene found = detect(seen);
        ASSERT_EQ(found.objects.size(), 1u) << context << " " << variant;
        expect_same(found.objects[0], drawn, context + " " + variant);
      }
    }
  }
}

TEST(Detect, CleanRenderReadsBackItsBoxExactly) {
  // Box pixels 24..39: centre 32 px, half side 8 px.
  const Scene found = detect(render(Scene{{{Shape::kSquare, Color::kRed, 0.5, 0.5, 0.125}}}, 64));
  ASSERT_EQ(found.objects.size(), 1u);
  EXPECT_DOUBLE_EQ(found.objects[0].x, 0.5);
  EXPECT_DOUBLE_EQ(found.objects[0].y, 0.5);
  EXPECT_DOUBLE_EQ(found.objects[0].size, 0.125);
}

TEST(Detect, SeveralObjectsInReadingOrder) {
  Scene scene;
  scene.objects.push_back({Shape::kCross, Color::kWhite, 0.75, 0.78, 0.13});
  scene.objects.push_back({Shape::kTriangle, Color::kBlue, 0.25, 0.22, 0.1});
  scene.objects.push_back({Shape::kCircle, Color::kOrange, 0.72, 0.25, 0.12});
  scene.objects.push_back({Shape::kDiamond, Color::kGreen, 0.27, 0.74, 0.15});
  // Reading order: by y, then x.
  const std::vector<Object> expected = {scene.objects[1], scene.objects[2], scene.objects[3],
                                        scene.objects[0]};
  const cv::Mat image = render(scene, kResolution);
  for (const auto& [variant, seen] :
       {std::pair{"clean", image}, std::pair{"blurred", blurred(image)},
        std::pair{"blurred+noise", noisy(blurred(image), 11)}}) {
    const Scene found = detect(seen);
    ASSERT_EQ(found.objects.size(), expected.size()) << variant;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      expect_same(found.objects[i], expected[i], std::string(variant) + " #" + std::to_string(i));
    }
  }
}

TEST(Detect, CountsManyObjectsOfOneKind) {
  Scene scene;
  for (double x : {0.15, 0.5, 0.85}) {
    for (double y : {0.2, 0.75}) scene.objects.push_back({Shape::kSquare, Color::kRed, x, y, 0.1});
  }
  EXPECT_EQ(detect(noisy(blurred(render(scene, kResolution)), 3)).objects.size(), 6u);
}

TEST(Detect, SplitsTouchingObjectsOfDifferentColours) {
  Scene scene;
  scene.objects.push_back({Shape::kSquare, Color::kRed, 0.375, 0.5, 0.125});
  scene.objects.push_back({Shape::kSquare, Color::kCyan, 0.625, 0.5, 0.125});  // shares an edge
  const Scene found = detect(render(scene, kResolution));
  ASSERT_EQ(found.objects.size(), 2u);
  expect_same(found.objects[0], scene.objects[0], "left");
  expect_same(found.objects[1], scene.objects[1], "right");
}

TEST(Detect, IgnoresSpecksAndDimPixels) {
  cv::Mat image = render(Scene{{{Shape::kCircle, Color::kYellow, 0.3, 0.3, 0.12}}}, kResolution);
  image(cv::Rect(50, 50, 3, 3)).setTo(cv::Scalar(255, 255, 255));  // 9 px < 0.004 * 4096
  image(cv::Rect(40, 5, 10, 10)).setTo(cv::Scalar(40, 0, 0));      // below background_max
  const Scene found = detect(image);
  ASSERT_EQ(found.objects.size(), 1u);
  EXPECT_EQ(found.objects[0].shape, Shape::kCircle);
  EXPECT_EQ(found.objects[0].color, Color::kYellow);
}

TEST(Detect, DimmedColoursKeepTheirName) {
  // A dark object (brightness 120 of 255) is the same colour, as a blurred edge is.
  for (Color color : kAllColors) {
    const Rgb c = rgb(color);
    cv::Mat image(kResolution, kResolution, CV_8UC3, cv::Scalar(0, 0, 0));
    cv::rectangle(image, cv::Rect(20, 20, 16, 16),
                  cv::Scalar(c.r * 120.0 / 255, c.g * 120.0 / 255, c.b * 120.0 / 255), cv::FILLED);
    const Scene found = detect(image);
    ASSERT_EQ(found.objects.size(), 1u) << name(color);
    EXPECT_EQ(name(found.objects[0].color), name(color));
    EXPECT_EQ(found.objects[0].shape, Shape::kSquare);
  }
}

// Random single objects over the world's default size range, everywhere in the image: the
// detector must read every clean render correctly and nearly every degraded one.
TEST(Detect, RandomObjectsAcrossSizesAndPositions) {
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int trials = 600;
  int clean_right = 0, degraded_right = 0;
  for (int i = 0; i < trials; ++i) {
    Object drawn;
    drawn.shape = kAllShapes[rng() % kAllShapes.size()];
    drawn.color = kAllColors[rng() % kAllColors.size()];
    drawn.size = 0.09 + 0.07 * unit(rng);
    drawn.x = drawn.size + unit(rng) * (1 - 2 * drawn.size);
    drawn.y = drawn.size + unit(rng) * (1 - 2 * drawn.size);
    const cv::Mat image = render(Scene{{drawn}}, kResolution);
    const auto right = [&](const Scene& found) {
      return found.objects.size() == 1 && found.objects[0].shape == drawn.shape &&
             found.objects[0].color == drawn.color &&
             std::abs(found.objects[0].x - drawn.x) < 2 * kPixel &&
             std::abs(found.objects[0].y - drawn.y) < 2 * kPixel;
    };
    clean_right += right(detect(image));
    degraded_right += right(detect(noisy(blurred(image), i)));
  }
  EXPECT_EQ(clean_right, trials);
  EXPECT_GE(degraded_right, 0.98 * trials);
}

}  // namespace
}  // namespace corl::data
