#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "corl/data/render.h"
#include "corl/eval/geneval_folder.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"

namespace corl::eval {
namespace {

namespace fs = std::filesystem;

// Five lines in GenEval's own form, over ShapeWorld's shapes and colours.
const std::string kMetadata =
    std::string(CORL_SOURCE_DIR) + "/tests/data/geneval/evaluation_metadata.jsonl";

class GenevalFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (std::string("corl_geneval_folder_test_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    util::remove_tree(dir_.string());
    fs::create_directories(dir_);
  }
  void TearDown() override { util::remove_tree(dir_.string()); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }
  fs::path dir_;
};

TEST_F(GenevalFolder, PromptFilesOfBothKinds) {
  const auto lines = read_prompt_file(kMetadata);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3].prompt, "a photo of a circle left of a square");
  // metadata.jsonl holds the line as GenEval's script copies it.
  std::ifstream in(kMetadata);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(lines[0].metadata, first);

  const auto text = read_prompt_file(write("prompts.txt", "a red apple\n\n  two dogs  \n"));
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text[1].prompt, "two dogs");
  EXPECT_EQ(text[1].line, 3);
  EXPECT_EQ(nlohmann::json::parse(text[1].metadata), nlohmann::json({{"prompt", "two dogs"}}));

  const std::string bad = write("bad.jsonl", "{\"prompt\": \"a\"}\n{\"tag\": \"colors\"}\n");
  try {
    read_prompt_file(bad);
    FAIL() << "a row without a prompt was accepted";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), bad + ":2: field 'prompt' must be a string");
  }
}

TEST(GenevalLayout, FiveDigitNamesAndMakeGridsLayout) {
  EXPECT_EQ(geneval_index(0), "00000");
  EXPECT_EQ(geneval_index(42), "00042");
  EXPECT_EQ(geneval_index(12345), "12345");
  // torchvision's make_grid(nrow=2, padding=2) of three 4x5 images: 2 across, 2 down, cells of
  // (4 + 2) x (5 + 2), plus 2 on the far edges: 14 x 16, black between.
  std::vector<cv::Mat> images;
  images.reserve(3);
  for (int k = 0; k < 3; ++k) images.emplace_back(4, 5, CV_8UC3, cv::Scalar(10 * (k + 1), 0, 0));
  const cv::Mat grid = image_grid(images, 2);
  EXPECT_EQ(grid.rows, 14);
  EXPECT_EQ(grid.cols, 16);
  EXPECT_EQ(grid.at<cv::Vec3b>(2, 2)[0], 10);  // image 0 at (2, 2)
  EXPECT_EQ(grid.at<cv::Vec3b>(2, 9)[0], 20);  // image 1 at (2, 2 + 7)
  EXPECT_EQ(grid.at<cv::Vec3b>(8, 2)[0], 30);  // image 2 at (2 + 6, 2)
  EXPECT_EQ(grid.at<cv::Vec3b>(8, 9)[0], 0);   // no image 3
  EXPECT_EQ(grid.at<cv::Vec3b>(1, 2)[0], 0);   // padding
  EXPECT_EQ(grid.at<cv::Vec3b>(2, 7)[0], 0);   // padding between columns
  const cv::Mat row = image_grid(images, 0);   // all in one row
  EXPECT_EQ(row.rows, 8);
  EXPECT_EQ(row.cols, 3 * 7 + 2);
}

data::Object object(data::Shape shape, data::Color color, double x, double y) {
  return {shape, color, x, y, 0.12};
}

TEST_F(GenevalFolder, JudgedByPromptAndCategory) {
  using data::Color;
  using data::Shape;
  // Two images per prompt, right or wrong by construction:
  //   single_object "a circle":             a circle | a square            -> 1/2
  //   counting "three triangles":           three | two                    -> 1/2
  //   colors "a blue square":               blue square | blue square      -> 2/2
  //   position "a circle left of a square": circle left | circle right     -> 1/2
  //   color_attr "red diamond, yellow cross": nothing | nothing            -> 0/2
  const data::Scene none;
  const std::vector<std::vector<data::Scene>> scenes = {
      {{{object(Shape::kCircle, Color::kRed, 0.5, 0.5)}},
       {{object(Shape::kSquare, Color::kRed, 0.5, 0.5)}}},
      {{{object(Shape::kTriangle, Color::kGreen, 0.2, 0.3),
         object(Shape::kTriangle, Color::kGreen, 0.5, 0.7),
         object(Shape::kTriangle, Color::kGreen, 0.8, 0.3)}},
       {{object(Shape::kTriangle, Color::kGreen, 0.2, 0.3),
         object(Shape::kTriangle, Color::kGreen, 0.8, 0.3)}}},
      {{{object(Shape::kSquare, Color::kBlue, 0.3, 0.4)}},
       {{object(Shape::kSquare, Color::kBlue, 0.6, 0.6)}}},
      {{{object(Shape::kCircle, Color::kRed, 0.2, 0.5),
         object(Shape::kSquare, Color::kRed, 0.8, 0.5)}},
       {{object(Shape::kCircle, Color::kRed, 0.8, 0.5),
         object(Shape::kSquare, Color::kRed, 0.2, 0.5)}}},
      {none, none},
  };
  const auto lines = read_prompt_file(kMetadata);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string folder = (dir_ / "images" / geneval_index(i)).string();
    write("images/" + geneval_index(i) + "/metadata.jsonl", lines[i].metadata);
    fs::create_directories(folder + "/samples");
    for (size_t n = 0; n < scenes[i].size(); ++n) {
      data::write_png(data::render(scenes[i][n], 64),
                      folder + "/samples/" + geneval_index(n) + ".png");
    }
    // Not samples: GenEval's grid and anything else beside them.
    data::write_png(data::render(none, 64), folder + "/grid.png");
    write("images/" + geneval_index(i) + "/samples/notes.txt", "x");
  }
  write("images/logs/metadata.jsonl", "not a prompt folder");

  const auto result = judge_geneval_folder((dir_ / "images").string(), {0.1, true}, 1);
  const auto& f = result.figures;
  EXPECT_DOUBLE_EQ(f["single_object"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["counting"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["colors"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(f["position"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["color_attr"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(f["overall"].get<double>(), 0.5);  // (0.5 + 0.5 + 1 + 0.5 + 0) / 5
  EXPECT_EQ(f["prompts"], 5);
  EXPECT_EQ(f["images"], 10);
  EXPECT_EQ(result.grids.size(), 5u);  // one prompt shown per category
  EXPECT_EQ(result.grids[3].prompt, "a photo of a circle left of a square");
}

TEST_F(GenevalFolder, PromptsCorlCannotJudgeAreNamed) {
  write(
      "images/00000/metadata.jsonl",
      R"({"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"})");
  fs::create_directories(dir_ / "images/00000/samples");
  data::write_png(data::render({}, 64), (dir_ / "images/00000/samples/00000.png").string());
  try {
    judge_geneval_folder((dir_ / "images").string(), {}, 0);
    FAIL() << "a COCO class was judged";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((dir_ / "images/00000/metadata.jsonl").string() + ": class 'bench'"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("evaluate_images.py"), std::string::npos) << what;
  }
  EXPECT_THROW(judge_geneval_folder((dir_ / "absent").string(), {}, 0), DataError);
}

}  // namespace
}  // namespace corl::eval
