#include "corl/config/recipes.h"

#include "corl/util/error.h"

namespace corl::config {
namespace {

const std::vector<std::string> kShapes = {"circle", "square", "triangle", "diamond", "cross"};
const std::vector<std::string> kColors = {"red",    "green",  "blue", "yellow",
                                          "purple", "orange", "cyan", "white"};
const std::vector<std::string> kCategories = {"single_object", "two_object", "counting",
                                              "colors",        "position",   "color_attr"};
const std::vector<std::string> kQuestionTypes = {"count", "color", "shape", "position",
                                                 "existence"};

}  // namespace

void bind(Schema& s, RunSection& run) {
  s.add("run.name", &run.name,
        "Run folder name: the run writes to runs/NAME unless --out is given");
  s.add("run.threads", &run.threads, "Intra-op threads of LibTorch and OpenCV").range(1, 256);
  s.add("run.seed", &run.seed, "Seed of every random choice of the run").range(0, 2147483647);
}

void bind(Schema& s, WorldRecipe& r) {
  bind(s, r.run);
  auto& w = r.world;
  s.add("world.resolution", &w.resolution, "Image side in pixels").range(16, 1024);
  s.add("world.shapes", &w.shapes, "Shapes the world draws from").choices(kShapes).min_items(1);
  s.add("world.colors", &w.colors, "Colours the world draws from (on a black background)")
      .choices(kColors)
      .min_items(1);
  s.add("world.min_size", &w.min_size, "Smallest half-side of an object, image-relative")
      .range(0.02, 0.4);
  s.add("world.max_size", &w.max_size, "Largest half-side of an object, image-relative")
      .range(0.02, 0.4);
  s.add("world.max_objects", &w.max_objects, "Most objects in a scene (counting asks 2..this)")
      .range(2, 5);
  s.add("world.min_gap", &w.min_gap, "Smallest gap between two objects' boxes, image-relative")
      .range(0.0, 0.3);
  s.add("world.position_margin", &w.position_margin,
        "A relation holds when centres differ by more than this along its axis")
      .range(0.0, 0.5);
  s.add("world.colored_counts", &w.colored_counts,
        "Share of counting prompts that also name their objects' colour (\"three red squares\"); "
        "0: GenEval's phrasing, which names none")
      .range(0.0, 1.0);
  s.add("world.colored_relations", &w.colored_relations,
        "Share of position prompts that also name both objects' colours (\"a red circle left of "
        "a blue square\"); 0: GenEval's phrasing, which names none")
      .range(0.0, 1.0);
  s.add("world.prompt_prefix", &w.prompt_prefix,
        "Words every text-to-image prompt starts with (GenEval's: \"a photo of\"); empty: the "
        "bare description (\"two red circles\")");
  s.add("world.categories", &w.categories, "GenEval prompt categories, cycled in this order")
      .choices(kCategories)
      .min_items(1);
  s.add("world.category_weights", &w.category_weights,
        "How often `corl data` draws each of world.categories, relative to the others (one "
        "weight per category, in its order; 0: in the benchmarks only; empty: equally often). "
        "`corl eval`'s suites draw every category equally")
      .range(0.0, 1000.0);
  s.add("world.held_out_prompts", &w.held_out_prompts,
        "Share of each category's prompts kept for the benchmarks: `corl data` never draws them, "
        "`corl eval`'s GenEval suite draws only them (at least one of a category on each side); "
        "0: every prompt everywhere")
      .range(0.0, 0.9);
  auto& q = r.questions;
  s.add("questions.types", &q.types, "Question kinds asked about a scene")
      .choices(kQuestionTypes)
      .min_items(1);
  s.add("questions.weights", &q.weights,
        "How often each of questions.types is asked, relative to the others (one weight per "
        "type, in its order; empty: equally often)")
      .range(0.001, 1000.0);
  s.add("questions.mc_fraction", &q.mc_fraction,
        "Share of multiple-choice questions; the rest are open-ended")
      .range(0.0, 1.0);
  s.add("questions.phrasing", &q.phrasing,
        "standard: one wording per question kind (\"How many squares are there in the image?\"); "
        "reworded: each question in another wording of the same ask (\"Count the squares in the "
        "image.\"), drawn at random; answers and options are unchanged")
      .choices({"standard", "reworded"});
  s.add("questions.num_options", &q.num_options, "Options of a multiple-choice question (A..F)")
      .range(2, 6);
  s.add("data.train_size", &r.data.train_size, "Samples in train.jsonl").range(1, 10000000);
  s.add("data.eval_size", &r.data.eval_size, "Samples in eval.jsonl").range(0, 10000000);
}

void validate(const WorldRecipe& r) {
  if (r.world.min_size > r.world.max_size) {
    throw RecipeError("world.min_size (" + std::to_string(r.world.min_size) +
                      ") must not exceed world.max_size (" + std::to_string(r.world.max_size) +
                      ")");
  }
  // The smallest object must still be a few pixels wide for the detector to read it.
  if (r.world.min_size * r.world.resolution < 3.0) {
    throw RecipeError("world.min_size: objects of half-side " + std::to_string(r.world.min_size) +
                      " are under 3 pixels at world.resolution " +
                      std::to_string(r.world.resolution));
  }
}

}  // namespace corl::config
