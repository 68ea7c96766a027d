// Listens for a gateway's unsolicited announcements on 224.0.0.1:5350: PCP ANNOUNCE responses (RFC
// 6887 section 14.1.3: a PCP server that restarts multicasts one) and NAT-PMP public address
// announcements (RFC 6886 section 3.2.1: sent after a restart and whenever the external address
// changes). Each one that decodes is handed to the callback with its sender and what it was; a
// thread of its own sleeps in poll() until a datagram or Stop() arrives.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "core/error.h"

namespace natpilot {

class AnnounceListener {
 public:
  struct Announcement {
    std::string what;  // "PCP ANNOUNCE" or "NAT-PMP announcement"
    uint32_t epoch_s = 0;
    std::string external_address;  // NAT-PMP only (a hint: the gateway is asked before it counts)
  };
  using Callback = std::function<void(const std::string& sender, const Announcement& a)>;
  // What a datagram on 5350 announces, if anything (exact sizes; anything else is ignored).
  static std::optional<Announcement> Decode(std::span<const uint8_t> datagram);
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
