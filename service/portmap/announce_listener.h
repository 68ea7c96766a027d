// Listens for unsolicited PCP ANNOUNCE responses (RFC 6887 section 14.1.3): a PCP server that
// restarts multicasts one to 224.0.0.1:5350. Each one that decodes is handed to the callback with
// its sender; a thread of its own sleeps in poll() until a datagram or Stop() arrives.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "core/error.h"

namespace natpilot {

class AnnounceListener {
 public:
  using Callback = std::function<void(const std::string& sender, uint32_t epoch_s)>;
  ~AnnounceListener() { Stop(); }
  // Binds UDP port (5350 by default) on every address; fails when the port is taken.
  Result<void> Start(Callback callback, uint16_t port = 5350);
  void Stop();

 private:
  void Run();
  Callback callback_;
  int fd_ = -1;
  int stop_fd_ = -1;  // eventfd
  std::thread thread_;
};

}  // namespace natpilot
