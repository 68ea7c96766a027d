#include "api/nat_view.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "core/validate.h"

namespace natpilot {
namespace {

bool Provided(MappingState s) {
  return s == MappingState::kActive || s == MappingState::kRenewing ||
         s == MappingState::kStaticRule;
}

}  // namespace

Result<v1::NatView> BuildNatView(const NatViewInputs& in, std::string_view name) {
  auto device = in.store.GetDevice(name);
  if (!device) return tl::unexpected(device.error());
  auto mappings = in.store.ListMappings(name);
  if (!mappings) return tl::unexpected(mappings.error());
  LapseExpired(*mappings, Clock::now());
  v1::NatView view;
  view.set_device(device->name);
  view.set_internal_address(device->address);
  const PortPlan& plan = device->plan;
  view.set_sip_port(plan.sip.first);
  if (plan.sip_udp) view.add_sip_transports(v1::TRANSPORT_UDP);
  if (plan.sip_tcp) view.add_sip_transports(v1::TRANSPORT_TCP);
  view.mutable_rtp()->set_first(plan.rtp.first);
  view.mutable_rtp()->set_last(plan.rtp.last);
  for (const Subnet& s : in.local_nets) view.add_local_nets(ToString(s));

  std::string lease_address;
  TimePoint valid_until{};
  std::map<std::string, int> missing;  // state -> count
  bool any_static = false;
  const Transport sip_transport = plan.sip_udp ? Transport::kUdp : Transport::kTcp;
  for (const Mapping& m : *mappings) {
    auto* p = view.add_ports();
    p->set_purpose(m.purpose == Purpose::kRtp ? v1::MAPPING_PURPOSE_RTP : v1::MAPPING_PURPOSE_SIP);
    p->set_transport(m.transport == Transport::kTcp ? v1::TRANSPORT_TCP : v1::TRANSPORT_UDP);
    p->set_internal_port(m.internal_port);
    p->set_external_port(m.external_port);
    p->set_state(static_cast<v1::MappingState>(m.state));
    const bool leased = m.protocol != GatewayProtocol::kNone &&
                        (m.state == MappingState::kActive || m.state == MappingState::kRenewing);
    p->set_provision(leased                                 ? v1::PROVISION_LEASE
                     : m.state == MappingState::kStaticRule ? v1::PROVISION_STATIC_RULE
                                                            : v1::PROVISION_NONE);
    if (leased) {
      p->set_protocol(static_cast<v1::GatewayProtocol>(m.protocol));
      *p->mutable_expires_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
          std::chrono::duration_cast<Seconds>(m.expires_at.time_since_epoch()).count());
      if (lease_address.empty()) lease_address = m.external_address;
      if (valid_until == TimePoint{} || m.expires_at < valid_until) valid_until = m.expires_at;
    }
    any_static = any_static || m.state == MappingState::kStaticRule;
    if (!Provided(m.state)) ++missing[std::string(ToString(m.state))];
    if (m.purpose == Purpose::kSip && m.transport == sip_transport &&
        m.internal_port == plan.sip.first) {
      view.set_sip_external_port(m.external_port);
    }
  }
  // The address the internet reaches the device on: the gateway's current external address (one
  // fact, whatever noticed it last: a lease's answer, an announcement, the periodic check), else
  // the leases' address, else (static rules only) the router's configured WAN address.
  std::string external =
      in.gateway.info.external_address.empty() ? lease_address : in.gateway.info.external_address;
  if (external.empty() && any_static) external = in.wan_address;
  // It goes into PBX files and a hook's environment: only a dotted IPv4 address, canonical.
  if (!external.empty()) {
    auto canonical = ParseIpv4Unicast(external, "external address");
    external = canonical ? *canonical : std::string();
  }
  view.set_external_address(external);
  if (valid_until != TimePoint{}) {
    *view.mutable_valid_until() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
        std::chrono::duration_cast<Seconds>(valid_until.time_since_epoch()).count());
  }
  std::string detail;
  int not_provided = 0;
  for (const auto& [state, n] : missing) {
    detail += (detail.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    not_provided += n;
  }
  if (!device->suspended.empty()) {
    detail = "suspended: " + device->suspended;
  } else if (not_provided > 0) {
    detail = std::to_string(not_provided) + " of " + std::to_string(mappings->size()) +
             " ports are not provided (" + detail + ")";
  } else if (external.empty()) {
    detail = "the external address is not known yet";
  }
  view.set_complete(not_provided == 0 && !external.empty() && !mappings->empty());
  view.set_detail(detail);
  return view;
}

std::string NatViewFacts(const v1::NatView& view) {
  v1::NatView facts = view;
  facts.clear_valid_until();
  for (auto& p : *facts.mutable_ports()) p.clear_expires_at();
  std::string out;
  facts.SerializeToString(&out);
  return out;
}

}  // namespace natpilot
