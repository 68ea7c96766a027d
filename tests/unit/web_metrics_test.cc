#include "web/metrics.h"

#include <gtest/gtest.h>

namespace natpilot::web {
namespace {

TEST(Metrics, PrometheusTextWithEveryFamily) {
  MetricsInputs in;
  Mapping a, b;
  a.state = b.state = MappingState::kActive;
  a.protocol = b.protocol = GatewayProtocol::kPcp;
  Mapping c;
  c.state = MappingState::kStaticRule;
  in.mappings = {a, b, c};
  in.devices = 2;
  in.reconciler.maps[GatewayProtocol::kPcp] = 2;
  in.reconciler.renewals[GatewayProtocol::kPcp] = 5;
  in.reconciler.failures[GatewayProtocol::kUpnpIgd] = 1;
  in.reconciler.last_rtt_ms[GatewayProtocol::kPcp] = 3.5;
  in.reconciler.state_losses = 1;
  in.reconciler.last_discovery_ms = 52;
  in.gateway.info.status = GatewayInfo::Status::kReady;
  in.api_calls[{"/natpilot.v1.DeviceService/ListDevices", 0}] = 7;
  in.api_calls[{"/natpilot.v1.DeviceService/RegisterDevice", 16}] = 1;
  in.version = "9.9.9";
  const std::string t = MetricsText(in);
  for (const char* line : {
           "natpilot_build_info{version=\"9.9.9\"} 1\n",
           "natpilot_devices 2\n",
           "natpilot_mappings{state=\"active\",protocol=\"pcp\"} 2\n",
           "natpilot_mappings{state=\"static-rule\",protocol=\"none\"} 1\n",
           "natpilot_mappings{state=\"failed\",protocol=\"none\"} 0\n",
           "natpilot_lease_grants_total{protocol=\"pcp\"} 2\n",
           "natpilot_lease_renewals_total{protocol=\"pcp\"} 5\n",
           "natpilot_lease_renewals_total{protocol=\"upnp-igd\"} 0\n",
           "natpilot_gateway_failures_total{protocol=\"upnp-igd\"} 1\n",
           "natpilot_gateway_rtt_seconds{protocol=\"pcp\"} 0.0035\n",
           "natpilot_gateway_discovery_seconds 0.052\n",
           "natpilot_gateway_state_losses_total 1\n",
           "natpilot_gateway_up 1\n",
           "natpilot_api_calls_total{method=\"/natpilot.v1.DeviceService/ListDevices\",code=\"OK\"} 7\n",
           "natpilot_api_calls_total{method=\"/natpilot.v1.DeviceService/RegisterDevice\",code=\"UNAUTHENTICATED\"} 1\n",
           "# TYPE natpilot_lease_renewals_total counter\n",
       }) {
    EXPECT_NE(t.find(line), std::string::npos) << "missing: " << line << "in:\n" << t;
  }
}

}  // namespace
}  // namespace natpilot::web
