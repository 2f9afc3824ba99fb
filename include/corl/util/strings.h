// Small string helpers the recipe and data code share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corl::util {

std::vector<std::string> split(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string trim(std::string_view text);
// Levenshtein distance: how "did you mean" finds the nearest valid key.
size_t edit_distance(std::string_view a, std::string_view b);
// A 64-bit hash of the text that is the same on every machine and standard library: FNV-1a's
// steps from the offset basis 1469598103934665603 (FNV's own is 14695981039346656037). Split
// seeds, and so every generated dataset, follow from it, so it stays as it is.
std::uint64_t stable_hash(std::string_view text);

}  // namespace corl::util
