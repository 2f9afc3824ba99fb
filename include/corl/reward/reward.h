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
//   accuracy 1 iff the text inside <answer>...</answer> is right (MC: the option letter; OE: the
//            normalised answer, numbers compared as numbers)
//   format   1 iff the completion is <think>...</think><answer>...</answer> and nothing else
//   perception  (verifiable, ShapeWorld) how well the objects the reasoning lists ("The image
//            shows ...") match the row's scene: F1 over (colour, shape) objects counted as
//            multisets, in [0, 1]; 0 when the reasoning lists nothing
#pragma once

#include <torch/torch.h>

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/data/geneval.h"
#include "corl/data/scene.h"

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
// perception.
bool is_image_reward(const std::string& name);
bool is_answer_reward(const std::string& name);
std::vector<std::string> reward_names();  // all of them, for messages and docs
// Throw std::invalid_argument naming the unknown reward and the known ones.
std::unique_ptr<ImageReward> make_image_reward(const std::string& name,
                                               const RewardOptions& options);
std::unique_ptr<AnswerReward> make_answer_reward(const std::string& name,
                                                 const RewardOptions& options);

// The pieces, each tested on its own.
// Words: lower-cased runs of letters and digits.
std::vector<std::string> words(const std::string& text);
// SQuAD-style token F1 over word multisets.
double token_f1(const std::string& candidate, const std::string& reference);
// Soft Jaccard over word multisets: sum of min counts / sum of max counts.
double soft_jaccard(const std::string& candidate, const std::string& reference);
// RGB uint8 images of one size; RMSE of intensities scaled to [0, 1], so in [0, 1].
double image_rmse(const cv::Mat& a, const cv::Mat& b);
// Mean SSIM (Wang et al. 2004; 7x7 Gaussian window sigma 1.5, on grey intensities in [0, 1]).
double image_ssim(const cv::Mat& a, const cv::Mat& b);
// Max-match cosine between image and text hidden states ([n, H], [m, H]), in [-1, 1].
double text_image_matching(const torch::Tensor& image_hidden, const torch::Tensor& text_hidden);
// <think>...</think><answer>...</answer> and nothing else, one of each tag, tags not nested.
bool well_formed(const std::string& completion);
// Whether the answer in `completion`'s <answer> tag matches `solution` (MC: letter; OE: value).
bool answer_correct(const std::string& completion, const std::string& solution,
                    const std::string& qa_type);
// F1 between the objects `completion` lists and `scene`'s, as the perception reward gives it.
double object_list_f1(const std::string& completion, const data::Scene& scene);

}  // namespace corl::reward
