#include "corl/reward/image_distance.h"

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace corl::reward {
namespace {

void check_pair(const cv::Mat& a, const cv::Mat& b, const char* what) {
  if (a.empty() || b.empty() || a.type() != CV_8UC3 || b.type() != CV_8UC3) {
    throw std::invalid_argument(std::string(what) + ": images must be non-empty RGB uint8");
  }
  if (a.size() != b.size()) {
    throw std::invalid_argument(std::string(what) + ": images differ in size (" +
                                std::to_string(a.cols) + "x" + std::to_string(a.rows) + " vs " +
                                std::to_string(b.cols) + "x" + std::to_string(b.rows) + ")");
  }
}

cv::Mat grey(const cv::Mat& rgb) {
  // Scale before the conversion so the grey values are not rounded to 8 bits.
  cv::Mat scaled;
  rgb.convertTo(scaled, CV_32FC3, 1.0 / 255.0);
  cv::Mat grey32;
  cv::cvtColor(scaled, grey32, cv::COLOR_RGB2GRAY);
  cv::Mat out;
  grey32.convertTo(out, CV_64F);
  return out;
}

cv::Mat gaussian(const cv::Mat& image) {
  cv::Mat out;
  cv::GaussianBlur(image, out, cv::Size(7, 7), 1.5);
  return out;
}

}  // namespace

double image_rmse(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "image_rmse");
  // cv::norm's L2 is the root of the summed squares over every channel of every pixel.
  const double l2 = cv::norm(a, b, cv::NORM_L2);
  return l2 / std::sqrt(static_cast<double>(a.total() * a.channels())) / 255.0;
}

// SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 +
// sigma_y^2 + C2)), Wang et al. 2004 eq. 13, with local statistics under a Gaussian window and
// C1 = (0.01 L)^2, C2 = (0.03 L)^2 for dynamic range L = 1.
double image_ssim(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "image_ssim");
  constexpr double kC1 = 0.01 * 0.01;
  constexpr double kC2 = 0.03 * 0.03;
  const cv::Mat x = grey(a);
  const cv::Mat y = grey(b);
  const cv::Mat mu_x = gaussian(x);
  const cv::Mat mu_y = gaussian(y);
  const cv::Mat mu_xx = mu_x.mul(mu_x);
  const cv::Mat mu_yy = mu_y.mul(mu_y);
  const cv::Mat mu_xy = mu_x.mul(mu_y);
  const cv::Mat sigma_xx = gaussian(x.mul(x)) - mu_xx;
  const cv::Mat sigma_yy = gaussian(y.mul(y)) - mu_yy;
  const cv::Mat sigma_xy = gaussian(x.mul(y)) - mu_xy;
  cv::Mat numerator = (2 * mu_xy + kC1).mul(2 * sigma_xy + kC2);
  cv::Mat denominator = (mu_xx + mu_yy + kC1).mul(sigma_xx + sigma_yy + kC2);
  cv::Mat map;
  cv::divide(numerator, denominator, map);
  return cv::mean(map)[0];
}

}  // namespace corl::reward
