#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
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
  // Paper Table 5: the refined stages keep a KL to the unified model. The answers' refined
  // stages take its G = 16; ShapeWorld's refined t2i stage is the unified stage's image half, G 8
  // (docs/experiments.md); janus_pro_1b_refine_t2i.yaml keeps the paper's.
  for (const char* file : {"refine_t2i.yaml", "refine_mcq.yaml", "refine_oe.yaml"}) {
    EXPECT_DOUBLE_EQ(load(file).grpo.beta, 0.02) << file;
    EXPECT_EQ(load(file).grpo.num_generations, std::string(file) == "refine_t2i.yaml" ? 8 : 16)
        << file;
  }
  EXPECT_DOUBLE_EQ(load("janus_pro_1b_refine_t2i.yaml", {"model.path=/data/x"}).grpo.beta, 0.02);
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
  // 7B: the same step as 1B's, both over 8 ranks, with the memory settings of docs/janus.md.
  const auto seven = load("janus_pro_7b_unified.yaml", {"model.path=/data/Janus-Pro-7B"});
  EXPECT_EQ(groups_per_rank(seven), groups_per_rank(unified));
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

// ULM-R1's released script (mm-vl/ULM-R1 scripts/corl_unified.sh) on its trainer, a subclass of
// transformers 4.49's Trainer whose DataLoader hands each GPU per_device_train_batch_size = 1 row
// (one prompt) per micro-step: torchrun over 8 GPUs, gradient_accumulation_steps 4,
// num_generations 8, so 8 x 4 = 32 prompts and 32 x 8 = 256 images and 256 answers per update.
// One epoch of x2x_rft_22k's 22,479 rows: ceil(22,479 / 8) = 2,810 micro-steps per GPU,
// 2,810 // 4 = 702 updates. learning_rate 4e-6 on TrainingArguments' defaults: linear schedule,
// no warm-up, AdamW betas (0.9, 0.999), weight decay 0, gradient norm clipped at 1. beta 0,
// max_prompt_length 1024, max_completion_length 576, CFG weight 5, lambda 0.8.
TEST(GrpoRecipe, JanusUnifiedRecipesAreUlmR1sScript) {
  const int ranks = 8;
  for (const char* file : {"janus_pro_1b_unified.yaml", "janus_pro_7b_unified.yaml"}) {
    const auto r = load(file, {"model.path=/data/x"});
    const auto& g = r.grpo;
    EXPECT_EQ(groups_per_rank(r) * ranks, 32) << file;
    EXPECT_EQ(g.per_device_train_batch_size * ranks * r.optim.gradient_accumulation_steps, 256)
        << file;
    EXPECT_EQ(g.per_device_train_batch_size, g.num_generations) << file;  // a prompt a micro-step
    EXPECT_EQ(g.num_generations, 8) << file;
    // One epoch: 702 updates over x2x_rft_22k's rows on 8 ranks, as their Trainer counts.
    EXPECT_EQ(g.max_steps, -1) << file;
    EXPECT_DOUBLE_EQ(g.num_train_epochs, 1.0) << file;
    EXPECT_EQ(total_updates(r, 22479, ranks), 702) << file;
    EXPECT_EQ(g.num_iterations, 1) << file;
    EXPECT_DOUBLE_EQ(g.beta, 0.0) << file;
    EXPECT_EQ(g.max_prompt_length, 1024) << file;
    EXPECT_EQ(g.max_completion_length, 576) << file;
    EXPECT_DOUBLE_EQ(g.cfg_weight, 5.0) << file;
    EXPECT_DOUBLE_EQ(g.unify_lambda, 0.8) << file;
    EXPECT_TRUE(g.unify_reward) << file;
    EXPECT_FALSE(g.unify_advantage) << file;
    EXPECT_EQ(r.optim.lr_scheduler_type, "linear") << file;
    EXPECT_EQ(r.optim.warmup_steps, 0) << file;
    EXPECT_DOUBLE_EQ(r.optim.learning_rate, 4e-6) << file;
    EXPECT_DOUBLE_EQ(r.optim.adam_beta1, 0.9) << file;
    EXPECT_DOUBLE_EQ(r.optim.adam_beta2, 0.999) << file;
    EXPECT_DOUBLE_EQ(r.optim.weight_decay, 0.0) << file;
    EXPECT_DOUBLE_EQ(r.optim.max_grad_norm, 1.0) << file;
    EXPECT_EQ(r.training.freeze.size(), 5u) << file;
    EXPECT_EQ(r.train.checkpoint_every, 200) << file;  // save_steps 200
  }
}

// A schedule key that cannot run names itself.
TEST(GrpoRecipe, ScheduleErrorsNameTheKey) {
  EXPECT_NO_THROW(load("", {"optim.lr_scheduler_type=linear", "optim.warmup_steps=3"}));
  try {
    load("", {"optim.lr_scheduler_type=constant", "optim.warmup_steps=3"});
    ADD_FAILURE() << "constant with a warm-up was accepted";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.warmup_steps: 3"), std::string::npos) << e.what();
  }
  try {
    load("", {"optim.lr_scheduler_type=cosine_with_restarts"});
    ADD_FAILURE() << "an unknown schedule was accepted";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.lr_scheduler_type"), std::string::npos) << e.what();
  }
}

// TRL's batch keys (GRPOConfig 1.x): per_device_train_batch_size completions per rank per
// micro-step, gradient_accumulation_steps micro-steps per generation batch (steps_per_generation's
// default), max_steps optimizer updates, num_iterations of them per generation batch. The shipped
// recipes keep the batches they had when per_device_train_batch_size counted groups and max_steps
// generation batches, but for the Janus-Pro unified recipes, which have since taken ULM-R1's
// (JanusUnifiedRecipesAreUlmR1sScript), refine_t2i.yaml, since the unified stage's 16 groups for
// 80 steps, and unified.yaml, since 160 steps. refine_mcq.yaml is back at its 40 batches.
TEST(GrpoRecipe, TrlBatchKeysKeepTheShippedBatches) {
  const std::vector<std::tuple<std::string, int, int>> shipped{
      {"unified.yaml", 16, 160},
      {"refine_t2i.yaml", 16, 80},
      {"refine_mcq.yaml", 8, 40},
      {"refine_oe.yaml", 8, 40},
      {"janus_pro_1b_unified.yaml", 4, 702},
      {"janus_pro_1b_refine_t2i.yaml", 8, 500},
      {"janus_pro_7b_unified.yaml", 4, 702}};
  for (const auto& [file, groups, batches] : shipped) {
    const auto r = load(file, {"model.path=/data/x"});
    EXPECT_EQ(groups_per_rank(r), groups) << file;
    EXPECT_EQ(generation_batches(r, total_updates(r, 22479, 8)), batches) << file;
    EXPECT_EQ(r.grpo.num_iterations, 1) << file;
  }
  // 12 completions a micro-step x 2 micro-steps / G 8 = 3 groups; 6 updates at mu 2 = 3 batches.
  const auto r = load(
      "", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
           "optim.gradient_accumulation_steps=2", "grpo.max_steps=6", "grpo.num_iterations=2"});
  EXPECT_EQ(groups_per_rank(r), 3);
  EXPECT_EQ(total_updates(r, 100, 1), 6);  // max_steps set: the rows do not matter
  EXPECT_EQ(generation_batches(r, 6), 3);
  EXPECT_EQ(generation_batches(r, 7), 4);  // the last batch is trained on once (TRL)
  EXPECT_NO_THROW(load("", {"optim.gradient_accumulation_steps=4", "grpo.steps_per_generation=4"}));
  EXPECT_NO_THROW(check_generation_batch(r, 2));
  const auto sized =
      load("", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
                "optim.gradient_accumulation_steps=2", "grpo.generation_batch_size=48"});
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
  EXPECT_EQ(total_updates(r, 100, 1), 2 * 33 * 2);    // 3 prompts a batch: 33 batches an epoch
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
  // A refined t2i recipe of the old meanings: 2 "groups" of 16 in one micro-step are 2
  // completions, not a group.
  const auto groups =
      message("refine_t2i.yaml", {"grpo.per_device_train_batch_size=2", "grpo.num_generations=16",
                                  "optim.gradient_accumulation_steps=1"});
  EXPECT_NE(groups.find("grpo.per_device_train_batch_size: 2 completions"), std::string::npos)
      << groups;
  EXPECT_NE(groups.find("counts completions, as in TRL, not groups"), std::string::npos) << groups;
  EXPECT_NE(groups.find("P x 16 / 1"), std::string::npos) << groups;
  // An update spanning two generation batches is not built.
  const auto spg =
      message("", {"optim.gradient_accumulation_steps=2", "grpo.steps_per_generation=3"});
  EXPECT_NE(spg.find("grpo.steps_per_generation: 3 is not a multiple"), std::string::npos) << spg;
}

// TRL's steps_per_generation above gradient_accumulation_steps (GRPOConfig and GRPOTrainer 1.x):
// a generation batch of per_device_train_batch_size x ranks x steps_per_generation completions
// (generation_batch_size), trained in steps_per_generation / gradient_accumulation_steps
// optimizer updates a pass, num_iterations passes; an epoch of B generation batches is
// B x steps_per_generation x num_iterations micro-steps, / gradient_accumulation_steps updates.
// Worked by hand: 12 completions a micro-step, G 8, accumulation 2, 4 micro-steps a generation
// batch: 12 x 4 / 8 = 6 groups a rank; 2 updates a pass.
TEST(GrpoRecipe, StepsPerGenerationSpanSeveralUpdates) {
  const std::vector<std::string> keys{
      "grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
      "optim.gradient_accumulation_steps=2", "grpo.steps_per_generation=4"};
  const auto r = load("", keys);
  EXPECT_EQ(steps_per_generation_of(r), 4);
  EXPECT_EQ(groups_per_rank(r), 6);
  EXPECT_EQ(updates_per_generation(r), 2);
  EXPECT_TRUE(needs_old_logprobs(r));  // the second update is off the policy that sampled
  // 100 rows, 1 rank: 6 prompts a batch, 16 batches an epoch; 2 epochs, 2 updates each: 64.
  auto epochs = keys;
  epochs.push_back("grpo.num_train_epochs=2");
  EXPECT_EQ(total_updates(load("", epochs), 100, 1), 64);
  EXPECT_EQ(generation_batches(r, 64), 32);
  EXPECT_EQ(generation_batches(r, 5), 3);  // the last batch trained on the one update left
  // num_iterations 3: 6 updates a generation batch.
  auto mu = keys;
  mu.push_back("grpo.num_iterations=3");
  EXPECT_EQ(updates_per_generation(load("", mu)), 6);
  // generation_batch_size: 12 x 2 ranks x 4 micro-steps = 96 completions.
  auto sized = keys;
  sized.push_back("grpo.generation_batch_size=96");
  EXPECT_NO_THROW(check_generation_batch(load("", sized), 2));
  EXPECT_THROW(check_generation_batch(load("", sized), 1), RecipeError);
  // The default is one update a pass, and no old log-probs are needed for it.
  const auto one = load("", {"grpo.per_device_train_batch_size=12", "grpo.num_generations=8",
                             "optim.gradient_accumulation_steps=2"});
  EXPECT_EQ(updates_per_generation(one), 1);
  EXPECT_FALSE(needs_old_logprobs(one));
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
                .find("no reward scores them (accuracy, format, perception, options or a "
                      "remote reward with task mm2t)"),
            std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[cycel]"}).find("cycel"), std::string::npos);
  EXPECT_NE(message({"grpo.num_generations=1"}).find("grpo.num_generations"), std::string::npos);
  EXPECT_EQ(message({"grpo.unify_reward=false", "grpo.unify_advantage=true"}), "");
  EXPECT_EQ(message({"grpo.unify_reward=false", "grpo.unify_advantage=false"}), "");
  EXPECT_EQ(message({"run.autocast=bf16"}), "");
  EXPECT_NE(message({"run.autocast=fp16"}).find("run.autocast"), std::string::npos);
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

// Remote rewards are named by the recipe: reward.remote.<name>.*, each a reward of its own.
TEST(GrpoRecipe, RemoteRewardsAreNamedSections) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("corl_remote_recipe_" + std::to_string(::getpid()) + ".yaml"))
                               .string();
  std::ofstream(path) << "grpo:\n  reward_funcs: [clip, judge, accuracy]\n"
                         "  reward_weights: [0.5, 1, 1]\n"
                         "reward:\n  remote:\n"
                         "    clip: {url: 'http://127.0.0.1:8001/score', batch_size: 8}\n"
                         "    judge:\n      url: http://127.0.0.1:8000/score\n"
                         "      timeout_s: 5\n      retries: 0\n";
  GrpoRecipe recipe;
  config::Schema schema;
  config::load_recipe(path, {"reward.remote.judge.max_in_flight=2"}, recipe, schema);
  ASSERT_EQ(recipe.reward.remote.size(), 2u);
  const auto& clip = recipe.reward.remote.at("clip");
  EXPECT_EQ(clip.url, "http://127.0.0.1:8001/score");
  EXPECT_EQ(clip.batch_size, 8);
  EXPECT_EQ(clip.task, "t2i");
  EXPECT_EQ(clip.retries, reward::RemoteOptions{}.retries);  // untouched keys keep defaults
  const auto& judge = recipe.reward.remote.at("judge");
  EXPECT_DOUBLE_EQ(judge.timeout_s, 5.0);
  EXPECT_EQ(judge.retries, 0);
  EXPECT_EQ(judge.max_in_flight, 2);
  EXPECT_TRUE(scores_images(recipe, "clip"));
  EXPECT_FALSE(scores_images(recipe, "accuracy"));
  // The resolved recipe (what a run folder keeps) reads back to the same remote rewards.
  std::ofstream(path) << schema.resolved_yaml();
  GrpoRecipe again;
  config::Schema again_schema;
  config::load_recipe(path, {}, again, again_schema);
  EXPECT_EQ(again_schema.resolved_yaml(), schema.resolved_yaml());
  EXPECT_EQ(again.reward.remote.at("judge").max_in_flight, 2);
  // A remote reward given only by --set.
  const auto set =
      load("", {"grpo.reward_funcs=[vlm, geneval, format]",
                "reward.remote.vlm.url=http://10.0.0.2:9000/judge", "reward.remote.vlm.task=mm2t"});
  EXPECT_FALSE(scores_images(set, "vlm"));
  std::remove(path.c_str());
}

TEST(GrpoRecipe, RemoteRewardMistakesNameTheKey) {
  auto message = [](const std::vector<std::string>& overrides) {
    try {
      load("", overrides);
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string judge = "reward.remote.judge.url=http://127.0.0.1:8000/score";
  EXPECT_EQ(message({"grpo.reward_funcs=[judge, accuracy]", "grpo.reward_weights=[1, 1]", judge}),
            "");
  // Named in reward_funcs but defined nowhere: the message says where it would be.
  EXPECT_NE(message({"grpo.reward_funcs=[judge, accuracy]", "grpo.reward_weights=[1, 1]"})
                .find("unknown reward 'judge'"),
            std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[judge, accuracy]", "grpo.reward_weights=[1, 1]"})
                .find("reward.remote.judge.url"),
            std::string::npos);
  EXPECT_NE(message({"grpo.reward_funcs=[judge, accuracy]", "grpo.reward_weights=[1, 1]",
                     "reward.remote.judge.batch_size=4"})
                .find("reward.remote.judge.url: '' is not an http:// or https:// URL"),
            std::string::npos);
  EXPECT_NE(message({"reward.remote.geneval.url=http://127.0.0.1:8000/score"})
                .find("reward.remote.geneval: 'geneval' is a built-in reward's name"),
            std::string::npos);
  EXPECT_NE(
      message({"reward.remote.judge.batch_size=0", judge}).find("reward.remote.judge.batch_size"),
      std::string::npos);
  EXPECT_NE(message({"reward.remote.judge.task=images", judge}).find("one of: t2i, mm2t"),
            std::string::npos);
  EXPECT_NE(message({"reward.remote.judge.urll=http://x/"})
                .find("did you mean 'reward.remote.judge.url'"),
            std::string::npos);
  EXPECT_NE(message({"reward.remote.a.b.url=http://x/"}).find("unknown key"), std::string::npos);
  EXPECT_NE(message({"reward.remote.j!dge.url=http://x/"}).find("letters, digits"),
            std::string::npos);
  // A remote reward scores the task its task key names.
  EXPECT_NE(message({"task=t2i", "grpo.reward_funcs=[judge]", "grpo.reward_weights=[1]", judge,
                     "reward.remote.judge.task=mm2t"})
                .find("'judge' scores answers, but task t2i"),
            std::string::npos);
  EXPECT_EQ(message({"task=t2i", "grpo.reward_funcs=[judge]", "grpo.reward_weights=[1]", judge}),
            "");
}

TEST(RecipeDocs, GrpoKeysAreDocumented) {
  const std::string docs = util::read_file(kRoot + "/docs/recipes.md");
  GrpoRecipe recipe;
  config::Schema schema;
  config::load_recipe(kRoot + "/configs/unified.yaml", {}, recipe, schema);
  for (const auto& field : schema.fields()) {
    EXPECT_NE(docs.find("`" + field->key + "`"), std::string::npos) << field->key;
  }
  // A remote reward's keys, as the table lists them.
  EXPECT_NE(schema.markdown().find("`reward.remote.<name>.url`"), std::string::npos);
  for (const char* key :
       {"url", "task", "timeout_s", "batch_size", "max_in_flight", "retries", "retry_delay_s"}) {
    EXPECT_NE(docs.find(std::string("`reward.remote.<name>.") + key + "`"), std::string::npos)
        << key;
  }
}

}  // namespace
}  // namespace corl::grpo
