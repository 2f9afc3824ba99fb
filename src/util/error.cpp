#include "corl/util/error.h"

namespace corl {

std::string where(const std::string& file, int line) {
  return line > 0 ? file + ":" + std::to_string(line) : file;
}

}  // namespace corl
