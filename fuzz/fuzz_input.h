// Shared by the fuzz targets (fuzz/*.cpp): the input as a file, since every parser a user's input
// reaches takes a path, and the rule for what a target may throw.
//
// A target may reject its input only with corl's own input errors (corl::DataError,
// corl::UsageError and its RecipeError), which carry the place and the problem. Any other
// exception escapes LLVMFuzzerTestOneInput and aborts: libFuzzer reports it as a crash, and so
// does the replay driver the normal build runs on the corpora.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

namespace corl::fuzz {

// A file of this process (in $TMPDIR, else /tmp) named by `suffix`: the same path for every call
// with that suffix, removed when the process exits normally (libFuzzer keeps a crashing input
// itself).
inline std::string scratch_path(const std::string& suffix) {
  struct Files {
    std::set<std::string> paths;
    ~Files() {
      for (const auto& p : paths) std::remove(p.c_str());
    }
  };
  static Files files;
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/corl-fuzz-" +
                           std::to_string(getpid()) + suffix;
  files.paths.insert(path);
  return path;
}

// The input written to one file per process, overwritten each call.
inline std::string input_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  const std::string path = scratch_path(suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

// A property the parser promises, checked on inputs it accepts.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace corl::fuzz
