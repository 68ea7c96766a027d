#include <gtest/gtest.h>

#include "api/api_metrics.h"
#include "web/metrics.h"

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
  in.stats.maps[GatewayProtocol::kPcp] = 2;
  in.stats.renewals[GatewayProtocol::kPcp] = 5;
  in.stats.failures[GatewayProtocol::kUpnpIgd] = 1;
  in.stats.last_rtt_ms[GatewayProtocol::kPcp] = 3.5;
  in.stats.state_losses = 1;
  in.stats.last_discovery_ms = 52;
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
           "natpilot_api_calls_total{method=\"/natpilot.v1.DeviceService/"
           "ListDevices\",code=\"OK\"} 7\n",
           "natpilot_api_calls_total{method=\"/natpilot.v1.DeviceService/"
           "RegisterDevice\",code=\"UNAUTHENTICATED\"} 1\n",
           "# TYPE natpilot_lease_renewals_total counter\n",
       }) {
    EXPECT_NE(t.find(line), std::string::npos) << "missing: " << line << "in:\n" << t;
  }
}

// A caller's made-up method path neither grows the map nor reaches the metrics text: every unknown
// one counts as "other"; label values are escaped whatever they hold.
TEST(Metrics, UnknownMethodsCountAsOtherAndLabelsAreEscaped) {
  ApiMetrics metrics;
  metrics.Count("/natpilot.v1.DeviceService/RegisterDevice", 0);
  for (int i = 0; i < 1000; ++i) metrics.Count("/x" + std::to_string(i) + "\"}\nevil 1", 12);
  metrics.Count("/natpilot.v1.DeviceService/NoSuchMethod", 12);
  metrics.Count("natpilot.v1.DeviceService/RegisterDevice", 0);  // no leading slash
  const auto calls = metrics.Snapshot();
  EXPECT_EQ(calls.size(), 3u);  // RegisterDevice OK, other UNIMPLEMENTED, other OK
  EXPECT_EQ(calls.at({"other", 12}), 1001u);
  EXPECT_EQ(calls.at({"/natpilot.v1.DeviceService/RegisterDevice", 0}), 1u);

  MetricsInputs in;
  in.api_calls[{"a\"b\\c\nd", 0}] = 1;  // whatever got there, the text stays parseable
  const std::string t = MetricsText(in);
  EXPECT_NE(t.find("natpilot_api_calls_total{method=\"a\\\"b\\\\c\\nd\",code=\"OK\"} 1\n"),
            std::string::npos)
      << t;
}

}  // namespace
}  // namespace natpilot::web
