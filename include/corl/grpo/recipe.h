// Recipes of the reinforcement-learning stages: `corl train` (the unified stage) and
// `corl refine --task t2i|mcq|oe` (the refined stages). The GRPO keys carry the names of TRL's
// GRPOConfig and of the paper's code, with TRL 1.x's meanings, so every knob is where a
// researcher expects it and means what it means there.
//
// The batch, as TRL counts it: each rank trains on per_device_train_batch_size completions per
// micro-step, gradient_accumulation_steps micro-steps per optimizer update; a generation batch
// (one rollout of the policy, scored and turned into advantages at once) holds
// steps_per_generation micro-steps of every rank (k x gradient_accumulation_steps: k updates a
// pass), whole groups of G completions, and is trained on num_iterations (mu) passes, k x mu
// updates in all; max_steps counts optimizer updates, and the learning-rate
// schedule advances once per update. Prompts are drawn without replacement (grpo/sampler.h);
// with max_steps -1 the stage trains num_train_epochs passes over the rows.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/dist/data_parallel.h"
#include "corl/grpo/advantages.h"
#include "corl/grpo/loss.h"
#include "corl/model/training.h"
#include "corl/ops/group_advantages.h"
#include "corl/reward/remote.h"
#include "corl/reward/reward.h"
#include "corl/rollout/rollout.h"
#include "corl/train/evaluate.h"
#include "corl/train/optimizer.h"

namespace corl::grpo {

// Which rollouts a stage makes and trains on.
enum class Task {
  kUnified,  // both: G images per prompt and G answers per (image, question), one loss
  kT2I,      // images only
  kMM2T,     // answers only (mcq and oe refine on this, each on its own question type)
};

struct GrpoRecipe {
  config::RunSection run{"unified"};
  // Where the policy (and the KL reference) run; rollouts' host data, rewards and the detector
  // stay on the CPU. bf16 autocast runs the policy's matrix products in bfloat16.
  std::string device = "cpu";          // cpu | cuda
  std::string autocast = "none";       // none | bf16
  std::string init = "runs/pretrain";  // checkpoint or run folder the policy starts from
  struct Model {
    std::string path;  // a Hugging Face Janus folder; when set, the policy starts from it
  } model;
  model::TrainingSection training;  // model.freeze, model.gradient_checkpointing
  struct Data {
    std::string train = "runs/data/train.jsonl";
    std::string eval = "runs/data/eval.jsonl";
    std::vector<std::string> qa_types = {"MC", "OE"};  // questions the stage trains on
    bool skip_bad_rows = false;
  } data;
  std::string task = "unified";  // unified | t2i | mm2t
  struct Grpo {
    int num_generations = 8;               // G
    int per_device_train_batch_size = 32;  // completions per rank per micro-step (TRL)
    // Micro-steps per generation batch (a multiple of gradient_accumulation_steps) and that
    // batch's completions over every rank; -1: TRL's defaults, gradient_accumulation_steps and
    // per_device x ranks x steps_per_generation.
    int steps_per_generation = -1;
    int generation_batch_size = -1;
    int max_steps = -1;             // optimizer updates (TRL); -1: num_train_epochs passes
    double num_train_epochs = 3.0;  // passes over the rows when max_steps is -1 (TRL)
    int num_iterations = 1;  // mu: passes over each generation batch
    double beta = 0.0;       // k3 KL weight; a frozen reference is kept only when > 0
    double epsilon = 0.2;
    double epsilon_high = -1.0;           // < 0: epsilon, as TRL's None
    std::string loss_type = "grpo";       // grpo | bnpo | dr_grpo | dapo (grpo/loss.h)
    std::string scale_rewards = "group";  // group | batch | none (Dr.GRPO)
    // sum_then_normalize | normalize_then_sum (GDPO), per task (grpo/advantages.h)
    std::string multi_objective_aggregation = "sum_then_normalize";
    std::string importance_sampling_level = "token";  // token | sequence (GSPO)
    bool mask_truncated_completions = false;          // answers without <eos> leave the loss
    double top_entropy_quantile = 1.0;                // rho: train on the top-rho tokens by entropy
    // Sampler/trainer mismatch: weigh the policy term by the truncated or masked ratio of the
    // trainer's old log-probs to the ones recorded while sampling (TRL vllm_importance_sampling_*).
    bool importance_sampling_correction = false;
    std::string importance_sampling_mode = "sequence_mask";  // token_|sequence_ truncate|mask
    double importance_sampling_cap = 3.0;                    // C_max
    double temperature = 1.0;
    double answer_temperature = 0.0;  // the answers' own; 0: temperature
    int top_k = 0;
    double top_p = 1.0;
    int max_prompt_length = 160;
    int max_completion_length = 64;
    double cfg_weight = 3.0;
    bool logprob_cfg = false;  // image log-probs from the CFG-combined logits they were drawn from
    bool unify_reward = true;  // r = r_t2i + lambda r_mm2t, one shared advantage
    bool unify_advantage = false;  // A = A_t2i + lambda A_mm2t, shared by image i and answer i
    double unify_lambda = 0.8;
    double mm2t_loss_weight = 1.0;  // unified loss = loss_t2i + this x loss_mm2t
    bool dynamic_sampling = false;  // drop groups whose rewards have zero spread
    bool share_prompts = false;     // a group's question read once by the answers' scoring passes
    std::vector<std::string> reward_funcs = {"geneval", "accuracy", "format"};
    std::vector<double> reward_weights = {1.0, 1.0, 0.5};
    int caption_max_tokens = 32;  // the cycle reward's captions
    int max_bad_steps = 5;        // non-finite steps in a row before the run stops
  } grpo;
  train::OptimizerSection optim{1e-4, 0, 1.0, 0.0, 0.9, 0.99, 1.0, 1};
  struct Reward {
    std::string cycle_text = "f1";
    std::string cycle_image = "rmse";
    bool geneval_partial = true;
    double position_margin = 0.1;
    bool exclusive = true;
    // Rewards scored by servers (reward/remote.h), by the name reward_funcs gives them.
    std::map<std::string, reward::RemoteOptions> remote;
  } reward;
  struct Train {
    int checkpoint_every = 25;
  } train;
  train::EvalSection eval{300, 300, 3.0, 1.0, 96, 50, 0.1, true};
  dist::DistSection dist;
};

void bind(config::Schema& schema, GrpoRecipe& recipe);
void validate(const GrpoRecipe& recipe);

// Micro-steps per generation batch: steps_per_generation, or gradient_accumulation_steps when
// it is -1 (TRL's default). validate() makes it a multiple k of gradient_accumulation_steps.
int steps_per_generation_of(const GrpoRecipe& recipe);
// k: optimizer updates in one pass over a generation batch, steps_per_generation /
// gradient_accumulation_steps.
int updates_per_pass(const GrpoRecipe& recipe);
// Optimizer updates per generation batch: k x num_iterations. TRL's order: update j trains on
// the generation batch's micro-batches j mod k (each of gradient_accumulation_steps
// micro-steps), so mu passes go over the whole batch one after another.
int updates_per_generation(const GrpoRecipe& recipe);
// Groups (prompts, unified samples) each rank rolls out per generation batch:
// per_device_train_batch_size x steps_per_generation / G.
int groups_per_rank(const GrpoRecipe& recipe);
// Optimizer updates the stage makes over `rows` training rows on `world_size` ranks: max_steps,
// or, when it is -1, ceil(num_train_epochs x generation batches per epoch x updates per
// generation batch) (TRL's). A RecipeError when that is no update at all.
int total_updates(const GrpoRecipe& recipe, size_t rows, int world_size);
// Generation batches (rollout steps) that `updates` optimizer updates take:
// ceil(updates / updates_per_generation); the last is trained on the updates left (TRL).
int generation_batches(const GrpoRecipe& recipe, int updates);
// generation_batch_size, when the recipe sets it, against `world_size` ranks: a RecipeError
// unless it is the batch the other keys make.
void check_generation_batch(const GrpoRecipe& recipe, int world_size);

// The folder the policy (and its KL reference) starts from: model.path when set, else init.
const std::string& start_from(const GrpoRecipe& recipe);

Task task_of(const GrpoRecipe& recipe);
LossType loss_type_of(const GrpoRecipe& recipe);
ops::RewardScale reward_scale_of(const GrpoRecipe& recipe);
RewardAggregation reward_aggregation_of(const GrpoRecipe& recipe);
// The trainer needs its old log-probs before the first update: more than one update per
// generation batch (mu > 1, or steps_per_generation > gradient_accumulation_steps, as TRL), the
// sampler/trainer correction, or the entropy mask (whose entropies come from the same pass).
bool needs_old_logprobs(const GrpoRecipe& recipe);
// unify_reward wins over unify_advantage; both false: each task its own advantage.
UnifiedAdvantage unified_advantage_of(const GrpoRecipe& recipe);
// epsilon_high, or epsilon when the recipe leaves it unset (TRL's rule).
double epsilon_high_of(const GrpoRecipe& recipe);
reward::RewardOptions reward_options_of(const GrpoRecipe& recipe);
// How images are rolled out and scored; answers the same at answer_temperature_of.
rollout::RolloutOptions rollout_options_of(const GrpoRecipe& recipe);
double answer_temperature_of(const GrpoRecipe& recipe);  // answer_temperature, else temperature
bool makes_images(const GrpoRecipe& recipe);
// Whether reward `name` of reward_funcs scores images: a built-in image reward, or a remote one
// with task t2i.
bool scores_images(const GrpoRecipe& recipe, const std::string& name);
// Where this rank's policy runs: the CPU, or for run.device cuda the GPU its LOCAL_RANK names
// (torchrun's layout, one GPU per local rank), of `visible_gpus`. A UsageError when there is no
// such GPU.
torch::Device policy_device(const GrpoRecipe& recipe, int local_rank, int visible_gpus);
bool makes_answers(const GrpoRecipe& recipe);

}  // namespace corl::grpo
