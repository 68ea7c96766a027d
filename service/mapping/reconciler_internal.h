// Internal to the reconciler's source files: small helpers they share.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "mapping/reconciler.h"

namespace natpilot {

inline constexpr const char* kReconcilerCaller = "natpilotd";

inline bool HasLease(const Mapping& m) {
  return m.state == MappingState::kActive || m.state == MappingState::kRenewing;
}

// miniupnpc's HTTP failure (-3) or our own kUnavailable: the gateway is gone, not refusing.
inline bool IsUnreachable(const Error& e) {
  return (e.code.category() == UpnpCategory() && e.code.value() == -3) ||
         e.code == make_error_code(Errc::kUnavailable);
}

// Counts per device of what one pass did, turned into one event per device and outcome.
struct Reconciler::Tally {
  std::map<std::string, uint32_t> activated;
  std::map<std::string, GatewayProtocol> via;
  std::map<std::string, std::pair<uint32_t, std::string>> failed;       // count, last reason
  std::map<std::string, std::pair<uint32_t, std::string>> static_rule;  // count, reason
};

}  // namespace natpilot
