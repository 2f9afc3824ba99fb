#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "corl/reward/image_distance.h"
#include "test_images.h"

namespace corl::reward {
namespace {

using corl::testing::constant_image;
using corl::testing::noise_image;

// SSIM of two flat images of grey levels a and b: no variance, so only the luminance term of
// Wang et al. eq. 13 is left, (2ab + C1) / (a^2 + b^2 + C1) with C1 = 0.01^2.
double flat_ssim(double a, double b) {
  const double c1 = 1e-4;
  return (2 * a * b + c1) / (a * a + b * b + c1);
}

TEST(RewardImageRmse, ConstantImages) {
  EXPECT_NEAR(image_rmse(constant_image(8, 0), constant_image(8, 51)), 0.2, 1e-12);  // 51 / 255
  EXPECT_DOUBLE_EQ(image_rmse(constant_image(8, 0), constant_image(8, 255)), 1.0);
  EXPECT_DOUBLE_EQ(image_rmse(noise_image(16, 1), noise_image(16, 1)), 0.0);
}

TEST(RewardImageRmse, HalfThePixelsFullyWrong) {
  // Left half black vs white, right half equal: mean squared error 1/2, RMSE sqrt(1/2).
  cv::Mat a = constant_image(8, 0);
  cv::Mat b = constant_image(8, 0);
  b(cv::Rect(0, 0, 4, 8)).setTo(cv::Scalar(255, 255, 255));
  EXPECT_NEAR(image_rmse(a, b), std::sqrt(0.5), 1e-12);
}

TEST(RewardImageRmse, OneChannelDiffering) {
  // Red differs by 255 everywhere, green and blue agree: MSE over channels 1/3.
  const cv::Mat a = constant_image(4, 0);
  const cv::Mat b(4, 4, CV_8UC3, cv::Scalar(255, 0, 0));
  EXPECT_NEAR(image_rmse(a, b), std::sqrt(1.0 / 3.0), 1e-12);
}

TEST(RewardImageRmse, RejectsMismatchedImages) {
  EXPECT_THROW(image_rmse(constant_image(8, 0), constant_image(9, 0)), std::invalid_argument);
  EXPECT_THROW(image_rmse(cv::Mat(), constant_image(8, 0)), std::invalid_argument);
  EXPECT_THROW(image_rmse(cv::Mat(8, 8, CV_8UC1, cv::Scalar(0)), cv::Mat(8, 8, CV_8UC1)),
               std::invalid_argument);
}

TEST(RewardImageSsim, IdenticalImagesScoreOne) {
  EXPECT_NEAR(image_ssim(noise_image(32, 3), noise_image(32, 3)), 1.0, 1e-9);
  EXPECT_NEAR(image_ssim(constant_image(16, 90), constant_image(16, 90)), 1.0, 1e-9);
}

TEST(RewardImageSsim, FlatImagesKeepOnlyTheLuminanceTerm) {
  // Grey 51 / 255 = 0.2 against black: C1 / (0.04 + C1) = 0.0001 / 0.0401.
  EXPECT_NEAR(image_ssim(constant_image(16, 0), constant_image(16, 51)), 0.0001 / 0.0401, 1e-6);
  EXPECT_NEAR(image_ssim(constant_image(16, 51), constant_image(16, 102)), flat_ssim(0.2, 0.4),
              1e-6);
}

TEST(RewardImageSsim, InverseScoresBelowZero) {
  const cv::Mat image = noise_image(32, 5);
  cv::Mat inverse;
  cv::bitwise_not(image, inverse);
  EXPECT_LT(image_ssim(image, inverse), 0.0);
}

TEST(RewardImageSsim, SymmetricAndBelowOneForADegradedImage) {
  const cv::Mat image = noise_image(32, 9);
  cv::Mat blurred;
  cv::GaussianBlur(image, blurred, cv::Size(0, 0), 1.0);
  const double forward = image_ssim(image, blurred);
  EXPECT_NEAR(forward, image_ssim(blurred, image), 1e-12);
  EXPECT_LT(forward, 0.9);
  EXPECT_GT(forward, -1.0);
}

TEST(RewardImageSsim, RejectsMismatchedImages) {
  EXPECT_THROW(image_ssim(constant_image(8, 0), constant_image(16, 0)), std::invalid_argument);
}

}  // namespace
}  // namespace corl::reward
