// Held-out figures of a policy on both tasks, as pretraining reports them: the detector-judged
// accuracy of its images for held-out prompts and the accuracy of its answers to held-out
// questions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "corl/config/schema.h"
#include "corl/data/dataset.h"
#include "corl/data/geneval.h"
#include "corl/model/inputs.h"
#include "corl/model/ulm.h"
#include "corl/tokenize/vq.h"

namespace corl::train {

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

// Uses the first `prompts` records with a spec and the first `questions` records of `records`;
// images are sampled from `seed`.
TaskScores evaluate_tasks(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<data::Record>& records,
                          const EvalSection& options, std::uint64_t seed);

}  // namespace corl::train
