// Runs an on-change hook: argv as given (no shell, so nothing from the data is ever parsed as a
// command), facts as NATPILOT_* environment variables, a timeout, output captured.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace natpilot {

struct HookResult {
  bool started = false;    // false: could not run (see output)
  bool timed_out = false;  // killed at the timeout
  int exit_code = -1;      // the exit status, or 128 + signal
  std::string output;      // stdout and stderr, at most 4 KiB (the end is kept)
};

// The environment is PATH (the daemon's), LANG=C and `env`; nothing else leaks from natpilotd.
HookResult RunHook(const std::vector<std::string>& argv,
                   const std::map<std::string, std::string>& env,
                   std::chrono::milliseconds timeout);

}  // namespace natpilot
