// One interface for every gateway protocol. Implementations talk to the gateway and nothing else:
// no timers, no store, no policy. Calls block; the reconciler calls them from its own thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot {

// A UPnP IGD that discovery found but natpilot does not use, for `natpilot gateway`. All text is
// sanitized (printable ASCII, bounded).
struct IgdFound {
  std::string address;  // the host its description URL names
  std::string root_desc_url;
  std::string friendly_name;  // "" when its description was not read
  std::string model;          // manufacturer and model name
  std::string device_type;    // "InternetGatewayDevice:2"
  bool skipped = true;        // true: never contacted for SOAP (not the gateway, not configured)
  std::string reason;         // why it is not the one in use
};

struct GatewayInfo {
  enum class Status { kSearching, kReady, kNotConnected, kNotFound };
  Status status = Status::kSearching;
  GatewayProtocol protocol = GatewayProtocol::kNone;
  std::string address;      // the gateway's LAN address
  std::string control_url;  // UPnP
  std::string external_address;
  std::string local_address;         // our LAN address towards it
  std::string identity;              // stable identity (UPnP UDN / root description URL)
  std::string detail;                // what was found, for people
  std::vector<IgdFound> other_igds;  // UPnP: the IGDs found besides the one in use
};
std::string_view ToString(GatewayInfo::Status s);

struct MapRequest {
  Transport transport = Transport::kUdp;
  std::string internal_address;
  uint16_t internal_port = 0;
  uint16_t external_port = 0;
  Seconds lifetime{3600};
  std::string description;  // tags our entries: see Tag() in the reconciler
  std::string nonce;        // PCP: 24 hex digits, kept per mapping (a delete needs the same one)
};

// What a gateway granted. Immutable once made.
struct Lease {
  GatewayProtocol protocol = GatewayProtocol::kNone;
  Transport transport = Transport::kUdp;
  std::string internal_address;
  uint16_t internal_port = 0;
  std::string external_address;
  uint16_t external_port = 0;
  Seconds lifetime{0};  // granted lifetime; 0 = permanent
};

// One row of a gateway's own mapping table.
struct GatewayEntry {
  Transport transport = Transport::kUdp;
  uint16_t external_port = 0;
  std::string internal_address;
  uint16_t internal_port = 0;
  std::string description;
  Seconds remaining{0};  // 0 = permanent or unknown
};

class PortMapper {
 public:
  virtual ~PortMapper() = default;
  virtual GatewayProtocol protocol() const = 0;
  // Finds the gateway and reads its external address. Always returns what was found, with
  // status kNotFound or kNotConnected when there is no usable gateway.
  virtual GatewayInfo Probe() = 0;
  // Whether this protocol can map ports to that LAN address (NAT-PMP: only to the asking host;
  // PCP: others only with THIRD_PARTY, where the gateway allows it). Valid after a ready Probe.
  virtual bool CanMapFor(std::string_view internal_address) const = 0;
  virtual Result<Lease> Map(const MapRequest& request) = 0;
  // Deletes the mapping `request` made (PCP: same nonce, lifetime 0). Deleting an entry that is
  // already gone succeeds.
  virtual Result<void> Unmap(const MapRequest& request) = 0;
  // True once when the gateway showed it lost its state (PCP/NAT-PMP epoch; RFC 6887 8.5).
  virtual bool TakeStateLoss() { return false; }
  // A cheap periodic check (PCP ANNOUNCE, NAT-PMP public address): refreshes the epoch check and
  // returns the external address when the protocol reports one ("" otherwise).
  virtual Result<std::string> Heartbeat() { return std::string(); }
  // Reading the gateway's table: UPnP only.
  virtual bool CanList() const { return false; }
  virtual Result<std::optional<GatewayEntry>> GetEntry(Transport, uint16_t) {
    return Fail(Errc::kFailedPrecondition,
                std::string(ToString(protocol())) + " cannot read entries");
  }
  virtual Result<std::vector<GatewayEntry>> ListEntries() {
    return Fail(Errc::kFailedPrecondition,
                std::string(ToString(protocol())) + " cannot list entries");
  }
};

}  // namespace natpilot
