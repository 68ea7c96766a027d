// Checks of everything a caller or a config file can hand us. Each failure says what was wrong and
// what is allowed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot {

// A unicast IPv4 address in dotted form; returns it in canonical form.
Result<std::string> ParseIpv4Unicast(std::string_view text, std::string_view what);
// "5060", "5060-5070".
Result<PortRange> ParsePortRange(std::string_view text, std::string_view what);
// "192.168.1.0/24"; the host bits are cleared.
Result<Subnet> ParseSubnet(std::string_view text, std::string_view what);
Result<void> ValidateDeviceName(std::string_view name);
// Free text: at most 200 bytes of valid UTF-8 without control characters.
Result<void> ValidateDescription(std::string_view text);
// Structure (INVALID_ARGUMENT), then the policy's port rules (PERMISSION_DENIED, naming the rule).
Result<void> ValidatePlan(const PortPlan& plan, const Policy& policy);
// The address lies in one of the networks (PERMISSION_DENIED naming policy.device_networks).
Result<void> CheckDeviceNetwork(const std::string& address, const std::vector<Subnet>& networks,
                                bool from_host_interfaces);

// The mappings a device wants: SIP ports on each chosen transport, RTP ports on UDP; all
// port-preserving (external port = internal port).
std::vector<Mapping> ExpandPlan(const Device& device);
// What a plan wants this port for, if anything.
std::optional<Purpose> PlanPurpose(const PortPlan& plan, Transport transport, uint16_t port);

}  // namespace natpilot
