// ShapeWorld's vocabulary: shapes, colours, scenes, and the spec a prompt asks for.
//
// Coordinates are image-relative: x grows to the right, y grows downwards, both in [0, 1];
// `size` is half the side of the object's bounding box, as a fraction of the image side.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace corl::data {

enum class Shape { kCircle, kSquare, kTriangle, kDiamond, kCross };
enum class Color { kRed, kGreen, kBlue, kYellow, kPurple, kOrange, kCyan, kWhite };

inline constexpr std::array<Shape, 5> kAllShapes = {Shape::kCircle, Shape::kSquare,
                                                    Shape::kTriangle, Shape::kDiamond,
                                                    Shape::kCross};
inline constexpr std::array<Color, 8> kAllColors = {Color::kRed,    Color::kGreen, Color::kBlue,
                                                    Color::kYellow, Color::kPurple, Color::kOrange,
                                                    Color::kCyan,   Color::kWhite};

// Rendered on a black background; each colour is one exact RGB value.
struct Rgb {
  unsigned char r, g, b;
};

std::string name(Shape shape);
std::string name(Color color);
std::string plural(Shape shape);
// nullopt for a name that is not a shape / colour.
std::optional<Shape> shape_from_name(const std::string& name);
std::optional<Color> color_from_name(const std::string& name);
Rgb rgb(Color color);

struct Object {
  Shape shape = Shape::kCircle;
  Color color = Color::kRed;
  double x = 0.5;
  double y = 0.5;
  double size = 0.1;
};

struct Scene {
  std::vector<Object> objects;
};

// The GenEval prompt categories.
enum class Category { kSingleObject, kTwoObject, kCounting, kColors, kPosition, kColorAttr };
inline constexpr std::array<Category, 6> kAllCategories = {
    Category::kSingleObject, Category::kTwoObject, Category::kCounting,
    Category::kColors,       Category::kPosition,  Category::kColorAttr};
std::string name(Category category);
std::optional<Category> category_from_name(const std::string& name);

// Spatial relation of a subject to a reference object, as in "a circle left of a square".
enum class Relation { kLeftOf, kRightOf, kAbove, kBelow };
std::string name(Relation relation);  // "left of", "right of", "above", "below"
std::optional<Relation> relation_from_name(const std::string& name);

// What a prompt asks for, in GenEval's terms: objects to include (shape, how many, optionally
// a colour) and optionally a relation between the first two requirements.
struct Requirement {
  Shape shape = Shape::kCircle;
  int count = 1;
  std::optional<Color> color;
};

struct PromptSpec {
  Category category = Category::kSingleObject;
  std::vector<Requirement> include;
  // Counting prompts ask for exactly `count`; the others for at least `count`.
  bool exact_count = false;
  // Subject is include[0], reference is include[1].
  std::optional<Relation> relation;
};

// JSON in the dataset's schema: {"objects": [{"shape", "color", "x", "y", "size"}, ...]} and
// {"category", "include": [{"shape", "count", "color"?}], "exact_count", "relation"?}.
nlohmann::json to_json(const Scene& scene);
nlohmann::json to_json(const PromptSpec& spec);
// Throw corl::DataError naming `where` and the bad field.
Scene scene_from_json(const nlohmann::json& json, const std::string& where);
PromptSpec spec_from_json(const nlohmann::json& json, const std::string& where);

}  // namespace corl::data
