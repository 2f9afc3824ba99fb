// Files written so that a killed run never leaves a half-written one behind.
#pragma once

#include <string>

namespace corl::util {

// Writes to a temporary file beside `path`, flushes it to disk, then renames it over `path`.
void write_file_atomic(const std::string& path, const std::string& content);
// Throws corl::DataError naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace corl::util
