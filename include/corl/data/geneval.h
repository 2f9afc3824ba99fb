// GenEval's question, asked of ShapeWorld: does a detected scene show what the prompt asked for?
#pragma once

#include <string>

#include "corl/data/scene.h"

namespace corl::data {

struct Judgement {
  bool correct = false;  // every requirement and the relation hold
  double partial = 0.0;  // fraction of checks that hold, in [0, 1]: a denser reward signal
  std::string reason;    // first failed check, empty when correct
};

// A relation holds when the centres differ by more than `position_margin` (image-relative)
// along its axis.
Judgement judge(const PromptSpec& spec, const Scene& detected, double position_margin = 0.1);

// Whether `relation` holds for subject `a` and reference `b`.
bool holds(Relation relation, const Object& a, const Object& b, double position_margin);

}  // namespace corl::data
