// `corl eval`'s benchmark suites, on held-out ShapeWorld data drawn from a seed of their own, or on
// any dataset in the JSON-lines format:
//
//   geneval  prompts balanced across GenEval's six categories, N images each sampled with CFG,
//            judged by the detector; per-category accuracy, overall = mean over categories
//   mcq, oe  held-out questions answered greedily (as the paper evaluates); accuracy overall and
//            per question type, and the rate of well-formed <think>/<answer> completions
//
// Beside them, a question suite of one's own (question_suite.h) and a folder of images in
// GenEval's layout (geneval_folder.h).
//
// Every accuracy comes with its standard error. Images of one prompt are not independent, so a
// geneval category's error is that of the mean over its prompts of their per-prompt accuracy
// (the cluster estimate a bootstrap over prompts approximates); the overall error combines the
// categories' as the mean does. A question accuracy's error is binomial.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/data/dataset.h"
#include "corl/data/geneval.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"

namespace corl::eval {

struct EvalRecipe {
  config::RunSection run{"eval", 2, 4321};
  std::string world = "runs/data/recipe.yaml";  // the world recipe the training data came from
  std::string data;  // a JSON-lines dataset to evaluate instead of the generated suites
  struct Geneval {
    int prompts_per_category = 50;
    int images_per_prompt = 4;
    double cfg_weight = 3.0;
    double temperature = 1.0;
    double position_margin = 0.1;
    bool exclusive = true;
  } geneval;
  struct Questions {
    std::string path;  // a question suite of one's own (JSON lines; question_suite.h)
    // Fields whose values split the accuracy (a dotted path reaches into nested objects).
    std::vector<std::string> group_by = {"category", "subject", "question_type", "question_kind"};
  } questions;
  int mcq_questions = 1200;
  int oe_questions = 1200;
  int max_new_tokens = 96;
  int batch_size = 64;
  // Checkpoints evaluated side by side, run.threads shared among them (0: as many as run.threads,
  // one thread each). A model of the default size uses a second intra-op thread poorly, so two
  // single-threaded checkpoints at once finish sooner than two-threaded ones in turn.
  int checkpoints_at_once = 0;
  struct Report {
    int grid_prompts = 2;                     // prompts per category shown with their images
    int sample_answers = 6;                   // answers shown per suite
    std::string python = ".venv/bin/python";  // runs the plotting script
    std::string plotter = "scripts/plot_curves.py";
  } report;
};

void bind(config::Schema& schema, EvalRecipe& recipe);
void validate(const EvalRecipe& recipe);

// One suite's items, fixed before any model sees them; judged as train::evaluate_tasks judges.
using train::GenevalItem;
using train::QuestionItem;
struct Suites {
  std::vector<GenevalItem> geneval;
  std::vector<QuestionItem> mcq;
  std::vector<QuestionItem> oe;
};

// From the world recipe with the eval seed (disjoint from the training split's), or from
// recipe.data when set.
Suites build_suites(const EvalRecipe& recipe);

// What a suite run keeps for the report besides its figures.
using train::JudgedImage;
struct GenevalShowcase {
  std::string category;
  std::string prompt;
  std::vector<JudgedImage> images;
};
struct AnswerShowcase {
  cv::Mat image;
  std::string question, gold, completion;
  bool correct = false;
};
struct SuiteResult {
  nlohmann::json figures;  // results.json's entry for the suite
  // Each item's score in suite order (GenEval: per category, each prompt's share of right images;
  // questions: 0 or 1), so two checkpoints on the same suites compare item by item.
  nlohmann::json items;
  std::vector<GenevalShowcase> grids;
  std::vector<AnswerShowcase> answers;
  // Question suites: one JSON object per item (question, gold, kind, completion, right), written
  // to answers/<model>/<suite>.jsonl for per-item study.
  std::vector<nlohmann::json> records;
};

SuiteResult run_geneval(train::Policy& policy, const std::vector<GenevalItem>& items,
                        const EvalRecipe& recipe);
SuiteResult run_questions(train::Policy& policy, const std::vector<QuestionItem>& items,
                          const EvalRecipe& recipe);

// Standard error of a mean of 0/1 outcomes.
double binomial_se(double p, int n);

// A GenEval suite's figures from each category's per-prompt accuracies (the share of a prompt's
// images judged right): per category the mean and its error over prompts, overall the mean over
// categories.
nlohmann::json geneval_figures(const std::map<std::string, std::vector<double>>& by_category,
                               size_t images);

// {"accuracy", "se", "n"} of 0/1 outcomes.
nlohmann::json accuracy_entry(int correct, int asked);

// A question suite's headline figures: accuracy and well-formed rate with their errors, and the
// number of questions.
nlohmann::json answer_figures(int correct, int formed, int questions);

}  // namespace corl::eval
