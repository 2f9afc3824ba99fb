#include <gtest/gtest.h>

#include "corl/config/recipes.h"
#include "corl/data/scene.h"
#include "corl/data/world.h"
#include "corl/reward/answer_checks.h"
#include "corl/reward/reward.h"

namespace corl::reward {
namespace {

double accuracy(const std::string& completion, const std::string& solution,
                const std::string& qa_type) {
  return make_answer_reward("accuracy", RewardOptions{})
      ->score({completion, solution, qa_type, nullptr, ""});
}

double format(const std::string& completion) {
  return make_answer_reward("format", RewardOptions{})->score({completion, "", "MC", nullptr, ""});
}

TEST(AccuracyReward, MultipleChoiceLetter) {
  EXPECT_EQ(accuracy("<think>two circles</think><answer>B</answer>", "<answer>B</answer>", "MC"),
            1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>B. 2</answer>", "<answer>B</answer>", "MC"), 1.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>C</answer>", "<answer>B</answer>", "MC"), 0.0);
}

TEST(AccuracyReward, ProseIsNoOptionLetter) {
  EXPECT_EQ(accuracy("<think>..</think><answer>a red circle</answer>", "<answer>A</answer>", "MC"),
            0.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>I think C</answer>", "<answer>I</answer>", "MC"),
            0.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>B red</answer>", "<answer>B</answer>", "MC"), 0.0);
  EXPECT_EQ(accuracy("<think>..</think><answer>(B) red</answer>", "<answer>B</answer>", "MC"), 1.0);
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

// Two red circles and a blue square, the scene the perception cases below are scored against.
data::Scene two_circles_and_a_square() {
  data::Scene scene;
  scene.objects = {{data::Shape::kCircle, data::Color::kRed, 0.2, 0.2, 0.1},
                   {data::Shape::kSquare, data::Color::kBlue, 0.7, 0.7, 0.1},
                   {data::Shape::kCircle, data::Color::kRed, 0.7, 0.2, 0.1}};
  return scene;
}

double perception(const std::string& completion, const data::Scene& scene) {
  return make_answer_reward("perception", RewardOptions{})
      ->score({completion, "", "OE", &scene, ""});
}

// A completion whose reasoning lists `objects`, then counts.
std::string listing(const std::string& objects) {
  return "<think>The image shows " + objects +
         ". Counting the circles gives two.</think><answer>2</answer>";
}

// F1 = 2 |listed ∩ shown| / (|listed| + |shown|), the intersection of multisets, worked by hand.
TEST(PerceptionReward, ObjectF1AgainstTheScene) {
  const data::Scene scene = two_circles_and_a_square();
  // Every object, in another order: 2 * 3 / (3 + 3).
  EXPECT_DOUBLE_EQ(perception(listing("a blue square, a red circle and a red circle"), scene), 1.0);
  // One red circle fewer: 2 * 2 / (2 + 3).
  EXPECT_DOUBLE_EQ(perception(listing("a red circle and a blue square"), scene), 0.8);
  // The square read as a diamond: 2 * 2 / (3 + 3).
  EXPECT_DOUBLE_EQ(perception(listing("a red circle, a blue diamond and a red circle"), scene),
                   2.0 / 3.0);
  // A right colour with a wrong shape earns nothing: 2 * 0 / (1 + 3).
  EXPECT_DOUBLE_EQ(perception(listing("a red square"), scene), 0.0);
  // Three circles where there are two: 2 * 3 / (4 + 3).
  EXPECT_DOUBLE_EQ(
      perception(listing("a red circle, a red circle, a red circle and a blue square"), scene),
      6.0 / 7.0);
}

TEST(PerceptionReward, UnreadableItemsCountAsWrongAndNoListScoresZero) {
  const data::Scene scene = two_circles_and_a_square();
  // "some red thing" is named but matches nothing: 2 * 1 / (2 + 3).
  EXPECT_DOUBLE_EQ(
      perception("<think>The image shows some red thing and a blue square.</think>", scene), 0.4);
  // Quarters, as in scene captions, are read past: 2 * 1 / (1 + 3).
  EXPECT_DOUBLE_EQ(perception("The image shows a blue square in the bottom right.", scene), 0.5);
  EXPECT_DOUBLE_EQ(perception("<think>Counting gives two.</think><answer>2</answer>", scene), 0.0);
  EXPECT_DOUBLE_EQ(perception("<think>The image shows no objects.</think>", scene), 0.0);
  EXPECT_DOUBLE_EQ(perception("<think>The image shows no objects.</think>", data::Scene{}), 1.0);
  // A completion cut off inside its list is read up to where it stops: 2 * 1 / (2 + 3).
  EXPECT_DOUBLE_EQ(perception("<think>The image shows a red circle and a gr", scene), 0.4);
}

TEST(PerceptionReward, RowWithoutASceneIsAnError) {
  EXPECT_THROW(make_answer_reward("perception", RewardOptions{})
                   ->score({"<think>The image shows a red circle.</think>", "", "OE", nullptr, ""}),
               std::invalid_argument);
}

double options(const std::string& completion, const std::string& problem) {
  return make_answer_reward("options", RewardOptions{})
      ->score({completion, "", "MC", nullptr, problem});
}

const std::string kColourQuestion =
    "The square is what color? Options: A. blue B. green C. orange D. purple";

// Agreeing names over all names, worked by hand against the options A blue, B green, C orange,
// D purple.
TEST(OptionsReward, FractionOfOptionsNamedUnderTheirLetters) {
  EXPECT_DOUBLE_EQ(options("<think>The square is green. A. blue? no. B. green? yes.</think>"
                           "<answer>B</answer>",
                           kColourQuestion),
                   1.0);
  // The answer known, written under the first letter: A is blue, not green.
  EXPECT_DOUBLE_EQ(options("<think>The square is green. A. green? yes.</think><answer>A</answer>",
                           kColourQuestion),
                   0.0);
  // Two of three right: C is orange, not purple.
  EXPECT_DOUBLE_EQ(
      options("<think>A. blue? no. B. green? no. C. purple? yes.</think><answer>C</answer>",
              kColourQuestion),
      2.0 / 3.0);
  // A letter the question does not offer agrees with nothing.
  EXPECT_DOUBLE_EQ(options("<think>A. blue? no. E. green? yes.</think>", kColourQuestion), 0.5);
  // Case does not matter; a name with no letter before it is no walk at all.
  EXPECT_DOUBLE_EQ(options("<think>A. Blue? no.</think>", kColourQuestion), 1.0);
  EXPECT_DOUBLE_EQ(
      options("<think>The square is green.</think><answer>B</answer>", kColourQuestion), 0.0);
}

TEST(OptionsReward, StatementFormAndQuestionsWithoutOptions) {
  const std::string existence = "Is there an orange diamond? Options: A. yes B. no";
  EXPECT_DOUBLE_EQ(
      options("<think>There is an orange diamond. The answer yes is option A.</think>", existence),
      1.0);
  EXPECT_DOUBLE_EQ(
      options("<think>There is no orange diamond. The answer no is option A.</think>", existence),
      0.0);
  // Multi-word options run up to the next letter's mark.
  EXPECT_DOUBLE_EQ(options("<think>A. a red circle? no. B. two squares? yes.</think>",
                           "Which is shown? Options: A. a red circle B. two squares"),
                   1.0);
  // Open questions have nothing to walk: a reasoning that names no option scores 1, and one that
  // names options the question never gave scores 0.
  EXPECT_DOUBLE_EQ(options("<think>The square is green.</think><answer>green</answer>",
                           "What colour is the square?"),
                   1.0);
  EXPECT_DOUBLE_EQ(options("<think>The square is green. A. green? yes.</think><answer>A</answer>",
                           "What colour is the square?"),
                   0.0);
}

// Property: the world's own reasoning walks every multiple-choice question faithfully, and the
// same reasoning against the options shuffled to other letters does not.
TEST(OptionsReward, TheWorldsSolutionsWalkTheirOwnOptions) {
  data::WorldSampler sampler(data::WorldSpec::from_recipe(config::WorldRecipe{}), 7);
  int checked = 0;
  for (int i = 0; i < 1000; ++i) {
    const data::Question q = sampler.next().question;
    if (!q.multiple_choice) continue;
    ++checked;
    EXPECT_DOUBLE_EQ(options(q.solution, q.problem), 1.0) << q.problem << "\n" << q.solution;
    // Reversing the options' order moves every option to another letter whenever there are
    // more than one and they differ (a middle option of an odd count keeps its letter).
    const size_t at = q.problem.find("Options:");
    std::vector<std::string> texts;
    for (char letter = 'A';; ++letter) {
      const size_t mark = q.problem.find(std::string(1, letter) + ". ", at);
      if (mark == std::string::npos) break;
      const size_t next =
          q.problem.find(" " + std::string(1, static_cast<char>(letter + 1)) + ". ", mark);
      texts.push_back(q.problem.substr(
          mark + 3, next == std::string::npos ? std::string::npos : next - mark - 3));
    }
    if (texts.size() % 2 == 1) continue;
    std::string reversed = q.problem.substr(0, at) + "Options:";
    for (size_t k = 0; k < texts.size(); ++k) {
      reversed +=
          " " + std::string(1, static_cast<char>('A' + k)) + ". " + texts[texts.size() - 1 - k];
    }
    EXPECT_DOUBLE_EQ(options(q.solution, reversed), 0.0) << reversed << "\n" << q.solution;
  }
  EXPECT_GT(checked, 100);
}

}  // namespace
}  // namespace corl::reward
