// The text tokenizer of models trained from scratch: SentencePiece, trained with its C++ trainer,
// with the special tokens of the unified model each mapped to one id.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace corl::tokenize {

// Special tokens, in id order right after SentencePiece's own pad/unk/bos/eos.
// pad = 0, unk = 1, bos = 2, eos = 3 are fixed so that every model agrees on them.
inline constexpr int kPadId = 0;
inline constexpr int kUnkId = 1;
inline constexpr int kBosId = 2;
inline constexpr int kEosId = 3;

inline constexpr std::array<std::string_view, 10> kSpecialTokens = {
    "<image_placeholder>", "<begin_of_image>", "<end_of_image>", "<think>",  "</think>",
    "<answer>",            "</answer>",        "<|User|>",       "<|Assistant|>", "<|System|>"};

struct TextTokenizerOptions {
  int vocab_size = 512;
  std::string model_type = "unigram";  // unigram | bpe
  double character_coverage = 1.0;
  bool byte_fallback = true;  // unseen characters become bytes, never <unk>
  int seed = 0;
  int threads = 2;
};

class TextTokenizer {
 public:
  // Trains on `sentences` and writes PREFIX.model and PREFIX.vocab. Equal sentences and options
  // give byte-identical files. Throws corl::UsageError for invalid options and corl::DataError
  // when there is nothing to train on or the files cannot be written.
  static void train(const std::vector<std::string>& sentences, const std::string& model_prefix,
                    const TextTokenizerOptions& options);
  // Throws corl::DataError naming the path when it is missing or not a SentencePiece model, or
  // when pad/unk/bos/eos or a special token does not have its fixed id as a single piece.
  explicit TextTokenizer(const std::string& model_path);
  ~TextTokenizer();
  TextTokenizer(TextTokenizer&&) noexcept;
  TextTokenizer& operator=(TextTokenizer&&) noexcept;

  // With byte_fallback, decode(encode(s)) == s for any UTF-8 text. Special tokens written in
  // `s` encode to their ids.
  std::vector<int> encode(std::string_view text) const;
  // Throws std::out_of_range for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;
  // May be smaller than the vocab_size trained for, when the corpus supports fewer pieces.
  int vocab_size() const;
  // Id of a special token (one of kSpecialTokens) or of any single piece; throws
  // std::invalid_argument for a string that is not one piece.
  int piece_id(std::string_view piece) const;
  // Throws std::out_of_range for an id outside [0, vocab_size()).
  std::string piece(int id) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace corl::tokenize
