#include "corl/data/detect.h"

#include <algorithm>
#include <array>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <vector>

#include "corl/data/render.h"

namespace corl::data {

namespace {

constexpr unsigned char kBackground = 255;

// A component holds a second colour as a separate object (two touching objects) only when that
// colour covers at least this share of it; below it, the minority pixels are blurred or noisy
// edges of the majority colour.
constexpr double kSecondColorShare = 0.25;

// Brightness levels, as fractions of an object's peak, whose outlines vote on its shape. Tuned
// on random single objects blurred with sigma 0.5 to 1.2 px at 64 px.
constexpr std::array<double, 3> kShapeLevels = {0.35, 0.5, 0.8};

// How much wider than the observed box (pixels, each side) the shape templates are tried.
constexpr std::array<double, 3> kTemplateGrowth = {0.0, 0.25, 0.5};

// Chromaticity of each palette colour: its RGB divided by its brightest channel. Blurring a flat
// colour towards the black background scales all channels alike, so a dimmed edge pixel keeps
// the chromaticity of the object it belongs to.
std::array<cv::Vec3f, kAllColors.size()> palette_chromaticities() {
  std::array<cv::Vec3f, kAllColors.size()> chroma;
  for (std::size_t i = 0; i < kAllColors.size(); ++i) {
    const Rgb c = rgb(kAllColors[i]);
    const float top = std::max({c.r, c.g, c.b});
    chroma[i] = cv::Vec3f(static_cast<float>(c.r) / top, static_cast<float>(c.g) / top,
                          static_cast<float>(c.b) / top);
  }
  return chroma;
}

// Per pixel: the index in kAllColors of the nearest palette chromaticity, or kBackground when
// the pixel is too dark to be part of an object.
cv::Mat label_colors(const cv::Mat& rgb, int background_max) {
  static const auto chroma = palette_chromaticities();
  cv::Mat labels(rgb.size(), CV_8U);
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* in = rgb.ptr<cv::Vec3b>(y);
    auto* out = labels.ptr<unsigned char>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const int top = std::max({in[x][0], in[x][1], in[x][2]});
      if (top < background_max || top == 0) {
        out[x] = kBackground;
        continue;
      }
      const float scale = 1.0f / static_cast<float>(top);
      const cv::Vec3f pixel(static_cast<float>(in[x][0]) * scale,
                            static_cast<float>(in[x][1]) * scale,
                            static_cast<float>(in[x][2]) * scale);
      float best = 1e9f;
      for (std::size_t i = 0; i < chroma.size(); ++i) {
        const cv::Vec3f d = pixel - chroma[i];
        const float distance = d.dot(d);
        if (distance < best) {
          best = distance;
          out[x] = static_cast<unsigned char>(i);
        }
      }
    }
  }
  return labels;
}

// How well each shape's ideal outline, centred on the mask's bounding box, overlaps the mask
// (intersection over union; the best of a few template sizes). Comparing against the
// renderer's own shapes keeps the judge and the renderer in agreement, and IoU degrades
// gracefully under blur and noise, where thresholds on single features (fill ratio, solidity)
// flip. A curved or pointed outline's extreme pixel centres fall short of its true box (a
// circle of radius 5.9 px may show an 11 px box), so templates up to a pixel wider than the box
// are tried too; a straight-edged square fits its box exactly and loses nothing by that.
std::array<double, kAllShapes.size()> shape_overlaps(const cv::Mat& box_mask) {
  cv::Mat mask;  // one empty pixel around the box, for the wider templates to spill into
  cv::copyMakeBorder(box_mask, mask, 1, 1, 1, 1, cv::BORDER_CONSTANT, cv::Scalar(0));
  const double centre_x = mask.cols / 2.0;
  const double centre_y = mask.rows / 2.0;
  std::array<double, kAllShapes.size()> overlaps{};
  for (double grow : kTemplateGrowth) {
    const double half_w = box_mask.cols / 2.0 + grow;
    const double half_h = box_mask.rows / 2.0 + grow;
    std::array<int, kAllShapes.size()> intersection{};
    std::array<int, kAllShapes.size()> template_area{};
    int area = 0;
    for (int y = 0; y < mask.rows; ++y) {
      const auto* row = mask.ptr<unsigned char>(y);
      const double v = (y + 0.5 - centre_y) / half_h;
      for (int x = 0; x < mask.cols; ++x) {
        const double u = (x + 0.5 - centre_x) / half_w;
        const bool on = row[x] != 0;
        area += on;
        for (std::size_t s = 0; s < kAllShapes.size(); ++s) {
          if (shape_contains(kAllShapes[s], u, v)) {
            ++template_area[s];
            intersection[s] += on;
          }
        }
      }
    }
    for (std::size_t s = 0; s < kAllShapes.size(); ++s) {
      const int union_area = area + template_area[s] - intersection[s];
      const double iou = union_area > 0 ? double(intersection[s]) / union_area : 0.0;
      overlaps[s] = std::max(overlaps[s], iou);
    }
  }
  return overlaps;
}

// Reads one object from a component (nonzero pixels of `component`, a mask of the whole image).
// Its box is where the brightness crosses half the component's peak: a blur moves a straight
// edge's half-way point nowhere, while the low background threshold that found the component
// lies outside the true edge. A blur also rounds the outline at any one level (a diamond's tips
// fade below half, a cross's inner corners fill above it), so the shape is the one that fits
// best summed over a low, the middle and a high level.
Object measure(const cv::Mat& rgb, const cv::Mat& component, Color color) {
  cv::Mat brightness(rgb.size(), CV_8U, cv::Scalar(0));
  int peak = 0;
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* in = rgb.ptr<cv::Vec3b>(y);
    const auto* inside = component.ptr<unsigned char>(y);
    auto* out = brightness.ptr<unsigned char>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      if (!inside[x]) continue;
      out[x] = std::max({in[x][0], in[x][1], in[x][2]});
      peak = std::max(peak, int(out[x]));
    }
  }
  std::array<double, kAllShapes.size()> fit{};
  for (double level : kShapeLevels) {
    const cv::Mat mask = brightness >= std::max(1.0, level * peak);
    const cv::Rect box = cv::boundingRect(mask);
    if (box.empty()) continue;
    const auto overlaps = shape_overlaps(mask(box));
    for (std::size_t s = 0; s < fit.size(); ++s) fit[s] += overlaps[s];
  }
  const cv::Rect box = cv::boundingRect(brightness >= std::max(1.0, 0.5 * peak));
  Object object;
  object.shape = kAllShapes[std::max_element(fit.begin(), fit.end()) - fit.begin()];
  object.color = color;
  object.x = (box.x + box.width / 2.0) / rgb.cols;
  object.y = (box.y + box.height / 2.0) / rgb.rows;
  object.size = std::max(box.width / 2.0 / rgb.cols, box.height / 2.0 / rgb.rows);
  return object;
}

}  // namespace

// Pixels bright enough to be an object are grouped into 8-connected components; each component
// takes the colour most of its brightness votes for (split in two when two colours each hold a
// large share: touching objects), and its shape is the ideal outline it overlaps best.
Scene detect(const cv::Mat& rgb, const DetectorOptions& options) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw std::invalid_argument("detect: expected an 8-bit, 3-channel RGB image");
  }
  cv::Mat labels = label_colors(rgb, options.background_max);
  const cv::Mat foreground = labels != kBackground;

  cv::Mat components, stats, centroids;
  const int count =
      cv::connectedComponentsWithStats(foreground, components, stats, centroids, 8, CV_32S);
  const double min_pixels = options.min_area * rgb.rows * rgb.cols;

  Scene scene;
  for (int id = 1; id < count; ++id) {
    if (stats.at<int>(id, cv::CC_STAT_AREA) < min_pixels) continue;
    const cv::Mat component = components == id;

    // Brightness-weighted colour vote: the bright core of an object is its truest colour.
    std::array<double, kAllColors.size()> weight{};
    std::array<int, kAllColors.size()> pixels{};
    double total = 0.0;
    for (int y = 0; y < rgb.rows; ++y) {
      const auto* in = rgb.ptr<cv::Vec3b>(y);
      const auto* label = labels.ptr<unsigned char>(y);
      const auto* inside = component.ptr<unsigned char>(y);
      for (int x = 0; x < rgb.cols; ++x) {
        if (!inside[x]) continue;
        const double w = std::max({in[x][0], in[x][1], in[x][2]});
        weight[label[x]] += w;
        ++pixels[label[x]];
        total += w;
      }
    }
    std::vector<std::size_t> colors;
    for (std::size_t c = 0; c < kAllColors.size(); ++c) {
      if (weight[c] >= kSecondColorShare * total && pixels[c] >= min_pixels) colors.push_back(c);
    }
    if (colors.empty()) {
      colors.push_back(std::max_element(weight.begin(), weight.end()) - weight.begin());
    }
    if (colors.size() == 1) {
      scene.objects.push_back(measure(rgb, component, kAllColors[colors.front()]));
      continue;
    }

    // Touching objects of different colours: split the component by colour, giving each pixel
    // of a minority colour to the nearest (in chromaticity) of the colours that made the cut.
    static const auto chroma = palette_chromaticities();
    cv::Mat owner(rgb.size(), CV_8U, cv::Scalar(kBackground));
    for (int y = 0; y < rgb.rows; ++y) {
      const auto* label = labels.ptr<unsigned char>(y);
      const auto* inside = component.ptr<unsigned char>(y);
      auto* out = owner.ptr<unsigned char>(y);
      for (int x = 0; x < rgb.cols; ++x) {
        if (!inside[x]) continue;
        float best = 1e9f;
        for (std::size_t c : colors) {
          const cv::Vec3f d = chroma[label[x]] - chroma[c];
          if (d.dot(d) < best) {
            best = d.dot(d);
            out[x] = static_cast<unsigned char>(c);
          }
        }
      }
    }
    for (std::size_t c : colors) {
      cv::Mat parts, part_stats, part_centroids;
      const int part_count = cv::connectedComponentsWithStats(
          owner == static_cast<int>(c), parts, part_stats, part_centroids, 8, CV_32S);
      for (int part = 1; part < part_count; ++part) {
        if (part_stats.at<int>(part, cv::CC_STAT_AREA) < min_pixels) continue;
        scene.objects.push_back(measure(rgb, parts == part, kAllColors[c]));
      }
    }
  }

  // Reading order, top to bottom then left to right, so the same image always yields the same
  // list.
  std::sort(scene.objects.begin(), scene.objects.end(),
            [](const Object& a, const Object& b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
  return scene;
}

}  // namespace corl::data
