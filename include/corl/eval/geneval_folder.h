// GenEval's own file layouts, so that its scorer and corl's judge read the same files:
//
//   prompts  evaluation_metadata.jsonl: one JSON object per line with "prompt" (and GenEval's
//            "tag", "include", ...); or any other file: plain text, one prompt per line
//            (as DPG-Bench and WISE prompts are kept). Blank lines are skipped.
//   images   OUT/<index>/metadata.jsonl   the prompt's metadata line, as written in the file
//            OUT/<index>/samples/<n>.png  its images, n = 0 .. N-1
//            OUT/<index>/grid.png         all N, on request (torchvision's make_grid)
//            index and n zero-padded to five digits, as GenEval's
//            generation/diffusers_generate.py writes them and evaluation/evaluate_images.py
//            reads them.
#pragma once

#include <ATen/core/Generator.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/data/geneval.h"
#include "corl/eval/suites.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"
#include "corl/util/progress.h"

namespace corl::eval {

struct PromptLine {
  std::string prompt;
  std::string metadata;  // the JSON object written to metadata.jsonl
  int line = 0;          // 1-based, for messages
};

// Throws corl::DataError "FILE:LINE: what" for a JSON-lines row that is not an object with a
// string "prompt", and for a file with no prompts.
std::vector<PromptLine> read_prompt_file(const std::string& path);

// "00042": GenEval's folder and sample names.
std::string geneval_index(size_t index);

struct FolderOptions {
  train::ImageJudging sampling;  // images_per_prompt, prompts_per_batch, the sampling options
  bool grid = false;
  int grid_columns = 0;  // images per row of grid.png; 0: all in one row
};

// Samples and writes the folder (creating OUT); returns the number of images written.
size_t write_geneval_folder(train::Policy& policy, const std::vector<PromptLine>& prompts,
                            const FolderOptions& options, at::Generator& generator,
                            const std::string& out, util::Progress* progress = nullptr);

// torchvision.utils.make_grid's layout: `columns` images a row (0: all), 2 black pixels between
// and around them. Images are RGB uint8 of one size.
cv::Mat image_grid(const std::vector<cv::Mat>& images, int columns);

// The suite's prompts as GenEval metadata lines (data::to_geneval_metadata), in suite order: the
// prompt file that makes `corl generate --prompts` sample what `corl eval` samples.
void write_geneval_prompts(const std::vector<GenevalItem>& items, const std::string& path);

// corl's judge on a folder of GenEval's layout whose prompts ask for ShapeWorld's shapes and
// colours: run_geneval's figures, items and grids (the first `grid_prompts` of each category).
// Throws corl::DataError naming the file for a missing or malformed metadata.jsonl, a prompt
// corl cannot judge (a COCO class: GenEval's own scorer judges those) or a prompt without images.
SuiteResult judge_geneval_folder(const std::string& dir, const data::JudgeRules& rules,
                                 int grid_prompts);

}  // namespace corl::eval
