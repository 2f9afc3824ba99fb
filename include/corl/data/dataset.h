// The JSON-lines dataset format, shared by the rendered ShapeWorld and by real data:
//
//   {"id", "prompt", "real_image", "qa_problem", "qa_solution", "qa_type": "MC"|"OE",
//    "category"?, "question_kind"?, "answer"?, "spec"?, "scene"?}
//
// `real_image` is a path relative to the JSON-lines file; images of any size are resized to the
// model's resolution on reading. ShapeWorld rows carry every optional field, so that each image
// and each answer can be checked.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "corl/config/recipes.h"
#include "corl/data/world.h"

namespace corl::data {

struct Record {
  std::string id;
  std::string prompt;
  std::string image_path;  // as resolved against the file's folder
  cv::Mat image;           // RGB, loaded only when asked for
  std::string qa_problem;
  std::string qa_solution;
  std::string qa_type;  // "MC" or "OE"
  std::string category;
  std::string question_kind;
  std::optional<PromptSpec> spec;
  std::optional<Scene> scene;
  int line = 0;  // 1-based line in the file, for messages
};

struct ReadOptions {
  bool load_images = true;
  int resolution = 64;  // images are resized to this side; 0 keeps them as they are
  // A malformed row, missing field or unreadable image is an error naming the file and line;
  // with this set it is skipped, counted and logged instead.
  bool skip_bad_rows = false;
};

struct Dataset {
  std::vector<Record> records;
  int skipped = 0;
};

// Throws corl::DataError "FILE:LINE: what" for a bad row unless options.skip_bad_rows.
Dataset read_dataset(const std::string& path, const ReadOptions& options);
// One row, parsed and checked; `dir` is the folder image paths are relative to.
Record parse_record(const std::string& line_text, const std::string& file, int line,
                    const std::string& dir, const ReadOptions& options);

// The JSON row of a ShapeWorld sample whose image is stored at `image_path` (relative).
nlohmann::ordered_json to_row(const Sample& sample, const std::string& split,
                              const std::string& image_path);

// Seeds of the two splits, derived from the run's seed so that they never share a stream.
std::uint64_t split_seed(int seed, const std::string& split);

struct WrittenDataset {
  int train = 0;
  int eval = 0;
  int eval_duplicates_dropped = 0;  // eval draws that repeated a train prompt + scene
  int held_out_prompts = 0;         // the benchmarks' prompts, which no row holds
};

// Renders the recipe's world into DIR/train.jsonl, DIR/eval.jsonl and DIR/images/. Eval holds
// no (prompt, scene) pair of train. Neither holds a prompt world.held_out_prompts keeps for the
// benchmarks; those are listed, bare and sorted, in DIR/held_out_prompts.txt when there are any.
// `on_sample` is called after each written sample.
WrittenDataset write_world_dataset(const config::WorldRecipe& recipe, const std::string& dir,
                                   const std::function<void()>& on_sample = {});

}  // namespace corl::data
