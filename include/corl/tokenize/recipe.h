// configs/tokenizers.yaml: the text tokenizer (SentencePiece) and the image tokenizer (VQ).
#pragma once

#include <string>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/tokenize/vq.h"
#include "corl/tokenize/vq_trainer.h"

namespace corl::tokenize {

struct TokenizerRecipe {
  config::RunSection run{"tokenizer"};
  struct Text {
    std::string data = "runs/data/train.jsonl";  // JSON-lines file whose text trains it
    int vocab_size = 512;
    std::string model_type = "bpe";
    double character_coverage = 1.0;
    bool byte_fallback = true;
    bool skip_bad_rows = false;  // skip and count malformed rows instead of stopping
  } text;
  struct Image {
    bool train = true;
    std::string data = "runs/data/train.jsonl";  // its images train the VQ tokenizer
    VQConfig vq;
    VQTrainOptions optim;
  } image;
};

void bind(config::Schema& schema, TokenizerRecipe& recipe);
void validate(const TokenizerRecipe& recipe);

}  // namespace corl::tokenize
