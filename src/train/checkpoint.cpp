#include "corl/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "corl/model/janus_hf.h"   // defines: load_janus_hf, save_janus_hf, is_janus_hf_folder
#include "corl/train/optimizer.h"  // defines: move_optimizer_state
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/safetensors.h"

namespace corl::train {
namespace fs = std::filesystem;
namespace {

void copy_file(const std::string& from, const fs::path& to) {
  std::error_code error;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) throw DataError(from + ": cannot copy into checkpoint: " + error.message());
}

void require_file(const fs::path& path) {
  if (!fs::is_regular_file(path)) throw DataError(path.string() + ": missing checkpoint file");
}

// The files of a Hugging Face folder that are not weights or config.json.
constexpr const char* kHFTextFiles[] = {"tokenizer.json",          "tokenizer_config.json",
                                        "special_tokens_map.json", "preprocessor_config.json",
                                        "processor_config.json",   "generation_config.json"};

Policy load_hf_policy(const std::string& dir) {
  Policy policy;
  policy.dir = dir;
  policy.hf = true;
  auto hf = model::load_janus_hf(dir);
  policy.model = hf.model;
  policy.vq = hf.vq;
  policy.image_token_id = hf.config.image_token_id;
  const fs::path folder(dir);
  require_file(folder / "tokenizer.json");
  policy.text = std::make_shared<tokenize::TextTokenizer>((folder / "tokenizer.json").string());
  if (policy.text->vocab_size() > policy.model->config.vocab_size) {
    throw DataError(dir + ": tokenizer.json has " + std::to_string(policy.text->vocab_size()) +
                    " tokens, more than the model's " +
                    std::to_string(policy.model->config.vocab_size));
  }
  if (policy.image_token_id >= 0 &&
      policy.text->piece_id("<image_placeholder>") != policy.image_token_id) {
    throw DataError(dir + ": config.json's image_token_id is not <image_placeholder>'s id");
  }
  // The rollouts feed the ViT images scaled to [-1, 1] at its size; a checkpoint whose
  // preprocessing differs would be fed the wrong pixels.
  if (fs::is_regular_file(folder / "preprocessor_config.json")) {
    const auto processor =
        model::image_processor_from_file((folder / "preprocessor_config.json").string());
    if (!processor.is_unit_range(policy.model->config.image_size)) {
      throw DataError((folder / "preprocessor_config.json").string() +
                      ": corl feeds images rescaled to [-1, 1] (mean = std = 0.5) at " +
                      std::to_string(policy.model->config.image_size) +
                      " pixels; this preprocessing differs");
    }
  }
  policy.trainer = nlohmann::json::object();
  if (fs::is_regular_file(folder / "trainer.json")) {
    try {
      policy.trainer = nlohmann::json::parse(util::read_file((folder / "trainer.json").string()));
    } catch (const nlohmann::json::exception& e) {
      throw DataError((folder / "trainer.json").string() + ": malformed JSON: " + e.what());
    }
  }
  return policy;
}

// A stage started from a Hugging Face folder checkpoints in that layout, under transformers'
// names; read back through the model they describe, its weights land in `model` by ours.
void load_hf_weights(const std::string& dir, torch::nn::Module& model) {
  const auto hf = model::load_janus_hf(dir);
  const auto from = hf.model->named_parameters();
  const auto from_buffers = hf.model->named_buffers();
  torch::NoGradGuard no_grad;
  auto copy = [&](const torch::OrderedDict<std::string, torch::Tensor>& source,
                  torch::OrderedDict<std::string, torch::Tensor> target) {
    for (auto& item : target) {
      const torch::Tensor* value = source.find(item.key());
      if (value == nullptr || value->sizes() != item.value().sizes()) {
        throw DataError(dir + ": does not hold the policy's " + item.key());
      }
      item.value().copy_(*value);
    }
  };
  copy(from, model.named_parameters());
  copy(from_buffers, model.named_buffers());
}

}  // namespace

CheckpointSources checkpoint_sources(const Policy& policy) {
  CheckpointSources sources;
  if (policy.hf) {
    sources.hf = true;
    sources.hf_folder = policy.dir;
    sources.vq_model = policy.vq;
    sources.image_token_id = policy.image_token_id;
  } else {
    sources.text_model = policy.dir + "/text.model";
    sources.vq = policy.dir + "/vq.safetensors";
  }
  return sources;
}

void save_checkpoint(const std::string& dir, model::UnifiedModel& model,
                     const CheckpointSources& sources, const nlohmann::json& trainer,
                     torch::optim::Optimizer* optimizer) {
  const fs::path target(dir);
  const fs::path temp = target.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code error;
  util::remove_tree(temp.string());
  fs::create_directories(temp, error);
  if (error)
    throw DataError(temp.string() + ": cannot create checkpoint folder: " + error.message());

  if (sources.hf) {
    auto vq = sources.vq_model;
    model::save_janus_hf(temp.string(), model, vq, sources.image_token_id);
    for (const char* name : kHFTextFiles) {
      const fs::path from = fs::path(sources.hf_folder) / name;
      if (fs::is_regular_file(from)) copy_file(from.string(), temp / name);
    }
  } else {
    util::save_module(
        *model, (temp / "model.safetensors").string(),
        {{"format", "corl-ulm"}, {"model_config", model::to_json(model->config).dump()}});
    copy_file(sources.text_model, temp / "text.model");
    copy_file(sources.vq, temp / "vq.safetensors");
  }
  if (optimizer) torch::save(*optimizer, (temp / "optimizer.pt").string());
  util::write_file_atomic((temp / "trainer.json").string(), trainer.dump(2) + "\n");

  // Swap the finished folder into place; an older one of the same name goes only after.
  const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
  const bool existed = fs::exists(target);
  if (existed) fs::rename(target, old);
  fs::rename(temp, target, error);
  if (error) throw DataError(dir + ": cannot move checkpoint into place: " + error.message());
  if (existed) util::remove_tree(old.string());
}

std::string step_checkpoint(const std::string& run_dir, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08d", step);
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const fs::path folder = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(folder)) return std::nullopt;
  std::vector<std::string> steps;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 &&
        name.find('.') == std::string::npos) {
      steps.push_back(name);
    }
  }
  if (steps.empty()) return std::nullopt;
  // step-NNNNNNNN names are zero-padded: the last in order is the latest.
  return (folder / *std::max_element(steps.begin(), steps.end())).string();
}

util::RunDir open_training_run(const std::string& path, const std::string& resolved_recipe,
                               bool writer, bool resume) {
  if (writer && !resume) {
    const auto earlier = [&](const std::string& what) {
      throw DataError(path + " holds an earlier run (" + what +
                      "); --resume goes on from it, or --out names a new folder");
    };
    if (auto latest = latest_checkpoint(path)) earlier(*latest);
    const fs::path final_dir = fs::path(path) / "final";
    if (fs::exists(final_dir)) earlier(final_dir.string());
  }
  return util::RunDir(path, resolved_recipe, writer,
                      resume ? util::RunDir::Metrics::kAppend : util::RunDir::Metrics::kReplace);
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  if (model::is_janus_hf_folder(path)) return p.string();
  if (fs::is_regular_file(p / "model.safetensors")) return p.string();
  if (fs::is_regular_file(p / "final" / "model.safetensors") ||
      model::is_janus_hf_folder((p / "final").string())) {
    return (p / "final").string();
  }
  if (auto latest = latest_checkpoint(path)) return *latest;
  throw DataError(path + ": not a checkpoint, and no final/ or checkpoints/step-N inside");
}

Policy load_policy(const std::string& path) {
  Policy policy;
  policy.dir = resolve_checkpoint(path);
  if (model::is_janus_hf_folder(policy.dir)) return load_hf_policy(policy.dir);
  const fs::path dir(policy.dir);
  for (const char* name : {"model.safetensors", "text.model", "vq.safetensors", "trainer.json"}) {
    require_file(dir / name);
  }
  const auto metadata = util::read_metadata((dir / "model.safetensors").string());
  auto it = metadata.find("model_config");
  if (it == metadata.end()) {
    throw DataError((dir / "model.safetensors").string() + ": no model_config in its metadata");
  }
  nlohmann::json config_json;
  try {
    config_json = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw DataError((dir / "model.safetensors").string() + ": malformed model_config: " + e.what());
  }
  policy.model = model::UnifiedModel(
      model::model_config_from_json(config_json, (dir / "model.safetensors").string()));
  util::load_module(*policy.model, (dir / "model.safetensors").string());
  policy.model->eval();
  policy.text = std::make_shared<tokenize::TextTokenizer>((dir / "text.model").string());
  if (policy.text->vocab_size() != policy.model->config.vocab_size) {
    throw DataError(policy.dir + ": text.model has " + std::to_string(policy.text->vocab_size()) +
                    " pieces, the model " + std::to_string(policy.model->config.vocab_size));
  }
  policy.vq = tokenize::load_vq((dir / "vq.safetensors").string());
  policy.vq->eval();
  if (policy.vq->config.codebook_size != policy.model->config.image_vocab_size ||
      policy.vq->config.tokens() != policy.model->config.image_tokens) {
    throw DataError(policy.dir + ": vq.safetensors does not match the model's image vocabulary");
  }
  try {
    policy.trainer = nlohmann::json::parse(util::read_file((dir / "trainer.json").string()));
  } catch (const nlohmann::json::exception& e) {
    throw DataError((dir / "trainer.json").string() + ": malformed JSON: " + e.what());
  }
  return policy;
}

void load_optimizer(const std::string& checkpoint, torch::optim::Optimizer& optimizer) {
  const fs::path path = fs::path(checkpoint) / "optimizer.pt";
  require_file(path);
  try {
    torch::load(optimizer, path.string());
  } catch (const c10::Error& e) {
    throw DataError(path.string() +
                    ": cannot restore optimizer state: " + e.what_without_backtrace());
  }
  // The state is matched to the parameters by position: a run that trains other parameters
  // (model.freeze changed) or other shapes must not take moments of the wrong tensors.
  int64_t index = 0;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      auto it = optimizer.state().find(p.unsafeGetTensorImpl());
      if (it != optimizer.state().end()) {
        const auto* s = dynamic_cast<const torch::optim::AdamWParamState*>(it->second.get());
        if (s != nullptr && s->exp_avg().sizes() != p.sizes()) {
          throw DataError(path.string() + ": holds AdamW moments of shape " +
                          c10::str(s->exp_avg().sizes()) + " for trained parameter " +
                          std::to_string(index) + ", which has shape " + c10::str(p.sizes()) +
                          ": it was written for another set of trained parameters (model.freeze "
                          "or the model's sizes differ)");
        }
      }
      ++index;
    }
  }
}

namespace {

// What killed writers of checkpoints leave: save_checkpoint's NAME.tmp-PID (half-written) and
// NAME.old-PID (a replaced folder not yet removed) under checkpoints/ and beside final/.
void remove_stale_temporaries(const std::string& run_dir) {
  for (const fs::path folder : {fs::path(run_dir), fs::path(run_dir) / "checkpoints"}) {
    std::error_code error;
    if (!fs::is_directory(folder, error)) continue;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(folder, error)) {
      const std::string name = entry.path().filename().string();
      if (name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos) {
        stale.push_back(entry.path());
      }
    }
    for (const auto& path : stale) util::remove_tree(path.string());
  }
}

}  // namespace

std::optional<ResumePoint> resume_latest(util::RunDir& run, torch::nn::Module& model,
                                         torch::optim::Optimizer& optimizer,
                                         bool with_optimizer_state) {
  if (run.writer()) remove_stale_temporaries(run.path());
  const auto latest = latest_checkpoint(run.path());
  if (!latest) {
    run.drop_metrics_after(0);
    return std::nullopt;
  }
  ResumePoint point;
  point.checkpoint = *latest;
  const fs::path dir(*latest);
  require_file(dir / "trainer.json");
  try {
    point.trainer = nlohmann::json::parse(util::read_file((dir / "trainer.json").string()));
    point.step = point.trainer.at("step").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError((dir / "trainer.json").string() + ": no step to resume from: " + e.what());
  }
  if (model::is_janus_hf_folder(*latest)) {
    load_hf_weights(*latest, model);
  } else {
    util::load_module(model, (dir / "model.safetensors").string());
  }
  if (with_optimizer_state) {
    load_optimizer(*latest, optimizer);
    const auto parameters = model.parameters();
    if (!parameters.empty()) move_optimizer_state(optimizer, parameters.front().device());
  }
  run.drop_metrics_after(point.step);
  return point;
}

}  // namespace corl::train
