#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "corl/data/scene.h"
#include "corl/util/error.h"

namespace corl::data {
namespace {

TEST(SceneNames, RoundTripEveryEnumerator) {
  for (Shape shape : kAllShapes) EXPECT_EQ(shape_from_name(name(shape)), shape);
  for (Color color : kAllColors) EXPECT_EQ(color_from_name(name(color)), color);
  for (Category category : kAllCategories) EXPECT_EQ(category_from_name(name(category)), category);
  for (Relation relation :
       {Relation::kLeftOf, Relation::kRightOf, Relation::kAbove, Relation::kBelow}) {
    EXPECT_EQ(relation_from_name(name(relation)), relation);
  }
}

TEST(SceneNames, SpelledAsPromptsSpellThem) {
  EXPECT_EQ(name(Shape::kCircle), "circle");
  EXPECT_EQ(name(Color::kPurple), "purple");
  EXPECT_EQ(name(Category::kColorAttr), "color_attr");
  EXPECT_EQ(name(Relation::kLeftOf), "left of");
  EXPECT_EQ(name(Relation::kBelow), "below");
  EXPECT_EQ(plural(Shape::kSquare), "squares");
  EXPECT_EQ(plural(Shape::kCross), "crosses");
}

TEST(SceneNames, UnknownNamesAreNullopt) {
  EXPECT_FALSE(shape_from_name("hexagon"));
  EXPECT_FALSE(shape_from_name("Circle"));
  EXPECT_FALSE(color_from_name(""));
  EXPECT_FALSE(category_from_name("counting "));
  EXPECT_FALSE(relation_from_name("left_of"));
}

// Hue in degrees, as HSV defines it.
double hue(Rgb c) {
  const double r = c.r / 255.0, g = c.g / 255.0, b = c.b / 255.0;
  const double top = std::max({r, g, b}), low = std::min({r, g, b});
  const double range = top - low;
  if (range == 0) return -1;
  double sector;
  if (top == r) {
    sector = std::fmod((g - b) / range + 6, 6.0);
  } else if (top == g) {
    sector = (b - r) / range + 2;
  } else {
    sector = (r - g) / range + 4;
  }
  return 60 * sector;
}

TEST(ScenePalette, SaturatedBrightAndWellSeparatedInHue) {
  std::set<std::tuple<int, int, int>> distinct;
  std::vector<double> hues;
  for (Color color : kAllColors) {
    const Rgb c = rgb(color);
    distinct.insert({c.r, c.g, c.b});
    // Full brightness: far above the detector's background threshold and the black background.
    EXPECT_EQ(std::max({c.r, c.g, c.b}), 255) << name(color);
    if (color == Color::kWhite) {
      EXPECT_EQ(hue(c), -1);
      continue;
    }
    EXPECT_EQ(std::min({c.r, c.g, c.b}), 0) << name(color) << " is not fully saturated";
    hues.push_back(hue(c));
  }
  EXPECT_EQ(distinct.size(), kAllColors.size());
  for (std::size_t i = 0; i < hues.size(); ++i) {
    for (std::size_t j = i + 1; j < hues.size(); ++j) {
      const double d = std::abs(hues[i] - hues[j]);
      EXPECT_GE(std::min(d, 360 - d), 29.5) << i << " vs " << j;
    }
  }
  EXPECT_NEAR(hue(rgb(Color::kRed)), 0, 1e-9);
  EXPECT_NEAR(hue(rgb(Color::kGreen)), 120, 1e-9);
  EXPECT_NEAR(hue(rgb(Color::kBlue)), 240, 1e-9);
}

TEST(SceneJson, SceneHasTheDatasetSchema) {
  Scene scene;
  scene.objects.push_back({Shape::kTriangle, Color::kOrange, 0.25, 0.75, 0.125});
  const nlohmann::json expected = nlohmann::json::parse(
      R"({"objects": [{"shape": "triangle", "color": "orange", "x": 0.25, "y": 0.75,
                       "size": 0.125}]})");
  EXPECT_EQ(to_json(scene), expected);
}

TEST(SceneJson, SceneRoundTrips) {
  Scene scene;
  scene.objects.push_back({Shape::kCross, Color::kCyan, 0.1, 0.9, 0.09});
  scene.objects.push_back({Shape::kDiamond, Color::kWhite, 0.6, 0.3, 0.16});
  const Scene back = scene_from_json(to_json(scene), "test");
  ASSERT_EQ(back.objects.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.objects[i].shape, scene.objects[i].shape);
    EXPECT_EQ(back.objects[i].color, scene.objects[i].color);
    EXPECT_DOUBLE_EQ(back.objects[i].x, scene.objects[i].x);
    EXPECT_DOUBLE_EQ(back.objects[i].y, scene.objects[i].y);
    EXPECT_DOUBLE_EQ(back.objects[i].size, scene.objects[i].size);
  }
  EXPECT_TRUE(
      scene_from_json(nlohmann::json{{"objects", nlohmann::json::array()}}, "t").objects.empty());
}

TEST(SceneJson, SpecHasTheDatasetSchema) {
  PromptSpec spec;
  spec.category = Category::kPosition;
  spec.include = {{Shape::kCircle, 1, Color::kRed}, {Shape::kSquare, 1, std::nullopt}};
  spec.relation = Relation::kRightOf;
  const nlohmann::json expected = nlohmann::json::parse(
      R"({"category": "position", "exact_count": false, "relation": "right of",
          "include": [{"shape": "circle", "count": 1, "color": "red"},
                      {"shape": "square", "count": 1}]})");
  EXPECT_EQ(to_json(spec), expected);
}

TEST(SceneJson, SpecRoundTrips) {
  PromptSpec spec;
  spec.category = Category::kCounting;
  spec.include = {{Shape::kDiamond, 3, std::nullopt}};
  spec.exact_count = true;
  const PromptSpec back = spec_from_json(to_json(spec), "test");
  EXPECT_EQ(back.category, Category::kCounting);
  ASSERT_EQ(back.include.size(), 1u);
  EXPECT_EQ(back.include[0].shape, Shape::kDiamond);
  EXPECT_EQ(back.include[0].count, 3);
  EXPECT_FALSE(back.include[0].color);
  EXPECT_TRUE(back.exact_count);
  EXPECT_FALSE(back.relation);
}

TEST(SceneJson, NullMeansAbsent) {
  const PromptSpec spec =
      spec_from_json(nlohmann::json::parse(R"({"category": "single_object", "relation": null,
                                "include": [{"shape": "cross", "count": 1, "color": null}]})"),
                     "t");
  EXPECT_FALSE(spec.relation);
  EXPECT_FALSE(spec.include[0].color);
  EXPECT_FALSE(spec.exact_count);
}

// The message of the DataError `parse` throws, or "" when it throws none.
template <typename Parse>
std::string error_of(Parse parse) {
  try {
    parse();
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

TEST(SceneJson, SceneErrorsNameWhereAndField) {
  const auto scene_error = [](const char* text) {
    return error_of([&] { scene_from_json(nlohmann::json::parse(text), "data.jsonl:7"); });
  };
  EXPECT_EQ(scene_error(R"({"objects": [{"shape": "circle", "color": "red", "x": 0.5, "y": 0.5,
                                          "size": 0.1},
                                         {"shape": "hexagon", "color": "red", "x": 0.5,
                                          "y": 0.5, "size": 0.1}]})"),
            "data.jsonl:7: field 'objects[1].shape': unknown shape 'hexagon' (known: circle, "
            "square, triangle, diamond, cross)");
  const std::string missing =
      scene_error(R"({"objects": [{"shape": "circle", "color": "red", "y": 0.5, "size": 0.1}]})");
  EXPECT_EQ(missing, "data.jsonl:7: field 'objects[0].x': missing");
  const std::string range = scene_error(
      R"({"objects": [{"shape": "circle", "color": "red", "x": 1.5, "y": 0.5, "size": 0.1}]})");
  EXPECT_NE(range.find("data.jsonl:7: field 'objects[0].x'"), std::string::npos) << range;
  EXPECT_NE(range.find("1.5"), std::string::npos) << range;
  const std::string type = scene_error(
      R"({"objects": [{"shape": "circle", "color": 3, "x": 0.5, "y": 0.5, "size": 0.1}]})");
  EXPECT_EQ(type, "data.jsonl:7: field 'objects[0].color': expected a string, got number");
  EXPECT_EQ(scene_error(R"({"objects": {}})"),
            "data.jsonl:7: field 'objects': expected an array, got object");
  EXPECT_EQ(scene_error(R"({})"), "data.jsonl:7: field 'objects': missing");
  EXPECT_EQ(scene_error(R"([1])"), "data.jsonl:7: field 'scene': expected an object, got array");
}

TEST(SceneJson, SpecErrorsNameWhereAndField) {
  const auto spec_error = [](const char* text) {
    return error_of([&] { spec_from_json(nlohmann::json::parse(text), "eval.jsonl:12"); });
  };
  EXPECT_EQ(spec_error(R"({"category": "counting", "include": [{"shape": "circle",
                                                                "count": 0}]})"),
            "eval.jsonl:12: field 'include[0].count': value 0 is below 1");
  EXPECT_EQ(spec_error(R"({"category": "counting", "include": [{"shape": "circle",
                                                                "count": 2.5}]})"),
            "eval.jsonl:12: field 'include[0].count': expected an integer, got 2.5");
  const std::string color = spec_error(
      R"({"category": "colors", "include": [{"shape": "circle", "count": 1, "color": "pink"}]})");
  EXPECT_NE(color.find("eval.jsonl:12: field 'include[0].color': unknown color 'pink'"),
            std::string::npos)
      << color;
  const std::string category =
      spec_error(R"({"category": "texture", "include": [{"shape": "circle", "count": 1}]})");
  EXPECT_NE(category.find("field 'category': unknown category 'texture'"), std::string::npos)
      << category;
  EXPECT_EQ(spec_error(R"({"category": "position", "relation": "left of",
                           "include": [{"shape": "circle", "count": 1}]})"),
            "eval.jsonl:12: field 'relation': needs two requirements in 'include', got 1");
  const std::string relation = spec_error(
      R"({"category": "position", "relation": "near", "include": [{"shape": "circle",
          "count": 1}, {"shape": "square", "count": 1}]})");
  EXPECT_NE(relation.find("field 'relation': unknown relation 'near'"), std::string::npos)
      << relation;
  EXPECT_EQ(spec_error(R"({"category": "counting", "include": []})"),
            "eval.jsonl:12: field 'include': expected at least one requirement");
  EXPECT_EQ(spec_error(R"({"category": "counting", "exact_count": 1,
                           "include": [{"shape": "circle", "count": 1}]})"),
            "eval.jsonl:12: field 'exact_count': expected true or false, got 1");
}

}  // namespace
}  // namespace corl::data
