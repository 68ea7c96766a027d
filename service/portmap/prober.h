// Asks every gateway protocol at once and decides as soon as it can: after the first usable
// answer it waits at most a short window for a more preferred protocol, never for slow ones.
// Probes still running after the decision finish on their own threads and update the reports.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "portmap/port_mapper.h"

namespace natpilot {

struct ProtocolReport {
  GatewayProtocol protocol = GatewayProtocol::kNone;
  bool done = false;
  GatewayInfo info;
  std::chrono::milliseconds took{0};
};

class Prober {
 public:
  // mappers in preference order (most preferred first).
  Prober(std::vector<PortMapper*> mappers, std::chrono::milliseconds window);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts all probes and returns the index of the chosen mapper, or -1 when none is usable
  // (then every probe has finished).
  int Run();
  std::vector<ProtocolReport> Reports() const;
  // A mapper may be used only once its own probe has finished and found a usable gateway.
  bool Usable(size_t index) const;

 private:
  int ChooseLocked(bool window_over) const;
  void JoinAll();

  std::vector<PortMapper*> mappers_;
  std::chrono::milliseconds window_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ProtocolReport> reports_;
  std::vector<std::thread> threads_;
};

}  // namespace natpilot
