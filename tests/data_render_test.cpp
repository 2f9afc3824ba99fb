#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "corl/data/render.h"
#include "corl/util/error.h"

namespace corl::data {
namespace {

namespace fs = std::filesystem;

int count_color(const cv::Mat& image, Color color) {
  const Rgb c = rgb(color);
  int count = 0;
  for (int y = 0; y < image.rows; ++y) {
    for (int x = 0; x < image.cols; ++x) {
      const auto& p = image.at<cv::Vec3b>(y, x);
      count += p[0] == c.r && p[1] == c.g && p[2] == c.b;
    }
  }
  return count;
}

bool is(const cv::Mat& image, int x, int y, Color color) {
  const Rgb c = rgb(color);
  return image.at<cv::Vec3b>(y, x) == cv::Vec3b(c.r, c.g, c.b);
}

bool is_black(const cv::Mat& image, int x, int y) {
  return image.at<cv::Vec3b>(y, x) == cv::Vec3b(0, 0, 0);
}

// Pixels of a given colour in row y.
int row_width(const cv::Mat& image, int y, Color color) {
  int width = 0;
  for (int x = 0; x < image.cols; ++x) width += is(image, x, y, color);
  return width;
}

cv::Mat render_one(Shape shape, Color color, double x, double y, double size, int resolution) {
  return render(Scene{{Object{shape, color, x, y, size}}}, resolution);
}

TEST(Render, EmptySceneIsBlackRgb) {
  const cv::Mat image = render(Scene{}, 64);
  EXPECT_EQ(image.rows, 64);
  EXPECT_EQ(image.cols, 64);
  EXPECT_EQ(image.type(), CV_8UC3);
  EXPECT_EQ(cv::countNonZero(image.reshape(1)), 0);
}

// Half side 64 px at 256 px: the pixel-centre rule's boundary error is a thin band along the
// outline, well below 1.5% of these areas. The centre sits off the pixel grid so that no row of
// pixel centres lies exactly on a diagonal edge.
TEST(Render, AreasMatchTheAnalyticShapes) {
  const int resolution = 256;
  const double half = 64.0;
  const double size = half / resolution;
  struct Case {
    Shape shape;
    double area;
  };
  for (const Case& c :
       {Case{Shape::kCircle, M_PI * half * half}, Case{Shape::kSquare, 4 * half * half},
        Case{Shape::kTriangle, 2 * half * half},  // half of the box
        Case{Shape::kDiamond, 2 * half * half},   // half of the box
        // Box minus four corner squares of side 2h/3.
        Case{Shape::kCross, 4 * half * half * 5.0 / 9.0}}) {
    const cv::Mat image = render_one(c.shape, Color::kGreen, 0.5 + 0.3 / resolution,
                                     0.5 + 0.2 / resolution, size, resolution);
    const int pixels = count_color(image, Color::kGreen);
    EXPECT_NEAR(pixels, c.area, 0.015 * c.area) << name(c.shape);
    // No anti-aliasing: green lights one channel, so any blended edge pixel would show up as a
    // nonzero channel value beyond the exactly-green pixels.
    EXPECT_EQ(cv::countNonZero(image.reshape(1)), pixels) << name(c.shape);
  }
}

TEST(Render, GridAlignedSquareIsExact) {
  // Centre 32, half side 8 at 64 px: the box is pixels 24..39 in both axes.
  const cv::Mat image = render_one(Shape::kSquare, Color::kBlue, 0.5, 0.5, 0.125, 64);
  EXPECT_EQ(count_color(image, Color::kBlue), 16 * 16);
  EXPECT_TRUE(is(image, 24, 24, Color::kBlue));
  EXPECT_TRUE(is(image, 39, 39, Color::kBlue));
  EXPECT_TRUE(is_black(image, 23, 30));
  EXPECT_TRUE(is_black(image, 40, 30));
  EXPECT_TRUE(is_black(image, 30, 23));
  EXPECT_TRUE(is_black(image, 30, 40));
}

TEST(Render, CentrePixelHasThePaletteColourExactly) {
  for (Shape shape : kAllShapes) {
    for (Color color : kAllColors) {
      const cv::Mat image = render_one(shape, color, 0.4, 0.6, 0.12, 64);
      const Rgb c = rgb(color);
      const cv::Vec3b& centre = image.at<cv::Vec3b>(int(0.6 * 64), int(0.4 * 64));
      EXPECT_EQ(centre, cv::Vec3b(c.r, c.g, c.b)) << name(shape) << " " << name(color);
    }
  }
}

TEST(Render, ImagesAreRgbInMemory) {
  const cv::Mat image = render_one(Shape::kSquare, Color::kRed, 0.5, 0.5, 0.2, 32);
  EXPECT_EQ(image.at<cv::Vec3b>(16, 16), cv::Vec3b(255, 0, 0));
}

TEST(Render, TriangleIsUprightAndFillsTheBoxWidth) {
  // Box 24..39 (half side 8 at 64 px).
  const cv::Mat image = render_one(Shape::kTriangle, Color::kYellow, 0.5, 0.5, 0.125, 64);
  EXPECT_LE(row_width(image, 24, Color::kYellow), 2);   // apex
  EXPECT_EQ(row_width(image, 39, Color::kYellow), 16);  // base spans the box
  for (int y = 25; y <= 39; ++y) {
    EXPECT_GE(row_width(image, y, Color::kYellow), row_width(image, y - 1, Color::kYellow));
  }
  EXPECT_EQ(row_width(image, 23, Color::kYellow), 0);
  EXPECT_EQ(row_width(image, 40, Color::kYellow), 0);
}

TEST(Render, DiamondHasItsVerticesAtTheEdgeMidpoints) {
  const cv::Mat image = render_one(Shape::kDiamond, Color::kPurple, 0.5, 0.5, 0.125, 64);
  // Widest across the middle rows, a point at the top and bottom edges, corners empty.
  EXPECT_EQ(row_width(image, 31, Color::kPurple), 16);
  EXPECT_EQ(row_width(image, 32, Color::kPurple), 16);
  EXPECT_EQ(row_width(image, 24, Color::kPurple), 2);
  EXPECT_EQ(row_width(image, 39, Color::kPurple), 2);
  EXPECT_TRUE(is_black(image, 24, 24));
  EXPECT_TRUE(is_black(image, 39, 39));
  EXPECT_TRUE(is(image, 31, 24, Color::kPurple));
}

TEST(Render, CrossArmsAreAThirdOfTheSide) {
  // Half side 24 at 96 px: box 24..71, arms 16 px wide (40..55).
  const cv::Mat image = render_one(Shape::kCross, Color::kCyan, 0.5, 0.5, 0.25, 96);
  EXPECT_EQ(row_width(image, 24, Color::kCyan), 16);  // top of the vertical arm
  EXPECT_EQ(row_width(image, 48, Color::kCyan), 48);  // through the horizontal arm
  EXPECT_TRUE(is(image, 40, 24, Color::kCyan));
  EXPECT_TRUE(is_black(image, 39, 24));
  EXPECT_TRUE(is_black(image, 30, 30));  // corner of the box
  EXPECT_TRUE(is(image, 48, 48, Color::kCyan));
}

TEST(Render, CircleIsRoundAboutItsCentre) {
  const cv::Mat image = render_one(Shape::kCircle, Color::kOrange, 0.5, 0.5, 0.25, 128);
  // Radius 32 px about (64, 64): the box corners are empty, the edge midpoints filled.
  EXPECT_TRUE(is_black(image, 36, 36));
  EXPECT_TRUE(is(image, 33, 64, Color::kOrange));
  EXPECT_TRUE(is(image, 94, 64, Color::kOrange));
  EXPECT_TRUE(is_black(image, 31, 64));
  EXPECT_TRUE(is_black(image, 96, 64));
  EXPECT_EQ(row_width(image, 64, Color::kOrange), 64);
}

TEST(Render, ObjectsKeepTheirOwnColoursAndClipAtTheBorder) {
  Scene scene;
  scene.objects.push_back({Shape::kSquare, Color::kRed, 0.25, 0.25, 0.1});
  scene.objects.push_back({Shape::kCircle, Color::kWhite, 0.75, 0.75, 0.1});
  scene.objects.push_back({Shape::kSquare, Color::kGreen, 0.0, 1.0, 0.1});  // a quarter shows
  const cv::Mat image = render(scene, 100);
  EXPECT_EQ(count_color(image, Color::kRed), 20 * 20);
  EXPECT_NEAR(count_color(image, Color::kWhite), M_PI * 100, 0.05 * M_PI * 100);
  EXPECT_EQ(count_color(image, Color::kGreen), 10 * 10);
}

class RenderFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("corl_render_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(RenderFiles, PngRoundTripsExactlyAndIsBgrOnDisk) {
  Scene scene;
  scene.objects.push_back({Shape::kTriangle, Color::kRed, 0.3, 0.3, 0.15});
  scene.objects.push_back({Shape::kCross, Color::kPurple, 0.7, 0.6, 0.15});
  const cv::Mat image = render(scene, 64);
  write_png(image, path("scene.png"));
  const cv::Mat back = read_image(path("scene.png"), 64);
  ASSERT_EQ(back.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(back, image, cv::NORM_INF), 0.0);
  // OpenCV's own reader sees the file in BGR order.
  const cv::Mat raw = cv::imread(path("scene.png"), cv::IMREAD_UNCHANGED);
  const int cx = int(0.3 * 64), cy = int(0.3 * 64) + 3;
  EXPECT_EQ(raw.at<cv::Vec3b>(cy, cx), cv::Vec3b(0, 0, 255));
}

TEST_F(RenderFiles, MissingImageThrowsNamingThePath) {
  const std::string missing = path("nope/missing.png");
  try {
    read_image(missing, 64);
    FAIL() << "no error";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find(missing), std::string::npos) << error.what();
  }
}

TEST_F(RenderFiles, NonImageThrowsNamingThePath) {
  std::ofstream(path("text.png")) << "not a png";
  try {
    read_image(path("text.png"), 64);
    FAIL() << "no error";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find(path("text.png")), std::string::npos);
  }
}

TEST_F(RenderFiles, UnwritablePathThrows) {
  EXPECT_THROW(write_png(render(Scene{}, 8), path("no/such/dir/x.png")), DataError);
}

TEST_F(RenderFiles, ResizesAnyShapeToTheResolution) {
  // 200 wide, 100 high, BGR on disk: left half blue, right half red.
  cv::Mat bgr(100, 200, CV_8UC3, cv::Scalar(255, 0, 0));
  bgr(cv::Rect(100, 0, 100, 100)).setTo(cv::Scalar(0, 0, 255));
  ASSERT_TRUE(cv::imwrite(path("wide.png"), bgr));
  const cv::Mat image = read_image(path("wide.png"), 64);
  ASSERT_EQ(image.size(), cv::Size(64, 64));
  ASSERT_EQ(image.type(), CV_8UC3);
  EXPECT_EQ(image.at<cv::Vec3b>(10, 5), cv::Vec3b(0, 0, 255));   // blue, in RGB order
  EXPECT_EQ(image.at<cv::Vec3b>(50, 60), cv::Vec3b(255, 0, 0));  // red
  // Resolution 0 keeps the size on disk.
  EXPECT_EQ(read_image(path("wide.png"), 0).size(), cv::Size(200, 100));
}

TEST_F(RenderFiles, GrayAndAlphaBecomeRgb) {
  ASSERT_TRUE(cv::imwrite(path("gray.png"), cv::Mat(40, 40, CV_8U, cv::Scalar(90))));
  const cv::Mat gray = read_image(path("gray.png"), 20);
  ASSERT_EQ(gray.type(), CV_8UC3);
  EXPECT_EQ(gray.at<cv::Vec3b>(3, 3), cv::Vec3b(90, 90, 90));

  ASSERT_TRUE(cv::imwrite(path("alpha.png"), cv::Mat(16, 16, CV_8UC4, cv::Scalar(0, 255, 0, 128))));
  const cv::Mat alpha = read_image(path("alpha.png"), 16);
  ASSERT_EQ(alpha.type(), CV_8UC3);
  EXPECT_EQ(alpha.at<cv::Vec3b>(8, 8), cv::Vec3b(0, 255, 0));
}

}  // namespace
}  // namespace corl::data
