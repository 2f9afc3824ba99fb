// Small RGB test images shared by the tests of image rewards.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>

namespace corl::testing {

// side x side, every pixel grey level `value`.
inline cv::Mat constant_image(int side, int value) {
  return cv::Mat(side, side, CV_8UC3, cv::Scalar(value, value, value));
}

// side x side of uniform noise, the same for the same seed.
inline cv::Mat noise_image(int side, std::uint64_t seed) {
  cv::Mat image(side, side, CV_8UC3);
  cv::RNG(seed).fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

}  // namespace corl::testing
