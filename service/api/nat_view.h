// A device's NAT view: what it must advertise in SIP and SDP (external address, external ports,
// how each is provided and until when), built from the store and the gateway's state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/types.h"
#include "mapping/gateway_state.h"
#include "natpilot/v1/natpilot.pb.h"
#include "store/store.h"

namespace natpilot {

struct NatViewInputs {
  const Store& store;
  GatewaySnapshot gateway;
  std::string wan_address;         // rules.wan_address: the address static rules are reached on
  std::vector<Subnet> local_nets;  // the LAN's subnets
};

Result<v1::NatView> BuildNatView(const NatViewInputs& in, std::string_view device);
// The view's facts without its times: views with equal facts need no new announcement.
std::string NatViewFacts(const v1::NatView& view);

}  // namespace natpilot
