// The GenEval-style judge's eyes: reads an image back into a scene spec by colour segmentation
// and contour shape classification.
#pragma once

#include <opencv2/core.hpp>

#include "corl/data/scene.h"

namespace corl::data {

struct DetectorOptions {
  // Components smaller than this fraction of the image area are noise.
  double min_area = 0.004;
  // A pixel belongs to no object when its brightest channel is below this (0..255).
  int background_max = 60;
};

// Objects found in an RGB image, in the same schema the renderer takes (x, y the centre of the
// component's bounding box; size half its larger side).
Scene detect(const cv::Mat& rgb, const DetectorOptions& options = {});

}  // namespace corl::data
