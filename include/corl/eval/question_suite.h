// A question suite of one's own: a benchmark such as MMMU or MathVista exported to JSON lines,
// one question a line, images beside the file:
//
//   {"image": "images/0001.jpg", "question": "How many apples are there?",
//    "options": ["3", "4", "5"],         (or {"A": "3", "B": "4", "C": "5"}; MC only)
//    "answer": "B",                      (the letter, or the option's text: "4")
//    "qa_type": "MC",                    (optional: MC with options, OE without)
//    "id": "q1", "subject": "math", ...} (optional; every other field is kept in the answers)
//
// The paper's own names work as they are: "real_image" for image, "qa_problem" for question,
// "qa_solution" (<answer>B</answer>, after any <think>) for answer. Images are any size and
// format the build reads (PNG always, JPEG with OpenCV's imgcodecs) and are resized to the
// model's image size as `corl answer` resizes them. Options are shown after the question as
// ShapeWorld's multiple-choice problems show them ("... Options: A. 3 B. 4 C. 5"); the answers
// are read and graded as the `accuracy` reward grades them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "corl/eval/suites.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"

namespace corl::eval {

struct SuiteQuestion {
  std::string id;
  std::string image_path;         // resolved against the suite file's folder
  std::string problem;            // as shown to the model, options included
  std::string solution;           // the gold answer: bare ("B", "4") or <answer>...</answer>
  std::string qa_type;            // "MC" | "OE"
  nlohmann::ordered_json fields;  // the row's other fields, as given
  int line = 0;
};

struct QuestionSuite {
  std::string name;  // the file's stem: results.json's key
  std::string path;
  std::vector<SuiteQuestion> questions;
};

// Reads and checks every row (its image must exist); throws corl::DataError "FILE:LINE: what"
// for a bad one.
QuestionSuite read_question_suite(const std::string& path);

// Each question with its image read at `image_size` (as `corl answer` reads one); an unreadable
// image throws corl::DataError naming the suite's file and line.
std::vector<train::QuestionItem> load_questions(const QuestionSuite& suite, int image_size);

// Answers every question greedily and grades it (train::answer_and_grade), then
// grade_question_suite.
SuiteResult run_question_suite(train::Policy& policy, const QuestionSuite& suite,
                               const EvalRecipe& recipe);

// The suite's figures from its graded answers: accuracy, format_rate, questions and their
// standard errors; by_type (MC, OE) and groups (each field of recipe.questions.group_by that some
// row has: value -> accuracy, se, n; a row without the field counts under "(none)").
SuiteResult grade_question_suite(const QuestionSuite& suite,
                                 const std::vector<train::QuestionItem>& items,
                                 const std::vector<train::GradedAnswer>& graded,
                                 const EvalRecipe& recipe);

}  // namespace corl::eval
