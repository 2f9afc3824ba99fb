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
// How faithfully the reasoning walks a multiple-choice question's options, as the options reward
// gives it: of the options the reasoning names ("B. green?", "The answer yes is option A."), the
// fraction it names under the letter the question gives them, in [0, 1]; 0 when it names none.
// A question without options (an open one; with options it ends "Options: A. x B. y") scores 1
// when the reasoning names no option and 0 when it does: every option named there is invented.
double option_walk_agreement(const std::string& completion, const std::string& problem);

}  // namespace corl::reward
