#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "corl/data/dataset.h"
#include "corl/data/render.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"

namespace corl::data {
namespace {

namespace fs = std::filesystem;

class DatasetDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (std::string("corl_dataset_test_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static config::WorldRecipe small_recipe() {
    config::WorldRecipe recipe;
    recipe.data.train_size = 60;
    recipe.data.eval_size = 30;
    return recipe;
  }
  std::string write_rows(const std::vector<std::string>& rows) {
    const std::string path = (dir_ / "rows.jsonl").string();
    std::ofstream out(path);
    for (const auto& r : rows) out << r << "\n";
    return path;
  }
  // A valid real-data row whose image is `image`.
  static std::string row(const std::string& image, const std::string& extra = "") {
    return R"({"prompt": "a photo of a cat", "real_image": ")" + image +
           R"(", "qa_problem": "What is it?", "qa_solution": "<think>fur</think><answer>cat</answer>", "qa_type": "OE")" +
           extra + "}";
  }
  std::string error_of(const std::vector<std::string>& rows) {
    try {
      read_dataset(write_rows(rows), ReadOptions{});
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }
  void write_image(const std::string& name, int width, int height) {
    cv::Mat bgr(height, width, CV_8UC3, cv::Scalar(0, 0, 255));
    cv::imwrite((dir_ / name).string(), bgr);
  }
  fs::path dir_;
};

TEST_F(DatasetDir, NoRowHoldsAPromptHeldOutForTheBenchmarks) {
  auto recipe = small_recipe();
  recipe.world.prompt_prefix = "";
  recipe.world.held_out_prompts = 0.25;
  recipe.data.train_size = 600;
  const auto written = write_world_dataset(recipe, dir_.string());
  EXPECT_EQ(written.held_out_prompts, 115);  // data_world_test counts them per category
  std::ifstream file(dir_ / "held_out_prompts.txt");
  std::set<std::string> held_out;
  for (std::string line; std::getline(file, line);) held_out.insert(line);
  ASSERT_EQ(held_out.size(), 115u);
  EXPECT_TRUE(held_out.count("a circle") + held_out.count("a square") +
                  held_out.count("a triangle") + held_out.count("a diamond") ==
              1);  // one of the four single-object prompts
  std::set<std::string> trained;
  for (const char* split : {"train.jsonl", "eval.jsonl"}) {
    for (const auto& r : read_dataset((dir_ / split).string(), ReadOptions{}).records) {
      EXPECT_EQ(held_out.count(r.prompt), 0u) << split << ": " << r.prompt;
      trained.insert(r.prompt);
    }
  }
  // 600 rows, 100 a category: every training prompt of the small categories appears.
  for (const char* prompt : {"a circle", "a square", "a triangle", "a diamond"}) {
    EXPECT_EQ(trained.count(prompt) + held_out.count(prompt), 1u) << prompt;
  }
}

TEST_F(DatasetDir, WorldDatasetReadsBackWithEveryField) {
  const auto written = write_world_dataset(small_recipe(), dir_.string());
  EXPECT_EQ(written.train, 60);
  EXPECT_EQ(written.eval, 30);
  const auto train = read_dataset((dir_ / "train.jsonl").string(), ReadOptions{});
  const auto eval = read_dataset((dir_ / "eval.jsonl").string(), ReadOptions{});
  ASSERT_EQ(train.records.size(), 60u);
  ASSERT_EQ(eval.records.size(), 30u);
  for (const auto& r : train.records) {
    ASSERT_TRUE(r.scene && r.spec);
    EXPECT_FALSE(r.prompt.empty());
    EXPECT_TRUE(r.qa_type == "MC" || r.qa_type == "OE");
    EXPECT_EQ(r.category, name(r.spec->category));
    // PNG is lossless: the stored image is exactly the rendering of the stored scene.
    const cv::Mat expected = render(*r.scene, 64);
    ASSERT_EQ(r.image.size(), expected.size());
    EXPECT_EQ(cv::norm(r.image, expected, cv::NORM_INF), 0.0) << r.image_path;
  }
}

TEST_F(DatasetDir, TrainAndEvalAreDisjoint) {
  auto recipe = small_recipe();
  recipe.data.train_size = 300;
  recipe.data.eval_size = 150;
  write_world_dataset(recipe, dir_.string());
  ReadOptions options;
  options.load_images = false;
  const auto train = read_dataset((dir_ / "train.jsonl").string(), options);
  const auto eval = read_dataset((dir_ / "eval.jsonl").string(), options);
  std::set<std::string> seen;
  std::set<std::string> ids;
  std::set<std::string> images;
  for (const auto& r : train.records) {
    seen.insert(r.prompt + to_json(*r.scene).dump());
    ids.insert(r.id);
    images.insert(r.image_path);
  }
  for (const auto& r : eval.records) {
    EXPECT_FALSE(seen.count(r.prompt + to_json(*r.scene).dump())) << r.prompt;
    EXPECT_FALSE(ids.count(r.id));
    EXPECT_FALSE(images.count(r.image_path));
  }
  EXPECT_NE(split_seed(1234, "train"), split_seed(1234, "eval"));
}

TEST_F(DatasetDir, SameSeedWritesSameBytes) {
  write_world_dataset(small_recipe(), (dir_ / "a").string());
  write_world_dataset(small_recipe(), (dir_ / "b").string());
  EXPECT_EQ(util::read_file((dir_ / "a/train.jsonl").string()),
            util::read_file((dir_ / "b/train.jsonl").string()));
  EXPECT_EQ(util::read_file((dir_ / "a/images/eval_0000007.png").string()),
            util::read_file((dir_ / "b/images/eval_0000007.png").string()));
}

TEST_F(DatasetDir, RealImagesOfAnySizeAreResized) {
  write_image("wide.png", 200, 100);
  const auto dataset = read_dataset(write_rows({row("wide.png")}), ReadOptions{});
  ASSERT_EQ(dataset.records.size(), 1u);
  const cv::Mat& image = dataset.records[0].image;
  EXPECT_EQ(image.rows, 64);
  EXPECT_EQ(image.cols, 64);
  EXPECT_EQ(image.type(), CV_8UC3);
  // Stored BGR (0, 0, 255) is red: RGB in memory.
  const auto pixel = image.at<cv::Vec3b>(32, 32);
  EXPECT_EQ(pixel[0], 255);
  EXPECT_EQ(pixel[2], 0);
  EXPECT_FALSE(dataset.records[0].scene.has_value());
}

TEST_F(DatasetDir, BadRowsNameFileAndLine) {
  write_image("ok.png", 8, 8);
  std::string message = error_of({row("ok.png"), row("ok.png"), "{not json"});
  EXPECT_NE(message.find("rows.jsonl:3: malformed JSON"), std::string::npos) << message;

  message = error_of({row("ok.png"), R"({"prompt": "x", "real_image": "ok.png"})"});
  EXPECT_NE(message.find("rows.jsonl:2: missing field 'qa_problem'"), std::string::npos) << message;

  message = error_of({row("missing.png")});
  EXPECT_NE(message.find("rows.jsonl:1: real_image"), std::string::npos) << message;
  EXPECT_NE(message.find("missing.png"), std::string::npos) << message;

  std::string wrong_type = row("ok.png");
  wrong_type.replace(wrong_type.find(R"("qa_type": "OE")"), 15, R"("qa_type": "XX")");
  message = error_of({wrong_type});
  EXPECT_NE(message.find("'qa_type' must be"), std::string::npos) << message;

  message = error_of({row("ok.png", R"(, "scene": {"objects": [{"shape": "blob"}]})")});
  EXPECT_NE(message.find("rows.jsonl:1"), std::string::npos) << message;
  EXPECT_NE(message.find("scene"), std::string::npos) << message;

  message = error_of(
      {R"({"prompt": 3, "real_image": "ok.png", "qa_problem": "q", "qa_solution": "<answer>a</answer>", "qa_type": "OE"})"});
  EXPECT_NE(message.find("'prompt' must be a string"), std::string::npos) << message;

  message = error_of(
      {R"({"prompt": "p", "real_image": "ok.png", "qa_problem": "q", "qa_solution": "a", "qa_type": "OE"})"});
  EXPECT_NE(message.find("no <answer>"), std::string::npos) << message;

  // Rows the grader could never score as right: an empty answer, and a multiple-choice answer
  // that names no option letter (the reward would read every completion as wrong).
  message = error_of(
      {row("ok.png"),
       R"({"prompt": "p", "real_image": "ok.png", "qa_problem": "q", "qa_solution": "<think>x</think><answer> </answer>", "qa_type": "OE"})"});
  EXPECT_NE(message.find("rows.jsonl:2: field 'qa_solution' holds no answer"), std::string::npos)
      << message;
  message = error_of(
      {R"({"prompt": "p", "real_image": "ok.png", "qa_problem": "q", "qa_solution": "<answer>red</answer>", "qa_type": "MC"})"});
  EXPECT_NE(message.find("rows.jsonl:1: field 'qa_solution': the multiple-choice answer 'red' is "
                         "not an option letter"),
            std::string::npos)
      << message;
  for (const char* letter : {"B", "(b)", "C. red"}) {
    EXPECT_TRUE(error_of({std::string(R"({"prompt": "p", "real_image": "ok.png", "qa_problem": "q", "qa_solution": "<answer>)") +
                          letter + R"(</answer>", "qa_type": "MC"})"})
                    .empty())
        << letter;
  }

  try {
    read_dataset((dir_ / "absent.jsonl").string(), ReadOptions{});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.jsonl"), std::string::npos);
  }
}

TEST_F(DatasetDir, SkippingBadRowsCountsThem) {
  write_image("ok.png", 8, 8);
  ReadOptions options;
  options.skip_bad_rows = true;
  const auto dataset = read_dataset(
      write_rows({row("ok.png"), "{broken", row("missing.png"), "", row("ok.png")}), options);
  EXPECT_EQ(dataset.records.size(), 2u);
  EXPECT_EQ(dataset.skipped, 2);
  EXPECT_EQ(dataset.records[1].line, 5);
}

}  // namespace
}  // namespace corl::data
