// The NAT doctor: what stands between the internet and the devices, in plain words, with what to
// do about each finding. Pure: facts in, findings out (the STUN query is made by the caller).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "mapping/gateway_state.h"
#include "natpilot/v1/natpilot.pb.h"
#include "portmap/stun.h"

namespace natpilot {

struct DoctorInputs {
  GatewaySnapshot gateway;
  std::vector<Mapping> mappings;
  std::string stun_server;                   // "" = not configured
  std::optional<Result<stun::Mapped>> stun;  // the server's answer, when one was asked
  // The routers on the way to the STUN server (hop 1 is the gateway), when traced.
  std::optional<Result<std::vector<std::string>>> path;
  bool hairpin_rules = false;  // rules.hairpin
  // When a [[pbx]] file or hook first followed the last external address change, if one did.
  std::optional<TimePoint> pbx_followed_at;
  // The UPnP event subscription ("subscribed to ...", "not subscribed ..."); "" = events off.
  std::string upnp_events;
};

std::vector<v1::Finding> Diagnose(const DoctorInputs& in);
// "private (RFC 1918)", "carrier-grade NAT (100.64.0.0/10, RFC 6598)", "documentation
// (203.0.113.0/24, RFC 5737)", ...; empty for a public unicast address.
std::string ReservedRange(const std::string& ipv4);

}  // namespace natpilot
