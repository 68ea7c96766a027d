#include "core/types.h"

#include <array>
#include <utility>

namespace natpilot {
namespace {

template <typename E, size_t N>
std::optional<E> Lookup(const std::array<std::pair<E, std::string_view>, N>& table,
                        std::string_view s) {
  for (const auto& [value, name] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}
template <typename E, size_t N>
std::string_view Name(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [value, name] : table) {
    if (value == e) return name;
  }
  return "unknown";
}

constexpr std::array<std::pair<Transport, std::string_view>, 2> kTransports{
    {{Transport::kUdp, "udp"}, {Transport::kTcp, "tcp"}}};
constexpr std::array<std::pair<DeviceKind, std::string_view>, 4> kKinds{
    {{DeviceKind::kAta, "ata"},
     {DeviceKind::kPbx, "pbx"},
     {DeviceKind::kPhone, "phone"},
     {DeviceKind::kOther, "other"}}};
constexpr std::array<std::pair<GatewayProtocol, std::string_view>, 4> kProtocols{
    {{GatewayProtocol::kNone, "none"},
     {GatewayProtocol::kPcp, "pcp"},
     {GatewayProtocol::kNatPmp, "nat-pmp"},
     {GatewayProtocol::kUpnpIgd, "upnp-igd"}}};
constexpr std::array<std::pair<MappingState, std::string_view>, 7> kStates{
    {{MappingState::kPending, "pending"},
     {MappingState::kActive, "active"},
     {MappingState::kRenewing, "renewing"},
     {MappingState::kFailed, "failed"},
     {MappingState::kStaticRule, "static-rule"},
     {MappingState::kUnmapped, "unmapped"},
     {MappingState::kRemoving, "removing"}}};

}  // namespace

std::string_view ToString(Transport t) { return Name(kTransports, t); }
std::string_view ToString(DeviceKind k) { return Name(kKinds, k); }
std::string_view ToString(GatewayProtocol p) { return Name(kProtocols, p); }
std::string_view ToString(Purpose p) { return p == Purpose::kSip ? "sip" : "rtp"; }
std::string_view ToString(MappingState s) { return Name(kStates, s); }
std::optional<Transport> TransportFromString(std::string_view s) { return Lookup(kTransports, s); }
std::optional<DeviceKind> DeviceKindFromString(std::string_view s) { return Lookup(kKinds, s); }
std::optional<MappingState> MappingStateFromString(std::string_view s) {
  return Lookup(kStates, s);
}
std::optional<GatewayProtocol> GatewayProtocolFromString(std::string_view s) {
  return Lookup(kProtocols, s);
}

std::string ToString(const Subnet& s) {
  const uint32_t a = s.network;
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff) + "/" +
         std::to_string(s.prefix);
}

std::string ToString(const PortRange& r) {
  if (r.first == r.last) return std::to_string(r.first);
  return std::to_string(r.first) + "-" + std::to_string(r.last);
}

void LapseExpired(std::vector<Mapping>& mappings, TimePoint now) {
  for (Mapping& m : mappings) {
    const bool held = m.state == MappingState::kActive || m.state == MappingState::kRenewing;
    if (!held || m.protocol == GatewayProtocol::kNone || m.expires_at == TimePoint{} ||
        now < m.expires_at) {
      continue;
    }
    m.state = MappingState::kFailed;
    m.detail = "the " + std::string(ToString(m.protocol)) +
               " lease ran out before the gateway confirmed a renewal" +
               (m.detail.empty() ? "" : " (" + m.detail + ")");
    m.protocol = GatewayProtocol::kNone;
    m.external_address.clear();
  }
}

}  // namespace natpilot
