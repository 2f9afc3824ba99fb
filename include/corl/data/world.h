// ShapeWorld: samples scenes for the six GenEval categories, captions them, and asks questions
// about them. One sample carries every field of the paper's unified data (x2x_rft_22k).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "corl/config/recipes.h"
#include "corl/data/scene.h"

namespace corl::data {

enum class QuestionKind { kCount, kColor, kShape, kPosition, kExistence };
std::string name(QuestionKind kind);
std::optional<QuestionKind> question_kind_from_name(const std::string& name);

// Every object of the scene with its colour, shape and quarter of the image, in the scene's order:
// "The image shows a red circle in the top left and a blue square in the bottom right." (y grows
// downwards, as in the image.) An empty scene "shows no objects".
std::string scene_caption(const Scene& scene);

// The objects a reasoning names in its first "The image shows ..." sentence, the one every
// ShapeWorld solution starts from: "a red circle, a blue square and a green triangle" (quarters,
// if given, are ignored). An item that is not an article, a known colour and a known shape is
// counted in `unreadable`.
struct ObjectList {
  std::vector<std::pair<Color, Shape>> objects;
  int unreadable = 0;
};
// nullopt when the text has no such sentence.
std::optional<ObjectList> read_object_list(const std::string& text);

struct Question {
  QuestionKind kind = QuestionKind::kCount;
  bool multiple_choice = false;
  std::string problem;   // the question, with "Options: A. ... B. ..." when multiple choice
  std::string answer;    // the bare answer: an option letter, or the open-ended answer
  std::string solution;  // "<think>...</think><answer>ANSWER</answer>"
};

struct Sample {
  std::string id;
  std::string prompt;  // the caption: what T2I generates from
  PromptSpec spec;     // what the caption asks for, checkable by the detector
  Scene scene;         // what the real image shows
  Question question;
};

// Which prompts a sampler draws when world.held_out_prompts keeps some for the benchmarks.
enum class PromptSide { kAll, kTraining, kHeldOut };

// The world's vocabulary and geometry, resolved from the recipe's names.
struct WorldSpec {
  int resolution = 64;
  std::vector<Shape> shapes;
  std::vector<Color> colors;
  std::vector<Category> categories;
  // Relative frequency of each of categories in next(); empty when they take turns.
  std::vector<double> category_weights;
  std::vector<QuestionKind> question_kinds;
  // Relative frequency of each of question_kinds; empty when they are asked equally often.
  std::vector<double> question_weights;
  double min_size = 0.09;
  double max_size = 0.16;
  int max_objects = 4;
  double min_gap = 0.04;
  double position_margin = 0.1;
  double colored_counts = 0.0;
  double colored_relations = 0.0;
  std::string prompt_prefix = "a photo of";
  double mc_fraction = 0.5;
  bool reworded_questions = false;  // questions.phrasing: reworded
  int num_options = 4;
  double held_out_prompts = 0.0;  // world.held_out_prompts
  PromptSide prompt_side = PromptSide::kAll;

  // Throws corl::RecipeError naming the key of an unknown name.
  static WorldSpec from_recipe(const config::WorldRecipe& recipe);
};

// Every prompt the sampler can draw in a category, each once, in a fixed order.
std::vector<PromptSpec> prompt_space(const WorldSpec& spec, Category category);

// The bare captions ("two circles") that world.held_out_prompts keeps for the benchmarks: in each
// category, round(share x its prompts) of them, at least one and never all, chosen by a hash of
// the caption that is the same on every machine and for every seed. Empty when the share is 0.
// Throws corl::RecipeError when a category has a single prompt and so cannot be split.
std::unordered_set<std::string> held_out_captions(const WorldSpec& spec);

class WorldSampler {
 public:
  WorldSampler(WorldSpec spec, std::uint64_t seed);

  // Categories cycle in the recipe's order, so every split is balanced across them. With
  // category weights, each draw takes the category furthest behind its share (smooth weighted
  // round robin), so any n draws hold each category within one of n x its share.
  Sample next();
  Sample sample(Category category);

  // The caption of a spec, in GenEval's phrasing ("a photo of two red circles") or after another
  // prefix (empty: "two red circles").
  static std::string caption(const PromptSpec& spec, const std::string& prefix = "a photo of");

  const WorldSpec& spec() const { return spec_; }

 private:
  // A prompt of the category, and its objects before placement (colours drawn).
  PromptSpec draw_prompt(Category category, std::vector<Object>& objects);
  bool on_side(const PromptSpec& spec) const;
  Scene place(const std::vector<Object>& objects_without_position,
              const std::optional<Relation>& relation);
  Question ask(const Scene& scene);

  WorldSpec spec_;
  std::mt19937_64 rng_;
  std::uint64_t counter_ = 0;
  std::vector<double> credit_;  // per category, with category weights: its share owed so far
  std::unordered_set<std::string> held_out_;  // bare captions, when the sampler takes a side
};

}  // namespace corl::data
