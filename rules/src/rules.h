// Static forwarding rules for routers that cannot or will not map ports: pure functions from the
// device registry and the router's parameters to rule text. No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot::rules {

enum class Format { kNftables, kIptables, kOpenwrt };
std::string_view ToString(Format f);  // "nftables", "iptables", "openwrt"
Result<Format> FormatFromString(std::string_view s);
std::string_view FileName(Format f);  // natpilot.nft, natpilot.iptables, natpilot.uci

struct RouterParams {
  std::string wan_interface = "wan";  // nftables/iptables: interface name; OpenWrt: zone name
  std::string lan_interface = "lan";
  std::string wan_address;      // optional; lets hairpin match the external address exactly
  bool hairpin = false;         // LAN clients reaching devices through the external address
  bool sip_helper_hint = true;  // explain the SIP conntrack helper in the header
  // The router's own forward chain ("family table chain"), named in the wiring line that lets
  // forwarded DNAT traffic pass a default-drop forward policy.
  std::string forward_chain = "inet fw4 forward";
};

// Interface names: 1-15 characters from A-Z a-z 0-9 . _ - (a Linux interface name without
// whitespace, quotes or slashes); the WAN address, if given, an IPv4 unicast address; the forward
// chain three words from the same alphabet, the first one an nftables family.
Result<void> ValidateRouterParams(const RouterParams& params);

struct RulesInput {
  std::vector<Device> devices;  // each device's whole plan is forwarded, port-preserving
  uint64_t registry_version = 0;
  TimePoint generated_at{};
};

// Validates the parameters and every device (name, address, plan) before writing a character.
Result<std::string> Generate(Format format, const RulesInput& input, const RouterParams& params);

}  // namespace natpilot::rules
