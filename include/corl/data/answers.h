// Reading an answer out of a completion and comparing it with the gold one: the verifiable part
// of the understanding task, shared by evaluation and the accuracy reward.
#pragma once

#include <optional>
#include <string>

namespace corl::data {

// The text inside the last <answer>...</answer>, trimmed; nullopt when there is no closed pair or
// a pair is nested in another.
std::optional<std::string> extract_answer(const std::string& completion);

// Multiple choice compares the option letter, of either case, where the answer (surrounding
// spaces ignored) is only a standalone letter: "B", "(B)", or the letter closed by ".", ")" or ":"
// and then nothing or a space and any text ("B.", "b)", "B: red", "(B) red", "B. 3" all read as
// B). Anything else names no option and never matches: a letter followed by a space and a word
// ("a red circle", "I think", "B red") is prose, and so are "B.red" and "blue". Open-ended
// compares the normalised text (case, surrounding spaces and a final period ignored), and numbers
// as numbers ("2" = "2.0" = "two").
bool answers_match(const std::string& predicted, const std::string& gold, bool multiple_choice);

}  // namespace corl::data
