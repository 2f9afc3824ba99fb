#include "corl/data/scene.h"

#include <cmath>

#include "corl/util/error.h"

namespace corl::data {

namespace {

// The one table of names: every to/from-name conversion reads it, so they cannot disagree.
template <typename Enum, std::size_t N>
struct NameTable {
  std::array<std::pair<Enum, const char*>, N> entries;

  std::string name(Enum value) const {
    for (const auto& [entry, text] : entries) {
      if (entry == value) return text;
    }
    return "?";  // unreachable for a valid enumerator
  }

  std::optional<Enum> from_name(const std::string& text) const {
    for (const auto& [entry, entry_text] : entries) {
      if (text == entry_text) return entry;
    }
    return std::nullopt;
  }
};

constexpr NameTable<Shape, 5> kShapeNames{{{{Shape::kCircle, "circle"},
                                            {Shape::kSquare, "square"},
                                            {Shape::kTriangle, "triangle"},
                                            {Shape::kDiamond, "diamond"},
                                            {Shape::kCross, "cross"}}}};

constexpr NameTable<Color, 8> kColorNames{{{{Color::kRed, "red"},
                                            {Color::kGreen, "green"},
                                            {Color::kBlue, "blue"},
                                            {Color::kYellow, "yellow"},
                                            {Color::kPurple, "purple"},
                                            {Color::kOrange, "orange"},
                                            {Color::kCyan, "cyan"},
                                            {Color::kWhite, "white"}}}};

constexpr NameTable<Category, 6> kCategoryNames{{{{Category::kSingleObject, "single_object"},
                                                  {Category::kTwoObject, "two_object"},
                                                  {Category::kCounting, "counting"},
                                                  {Category::kColors, "colors"},
                                                  {Category::kPosition, "position"},
                                                  {Category::kColorAttr, "color_attr"}}}};

constexpr NameTable<Relation, 4> kRelationNames{{{{Relation::kLeftOf, "left of"},
                                                  {Relation::kRightOf, "right of"},
                                                  {Relation::kAbove, "above"},
                                                  {Relation::kBelow, "below"}}}};

// Reads one field of a JSON row, reporting errors as "WHERE: field 'PATH': what".
class FieldReader {
 public:
  explicit FieldReader(const std::string& where) : where_(where) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw DataError(where_ + ": field '" + path + "': " + what);
  }

  const nlohmann::json& member(const nlohmann::json& object, const std::string& key,
                               const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) fail(path, "missing");
    return *it;
  }

  // Absent and null both mean "not given".
  const nlohmann::json* optional_member(const nlohmann::json& object,
                                        const std::string& key) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void expect_object(const nlohmann::json& json, const std::string& path) const {
    if (!json.is_object()) fail(path, "expected an object, got " + type_of(json));
  }

  const nlohmann::json& array(const nlohmann::json& object, const std::string& key,
                              const std::string& path) const {
    const nlohmann::json& value = member(object, key, path);
    if (!value.is_array()) fail(path, "expected an array, got " + type_of(value));
    return value;
  }

  std::string string(const nlohmann::json& value, const std::string& path) const {
    if (!value.is_string()) fail(path, "expected a string, got " + type_of(value));
    return value.get<std::string>();
  }

  double number(const nlohmann::json& value, const std::string& path, double low,
                double high) const {
    if (!value.is_number()) fail(path, "expected a number, got " + type_of(value));
    const double number = value.get<double>();
    if (!std::isfinite(number) || number < low || number > high) {
      fail(path,
           "value " + value.dump() + " is outside [" + format(low) + ", " + format(high) + "]");
    }
    return number;
  }

  int integer(const nlohmann::json& value, const std::string& path, int low) const {
    if (!value.is_number_integer()) fail(path, "expected an integer, got " + value.dump());
    const auto number = value.get<long long>();
    if (number < low) fail(path, "value " + value.dump() + " is below " + std::to_string(low));
    return static_cast<int>(number);
  }

  bool boolean(const nlohmann::json& value, const std::string& path) const {
    if (!value.is_boolean()) fail(path, "expected true or false, got " + value.dump());
    return value.get<bool>();
  }

  template <typename Enum, std::size_t N>
  Enum named(const nlohmann::json& value, const std::string& path, const NameTable<Enum, N>& table,
             const std::string& kind) const {
    const std::string text = string(value, path);
    std::optional<Enum> parsed = table.from_name(text);
    if (!parsed) {
      std::string known;
      for (const auto& entry : table.entries) {
        known += (known.empty() ? "" : ", ") + std::string(entry.second);
      }
      fail(path, "unknown " + kind + " '" + text + "' (known: " + known + ")");
    }
    return *parsed;
  }

 private:
  static std::string type_of(const nlohmann::json& json) { return json.type_name(); }

  static std::string format(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
  }

  std::string where_;
};

std::string indexed(const std::string& key, std::size_t index) {
  return key + "[" + std::to_string(index) + "]";
}

}  // namespace

std::string name(Shape shape) { return kShapeNames.name(shape); }
std::string name(Color color) { return kColorNames.name(color); }
std::string name(Category category) { return kCategoryNames.name(category); }
std::string name(Relation relation) { return kRelationNames.name(relation); }

std::string plural(Shape shape) {
  // "cross" is the only name whose plural is not name + "s".
  return shape == Shape::kCross ? "crosses" : name(shape) + "s";
}

std::optional<Shape> shape_from_name(const std::string& name) {
  return kShapeNames.from_name(name);
}
std::optional<Color> color_from_name(const std::string& name) {
  return kColorNames.from_name(name);
}
std::optional<Category> category_from_name(const std::string& name) {
  return kCategoryNames.from_name(name);
}
std::optional<Relation> relation_from_name(const std::string& name) {
  return kRelationNames.from_name(name);
}

Rgb rgb(Color color) {
  // Fully saturated hues about 30 degrees apart or more (purple sits 41 from blue), each at
  // full brightness: dimming by blur towards the black background keeps a pixel's chromaticity,
  // so the detector can still tell colours apart at an object's blurred edge.
  switch (color) {
    case Color::kRed:
      return {255, 0, 0};  // hue 0
    case Color::kGreen:
      return {0, 255, 0};  // hue 120
    case Color::kBlue:
      return {0, 0, 255};  // hue 240
    case Color::kYellow:
      return {255, 255, 0};  // hue 60
    case Color::kPurple:
      return {176, 0, 255};  // hue 281
    case Color::kOrange:
      return {255, 128, 0};  // hue 30
    case Color::kCyan:
      return {0, 255, 255};  // hue 180
    case Color::kWhite:
      return {255, 255, 255};  // no hue: saturation 0
  }
  return {0, 0, 0};
}

nlohmann::json to_json(const Scene& scene) {
  nlohmann::json objects = nlohmann::json::array();
  for (const Object& object : scene.objects) {
    objects.push_back({{"shape", name(object.shape)},
                       {"color", name(object.color)},
                       {"x", object.x},
                       {"y", object.y},
                       {"size", object.size}});
  }
  return {{"objects", std::move(objects)}};
}

nlohmann::json to_json(const PromptSpec& spec) {
  nlohmann::json include = nlohmann::json::array();
  for (const Requirement& requirement : spec.include) {
    nlohmann::json row = {{"shape", name(requirement.shape)}, {"count", requirement.count}};
    if (requirement.color) row["color"] = name(*requirement.color);
    include.push_back(std::move(row));
  }
  nlohmann::json json = {{"category", name(spec.category)},
                         {"include", std::move(include)},
                         {"exact_count", spec.exact_count}};
  if (spec.relation) json["relation"] = name(*spec.relation);
  return json;
}

Scene scene_from_json(const nlohmann::json& json, const std::string& where) {
  const FieldReader read(where);
  read.expect_object(json, "scene");
  const nlohmann::json& objects = read.array(json, "objects", "objects");
  Scene scene;
  scene.objects.reserve(objects.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const std::string path = indexed("objects", i);
    const nlohmann::json& row = objects[i];
    read.expect_object(row, path);
    Object object;
    object.shape = read.named(read.member(row, "shape", path + ".shape"), path + ".shape",
                              kShapeNames, "shape");
    object.color = read.named(read.member(row, "color", path + ".color"), path + ".color",
                              kColorNames, "color");
    object.x = read.number(read.member(row, "x", path + ".x"), path + ".x", 0.0, 1.0);
    object.y = read.number(read.member(row, "y", path + ".y"), path + ".y", 0.0, 1.0);
    object.size = read.number(read.member(row, "size", path + ".size"), path + ".size", 0.0, 0.5);
    scene.objects.push_back(object);
  }
  return scene;
}

PromptSpec spec_from_json(const nlohmann::json& json, const std::string& where) {
  const FieldReader read(where);
  read.expect_object(json, "spec");
  PromptSpec spec;
  spec.category =
      read.named(read.member(json, "category", "category"), "category", kCategoryNames, "category");
  const nlohmann::json& include = read.array(json, "include", "include");
  if (include.empty()) read.fail("include", "expected at least one requirement");
  for (std::size_t i = 0; i < include.size(); ++i) {
    const std::string path = indexed("include", i);
    const nlohmann::json& row = include[i];
    read.expect_object(row, path);
    Requirement requirement;
    requirement.shape = read.named(read.member(row, "shape", path + ".shape"), path + ".shape",
                                   kShapeNames, "shape");
    requirement.count =
        read.integer(read.member(row, "count", path + ".count"), path + ".count", 1);
    if (const nlohmann::json* color = read.optional_member(row, "color")) {
      requirement.color = read.named(*color, path + ".color", kColorNames, "color");
    }
    spec.include.push_back(requirement);
  }
  if (const nlohmann::json* exact = read.optional_member(json, "exact_count")) {
    spec.exact_count = read.boolean(*exact, "exact_count");
  }
  if (const nlohmann::json* relation = read.optional_member(json, "relation")) {
    spec.relation = read.named(*relation, "relation", kRelationNames, "relation");
    if (spec.include.size() < 2) {
      read.fail("relation",
                "needs two requirements in 'include', got " + std::to_string(spec.include.size()));
    }
  }
  return spec;
}

}  // namespace corl::data
