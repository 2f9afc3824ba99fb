// One input builder for every mixed sequence the model reads:
//
//   text to image:  <bos><|User|>: PROMPT <|Assistant|>:<begin_of_image> c0 c1 ... c63
//   image to text:  <bos><|User|>: <begin_of_image> <image_placeholder>xP <end_of_image>
//                   QUESTION <|Assistant|>: ANSWER<eos>
//
// Targets are stored shifted: the target at position t is what the head should predict from the
// hidden state at t, i.e. the token at t + 1. So <begin_of_image> scores code c0 and code c_i
// scores c_{i+1}: image log-probs are aligned.
#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/model/config.h"
#include "corl/tokenize/text_tokenizer.h"

namespace corl::model {

inline constexpr int64_t kIgnore = -100;  // no target at this position

// The question that asks the policy for a caption, in pretraining and in the cycle reward.
inline constexpr const char* kCaptionQuestion = "Describe the image.";

struct Sequence {
  std::vector<int64_t> ids;            // text ids; placeholders and pads at image positions
  std::vector<uint8_t> understanding;  // 1 where an understanding-image feature goes
  std::vector<uint8_t> generation;     // 1 where a generated image code goes
  std::vector<int64_t> codes;          // the code at generation positions, 0 elsewhere
  std::vector<int64_t> text_targets;
  std::vector<int64_t> image_targets;
  torch::Tensor image;  // [3, H, W] in [-1, 1], when the sequence has an understanding image
  // [prompt_begin, prompt_end): the positions of a text-to-image prompt's own words.
  int64_t prompt_begin = 0;
  int64_t prompt_end = 0;
  // Where a sampled completion begins (with_completion), 0 in other sequences.
  int64_t completion_begin = 0;
};

struct Batch {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64, 0 at padding
  torch::Tensor position_ids;    // [B, T] int64, counting real tokens only
  torch::Tensor understanding;   // [B, T] bool
  torch::Tensor images;          // [N, 3, H, W]: the images of the rows that have one, in order
  torch::Tensor generation;      // [B, T] bool
  torch::Tensor codes;           // [B, T] int64
  torch::Tensor text_targets;    // [B, T] int64, kIgnore where none
  torch::Tensor image_targets;   // [B, T] int64, kIgnore where none
};

// The batch's tensors on `device`; the same tensors (no copy) when they are there already.
// Batches are built on the host; the model moves them to wherever its weights are.
Batch to_device(const Batch& batch, torch::Device device);

enum class Padding { kLeft, kRight };  // left for prompts to continue, right for training

class SequenceBuilder {
 public:
  SequenceBuilder(const tokenize::TextTokenizer& tokenizer, const ModelConfig& config);

  // The prompt part of a text-to-image sequence, ending in <begin_of_image>, followed by the
  // codes when given ([image_tokens] int64). Unconditional rows (classifier-free guidance) pad
  // every prompt token between <bos> and <begin_of_image>, as Janus does.
  Sequence text_to_image(const std::string& prompt, const torch::Tensor& codes = {},
                         bool unconditional = false) const;
  // An image and a question, ending in "<|Assistant|>: ", followed by the answer and <eos> when
  // the answer is not empty. `image` is [3, H, W] in [-1, 1].
  Sequence image_to_text(const torch::Tensor& image, const std::string& question,
                         const std::string& answer = "") const;

  // A prefix (image_to_text without an answer) followed by sampled token ids, as sampled (no
  // re-tokenisation), with text targets on them: the log-probs of exactly those tokens.
  Sequence with_completion(Sequence prefix, const std::vector<int64_t>& completion) const;

  Batch collate(const std::vector<Sequence>& sequences, Padding padding) const;

  int64_t eos_id() const { return tokenizer_.eos_id(); }
  const tokenize::TextTokenizer& tokenizer() const { return tokenizer_; }

 private:
  void append_text(Sequence& s, const std::string& text) const;
  void append_id(Sequence& s, int64_t id) const;

  const tokenize::TextTokenizer& tokenizer_;
  ModelConfig config_;
  int64_t image_placeholder_, begin_of_image_, end_of_image_;
};

// RGB uint8 image -> [3, H, W] uint8, resized (area interpolation) to `size` when it differs.
torch::Tensor image_bytes(const cv::Mat& rgb, int size);
// uint8 images [..., 3, H, W] -> float in [-1, 1], as the vision encoder reads them.
torch::Tensor bytes_to_unit(const torch::Tensor& bytes);
// Both at once: RGB uint8 image -> [3, size, size] float in [-1, 1].
torch::Tensor image_to_tensor(const cv::Mat& rgb, int size);

}  // namespace corl::model
