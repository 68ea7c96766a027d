#include "api/doctor.h"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

namespace natpilot {
namespace {

v1::Finding Make(v1::Finding::Level level, const char* topic, std::string text,
                 std::string advice = "") {
  v1::Finding f;
  f.set_level(level);
  f.set_topic(topic);
  f.set_text(std::move(text));
  f.set_advice(std::move(advice));
  return f;
}

struct Range {
  uint32_t network;
  int prefix;
  const char* name;
  bool nat;  // an address behind another NAT (private, shared)
};

constexpr Range kReserved[] = {
    {0x0A000000, 8, "private (10.0.0.0/8, RFC 1918)", true},
    {0xAC100000, 12, "private (172.16.0.0/12, RFC 1918)", true},
    {0xC0A80000, 16, "private (192.168.0.0/16, RFC 1918)", true},
    {0x64400000, 10, "carrier-grade NAT (100.64.0.0/10, RFC 6598)", true},
    {0x00000000, 8, "\"this network\" (0.0.0.0/8)", false},
    {0x7F000000, 8, "loopback (127.0.0.0/8)", false},
    {0xA9FE0000, 16, "link-local (169.254.0.0/16)", false},
    {0xC0000000, 24, "IETF protocol assignments (192.0.0.0/24)", false},
    {0xC0000200, 24, "documentation (192.0.2.0/24, RFC 5737)", false},
    {0xC6120000, 15, "benchmarking (198.18.0.0/15, RFC 2544)", false},
    {0xC6336400, 24, "documentation (198.51.100.0/24, RFC 5737)", false},
    {0xCB007100, 24, "documentation (203.0.113.0/24, RFC 5737)", false},
    {0xE0000000, 4, "multicast (224.0.0.0/4)", false},
    {0xF0000000, 4, "reserved (240.0.0.0/4)", false},
};

const Range* Classify(const std::string& ipv4) {
  in_addr a{};
  if (inet_pton(AF_INET, ipv4.c_str(), &a) != 1) return nullptr;
  const uint32_t x = ntohl(a.s_addr);
  for (const Range& r : kReserved) {
    const uint32_t mask = ~uint32_t(0) << (32 - r.prefix);
    if ((x & mask) == r.network) return &r;
  }
  return nullptr;
}

}  // namespace

std::string ReservedRange(const std::string& ipv4) {
  const Range* r = Classify(ipv4);
  return r ? r->name : "";
}

std::vector<v1::Finding> Diagnose(const DoctorInputs& in) {
  using L = v1::Finding;
  std::vector<v1::Finding> out;
  const GatewayInfo& gw = in.gateway.info;

  // Which protocols answered, and how fast.
  std::string answered, silent;
  for (const ProtocolReport& p : in.gateway.protocols) {
    const bool ok = p.done && (p.info.status == GatewayInfo::Status::kReady ||
                               p.info.status == GatewayInfo::Status::kNotConnected);
    std::string line = std::string(ToString(p.protocol)) +
                       (p.done ? " in " + std::to_string(p.took.count()) + " ms" : "");
    (ok ? answered : silent) +=
        (ok ? (answered.empty() ? "" : ", ") : (silent.empty() ? "" : ", ")) + line;
  }
  if (gw.status == GatewayInfo::Status::kReady) {
    out.push_back(Make(L::LEVEL_OK, "gateway",
                       "the gateway at " + gw.address + " answered " + answered +
                           "; natpilot uses " + std::string(ToString(gw.protocol)) +
                           (silent.empty() ? "" : " (no answer: " + silent + ")")));
  } else if (gw.status == GatewayInfo::Status::kNotConnected) {
    out.push_back(
        Make(L::LEVEL_PROBLEM, "gateway",
             "the gateway answered (" + answered + ") but says its internet side is not connected",
             "check the router's WAN connection"));
  } else {
    out.push_back(Make(L::LEVEL_PROBLEM, "gateway",
                       "no gateway protocol answered" + (silent.empty() ? "" : " (" + silent + ")"),
                       "turn on UPnP IGD, NAT-PMP or PCP on the router, or apply the static rule "
                       "files (natpilot rules) by hand"));
  }

  // The external address the gateway reports.
  const std::string& ext = gw.external_address;
  if (!ext.empty()) {
    const Range* r = Classify(ext);
    if (r == nullptr) {
      out.push_back(Make(L::LEVEL_OK, "external-address",
                         "the gateway's external address is " + ext + ", a public address"));
    } else if (r->nat && std::string(r->name).rfind("carrier", 0) == 0) {
      out.push_back(
          Make(L::LEVEL_PROBLEM, "external-address",
               "the gateway's external address " + ext + " is " + r->name +
                   ": the provider's NAT sits in front of the router, and forwards on the "
                   "router do not reach through it",
               "ask the provider for a public IPv4 address, or use a SIP provider with "
               "media relays (TURN, or an SBC that anchors media)"));
    } else if (r->nat) {
      out.push_back(
          Make(L::LEVEL_PROBLEM, "external-address",
               "the gateway's external address " + ext + " is " + r->name +
                   ": double NAT, another router sits between this gateway and the internet",
               "put the first router in bridge mode, or forward the same ports on it to " + ext +
                   " (its DMZ setting does that)"));
    } else {
      out.push_back(Make(L::LEVEL_WARNING, "external-address",
                         "the gateway's external address " + ext + " is " + r->name +
                             ", not routable on the internet",
                         "check what the router really has on its WAN side"));
    }
  } else if (gw.status == GatewayInfo::Status::kReady) {
    out.push_back(
        Make(L::LEVEL_WARNING, "external-address",
             "the gateway answers but does not report an external address; miniupnpd, for one, "
             "keeps quiet when its own WAN address is private or in 100.64.0.0/10 (another NAT "
             "in front of it)",
             "see the upstream-nat and stun findings; set doctor.stun_server if it is not set"));
  }

  // The last change of the external address, and how long the PBX's configuration lagged it.
  if (const auto& change = in.gateway.last_address_change) {
    const auto at = std::chrono::system_clock::to_time_t(change->at);
    char when[32] = {0};
    std::tm tm{};
    gmtime_r(&at, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    std::string text = "the external address changed from " + change->from + " to " + change->to +
                       " at " + when + ", noticed by " + change->noticed_by;
    if (in.pbx_followed_at) {
      const auto lag =
          std::chrono::duration_cast<std::chrono::milliseconds>(*in.pbx_followed_at - change->at);
      text += "; the [[pbx]] configuration followed " +
              std::to_string(std::max<int64_t>(0, lag.count()) / 1000) + " s later";
      out.push_back(Make(L::LEVEL_OK, "address-change", text));
    } else {
      text += "; no [[pbx]] file or hook followed it";
      out.push_back(Make(L::LEVEL_WARNING, "address-change", text,
                         "if a PBX is behind this gateway, configure it under [[pbx]] (or follow "
                         "`natpilot pbx-config DEVICE --follow`); `natpilot events` shows a failed "
                         "write or hook"));
    }
  }

  // UPnP events: with them a new external address arrives at once, without at the periodic check.
  if (in.gateway.info.protocol == GatewayProtocol::kUpnpIgd && !in.upnp_events.empty()) {
    if (in.upnp_events.rfind("subscribed", 0) == 0) {
      out.push_back(Make(L::LEVEL_OK, "upnp-events", "UPnP events: " + in.upnp_events));
    } else {
      out.push_back(Make(L::LEVEL_INFO, "upnp-events", "UPnP events: " + in.upnp_events,
                         "a new external address is then seen at the periodic check "
                         "(gateway.verify_interval_s); a host firewall must let the gateway reach "
                         "natpilotd's event port"));
    }
  }

  // Routers after the gateway: a private or shared address there is another NAT.
  if (in.path && *in.path) {
    const std::vector<std::string>& hops = **in.path;
    std::string first_public;
    bool found = false;
    for (size_t i = 1; i < hops.size() && !found && first_public.empty(); ++i) {
      if (hops[i].empty()) continue;
      const Range* r = Classify(hops[i]);
      if (r != nullptr && r->nat) {
        found = true;
        const bool cgnat = std::string(r->name).rfind("carrier", 0) == 0;
        out.push_back(Make(
            L::LEVEL_PROBLEM, "upstream-nat",
            "router " + std::to_string(i + 1) + " on the way to the internet, " + hops[i] +
                ", is " + r->name +
                (cgnat ? ": the provider's carrier-grade NAT"
                       : ": double NAT, another NAT router") +
                " sits between the gateway and the internet, and forwards on the gateway alone do "
                "not reach through it",
            cgnat ? "ask the provider for a public IPv4 address, or use a SIP provider that relays "
                    "media"
                  : "put the first router in bridge mode, or forward the same ports on it to the "
                    "gateway"));
      } else if (r == nullptr) {
        first_public = hops[i];
      }
    }
    if (!found && hops.size() <= 1) {
      out.push_back(
          Make(L::LEVEL_OK, "upstream-nat",
               "the STUN server is reached right after the gateway: no NAT between them"));
    } else if (!found && !first_public.empty()) {
      out.push_back(Make(L::LEVEL_OK, "upstream-nat",
                         "the router after the gateway, " + first_public +
                             ", has a public address: no NAT beyond the gateway"));
    } else if (!found) {
      out.push_back(Make(L::LEVEL_INFO, "upstream-nat",
                         "the routers after the gateway did not answer, so another NAT "
                         "could not be ruled out"));
    }
  }

  // What a STUN server on the internet sees.
  if (in.stun_server.empty()) {
    out.push_back(Make(L::LEVEL_INFO, "stun",
                       "no STUN server is configured, so the public address was not checked",
                       "set doctor.stun_server (HOST:PORT) to compare the gateway's answer with "
                       "what the internet sees"));
  } else if (in.stun && *in.stun) {
    const std::string& seen = (*in.stun)->address;
    if (ext.empty()) {
      out.push_back(
          Make(L::LEVEL_INFO, "stun",
               "STUN server " + in.stun_server + " sees " + seen +
                   "; the gateway reports no address to compare it with",
               "devices must advertise " + seen + " (natpilot's view uses the gateway's answer)"));
    } else if (seen != ext) {
      out.push_back(
          Make(L::LEVEL_PROBLEM, "stun",
               "STUN server " + in.stun_server + " sees " + seen + ", but the gateway says " + ext +
                   ": another NAT between the gateway and the internet",
               "the devices must advertise " + seen + "; forward the ports on the outer NAT too"));
    } else {
      out.push_back(Make(L::LEVEL_OK, "stun",
                         "STUN server " + in.stun_server + " sees " + seen +
                             (ext.empty() ? "" : ", the same as the gateway reports")));
    }
  } else if (in.stun) {
    out.push_back(Make(L::LEVEL_WARNING, "stun",
                       "STUN server " + in.stun_server + ": " + in.stun->error().message,
                       "check doctor.stun_server and that outgoing UDP is allowed"));
  }

  // Whether every wanted mapping is in place.
  std::map<std::string, std::map<std::string, int>> missing;  // device -> state -> count
  int wanted = 0, provided = 0, static_rules = 0;
  bool sip = false;
  for (const Mapping& m : in.mappings) {
    if (m.released) continue;
    ++wanted;
    sip = sip || m.purpose == Purpose::kSip;
    if (m.state == MappingState::kActive || m.state == MappingState::kRenewing) {
      ++provided;
    } else if (m.state == MappingState::kStaticRule) {
      ++provided;
      ++static_rules;
    } else {
      ++missing[m.device][std::string(ToString(m.state))];
    }
  }
  if (wanted == 0) {
    out.push_back(Make(L::LEVEL_INFO, "mappings", "no device is registered",
                       "natpilot device add NAME --address ADDRESS"));
  } else if (missing.empty()) {
    out.push_back(
        Make(L::LEVEL_OK, "mappings",
             "all " + std::to_string(wanted) + " wanted forwards are in place" +
                 (static_rules ? " (" + std::to_string(static_rules) +
                                     " by static rules, which must be applied on the router)"
                               : "")));
  } else {
    std::string text;
    for (const auto& [device, states] : missing) {
      text += (text.empty() ? "" : "; ") + device + ":";
      for (const auto& [state, n] : states) text += " " + std::to_string(n) + " " + state;
    }
    out.push_back(Make(L::LEVEL_PROBLEM, "mappings",
                       std::to_string(wanted - provided) + " of " + std::to_string(wanted) +
                           " wanted forwards are not in place (" + text + ")",
                       "natpilot mapping list shows why each one is not"));
  }

  out.push_back(Make(
      L::LEVEL_INFO, "hairpin",
      in.hairpin_rules ? "static rules include hairpin NAT (rules.hairpin)"
                       : "hairpin was not measured: phones on the LAN that call the "
                         "external address need the router to loop it back",
      in.hairpin_rules ? "" : "keep LAN phones on the PBX's LAN address, or set rules.hairpin"));
  if (sip) {
    out.push_back(
        Make(L::LEVEL_INFO, "sip-alg",
             "SIP is forwarded; a router's SIP ALG (\"SIP helper\", nf_conntrack_sip) rewrites "
             "SIP and SDP on the way and undoes what natpilot sets up",
             "turn the SIP ALG off on the router"));
  }
  return out;
}

}  // namespace natpilot
