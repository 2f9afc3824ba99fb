// How far a generated image is from the row's real one, for the cycle reward's image part.
#pragma once

#include <opencv2/core.hpp>

namespace corl::reward {

// RGB uint8 images of one size; RMSE of intensities scaled to [0, 1], so in [0, 1].
double image_rmse(const cv::Mat& a, const cv::Mat& b);
// Mean SSIM (Wang et al. 2004; 7x7 Gaussian window sigma 1.5, on grey intensities in [0, 1]).
double image_ssim(const cv::Mat& a, const cv::Mat& b);

}  // namespace corl::reward
