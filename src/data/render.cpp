#include "corl/data/render.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#ifdef CORL_PNG_ONLY
#include <png.h>  // defines: png_image, png_image_write_to_file, png_image_finish_read
#else
#include <opencv2/imgcodecs.hpp>
#endif

#include "corl/util/error.h"

namespace corl::data {

namespace {

// The cross's arms are a third of its side wide.
constexpr double kCrossArmHalfWidth = 1.0 / 3.0;

}  // namespace

bool shape_contains(Shape shape, double u, double v) {
  const double au = std::abs(u);
  const double av = std::abs(v);
  switch (shape) {
    case Shape::kCircle:
      return u * u + v * v <= 1.0;
    case Shape::kSquare:
      return au <= 1.0 && av <= 1.0;
    // Apex at the top centre, base along the bottom edge: half-width grows from 0 to 1.
    case Shape::kTriangle:
      return av <= 1.0 && au <= (v + 1.0) / 2.0;
    case Shape::kDiamond:
      return au + av <= 1.0;
    case Shape::kCross:
      return (au <= kCrossArmHalfWidth && av <= 1.0) || (av <= kCrossArmHalfWidth && au <= 1.0);
  }
  return false;
}

cv::Mat render(const Scene& scene, int resolution) {
  // OpenCV's fillConvexPoly / circle (LINE_8) fill every pixel an edge touches, which grows a
  // 12-pixel square to 13; sampling each pixel's centre keeps the drawn area at the analytic
  // one, still with flat colours and no anti-aliasing.
  cv::Mat image(resolution, resolution, CV_8UC3, cv::Scalar::all(0));
  const double side = resolution;
  for (const Object& object : scene.objects) {
    const double half = object.size * side;
    if (half <= 0.0) continue;
    const double cx = object.x * side;
    const double cy = object.y * side;
    const int x0 = std::max(0, static_cast<int>(std::floor(cx - half)));
    const int x1 = std::min(resolution - 1, static_cast<int>(std::ceil(cx + half)));
    const int y0 = std::max(0, static_cast<int>(std::floor(cy - half)));
    const int y1 = std::min(resolution - 1, static_cast<int>(std::ceil(cy + half)));
    const Rgb color = rgb(object.color);
    const cv::Vec3b pixel(color.r, color.g, color.b);
    for (int y = y0; y <= y1; ++y) {
      const double v = (y + 0.5 - cy) / half;
      auto* row = image.ptr<cv::Vec3b>(y);
      for (int x = x0; x <= x1; ++x) {
        if (shape_contains(object.shape, (x + 0.5 - cx) / half, v)) row[x] = pixel;
      }
    }
  }
  return image;
}

#ifdef CORL_PNG_ONLY
// A build without OpenCV's imgcodecs (CORL_WITH_IMGCODECS off) reads and writes PNG only,
// through libpng's simplified API; the pixels are the same as imgcodecs'.
void write_png(const cv::Mat& rgb, const std::string& path) {
  if (rgb.type() != CV_8UC3) throw DataError(path + ": cannot write image: not 8-bit RGB");
  const cv::Mat pixels = rgb.isContinuous() ? rgb : rgb.clone();
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(pixels.cols);
  image.height = static_cast<png_uint_32>(pixels.rows);
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&image, path.c_str(), 0, pixels.data,
                               static_cast<png_int_32>(pixels.step[0]), nullptr)) {
    throw DataError(path + ": cannot write image: " + image.message);
  }
}

std::vector<unsigned char> encode_png(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3) throw DataError("cannot encode image as PNG: not 8-bit RGB");
  const cv::Mat pixels = rgb.isContinuous() ? rgb : rgb.clone();
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(pixels.cols);
  image.height = static_cast<png_uint_32>(pixels.rows);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;  // a first call with no buffer measures
  const auto stride = static_cast<png_int_32>(pixels.step[0]);
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data, stride, nullptr)) {
    throw DataError(std::string("cannot encode image as PNG: ") + image.message);
  }
  std::vector<unsigned char> bytes(size);
  if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data, stride, nullptr)) {
    throw DataError(std::string("cannot encode image as PNG: ") + image.message);
  }
  bytes.resize(size);
  return bytes;
}

cv::Mat read_image(const std::string& path, int resolution) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw DataError(path + ": image not found");
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    throw DataError(path +
                    ": not a PNG this build can read (built without imgcodecs): " + image.message);
  }
  image.format = PNG_FORMAT_RGB;
  cv::Mat rgb(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3);
  if (!png_image_finish_read(&image, nullptr, rgb.data, static_cast<png_int_32>(rgb.step[0]),
                             nullptr)) {
    png_image_free(&image);
    throw DataError(path + ": cannot read image: " + image.message);
  }
  if (resolution > 0 && (rgb.rows != resolution || rgb.cols != resolution)) {
    cv::Mat resized;
    cv::resize(rgb, resized, cv::Size(resolution, resolution), 0, 0, cv::INTER_AREA);
    return resized;
  }
  return rgb;
}
#else
void write_png(const cv::Mat& rgb, const std::string& path) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  bool written = false;
  try {
    written = cv::imwrite(path, bgr);
  } catch (const cv::Exception& error) {
    throw DataError(path + ": cannot write image: " + error.what());
  }
  if (!written) throw DataError(path + ": cannot write image");
}

std::vector<unsigned char> encode_png(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3) throw DataError("cannot encode image as PNG: not 8-bit RGB");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> bytes;
  if (!cv::imencode(".png", bgr, bytes)) throw DataError("cannot encode image as PNG");
  return bytes;
}

cv::Mat read_image(const std::string& path, int resolution) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw DataError(path + ": image not found");
  }
  // IMREAD_COLOR turns gray into three 8-bit channels and drops alpha and 16-bit depth.
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& exception) {
    throw DataError(path + ": cannot read image: " + exception.what());
  }
  if (bgr.empty()) throw DataError(path + ": not an image OpenCV can read");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (resolution > 0 && (rgb.rows != resolution || rgb.cols != resolution)) {
    cv::Mat resized;
    cv::resize(rgb, resized, cv::Size(resolution, resolution), 0, 0, cv::INTER_AREA);
    return resized;
  }
  return rgb;
}
#endif  // CORL_PNG_ONLY

}  // namespace corl::data
