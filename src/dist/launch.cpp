#include "corl/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "corl/util/error.h"
#include "corl/util/log.h"

namespace corl::dist {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw DataError(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw DataError("--nproc: cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::vector<std::string> without_nproc(const std::vector<std::string>& arguments) {
  std::vector<std::string> out;
  for (size_t i = 0; i < arguments.size(); ++i) {
    if (arguments[i] == "--nproc") {
      ++i;
      continue;
    }
    if (arguments[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(arguments[i]);
  }
  return out;
}

namespace {

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch_local(int nproc, const std::vector<std::string>& arguments, double grace_s) {
  if (nproc < 1) throw UsageError("--nproc: must be >= 1, got " + std::to_string(nproc));
  if (std::getenv("WORLD_SIZE") != nullptr) {
    throw UsageError(
        "--nproc: WORLD_SIZE is already set (a launcher started this process); "
        "give --nproc or torchrun-style variables, not both");
  }
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> ranks;
  log::flush();
  const pid_t launcher = ::getpid();
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw DataError(std::string("--nproc: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      // A rank ends with its launcher: a launcher killed by a signal cannot stop the ranks itself,
      // and a rank left behind would hold a core until its job's end. The check after it covers
      // a launcher that died before the request was made.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(1);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      ::setenv(kLaunchedVariable, "1", 1);
      std::vector<char*> argv;
      static const char kSelf[] = "/proc/self/exe";
      argv.push_back(const_cast<char*>(kSelf));
      for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(kSelf, argv.data());
      std::fprintf(stderr, "--nproc: cannot start rank %d: %s\n", rank, std::strerror(errno));
      ::_exit(127);
    }
    ranks.push_back(pid);
  }
  log::info("--nproc: started " + std::to_string(nproc) + " ranks (MASTER_PORT " + port + ")");

  int first_failure = 0;
  int running = nproc;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, first_failure != 0 ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pid == 0) {  // stopping the others: escalate once the grace period is over
      if (std::chrono::steady_clock::now() > stop_deadline) {
        for (pid_t p : ranks) {
          if (p > 0) ::kill(p, SIGKILL);
        }
        stop_deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int rank = -1;
    for (int r = 0; r < nproc; ++r) {
      if (ranks[r] == pid) {
        rank = r;
        ranks[r] = -1;
      }
    }
    if (rank < 0) continue;
    --running;
    const int code = status_code(status);
    if (code != 0 && first_failure == 0) {
      first_failure = code;
      log::error("--nproc: rank " + std::to_string(rank) + " failed (exit status " +
                 std::to_string(code) + "); stopping the other ranks");
      for (pid_t p : ranks) {
        if (p > 0) ::kill(p, SIGTERM);
      }
      stop_deadline = std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
    }
  }
  return first_failure;
}

}  // namespace corl::dist
