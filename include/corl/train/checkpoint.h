// Checkpoints: a folder that holds everything a policy needs to run and a trainer needs to go on.
//
//   model.safetensors   the unified model (its config in the metadata, "model_config")
//   text.model          the text tokenizer it was trained with
//   vq.safetensors      the image tokenizer it was trained with
//   trainer.json        step and the trainer's own figures
//   optimizer.pt        optimizer state (training checkpoints only)
//
// A policy started from a Hugging Face Janus folder (model/janus_hf.h) keeps that layout instead:
// config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// preprocessor_config.json, plus trainer.json and optimizer.pt; transformers loads it as is.
//
// A folder is written under a temporary name and renamed into place, so a killed run leaves
// either the whole checkpoint or none.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "corl/model/ulm.h"
#include "corl/tokenize/text_tokenizer.h"
#include "corl/tokenize/vq.h"
#include "corl/util/run_dir.h"

namespace corl::train {

struct Policy {
  model::UnifiedModel model{nullptr};
  std::shared_ptr<tokenize::TextTokenizer> text;
  tokenize::VQModel vq{nullptr};
  nlohmann::json trainer;  // trainer.json
  std::string dir;
  bool hf = false;              // read from a Hugging Face Janus folder
  int64_t image_token_id = -1;  // config.json's image_token_id (hf only)
};

struct CheckpointSources {
  std::string text_model;  // file to copy as text.model
  std::string vq;          // file to copy as vq.safetensors
  // Hugging Face layout: the VQ's weights go into model.safetensors, and the tokenizer and
  // preprocessor files are copied from hf_folder.
  bool hf = false;
  std::string hf_folder;
  tokenize::VQModel vq_model{nullptr};
  int64_t image_token_id = -1;
};

// What a checkpoint of a run that started from `policy` carries along.
CheckpointSources checkpoint_sources(const Policy& policy);

void save_checkpoint(const std::string& dir, model::UnifiedModel& model,
                     const CheckpointSources& sources, const nlohmann::json& trainer,
                     torch::optim::Optimizer* optimizer = nullptr);

// `path` is a checkpoint folder, or a run folder: its final/ checkpoint, else its latest
// checkpoints/step-N. Throws corl::DataError naming the path when there is none or a file of it
// is missing or does not match. A Hugging Face Janus folder resolves to itself.
std::string resolve_checkpoint(const std::string& path);
Policy load_policy(const std::string& path);
// RUN/checkpoints/step-NNNNNNNN: where a run keeps the checkpoint of `step`.
std::string step_checkpoint(const std::string& run_dir, int step);
// The latest checkpoints/step-N of a run folder.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
// The folder of a training run (pretraining, a GRPO stage). A resumed run keeps what is there and
// appends to its metrics.jsonl. A new run refuses a folder that holds an earlier run's
// checkpoints/step-N or final/ (it would overwrite them one by one, and a later --resume could go
// on from the earlier run's step), throwing corl::DataError naming what is there before anything
// is written, and starts metrics.jsonl anew. `writer` as for util::RunDir (only the writer checks).
util::RunDir open_training_run(const std::string& path, const std::string& resolved_recipe,
                               bool writer, bool resume);
// Restores optimizer state saved by save_checkpoint.
void load_optimizer(const std::string& checkpoint, torch::optim::Optimizer& optimizer);

// Where a resumed run goes on from.
struct ResumePoint {
  std::string checkpoint;  // RUN/checkpoints/step-N
  int step = 0;            // N, the optimizer steps it holds
  nlohmann::json trainer;  // its trainer.json, with the trainer's own figures
};

// The one resume of every trainer (pretraining and the GRPO stages): restores `model`'s weights
// and `optimizer`'s state (on the device of the model's parameters) from the run's latest
// checkpoints/step-N, and drops the metrics.jsonl lines of steps after N (RunDir::
// drop_metrics_after), so that each step is logged once although a killed run logged some past
// its checkpoint. Without a checkpoint it returns nullopt, having dropped every line of a step:
// the run starts again from step 0. First it removes what killed checkpoint writers left behind
// (NAME.tmp-PID and NAME.old-PID folders). Throws corl::DataError naming the file that is
// missing or does not match.
// With with_optimizer_state false the optimizer state is left for the caller to read with
// load_optimizer (a sharded optimizer, dist/zero.h, reads it one rank at a time).
std::optional<ResumePoint> resume_latest(util::RunDir& run, torch::nn::Module& model,
                                         torch::optim::Optimizer& optimizer,
                                         bool with_optimizer_state = true);

}  // namespace corl::train
