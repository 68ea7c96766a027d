// The reconciler's tunables, apart from the reconciler so that the config module can carry them
// without including it.
#pragma once

#include <chrono>
#include <cstddef>
#include <set>
#include <string>

#include "core/types.h"

namespace natpilot {

struct ReconcilerOptions {
  Seconds lease_lifetime{3600};
  // Renew when this fraction of the lifetime is left, or up to jitter_fraction of it earlier.
  double renew_fraction = 0.5;
  double jitter_fraction = 0.05;
  Seconds retry_min{5};
  Seconds retry_max{600};
  Seconds probe_retry_min{5};
  Seconds probe_retry_max{300};
  Seconds probe_interval{300};  // re-probe a working gateway (external address, identity)
  // How often to check that the gateway still has our mappings: PCP ANNOUNCE / NAT-PMP epoch, and
  // a sample of UPnP entries read back (a rebooted router, or miniupnpd's idle purge).
  Seconds verify_interval{60};
  size_t verify_sample = 8;
  // Re-probe when the default route's gateway is not the gateway in use (off in unit tests and
  // when gateway.address or root_desc_url point elsewhere on purpose).
  bool follow_default_route = false;
  // After the first usable answer, how long to wait for a more preferred protocol.
  std::chrono::milliseconds preference_window{50};
  // At most one check per this interval for PCP ANNOUNCEs, however many arrive; those that come
  // within it are coalesced into one more check at its end.
  Seconds announce_min_interval{5};
  // While the gateway is gone: a cheap check this often (the last protocol's heartbeat, one
  // datagram; UPnP, which has none, probes), so the return is noticed within it.
  Seconds outage_check_interval{4};
  size_t save_batch = 32;  // mappings saved per transaction during a long pass
  // Devices whose ports are always provided by static rules, never asked of the gateway.
  bool force_static_all = false;
  std::set<std::string> force_static_devices;
};

}  // namespace natpilot
