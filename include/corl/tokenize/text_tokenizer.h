// The text tokenizer: SentencePiece for models trained from scratch (trained with its C++
// trainer, with the special tokens of the unified model each mapped to one id), or the
// byte-level BPE of a Hugging Face checkpoint's tokenizer.json (see byte_level_bpe.h), whose
// special-token ids are the checkpoint's own.
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

class ByteLevelBPE;

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
  // A path ending in ".json" is a Hugging Face tokenizer.json: its bos/eos/pad tokens come from
  // tokenizer_config.json next to it (pad falls back to eos), and the unified model's special
  // tokens must each be one token of it.
  explicit TextTokenizer(const std::string& model_path);
  // tokenizer.json when the folder has one, else text.model.
  static std::string model_file_in(const std::string& folder);
  ~TextTokenizer();
  TextTokenizer(TextTokenizer&&) noexcept;
  TextTokenizer& operator=(TextTokenizer&&) noexcept;

  // With byte_fallback, decode(encode(s)) == s for any UTF-8 text. Special tokens written in
  // `s` encode to their ids.
  std::vector<int> encode(std::string_view text) const;
  // Throws std::out_of_range for an id outside [0, vocab_size()) (SentencePiece); a byte-level
  // BPE decodes such an id to nothing.
  std::string decode(const std::vector<int>& ids) const;
  // May be smaller than the vocab_size trained for, when the corpus supports fewer pieces.
  int vocab_size() const;
  // Id of a special token (one of kSpecialTokens) or of any single piece; throws
  // std::invalid_argument for a string that is not one piece.
  int piece_id(std::string_view piece) const;
  // Throws std::out_of_range for an id outside [0, vocab_size()).
  std::string piece(int id) const;

  int pad_id() const { return pad_id_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  bool is_byte_level_bpe() const { return bpe_ != nullptr; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::unique_ptr<ByteLevelBPE> bpe_;
  int pad_id_ = kPadId;
  int bos_id_ = kBosId;
  int eos_id_ = kEosId;
};

}  // namespace corl::tokenize
