#include <gtest/gtest.h>

#include <tuple>

#include "corl/grpo/recipe.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"

namespace corl::grpo {
namespace {

const std::string kRoot = CORL_SOURCE_DIR;

GrpoRecipe load(const std::string& file, const std::vector<std::string>& overrides = {}) {
  GrpoRecipe recipe;
  config::Schema schema;
  config::load_recipe(file.empty() ? "" : kRoot + "/configs/" + file, overrides, recipe, schema);
  return recipe;
}

TEST(GrpoRecipe, ShippedRecipesLoadWithTheirTasks) {
  EXPECT_EQ(task_of(load("unified.yaml")), Task::kUnified);
  EXPECT_EQ(task_of(load("refine_t2i.yaml")), Task::kT2I);
  const auto mcq = load("refine_mcq.yaml");
  EXPECT_EQ(task_of(mcq), Task::kMM2T);
  EXPECT_EQ(mcq.data.qa_types, std::vector<std::string>{"MC"});
  EXPECT_EQ(load("refine_oe.yaml").data.qa_types, std::vector<std::string>{"OE"});
  // Paper Table 5: the refined stages keep a KL to the unified model, G = 16.
  for (const char* file : {"refine_t2i.yaml", "refine_mcq.yaml", "refine_oe.yaml"}) {
    EXPECT_DOUBLE_EQ(load(file).grpo.beta, 0.02) << file;
    EXPECT_EQ(load(file).grpo.num_generations, 16) << file;
  }
}

// The Janus-Pro-1B recipes carry the paper's numbers (DESIGN §4) and start from the folder given
// with --set model.path; without one they refuse to start from anything else.
TEST(GrpoRecipe, JanusProRecipesCarryThePaperHyperParameters) {
  const auto unified = load("janus_pro_1b_unified.yaml", {"model.path=/data/Janus-Pro-1B"});
  EXPECT_EQ(task_of(unified), Task::kUnified);
  EXPECT_EQ(unified.grpo.num_generations, 8);
  EXPECT_DOUBLE_EQ(unified.grpo.beta, 0.0);
  EXPECT_DOUBLE_EQ(unified.optim.learning_rate, 4e-6);
  EXPECT_DOUBLE_EQ(unified.grpo.cfg_weight, 5.0);
  EXPECT_EQ(start_from(unified), "/data/Janus-Pro-1B");
  const auto refine = load("janus_pro_1b_refine_t2i.yaml", {"model.path=/data/unified"});
  EXPECT_EQ(task_of(refine), Task::kT2I);
  EXPECT_EQ(refine.grpo.num_generations, 16);
  EXPECT_DOUBLE_EQ(refine.grpo.beta, 0.02);
  EXPECT_DOUBLE_EQ(refine.optim.learning_rate, 1e-6);
  EXPECT_DOUBLE_EQ(refine.grpo.cfg_weight, 5.0);
  EXPECT_EQ(refine.grpo.reward_funcs, (std::vector<std::string>{"cycle", "tim"}));
  // 7B: the same step as 1B's over 8 ranks (2 prompts each), with the memory settings of
  // docs/janus.md.
  const auto seven = load("janus_pro_7b_unified.yaml", {"model.path=/data/Janus-Pro-7B"});
  EXPECT_EQ(groups_per_rank(seven) * 8, groups_per_rank(unified));
  EXPECT_DOUBLE_EQ(seven.optim.learning_rate, unified.optim.learning_rate);
  EXPECT_EQ(seven.grpo.num_generations, unified.grpo.num_generations);
  EXPECT_EQ(seven.dist.zero_stage, 2);
  EXPECT_TRUE(seven.training.gradient_checkpointing);
  EXPECT_EQ(seven.training.freeze.size(), 5u);
  for (const char* file :
       {"janus_pro_1b_unified.yaml", "janus_pro_1b_refine_t2i.yaml", "janus_pro_7b_unified.yaml"}) {
    try {
      load(file);
      ADD_FAILURE() << file << " loaded without model.path";
    } catch (const RecipeError& e) {
      EXPECT_NE(std::string(e.what()).find("model.path"), std::string::npos) << e.what();
    }
  }
  // A corl recipe still starts from init.
  EXPECT_EQ(start_from(load("unified.yaml")), "runs/pretrain");
}

TEST(GrpoRecipe, TrlNamesMapToTheLossAndAdvantageOptions) {
  EXPECT_EQ(loss_type_of(load("", {"grpo.loss_type=grpo"})), LossType::kGrpo);
  EXPECT_EQ(loss_type_of(load("", {"grpo.loss_type=bnpo"})), LossType::kBnpo);
  EXPECT_EQ(loss_type_of(load("", {"grpo.loss_type=dapo"})), LossType::kDapo);
  EXPECT_EQ(loss_type_of(load("", {"grpo.loss_type=dr_grpo"})), LossType::kDrGrpo);
  EXPECT_EQ(unified_advantage_of(load("", {})), UnifiedAdvantage::kSharedReward);
  EXPECT_EQ(
      unified_advantage_of(load("", {"grpo.unify_reward=false", "grpo.unify_advantage=true"})),
      UnifiedAdvantage::kSharedAdvantage);
  EXPECT_EQ(
      unified_advantage_of(load("", {"grpo.unify_reward=false", "grpo.unify_advantage=false"})),
      UnifiedAdvantage::kPerTask);
  EXPECT_EQ(reward_scale_of(load("", {"grpo.scale_rewards=none"})), ops::RewardScale::kNone);
  EXPECT_EQ(reward_scale_of(load("", {"grpo.scale_rewards=group"})), ops::RewardScale::kGroup);
  const auto options =
      reward_options_of(load("", {"reward.cycle_image=ssim", "reward.exclusive=false"}));
  EXPECT_EQ(options.cycle_image, "ssim");
  EXPECT_FALSE(options.judge.exclusive);
}

// TRL's batch keys (GRPOConfig 1.x): per_device_train_batch_size completions per rank per
// micro-step, gradient_accumulation_steps micro-steps per generation batch (steps_per_generation's
// default), max_steps optimizer updates, num_iterations of them per generation batch. The shipped
// recipes keep the batches they had when per_device_train_batch_size counted groups and max_steps
// generation batches.
TEST(GrpoRecipe, TrlBatchKeysKeepTheShippedBatches) {
  const std::vector<std::tuple<std::string, int, int>> shipped{
      {"unified.yaml", 16, 100},     {"refine_t2i.yaml", 2, 50},
      {"refine_mcq.yaml", 8, 40},    {"refine_oe.yaml", 8, 80},
      {"janus_pro_1b_unified.yaml", 16, 1000}, {"janus_pro_1b_refine_t2i.yaml", 8, 500},
      {"janus_pro_7b_unified.yaml", 2, 1000}};
  for (const auto& [file, groups, batches] : shipped) {
    const auto r = load(file, {"model.path=/data/x"});
    EXPECT_EQ(groups_per_rank(r), groups) << file;
    EXPECT_EQ(generation_batches(r, total_updates(r, 20000, 1)), batches) << file;
    EXPECT_EQ(r.grpo.num_iterations, 1) << file;
  }
  // 12 completions a micro-step x 2 micro-steps / G 8 = 3 groups; 6 updates at mu 2 = 3 batches.
  const auto r = load("", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
                           "optim.gradient_accumulation_steps=2", "grpo.max_steps=6",
                           "grpo.num_iterations=2"});
  EXPECT_EQ(groups_per_rank(r), 3);
  EXPECT_EQ(total_updates(r, 100, 1), 6);  // max_steps set: the rows do not matter
  EXPECT_EQ(generation_batches(r, 6), 3);
  EXPECT_EQ(generation_batches(r, 7), 4);  // the last batch is trained on once (TRL)
  EXPECT_NO_THROW(load("", {"optim.gradient_accumulation_steps=4", "grpo.steps_per_generation=4"}));
  EXPECT_NO_THROW(check_generation_batch(r, 2));
  const auto sized = load("", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
                               "optim.gradient_accumulation_steps=2",
                               "grpo.generation_batch_size=48"});
  EXPECT_NO_THROW(check_generation_batch(sized, 2));  // 12 x 2 ranks x 2 micro-steps
  EXPECT_THROW(check_generation_batch(sized, 1), RecipeError);
}

// TRL's defaults: max_steps -1 and num_train_epochs 3. 3 groups a rank x 2 ranks = 6 distinct
// prompts a generation batch; 100 rows make 16 batches an epoch (4 rows wait), 2 epochs at mu 2
// 64 updates.
TEST(GrpoRecipe, NumTrainEpochsCountsPassesOverTheRows) {
  const auto defaults = load("");
  EXPECT_EQ(defaults.grpo.max_steps, -1);
  EXPECT_DOUBLE_EQ(defaults.grpo.num_train_epochs, 3.0);
  const auto r = load("", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
                           "optim.gradient_accumulation_steps=2", "grpo.num_train_epochs=2",
                           "grpo.num_iterations=2"});
  EXPECT_EQ(total_updates(r, 100, 2), 64);
  EXPECT_EQ(generation_batches(r, 64), 32);
  EXPECT_EQ(total_updates(r, 100, 1), 2 * 33 * 2);  // 3 prompts a batch: 33 batches an epoch
  EXPECT_THROW(total_updates(r, 5, 2), RecipeError);  // no whole batch
  EXPECT_THROW(load("", {"grpo.max_steps=0"}), RecipeError);
  EXPECT_THROW(load("", {"grpo.num_train_epochs=-1"}), RecipeError);
}

// A recipe written for the old meanings, where the numbers cannot be TRL's, names the key and
// the conversion.
TEST(GrpoRecipe, OldBatchMeaningsAreClearErrors) {
  const auto message = [](const std::string& file, const std::vector<std::string>& overrides) {
    try {
      load(file, overrides);
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // refine_t2i as it was: 2 "groups" of 16 in one micro-step are 2 completions, not a group.
  const auto groups = message("refine_t2i.yaml", {"grpo.per_device_train_batch_size=2"});
  EXPECT_NE(groups.find("grpo.per_device_train_batch_size: 2 completions"), std::string::npos)
      << groups;
  EXPECT_NE(groups.find("counts completions, as in TRL, not groups"), std::string::npos) << groups;
  EXPECT_NE(groups.find("P x 16 / 1"), std::string::npos) << groups;
  const auto spg = message("", {"optim.gradient_accumulation_steps=2",
                                "grpo.steps_per_generation=4"});
  EXPECT_NE(spg.find("grpo.steps_per_generation: 4"), std::string::npos) << spg;
}

// TRL's GRPOConfig: epsilon_high defaults to epsilon, not to 0.2 on its own.
TEST(GrpoRecipe, EpsilonHighDefaultsToEpsilonAsInTrl) {
  EXPECT_DOUBLE_EQ(epsilon_high_of(load("", {"grpo.epsilon=0.1"})), 0.1);
  EXPECT_DOUBLE_EQ(epsilon_high_of(load("", {"grpo.epsilon=0.3"})), 0.3);
  EXPECT_DOUBLE_EQ(epsilon_high_of(load("", {"grpo.epsilon=0.1", "grpo.epsilon_high=0.28"})), 0.28);
  EXPECT_DOUBLE_EQ(epsilon_high_of(load("", {"grpo.epsilon=0.1", "grpo.epsilon_high=0"})), 0.0);
  EXPECT_THROW(load("", {"grpo.epsilon_high=-0.5"}), RecipeError);
}

// One GPU per local rank, as torchrun lays them out: rank 1 of a node is on cuda:1, not cuda:0.
TEST(GrpoRecipe, EachLocalRankTrainsOnItsOwnGpu) {
  EXPECT_EQ(policy_device(load("", {}), 3, 0), torch::Device(torch::kCPU));
  const auto cuda = load("", {"run.device=cuda"});
  EXPECT_EQ(policy_device(cuda, 0, 8), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(policy_device(cuda, 1, 8), torch::Device(torch::kCUDA, 1));
  EXPECT_EQ(policy_device(cuda, 7, 8), torch::Device(torch::kCUDA, 7));
  EXPECT_THROW(policy_device(cuda, 2, 2), UsageError);
  EXPECT_THROW(policy_device(cuda, 0, 0), RecipeError);
}

TEST(GrpoRecipe, InconsistentRecipesAreRecipeErrors) {
  auto message = [](const std::vector<std::string>& overrides) {
    try {
      load("", overrides);
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message({"grpo.reward_weights=[1]"}).find("1 weights for 3 reward_funcs"),
            std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[cycle, cycle]", "grpo.reward_weights=[1, 1]"})
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(message({"task=t2i"}).find("scores answers, but task t2i"), std::string::npos);
  EXPECT_NE(message({"task=mm2t"}).find("scores images, but task mm2t"), std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[geneval]", "grpo.reward_weights=[1]"})
                .find("no reward scores them (accuracy, format or perception)"),
            std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[cycel]"}).find("cycel"), std::string::npos);
  EXPECT_NE(message({"grpo.num_generations=1"}).find("grpo.num_generations"), std::string::npos);
  EXPECT_EQ(message({"grpo.unify_reward=false", "grpo.unify_advantage=true"}), "");
  EXPECT_EQ(message({"grpo.unify_reward=false", "grpo.unify_advantage=false"}), "");
  EXPECT_NE(message({"run.autocast=bf16"}).find("run.autocast: bf16 needs run.device cuda"),
            std::string::npos);
  EXPECT_NE(message({"run.device=tpu"}).find("run.device"), std::string::npos);
  EXPECT_EQ(message({"run.device=cuda", "run.autocast=bf16"}), "");
}

TEST(GrpoRecipe, TrlOptionsParse) {
  const auto r =
      load("", {"grpo.scale_rewards=batch", "grpo.importance_sampling_level=sequence",
                "grpo.multi_objective_aggregation=normalize_then_sum",
                "grpo.mask_truncated_completions=true", "grpo.top_entropy_quantile=0.2",
                "grpo.importance_sampling_correction=true",
                "grpo.importance_sampling_mode=token_truncate", "grpo.importance_sampling_cap=2"});
  EXPECT_EQ(reward_scale_of(r), ops::RewardScale::kBatch);
  EXPECT_EQ(reward_aggregation_of(r), RewardAggregation::kNormalizeThenSum);
  EXPECT_TRUE(needs_old_logprobs(r));
  EXPECT_TRUE(rollout_options_of(r).keep_logp);
  const auto plain = load("", {});
  EXPECT_FALSE(needs_old_logprobs(plain));
  EXPECT_FALSE(rollout_options_of(plain).keep_logp);
  EXPECT_EQ(plain.grpo.importance_sampling_level, "token");
  EXPECT_THROW(load("", {"grpo.importance_sampling_mode=token"}), RecipeError);
  EXPECT_THROW(load("", {"grpo.top_entropy_quantile=1.5"}), RecipeError);
  EXPECT_THROW(load("", {"grpo.scale_rewards=rank"}), RecipeError);
}

TEST(GrpoRecipe, ShardingFreezingAndCheckpointingKeys) {
  const auto plain = load("", {});
  EXPECT_EQ(plain.dist.zero_stage, 0);
  EXPECT_FALSE(plain.training.gradient_checkpointing);
  EXPECT_TRUE(plain.training.freeze.empty());
  const auto r = load("", {"dist.zero_stage=2", "model.gradient_checkpointing=true",
                           "model.freeze=[vision_model, gen_head]"});
  EXPECT_EQ(r.dist.zero_stage, 2);
  EXPECT_TRUE(r.training.gradient_checkpointing);
  EXPECT_EQ(r.training.freeze, (std::vector<std::string>{"vision_model", "gen_head"}));
  try {
    load("", {"dist.zero_stage=3"});
    ADD_FAILURE() << "zero_stage 3 accepted";
  } catch (const RecipeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("dist.zero_stage: must be in [0, 2], got 3"), std::string::npos) << what;
  }
  EXPECT_THROW(load("", {"model.freeze=[vq]"}), RecipeError);
}

TEST(RecipeDocs, GrpoKeysAreDocumented) {
  const std::string docs = util::read_file(kRoot + "/docs/recipes.md");
  GrpoRecipe recipe;
  config::Schema schema;
  config::load_recipe(kRoot + "/configs/unified.yaml", {}, recipe, schema);
  for (const auto& field : schema.fields()) {
    EXPECT_NE(docs.find("`" + field->key + "`"), std::string::npos) << field->key;
  }
}

}  // namespace
}  // namespace corl::grpo
