#include "corl/eval/geneval_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "corl/data/detect.h"
#include "corl/data/render.h"
#include "corl/model/inputs.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/strings.h"

namespace corl::eval {
namespace fs = std::filesystem;
namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return c >= '0' && c <= '9'; });
}

// Entries of `dir` named <digits><suffix>, in numeric order (GenEval's names are zero-padded, but
// a folder written by hand may not be).
std::vector<fs::path> numbered(const fs::path& dir, const std::string& suffix, bool folders) {
  std::vector<std::pair<unsigned long long, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string stem = name.substr(0, name.size() - suffix.size());
    if (!all_digits(stem) || entry.is_directory() != folders) continue;
    found.emplace_back(std::stoull(stem), entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> paths;
  paths.reserve(found.size());
  for (auto& [index, path] : found) paths.push_back(std::move(path));
  return paths;
}

// Why a folder's prompt is refused, and where to take it instead.
DataError refused(const std::string& metadata_path, const std::string& why) {
  return DataError(metadata_path + ": " + why +
                   "; corl's judge reads ShapeWorld prompts only (score this folder with "
                   "GenEval's evaluation/evaluate_images.py)");
}

}  // namespace

std::vector<PromptLine> read_prompt_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot read prompt file");
  const bool json_lines = fs::path(path).extension() == ".jsonl";
  std::vector<PromptLine> prompts;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    text = util::trim(text);
    if (text.empty()) continue;
    PromptLine prompt;
    prompt.line = line;
    if (!json_lines) {
      prompt.prompt = text;
      prompt.metadata = nlohmann::json{{"prompt", text}}.dump();
      prompts.push_back(std::move(prompt));
      continue;
    }
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
      throw DataError(where(path, line) + ": malformed JSON: " + e.what());
    }
    if (!row.is_object()) throw DataError(where(path, line) + ": a row is a JSON object");
    const auto it = row.find("prompt");
    if (it == row.end() || !it->is_string()) {
      throw DataError(where(path, line) + ": field 'prompt' must be a string");
    }
    prompt.prompt = it->get<std::string>();
    prompt.metadata = text;  // GenEval copies the line's object as it is
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) throw DataError(path + ": no prompts");
  return prompts;
}

std::string geneval_index(size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%05zu", index);
  return name;
}

cv::Mat image_grid(const std::vector<cv::Mat>& images, int columns) {
  constexpr int kPadding = 2;
  if (images.empty()) return {};
  const int n = static_cast<int>(images.size());
  const int across = columns > 0 ? std::min(columns, n) : n;
  const int down = (n + across - 1) / across;
  const int height = images.front().rows + kPadding;
  const int width = images.front().cols + kPadding;
  cv::Mat grid(down * height + kPadding, across * width + kPadding, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int k = 0; k < n; ++k) {
    const cv::Rect cell((k % across) * width + kPadding, (k / across) * height + kPadding,
                        width - kPadding, height - kPadding);
    images[k].copyTo(grid(cell));
  }
  return grid;
}

size_t write_geneval_folder(train::Policy& policy, const std::vector<PromptLine>& prompts,
                            const FolderOptions& options, at::Generator& generator,
                            const std::string& out, util::Progress* progress) {
  const model::SequenceBuilder builder(*policy.text, policy.model->config);
  std::vector<std::string> texts;
  texts.reserve(prompts.size());
  for (const auto& p : prompts) texts.push_back(p.prompt);
  size_t written = 0;
  train::sample_images(
      policy.model, builder, policy.vq, texts, options.sampling, generator,
      [&](size_t i, std::vector<cv::Mat>& images) {
        const fs::path folder = fs::path(out) / geneval_index(i);
        fs::create_directories(folder / "samples");
        // json.dump's output in GenEval's script: the object, no newline.
        util::write_file_atomic((folder / "metadata.jsonl").string(), prompts[i].metadata);
        for (size_t n = 0; n < images.size(); ++n) {
          data::write_png(images[n], (folder / "samples" / (geneval_index(n) + ".png")).string());
          ++written;
        }
        if (options.grid) {
          data::write_png(image_grid(images, options.grid_columns), (folder / "grid.png").string());
        }
      },
      progress);
  return written;
}

void write_geneval_prompts(const std::vector<GenevalItem>& items, const std::string& path) {
  std::string lines;
  for (const auto& item : items) {
    lines += data::to_geneval_metadata(item.spec, item.prompt).dump() + "\n";
  }
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  util::write_file_atomic(path, lines);
}

SuiteResult judge_geneval_folder(const std::string& dir, const data::JudgeRules& rules,
                                 int grid_prompts) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) throw DataError(dir + ": not a folder of images");
  const auto folders = numbered(dir, "", true);
  if (folders.empty()) {
    throw DataError(dir + ": no numbered prompt folders (GenEval's layout: " + dir +
                    "/00000/metadata.jsonl and samples/00000.png)");
  }
  std::map<std::string, std::vector<double>> by_category;  // per-prompt accuracies
  std::map<std::string, int> shown;
  SuiteResult result;
  size_t images = 0;
  for (const auto& folder : folders) {
    const std::string metadata_path = (folder / "metadata.jsonl").string();
    std::ifstream in(metadata_path);
    if (!in) throw DataError(metadata_path + ": cannot read the prompt's metadata");
    nlohmann::json metadata;
    try {
      metadata = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
      throw DataError(metadata_path + ": malformed JSON: " + e.what());
    }
    std::string why;
    const auto spec = data::spec_from_geneval(metadata, metadata_path, why);
    if (!spec) {
      throw refused(metadata_path, why);
    }
    const auto prompt = metadata.find("prompt");
    if (prompt == metadata.end() || !prompt->is_string()) {
      throw DataError(metadata_path + ": field 'prompt' must be a string");
    }
    const fs::path samples = folder / "samples";
    const auto files = fs::is_directory(samples, error) ? numbered(samples, ".png", false)
                                                        : std::vector<fs::path>{};
    if (files.empty()) throw DataError(samples.string() + ": no images (<n>.png)");
    std::vector<train::JudgedImage> judged;
    int correct = 0;
    for (const auto& file : files) {
      const cv::Mat image = data::read_image(file.string(), 0);
      const auto judgement = data::judge(*spec, data::detect(image), rules);
      correct += judgement.correct;
      judged.push_back({image, judgement.correct, judgement.reason});
    }
    images += files.size();
    const std::string category = data::name(spec->category);
    by_category[category].push_back(static_cast<double>(correct) /
                                    static_cast<double>(files.size()));
    if (shown[category]++ < grid_prompts) {
      result.grids.push_back({category, prompt->get<std::string>(), std::move(judged)});
    }
  }
  result.figures = geneval_figures(by_category, images);
  result.items = by_category;
  return result;
}

}  // namespace corl::eval
