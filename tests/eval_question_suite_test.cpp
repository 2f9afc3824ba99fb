#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "corl/eval/question_suite.h"
#include "corl/reward/answer_checks.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"

namespace corl::eval {
namespace {

namespace fs = std::filesystem;

// Six questions over five real images of different sizes and formats (JPEG 320x240, PNG RGB
// 97x131 and 300x200, grayscale 50x50, RGBA 128x96), in both namings.
const std::string kSuite = std::string(CORL_SOURCE_DIR) + "/tests/data/questions/suite.jsonl";

TEST(QuestionSuite, ReadsRowsInEitherNaming) {
  const auto suite = read_question_suite(kSuite);
  EXPECT_EQ(suite.name, "suite");
  ASSERT_EQ(suite.questions.size(), 6u);
  const auto& sun = suite.questions[0];
  // The options follow the question as ShapeWorld's MC problems show them; "yellow" is option B.
  EXPECT_EQ(sun.problem, "What color is the sun? Options: A. red B. yellow C. blue");
  EXPECT_EQ(sun.solution, "B");
  EXPECT_EQ(sun.qa_type, "MC");
  EXPECT_EQ(sun.id, "sun-colour");
  EXPECT_EQ(sun.fields["subject"], "colour");
  EXPECT_EQ(fs::path(sun.image_path),
            fs::path(CORL_SOURCE_DIR) / "tests/data/questions/images/sunset_320x240.jpg");
  // A number answer reads as written; no options: open-ended.
  EXPECT_EQ(suite.questions[1].solution, "3");
  EXPECT_EQ(suite.questions[1].qa_type, "OE");
  // The paper's names, kept as they are: the problem already lists its options.
  const auto& paper = suite.questions[2];
  EXPECT_EQ(paper.problem, "Which side is red? Options: A. left B. right");
  EXPECT_EQ(paper.solution, "<think>The left half is red.</think><answer>A</answer>");
  EXPECT_EQ(paper.qa_type, "MC");
  // Options given as letter: text.
  EXPECT_EQ(suite.questions[3].problem, "Is the image gray? Options: A. yes B. no");
  EXPECT_EQ(suite.questions[3].solution, "A");
  EXPECT_FALSE(suite.questions[1].fields.contains("answer"));  // read, not kept twice
  EXPECT_EQ(suite.questions[1].fields["difficulty"], "easy");
}

TEST(QuestionSuite, ImagesOfAnySizeAreResizedToTheModels) {
  auto suite = read_question_suite(kSuite);
#ifdef CORL_PNG_ONLY
  // This build reads PNG only: leave the JPEG rows out.
  auto& q = suite.questions;
  q.erase(std::remove_if(
              q.begin(), q.end(),
              [](const SuiteQuestion& s) { return fs::path(s.image_path).extension() == ".jpg"; }),
          q.end());
#endif
  const auto items = load_questions(suite, 64);
  ASSERT_EQ(items.size(), suite.questions.size());
  for (const auto& item : items) {
    EXPECT_EQ(item.image.rows, 64);
    EXPECT_EQ(item.image.cols, 64);
    EXPECT_EQ(item.image.type(), CV_8UC3);
  }
  // split_300x200.png: the left half pure red, the right pure blue, in RGB order.
  const auto split = std::find_if(suite.questions.begin(), suite.questions.end(),
                                  [](const SuiteQuestion& q) { return q.id == "red-side"; });
  const cv::Mat& image = items[static_cast<size_t>(split - suite.questions.begin())].image;
  EXPECT_EQ(image.at<cv::Vec3b>(32, 8), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(image.at<cv::Vec3b>(32, 56), cv::Vec3b(0, 0, 255));
}

TEST(QuestionSuite, FiguresByTypeAndGroupFromGradedAnswers) {
  const auto suite = read_question_suite(kSuite);
  std::vector<train::QuestionItem> items;
  for (const auto& q : suite.questions) items.push_back({{}, q.problem, q.solution, q.qa_type, ""});
  // Graded as the accuracy reward grades: the MC letter, OE numbers as numbers.
  const std::vector<std::string> completions = {
      "<think>It is yellow.</think><answer>B</answer>",      // right
      "<think>I count them.</think><answer>three</answer>",  // right: 3 = three
      "<answer>B</answer>",                                  // wrong, and not well formed
      "<think>Gray.</think><answer>(A) yes</answer>",        // right
      "<think>Corners.</think><answer>square</answer>",      // wrong
      "<think>One sun.</think><answer>1.</answer>",          // right: 1 = one
  };
  const std::vector<bool> right = {true, true, false, true, false, true};
  std::vector<train::GradedAnswer> graded;
  for (size_t i = 0; i < completions.size(); ++i) {
    graded.push_back({completions[i],
                      reward::answer_correct(completions[i], items[i].solution, items[i].qa_type),
                      reward::well_formed(completions[i])});
    EXPECT_EQ(graded.back().correct, right[i]) << completions[i];
  }
  EvalRecipe recipe;
  recipe.questions.group_by = {"subject", "difficulty", "meta.source", "absent", "meta.absent"};
  const auto result = grade_question_suite(suite, items, graded, recipe);
  const auto& f = result.figures;
  EXPECT_DOUBLE_EQ(f["accuracy"].get<double>(), 4.0 / 6.0);
  EXPECT_NEAR(f["se"]["accuracy"].get<double>(), std::sqrt(4.0 / 6 * 2.0 / 6 / 6), 1e-12);
  EXPECT_DOUBLE_EQ(f["format_rate"].get<double>(), 5.0 / 6.0);
  EXPECT_EQ(f["questions"], 6);
  EXPECT_DOUBLE_EQ(f["by_type"]["MC"]["accuracy"].get<double>(), 2.0 / 3.0);  // rows 1, 3, 4
  EXPECT_DOUBLE_EQ(f["by_type"]["OE"]["accuracy"].get<double>(), 2.0 / 3.0);  // rows 2, 5, 6
  EXPECT_EQ(f["by_type"]["MC"]["n"], 3);
  const auto& subject = f["groups"]["subject"];
  EXPECT_DOUBLE_EQ(subject["colour"]["accuracy"].get<double>(), 1.0);
  EXPECT_EQ(subject["colour"]["n"], 2);
  EXPECT_DOUBLE_EQ(subject["count"]["accuracy"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(subject["position"]["accuracy"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(subject["shape"]["accuracy"].get<double>(), 0.0);
  // Only rows 2 and 6 say how hard they are; the other four, two of them right, go to "(none)".
  const auto& difficulty = f["groups"]["difficulty"];
  EXPECT_DOUBLE_EQ(difficulty["(none)"]["accuracy"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(difficulty["(none)"]["se"].get<double>(), 0.25);  // sqrt(0.25 / 4)
  EXPECT_EQ(difficulty["easy"]["n"], 1);
  EXPECT_FALSE(f["groups"].contains("absent"));
  EXPECT_FALSE(f["groups"].contains("meta.absent"));
  // A dotted path reaches into a nested object: row 1 is a photo, row 2 a drawing, both right.
  const auto& source = f["groups"]["meta.source"];
  EXPECT_EQ(source["photo"]["n"], 1);
  EXPECT_DOUBLE_EQ(source["drawing"]["accuracy"].get<double>(), 1.0);
  EXPECT_EQ(source["(none)"]["n"], 4);
  EXPECT_DOUBLE_EQ(source["(none)"]["accuracy"].get<double>(), 0.5);  // rows 3-6: 4 and 6 right
  ASSERT_EQ(result.records.size(), 6u);
  EXPECT_EQ(result.records[1]["fields"]["difficulty"], "easy");
  EXPECT_EQ(result.records[0]["id"], "sun-colour");
  EXPECT_EQ(result.items, nlohmann::json({1, 1, 0, 1, 0, 1}));
}

class BadSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (std::string("corl_question_suite_test_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    util::remove_tree(dir_.string());
    fs::create_directories(dir_ / "images");
    fs::copy_file(fs::path(CORL_SOURCE_DIR) / "tests/data/questions/images/gray_50x50.png",
                  dir_ / "images/gray.png");
  }
  void TearDown() override { util::remove_tree(dir_.string()); }

  // The message of reading a suite whose second row is `row`.
  std::string error_of(const std::string& row) {
    const std::string path = (dir_ / "suite.jsonl").string();
    std::ofstream(path) << R"({"image": "images/gray.png", "question": "Gray?", "answer": "yes"})"
                        << "\n"
                        << row << "\n";
    try {
      read_question_suite(path);
    } catch (const DataError& e) {
      return e.what();
    }
    return "no error";
  }
  fs::path dir_;
};

TEST_F(BadSuite, ErrorsNameTheFileAndLine) {
  const std::string at = (dir_ / "suite.jsonl").string() + ":2: ";
  EXPECT_EQ(error_of(R"({"image": "images/gray.png", "question": "Gray?"})"),
            at + "missing field 'answer' (or 'qa_solution')");
  EXPECT_EQ(error_of(R"({"image": "images/none.png", "question": "?", "answer": "a"})"),
            at + "image not found: " + (dir_ / "images/none.png").string());
  EXPECT_EQ(
      error_of(
          R"({"image": "images/gray.png", "question": "?", "options": ["a", "b"], "answer": "c"})"),
      at + "answer 'c' is neither an option's letter nor its text");
  EXPECT_EQ(
      error_of(R"({"image": "images/gray.png", "question": "?", "answer": "a", "qa_type": "YN"})"),
      at + "field 'qa_type' must be \"MC\" or \"OE\", got \"YN\"");
  EXPECT_EQ(
      error_of(
          R"({"image": "images/gray.png", "question": "?", "answer": "apple", "qa_type": "MC"})"),
      at + "the multiple-choice answer 'apple' is not an option letter");
  EXPECT_NE(error_of("{not json").find(at + "malformed JSON"), std::string::npos);
}

}  // namespace
}  // namespace corl::eval
