#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/imgproc.hpp>

#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/data/render.h"
#include "corl/data/world.h"
#include "corl/util/error.h"

namespace corl::data {
namespace {

Object at(Shape shape, Color color, double x, double y) { return {shape, color, x, y, 0.1}; }

PromptSpec spec_of(Category category, std::vector<Requirement> include, bool exact_count = false,
                   std::optional<Relation> relation = std::nullopt) {
  PromptSpec spec;
  spec.category = category;
  spec.include = std::move(include);
  spec.exact_count = exact_count;
  spec.relation = relation;
  return spec;
}

TEST(Holds, StrictlyBeyondTheMarginAlongTheAxis) {
  const Object left = at(Shape::kCircle, Color::kRed, 0.2, 0.5);
  const Object right = at(Shape::kSquare, Color::kRed, 0.5, 0.5);
  EXPECT_TRUE(holds(Relation::kLeftOf, left, right, 0.1));
  EXPECT_FALSE(holds(Relation::kLeftOf, right, left, 0.1));
  EXPECT_TRUE(holds(Relation::kRightOf, right, left, 0.1));
  EXPECT_FALSE(holds(Relation::kLeftOf, left, right, 0.3));  // 0.3 apart is not more than 0.3
  EXPECT_FALSE(holds(Relation::kAbove, left, right, 0.1));   // same row

  // y grows downwards: the smaller y is above.
  const Object top = at(Shape::kCircle, Color::kRed, 0.5, 0.1);
  const Object bottom = at(Shape::kCircle, Color::kRed, 0.5, 0.6);
  EXPECT_TRUE(holds(Relation::kAbove, top, bottom, 0.1));
  EXPECT_TRUE(holds(Relation::kBelow, bottom, top, 0.1));
  EXPECT_FALSE(holds(Relation::kBelow, top, bottom, 0.1));
}

TEST(Judge, SingleObjectPresent) {
  const auto spec = spec_of(Category::kSingleObject, {{Shape::kCircle, 1, std::nullopt}});
  const Judgement j = judge(spec, Scene{{at(Shape::kCircle, Color::kBlue, 0.5, 0.5)}});
  EXPECT_TRUE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 1.0);
  EXPECT_EQ(j.reason, "");
}

TEST(Judge, WrongColour) {
  const auto spec = spec_of(Category::kColors, {{Shape::kCircle, 1, Color::kRed}});
  const Judgement j = judge(spec, Scene{{at(Shape::kCircle, Color::kBlue, 0.5, 0.5)}});
  EXPECT_FALSE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 0.5);  // one check: no red circle, but a circle: half right
  EXPECT_EQ(j.reason, "expected 1 red circle, found 0");
  // A square earns nothing.
  EXPECT_DOUBLE_EQ(judge(spec, Scene{{at(Shape::kSquare, Color::kBlue, 0.5, 0.5)}}).partial, 0.0);
}

TEST(Judge, ExactCountingScoresTheDistanceToTheCount) {
  const auto spec = spec_of(Category::kCounting, {{Shape::kSquare, 3, std::nullopt}}, true);
  const auto squares = [](int n) {
    Scene scene;
    for (int i = 0; i < n; ++i)
      scene.objects.push_back(at(Shape::kSquare, Color::kRed, 0.1 * i, 0));
    scene.objects.push_back(at(Shape::kCircle, Color::kRed, 0.9, 0.9));  // not counted
    return scene;
  };
  const Judgement right = judge(spec, squares(3));
  EXPECT_TRUE(right.correct);
  EXPECT_DOUBLE_EQ(right.partial, 1.0);

  const Judgement two = judge(spec, squares(2));  // 1 - |2 - 3| / 3
  EXPECT_FALSE(two.correct);
  EXPECT_DOUBLE_EQ(two.partial, 2.0 / 3.0);
  EXPECT_EQ(two.reason, "expected exactly 3 squares, found 2");

  const Judgement four = judge(spec, squares(4));  // overflow fails an exact count
  EXPECT_FALSE(four.correct);
  EXPECT_DOUBLE_EQ(four.partial, 2.0 / 3.0);
  EXPECT_EQ(four.reason, "expected exactly 3 squares, found 4");

  EXPECT_DOUBLE_EQ(judge(spec, squares(0)).partial, 0.0);
  EXPECT_DOUBLE_EQ(judge(spec, squares(7)).partial, 0.0);  // 1 - 4/3 clipped at 0
}

TEST(Judge, AtLeastCountsAcceptMore) {
  const auto spec = spec_of(Category::kTwoObject, {{Shape::kCircle, 2, std::nullopt}});
  Scene three;
  for (int i = 0; i < 3; ++i) three.objects.push_back(at(Shape::kCircle, Color::kRed, 0.2 * i, 0));
  EXPECT_TRUE(judge(spec, three).correct);

  const auto four = spec_of(Category::kTwoObject, {{Shape::kCircle, 4, std::nullopt}});
  const Judgement j = judge(four, Scene{{at(Shape::kCircle, Color::kRed, 0.5, 0.5)}});
  EXPECT_DOUBLE_EQ(j.partial, 0.25);  // found 1 of at least 4
  EXPECT_EQ(j.reason, "expected 4 circles, found 1");
}

TEST(Judge, TwoObjectsOneMissing) {
  const auto spec = spec_of(Category::kTwoObject,
                            {{Shape::kCircle, 1, std::nullopt}, {Shape::kCross, 1, std::nullopt}});
  const Judgement j = judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.5, 0.5),
                                         at(Shape::kSquare, Color::kRed, 0.2, 0.2)}});
  EXPECT_FALSE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 0.5);
  EXPECT_EQ(j.reason, "expected 1 cross, found 0");
}

TEST(Judge, ColourAttributesBindToTheirShapes) {
  const auto spec = spec_of(Category::kColorAttr,
                            {{Shape::kCircle, 1, Color::kRed}, {Shape::kSquare, 1, Color::kGreen}});
  // The colours are present but swapped between the shapes.
  const Judgement j = judge(spec, Scene{{at(Shape::kCircle, Color::kGreen, 0.3, 0.5),
                                         at(Shape::kSquare, Color::kRed, 0.7, 0.5)}});
  EXPECT_FALSE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 0.5);  // each shape is there in the other's colour: half right
  EXPECT_EQ(j.reason, "expected 1 red circle, found 0");
  // Under the exclusive rule the half-right objects are not clutter.
  EXPECT_DOUBLE_EQ(judge(spec,
                         Scene{{at(Shape::kCircle, Color::kGreen, 0.3, 0.5),
                                at(Shape::kSquare, Color::kRed, 0.7, 0.5)}},
                         JudgeRules{0.1, true})
                       .partial,
                   0.5);
}

TEST(Judge, Position) {
  const auto spec = spec_of(Category::kPosition,
                            {{Shape::kCircle, 1, Color::kRed}, {Shape::kSquare, 1, Color::kOrange}},
                            false, Relation::kLeftOf);
  const Object circle_left = at(Shape::kCircle, Color::kRed, 0.2, 0.5);
  const Object square_right = at(Shape::kSquare, Color::kOrange, 0.8, 0.5);
  const Judgement right = judge(spec, Scene{{circle_left, square_right}});
  EXPECT_TRUE(right.correct);
  EXPECT_DOUBLE_EQ(right.partial, 1.0);

  // Both objects, wrong side: two of three checks hold.
  const Judgement swapped = judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.8, 0.5),
                                               at(Shape::kSquare, Color::kOrange, 0.2, 0.5)}});
  EXPECT_FALSE(swapped.correct);
  EXPECT_DOUBLE_EQ(swapped.partial, 2.0 / 3.0);
  EXPECT_EQ(swapped.reason, "no red circle left of an orange square");

  // Within the margin is not "left of".
  const Judgement close = judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.45, 0.5),
                                             at(Shape::kSquare, Color::kOrange, 0.5, 0.5)}});
  EXPECT_FALSE(close.correct);
  EXPECT_TRUE(judge(spec,
                    Scene{{at(Shape::kCircle, Color::kRed, 0.45, 0.5),
                           at(Shape::kSquare, Color::kOrange, 0.5, 0.5)}},
                    JudgeRules{0.01, false})
                  .correct);

  // Any pair will do: a second circle on the right does not spoil the one on the left.
  EXPECT_TRUE(
      judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.9, 0.1), circle_left, square_right}})
          .correct);

  // Missing reference: its requirement and the relation fail.
  const Judgement alone = judge(spec, Scene{{circle_left}});
  EXPECT_DOUBLE_EQ(alone.partial, 1.0 / 3.0);
  EXPECT_EQ(alone.reason, "expected 1 orange square, found 0");
}

TEST(Judge, RelationBetweenObjectsOfOneKindNeedsTwoOfThem) {
  const auto spec = spec_of(Category::kPosition,
                            {{Shape::kCircle, 1, std::nullopt}, {Shape::kCircle, 1, std::nullopt}},
                            false, Relation::kAbove);
  const Judgement one = judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.5, 0.5)}});
  EXPECT_FALSE(one.correct);
  EXPECT_DOUBLE_EQ(one.partial, 2.0 / 3.0);
  EXPECT_TRUE(judge(spec, Scene{{at(Shape::kCircle, Color::kRed, 0.5, 0.2),
                                 at(Shape::kCircle, Color::kBlue, 0.5, 0.7)}})
                  .correct);
}

// ShapeWorld's rule: nothing but the requested objects.
TEST(Judge, ExclusiveFailsUnrequestedObjects) {
  const JudgeRules shapeworld{0.1, true};
  const auto spec = spec_of(Category::kSingleObject, {{Shape::kCircle, 1, std::nullopt}});
  const Object circle = at(Shape::kCircle, Color::kBlue, 0.5, 0.5);
  EXPECT_TRUE(judge(spec, Scene{{circle}}, shapeworld).correct);

  // Clutter around the circle: GenEval's rule passes it, the exclusive rule does not.
  const Scene clutter{{circle, at(Shape::kSquare, Color::kRed, 0.1, 0.1),
                       at(Shape::kTriangle, Color::kRed, 0.9, 0.9)}};
  EXPECT_TRUE(judge(spec, clutter).correct);
  const Judgement j = judge(spec, clutter, shapeworld);
  EXPECT_FALSE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 1.0 / 3.0);  // presence 1, times 1 of 3 objects claimed
  EXPECT_EQ(j.reason, "2 objects the prompt did not ask for");

  // A second circle is unrequested too: a requirement claims only `count` objects.
  const Judgement two =
      judge(spec, Scene{{circle, at(Shape::kCircle, Color::kRed, 0.1, 0.1)}}, shapeworld);
  EXPECT_FALSE(two.correct);
  EXPECT_EQ(two.reason, "1 object the prompt did not ask for");

  // One extra beside four requested: the count check holds, times 4 of 5 objects claimed.
  const auto four = spec_of(Category::kCounting, {{Shape::kSquare, 4, std::nullopt}}, true);
  Scene squares;
  for (int i = 0; i < 4; ++i)
    squares.objects.push_back(at(Shape::kSquare, Color::kRed, 0.2 * i, 0));
  squares.objects.push_back(at(Shape::kCircle, Color::kRed, 0.9, 0.9));
  EXPECT_DOUBLE_EQ(judge(four, squares, shapeworld).partial, 0.8);
}

// Nothing drawn earns nothing: the exclusive rule scales credit, it does not add any.
TEST(Judge, ExclusiveGivesAnEmptyImageNoCredit) {
  const JudgeRules shapeworld{0.1, true};
  const auto spec = spec_of(Category::kTwoObject,
                            {{Shape::kCircle, 1, std::nullopt}, {Shape::kSquare, 1, std::nullopt}});
  const Judgement j = judge(spec, Scene{}, shapeworld);
  EXPECT_FALSE(j.correct);
  EXPECT_DOUBLE_EQ(j.partial, 0.0);
}

TEST(Judge, ExclusiveLetsRequirementsOfOneKindClaimDifferentObjects) {
  const JudgeRules shapeworld{0.1, true};
  const auto spec = spec_of(Category::kPosition,
                            {{Shape::kCircle, 1, std::nullopt}, {Shape::kCircle, 1, std::nullopt}},
                            false, Relation::kAbove);
  const Judgement j = judge(spec,
                            Scene{{at(Shape::kCircle, Color::kRed, 0.5, 0.2),
                                   at(Shape::kCircle, Color::kBlue, 0.5, 0.7)}},
                            shapeworld);
  EXPECT_TRUE(j.correct) << j.reason;
  EXPECT_DOUBLE_EQ(j.partial, 1.0);
}

// The judge as used: on what the detector reads from a rendered, degraded image.
TEST(Judge, RenderedScenesPassTheirOwnSpecs) {
  Scene scene;
  scene.objects.push_back({Shape::kTriangle, Color::kPurple, 0.2, 0.3, 0.12});
  scene.objects.push_back({Shape::kDiamond, Color::kCyan, 0.75, 0.35, 0.1});
  scene.objects.push_back({Shape::kDiamond, Color::kYellow, 0.6, 0.8, 0.1});
  cv::Mat image = render(scene, 64);
  cv::GaussianBlur(image, image, cv::Size(0, 0), 0.8);
  const Scene seen = detect(image);

  EXPECT_TRUE(judge(spec_of(Category::kCounting, {{Shape::kDiamond, 2, std::nullopt}}, true), seen)
                  .correct);
  EXPECT_TRUE(
      judge(spec_of(Category::kPosition,
                    {{Shape::kTriangle, 1, std::nullopt}, {Shape::kDiamond, 1, Color::kCyan}},
                    false, Relation::kLeftOf),
            seen)
          .correct);
  EXPECT_TRUE(
      judge(spec_of(Category::kPosition,
                    {{Shape::kDiamond, 1, Color::kYellow}, {Shape::kTriangle, 1, Color::kPurple}},
                    false, Relation::kBelow),
            seen)
          .correct);
  const Judgement wrong =
      judge(spec_of(Category::kColors, {{Shape::kTriangle, 1, Color::kBlue}}), seen);
  EXPECT_FALSE(wrong.correct);
  EXPECT_EQ(wrong.reason, "expected 1 blue triangle, found 0");
}

// The five lines of tests/data/geneval/evaluation_metadata.jsonl, written in GenEval's own form.
std::vector<nlohmann::json> geneval_lines() {
  std::ifstream in(std::string(CORL_SOURCE_DIR) + "/tests/data/geneval/evaluation_metadata.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string text; std::getline(in, text);) lines.push_back(nlohmann::json::parse(text));
  return lines;
}

TEST(GenevalMetadata, ReadsGenevalsOwnLinesAsShapeWorldSpecs) {
  const auto lines = geneval_lines();
  ASSERT_EQ(lines.size(), 5u);
  std::string why;
  std::vector<PromptSpec> specs;
  for (const auto& line : lines) {
    const auto spec = spec_from_geneval(line, "metadata", why);
    ASSERT_TRUE(spec) << why;
    specs.push_back(*spec);
  }
  EXPECT_EQ(specs[0].category, Category::kSingleObject);
  EXPECT_EQ(specs[0].include.at(0).shape, Shape::kCircle);
  // "three triangles", excluding four: exactly three.
  EXPECT_EQ(specs[1].category, Category::kCounting);
  EXPECT_EQ(specs[1].include.at(0).count, 3);
  EXPECT_TRUE(specs[1].exact_count);
  EXPECT_EQ(specs[2].include.at(0).color, Color::kBlue);
  EXPECT_FALSE(specs[2].exact_count);
  // "a circle left of a square": GenEval lists the square first; corl's subject is the circle.
  EXPECT_EQ(specs[3].include.at(0).shape, Shape::kCircle);
  EXPECT_EQ(specs[3].include.at(1).shape, Shape::kSquare);
  EXPECT_EQ(specs[3].relation, Relation::kLeftOf);
  EXPECT_EQ(specs[4].include.at(1).color, Color::kYellow);

  // Judged: the circle at x = 0.2 is left of the square at 0.8; swapped, it is not.
  const Scene left{
      {at(Shape::kCircle, Color::kRed, 0.2, 0.5), at(Shape::kSquare, Color::kBlue, 0.8, 0.5)}};
  const Scene right{
      {at(Shape::kCircle, Color::kRed, 0.8, 0.5), at(Shape::kSquare, Color::kBlue, 0.2, 0.5)}};
  EXPECT_TRUE(judge(specs[3], left).correct);
  EXPECT_FALSE(judge(specs[3], right).correct);
  // Four triangles fail "exactly three"; three pass.
  Scene triangles;
  for (double x : {0.2, 0.4, 0.6})
    triangles.objects.push_back(at(Shape::kTriangle, Color::kRed, x, 0.5));
  EXPECT_TRUE(judge(specs[1], triangles).correct);
  triangles.objects.push_back(at(Shape::kTriangle, Color::kRed, 0.8, 0.5));
  EXPECT_FALSE(judge(specs[1], triangles).correct);
}

TEST(GenevalMetadata, WorldSpecsRoundTripThroughGenevalsForm) {
  WorldSampler sampler(WorldSpec::from_recipe(config::WorldRecipe{}), 7);
  std::string why;
  for (int i = 0; i < 120; ++i) {
    const Sample sample = sampler.next();
    const auto metadata = to_geneval_metadata(sample.spec, sample.prompt);
    EXPECT_EQ(metadata["tag"], name(sample.spec.category));
    EXPECT_EQ(metadata["prompt"], sample.prompt);
    const auto back = spec_from_geneval(nlohmann::json::parse(metadata.dump()), "line", why);
    ASSERT_TRUE(back) << why;
    EXPECT_EQ(to_json(*back), to_json(sample.spec)) << metadata.dump();
  }
}

TEST(GenevalMetadata, CocoClassesAreNotJudgedAndMalformedLinesNameWhere) {
  std::string why;
  const auto coco = nlohmann::json::parse(
      R"({"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"})");
  EXPECT_FALSE(spec_from_geneval(coco, "m.jsonl:1", why));
  EXPECT_NE(why.find("bench"), std::string::npos);
  const auto no_count = nlohmann::json::parse(
      R"({"tag": "colors", "include": [{"class": "circle"}], "prompt": "x"})");
  try {
    spec_from_geneval(no_count, "m.jsonl:2", why);
    FAIL() << "a requirement without a count was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl:2: field 'include[0].count'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace corl::data
