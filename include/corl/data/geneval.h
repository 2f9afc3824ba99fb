// GenEval's question, asked of ShapeWorld: does a detected scene show what the prompt asked for?
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "corl/data/scene.h"

namespace corl::data {

struct Judgement {
  bool correct = false;  // every requirement and the relation hold
  double partial = 0.0;  // fraction of checks that hold, in [0, 1]: a denser reward signal
  std::string reason;    // first failed check, empty when correct
};

struct JudgeRules {
  // A relation holds when the centres differ by more than this (image-relative) along its axis.
  double position_margin = 0.1;
  // GenEval only asks that the requested objects be present, so clutter passes. ShapeWorld's
  // captions describe the whole scene; with `exclusive` an image must also show nothing else:
  // every detected object must be claimed by a requirement (each claims up to `count` of its
  // matches that no earlier requirement claimed). Partial credit is then scaled by the share of
  // detected objects that are claimed.
  bool exclusive = false;
};

Judgement judge(const PromptSpec& spec, const Scene& detected, const JudgeRules& rules = {});

// Whether `relation` holds for subject `a` and reference `b`.
bool holds(Relation relation, const Object& a, const Object& b, double position_margin);

// GenEval's prompt metadata, a line of its evaluation_metadata.jsonl:
//
//   {"tag": category, "include": [{"class", "count", "color"?, "position"?: [relation, k]}],
//    "exclude"?: [{"class", "count"}], "prompt"}
//
// A requirement with a position stands in that relation to the objects of include[k] (GenEval
// lists the reference first); an exclude fails an image with `count` or more of a class (a
// counting prompt for N excludes N + 1). ShapeWorld's specs map onto it one to one.
nlohmann::ordered_json to_geneval_metadata(const PromptSpec& spec, const std::string& prompt);

// The spec of a metadata line that asks only for ShapeWorld's shapes and colours, in the forms
// to_geneval_metadata writes; nullopt with `unjudgeable` set to why when it asks for anything
// else (a COCO class, a relation between other requirements, another exclusion). A line that is
// not GenEval's form at all throws corl::DataError naming `where`.
std::optional<PromptSpec> spec_from_geneval(const nlohmann::json& metadata,
                                            const std::string& where, std::string& unjudgeable);

}  // namespace corl::data
