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
