#include <gtest/gtest.h>

#include "corl/reward/reward.h"

namespace corl::reward {
namespace {

double accuracy(const std::string& completion, const std::string& solution,
                const std::string& qa_type) {
  return make_answer_reward("accuracy", RewardOptions{})->score({completion, solution, qa_type});
}

double format(const std::string& completion) {
  return make_answer_reward("format", RewardOptions{})->score({completion, "", "MC"});
}

TEST(AccuracyReward, MultipleChoiceLetter) {
  EXPECT_EQ(accuracy("<think>two circles</think><answer>B</answer>", "<answer>B</answer>", "MC"),
            1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>B. 2</answer>", "<answer>B</answer>", "MC"), 1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>C</answer>", "<answer>B</answer>", "MC"), 0.0);
}

TEST(AccuracyReward, BareOrTaggedSolution) {
  const std::string completion = "<think>..</think><answer>B</answer>";
  EXPECT_EQ(accuracy(completion, "B", "MC"), 1.0);
  EXPECT_EQ(accuracy(completion, "  B ", "MC"), 1.0);
  EXPECT_EQ(accuracy(completion, "<think>count</think><answer>B</answer>", "MC"), 1.0);
}

TEST(AccuracyReward, OpenEndedNumbersCompareAsNumbers) {
  EXPECT_EQ(accuracy("<think>..</think><answer>2.0</answer>", "<answer>two</answer>", "OE"), 1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>Red.</answer>", "<answer>red</answer>", "OE"), 1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>3</answer>", "<answer>two</answer>", "OE"), 0.0);
}

TEST(AccuracyReward, MalformedCompletionsScoreZero) {
  EXPECT_EQ(accuracy("B", "<answer>B</answer>", "MC"), 0.0);                     // no tags
  EXPECT_EQ(accuracy("<answer>B", "<answer>B</answer>", "MC"), 0.0);             // unclosed
  EXPECT_EQ(accuracy("<answer>A<answer>B</answer></answer>", "B", "MC"), 0.0);   // nested
  EXPECT_EQ(accuracy("<think>..</think><answer> </answer>", "two", "OE"), 0.0);  // empty
  EXPECT_EQ(accuracy("<think>..</think><answer></answer>", "B", "MC"), 0.0);     // empty
}

TEST(AccuracyReward, RightAnswerNeedsNoThinking) {
  // Form is the format reward's business; accuracy reads the answer alone.
  EXPECT_EQ(accuracy("<answer>B</answer>", "B", "MC"), 1.0);
}

TEST(AccuracyReward, BadRowsAreErrors) {
  EXPECT_THROW(accuracy("<answer>B</answer>", "<answer>B", "MC"), std::invalid_argument);
  EXPECT_THROW(accuracy("<answer>B</answer>", "<answer> </answer>", "MC"), std::invalid_argument);
  EXPECT_THROW(accuracy("<answer>B</answer>", "", "OE"), std::invalid_argument);
  EXPECT_THROW(accuracy("<answer>B</answer>", "B", "TF"), std::invalid_argument);
}

TEST(FormatReward, ThinkThenAnswer) {
  EXPECT_EQ(format("<think>a red circle</think><answer>B</answer>"), 1.0);
  EXPECT_EQ(format("  <think>\nx\n</think>\n<answer>two</answer>\n"), 1.0);
  EXPECT_EQ(format("<think></think><answer>B</answer>"), 1.0);  // empty thinking is allowed
}

TEST(FormatReward, MissingOrEmptyParts) {
  EXPECT_EQ(format("<answer>B</answer>"), 0.0);                    // no think
  EXPECT_EQ(format("<think>x</think>"), 0.0);                      // no answer
  EXPECT_EQ(format("<think>x</think><answer> \n</answer>"), 0.0);  // empty answer
  EXPECT_EQ(format("<think>x<answer>B</answer>"), 0.0);            // think never closed
  EXPECT_EQ(format(""), 0.0);
}

TEST(FormatReward, NestedOrOutOfOrderTags) {
  EXPECT_EQ(format("<think>x<answer>B</answer></think>"), 0.0);
  EXPECT_EQ(format("<think>x</think><answer><think>y</think>B</answer>"), 0.0);
  EXPECT_EQ(format("<answer>B</answer><think>x</think>"), 0.0);
  EXPECT_EQ(format("</think>x<think><answer>B</answer>"), 0.0);
  EXPECT_EQ(format("<think>x</think><answer>B<answer>C</answer></answer>"), 0.0);
}

TEST(FormatReward, NothingOutsideTheTags) {
  EXPECT_EQ(format("Sure! <think>x</think><answer>B</answer>"), 0.0);
  EXPECT_EQ(format("<think>x</think><answer>B</answer> done"), 0.0);
  EXPECT_EQ(format("<think>x</think> so <answer>B</answer>"), 0.0);
}

TEST(FormatReward, OneAnswerOnly) {
  EXPECT_EQ(format("<think>x</think><answer>A</answer><answer>B</answer>"), 0.0);
  EXPECT_EQ(format("<think>x</think><think>y</think><answer>B</answer>"), 0.0);
}

TEST(FormatReward, WellFormedAgreesWithTheReward) {
  EXPECT_TRUE(well_formed("<think>x</think><answer>B</answer>"));
  EXPECT_FALSE(well_formed("<think>x</think><answer>B</answer>."));
}

}  // namespace
}  // namespace corl::reward
