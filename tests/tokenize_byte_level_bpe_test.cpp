// Byte-level BPE on a hand-written tokenizer.json, worked by hand: the byte alphabet, three
// merges, two added tokens. (tests/model_janus_hf_test.cpp compares trained tokenizers with
// transformers itself.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "corl/tokenize/byte_level_bpe.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"

namespace corl::tokenize {
namespace {

namespace fs = std::filesystem;

// GPT-2's byte -> character map, written out for the bytes used here: printable ASCII maps to
// itself, the space (0x20) to U+0120 'Ġ'.
std::string write_tokenizer(const nlohmann::json& pre_tokenizer, const std::string& name) {
  nlohmann::json vocab;
  int id = 0;
  for (char c = '!'; c <= '~'; ++c) vocab[std::string(1, c)] = id++;  // 0..93
  vocab["Ġ"] = id++;                                                  // 94: the space
  vocab["ab"] = id++;                                                 // 95
  vocab["abc"] = id++;                                                // 96
  vocab["Ġab"] = id++;                                                // 97
  vocab["Ã"] = 100;                                                   // byte 0xC3
  vocab["©"] = 101;                                                   // byte 0xA9
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 98}, {"content", "<x>"}, {"special", true}},
        {{"id", 99}, {"content", "<xy>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        // Ranks: "a b" first, then "ab c", then "Ġ ab".
        {"merges", {"a b", "ab c", "Ġ ab"}}}},
  };
  const fs::path path =
      fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + "-tokenizer.json");
  util::write_file_atomic(path.string(), j.dump());
  return path.string();
}

const int a = 'a' - '!', b = 'b' - '!', c = 'c' - '!', kSpace = 94, kAb = 95, kAbc = 96,
          kSpaceAb = 97;

TEST(ByteLevelBPE, AppliesMergesByRankWithinPreTokenizedWords) {
  const ByteLevelBPE bpe(write_tokenizer(
      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "gpt2"));
  // GPT-2's regex: "abc", " ab", " ba" are words; " ba" has no merge, so it stays three bytes.
  EXPECT_EQ(bpe.encode("abc ab ba"), (std::vector<int>{kAbc, kSpaceAb, kSpace, b, a}));
  // "abab" -> "ab ab" (rank 0 twice); "abc" needs rank 0 then rank 1.
  EXPECT_EQ(bpe.encode("abab"), (std::vector<int>{kAb, kAb}));
  // Added tokens are cut out first, the longest at the leftmost position.
  EXPECT_EQ(bpe.encode("a<xy>b<x>c"), (std::vector<int>{a, 99, b, 98, c}));
  EXPECT_EQ(bpe.decode(bpe.encode("abc ab ba<x>")), "abc ab ba<x>");
  EXPECT_EQ(bpe.vocab_size(), 102);
  EXPECT_EQ(bpe.decode({kAb, 102, 5000, kAb}), "abab");  // ids past the tokenizer: nothing
  // Bytes 0xC3 0xA9 are "é"; 0xC3 alone is not UTF-8 and becomes U+FFFD.
  EXPECT_EQ(bpe.decode({100, 101}), "\xC3\xA9");
  EXPECT_EQ(bpe.decode({a, 100, a}),
            "a\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(bpe.token_id("<xy>"), 99);
  EXPECT_EQ(bpe.token(kSpaceAb), "Ġab");
}

// Symbols the vocabulary lacks (the bytes of '€' and of 'è''s second byte) with no unk_token
// are dropped, as `tokenizers` (0.23.3) does on this same file: it gives [64, 65], [95, 94, 97]
// and [66, 64, 69, 100, 101, 94, 100].
TEST(ByteLevelBPE, SymbolsWithoutIdAreDroppedWithoutUnkToken) {
  const ByteLevelBPE bpe(write_tokenizer(
      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "gpt2-unk"));
  EXPECT_EQ(bpe.encode("a\u20acb"), (std::vector<int>{a, b}));
  EXPECT_EQ(bpe.encode("ab \u20ac ab"), (std::vector<int>{kAb, kSpace, kSpaceAb}));
  EXPECT_EQ(bpe.encode("caf\u00e9 \u00e8"),
            (std::vector<int>{c, a, 'f' - '!', 100, 101, kSpace, 100}));
}

TEST(ByteLevelBPE, SplitBehavioursShapeTheWords) {
  // Without GPT-2's regex the whole text is one word, so " ab" merges across what GPT-2 splits.
  const ByteLevelBPE whole(write_tokenizer(
      {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}, "whole"));
  EXPECT_EQ(whole.encode("ab"), (std::vector<int>{kSpaceAb}));  // prefix space added
  EXPECT_EQ(whole.encode("c ab"), (std::vector<int>{kSpace, c, kSpaceAb}));
  // Removing the spaces leaves the words only; Digits isolates every digit.
  const ByteLevelBPE removed(write_tokenizer(
      {{"type", "Sequence"},
       {"pretokenizers",
        {{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}},
         {{"type", "Digits"}, {"individual_digits", true}},
         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}},
      "removed"));
  const int one = '1' - '!', two = '2' - '!';
  EXPECT_EQ(removed.encode("ab  abc12"), (std::vector<int>{kAb, kAbc, one, two}));
}

TEST(ByteLevelBPE, UnsupportedComponentsAreNamed) {
  const std::string path =
      write_tokenizer({{"type", "Metaspace"}, {"replacement", "_"}}, "metaspace");
  try {
    ByteLevelBPE bpe(path);
    FAIL() << "read an unsupported pre-tokenizer";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("pre-tokenizer 'Metaspace' is not supported"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ByteLevelBPE("/nonexistent/tokenizer.json"), DataError);
}

// An id that is not an integer in range is named, not converted: get<int>(1.4e52) is undefined,
// and a huge id would size the id -> token table (found by fuzz/tokenizer_json.cpp).
TEST(ByteLevelBPE, IdsOutOfRangeAreNamed) {
  const fs::path path =
      fs::temp_directory_path() / ("bad-ids-" + std::to_string(::getpid()) + "-tokenizer.json");
  for (const nlohmann::json& id : {nlohmann::json(1.4e52), nlohmann::json(-1),
                                   nlohmann::json(int64_t{1} << 40), nlohmann::json(2.5)}) {
    const nlohmann::json j = {
        {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", id}}}, {"merges", {"a b"}}}}};
    util::write_file_atomic(path.string(), j.dump());
    try {
      ByteLevelBPE bpe(path.string());
      FAIL() << "read the id " << id.dump();
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("token 'b' has id " + id.dump()), std::string::npos)
          << e.what();
    }
  }
  fs::remove(path);
}

}  // namespace
}  // namespace corl::tokenize
