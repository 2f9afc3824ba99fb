// A tiny unified model and a text tokenizer trained on ShapeWorld-like text, shared by the tests
// of every module that runs a model.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "corl/model/ulm.h"
#include "corl/tokenize/text_tokenizer.h"

namespace corl::testing {

// A text tokenizer trained once per test program on ShapeWorld-like text.
inline const tokenize::TextTokenizer& tokenizer() {
  static const tokenize::TextTokenizer instance = [] {
    std::vector<std::string> corpus;
    for (const char* shape : {"circle", "square", "triangle", "diamond"}) {
      for (const char* color : {"red", "green", "blue", "yellow"}) {
        corpus.push_back(std::string("a photo of a ") + color + " " + shape);
        corpus.push_back(std::string("What color is the ") + shape + "?");
        corpus.push_back(std::string("<think>The ") + shape + " is " + color + ".</think><answer>" +
                         color + "</answer>");
      }
    }
    // One folder per process: ctest runs test cases of one program side by side.
    const auto dir = std::filesystem::temp_directory_path() /
                     ("corl_test_tokenizer_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    tokenize::TextTokenizerOptions options;
    options.vocab_size = 320;
    options.model_type = "bpe";
    tokenize::TextTokenizer::train(corpus, (dir / "text").string(), options);
    return tokenize::TextTokenizer((dir / "text.model").string());
  }();
  return instance;
}

inline model::ModelConfig tiny_config() {
  model::ModelConfig c;
  c.vocab_size = tokenizer().vocab_size();
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 48;
  c.image_size = 16;
  c.patch_size = 8;
  c.vision_hidden_size = 16;
  c.vision_layers = 1;
  c.vision_heads = 2;
  c.vision_intermediate_size = 24;
  c.image_vocab_size = 40;
  c.image_tokens = 9;
  return c;
}

inline model::UnifiedModel tiny_model(const model::ModelConfig& c = tiny_config()) {
  torch::manual_seed(0);
  model::UnifiedModel model(c);
  // Larger weights than the init's, so that attention patterns and heads are far from uniform
  // and a wrong mask or position would show in the logits.
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0.0, 0.3);
  model->eval();
  return model;
}

// A random image [3, size, size] in [-1, 1], as the vision encoder reads them, drawn from `seed`.
inline torch::Tensor random_image(int size, int seed) {
  torch::manual_seed(seed);
  return torch::rand({3, size, size}) * 2 - 1;
}

}  // namespace corl::testing
