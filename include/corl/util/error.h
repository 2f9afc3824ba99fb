// Errors a user can cause. Each carries where (file and line, recipe key, command-line flag)
// and what went wrong; the `corl` program maps them to exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace corl {

// Bad command line or recipe: exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A recipe key or value that is unknown, mistyped or out of range.
class RecipeError : public UsageError {
 public:
  using UsageError::UsageError;
};

// A dataset row, image, checkpoint or other input file that cannot be used: exit status 1.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "FILE:LINE: what" (or "FILE: what" when line is 0), the form every input error takes.
std::string where(const std::string& file, int line);

}  // namespace corl
