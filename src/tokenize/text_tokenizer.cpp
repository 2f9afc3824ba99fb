#include "corl/tokenize/text_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "corl/tokenize/byte_level_bpe.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"  // defines: write_file_atomic, read_file

namespace corl::tokenize {
namespace {

// Feeds the trainer from memory, so training needs no corpus file on disk.
class SentenceListIterator : public sentencepiece::SentenceIterator {
 public:
  explicit SentenceListIterator(const std::vector<std::string>& sentences)
      : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

std::string special_tokens_csv() {
  std::string csv;
  for (const std::string_view token : kSpecialTokens) {
    if (!csv.empty()) csv += ',';
    csv += token;
  }
  return csv;
}

// std::to_string keeps six decimals, which would round a coverage such as 0.9999995.
std::string exact_decimal(double value) {
  std::ostringstream text;
  text << std::setprecision(17) << value;
  return text.str();
}

void check_options(const TextTokenizerOptions& options) {
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    throw UsageError("text tokenizer: model_type must be unigram or bpe, got '" +
                     options.model_type + "'");
  }
  // pad/unk/bos/eos, the special tokens and, with byte fallback, the 256 byte pieces are all
  // reserved before any learned piece.
  const int reserved =
      kEosId + 1 + static_cast<int>(kSpecialTokens.size()) + (options.byte_fallback ? 256 : 0);
  if (options.vocab_size <= reserved) {
    throw UsageError("text tokenizer: vocab_size must exceed the " + std::to_string(reserved) +
                     " reserved pieces, got " + std::to_string(options.vocab_size));
  }
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0)) {
    throw UsageError("text tokenizer: character_coverage must be in (0, 1]");
  }
  if (options.threads < 1) throw UsageError("text tokenizer: threads must be at least 1");
  if (options.seed < 0) throw UsageError("text tokenizer: seed must be non-negative");
}

// tokenizer_config.json names special tokens as strings or as {"content": ...}.
std::string token_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content")) return j.at("content").get<std::string>();
  return "";
}

}  // namespace

std::string TextTokenizer::model_file_in(const std::string& folder) {
  const auto json = std::filesystem::path(folder) / "tokenizer.json";
  if (std::filesystem::is_regular_file(json)) return json.string();
  return (std::filesystem::path(folder) / "text.model").string();
}

void TextTokenizer::train(const std::vector<std::string>& sentences,
                          const std::string& model_prefix, const TextTokenizerOptions& options) {
  check_options(options);
  if (sentences.empty()) throw DataError(where(model_prefix, 0) + ": no sentences to train on");

  const std::unordered_map<std::string, std::string> args = {
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", options.model_type},
      {"character_coverage", exact_decimal(options.character_coverage)},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"num_threads", std::to_string(options.threads)},
      {"pad_id", std::to_string(kPadId)},
      {"unk_id", std::to_string(kUnkId)},
      {"bos_id", std::to_string(kBosId)},
      {"eos_id", std::to_string(kEosId)},
      // User-defined (not control) symbols: they are matched inside raw text, so a prompt
      // written as a string encodes each special token to its one id.
      {"user_defined_symbols", special_tokens_csv()},
      // Exact round trip, decode(encode(s)) == s: no NFKC rewriting and runs of spaces kept.
      // No dummy leading space either, so decode is plain concatenation of pieces: a completion
      // decoded apart from its prompt, or token by token, gives exactly its own text.
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      // A small corpus may not support the requested size; take what it supports instead of
      // failing, and let the model size its head from vocab_size().
      {"hard_vocab_limit", "false"},
      // Warnings and errors only; the trainer's per-iteration log is noise at this scale.
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned int>(options.seed));
  SentenceListIterator iterator(sentences);
  // Asking for the serialized model (instead of giving the trainer a model_prefix) keeps the
  // output path out of the stored trainer spec, so equal inputs give byte-identical files.
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok()) {
    throw DataError(where(model_prefix, 0) +
                    ": training the text tokenizer failed: " + status.ToString());
  }

  sentencepiece::SentencePieceProcessor processor;
  const auto loaded = processor.LoadFromSerializedProto(model);
  if (!loaded.ok()) {
    throw std::logic_error("trained text tokenizer does not load: " + loaded.ToString());
  }
  // The same "piece<TAB>score" listing SentencePiece itself writes, for people to read.
  std::ostringstream vocab;
  for (int id = 0; id < processor.GetPieceSize(); ++id) {
    vocab << processor.IdToPiece(id) << '\t' << processor.GetScore(id) << '\n';
  }
  util::write_file_atomic(model_prefix + ".model", model);
  util::write_file_atomic(model_prefix + ".vocab", vocab.str());
}

TextTokenizer::TextTokenizer(const std::string& model_path) {
  if (model_path.size() >= 5 && model_path.compare(model_path.size() - 5, 5, ".json") == 0) {
    bpe_ = std::make_unique<ByteLevelBPE>(model_path);
    const auto config_path =
        std::filesystem::path(model_path).parent_path() / "tokenizer_config.json";
    if (!std::filesystem::is_regular_file(config_path)) {
      throw DataError(config_path.string() + ": missing (it names the bos/eos/pad tokens)");
    }
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(util::read_file(config_path.string()));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(config_path.string() + ": malformed JSON: " + e.what());
    }
    auto id_of = [&](const char* key, bool required) -> int {
      const std::string text = config.contains(key) ? token_text(config.at(key)) : "";
      if (text.empty()) {
        if (required) throw DataError(config_path.string() + ": no " + key);
        return -1;
      }
      const auto id = bpe_->token_id(text);
      if (!id) throw DataError(config_path.string() + ": " + key + " '" + text + "' has no id");
      return *id;
    };
    bos_id_ = id_of("bos_token", true);
    eos_id_ = id_of("eos_token", true);
    pad_id_ = id_of("pad_token", false);
    if (pad_id_ < 0) pad_id_ = eos_id_;
    for (const char* token : {"<image_placeholder>", "<begin_of_image>", "<end_of_image>"}) {
      if (!bpe_->token_id(token)) {
        throw DataError(model_path + ": special token " + std::string(token) + " is not a token");
      }
    }
    return;
  }
  processor_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (!std::filesystem::is_regular_file(model_path)) {
    throw DataError(where(model_path, 0) + ": no such text tokenizer model");
  }
  const auto status = processor_->LoadFromSerializedProto(util::read_file(model_path));
  if (!status.ok()) {
    throw DataError(where(model_path, 0) + ": not a SentencePiece model (" + status.ToString() +
                    ")");
  }
  // Models and datasets hard-code these ids, so a model trained elsewhere must agree exactly.
  if (processor_->pad_id() != kPadId || processor_->unk_id() != kUnkId ||
      processor_->bos_id() != kBosId || processor_->eos_id() != kEosId) {
    const std::string ids =
        std::to_string(processor_->pad_id()) + "/" + std::to_string(processor_->unk_id()) + "/" +
        std::to_string(processor_->bos_id()) + "/" + std::to_string(processor_->eos_id());
    throw DataError(where(model_path, 0) + ": pad/unk/bos/eos ids are " + ids +
                    ", expected 0/1/2/3");
  }
  for (size_t i = 0; i < kSpecialTokens.size(); ++i) {
    const std::string_view token = kSpecialTokens[i];
    const int expected = kEosId + 1 + static_cast<int>(i);
    std::vector<int> ids;
    const auto encoded = processor_->Encode(token, &ids);
    if (!encoded.ok() || ids != std::vector<int>{expected} ||
        processor_->PieceToId(token) != expected) {
      throw DataError(where(model_path, 0) + ": special token " + std::string(token) +
                      " is not the single piece with id " + std::to_string(expected));
    }
  }
}

TextTokenizer::~TextTokenizer() = default;
TextTokenizer::TextTokenizer(TextTokenizer&&) noexcept = default;
TextTokenizer& TextTokenizer::operator=(TextTokenizer&&) noexcept = default;

std::vector<int> TextTokenizer::encode(std::string_view text) const {
  if (bpe_) return bpe_->encode(text);
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  // Encoding a loaded model cannot fail; a failure is our bug, not the user's input.
  if (!status.ok()) throw std::logic_error("text tokenizer encode: " + status.ToString());
  return ids;
}

std::string TextTokenizer::decode(const std::vector<int>& ids) const {
  // A checkpoint's head is often wider than its tokenizer; as transformers, ids without a token
  // decode to nothing rather than stopping a run that sampled one.
  if (bpe_) return bpe_->decode(ids);
  const int size = vocab_size();
  for (const int id : ids) {
    if (id < 0 || id >= size) {
      throw std::out_of_range("text tokenizer decode: id " + std::to_string(id) +
                              " outside vocabulary of " + std::to_string(size));
    }
  }
  std::string text;
  const auto status = processor_->Decode(ids, &text);
  if (!status.ok()) throw std::logic_error("text tokenizer decode: " + status.ToString());
  return text;
}

int TextTokenizer::vocab_size() const {
  return bpe_ ? bpe_->vocab_size() : processor_->GetPieceSize();
}

int TextTokenizer::piece_id(std::string_view piece) const {
  if (bpe_) {
    if (const auto id = bpe_->token_id(piece)) return *id;
    throw std::invalid_argument("text tokenizer: '" + std::string(piece) + "' is not one token");
  }
  const int id = processor_->PieceToId(piece);
  // SentencePiece answers unk_id for any string it does not know.
  if (id == kUnkId && processor_->IdToPiece(kUnkId) != piece) {
    throw std::invalid_argument("text tokenizer: '" + std::string(piece) +
                                "' is not a single piece");
  }
  return id;
}

std::string TextTokenizer::piece(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw std::out_of_range("text tokenizer: id " + std::to_string(id) + " outside vocabulary of " +
                            std::to_string(vocab_size()));
  }
  if (bpe_) return bpe_->token(id);
  return processor_->IdToPiece(id);
}

}  // namespace corl::tokenize
