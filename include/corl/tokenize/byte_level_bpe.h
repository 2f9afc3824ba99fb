// The text tokenizer of Hugging Face checkpoints: byte-level BPE read from a `tokenizer.json`
// (the format of the Rust `tokenizers` library), so that a prompt encodes to exactly the ids
// transformers gives it. Regular expressions run on Oniguruma, the engine `tokenizers` uses, so
// pre-tokenizer patterns mean the same thing here.
//
// Supported: added tokens (matched first, leftmost-longest), no normaliser (or an empty
// Sequence), pre-tokenizers Split (Regex or String pattern, every behaviour, invert), Digits,
// ByteLevel (with or without GPT-2's regex, add_prefix_space) and Sequence of them; the BPE model
// with merges as "a b" strings or pairs, ignore_merges, unk_token. Anything else is refused when
// the file is read.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corl::tokenize {

class ByteLevelBPE {
 public:
  // Throws corl::DataError naming the path for a missing or malformed file or a component that
  // is not supported.
  explicit ByteLevelBPE(const std::string& tokenizer_json);
  ~ByteLevelBPE();
  ByteLevelBPE(ByteLevelBPE&&) noexcept;
  ByteLevelBPE& operator=(ByteLevelBPE&&) noexcept;

  // transformers' encode(text, add_special_tokens=False).
  std::vector<int> encode(std::string_view text) const;
  // Added tokens as their text, the rest byte-decoded; an id without a token (a model's head is
  // often wider than its tokenizer) decodes to nothing, and bytes that are not UTF-8 become
  // U+FFFD, as in transformers.
  std::string decode(const std::vector<int>& ids) const;
  // One more than the largest id of the vocabulary and the added tokens.
  int vocab_size() const;
  // Id of a token of the vocabulary or an added token.
  std::optional<int> token_id(std::string_view token) const;
  // The token's string (byte-level form for vocabulary tokens). Throws std::out_of_range.
  std::string token(int id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corl::tokenize
