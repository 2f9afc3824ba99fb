#include <gtest/gtest.h>

#include "corl/reward/text_match.h"

namespace corl::reward {
namespace {

using Words = std::vector<std::string>;

TEST(RewardWords, LowerCasedRunsOfLettersAndDigits) {
  EXPECT_EQ(words("A Red-Circle, 3 times!"), (Words{"a", "red", "circle", "3", "times"}));
  EXPECT_EQ(words("  left_of\tx2y\n"), (Words{"left", "of", "x2y"}));
  EXPECT_EQ(words(""), Words{});
  EXPECT_EQ(words("?!, ..."), Words{});
  // Bytes outside ASCII separate words rather than join them: "café" is "caf".
  EXPECT_EQ(words("caf\xc3\xa9 bar"), (Words{"caf", "bar"}));
}

TEST(RewardTokenF1, HandWorkedCaptionAgainstPrompt) {
  // Candidate {a, photo, of, a, red, circle}: 6 words; reference {a, red, circle}: 3.
  // Common multiset: a (min(2, 1) = 1), red, circle = 3. P = 3/6, R = 3/3,
  // F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
  EXPECT_NEAR(token_f1("a photo of a red circle", "a red circle"), 2.0 / 3.0, 1e-12);
  // Precision and recall swap roles; F1 is the same.
  EXPECT_NEAR(token_f1("a red circle", "a photo of a red circle"), 2.0 / 3.0, 1e-12);
}

TEST(RewardTokenF1, RepeatedWordsCountOncePerMatch) {
  // Candidate {red, red, red}, reference {red, circle}: common = min(3, 1) = 1.
  // P = 1/3, R = 1/2, F1 = 2 (1/6) / (5/6) = 2/5.
  EXPECT_NEAR(token_f1("red red red", "red circle"), 0.4, 1e-12);
}

TEST(RewardTokenF1, CaseAndPunctuationDoNotMatter) {
  EXPECT_DOUBLE_EQ(token_f1("A RED circle.", "a red, circle"), 1.0);
}

TEST(RewardTokenF1, EmptyTexts) {
  EXPECT_DOUBLE_EQ(token_f1("", ""), 1.0);
  EXPECT_DOUBLE_EQ(token_f1("...", " "), 1.0);  // no words on either side
  EXPECT_DOUBLE_EQ(token_f1("", "a red circle"), 0.0);
  EXPECT_DOUBLE_EQ(token_f1("a red circle", ""), 0.0);
  EXPECT_DOUBLE_EQ(token_f1("blue square", "red circle"), 0.0);
}

TEST(RewardSoftJaccard, RepeatedWords) {
  // Candidate counts {a: 2, red: 1, circle: 1}; reference {a: 1, red: 2, square: 1}.
  // Sum of mins: a 1 + red 1 = 2. Sum of maxes: a 2 + red 2 + circle 1 + square 1 = 6.
  EXPECT_NEAR(soft_jaccard("a a red circle", "a red red square"), 2.0 / 6.0, 1e-12);
  EXPECT_NEAR(soft_jaccard("a red red square", "a a red circle"), 2.0 / 6.0, 1e-12);
}

TEST(RewardSoftJaccard, HandWorkedCaptionAgainstPrompt) {
  // Mins: a 1, red 1, circle 1 = 3; maxes: a 2, photo 1, of 1, red 1, circle 1 = 6.
  EXPECT_NEAR(soft_jaccard("a photo of a red circle", "a red circle"), 0.5, 1e-12);
}

TEST(RewardSoftJaccard, EmptyTexts) {
  EXPECT_DOUBLE_EQ(soft_jaccard("", ""), 1.0);
  EXPECT_DOUBLE_EQ(soft_jaccard("", "red"), 0.0);
  EXPECT_DOUBLE_EQ(soft_jaccard("Red circle", "red CIRCLE"), 1.0);
}

}  // namespace
}  // namespace corl::reward
