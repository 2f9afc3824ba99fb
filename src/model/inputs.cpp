#include "corl/model/inputs.h"

#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace corl::model {

SequenceBuilder::SequenceBuilder(const tokenize::TextTokenizer& tokenizer,
                                 const ModelConfig& config)
    : tokenizer_(tokenizer),
      config_(config),
      image_placeholder_(tokenizer.piece_id("<image_placeholder>")),
      begin_of_image_(tokenizer.piece_id("<begin_of_image>")),
      end_of_image_(tokenizer.piece_id("<end_of_image>")) {}

void SequenceBuilder::append_id(Sequence& s, int64_t id) const {
  s.ids.push_back(id);
  s.understanding.push_back(0);
  s.generation.push_back(0);
  s.codes.push_back(0);
  s.text_targets.push_back(kIgnore);
  s.image_targets.push_back(kIgnore);
}

void SequenceBuilder::append_text(Sequence& s, const std::string& text) const {
  for (int id : tokenizer_.encode(text)) append_id(s, id);
}

Sequence SequenceBuilder::text_to_image(const std::string& prompt, const torch::Tensor& codes,
                                        bool unconditional) const {
  Sequence s;
  append_id(s, tokenizer_.bos_id());
  append_text(s, "<|User|>: ");
  s.prompt_begin = static_cast<int64_t>(s.ids.size());
  append_text(s, prompt);
  s.prompt_end = static_cast<int64_t>(s.ids.size());
  append_text(s, " <|Assistant|>:");
  if (unconditional) {
    for (size_t i = 1; i < s.ids.size(); ++i) s.ids[i] = tokenizer_.pad_id();
  }
  append_id(s, begin_of_image_);
  if (!codes.defined()) return s;
  if (codes.dim() != 1 || codes.size(0) != config_.image_tokens) {
    throw std::invalid_argument("text_to_image: expected " + std::to_string(config_.image_tokens) +
                                " codes");
  }
  const auto values = codes.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* c = values.data_ptr<int64_t>();
  s.image_targets.back() = c[0];
  for (int64_t i = 0; i < config_.image_tokens; ++i) {
    append_id(s, tokenizer_.pad_id());
    s.generation.back() = 1;
    s.codes.back() = c[i];
    if (i + 1 < config_.image_tokens) s.image_targets.back() = c[i + 1];
  }
  return s;
}

Sequence SequenceBuilder::image_to_text(const torch::Tensor& image, const std::string& question,
                                        const std::string& answer) const {
  Sequence s;
  append_id(s, tokenizer_.bos_id());
  append_text(s, "<|User|>: ");
  append_id(s, begin_of_image_);
  for (int i = 0; i < config_.vision_patches(); ++i) {
    append_id(s, image_placeholder_);
    s.understanding.back() = 1;
  }
  append_id(s, end_of_image_);
  append_text(s, " " + question + " <|Assistant|>: ");
  s.image = image;
  if (answer.empty()) return s;
  const size_t prompt_length = s.ids.size();
  append_text(s, answer);
  append_id(s, tokenizer_.eos_id());
  for (size_t t = prompt_length - 1; t + 1 < s.ids.size(); ++t) s.text_targets[t] = s.ids[t + 1];
  return s;
}

Sequence SequenceBuilder::with_completion(Sequence s,
                                          const std::vector<int64_t>& completion) const {
  const size_t prompt_length = s.ids.size();
  s.completion_begin = static_cast<int64_t>(prompt_length);
  for (int64_t id : completion) append_id(s, id);
  for (size_t t = prompt_length - 1; t + 1 < s.ids.size(); ++t) s.text_targets[t] = s.ids[t + 1];
  return s;
}

Batch to_device(const Batch& batch, torch::Device device) {
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  Batch b;
  b.input_ids = move(batch.input_ids);
  b.attention_mask = move(batch.attention_mask);
  b.position_ids = move(batch.position_ids);
  b.understanding = move(batch.understanding);
  b.images = move(batch.images);
  b.generation = move(batch.generation);
  b.codes = move(batch.codes);
  b.text_targets = move(batch.text_targets);
  b.image_targets = move(batch.image_targets);
  return b;
}

Batch SequenceBuilder::collate(const std::vector<Sequence>& sequences, Padding padding) const {
  const int64_t rows = static_cast<int64_t>(sequences.size());
  int64_t length = 0;
  for (const auto& s : sequences) length = std::max<int64_t>(length, s.ids.size());
  const auto long_options = torch::TensorOptions().dtype(torch::kLong);
  Batch b;
  b.input_ids = torch::full({rows, length}, tokenizer_.pad_id(), long_options);
  b.attention_mask = torch::zeros({rows, length}, long_options);
  b.understanding = torch::zeros({rows, length}, torch::kBool);
  b.generation = torch::zeros({rows, length}, torch::kBool);
  b.codes = torch::zeros({rows, length}, long_options);
  b.text_targets = torch::full({rows, length}, kIgnore, long_options);
  b.image_targets = torch::full({rows, length}, kIgnore, long_options);
  std::vector<torch::Tensor> images;
  for (int64_t r = 0; r < rows; ++r) {
    const Sequence& s = sequences[r];
    const int64_t n = static_cast<int64_t>(s.ids.size());
    const int64_t start = padding == Padding::kLeft ? length - n : 0;
    auto put = [&](torch::Tensor& dst, const auto& values, torch::Dtype dtype) {
      using T = typename std::decay_t<decltype(values)>::value_type;
      auto src = torch::from_blob(const_cast<T*>(values.data()), {n},
                                  std::is_same_v<T, uint8_t> ? torch::kUInt8 : torch::kLong);
      dst[r].narrow(0, start, n).copy_(src.to(dtype));
    };
    put(b.input_ids, s.ids, torch::kLong);
    b.attention_mask[r].narrow(0, start, n).fill_(1);
    put(b.understanding, s.understanding, torch::kBool);
    put(b.generation, s.generation, torch::kBool);
    put(b.codes, s.codes, torch::kLong);
    put(b.text_targets, s.text_targets, torch::kLong);
    put(b.image_targets, s.image_targets, torch::kLong);
    if (s.image.defined()) images.push_back(s.image);
  }
  b.position_ids = (b.attention_mask.cumsum(1) - 1).clamp_min(0) * b.attention_mask;
  if (!images.empty()) b.images = torch::stack(images);
  return b;
}

torch::Tensor image_bytes(const cv::Mat& rgb, int size) {
  cv::Mat resized = rgb;
  if (size > 0 && (rgb.rows != size || rgb.cols != size)) {
    cv::resize(rgb, resized, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  }
  cv::Mat continuous = resized.isContinuous() ? resized : resized.clone();
  auto hwc =
      torch::from_blob(continuous.data, {continuous.rows, continuous.cols, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).clone();
}

torch::Tensor bytes_to_unit(const torch::Tensor& bytes) {
  return bytes.to(torch::kFloat32).div(127.5).sub(1.0);
}

torch::Tensor image_to_tensor(const cv::Mat& rgb, int size) {
  return bytes_to_unit(image_bytes(rgb, size)).contiguous();
}

}  // namespace corl::model
