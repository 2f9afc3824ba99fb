#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <regex>
#include <set>

#include "corl/data/answers.h"
#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/data/render.h"
#include "corl/data/world.h"
#include "corl/util/error.h"

namespace corl::data {
namespace {

WorldSpec default_spec() { return WorldSpec::from_recipe(config::WorldRecipe{}); }

int count_shape(const Scene& scene, Shape shape) {
  return static_cast<int>(std::count_if(scene.objects.begin(), scene.objects.end(),
                                        [&](const Object& o) { return o.shape == shape; }));
}

// The option text behind a letter of "... Options: A. x B. y C. z".
std::map<std::string, std::string> options_of(const std::string& problem) {
  std::map<std::string, std::string> options;
  const auto at = problem.find(" Options:");
  std::string rest = problem.substr(at + 9);
  std::regex option(R"( ([A-F])\. ([a-z0-9]+))");
  for (std::sregex_iterator it(rest.begin(), rest.end(), option), end; it != end; ++it) {
    options[(*it)[1]] = (*it)[2];
  }
  return options;
}

// The open-ended answer to `problem` about `scene`, worked out here from the scene alone. It
// reads the standard wordings and the reworded ones (questions.phrasing: reworded).
std::string expected_answer(const Scene& scene, const std::string& problem) {
  std::smatch m;
  auto asks = [&](const char* pattern) {
    return std::regex_search(problem, m, std::regex(pattern));
  };
  if (asks(R"(^(How many objects|Count the objects|What is the number of objects))")) {
    return std::to_string(scene.objects.size());
  }
  if (asks(R"(^How many (\w+) (are|can you see))") || asks(R"(^Count the (\w+) in the image)")) {
    for (Shape shape : kAllShapes) {
      if (plural(shape) == m[1].str()) return std::to_string(count_shape(scene, shape));
    }
  }
  if (asks(R"(^What color is the (\w+)( in the image)?\?)") ||
      asks(R"(^What is the color of the (\w+)\?)") || asks(R"(^The (\w+) is what color\?)")) {
    for (const auto& o : scene.objects) {
      if (name(o.shape) == m[1].str()) return name(o.color);
    }
  }
  if (asks(R"(^(What shape is|What is the shape of|Tell me the shape of) the (\w+) object)")) {
    for (const auto& o : scene.objects) {
      if (name(o.color) == m[2].str()) return name(o.shape);
    }
  }
  if (asks(R"(^Is there an? (\w+) (\w+)( in| anywhere|\?))")) {
    for (const auto& o : scene.objects) {
      if (name(o.color) == m[1].str() && name(o.shape) == m[2].str()) return "yes";
    }
    return "no";
  }
  if (asks(R"(^Is the (\w+) in the left (or|half or))")) {
    return scene.objects.at(0).x < 0.5 ? "left" : "right";
  }
  std::string first, second;  // "Where is <first> relative to <second>?"
  if (asks(R"(^Where is the ((?:\w+ )?\w+) (relative to|compared with) the ((?:\w+ )?\w+)\?)")) {
    first = m[1];
    second = m[3];
  } else if (asks(R"(^Relative to the ((?:\w+ )?\w+), where is the ((?:\w+ )?\w+)\?)")) {
    first = m[2];
    second = m[1];
  }
  if (!first.empty()) {
    auto find = [&](const std::string& words) -> const Object* {
      for (const auto& o : scene.objects) {
        if (words == name(o.shape) || words == name(o.color) + " " + name(o.shape)) return &o;
      }
      return nullptr;
    };
    const Object* a = find(first);
    const Object* b = find(second);
    EXPECT_TRUE(a && b) << problem;
    const double dx = a->x - b->x;
    const double dy = a->y - b->y;
    if (std::abs(dx) >= std::abs(dy)) return dx < 0 ? "left" : "right";
    return dy < 0 ? "above" : "below";
  }
  ADD_FAILURE() << "question not understood: " << problem;
  return "";
}

TEST(WorldSampler, SameSeedSameWorldOtherSeedOtherWorld) {
  WorldSampler a(default_spec(), 42);
  WorldSampler b(default_spec(), 42);
  WorldSampler c(default_spec(), 43);
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    const Sample sa = a.next();
    const Sample sb = b.next();
    const Sample sc = c.next();
    EXPECT_EQ(sa.prompt, sb.prompt);
    EXPECT_EQ(to_json(sa.scene), to_json(sb.scene));
    EXPECT_EQ(sa.question.solution, sb.question.solution);
    differ += to_json(sa.scene) != to_json(sc.scene);
  }
  EXPECT_EQ(differ, 50);
}

// Each object's quarter follows its centre: x < 0.5 is left, y < 0.5 is top (y grows downwards).
TEST(SceneCaption, NamesEveryObjectWithItsQuarter) {
  Scene scene;
  scene.objects = {{Shape::kCircle, Color::kRed, 0.2, 0.3, 0.1},
                   {Shape::kSquare, Color::kOrange, 0.7, 0.3, 0.1},
                   {Shape::kTriangle, Color::kBlue, 0.5, 0.8, 0.1}};
  EXPECT_EQ(scene_caption(scene),
            "The image shows a red circle in the top left, an orange square in the top right and "
            "a blue triangle in the bottom right.");
  scene.objects.resize(1);
  EXPECT_EQ(scene_caption(scene), "The image shows a red circle in the top left.");
  scene.objects.clear();
  EXPECT_EQ(scene_caption(scene), "The image shows no objects.");
}

// Every solution starts from the scene's objects, so reading its list back gives the scene: the
// property the perception reward relies on. Scene captions, with quarters, read back alike.
TEST(ObjectList, ReadsBackEverySolutionsScene) {
  WorldSampler sampler(default_spec(), 5);
  for (int i = 0; i < 300; ++i) {
    const Sample sample = sampler.next();
    std::multiset<std::pair<Color, Shape>> shown;
    for (const auto& o : sample.scene.objects) shown.emplace(o.color, o.shape);
    for (const std::string& text : {sample.question.solution, scene_caption(sample.scene)}) {
      const auto list = read_object_list(text);
      ASSERT_TRUE(list.has_value()) << text;
      EXPECT_EQ(list->unreadable, 0) << text;
      const std::multiset<std::pair<Color, Shape>> listed(list->objects.begin(),
                                                          list->objects.end());
      EXPECT_EQ(listed, shown) << text;
    }
  }
  EXPECT_FALSE(read_object_list("<think>Counting the circles gives two.</think>").has_value());
}

TEST(WorldSampler, CategoriesCycleInRecipeOrder) {
  const WorldSpec spec = default_spec();
  WorldSampler sampler(spec, 1);
  for (int i = 0; i < 24; ++i) {
    EXPECT_EQ(sampler.next().spec.category, spec.categories[i % spec.categories.size()]);
  }
}

TEST(WorldSampler, CaptionsFollowGenEvalPhrasing) {
  PromptSpec counting{Category::kCounting, {{Shape::kCircle, 3, std::nullopt}}, true, {}};
  EXPECT_EQ(WorldSampler::caption(counting), "a photo of three circles");
  PromptSpec colors{Category::kColors, {{Shape::kSquare, 1, Color::kRed}}, false, {}};
  EXPECT_EQ(WorldSampler::caption(colors), "a photo of a red square");
  PromptSpec position{Category::kPosition,
                      {{Shape::kTriangle, 1, std::nullopt}, {Shape::kDiamond, 1, std::nullopt}},
                      false,
                      Relation::kLeftOf};
  EXPECT_EQ(WorldSampler::caption(position), "a photo of a triangle left of a diamond");
  PromptSpec attr{Category::kColorAttr,
                  {{Shape::kCircle, 1, Color::kBlue}, {Shape::kSquare, 1, Color::kOrange}},
                  false,
                  {}};
  EXPECT_EQ(WorldSampler::caption(attr), "a photo of a blue circle and an orange square");
  EXPECT_EQ(WorldSampler::caption(counting, ""), "three circles");
  EXPECT_EQ(WorldSampler::caption(position, "a picture of"),
            "a picture of a triangle left of a diamond");
}

TEST(WorldSampler, PromptPrefixStartsEveryPrompt) {
  config::WorldRecipe recipe;
  recipe.world.prompt_prefix = "";
  WorldSampler bare(WorldSpec::from_recipe(recipe), 3);
  WorldSampler geneval(default_spec(), 3);
  for (int i = 0; i < 60; ++i) {
    const Sample a = bare.next();
    const Sample b = geneval.next();
    EXPECT_EQ("a photo of " + a.prompt, b.prompt);
    EXPECT_EQ(a.question.solution, b.question.solution);  // only the prompt's words differ
  }
}

// Bare captions a sampler draws in `n` samples of one category.
std::set<std::string> drawn_prompts(WorldSampler& sampler, Category category, int n) {
  std::set<std::string> prompts;
  for (int i = 0; i < n; ++i) {
    prompts.insert(WorldSampler::caption(sampler.sample(category).spec, ""));
  }
  return prompts;
}

std::set<std::string> captions_of(const std::vector<PromptSpec>& space) {
  std::set<std::string> captions;
  for (const auto& prompt : space) captions.insert(WorldSampler::caption(prompt, ""));
  return captions;
}

// Counted by hand for 4 shapes, 6 colours and counts 2..4: one shape; ordered pairs of two
// shapes (4 x 3); a shape and a count (4 x 3); a shape and a colour (4 x 6); a pair and one of
// four relations (12 x 4); a pair of shapes and an ordered pair of two colours (12 x 6 x 5).
TEST(WorldSampler, PromptSpaceIsEveryPromptTheSamplerDraws) {
  const WorldSpec spec = default_spec();
  const std::map<Category, size_t> by_hand = {
      {Category::kSingleObject, 4}, {Category::kTwoObject, 12}, {Category::kCounting, 12},
      {Category::kColors, 24},      {Category::kPosition, 48},  {Category::kColorAttr, 360}};
  WorldSampler sampler(spec, 11);
  size_t total = 0;
  for (const auto& [category, n] : by_hand) {
    const auto space = captions_of(prompt_space(spec, category));
    EXPECT_EQ(prompt_space(spec, category).size(), n) << name(category);
    EXPECT_EQ(space.size(), n) << name(category);  // each once
    // Enough draws to see every prompt of the category (at least 20 per prompt on average).
    EXPECT_EQ(drawn_prompts(sampler, category, static_cast<int>(20 * n)), space) << name(category);
    total += n;
  }
  EXPECT_EQ(total, 460u);
}

TEST(WorldSampler, HeldOutPromptsAreNeverDrawnForTrainingAndAreAllTheBenchmarkDraws) {
  config::WorldRecipe recipe;
  recipe.world.held_out_prompts = 0.25;
  WorldSpec spec = WorldSpec::from_recipe(recipe);
  const auto held_out = held_out_captions(spec);
  // round(0.25 n) of each category, at least one: 1 + 3 + 3 + 6 + 12 + 90.
  const std::map<Category, size_t> kept = {
      {Category::kSingleObject, 1}, {Category::kTwoObject, 3}, {Category::kCounting, 3},
      {Category::kColors, 6},       {Category::kPosition, 12}, {Category::kColorAttr, 90}};
  EXPECT_EQ(held_out.size(), 115u);
  spec.prompt_side = PromptSide::kTraining;
  WorldSampler training(spec, 3);
  spec.prompt_side = PromptSide::kHeldOut;
  WorldSampler benchmark(spec, 3);
  for (const auto& [category, n] : kept) {
    const auto space = captions_of(prompt_space(spec, category));
    std::set<std::string> kept_here;
    for (const auto& caption : space) {
      if (held_out.count(caption)) kept_here.insert(caption);
    }
    EXPECT_EQ(kept_here.size(), n) << name(category);
    const auto trained = drawn_prompts(training, category, static_cast<int>(20 * space.size()));
    const auto benchmarked = drawn_prompts(benchmark, category, static_cast<int>(40 * n));
    EXPECT_EQ(benchmarked, kept_here) << name(category);  // only held-out prompts, every one
    std::set<std::string> rest;
    std::set_difference(space.begin(), space.end(), kept_here.begin(), kept_here.end(),
                        std::inserter(rest, rest.end()));
    EXPECT_EQ(trained, rest) << name(category);  // every other prompt, and none held out
  }
  // The split belongs to the prompts alone: the same under GenEval's prefix.
  recipe.world.prompt_prefix = "a photo of";
  EXPECT_EQ(held_out_captions(WorldSpec::from_recipe(recipe)), held_out);
}

TEST(WorldSampler, NoHeldOutPromptsLeaveEverySideTheWholeWorld) {
  WorldSpec spec = default_spec();
  spec.prompt_side = PromptSide::kTraining;
  WorldSampler training(spec, 9);
  WorldSampler all(default_spec(), 9);
  for (int i = 0; i < 60; ++i) {
    const Sample a = training.next();
    const Sample b = all.next();
    EXPECT_EQ(a.prompt, b.prompt);
    EXPECT_EQ(a.question.solution, b.question.solution);
  }
}

TEST(WorldSampler, ACategoryOfOnePromptCannotBeSplit) {
  config::WorldRecipe recipe;
  recipe.world.shapes = {"circle"};
  recipe.world.categories = {"single_object", "counting"};
  recipe.world.held_out_prompts = 0.5;
  WorldSpec spec = WorldSpec::from_recipe(recipe);
  spec.prompt_side = PromptSide::kTraining;
  try {
    WorldSampler sampler(spec, 1);
    FAIL() << "a one-prompt category was split";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("world.held_out_prompts"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("single_object"), std::string::npos);
  }
}

// Coloured counts and relations ask for a colour of every object, and the scene shows it: the
// detector reads every rendered scene back as correct.
TEST(WorldSampler, ColoredCompositionsNameTheColoursTheSceneShows) {
  config::WorldRecipe recipe;
  recipe.world.colored_counts = 1.0;
  recipe.world.colored_relations = 1.0;
  recipe.world.categories = {"counting", "position"};
  const WorldSpec spec = WorldSpec::from_recipe(recipe);
  WorldSampler sampler(spec, 11);
  const std::regex counting(
      R"(^a photo of (two|three|four) (red|green|blue|yellow|purple|orange) \w+s$)");
  const std::regex position(
      R"(^a photo of an? (red|green|blue|yellow|purple|orange) \w+ (left of|right of|above|below) )"
      R"(an? (red|green|blue|yellow|purple|orange) \w+$)");
  for (int i = 0; i < 200; ++i) {
    const Sample s = sampler.next();
    EXPECT_TRUE(std::regex_match(s.prompt, s.spec.category == Category::kCounting ? counting
                                                                                  : position))
        << s.prompt;
    for (const Requirement& r : s.spec.include) {
      ASSERT_TRUE(r.color.has_value()) << s.prompt;
      const auto shown = std::count_if(s.scene.objects.begin(), s.scene.objects.end(),
                                       [&](const Object& o) {
                                         return o.shape == r.shape && o.color == *r.color;
                                       });
      EXPECT_GE(shown, r.count) << s.prompt;
    }
    const auto judgement =
        judge(s.spec, detect(render(s.scene, spec.resolution)), {spec.position_margin, true});
    EXPECT_TRUE(judgement.correct) << s.prompt << ": " << judgement.reason;
  }
}

// A share p of counting prompts names a colour: over n prompts the count is binomial, so it lies
// within four standard deviations of n p.
TEST(WorldSampler, ColoredCountsShareIsHowOftenACountNamesAColour) {
  config::WorldRecipe recipe;
  recipe.world.colored_counts = 0.3;
  recipe.world.categories = {"counting"};
  WorldSampler sampler(WorldSpec::from_recipe(recipe), 5);
  const int n = 4000;
  int colored = 0;
  for (int i = 0; i < n; ++i) colored += sampler.next().spec.include.at(0).color.has_value();
  EXPECT_NEAR(colored, 0.3 * n, 4 * std::sqrt(n * 0.3 * 0.7));
}

// The shares draw nothing where they do not apply, so a world without counting and position
// prompts is the same world, sample for sample, whatever they are.
TEST(WorldSampler, ColoredSharesLeaveOtherCategoriesAsTheyWere) {
  config::WorldRecipe plain;
  plain.world.categories = {"single_object", "two_object", "colors", "color_attr"};
  config::WorldRecipe shared = plain;
  shared.world.colored_counts = 1.0;
  shared.world.colored_relations = 1.0;
  WorldSampler a(WorldSpec::from_recipe(plain), 9);
  WorldSampler b(WorldSpec::from_recipe(shared), 9);
  for (int i = 0; i < 100; ++i) {
    const Sample x = a.next();
    const Sample y = b.next();
    EXPECT_EQ(x.prompt, y.prompt);
    EXPECT_EQ(x.question.solution, y.question.solution);
  }
}

// Samples of `spec`: every scene shows what its prompt asks, inside the image, with objects apart,
// and every question's answer is what the scene shows, worked out independently by
// expected_answer. The questions go to `asked`.
void check_samples(const WorldSpec& spec, std::uint64_t seed, std::vector<Question>& asked) {
  WorldSampler sampler(spec, seed);
  std::map<QuestionKind, int> kinds;
  int multiple_choice = 0;
  const int n = 600;
  for (int i = 0; i < n; ++i) {
    const Sample s = sampler.next();
    const auto& objects = s.scene.objects;
    ASSERT_GE(objects.size(), 1u);
    ASSERT_LE(static_cast<int>(objects.size()), spec.max_objects);
    for (size_t a = 0; a < objects.size(); ++a) {
      const Object& o = objects[a];
      EXPECT_GE(o.size, spec.min_size);
      EXPECT_LE(o.size, spec.max_size);
      EXPECT_GE(o.x - o.size, 0.0);
      EXPECT_LE(o.x + o.size, 1.0);
      EXPECT_GE(o.y - o.size, 0.0);
      EXPECT_LE(o.y + o.size, 1.0);
      for (size_t b = 0; b < a; ++b) {
        const Object& p = objects[b];
        const double gap = std::max(std::abs(o.x - p.x), std::abs(o.y - p.y)) - o.size - p.size;
        EXPECT_GE(gap, spec.min_gap - 1e-12) << s.prompt;
      }
    }
    // The spec, checked by counting.
    for (const auto& r : s.spec.include) {
      const int found =
          static_cast<int>(std::count_if(objects.begin(), objects.end(), [&](auto& o) {
            return o.shape == r.shape && (!r.color || o.color == *r.color);
          }));
      if (s.spec.exact_count) {
        EXPECT_EQ(found, r.count) << s.prompt;
      } else {
        EXPECT_GE(found, r.count) << s.prompt;
      }
    }
    if (s.spec.relation) {
      const Object& a = objects[0];
      const Object& b = objects[1];
      const double m = spec.position_margin;
      switch (*s.spec.relation) {
        case Relation::kLeftOf:
          EXPECT_GT(b.x - a.x, m) << s.prompt;
          break;
        case Relation::kRightOf:
          EXPECT_GT(a.x - b.x, m) << s.prompt;
          break;
        case Relation::kAbove:
          EXPECT_GT(b.y - a.y, m) << s.prompt;
          break;
        case Relation::kBelow:
          EXPECT_GT(a.y - b.y, m) << s.prompt;
          break;
      }
    }
    // The question.
    const Question& q = s.question;
    ++kinds[q.kind];
    std::string answer = q.answer;
    if (q.multiple_choice) {
      ++multiple_choice;
      const auto options = options_of(q.problem);
      ASSERT_GE(options.size(), 2u) << q.problem;
      ASSERT_LE(static_cast<int>(options.size()), std::max(2, spec.num_options)) << q.problem;
      ASSERT_TRUE(options.count(q.answer)) << q.problem;
      answer = options.at(q.answer);
      // The accuracy reward reads the world's own solution and options as their letters.
      const auto solution_answer = extract_answer(q.solution);
      ASSERT_TRUE(solution_answer) << q.solution;
      EXPECT_TRUE(answers_match(*solution_answer, q.answer, true)) << q.solution;
      for (const auto& [letter, text] : options) {
        EXPECT_EQ(answers_match(letter + ". " + text, q.answer, true), letter == q.answer);
      }
      std::set<std::string> distinct;
      for (const auto& [letter, text] : options) distinct.insert(text);
      EXPECT_EQ(distinct.size(), options.size()) << q.problem;
      // The reasoning walks the options in order up to the right one: "A. red? no. ... D. x? yes."
      if (q.kind != QuestionKind::kExistence) {
        std::string walk;
        for (const auto& [letter, text] : options) {  // std::map: in letter order
          walk += " " + letter + ". " + text + (letter == q.answer ? "? yes." : "? no.");
          if (letter == q.answer) break;
        }
        EXPECT_NE(q.solution.find(walk + "</think>"), std::string::npos) << q.solution;
      }
    }
    EXPECT_EQ(answer, expected_answer(s.scene, q.problem)) << q.problem << " / " << s.prompt;
    EXPECT_TRUE(std::regex_match(
        q.solution, std::regex("<think>[^<]+</think><answer>" + q.answer + "</answer>")))
        << q.solution;
    asked.push_back(q);
  }
  for (QuestionKind kind : spec.question_kinds) EXPECT_GT(kinds[kind], n / 20) << name(kind);
  EXPECT_NEAR(multiple_choice / static_cast<double>(n), spec.mc_fraction, 0.07);
}

// The question without its options, colours and shapes: the wording alone.
std::string wording_of(const Question& q) {
  std::string text = q.problem.substr(0, q.problem.find(" Options:"));
  text = std::regex_replace(text, std::regex(R"(\b(an? )?(red|green|blue|yellow|purple|orange) )"),
                            "C ");
  return std::regex_replace(text, std::regex(R"(\b(circle|square|triangle|diamond)s?\b)"), "S");
}

// The wordings the standard phrasing uses, one per kind (two for counts and positions).
bool is_standard_wording(const std::string& w) {
  static const std::set<std::string> standard = {
      "How many objects are there in the image?",
      "How many S are there in the image?",
      "What color is the S?",
      "What shape is the C object?",
      "Is there C S in the image?",
      "Is the S in the left or the right half of the image?",
      "Where is the S relative to the S? Answer left, right, above or below.",
      "Where is the C S relative to the C S? Answer left, right, above or below.",
      "Where is the S relative to the C S? Answer left, right, above or below.",
      "Where is the C S relative to the S? Answer left, right, above or below."};
  return standard.count(w) > 0;
}

TEST(WorldSampler, ScenesSatisfyTheirSpecsAndAnswersTheirScenes) {
  std::vector<Question> asked;
  check_samples(default_spec(), 7, asked);
  for (const Question& q : asked) {
    EXPECT_TRUE(is_standard_wording(wording_of(q))) << q.problem;
  }
}

// Reworded questions ask the same of the same scenes in other words: every answer is still the
// scene's, no question is in a standard wording, and each kind comes in at least two wordings.
TEST(WorldSampler, RewordedQuestionsAskTheSameInOtherWords) {
  config::WorldRecipe recipe;
  recipe.questions.phrasing = "reworded";
  std::map<QuestionKind, std::set<std::string>> wordings;
  std::vector<Question> asked;
  check_samples(WorldSpec::from_recipe(recipe), 7, asked);
  for (const Question& q : asked) {
    EXPECT_FALSE(is_standard_wording(wording_of(q))) << q.problem;
    wordings[q.kind].insert(wording_of(q));
  }
  ASSERT_EQ(wordings.size(), 5u);
  for (const auto& [kind, seen] : wordings) EXPECT_GE(seen.size(), 2u) << name(kind);
}

// The judge agrees with the renderer: each rendered scene, read back by the detector, satisfies
// its own prompt (the benchmark checks thousands; this checks a few hundred).
TEST(WorldSampler, DetectorJudgesRenderedScenesCorrect) {
  const WorldSpec spec = default_spec();
  WorldSampler sampler(spec, 2024);
  int correct = 0;
  const int n = 360;
  for (int i = 0; i < n; ++i) {
    const Sample s = sampler.next();
    const auto judgement =
        judge(s.spec, detect(render(s.scene, spec.resolution)), {spec.position_margin, true});
    correct += judgement.correct;
    EXPECT_TRUE(judgement.correct) << s.prompt << ": " << judgement.reason;
  }
  EXPECT_GE(correct, 0.99 * n);
}

TEST(WorldSpec, RejectsUnknownOrTooFewNames) {
  config::WorldRecipe recipe;
  recipe.world.shapes = {"circle", "hexagon"};
  EXPECT_THROW(WorldSpec::from_recipe(recipe), RecipeError);
  recipe.world.shapes = {"circle"};
  EXPECT_THROW(WorldSpec::from_recipe(recipe), RecipeError);  // two_object needs two shapes
  recipe.world.categories = {"single_object", "counting", "colors"};
  EXPECT_NO_THROW(WorldSpec::from_recipe(recipe));
}

// Share of `kind` among the questions of n samples.
double share_of(WorldSampler sampler, QuestionKind kind, int n) {
  int asked = 0;
  for (int i = 0; i < n; ++i) asked += sampler.next().question.kind == kind;
  return static_cast<double>(asked) / n;
}

TEST(WorldSampler, EqualQuestionWeightsAreTheUnweightedWorld) {
  config::WorldRecipe weighted;
  weighted.questions.weights = {2, 2, 2, 2, 2};
  WorldSampler a(default_spec(), 5);
  WorldSampler b(WorldSpec::from_recipe(weighted), 5);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.next().question.solution, b.next().question.solution);
}

// Counting fits every scene, so with two kinds colour is asked exactly when it is drawn first and
// fits: P(colour) = w_colour / (w_colour + w_count) * P(fits). Equal weights give P(fits) / 2,
// so weights 1 : 3 must ask colour 1.5 times as often, and 3 : 1 half as often.
TEST(WorldSampler, QuestionWeightsSetHowOftenEachKindIsAsked) {
  const int n = 20000;
  config::WorldRecipe recipe;
  recipe.questions.types = {"count", "color"};
  const double equal = share_of(WorldSampler(WorldSpec::from_recipe(recipe), 11),
                                QuestionKind::kColor, n);
  ASSERT_GT(equal, 0.2);
  for (const auto& [weights, ratio] :
       std::vector<std::pair<std::vector<double>, double>>{{{1, 3}, 1.5}, {{3, 1}, 0.5}}) {
    recipe.questions.weights = weights;
    const double share = share_of(WorldSampler(WorldSpec::from_recipe(recipe), 12),
                                  QuestionKind::kColor, n);
    const double expected = ratio * equal;
    // Five binomial standard errors of the two shares.
    const double tolerance =
        5 * std::sqrt(share * (1 - share) / n + ratio * ratio * equal * (1 - equal) / n);
    EXPECT_NEAR(share, expected, tolerance) << "weights " << weights[0] << ":" << weights[1];
  }
}

TEST(WorldSpec, QuestionWeightsNeedOnePerType) {
  config::WorldRecipe recipe;
  recipe.questions.weights = {1, 0.1};
  try {
    WorldSpec::from_recipe(recipe);
    ADD_FAILURE() << "two weights for five types were accepted";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("questions.weights"), std::string::npos) << e.what();
  }
}

TEST(WorldSampler, EqualCategoryWeightsAreTheCycle) {
  config::WorldRecipe weighted;
  weighted.world.category_weights = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
  WorldSampler a(default_spec(), 5);
  WorldSampler b(WorldSpec::from_recipe(weighted), 5);
  for (int i = 0; i < 120; ++i) EXPECT_EQ(a.next().prompt, b.next().prompt);
}

// Weights 3 : 1 : 0 : 2 over four categories, worked by hand: every six draws hold three, one,
// none and two, and every prefix of n draws holds each category within one of n x its share.
TEST(WorldSampler, CategoryWeightsSetEachCategorysShareOfDraws) {
  config::WorldRecipe recipe;
  recipe.world.categories = {"counting", "position", "color_attr", "colors"};
  recipe.world.category_weights = {3, 1, 0, 2};
  const auto spec = WorldSpec::from_recipe(recipe);
  const std::vector<double> share = {3.0 / 6, 1.0 / 6, 0.0, 2.0 / 6};
  WorldSampler sampler(spec, 7);
  std::map<Category, int> drawn;
  for (int n = 1; n <= 600; ++n) {
    ++drawn[sampler.next().spec.category];
    for (size_t c = 0; c < spec.categories.size(); ++c) {
      EXPECT_LE(std::abs(drawn[spec.categories[c]] - n * share[c]), 1.0)
          << data::name(spec.categories[c]) << " after " << n << " draws";
    }
  }
  EXPECT_EQ(drawn[Category::kCounting], 300);
  EXPECT_EQ(drawn[Category::kPosition], 100);
  EXPECT_EQ(drawn[Category::kColorAttr], 0);
  EXPECT_EQ(drawn[Category::kColors], 200);
}

TEST(WorldSpec, CategoryWeightsNeedOnePerCategoryAndOnePositive) {
  const std::vector<std::pair<std::vector<double>, std::string>> bad = {
      {{1, 2}, "2 weights for 6 world.categories"}, {{0, 0, 0, 0, 0, 0}, "every weight is 0"}};
  for (const auto& [weights, message] : bad) {
    config::WorldRecipe recipe;
    recipe.world.category_weights = weights;
    try {
      WorldSpec::from_recipe(recipe);
      ADD_FAILURE() << message << ": accepted";
    } catch (const RecipeError& e) {
      EXPECT_NE(std::string(e.what()).find("world.category_weights: " + message),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(WorldSampler, ImpossiblePlacementIsARecipeError) {
  config::WorldRecipe recipe;
  recipe.world.min_size = 0.3;
  recipe.world.max_size = 0.3;
  WorldSampler sampler(WorldSpec::from_recipe(recipe), 3);
  EXPECT_THROW(sampler.sample(Category::kCounting), RecipeError);
}

}  // namespace
}  // namespace corl::data
