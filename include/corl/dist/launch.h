// `--nproc N`: N local ranks of this very program, started as torchrun starts them.
#pragma once

#include <string>
#include <vector>

namespace corl::dist {

// Set in the environment of every rank launch_local starts; such a rank never launches again.
inline constexpr const char* kLaunchedVariable = "CORL_LOCAL_LAUNCH";

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice).
int free_port();

// Runs `nproc` copies of this executable (/proc/self/exe) with `arguments` (argv without the
// program name), each with RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE = nproc,
// MASTER_ADDR = 127.0.0.1 and a free MASTER_PORT. Waits for all of them. Returns 0 when all
// succeeded; otherwise stops the others (SIGTERM, then SIGKILL after `grace_s`) and returns the
// first failure's exit status (128 + signal for a rank that was killed).
int launch_local(int nproc, const std::vector<std::string>& arguments, double grace_s = 10.0);

// `arguments` without "--nproc N" / "--nproc=N".
std::vector<std::string> without_nproc(const std::vector<std::string>& arguments);

}  // namespace corl::dist
