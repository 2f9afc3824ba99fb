#include <gtest/gtest.h>

#include "corl/data/answers.h"

namespace corl::data {
namespace {

TEST(ExtractAnswer, WellFormedAndMalformed) {
  EXPECT_EQ(extract_answer("<think>two</think><answer> B </answer>"), "B");
  EXPECT_EQ(extract_answer("<answer>1</answer> then <answer>2</answer>"), "2");  // the last
  EXPECT_EQ(extract_answer("<answer></answer>"), "");
  EXPECT_FALSE(extract_answer("no tags at all"));
  EXPECT_FALSE(extract_answer("<answer>unclosed"));
  EXPECT_FALSE(extract_answer("closed only</answer>"));
  EXPECT_FALSE(extract_answer("<answer><answer>x</answer></answer>"));
}

TEST(AnswersMatch, MultipleChoiceComparesLetters) {
  EXPECT_TRUE(answers_match("B", "B", true));
  EXPECT_TRUE(answers_match("b.", "B", true));
  EXPECT_TRUE(answers_match("(B)", "B", true));
  EXPECT_TRUE(answers_match("B. 3", "B", true));
  EXPECT_FALSE(answers_match("C", "B", true));
  EXPECT_FALSE(answers_match("blue", "B", true));  // a word starting with the letter is no letter
  EXPECT_FALSE(answers_match("", "B", true));
}

// Hand-worked: what a reader takes each answer to pick, '\0' where it picks no option.
struct OptionCase {
  const char* answer;
  char letter;
};

constexpr OptionCase kOptionCases[] = {
    {"B", 'B'},
    {"b", 'B'},
    {"  B \n", 'B'},
    {"B.", 'B'},
    {"b.", 'B'},
    {"B)", 'B'},
    {"B:", 'B'},
    {"(B)", 'B'},
    {"( B )", '\0'},
    {"B. red", 'B'},
    {"B. 3", 'B'},
    {"B) red", 'B'},
    {"B: the red one", 'B'},
    {"(B) red", 'B'},
    {"a", 'A'},
    {"I", 'I'},
    {"F.", 'F'},
    {"a red circle", '\0'},  // the article, not option A
    {"I think", '\0'},       // the pronoun, not option I
    {"A red", '\0'},
    {"B red", '\0'},
    {"B.red", '\0'},  // punctuation then text needs a space between them
    {"B..", '\0'},
    {"(B", '\0'},
    {"B)(", '\0'},
    {"(B.", '\0'},
    {"blue", '\0'},
    {"Bb", '\0'},
    {"B2", '\0'},
    {"2", '\0'},
    {".", '\0'},
    {"()", '\0'},
    {"", '\0'},
};

TEST(AnswersMatch, OnlyAStandaloneLetterIsAnOption) {
  for (const OptionCase& c : kOptionCases) {
    for (char letter = 'A'; letter <= 'Z'; ++letter) {
      EXPECT_EQ(answers_match(c.answer, std::string(1, letter), true), letter == c.letter)
          << "answer \"" << c.answer << "\" against option " << letter;
    }
  }
}

TEST(AnswersMatch, OpenEndedNormalisesTextAndNumbers) {
  EXPECT_TRUE(answers_match(" Red.", "red", false));
  EXPECT_TRUE(answers_match("2", "2", false));
  EXPECT_TRUE(answers_match("2.0", "2", false));
  EXPECT_TRUE(answers_match("two", "2", false));
  EXPECT_FALSE(answers_match("3", "2", false));
  EXPECT_FALSE(answers_match("reddish", "red", false));
  EXPECT_FALSE(answers_match("", "", false));
}

}  // namespace
}  // namespace corl::data
