#include "corl/data/world.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "corl/data/geneval.h"
#include "corl/util/error.h"
#include "corl/util/strings.h"

namespace corl::data {
namespace {

constexpr std::array<const char*, 5> kQuestionKindNames = {"count", "color", "shape", "position",
                                                           "existence"};
constexpr std::array<const char*, 6> kNumberWords = {"zero", "one", "two", "three", "four", "five"};
constexpr double kBorder = 0.02;  // objects keep this far from the image edge
constexpr int kPlacementTries = 2000;

std::string article(const std::string& word) {
  return std::string("aeiou").find(word.front()) != std::string::npos ? "an" : "a";
}

std::string number_word(int n) {
  return n >= 0 && n < static_cast<int>(kNumberWords.size()) ? kNumberWords[n] : std::to_string(n);
}

std::string describe(const Object& object) { return name(object.color) + " " + name(object.shape); }

// "a red circle, a blue square and a green triangle"; with `quarters`, "a red circle in the top
// left, ..." (y grows downwards, as in the image).
std::string list_objects(const Scene& scene, bool quarters = false) {
  std::string text;
  for (size_t i = 0; i < scene.objects.size(); ++i) {
    const Object& o = scene.objects[i];
    if (i > 0) text += i + 1 == scene.objects.size() ? " and " : ", ";
    const std::string d = describe(o);
    text += article(d) + " " + d;
    if (quarters) {
      text += std::string(" in the ") + (o.y < 0.5 ? "top" : "bottom") + " " +
              (o.x < 0.5 ? "left" : "right");
    }
  }
  return text;
}

}  // namespace

std::string scene_caption(const Scene& scene) {
  if (scene.objects.empty()) return "The image shows no objects.";
  return "The image shows " + list_objects(scene, /*quarters=*/true) + ".";
}

std::optional<ObjectList> read_object_list(const std::string& text) {
  static const std::string kLead = "The image shows ";
  const size_t begin = text.find(kLead);
  if (begin == std::string::npos) return std::nullopt;
  const size_t from = begin + kLead.size();
  // The sentence ends at its period, or where the reasoning does when a completion stops early.
  const size_t end = std::min({text.find('.', from), text.find('<', from), text.size()});
  std::string items = text.substr(from, end - from);
  ObjectList list;
  if (util::trim(items) == "no objects") return list;
  for (size_t at; (at = items.find(" and ")) != std::string::npos;) items.replace(at, 5, ", ");
  for (const std::string& item : util::split(items, ',')) {
    std::vector<std::string> words;
    for (const std::string& w : util::split(util::trim(item), ' ')) {
      if (!w.empty()) words.push_back(w);
    }
    // "a red circle" or "a red circle in the top left".
    std::optional<Color> color;
    std::optional<Shape> shape;
    if (words.size() >= 3 && (words[0] == "a" || words[0] == "an")) {
      color = color_from_name(words[1]);
      shape = shape_from_name(words[2]);
    }
    const bool quartered_or_bare = words.size() == 3 || (words.size() == 7 && words[3] == "in");
    if (color && shape && quartered_or_bare) {
      list.objects.emplace_back(*color, *shape);
    } else {
      ++list.unreadable;
    }
  }
  return list;
}

namespace {

template <class T>
std::vector<T> resolve(const std::vector<std::string>& names, const std::string& key,
                       std::optional<T> (*from_name)(const std::string&)) {
  std::vector<T> out;
  for (const auto& n : names) {
    auto value = from_name(n);
    if (!value) throw RecipeError(key + ": unknown value '" + n + "'");
    if (std::find(out.begin(), out.end(), *value) != out.end()) {
      throw RecipeError(key + ": '" + n + "' is listed twice");
    }
    out.push_back(*value);
  }
  return out;
}

// A recipe's relative weights for `n` listed values: empty when it gives none or all are equal
// (the unweighted world, sample for sample). Throws naming `key` when the count is not `n` or
// every weight is 0.
std::vector<double> uneven_weights(const std::vector<double>& weights, size_t n,
                                   const std::string& key, const std::string& list_key,
                                   const std::string& item) {
  if (weights.empty()) return {};
  if (weights.size() != n) {
    throw RecipeError(key + ": " + std::to_string(weights.size()) + " weights for " +
                      std::to_string(n) + " " + list_key + "; give one for each " + item +
                      ", in its order");
  }
  if (std::none_of(weights.begin(), weights.end(), [](double w) { return w > 0; })) {
    throw RecipeError(key + ": every weight is 0; give some " + item + " a positive weight");
  }
  const bool equal =
      std::all_of(weights.begin(), weights.end(), [&](double w) { return w == weights.front(); });
  return equal ? std::vector<double>{} : weights;
}

}  // namespace

std::string name(QuestionKind kind) { return kQuestionKindNames[static_cast<int>(kind)]; }

std::optional<QuestionKind> question_kind_from_name(const std::string& text) {
  for (size_t i = 0; i < kQuestionKindNames.size(); ++i) {
    if (text == kQuestionKindNames[i]) return static_cast<QuestionKind>(i);
  }
  return std::nullopt;
}

WorldSpec WorldSpec::from_recipe(const config::WorldRecipe& recipe) {
  WorldSpec spec;
  spec.resolution = recipe.world.resolution;
  spec.shapes = resolve<Shape>(recipe.world.shapes, "world.shapes", &shape_from_name);
  spec.colors = resolve<Color>(recipe.world.colors, "world.colors", &color_from_name);
  spec.categories =
      resolve<Category>(recipe.world.categories, "world.categories", &category_from_name);
  spec.question_kinds =
      resolve<QuestionKind>(recipe.questions.types, "questions.types", &question_kind_from_name);
  spec.question_weights = uneven_weights(recipe.questions.weights, spec.question_kinds.size(),
                                         "questions.weights", "questions.types", "type");
  spec.category_weights = uneven_weights(recipe.world.category_weights, spec.categories.size(),
                                         "world.category_weights", "world.categories", "category");
  spec.min_size = recipe.world.min_size;
  spec.max_size = recipe.world.max_size;
  spec.max_objects = recipe.world.max_objects;
  spec.min_gap = recipe.world.min_gap;
  spec.position_margin = recipe.world.position_margin;
  spec.colored_counts = recipe.world.colored_counts;
  spec.colored_relations = recipe.world.colored_relations;
  spec.prompt_prefix = recipe.world.prompt_prefix;
  spec.mc_fraction = recipe.questions.mc_fraction;
  spec.reworded_questions = recipe.questions.phrasing == "reworded";
  spec.num_options = recipe.questions.num_options;
  spec.held_out_prompts = recipe.world.held_out_prompts;

  const bool needs_two_shapes =
      std::any_of(spec.categories.begin(), spec.categories.end(), [](Category c) {
        return c == Category::kTwoObject || c == Category::kPosition || c == Category::kColorAttr;
      });
  if (needs_two_shapes && spec.shapes.size() < 2) {
    throw RecipeError("world.shapes: two_object, position and color_attr need two shapes");
  }
  const bool needs_two_colors = std::find(spec.categories.begin(), spec.categories.end(),
                                          Category::kColorAttr) != spec.categories.end();
  if (needs_two_colors && spec.colors.size() < 2) {
    throw RecipeError("world.colors: color_attr needs two colours");
  }
  return spec;
}

WorldSampler::WorldSampler(WorldSpec spec, std::uint64_t seed)
    : spec_(std::move(spec)), rng_(seed) {
  if (spec_.prompt_side != PromptSide::kAll) held_out_ = held_out_captions(spec_);
}

// Our own uniform draws from the raw engine: std::uniform_*_distribution differ between standard
// libraries, and a seed must give the same world everywhere.
namespace {
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}
int uniform_int(std::mt19937_64& rng, int n) { return static_cast<int>(rng() % n); }
template <class T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& values) {
  return values[uniform_int(rng, static_cast<int>(values.size()))];
}
// Two distinct values (the list holds at least two).
template <class T>
std::pair<T, T> pick_two(std::mt19937_64& rng, const std::vector<T>& values) {
  const int n = static_cast<int>(values.size());
  const int a = uniform_int(rng, n);
  const int b = (a + 1 + uniform_int(rng, n - 1)) % n;
  return {values[a], values[b]};
}
// Every pair pick_two can draw, once.
template <class T>
std::vector<std::pair<T, T>> ordered_pairs(const std::vector<T>& values) {
  std::vector<std::pair<T, T>> pairs;
  for (const T& a : values) {
    for (const T& b : values) {
      if (a != b) pairs.emplace_back(a, b);
    }
  }
  return pairs;
}
template <class T>
void shuffle(std::mt19937_64& rng, std::vector<T>& values) {
  for (int i = static_cast<int>(values.size()) - 1; i > 0; --i) {
    std::swap(values[i], values[uniform_int(rng, i + 1)]);
  }
}
// A random order in which each next value is drawn from those left with probability
// proportional to its weight.
template <class T>
std::vector<T> weighted_order(std::mt19937_64& rng, std::vector<T> values,
                              std::vector<double> weights) {
  std::vector<T> order;
  while (!values.empty()) {
    double total = 0;
    for (double w : weights) total += w;
    double u = uniform(rng, 0, total);
    size_t i = 0;
    while (i + 1 < values.size() && u >= weights[i]) u -= weights[i++];
    order.push_back(values[i]);
    values.erase(values.begin() + static_cast<std::ptrdiff_t>(i));
    weights.erase(weights.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return order;
}

// Boxes of a and b are at least `gap` apart along some axis.
bool separated(const Object& a, const Object& b, double gap) {
  const double reach = a.size + b.size + gap;
  return std::abs(a.x - b.x) >= reach || std::abs(a.y - b.y) >= reach;
}

// A relation shown plainly: the displacement along its axis is at least twice the judge's
// margin and dominates the displacement across it.
bool shows(Relation relation, const Object& a, const Object& b, double margin) {
  const bool horizontal = relation == Relation::kLeftOf || relation == Relation::kRightOf;
  const double along = horizontal ? std::abs(a.x - b.x) : std::abs(a.y - b.y);
  const double across = horizontal ? std::abs(a.y - b.y) : std::abs(a.x - b.x);
  return holds(relation, a, b, 2 * margin) && across <= 0.5 * along;
}
}  // namespace

Scene WorldSampler::place(const std::vector<Object>& objects,
                          const std::optional<Relation>& relation) {
  for (int attempt = 0; attempt < kPlacementTries; ++attempt) {
    Scene scene{objects};
    bool ok = true;
    for (size_t i = 0; i < scene.objects.size() && ok; ++i) {
      Object& o = scene.objects[i];
      o.size = uniform(rng_, spec_.min_size, spec_.max_size);
      o.x = uniform(rng_, o.size + kBorder, 1.0 - o.size - kBorder);
      o.y = uniform(rng_, o.size + kBorder, 1.0 - o.size - kBorder);
      for (size_t j = 0; j < i && ok; ++j) ok = separated(o, scene.objects[j], spec_.min_gap);
    }
    if (ok && relation) {
      ok = shows(*relation, scene.objects[0], scene.objects[1], spec_.position_margin);
    }
    if (ok) return scene;
  }
  throw RecipeError(
      "world: could not place " + std::to_string(objects.size()) +
      " objects without overlap; lower world.max_size, world.min_gap or world.max_objects");
}

Sample WorldSampler::next() {
  const auto& weights = spec_.category_weights;
  if (weights.empty()) return sample(spec_.categories[counter_ % spec_.categories.size()]);
  // Every category is owed its weight; the one owed most (the first on a tie) is drawn and pays
  // the total back.
  if (credit_.empty()) credit_.assign(weights.size(), 0.0);
  double total = 0;
  size_t pick = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    credit_[i] += weights[i];
    total += weights[i];
    if (credit_[i] > credit_[pick]) pick = i;
  }
  credit_[pick] -= total;
  return sample(spec_.categories[pick]);
}

Sample WorldSampler::sample(Category category) {
  Sample sample;
  sample.id = std::to_string(counter_++);
  std::vector<Object> objects;
  // Without a side nothing is redrawn, so such a world is today's, sample for sample.
  do {
    objects.clear();
    sample.spec = draw_prompt(category, objects);
  } while (!on_side(sample.spec));
  sample.prompt = caption(sample.spec, spec_.prompt_prefix);
  sample.scene = place(objects, sample.spec.relation);
  sample.question = ask(sample.scene);
  return sample;
}

PromptSpec WorldSampler::draw_prompt(Category category, std::vector<Object>& objects) {
  PromptSpec spec;
  spec.category = category;
  // A share of 0 draws nothing, so such a world is today's, sample for sample.
  auto with_colors = [&](double share) { return share > 0 && uniform01(rng_) < share; };
  auto add = [&](Shape shape, std::optional<Color> color, int count) {
    spec.include.push_back({shape, count, color});
    for (int i = 0; i < count; ++i) {
      objects.push_back({shape, color ? *color : pick(rng_, spec_.colors), 0, 0, 0});
    }
  };
  switch (category) {
    case Category::kSingleObject:
      add(pick(rng_, spec_.shapes), std::nullopt, 1);
      break;
    case Category::kTwoObject: {
      auto [a, b] = pick_two(rng_, spec_.shapes);
      add(a, std::nullopt, 1);
      add(b, std::nullopt, 1);
      break;
    }
    case Category::kCounting:
      spec.exact_count = true;
      if (with_colors(spec_.colored_counts)) {
        const Shape shape = pick(rng_, spec_.shapes);
        const int count = 2 + uniform_int(rng_, spec_.max_objects - 1);
        add(shape, pick(rng_, spec_.colors), count);
      } else {
        add(pick(rng_, spec_.shapes), std::nullopt, 2 + uniform_int(rng_, spec_.max_objects - 1));
      }
      break;
    case Category::kColors:
      add(pick(rng_, spec_.shapes), pick(rng_, spec_.colors), 1);
      break;
    case Category::kPosition: {
      auto [a, b] = pick_two(rng_, spec_.shapes);
      if (with_colors(spec_.colored_relations)) {
        const Color ca = pick(rng_, spec_.colors);
        add(a, ca, 1);
        add(b, pick(rng_, spec_.colors), 1);
      } else {
        add(a, std::nullopt, 1);
        add(b, std::nullopt, 1);
      }
      spec.relation = static_cast<Relation>(uniform_int(rng_, 4));
      break;
    }
    case Category::kColorAttr: {
      auto [a, b] = pick_two(rng_, spec_.shapes);
      auto [ca, cb] = pick_two(rng_, spec_.colors);
      add(a, ca, 1);
      add(b, cb, 1);
      break;
    }
  }
  return spec;
}

bool WorldSampler::on_side(const PromptSpec& spec) const {
  if (spec_.prompt_side == PromptSide::kAll || spec_.held_out_prompts == 0) return true;
  const bool held_out = held_out_.count(caption(spec, "")) > 0;
  return held_out == (spec_.prompt_side == PromptSide::kHeldOut);
}

std::vector<PromptSpec> prompt_space(const WorldSpec& spec, Category category) {
  std::vector<PromptSpec> space;
  auto prompt = [&](std::vector<Requirement> include, std::optional<Relation> relation = {}) {
    PromptSpec p;
    p.category = category;
    p.include = std::move(include);
    p.exact_count = category == Category::kCounting;
    p.relation = relation;
    space.push_back(std::move(p));
  };
  const std::optional<Color> any;
  switch (category) {
    case Category::kSingleObject:
      for (Shape s : spec.shapes) prompt({{s, 1, any}});
      break;
    case Category::kTwoObject:
      for (auto [a, b] : ordered_pairs(spec.shapes)) prompt({{a, 1, any}, {b, 1, any}});
      break;
    case Category::kCounting:
      for (Shape s : spec.shapes) {
        for (int n = 2; n <= spec.max_objects; ++n) {
          if (spec.colored_counts < 1) prompt({{s, n, any}});
          if (spec.colored_counts > 0) {
            for (Color c : spec.colors) prompt({{s, n, c}});
          }
        }
      }
      break;
    case Category::kColors:
      for (Shape s : spec.shapes) {
        for (Color c : spec.colors) prompt({{s, 1, c}});
      }
      break;
    case Category::kPosition:
      for (auto [a, b] : ordered_pairs(spec.shapes)) {
        for (int r = 0; r < 4; ++r) {
          const auto relation = static_cast<Relation>(r);
          if (spec.colored_relations < 1) prompt({{a, 1, any}, {b, 1, any}}, relation);
          if (spec.colored_relations > 0) {
            for (Color ca : spec.colors) {
              for (Color cb : spec.colors) prompt({{a, 1, ca}, {b, 1, cb}}, relation);
            }
          }
        }
      }
      break;
    case Category::kColorAttr:
      for (auto [a, b] : ordered_pairs(spec.shapes)) {
        for (auto [ca, cb] : ordered_pairs(spec.colors)) prompt({{a, 1, ca}, {b, 1, cb}});
      }
      break;
  }
  return space;
}

std::unordered_set<std::string> held_out_captions(const WorldSpec& spec) {
  std::unordered_set<std::string> held_out;
  if (spec.held_out_prompts == 0) return held_out;
  for (const Category category : spec.categories) {
    std::vector<std::pair<std::uint64_t, std::string>> ranked;
    for (const auto& prompt : prompt_space(spec, category)) {
      const std::string text = WorldSampler::caption(prompt, "");
      ranked.emplace_back(util::stable_hash(text), text);  // the same ranking everywhere
    }
    const int n = static_cast<int>(ranked.size());
    if (n < 2) {
      throw RecipeError("world.held_out_prompts: category " + name(category) + " has " +
                        std::to_string(n) +
                        " prompt, which cannot be both trained on and held out; add shapes or "
                        "colours, drop the category, or set world.held_out_prompts: 0");
    }
    const int kept = std::clamp(static_cast<int>(std::lround(spec.held_out_prompts * n)), 1, n - 1);
    std::sort(ranked.begin(), ranked.end());
    for (int i = 0; i < kept; ++i) held_out.insert(ranked[i].second);
  }
  return held_out;
}

std::string WorldSampler::caption(const PromptSpec& spec, const std::string& prefix) {
  auto phrase = [](const Requirement& r) {
    std::string noun = r.count == 1 ? name(r.shape) : plural(r.shape);
    if (r.color) noun = name(*r.color) + " " + noun;
    return r.count == 1 ? article(noun) + " " + noun : number_word(r.count) + " " + noun;
  };
  std::string text = (prefix.empty() ? "" : prefix + " ") + phrase(spec.include.at(0));
  if (spec.include.size() > 1) {
    text += spec.relation ? " " + name(*spec.relation) + " " : " and ";
    text += phrase(spec.include[1]);
  }
  return text;
}

namespace {

// How a question names an object: by shape when that is unique in the scene, else by colour
// and shape when that is, else not at all.
std::optional<std::string> referring_name(const Scene& scene, const Object& object) {
  auto count = [&](auto same) {
    return std::count_if(scene.objects.begin(), scene.objects.end(), same);
  };
  if (count([&](const Object& o) { return o.shape == object.shape; }) == 1) {
    return name(object.shape);
  }
  if (count([&](const Object& o) { return o.shape == object.shape && o.color == object.color; }) ==
      1) {
    return describe(object);
  }
  return std::nullopt;
}

struct Draft {
  QuestionKind kind;
  std::string problem;
  std::string answer;             // open-ended form
  std::vector<std::string> pool;  // candidate options, the answer among them
  std::string reasoning;
};

std::vector<std::string> names_of(const std::vector<Shape>& shapes) {
  std::vector<std::string> out;
  for (Shape s : shapes) out.push_back(name(s));
  return out;
}
std::vector<std::string> names_of(const std::vector<Color>& colors) {
  std::vector<std::string> out;
  for (Color c : colors) out.push_back(name(c));
  return out;
}

}  // namespace

Question WorldSampler::ask(const Scene& scene) {
  const std::string seen = "The image shows " + list_objects(scene) + ".";
  const auto& objects = scene.objects;
  std::vector<std::string> counts;
  for (int n = 0; n <= std::max(spec_.max_objects, 5); ++n) counts.push_back(std::to_string(n));

  // The question in the recipe's phrasing: the standard words, or one of their rewordings.
  auto say = [&](std::string standard, std::initializer_list<std::string> reworded) {
    if (!spec_.reworded_questions) return standard;
    return *(reworded.begin() +
             std::uniform_int_distribution<size_t>(0, reworded.size() - 1)(rng_));
  };

  auto draft_of = [&](QuestionKind kind) -> std::optional<Draft> {
    switch (kind) {
      case QuestionKind::kCount: {
        if (uniform01(rng_) < 0.25) {
          const int n = static_cast<int>(objects.size());
          return Draft{kind,
                       say("How many objects are there in the image?",
                           {"Count the objects in the image.", "What is the number of objects?"}),
                       std::to_string(n), counts,
                       seen + " That is " + number_word(n) +
                           (n == 1 ? " object in all." : " objects in all.")};
        }
        // Mostly shapes that are present, sometimes one that is not (answer 0).
        const Shape shape =
            uniform01(rng_) < 0.8 ? pick(rng_, objects).shape : pick(rng_, spec_.shapes);
        const int n = static_cast<int>(std::count_if(
            objects.begin(), objects.end(), [&](const Object& o) { return o.shape == shape; }));
        const std::string p = plural(shape);
        return Draft{kind,
                     say("How many " + p + " are there in the image?",
                         {"Count the " + p + " in the image.", "How many " + p + " can you see?",
                          "How many " + p + " are in the image?"}),
                     std::to_string(n), counts,
                     seen + " Counting the " + p + " gives " + number_word(n) + "."};
      }
      case QuestionKind::kColor: {
        std::vector<const Object*> unique;
        for (const auto& o : objects) {
          if (referring_name(scene, o) == name(o.shape)) unique.push_back(&o);
        }
        if (unique.empty()) return std::nullopt;
        const Object& o = *pick(rng_, unique);
        const std::string n = name(o.shape);
        return Draft{kind,
                     say("What color is the " + n + "?",
                         {"What is the color of the " + n + "?", "The " + n + " is what color?",
                          "What color is the " + n + " in the image?"}),
                     name(o.color), names_of(spec_.colors),
                     seen + " The " + n + " is " + name(o.color) + "."};
      }
      case QuestionKind::kShape: {
        std::vector<const Object*> unique;
        for (const auto& o : objects) {
          if (std::count_if(objects.begin(), objects.end(),
                            [&](const Object& p) { return p.color == o.color; }) == 1) {
            unique.push_back(&o);
          }
        }
        if (unique.empty()) return std::nullopt;
        const Object& o = *pick(rng_, unique);
        const std::string c = name(o.color);
        return Draft{kind,
                     say("What shape is the " + c + " object?",
                         {"Tell me the shape of the " + c + " object.",
                          "What is the shape of the " + c + " object?",
                          "What shape is the " + c + " object in the image?"}),
                     name(o.shape), names_of(spec_.shapes),
                     seen + " The " + c + " object is " + article(name(o.shape)) + " " +
                         name(o.shape) + "."};
      }
      case QuestionKind::kPosition: {
        const std::vector<std::string> sides = {"left", "right", "above", "below"};
        if (objects.size() == 1) {
          const Object& o = objects[0];
          if (std::abs(o.x - 0.5) < 0.05) return std::nullopt;
          const std::string side = o.x < 0.5 ? "left" : "right";
          const std::string n = name(o.shape);
          return Draft{kind,
                       say("Is the " + n + " in the left or the right half of the image?",
                           {"Is the " + n + " in the left or the right half?",
                            "Is the " + n + " in the left half or the right half of the image?"}),
                       side,
                       {"left", "right"},
                       seen + " Its centre is in the " + side + " half of the image."};
        }
        std::vector<std::pair<int, int>> pairs;
        for (size_t i = 0; i < objects.size(); ++i) {
          for (size_t j = 0; j < objects.size(); ++j) {
            if (i != j && referring_name(scene, objects[i]) && referring_name(scene, objects[j])) {
              pairs.emplace_back(static_cast<int>(i), static_cast<int>(j));
            }
          }
        }
        if (pairs.empty()) return std::nullopt;
        const auto [i, j] = pick(rng_, pairs);
        const Object& a = objects[i];
        const Object& b = objects[j];
        const double dx = a.x - b.x;
        const double dy = a.y - b.y;
        // Asked only when one axis plainly dominates, so the answer is not a judgement call.
        if (std::max(std::abs(dx), std::abs(dy)) < 2 * spec_.position_margin ||
            std::min(std::abs(dx), std::abs(dy)) > 0.5 * std::max(std::abs(dx), std::abs(dy))) {
          return std::nullopt;
        }
        const std::string side = std::abs(dx) >= std::abs(dy) ? (dx < 0 ? "left" : "right")
                                                              : (dy < 0 ? "above" : "below");
        const std::string na = *referring_name(scene, a);
        const std::string nb = *referring_name(scene, b);
        const std::string phrase = side == "left" || side == "right" ? side + " of" : side;
        return Draft{kind,
                     say("Where is the " + na + " relative to the " + nb +
                             "? Answer left, right, above or below.",
                         {"Where is the " + na + " compared with the " + nb +
                              "? Answer left, right, above or below.",
                          "Relative to the " + nb + ", where is the " + na +
                              "? Answer left, right, above or below."}),
                     side, sides, seen + " The " + na + " is " + phrase + " the " + nb + "."};
      }
      case QuestionKind::kExistence: {
        const bool present = uniform01(rng_) < 0.5;
        Shape shape;
        Color color;
        auto exists = [&](Shape s, Color c) {
          return std::any_of(objects.begin(), objects.end(),
                             [&](const Object& o) { return o.shape == s && o.color == c; });
        };
        if (present) {
          const Object& o = pick(rng_, objects);
          shape = o.shape;
          color = o.color;
        } else {
          int tries = 0;
          do {
            shape = pick(rng_, spec_.shapes);
            color = pick(rng_, spec_.colors);
          } while (exists(shape, color) && ++tries < 100);
          if (exists(shape, color)) return std::nullopt;
        }
        const std::string d = name(color) + " " + name(shape);
        return Draft{kind,
                     say("Is there " + article(d) + " " + d + " in the image?",
                         {"Is there " + article(d) + " " + d + " anywhere in the image?",
                          "Is there " + article(d) + " " + d + " in the picture?",
                          "Is there " + article(d) + " " + d + "?"}),
                     present ? "yes" : "no",
                     {"yes", "no"},
                     seen + (present ? " There is " : " There is no ") + d + "."};
      }
    }
    return std::nullopt;
  };

  std::vector<QuestionKind> kinds = spec_.question_kinds;
  if (spec_.question_weights.empty()) {
    shuffle(rng_, kinds);
  } else {
    kinds = weighted_order(rng_, kinds, spec_.question_weights);
  }
  std::optional<Draft> draft;
  for (QuestionKind kind : kinds) {
    if ((draft = draft_of(kind))) break;
  }
  if (!draft) {
    // Counting always applies; reached only when the recipe lists no kind that fits the scene.
    draft = draft_of(QuestionKind::kCount);
  }

  Question q;
  q.kind = draft->kind;
  q.multiple_choice = uniform01(rng_) < spec_.mc_fraction;
  std::string reasoning = draft->reasoning;
  if (!q.multiple_choice) {
    q.problem = draft->problem;
    q.answer = draft->answer;
  } else {
    std::vector<std::string> others;
    for (const auto& option : draft->pool) {
      if (option != draft->answer) others.push_back(option);
    }
    shuffle(rng_, others);
    const int n_options = std::min<int>(spec_.num_options, static_cast<int>(others.size()) + 1);
    std::vector<std::string> options(others.begin(), others.begin() + (n_options - 1));
    options.push_back(draft->answer);
    if (draft->kind == QuestionKind::kExistence) {
      options = {"yes", "no"};
    } else {
      shuffle(rng_, options);
    }
    q.problem = draft->problem + " Options:";
    for (int k = 0; k < static_cast<int>(options.size()); ++k) {
      const std::string letter(1, static_cast<char>('A' + k));
      q.problem += " " + letter + ". " + options[k];
      if (options[k] == draft->answer) q.answer = letter;
    }
    if (draft->kind == QuestionKind::kExistence) {
      reasoning += " The answer " + draft->answer + " is option " + q.answer + ".";
    } else {
      // The options are checked in order up to the right one, so the answer's letter is the last
      // letter written: a small model finds it by recency, where naming the letter of a word seen
      // earlier would need a content look-up back into the question.
      for (int k = 0; k < static_cast<int>(options.size()); ++k) {
        const bool right = options[k] == draft->answer;
        reasoning += std::string(" ") + static_cast<char>('A' + k) + ". " + options[k] + "? " +
                     (right ? "yes." : "no.");
        if (right) break;
      }
    }
  }
  q.solution = "<think>" + reasoning + "</think><answer>" + q.answer + "</answer>";
  return q;
}

}  // namespace corl::data
