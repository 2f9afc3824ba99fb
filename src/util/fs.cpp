#include "corl/util/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "corl/util/error.h"

namespace corl::util {

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw DataError(path + ": cannot write: " + std::strerror(errno));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw DataError(path + ": cannot write: " + std::strerror(saved));
    }
    written += static_cast<size_t>(n);
  }
  // The rename is only atomic for data that reached the disk first.
  ::fsync(fd);
  ::close(fd);
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    ::unlink(temp.c_str());
    throw DataError(path + ": cannot write: " + error.message());
  }
}

void remove_tree(const std::string& path) {
  // Depth-first (FTW_DEPTH) so that a folder is empty when it is removed; links not followed.
  ::nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) { return ::remove(entry); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot read file");
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace corl::util
