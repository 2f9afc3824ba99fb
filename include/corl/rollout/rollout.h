// Rollouts: what the current policy samples for a batch of unified samples, with the log-probs
// of exactly the tokens it sampled.
//
//   text to image  G images per prompt, with classifier-free guidance, at temperature tau
//   image to text  G answers per (image, question), at temperature tau
//
// Image log-probs are aligned: the hidden state at position t scores image code t + 1 (the first
// code is scored by <begin_of_image>). Whether they come from the conditional logits or from
// the guided logits the codes were drawn from is an option.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/model/inputs.h"
#include "corl/model/ulm.h"
#include "corl/tokenize/vq.h"

namespace corl::rollout {

struct RolloutOptions {
  int num_generations = 8;  // G
  double temperature = 1.0;
  int top_k = 0;
  double top_p = 1.0;
  int max_completion_length = 64;
  double cfg_weight = 3.0;
  bool logprob_cfg = false;
  // Record the sampler's log-prob of each drawn token, under the same rule the scorers use
  // (temperature; guided logits for images only with logprob_cfg).
  bool keep_logp = false;
};

// Log-probs of image codes, [N, image_tokens], differentiable when grad mode is on.
struct ImageScores {
  torch::Tensor logp;
  torch::Tensor entropy;                   // [N, image_tokens], when asked
  torch::Tensor image_hidden;              // [N, image_tokens, H] at the code positions, when asked
  std::vector<torch::Tensor> text_hidden;  // per row, [prompt tokens, H], when asked
};

struct ScoreRequest {
  bool entropy = false;
  bool hidden = false;
  // score_completions: sequences in a row that continue one prompt (the same ids and image up to
  // their completion) read it once, and each continuation attends to its keys and values, as
  // GRPO's G answers to one question do (grpo.share_prompts). The same log-probs and gradients
  // up to float rounding; whole sequences under gradient checkpointing.
  bool share_prompts = false;
};

// Scores codes [N, image_tokens] as images for prompts (N of them). With `logprob_cfg`, the
// log-probs are those of uncond + w (cond - uncond), w = cfg_weight. Logits are divided by the
// sampling temperature first, so the log-probs are those of the distribution sampled from.
ImageScores score_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                         const std::vector<std::string>& prompts, const torch::Tensor& codes,
                         const RolloutOptions& options, const ScoreRequest& request = {});

// Log-probs of the completion tokens of sequences made by SequenceBuilder::with_completion, at
// the sampling temperature: logp and mask [N, L], L the longest completion; logp is 0 where mask
// is 0.
struct TextScores {
  torch::Tensor logp;
  torch::Tensor mask;
  torch::Tensor entropy;  // when asked
};
TextScores score_completions(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                             const std::vector<model::Sequence>& sequences,
                             double temperature = 1.0, const ScoreRequest& request = {});

struct ImageRollouts {
  std::vector<int> source;  // index of the prompt each rollout answers, G in a row
  std::vector<std::string> prompts;
  torch::Tensor codes;          // [N, image_tokens]
  std::vector<cv::Mat> images;  // decoded, RGB uint8
  torch::Tensor sampler_logp;   // [N, image_tokens] float32, with keep_logp
};

struct AnswerRollouts {
  std::vector<int> source;
  std::vector<model::Sequence> sequences;  // prefix + sampled tokens, targets on the tokens
  std::vector<std::string> completions;    // decoded, without <eos>
  std::vector<int64_t> lengths;            // sampled tokens, <eos> included
  std::vector<uint8_t> truncated;          // 1 when max_completion_length cut it off
  torch::Tensor sampler_logp;  // [N, L] float32, L the longest; 0 past each length; keep_logp
};

// G images for each prompt (no gradient). With one generator per prompt, prompt p's images are
// drawn from generators[p] alone, whatever else is in the batch.
ImageRollouts roll_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                          const RolloutOptions& options, at::Generator& generator);
ImageRollouts roll_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                          const RolloutOptions& options, std::vector<at::Generator>& generators);

// G answers for each (image [3, H, W] in [-1, 1], question) (no gradient); likewise with one
// generator per question.
AnswerRollouts roll_answers(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                            const std::vector<torch::Tensor>& images,
                            const std::vector<std::string>& questions,
                            const RolloutOptions& options, at::Generator& generator);
AnswerRollouts roll_answers(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                            const std::vector<torch::Tensor>& images,
                            const std::vector<std::string>& questions,
                            const RolloutOptions& options, std::vector<at::Generator>& generators);

// Greedy captions of images (RGB uint8) by the policy, asked model::kCaptionQuestion.
std::vector<std::string> caption_images(model::UnifiedModel& model,
                                        const model::SequenceBuilder& builder,
                                        const std::vector<cv::Mat>& images, int max_tokens);

}  // namespace corl::rollout
