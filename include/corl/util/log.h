// Logging to the terminal and to the run folder's log file. The header keeps spdlog and fmt out
// of sight, so that translation units that include LibTorch (which ships its own fmt) can log.
#pragma once

#include <string>

namespace corl::log {

// Adds PATH as a second destination for every later message.
void to_file(const std::string& path);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);
// Drops info messages from here on (data-parallel ranks other than 0: rank 0 speaks for all).
void warnings_only();
// Ensures everything logged so far is on disk.
void flush();

}  // namespace corl::log
