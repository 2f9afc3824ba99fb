// Small string helpers the recipe and data code share.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace corl::util {

std::vector<std::string> split(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string trim(std::string_view text);
// Levenshtein distance: how "did you mean" finds the nearest valid key.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace corl::util
