#include "web/status_json.h"

#include "api/doctor.h"

namespace natpilot::web {
namespace {

using nlohmann::json;

json Time(TimePoint t) {
  if (t == TimePoint{}) return nullptr;
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}

std::string NatWarning(const std::string& external) {
  if (external.empty()) return "";
  const std::string range = ReservedRange(external);
  if (range.rfind("carrier-grade", 0) == 0) {
    return "carrier-grade NAT: the external address " + external + " is " + range +
           "; the provider's NAT in front of the router blocks incoming calls";
  }
  if (range.rfind("private", 0) == 0) {
    return "double NAT: the external address " + external + " is " + range +
           "; another router sits between this gateway and the internet";
  }
  if (!range.empty())
    return "the external address " + external + " is " + range + ", not routable on the internet";
  return "";
}

}  // namespace

json EventJson(const Event& e) {
  return json{{"id", e.id},         {"at", Time(e.at)},   {"kind", e.kind},
              {"device", e.device}, {"caller", e.caller}, {"message", e.message}};
}

json Status(const StatusInputs& in) {
  const GatewayInfo& g = in.gateway.info;
  json protocols = json::array();
  for (const ProtocolReport& p : in.gateway.protocols) {
    const bool answered = p.done && (p.info.status == GatewayInfo::Status::kReady ||
                                     p.info.status == GatewayInfo::Status::kNotConnected);
    protocols.push_back({{"protocol", ToString(p.protocol)},
                         {"finished", p.done},
                         {"answered", answered},
                         {"took_ms", p.took.count()},
                         {"external_address", p.info.external_address},
                         {"detail", p.info.detail}});
  }
  json gateway{{"status", ToString(g.status)},
               {"protocol", ToString(g.protocol)},
               {"address", g.address},
               {"control_url", g.control_url},
               {"external_address", g.external_address},
               {"local_address", g.local_address},
               {"detail", g.detail},
               {"checked_at", Time(in.gateway.checked_at)},
               {"next_check_at", Time(in.gateway.next_check_at)},
               {"last_reboot_seen", Time(in.last_state_loss)},
               {"nat_warning", NatWarning(g.external_address)},
               {"protocols", protocols}};
  json devices = json::array();
  for (const Device& d : in.store.ListDevices()) {
    json transports = json::array();
    if (d.plan.sip_udp) transports.push_back("udp");
    if (d.plan.sip_tcp) transports.push_back("tcp");
    devices.push_back({{"name", d.name},
                       {"kind", ToString(d.kind)},
                       {"address", d.address},
                       {"description", d.description},
                       {"mac", d.mac},
                       {"suspended", d.suspended},
                       {"sip", ToString(d.plan.sip)},
                       {"sip_transports", transports},
                       {"rtp", ToString(d.plan.rtp)},
                       {"mappings_total", d.mappings_total},
                       {"mappings_active", d.mappings_active}});
  }
  json mappings = json::array();
  if (auto ms = in.store.ListMappings("")) {
    LapseExpired(*ms, Clock::now());
    for (const Mapping& m : *ms) {
      mappings.push_back({{"device", m.device},
                          {"purpose", ToString(m.purpose)},
                          {"transport", ToString(m.transport)},
                          {"internal", m.internal_address + ":" + std::to_string(m.internal_port)},
                          {"external_port", m.external_port},
                          {"external_address", m.external_address},
                          {"state", ToString(m.state)},
                          {"protocol", ToString(m.protocol)},
                          {"expires_at", Time(m.expires_at)},
                          {"detail", m.detail}});
    }
  }
  json rules = json::array({{{"format", "nftables"}, {"href", "/rules/natpilot.nft"}},
                            {{"format", "iptables"}, {"href", "/rules/natpilot.iptables"}},
                            {{"format", "openwrt"}, {"href", "/rules/natpilot.uci"}}});
  return json{{"now", Time(in.now)},  {"registry_version", in.store.RegistryVersion()},
              {"gateway", gateway},   {"devices", devices},
              {"mappings", mappings}, {"rules", rules}};
}

}  // namespace natpilot::web
