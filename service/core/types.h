// Plain value types shared by every module of natpilotd. No gRPC, no SQL, no sockets here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natpilot {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using Seconds = std::chrono::seconds;

enum class Transport { kUdp = 1, kTcp = 2 };
enum class DeviceKind { kAta = 1, kPbx = 2, kPhone = 3, kOther = 4 };
enum class GatewayProtocol { kNone = 0, kPcp = 1, kNatPmp = 2, kUpnpIgd = 3 };
enum class Purpose { kSip = 1, kRtp = 2 };
// Same numbering as natpilot.v1.MappingState.
enum class MappingState {
  kPending = 1,
  kActive = 2,
  kRenewing = 3,
  kFailed = 4,
  kStaticRule = 5,
  kUnmapped = 6,
  kRemoving = 7,
};

std::string_view ToString(Transport t);        // "udp", "tcp"
std::string_view ToString(DeviceKind k);       // "ata", ...
std::string_view ToString(GatewayProtocol p);  // "pcp", "nat-pmp", "upnp-igd", "none"
std::string_view ToString(Purpose p);          // "sip", "rtp"
std::string_view ToString(MappingState s);     // "pending", "active", ...
std::optional<Transport> TransportFromString(std::string_view s);
std::optional<DeviceKind> DeviceKindFromString(std::string_view s);
std::optional<MappingState> MappingStateFromString(std::string_view s);
std::optional<GatewayProtocol> GatewayProtocolFromString(std::string_view s);

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  uint32_t size() const { return first <= last ? uint32_t(last) - first + 1 : 0; }
  bool contains(uint16_t p) const { return first <= p && p <= last; }
  bool overlaps(const PortRange& o) const { return first <= o.last && o.first <= last; }
  bool operator==(const PortRange&) const = default;
};
std::string ToString(const PortRange& r);  // "5060-5070" or "5060"

struct PortPlan {
  PortRange sip{5060, 5070};
  bool sip_udp = true;
  bool sip_tcp = true;
  PortRange rtp{10000, 10099};  // UDP only
  bool operator==(const PortPlan&) const = default;
};

struct Device {
  int64_t id = 0;
  std::string name;
  DeviceKind kind = DeviceKind::kOther;
  std::string address;  // IPv4 text today; the type stays neutral for IPv6
  PortPlan plan;
  std::string description;  // free text for people, at most 200 bytes, no control characters
  // Identity: the link-layer address the device answered from ("aa:bb:..."; empty = not seen yet),
  // and why its mappings are suspended (empty = not suspended).
  std::string mac;
  std::string suspended;
  // SHA-256 (hex) of the device's API token; never leaves the daemon.
  std::string token_hash;
  TimePoint created_at{};
  TimePoint updated_at{};
  uint32_t mappings_total = 0;
  uint32_t mappings_active = 0;
};

// One wanted port of a device's plan, with the lease that provides it, if any.
struct Mapping {
  int64_t id = 0;
  int64_t device_id = 0;
  std::string device;            // device name (read side)
  std::string internal_address;  // device address (read side)
  Purpose purpose = Purpose::kSip;
  Transport transport = Transport::kUdp;
  uint16_t internal_port = 0;
  uint16_t external_port = 0;
  MappingState state = MappingState::kPending;
  bool released = false;  // released by an admin; not requested again until the device changes
  // Lease (valid when protocol != kNone).
  GatewayProtocol protocol = GatewayProtocol::kNone;
  std::string external_address;
  TimePoint granted_at{};
  TimePoint expires_at{};
  TimePoint renew_at{};
  std::string nonce;  // PCP mapping nonce (hex), stored before the request leaves
  // Retry bookkeeping.
  uint32_t failures = 0;
  TimePoint next_attempt_at{};
  std::string detail;
};

// What a reader may claim at `now`. A lease whose end has passed is not held, whatever the store
// still says: the reconciler may be waiting on a gateway that does not answer (a renewal's
// retransmissions can outlast a short lease). Such a mapping reads as `failed`, with why, until
// the reconciler writes what happened. Every edge that shows mappings reads them through this.
void LapseExpired(std::vector<Mapping>& mappings, TimePoint now);

// A gateway entry that must be deleted: its device or mapping is gone.
struct Release {
  int64_t id = 0;
  GatewayProtocol protocol = GatewayProtocol::kUpnpIgd;
  Transport transport = Transport::kUdp;
  uint16_t external_port = 0;
  std::string internal_address;
  uint16_t internal_port = 0;
  std::string device;
  uint32_t failures = 0;
  std::string nonce;  // PCP: the nonce the mapping was made with
};

struct Event {
  int64_t id = 0;
  TimePoint at{};
  std::string kind;    // one of core/event_kinds.h: "device.registered", "mapping.active", ...
  std::string device;  // empty when not about one device
  std::string caller;  // who caused it
  std::string message;
};

// An IPv4 network, host byte order.
struct Subnet {
  uint32_t network = 0;
  uint8_t prefix = 0;
  bool contains(uint32_t address) const {
    const uint32_t mask = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
    return (address & mask) == (network & mask);
  }
  bool operator==(const Subnet&) const = default;
};
std::string ToString(const Subnet& s);  // "192.168.1.0/24"

// Limits a request must stay within (configurable). Each is named in the error that it causes.
struct Policy {
  PortRange internal_ports{1024, 65535};  // policy.internal_ports
  PortRange external_ports{1024, 65535};  // policy.external_ports (mappings are same-port)
  uint32_t max_rtp_ports = 1000;          // policy.max_rtp_ports
  uint32_t max_sip_ports = 100;           // policy.max_sip_ports
  uint32_t max_ports_per_device = 1200;   // policy.max_ports_per_device (mappings, all transports)
  uint32_t max_devices = 100;             // policy.max_devices
  // policy.device_networks: where devices may be; empty = the LAN subnets of the host's interfaces.
  std::vector<Subnet> device_networks;
};

}  // namespace natpilot
