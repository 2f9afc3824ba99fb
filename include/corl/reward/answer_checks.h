// The verifiable checks behind the image-to-text rewards: the completion's form, its answer, and
// the objects its reasoning reads off the image.
#pragma once

#include <string>

#include "corl/data/scene.h"

namespace corl::reward {

// <think>...</think><answer>...</answer> and nothing else, one of each tag, tags not nested.
bool well_formed(const std::string& completion);
// Whether the answer in `completion`'s <answer> tag matches `solution` (MC: letter; OE: value).
bool answer_correct(const std::string& completion, const std::string& solution,
                    const std::string& qa_type);
// F1 between the objects `completion` lists and `scene`'s, as the perception reward gives it.
double object_list_f1(const std::string& completion, const data::Scene& scene);

}  // namespace corl::reward
