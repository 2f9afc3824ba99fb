// results.json and report.html: the figures of every checkpoint on every suite, and a page a
// person reads offline — the paper-style table (best in bold, each figure with its standard
// error), judged image grids per category, sample answers and the training curves of the runs
// behind the checkpoints (plotted by the recipe's plotting script).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "corl/eval/suites.h"

namespace corl::eval {

struct CheckpointResults {
  std::string name;     // the row's label: the run folder's name
  std::string path;     // the checkpoint as given
  std::string run_dir;  // the run that made it, when its metrics.jsonl is found
  std::map<std::string, SuiteResult> suites;  // geneval, mcq, oe
};

// The name a checkpoint path goes by: runs/unified/final -> "unified".
std::string checkpoint_name(const std::string& path);
// The run folder whose metrics.jsonl lies behind a checkpoint, or "".
std::string run_of(const std::string& checkpoint);

// Writes OUT/results.json, OUT/report.html, OUT/images/ and OUT/plots/.
void write_report(const std::string& out, const std::vector<CheckpointResults>& results,
                  const EvalRecipe& recipe);

}  // namespace corl::eval
