// Small facts about this host's network: the default gateway and our address towards it.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot {

// The IPv4 default route's gateway, from /proc/net/route.
Result<std::string> DefaultGateway();
// The local address the kernel would use to reach `address` (a connected UDP socket; no packet
// is sent).
Result<std::string> LocalAddressTowards(const std::string& address);

struct GatewayRoute {
  std::string gateway;  // the configured one, or the default route's
  std::string local;    // our address towards it
};
// Both at once, for protocols that talk to the gateway directly (PCP, NAT-PMP).
Result<GatewayRoute> FindGatewayRoute(const std::string& configured_gateway);

// The IPv4 subnets of this host's interfaces that are up, loopback left out.
std::vector<Subnet> HostLanSubnets();

}  // namespace natpilot
