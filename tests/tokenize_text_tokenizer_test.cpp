#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "corl/tokenize/text_tokenizer.h"
#include "corl/util/error.h"

namespace corl::tokenize {
namespace {

namespace fs = std::filesystem;

// ShapeWorld-like text: the captions, questions and solutions the data pipeline writes.
std::vector<std::string> shapeworld_corpus() {
  const std::vector<std::string> shapes = {"circle", "square", "triangle", "pentagon", "star"};
  const std::vector<std::string> colours = {"red", "green", "blue", "yellow", "purple", "white"};
  const std::vector<std::string> numbers = {"one", "two", "three", "four", "five"};
  std::vector<std::string> corpus;
  for (size_t s = 0; s < shapes.size(); ++s) {
    for (size_t c = 0; c < colours.size(); ++c) {
      for (size_t n = 0; n < numbers.size(); ++n) {
        const std::string noun = n == 0 ? shapes[s] : shapes[s] + "s";
        const int count = static_cast<int>(n) + 1;
        const char answer = static_cast<char>('A' + (s + c + n) % 4);
        corpus.push_back("a photo of " + numbers[n] + " " + colours[c] + " " + noun);
        corpus.push_back("How many " + colours[c] + " " + shapes[s] + "s are in the image? " +
                         "Options: A. " + std::to_string(count) + " B. " +
                         std::to_string(count + 1) + " C. " + std::to_string(count + 2) + " D. " +
                         std::to_string(count + 3));
        corpus.push_back("<think>There are " + std::to_string(count) + " " + colours[c] + " " +
                         noun + ".</think><answer>" + answer + "</answer>");
      }
    }
  }
  return corpus;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class TextTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    dir_ = new fs::path(
        fs::temp_directory_path() /
        ("corl_text_tokenizer_test_" + std::to_string(::getpid()) + "_" + std::to_string(stamp)));
    fs::create_directories(*dir_);
    corpus_ = new std::vector<std::string>(shapeworld_corpus());
    TextTokenizer::train(*corpus_, (*dir_ / "text").string(), TextTokenizerOptions{});
    tokenizer_ = new TextTokenizer((*dir_ / "text.model").string());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete corpus_;
    std::error_code ignored;
    fs::remove_all(*dir_, ignored);
    delete dir_;
  }

  static fs::path* dir_;
  static std::vector<std::string>* corpus_;
  static TextTokenizer* tokenizer_;
};

fs::path* TextTokenizerTest::dir_ = nullptr;
std::vector<std::string>* TextTokenizerTest::corpus_ = nullptr;
TextTokenizer* TextTokenizerTest::tokenizer_ = nullptr;

TEST_F(TextTokenizerTest, CorpusIsAFewHundredSentences) {
  EXPECT_GE(corpus_->size(), 300u);
  EXPECT_GT(tokenizer_->vocab_size(), 256 + 14);
  EXPECT_LE(tokenizer_->vocab_size(), TextTokenizerOptions{}.vocab_size);
}

TEST_F(TextTokenizerTest, PadUnkBosEosHaveFixedIds) {
  EXPECT_EQ(tokenizer_->piece(kPadId), "<pad>");
  EXPECT_EQ(tokenizer_->piece(kUnkId), "<unk>");
  EXPECT_EQ(tokenizer_->piece(kBosId), "<s>");
  EXPECT_EQ(tokenizer_->piece(kEosId), "</s>");
  EXPECT_EQ(tokenizer_->piece_id("<pad>"), 0);
  EXPECT_EQ(tokenizer_->piece_id("<unk>"), 1);
  EXPECT_EQ(tokenizer_->piece_id("<s>"), 2);
  EXPECT_EQ(tokenizer_->piece_id("</s>"), 3);
}

TEST_F(TextTokenizerTest, EachSpecialTokenIsOnePieceRightAfterEos) {
  for (size_t i = 0; i < kSpecialTokens.size(); ++i) {
    const int expected = 4 + static_cast<int>(i);
    const std::string token(kSpecialTokens[i]);
    EXPECT_EQ(tokenizer_->piece_id(token), expected) << token;
    EXPECT_EQ(tokenizer_->piece(expected), token);
    EXPECT_EQ(tokenizer_->encode(token), std::vector<int>{expected}) << token;
  }
}

TEST_F(TextTokenizerTest, SpecialTokensInsideTextEncodeToTheirIds) {
  const std::vector<int> ids =
      tokenizer_->encode("<think>There are 2 circles.</think><answer>B</answer>");
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids.front(), tokenizer_->piece_id("<think>"));
  EXPECT_EQ(ids.back(), tokenizer_->piece_id("</answer>"));
  const std::vector<int> tail(ids.end() - 4, ids.end());
  EXPECT_EQ(tail,
            (std::vector<int>{tokenizer_->piece_id("</think>"), tokenizer_->piece_id("<answer>"),
                              tokenizer_->encode("B").at(0), tokenizer_->piece_id("</answer>")}));
  EXPECT_EQ(tokenizer_->encode("B").size(), 1u);

  const std::vector<int> prompt =
      tokenizer_->encode("<|User|><begin_of_image><image_placeholder><end_of_image>How many?");
  ASSERT_GE(prompt.size(), 4u);
  EXPECT_EQ(std::vector<int>(prompt.begin(), prompt.begin() + 4), (std::vector<int>{11, 5, 4, 6}));
}

TEST_F(TextTokenizerTest, RoundTripsEveryCorpusSentence) {
  for (const std::string& sentence : *corpus_) {
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(sentence)), sentence);
  }
}

TEST_F(TextTokenizerTest, RoundTripsUnseenTextThroughByteFallback) {
  const std::vector<std::string> texts = {"émoji ✓ 123",
                                          " leading space",
                                          "trailing space ",
                                          "  two  spaces  between ",
                                          "tab\tand\nnewline",
                                          "Ω ≈ ç √ ∫ 漢字",
                                          "{\"json\": [1, 2]}",
                                          "",
                                          "a photo of 17 zebras; Options: A. 9 B. 10"};
  for (const std::string& text : texts) {
    const std::vector<int> ids = tokenizer_->encode(text);
    EXPECT_EQ(tokenizer_->decode(ids), text);
    for (const int id : ids) EXPECT_NE(id, kUnkId) << text;
  }
}

// Rollouts decode a completion apart from its prompt, and stream it token by token.
TEST_F(TextTokenizerTest, DecodingConcatenatesPieces) {
  const std::string prompt = "<|User|>How many red circles? Options: A. 1 B. 2<|Assistant|>";
  const std::string completion = " <think>There are 2 circles.</think><answer>B</answer>";
  std::vector<int> ids = tokenizer_->encode(prompt);
  const std::vector<int> completion_ids = tokenizer_->encode(completion);
  ids.insert(ids.end(), completion_ids.begin(), completion_ids.end());
  EXPECT_EQ(tokenizer_->decode(ids), prompt + completion);
  EXPECT_EQ(tokenizer_->decode(completion_ids), completion);
  std::string streamed;
  for (const int id : ids) streamed += tokenizer_->decode({id});
  EXPECT_EQ(streamed, prompt + completion);
}

TEST_F(TextTokenizerTest, SameCorpusAndSeedGiveIdenticalFiles) {
  for (const std::string model_type : {"unigram", "bpe"}) {
    TextTokenizerOptions options;
    options.model_type = model_type;
    const fs::path first = *dir_ / (model_type + "_first");
    const fs::path second = *dir_ / (model_type + "_second");
    TextTokenizer::train(*corpus_, first.string(), options);
    TextTokenizer::train(*corpus_, second.string(), options);
    const std::string model = read_bytes(first.string() + ".model");
    ASSERT_FALSE(model.empty());
    EXPECT_EQ(model, read_bytes(second.string() + ".model")) << model_type;
    EXPECT_EQ(read_bytes(first.string() + ".vocab"), read_bytes(second.string() + ".vocab"));

    const TextTokenizer tokenizer(first.string() + ".model");
    for (const std::string& sentence : *corpus_) {
      EXPECT_EQ(tokenizer.decode(tokenizer.encode(sentence)), sentence) << model_type;
    }
  }
}

TEST_F(TextTokenizerTest, TrainingLeavesOnlyTheModelAndVocab) {
  const fs::path dir = *dir_ / "only";
  fs::create_directories(dir);
  TextTokenizer::train(*corpus_, (dir / "text").string(), TextTokenizerOptions{});
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"text.model", "text.vocab"}));
}

TEST_F(TextTokenizerTest, MissingModelThrowsDataErrorNamingThePath) {
  const std::string path = (*dir_ / "no_such.model").string();
  try {
    TextTokenizer tokenizer(path);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
}

TEST_F(TextTokenizerTest, GarbageModelThrowsDataErrorNamingThePath) {
  const std::vector<std::string> contents = {"this is not a sentencepiece model\n", "",
                                             std::string("\x0a\x05\x0a\x01x\xff\xff", 7)};
  for (size_t i = 0; i < contents.size(); ++i) {
    const std::string path = (*dir_ / ("garbage" + std::to_string(i) + ".model")).string();
    std::ofstream(path, std::ios::binary) << contents[i];
    try {
      TextTokenizer tokenizer(path);
      FAIL() << "expected DataError for garbage " << i;
    } catch (const DataError& error) {
      EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
    }
  }
}

TEST_F(TextTokenizerTest, BadIdsAndPiecesAreRejected) {
  EXPECT_THROW(tokenizer_->decode({tokenizer_->vocab_size()}), std::out_of_range);
  EXPECT_THROW(tokenizer_->decode({-1}), std::out_of_range);
  EXPECT_THROW(tokenizer_->piece(tokenizer_->vocab_size()), std::out_of_range);
  EXPECT_THROW(tokenizer_->piece_id("not one piece"), std::invalid_argument);
}

TEST_F(TextTokenizerTest, InvalidOptionsAreUsageErrors) {
  const std::string prefix = (*dir_ / "invalid").string();
  TextTokenizerOptions options;
  options.model_type = "wordpiece";
  EXPECT_THROW(TextTokenizer::train(*corpus_, prefix, options), UsageError);
  options = TextTokenizerOptions{};
  options.vocab_size = 200;  // fewer than the 270 reserved pieces
  EXPECT_THROW(TextTokenizer::train(*corpus_, prefix, options), UsageError);
  EXPECT_THROW(TextTokenizer::train({}, prefix, TextTokenizerOptions{}), DataError);
  EXPECT_FALSE(fs::exists(prefix + ".model"));
}

}  // namespace
}  // namespace corl::tokenize
