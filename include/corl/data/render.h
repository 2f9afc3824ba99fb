// Renders a scene to an RGB image with OpenCV: flat colours on black, no anti-aliasing, so that
// every object pixel has its colour's exact value.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/data/scene.h"

namespace corl::data {

// An 8-bit, 3-channel image in RGB order, `resolution` pixels square. A pixel takes an object's
// colour when its centre lies inside the object's shape, so areas and boxes match the spec.
cv::Mat render(const Scene& scene, int resolution);

// Whether the point (u, v), measured from the centre of a shape's bounding box in units of its
// half side (v grows downwards), lies inside the shape. The renderer draws with it and the
// detector compares what it sees against it.
bool shape_contains(Shape shape, double u, double v);

// Writes / reads a PNG; images are RGB in memory and BGR only on disk, as OpenCV wants.
void write_png(const cv::Mat& rgb, const std::string& path);
// The bytes of that PNG file, for images that travel instead of being stored (reward/remote.h).
std::vector<unsigned char> encode_png(const cv::Mat& rgb);
// Any size and channel count on disk; resized (area interpolation) to `resolution` when > 0.
// Throws corl::DataError naming the path when the file is missing or not an image.
cv::Mat read_image(const std::string& path, int resolution);

}  // namespace corl::data
