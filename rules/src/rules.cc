#include "rules.h"

#include <ctime>
#include <sstream>

#include "core/validate.h"

namespace natpilot::rules {

std::string_view ToString(Format f) {
  switch (f) {
    case Format::kNftables:
      return "nftables";
    case Format::kIptables:
      return "iptables";
    case Format::kOpenwrt:
      return "openwrt";
  }
  return "unknown";
}

Result<Format> FormatFromString(std::string_view s) {
  if (s == "nftables") return Format::kNftables;
  if (s == "iptables") return Format::kIptables;
  if (s == "openwrt") return Format::kOpenwrt;
  return Fail(Errc::kInvalidArgument, "rules format '" + std::string(s) +
                                          "' is unknown; allowed: nftables, iptables, openwrt");
}

std::string_view FileName(Format f) {
  switch (f) {
    case Format::kNftables:
      return "natpilot.nft";
    case Format::kIptables:
      return "natpilot.iptables";
    case Format::kOpenwrt:
      return "natpilot.uci";
  }
  return "natpilot.rules";
}

namespace {

bool SafeWord(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<void> CheckInterface(const std::string& name, const char* what) {
  if (!SafeWord(name, 15)) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " '" + name +
                    "' is not allowed; use 1-15 characters from A-Z a-z 0-9 . _ - (no spaces, "
                    "quotes or slashes)");
  }
  return {};
}

}  // namespace

Result<void> ValidateRouterParams(const RouterParams& p) {
  if (auto r = CheckInterface(p.wan_interface, "WAN interface"); !r) return r;
  if (auto r = CheckInterface(p.lan_interface, "LAN interface"); !r) return r;
  if (!p.wan_address.empty()) {
    auto a = ParseIpv4Unicast(p.wan_address, "WAN address");
    if (!a) return tl::unexpected(a.error());
    if (*a != p.wan_address) {  // only the canonical form is written
      return Fail(Errc::kInvalidArgument, "WAN address '" + p.wan_address +
                                              "' is not in canonical form; write it as " + *a);
    }
  }
  std::istringstream words(p.forward_chain);
  std::string family, table, chain, extra;
  words >> family >> table >> chain >> extra;
  const bool family_ok = family == "inet" || family == "ip" || family == "ip6";
  // The exact bytes: words split at any whitespace (newlines too), so the value must be the three
  // words joined by single spaces, nothing more, before a character of it is written.
  const bool exact = p.forward_chain == family + " " + table + " " + chain;
  if (!family_ok || !SafeWord(table, 64) || !SafeWord(chain, 64) || !extra.empty() || !exact) {
    return Fail(Errc::kInvalidArgument,
                "forward chain is not allowed; expected 'FAMILY TABLE CHAIN' such as 'inet fw4 "
                "forward' (single spaces, no other whitespace), with FAMILY inet, ip or ip6, TABLE "
                "and CHAIN from A-Z a-z 0-9 . _ -");
  }
  return {};
}

namespace detail {
std::string Nftables(const RulesInput& in, const RouterParams& p, const std::string& header);
std::string Iptables(const RulesInput& in, const RouterParams& p, const std::string& header);
std::string Openwrt(const RulesInput& in, const RouterParams& p, const std::string& header);
}  // namespace detail

namespace {

std::string Iso8601(TimePoint t) {
  const std::time_t secs = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Header(Format f, const RulesInput& in, const RouterParams& p) {
  std::ostringstream h;
  h << "# natpilot static forwarding rules (" << ToString(f) << ")\n"
    << "# Generated " << Iso8601(in.generated_at) << " from registry version "
    << in.registry_version << ", " << in.devices.size()
    << (in.devices.size() == 1 ? " device" : " devices") << ".\n"
    << "# Each device's SIP ports and RTP range are forwarded from " << p.wan_interface
    << " to the device on the same port (port-preserving DNAT).\n"
    << "# Written by natpilot; edits are lost at the next generation.\n";
  if (p.sip_helper_hint) {
    h << "#\n"
      << "# SIP helper: the kernel's nf_conntrack_sip (a SIP ALG) rewrites addresses inside SIP "
         "and\n"
      << "# SDP and opens RTP ports on its own. With forwards like these and a PBX that knows its\n"
      << "# external address, it only gets in the way (one-way audio, broken re-INVITEs); most "
         "VoIP\n"
      << "# setups are better without it: 'modprobe -r nf_conntrack_sip' and, on OpenWrt, remove\n"
      << "# kmod-nf-nathelper-extra.\n";
  }
  return h.str();
}

Result<void> CheckDevice(const Device& d, const Policy& any_port) {
  if (auto r = ValidateDeviceName(d.name); !r) return r;
  auto addr = ParseIpv4Unicast(d.address, "device '" + d.name + "' address");
  if (!addr) return tl::unexpected(addr.error());
  if (*addr != d.address) {
    return Fail(Errc::kInvalidArgument, "device '" + d.name + "' address '" + d.address +
                                            "' is not in canonical dotted form");
  }
  return ValidatePlan(d.plan, any_port);
}

}  // namespace

Result<std::string> Generate(Format format, const RulesInput& input, const RouterParams& params) {
  if (auto r = ValidateRouterParams(params); !r) return tl::unexpected(r.error());
  Policy any_port;
  any_port.internal_ports = any_port.external_ports = PortRange{1, 65535};
  any_port.max_rtp_ports = any_port.max_sip_ports = 65535;
  any_port.max_ports_per_device = 3 * 65535;
  for (const Device& d : input.devices) {
    if (auto r = CheckDevice(d, any_port); !r) return tl::unexpected(r.error());
  }
  const std::string header = Header(format, input, params);
  switch (format) {
    case Format::kNftables:
      return detail::Nftables(input, params, header);
    case Format::kIptables:
      return detail::Iptables(input, params, header);
    case Format::kOpenwrt:
      return detail::Openwrt(input, params, header);
  }
  return Fail(Errc::kInvalidArgument, "unknown rules format");
}

}  // namespace natpilot::rules
