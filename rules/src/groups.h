// Internal: a device's forwards grouped by transport, one rule per device and transport.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace natpilot::rules::detail {

struct PortGroup {
  Transport transport;
  std::vector<PortRange> ranges;  // SIP first, then RTP
};

inline std::vector<PortGroup> Groups(const Device& d) {
  std::vector<PortGroup> out;
  PortGroup udp{Transport::kUdp, {}};
  if (d.plan.sip_udp) udp.ranges.push_back(d.plan.sip);
  udp.ranges.push_back(d.plan.rtp);
  out.push_back(udp);
  if (d.plan.sip_tcp) out.push_back(PortGroup{Transport::kTcp, {d.plan.sip}});
  return out;
}

// "5060-5070, 10000-10099" (sep ", ", dash "-") or "5060:5070,10000:10099" (sep ",", dash ":").
inline std::string Join(const std::vector<PortRange>& ranges, const char* sep, char dash) {
  std::string out;
  for (const PortRange& r : ranges) {
    if (!out.empty()) out += sep;
    out += std::to_string(r.first);
    if (r.last != r.first) out += dash + std::to_string(r.last);
  }
  return out;
}

}  // namespace natpilot::rules::detail
