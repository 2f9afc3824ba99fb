// The typed recipes of every `corl` command, with their defaults. Each recipe binds its fields
// to a Schema (keys, types, ranges, documentation) in recipes.cpp; docs/recipes.md lists them.
#pragma once

#include <string>
#include <vector>

#include "corl/config/schema.h"

namespace corl::config {

// Settings every run shares.
struct RunSection {
  std::string name;  // run folder is runs/NAME unless --out is given
  int threads = 2;   // LibTorch and OpenCV intra-op threads
  int seed = 1234;
};

// configs/world.yaml: the embedded ShapeWorld and the dataset rendered from it.
struct WorldRecipe {
  RunSection run{"data"};
  struct World {
    int resolution = 64;
    std::vector<std::string> shapes = {"circle", "square", "triangle", "diamond"};
    std::vector<std::string> colors = {"red", "green", "blue", "yellow", "purple", "orange"};
    double min_size = 0.09;
    double max_size = 0.16;
    int max_objects = 4;           // counting prompts ask for 2..max_objects
    double min_gap = 0.04;         // smallest gap between two objects' boxes, image-relative
    double position_margin = 0.1;  // centres differ by more than this along a relation's axis
    // Shares of counting and position prompts that also name their objects' colours ("three red
    // squares", "a red circle left of a blue square"): compositions GenEval's prompts never make.
    double colored_counts = 0.0;
    double colored_relations = 0.0;
    // Words every text-to-image prompt starts with; empty: the bare description.
    std::string prompt_prefix = "a photo of";
    std::vector<std::string> categories = {"single_object", "two_object", "counting",
                                           "colors",        "position",   "color_attr"};
    // How often `corl data` draws each of `categories`, relative to the others (one weight per
    // category, in its order; 0: never an RL row; empty: equally often). The suites ignore it.
    std::vector<double> category_weights;
    // Share of each category's prompts kept for the benchmarks: `corl data` never draws them,
    // `corl eval`'s GenEval suite draws only them. 0: every prompt everywhere.
    double held_out_prompts = 0.0;
  } world;
  struct Questions {
    std::vector<std::string> types = {"count", "color", "shape", "position", "existence"};
    // How often each of `types` is asked, relative to the others (empty: equally often).
    std::vector<double> weights;
    double mc_fraction = 0.5;  // share of multiple-choice questions; the rest are open-ended
    // "standard": one wording per kind ("How many squares are there in the image?"); "reworded":
    // each question in one of two or three other wordings of the same ask, drawn at random.
    std::string phrasing = "standard";
    int num_options = 4;       // options of a multiple-choice question (A..F at most)
  } questions;
  struct Data {
    int train_size = 20000;
    int eval_size = 2000;
  } data;
};

void bind(Schema& schema, RunSection& run);
void bind(Schema& schema, WorldRecipe& recipe);

// Cross-field checks that a single key's range cannot express (min_size <= max_size, ...).
void validate(const WorldRecipe& recipe);

}  // namespace corl::config
