// Judging a policy on both tasks: its images for prompts, judged by the detector against each
// prompt's spec, and its greedy answers to questions, graded against the gold solutions. One path
// serves the figures a training run reports at its end (evaluate_tasks) and `corl eval`'s suites
// (eval/suites.h), so that the two cannot judge differently.
#pragma once

#include <ATen/core/Generator.h>

#include <cstddef>
#include <functional>
#include <map>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/config/schema.h"
#include "corl/data/dataset.h"
#include "corl/data/geneval.h"
#include "corl/model/inputs.h"
#include "corl/model/sampling.h"
#include "corl/model/ulm.h"
#include "corl/tokenize/vq.h"
#include "corl/util/progress.h"

namespace corl::train {

// A prompt and the spec its images are judged against.
struct GenevalItem {
  std::string prompt;
  data::PromptSpec spec;
};

// A question about an image, with its gold solution.
struct QuestionItem {
  cv::Mat image;  // RGB uint8
  std::string problem;
  std::string solution;
  std::string qa_type;  // "MC" | "OE"
  std::string kind;     // count, color, shape, position, existence (may be empty for real data)
};

struct JudgedImage {
  cv::Mat image;  // RGB uint8, as decoded
  bool correct = false;
  std::string reason;
};

struct ImageJudging {
  model::ImageSamplingOptions sampling;
  data::JudgeRules rules;
  int images_per_prompt = 1;
  int prompts_per_batch = 1;
};

// Samples images_per_prompt images of each prompt, prompts_per_batch prompts at a time, drawing
// from `generator`, and decodes them (RGB uint8); `sampled(i, images)` receives prompt i's images
// as soon as its batch is decoded. The draws depend only on the prompts, these options and the
// generator's seed, so `corl generate --prompts` writes the very images `corl eval` judges.
void sample_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                   tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                   const ImageJudging& options, at::Generator& generator,
                   const std::function<void(size_t, std::vector<cv::Mat>&)>& sampled,
                   util::Progress* progress = nullptr);

// sample_images, then each image judged against its prompt's spec. `judged(i, images)`
// receives prompt i's images as soon as its batch is judged, so that no more than one batch of
// images is held at once. `progress`, when given, advances by each batch's prompts.
void generate_and_judge(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                        tokenize::VQModel& vq, const std::vector<GenevalItem>& prompts,
                        const ImageJudging& options, at::Generator& generator,
                        const std::function<void(size_t, std::vector<JudgedImage>&)>& judged,
                        util::Progress* progress = nullptr);

struct GradedAnswer {
  std::string completion;
  bool correct = false;
  bool well_formed = false;  // <think>...</think><answer>...</answer>
};

// Answers each question greedily, as the paper evaluates, batch_size at a time, and grades the
// completion against the gold solution. `progress`, when given, advances by each batch.
std::vector<GradedAnswer> answer_and_grade(model::UnifiedModel& model,
                                           const model::SequenceBuilder& builder,
                                           const std::vector<QuestionItem>& questions,
                                           int max_new_tokens, int batch_size,
                                           util::Progress* progress = nullptr);

struct TaskScores {
  double geneval = 0.0;  // mean over categories of the share of correct images
  std::map<std::string, double> categories;
  int prompts = 0;
  double answer_accuracy = 0.0;
  double format_rate = 0.0;  // completions of the form <think>...</think><answer>...</answer>
  int questions = 0;
};

// The held-out figures a training run prints at its end.
struct EvalSection {
  int prompts = 300;    // held-out prompts judged at the end
  int questions = 300;  // held-out questions answered at the end
  double cfg_weight = 3.0;
  double temperature = 1.0;
  int max_new_tokens = 96;
  int batch_size = 50;
  double position_margin = 0.1;
  bool exclusive = true;  // an image showing objects the prompt did not ask for fails
};

void bind(config::Schema& schema, EvalSection& eval);  // keys eval.*

// One image for each of the first `prompts` records with a spec, sampled from `seed`; greedy
// answers to the first `questions` records.
TaskScores evaluate_tasks(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<data::Record>& records,
                          const EvalSection& options, std::uint64_t seed);

}  // namespace corl::train
