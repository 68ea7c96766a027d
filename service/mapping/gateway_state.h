// What the rest of natpilotd may know of the gateway, and the few things it may ask: the narrow
// read interface that the API, the status page, the doctor, the NAT view and the metrics use
// instead of the reconciler. The reconciler implements it; readers never see its memory or its
// scheduling, so either can change without them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "portmap/port_mapper.h"
#include "portmap/prober.h"

namespace natpilot {

// Counters for /metrics (since start).
struct GatewayStats {
  std::map<GatewayProtocol, uint64_t> maps;       // new leases granted
  std::map<GatewayProtocol, uint64_t> renewals;   // leases renewed
  std::map<GatewayProtocol, uint64_t> failures;   // requests refused or unanswered
  std::map<GatewayProtocol, double> last_rtt_ms;  // the last request's round trip
  uint64_t state_losses = 0;                      // gateway reboots / lost mappings seen
  uint64_t announces_coalesced = 0;               // ANNOUNCEs within announce_min_interval
  uint64_t address_changes = 0;                   // external address changes seen
  double last_discovery_ms = 0;                   // the last probe, to a decision
};

// The last change of the gateway's external address, and how it was noticed.
struct AddressChange {
  TimePoint at{};
  std::string from, to;
  std::string noticed_by;  // "a NAT-PMP announcement", "the periodic check (UPnP ...)", ...
};

struct GatewaySnapshot {
  GatewayInfo info;                       // the chosen protocol's, or a summary when none is usable
  std::vector<ProtocolReport> protocols;  // what each protocol answered
  TimePoint checked_at{};
  TimePoint next_check_at{};
  std::optional<AddressChange> last_address_change;
};

class GatewayState {
 public:
  virtual ~GatewayState() = default;
  // A copy of what is known now (every protocol's probe report: not per mapping).
  virtual GatewaySnapshot Gateway() const = 0;
  // The gateway's external address alone, cheap enough to ask per event.
  virtual std::string ExternalAddress() const = 0;
  virtual GatewayStats Stats() const = 0;
  // Probe the gateway again soon (an admin asked).
  virtual void RequestProbe() = 0;
  // Another source says the external address may have changed (a UPnP event, the doctor's STUN
  // answer): checked against the gateway, rate-limited; never taken on trust.
  virtual void CheckExternalAddress(const std::string& why) = 0;
};

}  // namespace natpilot
