#include "core/validate.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include "core/text.h"

namespace natpilot {

namespace {
// The exact bytes of a dotted IPv4 address: inet_pton reads a C string and stops at a NUL, so
// "192.168.1.2\0anything" would pass it. Returns why not, or "" when every byte may be there.
std::string NotDotted(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < '0' || c > '9') && c != '.') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return "has byte " + std::string(hex) + " at offset " + std::to_string(i) +
             "; only digits and dots are allowed";
    }
  }
  if (s.size() > 15)
    return "is longer than an IPv4 address (" + std::to_string(s.size()) + " bytes)";
  return "";
}
// Foreign text in a message: printable ASCII, anything else as \xNN, at most 64 bytes.
std::string Shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}
}  // namespace

Result<std::string> ParseIpv4Unicast(std::string_view text, std::string_view what) {
  const std::string s(text);
  if (s.find(':') == std::string::npos) {
    if (const std::string why = NotDotted(s); !why.empty()) {
      return Fail(Errc::kInvalidArgument, std::string(what) + " '" + Shown(s) + "' " + why +
                                              "; expected dotted form such as 192.168.1.20");
    }
  }
  in_addr addr{};
  if (s.find(':') != std::string::npos) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + Shown(s) +
                                            "' is IPv6; only IPv4 unicast addresses are supported");
  }
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &addr) != 1) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + s +
                                            "' is not an IPv4 address; expected dotted form such "
                                            "as 192.168.1.20");
  }
  const uint32_t a = ntohl(addr.s_addr);
  const uint8_t top = a >> 24;
  const char* why = nullptr;
  if (top == 0)
    why = "is in 0.0.0.0/8 (this network)";
  else if (top == 127)
    why = "is a loopback address";
  else if (top >= 224 && top <= 239)
    why = "is a multicast address";
  else if (top >= 240)
    why = "is reserved or broadcast";
  else if ((a >> 16) == 0xA9FE)
    why = "is link-local (169.254.0.0/16)";
  if (why != nullptr) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + Shown(s) + "' " + why +
                                            "; a device needs a unicast LAN address");
  }
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, buf, sizeof buf);
  return std::string(buf);
}

namespace {
bool ParsePort(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 5) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}
}  // namespace

Result<PortRange> ParsePortRange(std::string_view text, std::string_view what) {
  const auto dash = text.find('-');
  uint32_t first = 0;
  uint32_t last = 0;
  bool ok = dash == std::string_view::npos ? ParsePort(text, &first) && ParsePort(text, &last)
                                           : ParsePort(text.substr(0, dash), &first) &&
                                                 ParsePort(text.substr(dash + 1), &last);
  if (!ok || first == 0 || last == 0 || first > 65535 || last > 65535) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + std::string(text) +
                                            "' is not a port range; expected PORT or FIRST-LAST "
                                            "with ports 1-65535, e.g. 10000-10099");
  }
  return PortRange{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

Result<void> ValidateDeviceName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 32;
  for (char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    ok = ok && allowed;
  }
  if (!ok) {
    return Fail(Errc::kInvalidArgument, "device name '" + std::string(name) +
                                            "' is not allowed; use 1-32 characters from "
                                            "A-Z a-z 0-9 . _ -");
  }
  return {};
}

Result<Subnet> ParseSubnet(std::string_view text, std::string_view what) {
  const auto slash = text.find('/');
  const std::string allowed = "; expected ADDRESS/PREFIX such as 192.168.1.0/24";
  if (slash == std::string_view::npos) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " '" + std::string(text) + "' has no prefix length" + allowed);
  }
  const std::string addr(text.substr(0, slash));
  if (const std::string why = NotDotted(addr); !why.empty()) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " '" + Shown(text) + "': the address " + why + allowed);
  }
  in_addr a{};
  uint32_t prefix = 0;
  const auto p = text.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1 || p.empty() || ec != std::errc() ||
      ptr != p.data() + p.size() || prefix > 32) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + std::string(text) +
                                            "' is not an IPv4 network" + allowed);
  }
  Subnet s{ntohl(a.s_addr), static_cast<uint8_t>(prefix)};
  s.network &= prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
  return s;
}

Result<void> ValidateDescription(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Fail(Errc::kInvalidArgument, "description " + why +
                                            "; allowed: at most 200 bytes of UTF-8 text without "
                                            "control characters");
  };
  if (text.size() > 200) return bad("is " + std::to_string(text.size()) + " bytes long");
  if (const std::string why = UnsafeTextReason(text); !why.empty()) return bad(why);
  return {};
}

namespace {

Result<void> CheckRange(const PortRange& r, std::string_view what) {
  if (r.first == 0 || r.first > r.last) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " " + std::to_string(r.first) + "-" +
                                            std::to_string(r.last) +
                                            " is not a port range; ports are 1-65535 and the first "
                                            "must not exceed the last");
  }
  return {};
}

Result<void> CheckPolicyRange(const PortRange& r, const PortRange& allowed, const char* rule,
                              std::string_view what) {
  if (r.first < allowed.first || r.last > allowed.last) {
    return Fail(Errc::kPermissionDenied, std::string(what) + " " + ToString(r) + " is refused by " +
                                             rule + ": allowed ports are " + ToString(allowed));
  }
  return {};
}

}  // namespace

Result<void> ValidatePlan(const PortPlan& plan, const Policy& policy) {
  if (auto r = CheckRange(plan.sip, "SIP range"); !r) return r;
  if (auto r = CheckRange(plan.rtp, "RTP range"); !r) return r;
  if (!plan.sip_udp && !plan.sip_tcp) {
    return Fail(Errc::kInvalidArgument, "SIP transports are empty; choose udp, tcp or both");
  }
  if (plan.sip_udp && plan.sip.overlaps(plan.rtp)) {
    return Fail(Errc::kInvalidArgument, "SIP range " + ToString(plan.sip) + " overlaps RTP range " +
                                            ToString(plan.rtp) + " on UDP; they must be disjoint");
  }
  // External ports are asked equal to internal ones, so both ranges apply to the plan.
  for (const auto& [range, what] :
       {std::pair{plan.sip, "SIP range"}, std::pair{plan.rtp, "RTP range"}}) {
    if (auto r = CheckPolicyRange(range, policy.internal_ports, "policy.internal_ports", what); !r)
      return r;
    if (auto r = CheckPolicyRange(range, policy.external_ports, "policy.external_ports", what); !r)
      return r;
  }
  const auto too_many = [](const std::string& what, uint32_t n, const char* rule, uint32_t max) {
    return Fail(Errc::kPermissionDenied, what + " has " + std::to_string(n) + " ports; " + rule +
                                             " allows at most " + std::to_string(max));
  };
  if (plan.sip.size() > policy.max_sip_ports) {
    return too_many("SIP range " + ToString(plan.sip), plan.sip.size(), "policy.max_sip_ports",
                    policy.max_sip_ports);
  }
  if (plan.rtp.size() > policy.max_rtp_ports) {
    return too_many("RTP range " + ToString(plan.rtp), plan.rtp.size(), "policy.max_rtp_ports",
                    policy.max_rtp_ports);
  }
  const uint32_t total =
      plan.sip.size() * ((plan.sip_udp ? 1 : 0) + (plan.sip_tcp ? 1 : 0)) + plan.rtp.size();
  if (total > policy.max_ports_per_device) {
    return too_many("the plan (SIP on each transport plus RTP)", total,
                    "policy.max_ports_per_device", policy.max_ports_per_device);
  }
  return {};
}

Result<void> CheckDeviceNetwork(const std::string& address, const std::vector<Subnet>& networks,
                                bool from_host_interfaces) {
  in_addr a{};
  if (!NotDotted(address).empty() || inet_pton(AF_INET, address.c_str(), &a) != 1) {
    return Fail(Errc::kInvalidArgument, "device address '" + address + "' is not an IPv4 address");
  }
  std::string list;
  for (const Subnet& n : networks) {
    if (n.contains(ntohl(a.s_addr))) return {};
    list += (list.empty() ? "" : ", ") + ToString(n);
  }
  if (list.empty()) list = "none found";
  return Fail(Errc::kPermissionDenied,
              "device address " + address + " is refused by policy.device_networks: allowed are " +
                  list +
                  (from_host_interfaces ? " (the LAN subnets of this host's interfaces)" : ""));
}

std::vector<Mapping> ExpandPlan(const Device& device) {
  std::vector<Mapping> out;
  auto add = [&](Purpose purpose, Transport transport, uint16_t port) {
    Mapping m;
    m.device_id = device.id;
    m.device = device.name;
    m.internal_address = device.address;
    m.purpose = purpose;
    m.transport = transport;
    m.internal_port = port;
    m.external_port = port;
    m.state = MappingState::kPending;
    out.push_back(std::move(m));
  };
  const PortPlan& p = device.plan;
  for (uint32_t port = p.sip.first; port <= p.sip.last; ++port) {
    if (p.sip_udp) add(Purpose::kSip, Transport::kUdp, static_cast<uint16_t>(port));
    if (p.sip_tcp) add(Purpose::kSip, Transport::kTcp, static_cast<uint16_t>(port));
  }
  for (uint32_t port = p.rtp.first; port <= p.rtp.last; ++port) {
    add(Purpose::kRtp, Transport::kUdp, static_cast<uint16_t>(port));
  }
  return out;
}

}  // namespace natpilot

namespace natpilot {

std::optional<Purpose> PlanPurpose(const PortPlan& plan, Transport transport, uint16_t port) {
  const bool sip = transport == Transport::kUdp ? plan.sip_udp : plan.sip_tcp;
  if (sip && plan.sip.contains(port)) return Purpose::kSip;
  if (transport == Transport::kUdp && plan.rtp.contains(port)) return Purpose::kRtp;
  return std::nullopt;
}

}  // namespace natpilot
