#include "core/validate.h"

#include <arpa/inet.h>

#include <charconv>

namespace natpilot {

Result<std::string> ParseIpv4Unicast(std::string_view text, std::string_view what) {
  const std::string s(text);
  in_addr addr{};
  if (s.find(':') != std::string::npos) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " '" + s + "' is IPv6; only IPv4 unicast addresses are supported");
  }
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &addr) != 1) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " '" + s +
                                            "' is not an IPv4 address; expected dotted form such "
                                            "as 192.168.1.20");
  }
  const uint32_t a = ntohl(addr.s_addr);
  const uint8_t top = a >> 24;
  const char* why = nullptr;
  if (top == 0) why = "is in 0.0.0.0/8 (this network)";
  else if (top == 127) why = "is a loopback address";
  else if (top >= 224 && top <= 239) why = "is a multicast address";
  else if (top >= 240) why = "is reserved or broadcast";
  else if ((a >> 16) == 0xA9FE) why = "is link-local (169.254.0.0/16)";
  if (why != nullptr) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " '" + s + "' " + why + "; a device needs a unicast LAN address");
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
  bool ok = dash == std::string_view::npos
                ? ParsePort(text, &first) && ParsePort(text, &last)
                : ParsePort(text.substr(0, dash), &first) && ParsePort(text.substr(dash + 1), &last);
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
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '.' || c == '_' || c == '-';
    ok = ok && allowed;
  }
  if (!ok) {
    return Fail(Errc::kInvalidArgument, "device name '" + std::string(name) +
                                            "' is not allowed; use 1-32 characters from "
                                            "A-Z a-z 0-9 . _ -");
  }
  return {};
}

Result<void> ValidatePortRange(const PortRange& r, const Policy& policy, std::string_view what) {
  const std::string allowed =
      "allowed ports are " + std::to_string(policy.min_port) + "-" + std::to_string(policy.max_port);
  if (r.first > r.last) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " " + std::to_string(r.first) + "-" +
                                            std::to_string(r.last) +
                                            " is reversed; the first port must not exceed the last");
  }
  if (r.first < policy.min_port || r.last > policy.max_port) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " " + ToString(r) + " is outside the allowed range; " + allowed);
  }
  return {};
}

Result<void> ValidatePlan(const PortPlan& plan, const Policy& policy) {
  if (auto r = ValidatePortRange(plan.sip, policy, "SIP range"); !r) return r;
  if (auto r = ValidatePortRange(plan.rtp, policy, "RTP range"); !r) return r;
  if (!plan.sip_udp && !plan.sip_tcp) {
    return Fail(Errc::kInvalidArgument, "SIP transports are empty; choose udp, tcp or both");
  }
  if (plan.sip.size() > policy.max_sip_ports) {
    return Fail(Errc::kInvalidArgument, "SIP range " + ToString(plan.sip) + " has " +
                                            std::to_string(plan.sip.size()) +
                                            " ports; at most " +
                                            std::to_string(policy.max_sip_ports) + " are allowed");
  }
  if (plan.rtp.size() > policy.max_rtp_ports) {
    return Fail(Errc::kInvalidArgument, "RTP range " + ToString(plan.rtp) + " has " +
                                            std::to_string(plan.rtp.size()) +
                                            " ports; at most " +
                                            std::to_string(policy.max_rtp_ports) + " are allowed");
  }
  if (plan.sip_udp && plan.sip.overlaps(plan.rtp)) {
    return Fail(Errc::kInvalidArgument, "SIP range " + ToString(plan.sip) +
                                            " overlaps RTP range " + ToString(plan.rtp) +
                                            " on UDP; they must be disjoint");
  }
  return {};
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
