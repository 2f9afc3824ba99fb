#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "corl/eval/report.h"
#include "corl/eval/suites.h"
#include "corl/data/world.h"

namespace corl::eval {
namespace {

EvalRecipe small_recipe() {
  EvalRecipe recipe;
  recipe.world = std::string(CORL_SOURCE_DIR) + "/configs/world.yaml";
  recipe.geneval.prompts_per_category = 5;
  recipe.mcq_questions = 20;
  recipe.oe_questions = 15;
  return recipe;
}

TEST(EvalSuites, BalancedAcrossCategoriesAndTypedByQuestionForm) {
  const auto suites = build_suites(small_recipe());
  std::map<data::Category, int> per_category;
  for (const auto& item : suites.geneval) ++per_category[item.spec.category];
  ASSERT_EQ(per_category.size(), 6u);
  for (const auto& [category, n] : per_category) EXPECT_EQ(n, 5) << data::name(category);
  ASSERT_EQ(suites.mcq.size(), 20u);
  ASSERT_EQ(suites.oe.size(), 15u);
  for (const auto& q : suites.mcq) {
    EXPECT_EQ(q.qa_type, "MC");
    EXPECT_NE(q.problem.find("Options"), std::string::npos);
    EXPECT_EQ(q.image.rows, 64);
  }
  for (const auto& q : suites.oe) EXPECT_EQ(q.qa_type, "OE");
}

// configs/world.yaml keeps a quarter of its prompts for the benchmarks: the GenEval suite draws
// from those alone, and the question suites from scenes of every prompt.
TEST(EvalSuites, GenEvalSuiteDrawsOnlyTheHeldOutPrompts) {
  auto recipe = small_recipe();
  recipe.geneval.prompts_per_category = 30;
  recipe.mcq_questions = 300;
  const auto suites = build_suites(recipe);
  config::WorldRecipe world;
  config::Schema schema;
  config::load_recipe(recipe.world, {}, world, schema);
  ASSERT_GT(world.world.held_out_prompts, 0.0);
  const auto held_out = data::held_out_captions(data::WorldSpec::from_recipe(world));
  ASSERT_FALSE(held_out.empty());
  for (const auto& item : suites.geneval) {
    EXPECT_EQ(held_out.count(data::WorldSampler::caption(item.spec, "")), 1u) << item.prompt;
  }
  // The question suites' single-object scenes (every sixth: the categories cycle) show all four
  // shapes, not only the one held-out single-object prompt.
  std::set<data::Shape> alone;
  for (size_t i = 0; i < suites.mcq.size(); i += 6) {
    const auto objects = data::read_object_list(suites.mcq[i].solution);
    ASSERT_TRUE(objects && objects->objects.size() == 1u) << suites.mcq[i].solution;
    alone.insert(objects->objects[0].second);
  }
  EXPECT_EQ(alone.size(), 4u);
}

// world.category_weights and questions.weights shape the RL rows only: the benchmarks weigh
// every category and question kind alike.
TEST(EvalSuites, RowWeightsLeaveTheSuitesBalanced) {
  const std::string world = ::testing::TempDir() + "/weighted_world.yaml";
  std::ofstream(world) << "world:\n  categories: [single_object, counting]\n"
                          "  category_weights: [1, 0]\n"
                          "questions:\n  types: [count, shape]\n  weights: [1000, 0.001]\n";
  auto recipe = small_recipe();
  recipe.world = world;
  const auto suites = build_suites(recipe);
  std::map<data::Category, int> per_category;
  for (const auto& item : suites.geneval) ++per_category[item.spec.category];
  EXPECT_EQ(per_category[data::Category::kSingleObject], 5);
  EXPECT_EQ(per_category[data::Category::kCounting], 5);
  // The question scenes take turns: one object, then a count of two or more.
  for (size_t i = 0; i < suites.mcq.size(); ++i) {
    const auto objects = data::read_object_list(suites.mcq[i].solution);
    ASSERT_TRUE(objects) << suites.mcq[i].solution;
    if (i % 2 == 0) {
      EXPECT_EQ(objects->objects.size(), 1u) << i << ": " << suites.mcq[i].solution;
    } else {
      EXPECT_GE(objects->objects.size(), 2u) << i << ": " << suites.mcq[i].solution;
    }
  }
  // Unweighted, shape is tried first half the time, and fits every single-object scene (half
  // of them), so 35 questions hold none with chance about (3/4)^35; with weights 1000 : 0.001
  // it would be tried first about once in a million questions.
  int shape = 0;
  for (const auto* suite : {&suites.mcq, &suites.oe}) {
    for (const auto& q : *suite) shape += q.kind == "shape";
  }
  EXPECT_GT(shape, 0);
}

TEST(EvalSuites, SameSeedSameSuitesOtherSeedOtherSuites) {
  const auto a = build_suites(small_recipe());
  const auto b = build_suites(small_recipe());
  auto other = small_recipe();
  other.run.seed += 1;
  const auto c = build_suites(other);
  int same = 0;
  int differ = 0;
  for (size_t i = 0; i < a.mcq.size(); ++i) {
    same += a.mcq[i].problem == b.mcq[i].problem;
    differ += a.mcq[i].problem != c.mcq[i].problem;
  }
  EXPECT_EQ(same, 20);
  EXPECT_GT(differ, 10);
}

TEST(EvalSuites, BinomialStandardError) {
  EXPECT_DOUBLE_EQ(binomial_se(0.5, 100), 0.05);  // sqrt(0.25 / 100)
  EXPECT_DOUBLE_EQ(binomial_se(0.0, 100), 0.0);
  EXPECT_DOUBLE_EQ(binomial_se(0.5, 0), 0.0);
  // The default suites keep an overall figure's error at or under 0.015 even at p = 0.5.
  const EvalRecipe defaults;
  EXPECT_LE(binomial_se(0.5, defaults.mcq_questions), 0.015);
  const int per_category =
      defaults.geneval.prompts_per_category * defaults.geneval.images_per_prompt;
  EXPECT_LE(binomial_se(0.5, per_category) / std::sqrt(6.0), 0.015);
}

TEST(EvalSuites, GenevalFiguresClusterByPrompt) {
  // Category a: prompts right 1/1 and 0/1 of their images -> mean 0.5, the error of a mean over
  // two prompts sqrt(((0.5^2 + 0.5^2) / 1) / 2) = 0.5; b: one prompt at 0.5 -> error 0.
  // Overall: (0.5 + 0.5) / 2, error sqrt(0.5^2 + 0) / 2 = 0.25.
  const auto f = geneval_figures({{"a", {1.0, 0.0}}, {"b", {0.5}}}, 5);
  EXPECT_DOUBLE_EQ(f["a"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["se"]["a"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["se"]["b"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(f["overall"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["se"]["overall"].get<double>(), 0.25);
  EXPECT_EQ(f["prompts"], 3);
  EXPECT_EQ(f["images"], 5);
  const auto entry = accuracy_entry(3, 4);
  EXPECT_DOUBLE_EQ(entry["accuracy"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(entry["se"].get<double>(), std::sqrt(0.75 * 0.25 / 4));
  EXPECT_EQ(entry["n"], 4);
}

TEST(EvalReport, CheckpointNamesComeFromTheirRuns) {
  EXPECT_EQ(checkpoint_name("runs/unified/final"), "unified");
  EXPECT_EQ(checkpoint_name("runs/unified/final/"), "unified");
  EXPECT_EQ(checkpoint_name("runs/unified"), "unified");
  EXPECT_EQ(checkpoint_name("runs/unified/checkpoints/step-00000020"), "unified@step-00000020");
}

}  // namespace
}  // namespace corl::eval
