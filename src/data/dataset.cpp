#include "corl/data/dataset.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "corl/data/answers.h"
#include "corl/data/render.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/log.h"
#include "corl/util/strings.h"

namespace corl::data {
namespace fs = std::filesystem;
namespace {

constexpr int kSkipMessages = 5;  // skipped rows whose reason is logged one by one

const nlohmann::json& require(const nlohmann::json& row, const char* field, const std::string& at) {
  auto it = row.find(field);
  if (it == row.end()) throw DataError(at + ": missing field '" + field + "'");
  return *it;
}

std::string require_string(const nlohmann::json& row, const char* field, const std::string& at) {
  const auto& value = require(row, field, at);
  if (!value.is_string()) throw DataError(at + ": field '" + field + "' must be a string");
  return value.get<std::string>();
}

std::string optional_string(const nlohmann::json& row, const char* field, const std::string& at) {
  auto it = row.find(field);
  if (it == row.end() || it->is_null()) return "";
  if (!it->is_string()) throw DataError(at + ": field '" + field + "' must be a string");
  return it->get<std::string>();
}

// The key that makes two samples the same example: what is asked and what is shown.
std::string identity(const Sample& sample) {
  return sample.prompt + "\n" + to_json(sample.scene).dump();
}

std::string image_name(const std::string& split, int index) {
  char name[64];
  std::snprintf(name, sizeof name, "images/%s_%07d.png", split.c_str(), index);
  return name;
}

}  // namespace

Record parse_record(const std::string& line_text, const std::string& file, int line,
                    const std::string& dir, const ReadOptions& options) {
  const std::string at = where(file, line);
  nlohmann::json row;
  try {
    row = nlohmann::json::parse(line_text);
  } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
    throw DataError(at + ": malformed JSON: " + e.what());
  }
  if (!row.is_object()) throw DataError(at + ": a row is a JSON object");

  Record record;
  record.line = line;
  record.id = optional_string(row, "id", at);
  if (record.id.empty()) record.id = std::to_string(line);
  record.prompt = require_string(row, "prompt", at);
  const std::string image = require_string(row, "real_image", at);
  record.qa_problem = require_string(row, "qa_problem", at);
  record.qa_solution = require_string(row, "qa_solution", at);
  record.qa_type = require_string(row, "qa_type", at);
  if (record.qa_type != "MC" && record.qa_type != "OE") {
    throw DataError(at + ": field 'qa_type' must be \"MC\" or \"OE\", got \"" + record.qa_type +
                    "\"");
  }
  // The gold answer as the accuracy reward and the held-out figures read it: a row they could
  // never score as right is an error here, not a silent zero.
  const auto gold = extract_answer(record.qa_solution);
  if (!gold) {
    throw DataError(at + ": field 'qa_solution' has no <answer>...</answer> (or one nested in "
                    "another)");
  }
  if (gold->empty()) {
    throw DataError(at + ": field 'qa_solution' holds no answer inside <answer>...</answer>");
  }
  if (record.qa_type == "MC" && !answers_match(*gold, *gold, /*multiple_choice=*/true)) {
    throw DataError(at + ": field 'qa_solution': the multiple-choice answer '" + *gold +
                    "' is not an option letter (\"B\", \"(B)\", \"B.\")");
  }
  record.category = optional_string(row, "category", at);
  record.question_kind = optional_string(row, "question_kind", at);
  if (auto it = row.find("spec"); it != row.end() && !it->is_null()) {
    record.spec = spec_from_json(*it, at + ": field 'spec'");
  }
  if (auto it = row.find("scene"); it != row.end() && !it->is_null()) {
    record.scene = scene_from_json(*it, at + ": field 'scene'");
  }
  const fs::path image_path =
      fs::path(image).is_absolute() ? fs::path(image) : fs::path(dir) / image;
  record.image_path = image_path.lexically_normal().string();
  if (options.load_images) {
    try {
      record.image = read_image(record.image_path, options.resolution);
    } catch (const DataError& e) {
      throw DataError(at + ": real_image: " + e.what());
    }
  }
  return record;
}

Dataset read_dataset(const std::string& path, const ReadOptions& options) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot read dataset file");
  const std::string dir = fs::path(path).parent_path().string();
  Dataset dataset;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      dataset.records.push_back(parse_record(text, path, line, dir, options));
    } catch (const DataError& e) {
      if (!options.skip_bad_rows) throw;
      if (dataset.skipped++ < kSkipMessages) log::warn(std::string("skipped: ") + e.what());
    }
  }
  if (dataset.skipped > 0) {
    log::warn(path + ": skipped " + std::to_string(dataset.skipped) + " bad rows of " +
              std::to_string(line));
  }
  return dataset;
}

nlohmann::ordered_json to_row(const Sample& sample, const std::string& split,
                              const std::string& image_path) {
  return {{"id", split + "-" + sample.id},
          {"prompt", sample.prompt},
          {"real_image", image_path},
          {"qa_problem", sample.question.problem},
          {"qa_solution", sample.question.solution},
          {"qa_type", sample.question.multiple_choice ? "MC" : "OE"},
          {"category", name(sample.spec.category)},
          {"question_kind", name(sample.question.kind)},
          {"answer", sample.question.answer},
          {"spec", to_json(sample.spec)},
          {"scene", to_json(sample.scene)}};
}

std::uint64_t split_seed(int seed, const std::string& split) {
  // splitmix64 over the seed and a stable hash of the split's name.
  std::uint64_t z =
      static_cast<std::uint64_t>(seed) * 0x9E3779B97F4A7C15ull + util::stable_hash(split);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

WrittenDataset write_world_dataset(const config::WorldRecipe& recipe, const std::string& dir,
                                   const std::function<void()>& on_sample) {
  WorldSpec spec = WorldSpec::from_recipe(recipe);
  spec.prompt_side = PromptSide::kTraining;  // world.held_out_prompts are the benchmarks'
  std::error_code error;
  fs::create_directories(fs::path(dir) / "images", error);
  if (error) throw DataError(dir + ": cannot create dataset folder: " + error.message());

  WrittenDataset written;
  std::unordered_set<std::string> train_identities;
  auto write_split = [&](const std::string& split, int size, bool is_eval) {
    WorldSampler sampler(spec, split_seed(recipe.run.seed, split));
    std::string rows;
    int index = 0;
    while (index < size) {
      Sample sample = sampler.next();
      if (is_eval && train_identities.count(identity(sample))) {
        ++written.eval_duplicates_dropped;
        continue;
      }
      if (!is_eval) train_identities.insert(identity(sample));
      const std::string image = image_name(split, index);
      write_png(render(sample.scene, spec.resolution), (fs::path(dir) / image).string());
      rows += to_row(sample, split, image).dump() + "\n";
      ++index;
      if (on_sample) on_sample();
    }
    // The row file appears whole or not at all: a killed run never leaves a truncated split.
    util::write_file_atomic((fs::path(dir) / (split + ".jsonl")).string(), rows);
  };
  const auto held_out = held_out_captions(spec);
  if (!held_out.empty()) {
    std::vector<std::string> sorted(held_out.begin(), held_out.end());
    std::sort(sorted.begin(), sorted.end());
    std::string list;
    for (const auto& prompt : sorted) list += prompt + "\n";
    util::write_file_atomic((fs::path(dir) / "held_out_prompts.txt").string(), list);
    written.held_out_prompts = static_cast<int>(sorted.size());
  }
  write_split("train", recipe.data.train_size, false);
  written.train = recipe.data.train_size;
  write_split("eval", recipe.data.eval_size, true);
  written.eval = recipe.data.eval_size;
  return written;
}

}  // namespace corl::data
