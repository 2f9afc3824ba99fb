// Rewards, by name, as recipes list them in `reward_funcs` with their `reward_weights`.
//
// Text-to-image rewards score one generated image for its prompt:
//   cycle    the policy captions its own image; caption vs prompt (token F1 or soft Jaccard over
//            words) + 1 - distance(generated image, real image) (RMSE or SSIM): in [0, 2]
//   tim      text-image matching on the policy's own hidden states of (image, prompt):
//            1/2 (mean over image tokens of the max cosine to any text token
//                 + mean over text tokens of the max cosine to any image token)
//   geneval  the detector's verdict on the image against the prompt's scene spec (partial credit
//            or pass/fail by recipe)
// Image-to-text rewards score one completion for its question:
//   accuracy 1 iff the text inside <answer>...</answer> is right (MC: a standalone option letter;
//            OE: the normalised answer, numbers compared as numbers; data/answers.h)
//   format   1 iff the completion is <think>...</think><answer>...</answer> and nothing else
//   perception  (verifiable, ShapeWorld) how well the objects the reasoning lists ("The image
//            shows ...") match the row's scene: F1 over (colour, shape) objects counted as
//            multisets, in [0, 1]; 0 when the reasoning lists nothing
//   options  how faithfully the reasoning walks a multiple-choice question's options: the
//            fraction of the options it names ("B. green?") under the letter the question gives
//            them, in [0, 1]; 0 when it names none; on a question without options 1, or 0 when
//            the reasoning names options all the same
//
// This header is the registry and the interfaces (reward.cpp); the scores behind the rewards
// each have their own header and source: text_match.h and image_distance.h (cycle's two parts),
// text_image_matching.h (tim), answer_checks.h (accuracy, format, perception, options).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/data/geneval.h"
#include "corl/data/scene.h"
// Evaluation checks answers as the rewards do and reaches them through this header.
#include "corl/reward/answer_checks.h"  // defines: well_formed, answer_correct, object_list_f1

namespace corl::reward {

// What the rollout hands a text-to-image reward.
struct ImageCase {
  std::string prompt;
  const data::PromptSpec* spec = nullptr;  // the prompt's scene spec, when the row has one
  cv::Mat real_image;                      // RGB uint8, the row's image (may be empty)
  cv::Mat image;                           // RGB uint8, the generated image
  std::string caption;                     // the policy's caption of `image`, if a reward asked
  torch::Tensor image_hidden;              // [image_tokens, H] at the image-code positions
  torch::Tensor text_hidden;               // [prompt_tokens, H] at the prompt's word positions
};

// What the rollout hands an image-to-text reward.
struct AnswerCase {
  std::string completion;              // as sampled, without <eos>
  std::string solution;                // the row's qa_solution, "<answer>...</answer>" (or bare)
  std::string qa_type;                 // "MC" or "OE"
  const data::Scene* scene = nullptr;  // what the row's image shows, when the row has it
  std::string problem;                 // the row's qa_problem, with its options when MC
};

struct RewardOptions {
  std::string cycle_text = "f1";     // "f1" | "jaccard"
  std::string cycle_image = "rmse";  // "rmse" | "ssim"
  bool geneval_partial = true;       // judge's partial credit, else 1/0 correctness
  data::JudgeRules judge{0.1, true};
};

class ImageReward {
 public:
  virtual ~ImageReward() = default;
  virtual double score(const ImageCase& c) const = 0;
  virtual bool needs_caption() const { return false; }
  virtual bool needs_hidden() const { return false; }
};

class AnswerReward {
 public:
  virtual ~AnswerReward() = default;
  virtual double score(const AnswerCase& c) const = 0;
};

// Registry. Names: image rewards cycle, tim, geneval; answer rewards accuracy, format,
// perception, options.
bool is_image_reward(const std::string& name);
bool is_answer_reward(const std::string& name);
std::vector<std::string> reward_names();  // all of them, for messages and docs
// Throw std::invalid_argument naming the unknown reward and the known ones.
std::unique_ptr<ImageReward> make_image_reward(const std::string& name,
                                               const RewardOptions& options);
std::unique_ptr<AnswerReward> make_answer_reward(const std::string& name,
                                                 const RewardOptions& options);

}  // namespace corl::reward
