#include "web/metrics.h"

#include <cstdio>

namespace natpilot::web {
namespace {

const char* kCodes[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void Head(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void ByProtocol(std::string& out, const char* name,
                const std::map<GatewayProtocol, uint64_t>& values) {
  for (GatewayProtocol p :
       {GatewayProtocol::kPcp, GatewayProtocol::kNatPmp, GatewayProtocol::kUpnpIgd}) {
    auto it = values.find(p);
    out += std::string(name) + "{protocol=\"" + std::string(ToString(p)) + "\"} " +
           std::to_string(it == values.end() ? 0 : it->second) + "\n";
  }
}

}  // namespace

std::string MetricsText(const MetricsInputs& in) {
  std::string out;
  Head(out, "natpilot_build_info", "gauge", "natpilotd's version.");
  out += "natpilot_build_info{version=\"" + in.version + "\"} 1\n";
  Head(out, "natpilot_devices", "gauge", "Registered devices.");
  out += "natpilot_devices " + std::to_string(in.devices) + "\n";

  Head(out, "natpilot_mappings", "gauge",
       "Wanted mappings by state and by the protocol of their lease.");
  std::map<std::pair<std::string, std::string>, uint64_t> by_state;
  for (MappingState s : {MappingState::kPending, MappingState::kActive, MappingState::kRenewing,
                         MappingState::kFailed, MappingState::kStaticRule, MappingState::kUnmapped,
                         MappingState::kRemoving}) {
    by_state[{std::string(ToString(s)), "none"}] = 0;
  }
  for (const Mapping& m : in.mappings)
    ++by_state[{std::string(ToString(m.state)), std::string(ToString(m.protocol))}];
  for (const auto& [key, n] : by_state) {
    out += "natpilot_mappings{state=\"" + key.first + "\",protocol=\"" + key.second + "\"} " +
           std::to_string(n) + "\n";
  }

  Head(out, "natpilot_lease_grants_total", "counter",
       "New leases granted by the gateway, by protocol.");
  ByProtocol(out, "natpilot_lease_grants_total", in.stats.maps);
  Head(out, "natpilot_lease_renewals_total", "counter", "Leases renewed, by protocol.");
  ByProtocol(out, "natpilot_lease_renewals_total", in.stats.renewals);
  Head(out, "natpilot_gateway_failures_total", "counter",
       "Mapping requests refused or unanswered, by protocol.");
  ByProtocol(out, "natpilot_gateway_failures_total", in.stats.failures);
  Head(out, "natpilot_gateway_rtt_seconds", "gauge",
       "Round trip of the last mapping request, by protocol.");
  for (const auto& [p, ms] : in.stats.last_rtt_ms) {
    out += "natpilot_gateway_rtt_seconds{protocol=\"" + std::string(ToString(p)) + "\"} " +
           Number(ms / 1000.0) + "\n";
  }
  Head(out, "natpilot_gateway_discovery_seconds", "gauge",
       "How long the last gateway probe took to a decision.");
  out += "natpilot_gateway_discovery_seconds " + Number(in.stats.last_discovery_ms / 1000.0) + "\n";
  Head(out, "natpilot_gateway_state_losses_total", "counter",
       "Gateway reboots (epoch resets) and lost mappings seen, each followed by restoring them.");
  out += "natpilot_gateway_state_losses_total " + std::to_string(in.stats.state_losses) + "\n";
  Head(out, "natpilot_gateway_up", "gauge", "1 when a gateway protocol is usable.");
  out += std::string("natpilot_gateway_up ") +
         (in.gateway.info.status == GatewayInfo::Status::kReady ? "1" : "0") + "\n";

  Head(out, "natpilot_api_calls_total", "counter", "gRPC API calls by method and status code.");
  for (const auto& [key, n] : in.api_calls) {
    const int code = key.second;
    // Label values escaped as the text format wants (backslash, quote, newline), whatever comes.
    std::string method;
    for (char ch : key.first) {
      if (ch == '\\' || ch == '"') method += '\\';
      if (ch == '\n') {
        method += "\\n";
        continue;
      }
      method += ch;
    }
    out += "natpilot_api_calls_total{method=\"" + method + "\",code=\"" +
           (code >= 0 && code <= 16 ? kCodes[code] : std::to_string(code)) + "\"} " +
           std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace natpilot::web
