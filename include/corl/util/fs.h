// Files written so that a killed run never leaves a half-written one behind.
#pragma once

#include <string>

namespace corl::util {

// Writes to a temporary file beside `path`, flushes it to disk, then renames it over `path`.
void write_file_atomic(const std::string& path, const std::string& content);
// Removes a file or a folder with everything in it; a missing path is not an error.
// std::filesystem::remove_all is not used anywhere: in a program linked to the PyPI wheel's
// libtorch.so it resolves to a copy exported by that library, which crashes.
void remove_tree(const std::string& path);
// Throws corl::DataError naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace corl::util
