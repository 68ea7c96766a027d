// What the status page shows, as JSON: the gateway (with a warning for double NAT or carrier-grade
// NAT), devices, every mapping with its state and expiry, the rule files, and events.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mapping/gateway_state.h"
#include "store/store.h"

namespace natpilot::web {

struct StatusInputs {
  const Store& store;
  GatewaySnapshot gateway;
  TimePoint last_state_loss{};  // the last gateway reboot or loss of mappings seen
  TimePoint now{};
};

nlohmann::json Status(const StatusInputs& in);
nlohmann::json EventJson(const Event& e);

}  // namespace natpilot::web
