// /metrics in the Prometheus text format (version 0.0.4). Pure: facts in, text out.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mapping/gateway_state.h"

namespace natpilot::web {

struct MetricsInputs {
  std::vector<Mapping> mappings;
  size_t devices = 0;
  GatewayStats stats;
  GatewaySnapshot gateway;
  std::map<std::pair<std::string, int>, uint64_t> api_calls;  // (method, grpc code) -> count
  std::string version;
};

std::string MetricsText(const MetricsInputs& in);

}  // namespace natpilot::web
