// Device identity: addresses get reused (DHCP), so a device is also known by the link-layer
// address its IP answers from. The watch learns each device's MAC, and suspends its mappings when
// the address answers from another MAC, or stays silent too long, so ports are never forwarded to
// whoever inherited the address. It resumes them when the registered MAC answers again.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/worker.h"
#include "store/store.h"

namespace natpilot {

struct IdentityOptions {
  bool enabled = true;
  Seconds check_interval{30};
  Seconds absent_after{900};  // silent this long: suspend; 0 = never for silence alone
};

// What one address answered from, as the neighbour table saw it.
struct NeighborAnswer {
  enum class Kind { kAnswered, kSilent, kOffLink };
  Kind kind = Kind::kSilent;
  std::string mac;  // kAnswered
};
// Asks all addresses at once (probe, wait, read the table); one answer per address, same order.
using NeighborFn = std::function<std::vector<NeighborAnswer>(const std::vector<std::string>&)>;

class IdentityWatch {
 public:
  using NowFn = std::function<TimePoint()>;
  IdentityWatch(Store& store, IdentityOptions options, NeighborFn neighbors, NowFn now,
                std::function<void()> on_change);
  ~IdentityWatch();
  // One pass over every device; returns how many devices changed identity state.
  int CheckOnce();
  void Start();
  void Stop();
  void Wake();  // a device was registered or changed: look at once

 private:
  Store& store_;
  IdentityOptions options_;
  NeighborFn neighbors_;
  NowFn now_;
  std::function<void()> on_change_;
  std::map<std::string, TimePoint> last_seen_;  // device name -> last answer from its MAC
  Worker worker_{"identity check", options_.check_interval};  // last: stopped first
};

// Linux: a UDP datagram to port 9 (discard) of each on-link address makes the kernel resolve it;
// then /proc/net/arp says who answered. Addresses outside the host's subnets are kOffLink.
std::vector<NeighborAnswer> ProbeNeighbors(const std::vector<std::string>& addresses);
// Parses /proc/net/arp text: address -> MAC of complete entries.
std::map<std::string, std::string> ParseArpTable(std::string_view text);

}  // namespace natpilot
